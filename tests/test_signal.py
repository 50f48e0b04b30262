"""The signal task: PESQ (wb, nb) and STOI equal to the reference packages, pinned, and failing loudly.

The task's other metrics (ESTOI and the NumPy ones) are tested in test_signal_metrics.py.
"""

from __future__ import annotations

import re
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
from codecbench.errors import CodecbenchError, ConfigError
from codecbench.tasks.signal import METRIC_NAMES, SignalPair, SignalTask

import pesq
import pystoi

DEMO = Path(codecbench.__file__).parent / "data" / "demo"

#: the metrics computed by the pesq and pystoi packages, this file's subject.
PACKAGE_METRICS = ("pesq_wb", "pesq_nb", "stoi")


@pytest.fixture(scope="module")
def task() -> SignalTask:
    return SignalTask(metrics=PACKAGE_METRICS)


def mono_at(audio: Audio, rate: int) -> np.ndarray:
    return resample(audio.mono(), rate).samples[0]


# -- (1) equal to the reference packages --------------------------------------------


@pytest.mark.parametrize(
    "item_id, snr_db", [("librivox_m1_0880", 10.0), ("flite_awb_h02s03", 20.0), ("codec2_f1_h01s02", 5.0)]
)
def test_values_equal_reference_packages(task, demo_items, item_id, snr_db):
    item = demo_items[item_id]
    reference = load_audio(item.path)
    assert reference.sample_rate == 16000
    reconstruction = add_noise(reference, snr_db, seed=7)

    row = task.score(reference, reconstruction, item)

    assert row.failures == {}
    assert row.values["pesq_wb"] == pesq.pesq(16000, reference.samples[0], reconstruction.samples[0], "wb")
    assert row.values["pesq_nb"] == pesq.pesq(8000, mono_at(reference, 8000), mono_at(reconstruction, 8000), "nb")
    # up to the last bits, which multithreaded BLAS (pystoi's matmul) may vary from call to call
    # pystoi is handed the item-rate signals and resamples them itself, as a direct call does
    expected_stoi = pystoi.stoi(reference.samples[0], reconstruction.samples[0], 16000)
    assert row.values["stoi"] == pytest.approx(expected_stoi, rel=1e-12)


# -- (2) pinned values (guard against drift of pesq, pystoi, soxr; STOI since pystoi resamples itself) --

PINNED = {
    "librivox_m1_0880": {"pesq_wb": 2.466372, "pesq_nb": 3.983160, "stoi": 0.996266},
    "flite_slt_h02s03": {"pesq_wb": 2.688905, "pesq_nb": 4.162343, "stoi": 0.986093},
}


@pytest.mark.parametrize("item_id", sorted(PINNED))
def test_pinned_values(task, demo_items, item_id):
    item = demo_items[item_id]
    reference = load_audio(item.path)
    row = task.score(reference, smear_and_quantize(reference), item)
    assert row.failures == {}
    assert row.values == pytest.approx(PINNED[item_id], abs=2e-6)


# -- (3) identity is best; more noise is worse --------------------------------------


def test_identity_scores_best_and_noise_lowers_scores(task, demo_items):
    item = demo_items["librivox_m1_0930"]
    reference = load_audio(item.path)

    clean = task.score(reference, reference, item).values
    assert clean["pesq_wb"] == pytest.approx(4.644, abs=1e-3)
    assert clean["pesq_nb"] == pytest.approx(4.549, abs=1e-3)
    assert clean["stoi"] == pytest.approx(1.0, abs=1e-6)

    mild = task.score(reference, add_noise(reference, 25.0, seed=1), item).values
    heavy = task.score(reference, add_noise(reference, 0.0, seed=1), item).values
    for name in PACKAGE_METRICS:
        assert clean[name] > mild[name] > heavy[name], name


def test_values_stay_in_declared_ranges_beyond_nominal_ones(task, demo_items):
    """pesq_wb on speech drowned in noise goes below the nominal 1.04; STOI can go below 0."""
    item = demo_items["librivox_m1_0880"]
    reference = load_audio(item.path)
    drowned = add_noise(reference, -20.0, seed=0)  # pesq_wb 1.023
    ranges = {metric.name: metric.range for metric in task.metrics}

    low = task.score(reference, drowned, item).values
    assert low["pesq_wb"] < 1.04
    for name, value in low.items():
        assert ranges[name][0] <= value <= ranges[name][1], (name, value)

    # an envelope-inverted copy: the band envelopes anti-correlate with the reference's
    x = mono_at(reference, 10000).astype(np.float64)
    envelope = np.sqrt(np.convolve(x**2, np.ones(256) / 256, "same")) + 1e-4
    inverted = x / envelope**3
    inverted = Audio((inverted / np.abs(inverted).max()).astype(np.float32), 10000)
    value = SignalTask(metrics=["stoi"]).score(Audio(x.astype(np.float32), 10000), inverted, item).values["stoi"]
    assert ranges["stoi"][0] <= value < 0.0


