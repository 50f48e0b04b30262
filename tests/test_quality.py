"""The quality task: equal to speechmos, consistent ref/reconstruction/delta, pinned, failing loudly."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from importlib import resources
from importlib.metadata import version
from pathlib import Path

import numpy as np
import pytest

from conftest import add_noise, smear_and_quantize

import codecbench
from codecbench.audio import Audio, load_audio, resample
from codecbench.errors import ConfigError
from codecbench.tasks.quality import METRIC_NAMES, PLCMOS_SEED, SCORE_NAMES, SCORES, QualityTask

from speechmos import dnsmos, plcmos  # noqa: E402  (the test extra installs speechmos)

DEMO = Path(codecbench.__file__).parent / "data" / "demo"


@pytest.fixture(scope="module")
def task() -> QualityTask:
    return QualityTask()


def speechmos_direct(samples: np.ndarray) -> dict[str, float]:
    """speechmos' own entry points on a mono 16 kHz array, by base score name."""
    scores = dnsmos.run(samples, 16000)
    np.random.seed(PLCMOS_SEED)
    scores = {**scores, "plcmos": plcmos.run(samples, 16000)["plcmos"]}
    return {score.name: float(scores[score.key]) for score in SCORES}


# -- (1) equal to speechmos; reference, reconstruction and delta consistent ---------


def test_values_equal_speechmos_and_delta_is_the_difference(task, demo_items):
    """A stereo 48 kHz copy of a demo utterance: downmixed, resampled once to 16 kHz, then speechmos."""
    item = demo_items["librivox_m1_0880"]
    x48 = resample(load_audio(item.path), 48000).samples[0]
    reference = Audio(np.stack([x48, 0.6 * x48]), 48000)
    reconstruction = add_noise(reference, 15.0, seed=8)

    row = task.score(reference, reconstruction, item)

    assert row.failures == {} and set(row.values) == set(METRIC_NAMES)
    expected_ref = speechmos_direct(resample(reference.mono(), 16000).samples[0])
    expected_rec = speechmos_direct(resample(reconstruction.mono(), 16000).samples[0])
    for name in SCORE_NAMES:
        assert row.values[name] == expected_rec[name], name
        assert row.values[f"{name}_ref"] == expected_ref[name], name
        assert row.values[f"{name}_delta"] == row.values[name] - row.values[f"{name}_ref"], name
    assert row.values["dnsmos_ovrl_delta"] < 0 and row.values["dnsmos_bak_delta"] < 0


# -- (2) pinned values (guard against drift of speechmos, its models, onnxruntime) ---

PINNED = {
    "dnsmos_sig": 3.437968, "dnsmos_sig_ref": 3.561031,
    "dnsmos_bak": 3.523696, "dnsmos_bak_ref": 3.552939,
    "dnsmos_ovrl": 2.900442, "dnsmos_ovrl_ref": 3.015593,
    "dnsmos_p808": 3.145875, "dnsmos_p808_ref": 3.306528,
    "plcmos": 3.638555, "plcmos_ref": 4.457361,
}  # fmt: skip


def test_pinned_values(task, demo_items):
    item = demo_items["librivox_m1_0880"]
    reference = load_audio(item.path)
    row = task.score(reference, smear_and_quantize(reference), item)
    assert row.failures == {}
    assert {name: row.values[name] for name in PINNED} == pytest.approx(PINNED, abs=1e-4)
    for name in SCORE_NAMES:
        assert row.values[f"{name}_delta"] == pytest.approx(PINNED[name] - PINNED[f"{name}_ref"], abs=2e-4)


# -- (3) identity has delta 0; added noise lowers BAK and OVRL -----------------------


def test_identity_has_zero_delta_and_noise_lowers_bak_and_ovrl(task, demo_items):
    item = demo_items["flite_slt_h02s03"]
    reference = load_audio(item.path)

    clean = task.score(reference, reference, item).values
    noisy = task.score(reference, add_noise(reference, 5.0, seed=2), item).values

    for name in SCORE_NAMES:
        assert clean[f"{name}_delta"] == 0.0 and clean[name] == clean[f"{name}_ref"] == noisy[f"{name}_ref"]
    for name in ("dnsmos_bak", "dnsmos_ovrl"):
        assert noisy[name] < clean[name] - 0.5, name
        assert noisy[f"{name}_delta"] < -0.5, name
    ranges = {metric.name: metric.range for metric in task.metrics}
    for name, value in {**clean, **noisy}.items():
        assert ranges[name][0] <= value <= ranges[name][1], (name, value)


