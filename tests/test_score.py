"""`codecbench score REF_DIR DEG_DIR`: reconstructions decoded elsewhere, scored like a run."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from conftest import DEMO, run_cli

from codecbench.audio import Audio, load_audio, resample, save_audio
from codecbench.store import read_rows

ITEMS = ["librivox_m1_0880", "flite_awb_h04s06", "codec2_f1_h01s02", "flite_rms_h05s02"]


def _noisy(audio: Audio, snr_db: float, seed: int) -> Audio:
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal(audio.samples.shape).astype(np.float32)
    scale = np.sqrt(np.mean(audio.samples**2) / np.mean(noise**2) / 10 ** (snr_db / 10))
    return Audio(audio.samples + scale * noise, audio.sample_rate)


@pytest.fixture
def folders(tmp_path):
    """REF_DIR with four demo items (one in a subfolder); DEG_DIR with noisy copies: one
    delayed by 80 samples, one at 8 kHz, one missing, plus one file with no reference."""
    ref, deg = tmp_path / "ref", tmp_path / "my_codec"
    for index, item in enumerate(ITEMS):
        sub = "sub/" if index == 0 else ""
        (ref / sub).mkdir(parents=True, exist_ok=True)
        shutil.copy(DEMO / "audio" / f"{item}.flac", ref / sub / f"{item}.flac")
        if item == "flite_rms_h05s02":
            continue  # no reconstruction for this one
        noisy = _noisy(load_audio(DEMO / "audio" / f"{item}.flac"), 20.0, index)
        if item == "flite_awb_h04s06":
            noisy = Audio(np.pad(noisy.samples, ((0, 0), (80, 0)))[:, : noisy.frames], noisy.sample_rate)
        if item == "codec2_f1_h01s02":
            noisy = resample(noisy, 8000)
        (deg / sub).mkdir(parents=True, exist_ok=True)
        save_audio(deg / sub / f"{item}.wav", noisy)
    save_audio(deg / "stray.wav", Audio(np.ones(800, dtype=np.float32) * 0.1, 16000))
    return ref, deg


def test_score_pairs_files_and_records_what_does_not_match(tmp_path, folders):
    ref, deg = folders
    result = run_cli("score", str(ref), str(deg), f"run_dir={tmp_path / 'run'}", "max_failure_fraction=0.5")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "1 references without a reconstruction: flite_rms_h05s02" in result.stderr
    assert "1 reconstructions without a reference: stray.wav" in result.stderr
    rows = {(r["item"], r["task"]): r for r in read_rows(tmp_path / "run")}
    assert {r["codec"] for r in rows.values()} == {"my_codec"}

    missing = rows[("flite_rms_h05s02", "signal")]
    assert missing["status"] == "failed" and "expected a reconstruction" in missing["error"]

    # the value equals PESQ on the reference and the file as it was decoded elsewhere
    import pesq

    reference = load_audio(ref / "sub" / "librivox_m1_0880.flac")
    decoded = load_audio(deg / "sub" / "librivox_m1_0880.wav")
    expected = pesq.pesq(16000, reference.samples[0], decoded.samples[0], "wb")
    assert rows[("sub/librivox_m1_0880", "signal")]["values"]["pesq_wb"] == pytest.approx(expected, abs=1e-9)

    delayed = rows[("flite_awb_h04s06", "codec")]
    assert delayed["values"]["residual_delay_samples"] == 80 and delayed["values"]["applied_shift_samples"] == 0
    assert rows[("codec2_f1_h01s02", "codec")]["info"]["resampled"] is True

    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    entry = summary["codecs"]["my_codec"]
    assert entry["measured_kbps"] is None and entry["nominal_kbps"] is None
    assert entry["metrics"]["signal"]["pesq_wb"]["n"] == 3 and entry["metrics"]["signal"]["pesq_wb"]["n_failed"] == 1
    record = json.loads((tmp_path / "run" / "run.json").read_text())
    assert record["codecs"]["my_codec"]["source"] == "folder"
    assert record["codecs"]["my_codec"]["unmatched_files"] == ["stray.wav"]


def test_score_align_removes_measured_delay(tmp_path, folders):
    ref, deg = folders
    plain = run_cli("score", str(ref), str(deg), f"run_dir={tmp_path / 'plain'}", "max_failure_fraction=0.5")
    aligned = run_cli("score", str(ref), str(deg), f"run_dir={tmp_path / 'aligned'}", "align=true",
                      "name=shifted", "max_failure_fraction=0.5")
    assert plain.returncode == 0 and aligned.returncode == 0, aligned.stderr[-2000:]
    before = {(r["item"], r["task"]): r for r in read_rows(tmp_path / "plain")}
    after = {(r["item"], r["task"]): r for r in read_rows(tmp_path / "aligned")}
    assert after[("flite_awb_h04s06", "codec")]["values"]["applied_shift_samples"] == 80
    assert abs(after[("flite_awb_h04s06", "codec")]["values"]["residual_delay_samples"]) == 0
    assert after[("flite_awb_h04s06", "signal")]["values"]["stoi"] > before[("flite_awb_h04s06", "signal")]["values"]["stoi"] + 0.02
    assert {r["codec"] for r in after.values()} == {"shifted"}


def test_score_usage_and_missing_folders(tmp_path):
    usage = run_cli("score", str(tmp_path))
    assert usage.returncode == 2 and "usage: codecbench score REF_DIR DEG_DIR" in usage.stderr
    missing = run_cli("score", str(tmp_path / "nope"), str(tmp_path), f"run_dir={tmp_path / 'r'}")
    assert missing.returncode == 2 and "nope: expected the audio folder, found no such folder" in missing.stderr