# -- (4) speech metrics do not apply to music and general audio ---------------------


@pytest.mark.parametrize("item_id", ["music_piano", "music_ensemble_stereo", "fd_camera_shutter"])
def test_non_speech_items_get_no_values_and_no_failures(task, demo_items, item_id):
    item = demo_items[item_id]
    assert item.domain in ("music", "audio")
    audio = load_audio(item.path)
    row = task.score(audio, add_noise(audio, 10.0, seed=3), item)
    assert row.values == {}
    assert row.failures == {}


# -- (5) silent or too-short input is a recorded failure, never a number ------------


def _silent(audio: Audio) -> Audio:
    return Audio(np.zeros_like(audio.samples), audio.sample_rate)


@pytest.mark.parametrize("silent_side", ["reconstruction", "reference"])
def test_silent_signal_gives_failures_with_reasons(task, demo_items, silent_side):
    item = demo_items["librivox_m1_0880"]
    audio = load_audio(item.path)
    pair = (audio, _silent(audio)) if silent_side == "reconstruction" else (_silent(audio), audio)

    row = task.score(*pair, item)

    assert row.values == {}
    assert set(row.failures) == set(PACKAGE_METRICS)
    for reason in row.failures.values():
        assert "all-silent" in reason and f"{silent_side} of item 'librivox_m1_0880'" in reason


def test_too_short_clip_gives_failures_with_reasons(task, demo_items):
    item = demo_items["librivox_m1_0880"]
    audio = load_audio(item.path)
    short = Audio(audio.samples[:, 16000 : 16000 + 1600], 16000)  # 0.1 s of speech
    assert np.any(short.samples)

    row = task.score(short, add_noise(short, 20.0, seed=5), item)

    assert row.values == {}
    assert set(row.failures) == set(PACKAGE_METRICS)
    assert "BufferTooShortError" in row.failures["pesq_wb"] and "0.100 s" in row.failures["pesq_wb"]
    assert "BufferTooShortError" in row.failures["pesq_nb"]
    assert "30 non-silent STFT frames" in row.failures["stoi"]


def test_clip_too_short_for_stoi_only(demo_items):
    """0.3 s passes pesq's 1/4 s minimum but not STOI's 30 frames: pystoi's 1e-5 is not reported."""
    item = demo_items["librivox_m1_0880"]
    audio = load_audio(item.path)
    short = Audio(audio.samples[:, 16000 : 16000 + 4800], 16000)
    task = SignalTask(metrics=["stoi"])
    with pytest.warns(RuntimeWarning, match="Not enough STFT frames"):  # pystoi itself returns 1e-5
        assert pystoi.stoi(short.samples[0], short.samples[0], 16000) == 1e-5
    row = task.score(short, short, item)
    assert row.values == {}
    assert "30 non-silent STFT frames" in row.failures["stoi"]


# -- (6) multichannel input is downmixed --------------------------------------------


def test_stereo_speech_is_downmixed(task, demo_items):
    item = demo_items["flite_rms_h02s03"]
    mono = load_audio(item.path)
    offset = add_noise(mono, 15.0, seed=11).samples[0] - mono.samples[0]
    stereo_reference = Audio(np.stack([mono.samples[0], 0.5 * mono.samples[0]]), 16000)
    stereo_reconstruction = Audio(np.stack([mono.samples[0] + offset, mono.samples[0] - offset]), 16000)

    stereo = task.score(stereo_reference, stereo_reconstruction, item).values
    downmixed = task.score(
        Audio(stereo_reference.samples.mean(axis=0), 16000),
        Audio(stereo_reconstruction.samples.mean(axis=0), 16000),
        item,
    ).values
    first_channel = task.score(stereo_reference.channel(0), stereo_reconstruction.channel(0), item).values

    assert stereo == downmixed
    pair = SignalPair(stereo_reference, stereo_reconstruction, item.id)  # one resampling per rate
    assert pair.mono_at(8000)[0] is pair.mono_at(8000)[0]
    np.testing.assert_array_equal(pair.mono_at(8000)[1], mono_at(stereo_reconstruction, 8000))
    assert stereo["pesq_wb"] > first_channel["pesq_wb"]  # the downmix cancels the noise


def test_a_downmix_that_cancels_is_a_silent_signal_failure_naming_the_item(task, demo_items):
    item = demo_items["flite_rms_h02s03"]
    mono = load_audio(item.path)
    cancelling = Audio(np.stack([mono.samples[0], -mono.samples[0]]), 16000)  # each channel has signal; the mean is 0
    row = task.score(mono, cancelling, item)
    assert not row.values and set(row.failures) == {m.name for m in task.metrics if m.applies_to("speech")}
    assert all(
        f"reconstruction of item {item.id!r}: expected a signal, found all-silent audio" in reason
        for reason in row.failures.values()
    )