def test_reference_is_scored_once_per_item_across_codecs(demo_items, monkeypatch):
    """Two reconstructions of one item (two codecs): each predictor sees the reference once."""
    task = QualityTask(scores=["dnsmos_ovrl", "plcmos"])
    seen: list[tuple[str, str]] = []
    for name, predictor in task.predictors.items():
        real = predictor.predict

        def spy(samples, name=name, real=real):  # records, then runs the real model
            seen.append((name, hashlib.sha256(samples.tobytes()).hexdigest()[:8]))
            return real(samples)

        monkeypatch.setattr(predictor, "predict", spy)
    item = demo_items["flite_kal16_h02s03"]
    reference = load_audio(item.path)
    first = task.score(reference, add_noise(reference, 10.0, seed=1), item).values
    second = task.score(reference, add_noise(reference, 20.0, seed=1), item).values

    digest = hashlib.sha256(reference.samples[0].tobytes()).hexdigest()[:8]
    assert sorted(seen).count(("dnsmos", digest)) == 1 and sorted(seen).count(("plcmos", digest)) == 1
    assert len(seen) == 6  # the reference and two reconstructions, per predictor
    assert first["dnsmos_ovrl_ref"] == second["dnsmos_ovrl_ref"] and first["plcmos_ref"] == second["plcmos_ref"]
    assert second["dnsmos_ovrl"] > first["dnsmos_ovrl"]


def test_plcmos_seeding_restores_the_global_rng(demo_items):
    task = QualityTask(scores=["plcmos"])
    item = demo_items["flite_awb_h02s03"]
    audio = load_audio(item.path)
    np.random.seed(1234)
    expected_next = np.random.random(3)
    np.random.seed(1234)
    values = [task.score(audio, add_noise(audio, 10.0, seed=s), item).values["plcmos"] for s in (0, 0)]
    np.testing.assert_array_equal(np.random.random(3), expected_next)  # the caller's stream is untouched
    assert values[0] == values[1]  # the same raters every call: reproducible


# -- (4) failures are recorded with reasons, never turned into numbers --------------


def test_too_short_clip_gives_failures_with_reasons(task, demo_items):
    item = demo_items["librivox_m1_0880"]
    short = Audio(load_audio(item.path).samples[:, 16000:24000], 16000)  # 0.5 s of speech
    row = task.score(short, short, item)
    assert row.values == {}
    assert set(row.failures) == set(METRIC_NAMES)
    for reason in row.failures.values():
        assert "min_seconds=1.0 s" in reason and "found 0.500 s" in reason


def test_plcmos_error_on_a_tiny_clip_is_recorded(demo_items):
    """Below about 0.1 s PLCMOS' network fails; DNSMOS (repeating the clip) still gives numbers."""
    task = QualityTask(scores=["dnsmos_ovrl", "plcmos"], min_seconds=0.0)
    item = demo_items["librivox_m1_0880"]
    tiny = Audio(load_audio(item.path).samples[:, 16000:16800], 16000)  # 0.05 s
    row = task.score(tiny, tiny, item)
    assert set(row.values) == {"dnsmos_ovrl", "dnsmos_ovrl_ref", "dnsmos_ovrl_delta"}
    assert set(row.failures) == {"plcmos", "plcmos_ref", "plcmos_delta"}
    for reason in row.failures.values():
        assert "plcmos on the" in reason and "INVALID_ARGUMENT" in reason and "0.050 s" in reason


def test_reconstruction_beyond_full_scale_is_clipped_not_refused(demo_items):
    """speechmos refuses |x| > 1; the task scores what a 16-bit PCM file would hold: the clipped signal."""
    task = QualityTask(scores=["dnsmos_bak", "plcmos"])
    item = demo_items["codec2_f1_h01s02"]
    reference = load_audio(item.path)
    loud = Audio(reference.samples / np.abs(reference.samples).max() * 1.2, 16000)  # peak 1.2
    with pytest.raises(ValueError, match="between -1 and 1"):
        dnsmos.run(loud.samples[0], 16000)

    row = task.score(reference, loud, item)

    assert row.failures == {}
    expected = speechmos_direct(np.clip(loud.samples[0], -1.0, 1.0))
    assert row.values["dnsmos_bak"] == expected["dnsmos_bak"] and row.values["plcmos"] == expected["plcmos"]
    assert "clipped to [-1, 1]" in task.evaluator_info()["plcmos"]["input_range"]


