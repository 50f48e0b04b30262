"""Dataset loaders: the demo corpus, manifests, LibriSpeech, VoxCeleb, ESC-50 and their configs.

Fixtures are built in tmp_path in each corpus's real layout, with audio
synthesised by numpy and written by soundfile.
"""

from __future__ import annotations

import collections
import csv
import inspect
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from codecbench.datasets.base import Trial
from codecbench.datasets.demo import DemoDataset, demo_dir
from codecbench.datasets.esc50 import ESC50Dataset
from codecbench.datasets.librispeech import LibriSpeechDataset
from codecbench.datasets.manifest import ManifestDataset, read_manifest, read_trials
from codecbench.datasets.voxceleb import VoxCelebDataset
from codecbench.errors import AudioError, ConfigError

CONF_DIR = Path(__file__).resolve().parents[1] / "conf" / "dataset"


# ---------------------------------------------------------------------------
# fixture builders
# ---------------------------------------------------------------------------


def write_tone(path: Path, seed: int = 0, sample_rate: int = 16000, seconds: float = 0.1, channels: int = 1) -> Path:
    """A short noisy sine (format from the suffix: .flac, .wav); different seeds, different bytes."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(sample_rate * seconds)) / sample_rate
    tone = 0.3 * np.sin(2 * np.pi * (220 + 40 * seed) * t)
    samples = np.stack([tone + 0.01 * rng.standard_normal(t.size) for _ in range(channels)], axis=1)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), samples.astype(np.float32), sample_rate)
    return path


def write_lines(path: Path, lines: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def write_jsonl(path: Path, records: list[dict]) -> Path:
    return write_lines(path, [json.dumps(record) for record in records])


#: LibriSpeech fixture: (speaker, chapter) -> [(utterance number, transcript as released, upper case)]
LIBRI = {
    ("1089", "134686"): [(0, "HE HOPED THERE WOULD BE STEW"), (1, "STUFF IT INTO YOU")],
    ("1089", "134691"): [(3, "HE COULD WAIT NO LONGER")],
    ("121", "121726"): [(5, "ALSO A POPULAR CONTRIVANCE"), (2, "HARANGUE THE TIRESOME PRODUCT")],
}


def make_librispeech(base: Path, subset: str = "test-clean") -> Path:
    """``base/<subset>/...`` in the LibriSpeech release layout; returns ``base``."""
    seed = 0
    for (speaker, chapter), utts in LIBRI.items():
        folder = base / subset / speaker / chapter
        lines = []
        for number, text in utts:
            utt_id = f"{speaker}-{chapter}-{number:04d}"
            write_tone(folder / f"{utt_id}.flac", seed=seed)
            seed += 1
            lines.append(f"{utt_id} {text}")
        write_lines(folder / f"{speaker}-{chapter}.trans.txt", lines)
    return base


VOX_TRIALS = [
    "1 id10270/x6uYqmx31kE/00001.wav id10270/8jEAjG6SegY/00008.wav",
    "0 id10270/x6uYqmx31kE/00001.wav id10300/ize_eiCFEg0/00003.wav",
    "1 id10300/ize_eiCFEg0/00003.wav id10300/a4BGkEk5Obw/00002.wav",
    "0 id10309/0cYFdtyWVds/00005.wav id10270/8jEAjG6SegY/00008.wav",
]


def make_voxceleb(audio_root: Path, trials_path: Path, lines: list[str] = VOX_TRIALS) -> None:
    """Speaker folders under ``audio_root`` for every path the trial ``lines`` name, and the list."""
    paths = sorted({p for line in lines for p in line.split()[1:]})
    for seed, relative in enumerate(paths):
        write_tone(audio_root / relative, seed=seed)
    write_lines(trials_path, lines)


ESC_ROWS = [
    # filename, fold, target, category, esc10, src_file, take
    ("1-100032-A-0.wav", "1", "0", "dog", "True", "100032", "A"),
    ("1-100038-A-14.wav", "1", "14", "chirping_birds", "False", "100038", "A"),
    ("2-102414-B-17.wav", "2", "17", "pouring_water", "False", "102414", "B"),
    ("3-100018-A-18.wav", "3", "18", "toilet_flush", "False", "100018", "A"),
    ("5-103415-A-2.wav", "5", "2", "pig", "False", "103415", "A"),
]
ESC_COLUMNS = ["filename", "fold", "target", "category", "esc10", "src_file", "take"]


def make_esc50(root: Path, rows=ESC_ROWS, columns=ESC_COLUMNS, skip_audio: tuple[str, ...] = ()) -> Path:
    (root / "meta").mkdir(parents=True, exist_ok=True)
    with open(root / "meta" / "esc50.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        writer.writerows(rows)
    for seed, row in enumerate(rows):
        if row[0] not in skip_audio:
            write_tone(root / "audio" / row[0], seed=seed, sample_rate=44100)
    return root


@pytest.fixture
def manifest_dir(tmp_path: Path) -> Path:
    """A folder with audio/a.wav, audio/sub/b.flac, c.wav (all real files)."""
    write_tone(tmp_path / "audio" / "a.wav", seed=1)
    write_tone(tmp_path / "audio" / "sub" / "b.flac", seed=2)
    write_tone(tmp_path / "c.wav", seed=3, channels=2)
    return tmp_path


# ---------------------------------------------------------------------------
# manifest
# ---------------------------------------------------------------------------


def test_jsonl_manifest_fields_ids_and_metadata(manifest_dir: Path, tmp_path_factory, monkeypatch):
    path = write_jsonl(
        manifest_dir / "manifest.jsonl",
        [
            {"path": "audio/a.wav", "transcript": "hello there", "speaker": 7, "snr_db": 12.5},
            {"path": "audio/sub/b.flac", "domain": "music", "label": "piano"},
            {"id": "custom", "path": "c.wav", "domain": "audio", "label": 3, "license": "CC0"},
        ],
    )
    monkeypatch.chdir(tmp_path_factory.mktemp("elsewhere"))  # paths resolve against the manifest, not the cwd
    dataset = ManifestDataset(path)
    assert dataset.name == "manifest"
    assert [item.id for item in dataset] == ["audio/a", "audio/sub/b", "custom"]
    a, b, c = dataset.items
    assert (a.domain, a.transcript, a.speaker, a.label) == ("speech", "hello there", "7", None)
    assert (b.domain, b.label, b.transcript) == ("music", "piano", None)
    assert (c.domain, c.label) == ("audio", "3")
    assert a.metadata == {"snr_db": 12.5}
    assert c.metadata == {"license": "CC0"}
    assert b.path == manifest_dir / "audio" / "sub" / "b.flac"
    assert c.load().channels == 2
    assert dataset.trials == []


def test_csv_manifest_matches_jsonl(manifest_dir: Path):
    path = write_lines(
        manifest_dir / "list.csv",
        [
            "path,transcript,speaker,domain,room",
            "audio/a.wav,hello there,s1,,kitchen",
            "audio/sub/b.flac,,,music,",
        ],
    )
    items = read_manifest(path)
    assert [item.id for item in items] == ["audio/a", "audio/sub/b"]
    assert (items[0].transcript, items[0].speaker, items[0].domain) == ("hello there", "s1", "speech")
    assert items[0].metadata == {"room": "kitchen"}
    assert (items[1].transcript, items[1].speaker, items[1].domain) == (None, None, "music")
    assert items[1].metadata == {"room": None}


def test_manifest_limit_keeps_file_order_and_filters_trials(manifest_dir: Path):
    path = write_jsonl(
        manifest_dir / "m.jsonl",
        [{"path": "c.wav"}, {"path": "audio/a.wav"}, {"path": "audio/sub/b.flac"}],
    )
    trials = write_lines(
        manifest_dir / "trials.tsv",
        ["label\tenroll_id\ttest_id", "1\tc\taudio/a", "0\tc\taudio/sub/b", "0\taudio/a\taudio/sub/b"],
    )
    full = ManifestDataset(path, trials=trials)
    assert full.trials == [Trial(1, "c", "audio/a"), Trial(0, "c", "audio/sub/b"), Trial(0, "audio/a", "audio/sub/b")]
    small = ManifestDataset(path, limit=2, trials=trials)
    assert [item.id for item in small] == ["c", "audio/a"]
    assert small.trials == [Trial(1, "c", "audio/a")]


@pytest.mark.parametrize("name", ["list.txt", "list", "list.tsv"])
def test_manifest_unknown_suffix_lists_accepted(tmp_path: Path, name: str):
    path = write_lines(tmp_path / name, ["path", "a.wav"])
    with pytest.raises(ConfigError) as err:
        read_manifest(path)
    message = str(err.value)
    assert name in message and ".jsonl" in message and ".json" in message and ".csv" in message


def test_manifest_missing_file(tmp_path: Path):
    with pytest.raises(ConfigError, match=r"nope\.jsonl: expected a manifest file, found no such file"):
        ManifestDataset(tmp_path / "nope.jsonl")


def test_manifest_malformed_json_line(manifest_dir: Path):
    path = write_lines(manifest_dir / "m.jsonl", [json.dumps({"path": "c.wav"}), "", '{"path": "audio/a.wav",'])
    with pytest.raises(ConfigError) as err:
        read_manifest(path)
    message = str(err.value)
    assert "m.jsonl, line 3" in message and "expected one JSON object per line" in message
    assert "malformed JSON" in message and '"audio/a.wav",' in message


def test_manifest_line_that_is_not_an_object(manifest_dir: Path):
    path = write_lines(manifest_dir / "m.jsonl", ['["c.wav"]'])
    with pytest.raises(ConfigError, match=r"m\.jsonl, line 1: expected one JSON object per line, found a list"):
        read_manifest(path)


def test_manifest_missing_path_field(manifest_dir: Path):
    path = write_jsonl(manifest_dir / "m.jsonl", [{"path": "c.wav"}, {"id": "x", "speaker": "s"}])
    with pytest.raises(ConfigError) as err:
        read_manifest(path)
    message = str(err.value)
    assert "m.jsonl, line 2" in message and "expected a 'path' field" in message and "id, speaker" in message


def test_csv_manifest_without_path_column(manifest_dir: Path):
    path = write_lines(manifest_dir / "m.csv", ["file,speaker", "c.wav,s"])
    with pytest.raises(ConfigError) as err:
        read_manifest(path)
    message = str(err.value)
    assert "m.csv" in message and "expected columns path" in message and "missing path" in message
    assert "found columns file, speaker" in message


def test_csv_manifest_row_with_wrong_cell_count(manifest_dir: Path):
    path = write_lines(manifest_dir / "m.csv", ["path,speaker", "c.wav,s", "audio/a.wav,s,extra"])
    with pytest.raises(ConfigError, match=r"m\.csv, line 3: expected 2 cells \(as in the header\), found 3"):
        read_manifest(path)


def test_manifest_bad_domain(manifest_dir: Path):
    path = write_jsonl(manifest_dir / "m.jsonl", [{"path": "c.wav", "domain": "noise"}])
    with pytest.raises(ConfigError) as err:
        read_manifest(path)
    message = str(err.value)
    assert "m.jsonl, line 1" in message and "speech, music, audio" in message and "'noise'" in message


def test_manifest_duplicate_ids(manifest_dir: Path):
    path = write_jsonl(
        manifest_dir / "m.jsonl",
        [{"path": "c.wav"}, {"path": "audio/a.wav", "id": "x"}, {"path": "audio/sub/b.flac", "id": "x"}],
    )
    with pytest.raises(ConfigError) as err:
        read_manifest(path)
    message = str(err.value)
    assert "m.jsonl" in message and "expected unique item ids" in message and "'x' on lines 2 and 3" in message


@pytest.mark.parametrize("name,lines", [("m.jsonl", ["", "  "]), ("m.csv", ["path,speaker"]), ("m.jsonl", [])])
def test_manifest_empty(tmp_path: Path, name: str, lines: list[str]):
    path = write_lines(tmp_path / name, lines)
    with pytest.raises(ConfigError) as err:
        read_manifest(path)
    assert name in str(err.value) and "expected" in str(err.value) and ("found none" in str(err.value) or "empty" in str(err.value))


def test_manifest_missing_audio_file(manifest_dir: Path):
    path = write_jsonl(manifest_dir / "m.jsonl", [{"path": "c.wav"}, {"path": "audio/gone.wav"}])
    with pytest.raises(AudioError) as err:
        read_manifest(path)
    message = str(err.value)
    assert "m.jsonl, line 2" in message and str(manifest_dir / "audio" / "gone.wav") in message
    assert "found no such file" in message


# ---------------------------------------------------------------------------
# trials TSV
# ---------------------------------------------------------------------------

IDS = {"a", "b", "c"}


def test_read_trials(tmp_path: Path):
    path = write_lines(tmp_path / "t.tsv", ["label\tenroll_id\ttest_id", "1\ta\tb", "", "0\ta\tc"])
    assert read_trials(path, IDS) == [Trial(1, "a", "b"), Trial(0, "a", "c")]


@pytest.mark.parametrize(
    "lines,expected",
    [
        (["label\tenroll_id\ttest_id", "1\ta\tb", "0\ta\tzz"], ["t.tsv, line 3", "test_id", "unknown id 'zz'"]),
        (["label\tenroll_id\ttest_id", "1\tqq\tb"], ["t.tsv, line 2", "enroll_id", "unknown id 'qq'"]),
        (["label\tenroll_id\ttest_id", "2\ta\tb"], ["t.tsv, line 2", "expected trial label 0 or 1", "found '2'"]),
        (["label\tenroll_id\ttest_id", "yes\ta\tb"], ["t.tsv, line 2", "0 or 1", "'yes'"]),
        (["label\tenroll_id\ttest_id", "1\ta\tb\tc"], ["t.tsv, line 2", "expected 3 tab-separated fields", "found 4"]),
        (["1\ta\tb"], ["t.tsv, line 1", "expected the header", "found '1\\ta\\tb'"]),
        (["label\tenroll_id\ttest_id"], ["t.tsv", "expected at least one trial", "found none"]),
    ],
)
def test_read_trials_errors(tmp_path: Path, lines: list[str], expected: list[str]):
    path = write_lines(tmp_path / "t.tsv", lines)
    with pytest.raises(ConfigError) as err:
        read_trials(path, IDS)
    for fragment in expected:
        assert fragment in str(err.value)


def test_read_trials_missing_file(tmp_path: Path):
    with pytest.raises(ConfigError, match=r"t\.tsv: expected a trials list file, found no such file"):
        read_trials(tmp_path / "t.tsv", IDS)


# ---------------------------------------------------------------------------
# demo corpus
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo() -> DemoDataset:
    return DemoDataset()


def test_demo_counts(demo: DemoDataset):
    assert demo.name == "demo"
    assert len(demo) == 54
    assert collections.Counter(item.domain for item in demo) == {"speech": 45, "music": 4, "audio": 5}
    assert len(demo.trials) == 204
    ids = {item.id for item in demo}
    assert all(t.enroll_id in ids and t.test_id in ids for t in demo.trials)
    assert {t.label for t in demo.trials} == {0, 1}
    assert (demo_dir() / "SOURCES.md").is_file()


def test_demo_metadata_and_every_item_loads(demo: DemoDataset):
    for item in demo:
        assert {"sample_rate", "channels", "duration_s", "synthetic", "source", "license"} <= item.metadata.keys()
        audio = item.load()
        assert audio.sample_rate == item.metadata["sample_rate"], item.id
        assert audio.channels == item.metadata["channels"], item.id
        assert abs(audio.duration - item.metadata["duration_s"]) < 0.05, item.id
        assert np.isfinite(audio.samples).all() and np.abs(audio.samples).max() > 0, item.id
        if item.domain == "speech":
            assert item.transcript and item.transcript == item.transcript.lower() and item.speaker
    stereo = [item for item in demo if item.domain == "music" and item.load().channels == 2]
    assert [item.id for item in stereo] == ["music_ensemble_stereo"]


def test_demo_limit(demo: DemoDataset):
    small = DemoDataset(limit=5)
    assert [item.id for item in small] == [item.id for item in demo.items[:5]]
    kept = {item.id for item in small}
    assert all(t.enroll_id in kept and t.test_id in kept for t in small.trials)
    assert len(small.trials) < len(demo.trials)
    assert small.fingerprint() != demo.fingerprint()
    assert DemoDataset().fingerprint() == demo.fingerprint()


# ---------------------------------------------------------------------------
# LibriSpeech
# ---------------------------------------------------------------------------

LIBRI_IDS = sorted(f"{s}-{c}-{n:04d}" for (s, c), utts in LIBRI.items() for n, _ in utts)


@pytest.mark.parametrize("nested", [False, True])
def test_librispeech_layout(tmp_path: Path, nested: bool):
    make_librispeech(tmp_path / "LibriSpeech" if nested else tmp_path)
    dataset = LibriSpeechDataset(tmp_path, subset="test-clean")
    assert dataset.name == "librispeech"
    assert [item.id for item in dataset] == LIBRI_IDS
    item = {item.id: item for item in dataset}["121-121726-0005"]
    assert item.transcript == "also a popular contrivance"
    assert (item.speaker, item.domain, item.metadata["chapter"]) == ("121", "speech", "121726")
    assert item.path.name == "121-121726-0005.flac" and item.load().sample_rate == 16000
    assert dataset.trials == []


def test_librispeech_limit_and_fingerprint(tmp_path: Path):
    make_librispeech(tmp_path)
    first = LibriSpeechDataset(tmp_path, limit=2)
    assert [item.id for item in first] == LIBRI_IDS[:2]
    assert LibriSpeechDataset(tmp_path, limit=2).fingerprint() == first.fingerprint()
    write_tone(first.items[1].path, seed=99)  # same name, different bytes
    assert LibriSpeechDataset(tmp_path, limit=2).fingerprint() != first.fingerprint()


def test_librispeech_missing_root(tmp_path: Path):
    with pytest.raises(ConfigError, match=r"nowhere: expected the LibriSpeech root folder, found no such folder"):
        LibriSpeechDataset(tmp_path / "nowhere")


def test_librispeech_missing_subset_lists_present(tmp_path: Path):
    make_librispeech(tmp_path / "LibriSpeech", subset="dev-clean")
    make_librispeech(tmp_path / "LibriSpeech", subset="test-other")
    with pytest.raises(ConfigError) as err:
        LibriSpeechDataset(tmp_path, subset="test-clean")
    message = str(err.value)
    assert str(tmp_path) in message and "'test-clean'" in message and "found subsets: dev-clean, test-other" in message


def test_librispeech_flac_without_transcript_line(tmp_path: Path):
    make_librispeech(tmp_path)
    extra = write_tone(tmp_path / "test-clean" / "1089" / "134686" / "1089-134686-0009.flac")
    with pytest.raises(ConfigError) as err:
        LibriSpeechDataset(tmp_path)
    message = str(err.value)
    assert str(extra) in message and "1089-134686.trans.txt" in message
    assert "expected a transcript line '1089-134686-0009 ...'" in message and "found no such line" in message


def test_librispeech_flac_without_transcript_file(tmp_path: Path):
    make_librispeech(tmp_path)
    (tmp_path / "test-clean" / "121" / "121726" / "121-121726.trans.txt").unlink()
    with pytest.raises(ConfigError, match=r"121-121726\.trans\.txt, found no such file"):
        LibriSpeechDataset(tmp_path)


def test_librispeech_transcript_line_without_flac(tmp_path: Path):
    make_librispeech(tmp_path)
    (tmp_path / "test-clean" / "121" / "121726" / "121-121726-0002.flac").unlink()
    with pytest.raises(ConfigError) as err:
        LibriSpeechDataset(tmp_path)
    message = str(err.value)
    assert "121-121726.trans.txt, line 2" in message and "121-121726-0002.flac" in message
    assert "found no such file" in message


# ---------------------------------------------------------------------------
# VoxCeleb
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("nested", [False, True])
def test_voxceleb_items_and_trials(tmp_path: Path, nested: bool):
    trials = tmp_path / "veri_test.txt"
    make_voxceleb(tmp_path / "vox" / "wav" if nested else tmp_path / "vox", trials)
    dataset = VoxCelebDataset(tmp_path / "vox", trials)
    assert dataset.name == "voxceleb"
    ids = [item.id for item in dataset]
    assert ids == sorted(ids) and len(ids) == 5
    assert ids[0] == "id10270/8jEAjG6SegY/00008"
    assert [item.speaker for item in dataset] == ["id10270", "id10270", "id10300", "id10300", "id10309"]
    assert {item.domain for item in dataset} == {"speech"}
    assert dataset.items[1].metadata == {"video": "x6uYqmx31kE"}
    assert dataset.trials[0] == Trial(1, "id10270/x6uYqmx31kE/00001", "id10270/8jEAjG6SegY/00008")
    assert [t.label for t in dataset.trials] == [1, 0, 1, 0]
    assert dataset.items[0].load().frames == 1600


def test_voxceleb_limit_filters_trials(tmp_path: Path):
    make_voxceleb(tmp_path, tmp_path / "t.txt")
    dataset = VoxCelebDataset(tmp_path, tmp_path / "t.txt", limit=2)
    assert [item.id for item in dataset] == ["id10270/8jEAjG6SegY/00008", "id10270/x6uYqmx31kE/00001"]
    assert dataset.trials == [Trial(1, "id10270/x6uYqmx31kE/00001", "id10270/8jEAjG6SegY/00008")]


@pytest.mark.parametrize(
    "bad_line,expected",
    [
        ("1 id10270/x6uYqmx31kE/00001.wav", ["t.txt, line 3", "expected 3 fields 'label path1 path2'", "found 2"]),
        ("2 id10270/x6uYqmx31kE/00001.wav id10270/8jEAjG6SegY/00008.wav", ["t.txt, line 3", "0 or 1", "found '2'"]),
    ],
)
def test_voxceleb_bad_lines(tmp_path: Path, bad_line: str, expected: list[str]):
    make_voxceleb(tmp_path, tmp_path / "t.txt")
    write_lines(tmp_path / "t.txt", VOX_TRIALS[:2] + [bad_line])
    with pytest.raises(ConfigError) as err:
        VoxCelebDataset(tmp_path, tmp_path / "t.txt")
    for fragment in expected:
        assert fragment in str(err.value)


def test_voxceleb_missing_audio(tmp_path: Path):
    make_voxceleb(tmp_path, tmp_path / "t.txt")
    write_lines(tmp_path / "t.txt", VOX_TRIALS + ["0 id10270/x6uYqmx31kE/00001.wav id10999/abc/00001.wav"])
    with pytest.raises(AudioError) as err:
        VoxCelebDataset(tmp_path, tmp_path / "t.txt")
    message = str(err.value)
    assert "t.txt, line 5" in message and str(tmp_path / "id10999" / "abc" / "00001.wav") in message
    assert "found no such file" in message


def test_voxceleb_missing_trial_list(tmp_path: Path):
    with pytest.raises(ConfigError, match=r"t\.txt: expected a VoxCeleb trial list file, found no such file"):
        VoxCelebDataset(tmp_path, tmp_path / "t.txt")


# ---------------------------------------------------------------------------
# ESC-50
# ---------------------------------------------------------------------------


def test_esc50_items(tmp_path: Path):
    make_esc50(tmp_path)
    dataset = ESC50Dataset(tmp_path)
    assert dataset.name == "esc50"
    assert [item.id for item in dataset] == [row[0][:-4] for row in ESC_ROWS]
    dog = dataset.items[0]
    assert (dog.domain, dog.label, dog.speaker, dog.transcript) == ("audio", "dog", None, None)
    assert dog.metadata == {"fold": 1, "target": 0, "esc10": True, "src_file": "100032", "take": "A"}
    assert dataset.items[1].metadata["esc10"] is False
    assert dog.load().sample_rate == 44100


def test_esc50_folds_and_limit(tmp_path: Path):
    make_esc50(tmp_path)
    assert [item.metadata["fold"] for item in ESC50Dataset(tmp_path, folds=[2, 5])] == [2, 5]
    assert [item.label for item in ESC50Dataset(tmp_path, folds=[1], limit=1)] == ["dog"]


@pytest.mark.parametrize("folds", [[0], [1, 6], []])
def test_esc50_fold_argument_out_of_range(tmp_path: Path, folds: list[int]):
    make_esc50(tmp_path)
    with pytest.raises(ConfigError, match=r"dataset\.folds: expected fold numbers from 1 to 5, found"):
        ESC50Dataset(tmp_path, folds=folds)


def test_esc50_fold_in_csv_out_of_range(tmp_path: Path):
    rows = ESC_ROWS[:2] + [("6-1-A-0.wav", "6", "0", "dog", "True", "1", "A")]
    make_esc50(tmp_path, rows=rows)
    with pytest.raises(ConfigError, match=r"esc50\.csv, line 4: expected fold from 1 to 5, found 6"):
        ESC50Dataset(tmp_path)


def test_esc50_missing_csv(tmp_path: Path):
    (tmp_path / "audio").mkdir()
    with pytest.raises(ConfigError, match=r"esc50\.csv: expected a metadata CSV file, found no such file"):
        ESC50Dataset(tmp_path)


def test_esc50_missing_columns(tmp_path: Path):
    columns = ["filename", "fold", "category", "esc10", "src_file"]
    make_esc50(tmp_path, rows=[(r[0], r[1], r[3], r[4], r[5]) for r in ESC_ROWS], columns=columns)
    with pytest.raises(ConfigError) as err:
        ESC50Dataset(tmp_path)
    message = str(err.value)
    assert "esc50.csv, line 1" in message and "missing target, take" in message
    assert "found columns filename, fold, category, esc10, src_file" in message


def test_esc50_missing_audio(tmp_path: Path):
    make_esc50(tmp_path, skip_audio=("2-102414-B-17.wav",))
    with pytest.raises(AudioError) as err:
        ESC50Dataset(tmp_path)
    message = str(err.value)
    assert "esc50.csv, line 4" in message and str(tmp_path / "audio" / "2-102414-B-17.wav") in message
    assert ESC50Dataset(tmp_path, folds=[1, 3]).items  # the missing clip is in fold 2 only


# ---------------------------------------------------------------------------
# Hydra configs: every conf/dataset/*.yaml composes and instantiates
# ---------------------------------------------------------------------------


def config_fixtures(tmp_path: Path) -> dict[str, dict[str, str]]:
    """For every dataset config, the values for its ``???`` fields, pointing at fixtures."""
    write_tone(tmp_path / "man" / "a.wav")
    make_librispeech(tmp_path / "libri")
    make_voxceleb(tmp_path / "vox", tmp_path / "vox_trials.txt")
    make_esc50(tmp_path / "esc")
    return {
        "demo": {},
        "manifest": {"path": str(write_jsonl(tmp_path / "man" / "m.jsonl", [{"path": "a.wav"}]))},
        "librispeech": {"root": str(tmp_path / "libri")},
        "voxceleb": {"root": str(tmp_path / "vox"), "trials": str(tmp_path / "vox_trials.txt")},
        "esc50": {"root": str(tmp_path / "esc")},
        "folder": {"root": str(tmp_path / "man")},
    }


def test_every_dataset_config_instantiates(tmp_path: Path):
    from hydra import compose, initialize_config_module
    from hydra.utils import get_class, instantiate
    from omegaconf import OmegaConf

    names = sorted(p.stem for p in CONF_DIR.glob("*.yaml"))
    fixtures = config_fixtures(tmp_path)
    assert names == sorted(fixtures), "add a fixture for every conf/dataset/*.yaml"
    with initialize_config_module(config_module="codecbench.conf", version_base="1.3"):
        for name in names:
            overrides = [f"+dataset={name}"] + [f"dataset.{k}={v}" for k, v in fixtures[name].items()]
            bare = compose(overrides=[f"+dataset={name}"]).dataset
            cls = get_class(bare._target_)
            params = inspect.signature(cls.__init__).parameters
            arguments = {k: p for k, p in params.items() if k != "self"}
            keys = set(bare) - {"_target_"}
            assert keys == set(arguments), f"{name}.yaml lists {sorted(keys)}, {cls.__name__} takes {sorted(arguments)}"
            mandatory = {k for k in keys if OmegaConf.is_missing(bare, k)}
            assert mandatory == {k for k, p in arguments.items() if p.default is inspect.Parameter.empty}, name
            assert mandatory == set(fixtures[name]), name
            for key in keys - mandatory:
                assert bare[key] == arguments[key].default, f"{name}.yaml: {key}"
            dataset = instantiate(compose(overrides=overrides).dataset)
            assert isinstance(dataset, cls) and dataset.name == name
            assert len(dataset) > 0


def test_config_overrides_reach_the_constructor(tmp_path: Path):
    from hydra import compose, initialize_config_module
    from hydra.utils import instantiate

    make_esc50(tmp_path / "esc")
    with initialize_config_module(config_module="codecbench.conf", version_base="1.3"):
        cfg = compose(overrides=["+dataset=esc50", f"dataset.root={tmp_path / 'esc'}", "dataset.folds=[1,3]", "dataset.limit=2"])
        dataset = instantiate(cfg.dataset)
    assert [item.metadata["fold"] for item in dataset] == [1, 1]
    assert dataset.folds == [1, 3]