# -- (7) configuration ---------------------------------------------------------------


def test_unknown_metric_lists_valid_names():
    with pytest.raises(ConfigError, match="unknown metric 'pesq_xb'") as info:
        SignalTask(metrics=["pesq_wb", "pesq_xb"])
    assert "pesq_wb, pesq_nb, stoi" in str(info.value)
    with pytest.raises(ConfigError, match="at least one"):
        SignalTask(metrics=[])


def test_metric_subset_params_and_provenance(demo_items):
    task = SignalTask(metrics=["stoi", "pesq_nb"])
    assert [m.name for m in task.metrics] == ["stoi", "pesq_nb"]
    assert task.params() == {"metrics": ["stoi", "pesq_nb"]}
    info = task.evaluator_info()
    assert info["stoi"]["package"] == "pystoi" and info["stoi"]["version"] == version("pystoi")
    assert info["stoi"]["sample_rate"] == 10000 and info["stoi"]["resampler"].startswith("pystoi.utils.resample_oct")
    assert info["pesq_nb"]["version"] == version("pesq") and info["pesq_nb"]["mode"] == "nb"
    assert info["pesq_nb"]["resampler"]["library"] == "soxr"
    evaluators = {m.name: m.evaluator for m in task.metrics}
    assert evaluators["pesq_nb"].startswith(f"pesq=={version('pesq')} ") and "P.862.1" in evaluators["pesq_nb"]
    assert {m.name: m.sample_rate for m in task.metrics} == {"stoi": 10000, "pesq_nb": 8000}

    item = demo_items["flite_kal16_h02s03"]
    audio = load_audio(item.path)
    assert set(task.score(audio, add_noise(audio, 10.0, seed=2), item).values) == {"stoi", "pesq_nb"}


def test_evaluators_import_lazily_and_missing_ones_name_the_extra(monkeypatch):
    code = "import sys, codecbench.tasks.signal; assert not {'pesq', 'pystoi'} & set(sys.modules)"
    subprocess.run([sys.executable, "-c", code], check=True)

    monkeypatch.setitem(sys.modules, "pystoi", None)  # as if not installed: import raises ImportError
    with pytest.raises(CodecbenchError, match=r"'pystoi'.*codecbench\[signal\]"):
        SignalTask(metrics=["stoi"])
    assert [m.name for m in SignalTask(metrics=["pesq_wb"]).metrics] == ["pesq_wb"]


def test_yaml_config_instantiates_the_task():
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    config = OmegaConf.load(resources.files("codecbench.conf") / "task" / "signal.yaml")
    task = instantiate(config)
    assert isinstance(task, SignalTask) and task.name == "signal"
    assert task.params() == {"metrics": list(config.metrics)} and set(config.metrics) <= set(METRIC_NAMES)
    comment = (resources.files("codecbench.conf") / "task" / "signal.yaml").read_text()
    assert set(METRIC_NAMES) <= set(re.findall(r"\w+", comment))  # every metric is listed where users choose them


# -- (8) summary ---------------------------------------------------------------------


def test_summarize_matches_rows(task, demo_items):
    ids = ["librivox_m1_0880", "flite_slt_h04s06", "festival_slt_hts_h05s02", "codec2_m1_h01s03"]
    rows, domains = [], {}
    for seed, item_id in enumerate(ids):
        item = demo_items[item_id]
        audio = load_audio(item.path)
        reconstruction = _silent(audio) if item_id == "codec2_m1_h01s03" else add_noise(audio, 10.0, seed=seed)
        row = task.score(audio, reconstruction, item)
        rows.append({"item": item_id, "status": "ok", "values": row.values, "failures": row.failures})
        domains[item_id] = item.domain
    rows.append({"item": "flite_awb_h05s02", "status": "failed", "values": {}, "failures": {}})  # codec failed
    rows.append({"item": "music_band", "status": "ok", "values": {}, "failures": {}})
    domains.update({"flite_awb_h05s02": "speech", "music_band": "music"})

    summary = task.summarize(task.cards(), rows, domains)

    assert set(summary) == set(PACKAGE_METRICS)
    for metric in task.metrics:
        values = [row["values"][metric.name] for row in rows if metric.name in row["values"]]
        entry = summary[metric.name]
        assert entry["n"] == len(values) == 3
        assert entry["n_failed"] == 2  # the silent reconstruction and the failed row; music does not count
        assert entry["mean"] == pytest.approx(np.mean(values))
        assert min(values) <= entry["ci_low"] <= entry["mean"] <= entry["ci_high"] <= max(values)
        assert entry["range"] == list(metric.range) and entry["evaluator"] == metric.evaluator
        assert entry["domains"] == ["speech"] and entry["higher_is_better"] is True