def test_silent_reconstruction_gives_failures(task, demo_items):
    item = demo_items["librivox_m1_0880"]
    audio = load_audio(item.path)
    row = task.score(audio, Audio(np.zeros_like(audio.samples), 16000), item)
    assert row.values == {} and set(row.failures) == set(METRIC_NAMES)
    assert all("all-silent" in reason for reason in row.failures.values())


# -- (5) speech only -------------------------------------------------------------------


@pytest.mark.parametrize("item_id", ["music_ensemble_stereo", "fd_alarm_clock_elapsed"])
def test_non_speech_items_get_no_values_and_no_failures(task, demo_items, item_id):
    item = demo_items[item_id]
    audio = load_audio(item.path)
    row = task.score(audio, add_noise(audio, 10.0, seed=3), item)
    assert row.values == {} and row.failures == {}


# -- (6) declarations, provenance, configuration --------------------------------------


def test_declarations_and_provenance(task):
    cards = task.cards()
    assert list(cards) == list(METRIC_NAMES) and len(METRIC_NAMES) == 15
    for name, card in cards.items():
        assert card["domains"] == ["speech"] and card["sample_rate"] == 16000 and card["higher_is_better"] is True
        assert card["unit"] == ("MOS difference" if name.endswith("_delta") else "MOS")
        assert card["range"] == ([-4.0, 4.0] if name.endswith("_delta") else [1.0, 5.0])
        assert card["evaluator"].startswith(f"speechmos=={version('speechmos')} ")
        assert f"onnxruntime=={version('onnxruntime')}" in card["evaluator"]

    info = task.evaluator_info()
    root = Path(dnsmos.__file__).parent
    for name, files in {
        "dnsmos_p808_ref": ["dnsmos_models/sig_bak_ovr.onnx", "dnsmos_models/model_v8.onnx"],
        "plcmos_delta": ["plcmos_models/plcmos_v2.onnx"],
    }.items():
        assert info[name]["models"] == {f: hashlib.sha256((root / f).read_bytes()).hexdigest() for f in files}
        assert info[name]["version"] == version("speechmos") and info[name]["sample_rate"] == 16000
    assert info["dnsmos_p808_ref"]["of"] == "reference" and info["plcmos_delta"]["of"] == "reconstruction - reference"
    assert "seeded with 0" in info["plcmos"]["rater_embeddings"]
    assert task.params() == {"scores": list(SCORE_NAMES), "min_seconds": 1.0}


def test_subset_loads_only_its_predictor_and_unknown_names_are_listed():
    only = QualityTask(scores="plcmos")
    assert list(only.predictors) == ["plcmos"] and [m.name for m in only.metrics] == [
        "plcmos", "plcmos_ref", "plcmos_delta"
    ]  # fmt: skip
    with pytest.raises(ConfigError, match="unknown metric 'dnsmos_mos'.*dnsmos_sig, dnsmos_bak"):
        QualityTask(scores=["dnsmos_mos"])
    with pytest.raises(ConfigError, match="min_seconds >= 0"):
        QualityTask(min_seconds=-1)


def test_evaluator_imports_lazily_and_yaml_instantiates():
    code = "import sys, codecbench.tasks.quality; assert not {'speechmos', 'onnxruntime', 'librosa'} & set(sys.modules)"
    subprocess.run([sys.executable, "-c", code], check=True)

    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    config = OmegaConf.load(resources.files("codecbench.conf") / "task" / "quality.yaml")
    task = instantiate(config)
    assert isinstance(task, QualityTask) and task.params() == {"scores": list(SCORE_NAMES), "min_seconds": 1.0}


def test_missing_speechmos_names_the_extra(monkeypatch):
    from codecbench.errors import CodecbenchError

    monkeypatch.setitem(sys.modules, "speechmos.plcmos", None)  # as if not installed: import raises ImportError
    with pytest.raises(CodecbenchError, match=r"codecbench\[quality\]"):
        QualityTask(scores=["plcmos"])
