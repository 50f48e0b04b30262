"""The audio_events task: CLAP and AST at random weights, loaded by path like a hub id.

Nothing can be downloaded here, so both backends are tested with tiny
configs of the real architectures (ClapModel with a byte-level BPE
tokenizer written here and ClapFeatureExtractor; ASTForAudioClassification)
saved to folders and loaded through the same ``from_pretrained`` call a hub
id takes, and compared with transformers' own pipelines.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import DEMO, compose

from codecbench.audio import load_audio, resample
from codecbench.datasets.base import Item
from codecbench.datasets.manifest import ManifestDataset
from codecbench.errors import ConfigError
from codecbench.pipeline import Evaluation
from codecbench.store import read_rows
from codecbench.tasks.audio_events import DEFAULT_TEMPLATE, AudioEventsTask, check_template, clap_phrases
from codecbench.tasks.classification import LabelSpace, normalize_label

import torch
import transformers

#: the demo items audio_events scores: the five freedesktop sounds and the four music pieces.
EVENT_ITEMS = ("fd_bell", "fd_alarm_clock_elapsed", "fd_camera_shutter", "fd_complete", "fd_suspend_error",
               "music_piano", "music_strings", "music_band", "music_ensemble_stereo")
DEMO_LABELS = ("alarm-clock-elapsed", "band", "bell", "camera-shutter", "complete", "ensemble", "piano",
               "strings", "suspend-error")
AST_CLASSES = ("Bell", "Alarm clock", "Camera", "Piano", "Music", "Speech")


def tiny_clap(folder: Path) -> Path:
    """ClapModel (HTSAT audio tower, RoBERTa text tower) of tiny size with random weights, plus its processor.

    The tokenizer is a byte-level BPE over the 256 byte symbols (no merges),
    the layout of the RoBERTa tokenizer CLAP checkpoints ship; the feature
    extractor uses a 1 s window (CLAP's is 10 s) so longer clips exercise
    the random crop; initial weights 5x the default make the predictions of
    so small a model vary across clips.
    """
    from tokenizers.pre_tokenizers import ByteLevel

    symbols = ["<s>", "<pad>", "</s>", "<unk>", "<mask>", *sorted(ByteLevel.alphabet())]
    tokenizer = transformers.RobertaTokenizer(vocab={s: i for i, s in enumerate(symbols)}, merges=[])
    features = transformers.ClapFeatureExtractor(truncation="rand_trunc", max_length_s=1)
    torch.manual_seed(0)
    config = transformers.ClapConfig(
        text_config=dict(vocab_size=len(symbols), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                         intermediate_size=32, max_position_embeddings=80, projection_dim=8, initializer_factor=5.0),
        audio_config=dict(hidden_size=32, depths=[1, 1], num_attention_heads=[1, 2], patch_embeds_hidden_size=16,
                          window_size=8, projection_dim=8, num_mel_bins=64, spec_size=128, enable_fusion=False,
                          initializer_factor=5.0),
        projection_dim=8, initializer_factor=5.0,
    )
    transformers.ClapModel(config).eval().save_pretrained(folder)
    transformers.ClapProcessor(feature_extractor=features, tokenizer=tokenizer).save_pretrained(folder)
    return folder


def tiny_ast(folder: Path) -> Path:
    """ASTForAudioClassification of tiny size (AudioSet-style class names) with random weights."""
    torch.manual_seed(0)
    config = transformers.ASTConfig(
        hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64, max_length=128,
        id2label=dict(enumerate(AST_CLASSES)), label2id={c: i for i, c in enumerate(AST_CLASSES)},
    )
    transformers.ASTForAudioClassification(config).eval().save_pretrained(folder)
    transformers.ASTFeatureExtractor(max_length=128).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def clap_folder(tmp_path_factory) -> Path:
    return tiny_clap(tmp_path_factory.mktemp("clap"))


@pytest.fixture(scope="module")
def ast_folder(tmp_path_factory) -> Path:
    return tiny_ast(tmp_path_factory.mktemp("ast"))


@pytest.fixture(scope="module")
def clap_task(clap_folder) -> AudioEventsTask:
    return AudioEventsTask(model=str(clap_folder), device="cpu", labels=list(DEMO_LABELS))


def demo_item(item_id: str) -> Item:
    record = next(json.loads(line) for line in (DEMO / "manifest.jsonl").read_text().splitlines()
                  if json.loads(line)["id"] == item_id)
    return Item(id=item_id, path=DEMO / record["path"], domain=record["domain"], label=record["label"])


def softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max())
    return e / e.sum()


# -- labels ---------------------------------------------------------------------------------------


def test_labels_compare_across_spellings_and_map_many_to_one():
    assert normalize_label("  Camera_Shutter ") == normalize_label("camera-shutter") == "camera shutter"
    space = LabelSpace(AST_CLASSES, {"Alarm clock": "alarm-clock-elapsed", "Music": "piano", "Piano": "piano"},
                       ["bell", "alarm-clock-elapsed", "piano", "dog"], restrict=True, task="t")
    assert space.labels == ("bell", "alarm-clock-elapsed", "Camera", "piano", "piano", "Speech")
    assert space.knows("BELL") and space.knows("Alarm_Clock_Elapsed") and not space.knows("dog")
    assert space.unreachable == ("dog",)
    # Camera and Speech map to no candidate: never predicted while restricted, even when they score best
    assert space.predict(np.array([0.1, 0.2, 9.0, 0.0, 0.5, 9.0])) == "piano"
    free = LabelSpace(AST_CLASSES, {}, ["bell"], restrict=False, task="t")
    assert free.predict(np.array([0.1, 0.2, 9.0, 0.0, 0.5, 9.0])) == "Camera"  # first of a tie
    with pytest.raises(ConfigError, match="none of the model's 6 classes maps to a candidate label"):
        LabelSpace(AST_CLASSES, {}, ["dog", "rain"], restrict=True, task="t")


def test_clap_phrases_and_template():
    assert clap_phrases(["sea_waves", "dog", "camera-shutter"], {"barking": "dog", "a dog": "dog"}) == (
        "sea waves", "barking", "a dog", "camera shutter")
    assert check_template(DEFAULT_TEMPLATE, "t") == "this is the sound of {label}"
    for bad in ("no field", "{label} and {other}", "{0}"):
        with pytest.raises(ConfigError, match="template"):
            check_template(bad, "t")


# -- CLAP -----------------------------------------------------------------------------------------


def test_clap_scores_equal_the_zero_shot_pipeline(clap_task, clap_folder):
    classifier = clap_task.classifier
    assert classifier.sample_rate == 48000 and classifier.class_names == tuple(
        label.replace("-", " ") for label in DEMO_LABELS)
    assert tuple(classifier.text_embeds.shape) == (len(DEMO_LABELS), 8)  # once per label set, at load
    clip = resample(load_audio(DEMO / "audio" / "fd_camera_shutter.flac"), 48000).samples[0]  # 0.87 s: no crop
    scores = classifier.scores([clip])[0]
    pipe = transformers.pipeline("zero-shot-audio-classification", model=str(clap_folder), device="cpu")
    result = pipe(clip, candidate_labels=list(classifier.class_names),
                  hypothesis_template=DEFAULT_TEMPLATE.replace("{label}", "{}"))
    expected = {r["label"]: r["score"] for r in result}
    np.testing.assert_allclose(softmax(scores), [expected[c] for c in classifier.class_names], atol=1e-5)


def test_clap_crop_of_long_clips_is_seeded_and_batching_changes_nothing(clap_task):
    classifier = clap_task.classifier
    long = resample(load_audio(DEMO / "audio" / "music_piano.flac"), 48000).samples[0]  # 8 s > the 1 s window
    short = resample(load_audio(DEMO / "audio" / "fd_bell.flac"), 48000).samples[0]
    np.random.seed(1)
    state = np.random.get_state()[1].copy()
    first = classifier.scores([long, short, long])
    np.testing.assert_array_equal(np.random.get_state()[1], state)  # global RNG restored
    np.testing.assert_array_equal(first[0], first[2])
    np.random.seed(2)  # whatever the global RNG holds, the crop is the same
    again = classifier.scores([short]) + classifier.scores([long])
    np.testing.assert_allclose(again[1], first[0], atol=1e-5)
    np.testing.assert_allclose(again[0], first[1], atol=1e-5)
    # a different crop gives different scores, so the seed is what makes them equal
    other = classifier.scores([long[48000:]])[0]
    assert not np.allclose(other, first[0], atol=1e-5)


def test_clap_needs_candidate_labels(clap_folder):
    with pytest.raises(ConfigError, match="CLAP zero-shot needs candidate labels"):
        AudioEventsTask(model=str(clap_folder), device="cpu").classifier
    provenance = AudioEventsTask(model=str(clap_folder), device="cpu", labels=["dog"]).evaluator_info()["classifier"]
    assert provenance["prompts"] == ["this is the sound of dog"] and provenance["architecture"] == "ClapModel"
    assert set(provenance["weights_sha256"]) == {"model.safetensors"} and provenance["commit"] is None


# -- AST (supervised backend) ---------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore:At least one mel filter has all zero values")  # AST's own 128-band front end
def test_ast_backend_equals_the_classification_pipeline_with_label_map(ast_folder):
    task = AudioEventsTask(backend="transformers", model=str(ast_folder), device="cpu",
                           label_map={"Alarm clock": "alarm-clock-elapsed", "Camera": "camera-shutter"},
                           labels=list(DEMO_LABELS))
    classifier = task.classifier
    assert classifier.sample_rate == 16000 and classifier.class_names == AST_CLASSES
    items = [demo_item(i) for i in EVENT_ITEMS]
    clips = [resample(load_audio(item.path).mono(), 16000).samples[0] for item in items]
    scores = classifier.scores(clips)
    pipe = transformers.pipeline("audio-classification", model=str(ast_folder), device="cpu")
    for clip, row in zip(clips[:3], scores):
        expected = {r["label"]: r["score"] for r in pipe({"raw": clip, "sampling_rate": 16000}, top_k=6)}
        np.testing.assert_allclose(softmax(row), [expected[c] for c in AST_CLASSES], atol=1e-5)
    rows = task.score_batch([(load_audio(i.path), load_audio(i.path), i) for i in items])
    allowed = {"bell", "alarm-clock-elapsed", "camera-shutter", "piano"}  # Music and Speech map to no candidate
    for item, row, s in zip(items, rows, scores):
        assert row.extra["prediction"] in allowed and row.values["agreement"] == 1.0
        best = max((i for i, c in enumerate(task.label_space.labels) if c in allowed), key=lambda i: s[i])
        assert row.extra["prediction"] == task.label_space.labels[best]
        if item.label in allowed:
            assert row.values["accuracy"] == float(row.extra["prediction"] == item.label)
        else:  # "band", "complete", ...: no AST class maps to them here
            assert "accuracy" in row.failures and "accuracy" not in row.values


# -- the whole pipeline ---------------------------------------------------------------------------


def _event_manifest(tmp_path: Path) -> Path:
    """The demo's nine labelled sound and music items and one speech item, as a manifest."""
    records = {json.loads(line)["id"]: json.loads(line) for line in (DEMO / "manifest.jsonl").read_text().splitlines()}
    lines = []
    for item_id in (*EVENT_ITEMS, "flite_awb_h02s03"):
        record = dict(records[item_id], path=str(DEMO / records[item_id]["path"]))
        lines.append(json.dumps(record))
    path = tmp_path / "manifest.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_pipeline_run_on_demo_sounds_and_music(tmp_path, clap_folder):
    manifest = _event_manifest(tmp_path)
    assert len(ManifestDataset(manifest)) == 10
    cfg = compose([
        "dataset=manifest", f"dataset.path={manifest}", "codec=[identity,opus_12k]", "task=[audio_events]",
        f"task.audio_events.model={clap_folder}", "task.audio_events.device=cpu",
        f"paths.cache_dir={tmp_path / 'cache'}", "progress=false", "batch_size=5",
    ])
    summary = Evaluation(cfg, tmp_path / "run").run()
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert tuple(run["tasks"]["audio_events"]["params"]["labels"]) == DEMO_LABELS  # the dataset's labels
    rows = [r for r in read_rows(tmp_path / "run") if r["task"] == "audio_events"]
    speech = [r for r in rows if r["item"] == "flite_awb_h02s03"]
    assert [r["values"] for r in speech] == [{}, {}]  # not a domain of this task
    for codec in ("identity", "opus_12k"):
        mine = [r for r in rows if r["codec"] == codec and r["domain"] != "speech"]
        assert len(mine) == 9 and all(r["status"] == "ok" and r["extra"]["prediction"] in DEMO_LABELS for r in mine)
        metrics = summary["codecs"][codec]["metrics"]["audio_events"]
        correct = [r["extra"]["prediction"] == r["extra"]["label"] for r in mine]
        correct_ref = [r["extra"]["prediction_ref"] == r["extra"]["label"] for r in mine]
        agree = [r["extra"]["prediction"] == r["extra"]["prediction_ref"] for r in mine]
        assert metrics["accuracy"]["mean"] == pytest.approx(np.mean(correct)) and metrics["accuracy"]["n"] == 9
        assert metrics["accuracy_ref"]["mean"] == pytest.approx(np.mean(correct_ref))
        assert metrics["accuracy_delta"]["mean"] == pytest.approx(np.mean(correct) - np.mean(correct_ref))
        assert metrics["agreement"]["mean"] == pytest.approx(np.mean(agree)) and metrics["agreement"]["n"] == 9
        assert {d: e["n"] for d, e in metrics["agreement"]["by_domain"].items()} == {"audio": 5, "music": 4}
    identity = summary["codecs"]["identity"]["metrics"]["audio_events"]
    assert identity["agreement"]["mean"] == 1.0 and identity["accuracy_delta"]["mean"] == 0.0
    # the reference predictions do not depend on the codec
    ref = {(r["codec"], r["item"]): r["extra"]["prediction_ref"] for r in rows if r["domain"] != "speech"}
    assert all(ref[("identity", i)] == ref[("opus_12k", i)] for i in EVENT_ITEMS)
