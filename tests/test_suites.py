"""Suites (conf/suite/): the offline demo suite end to end; the Codec-SUPERB suites compose and
say clearly which data paths they still need."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import compose, run_cli

import codecbench.conf

SUITES = sorted(p.stem for p in (Path(codecbench.conf.__file__).parent / "suite").glob("*.yaml"))


@pytest.mark.parametrize("suite", SUITES)
def test_every_suite_composes(suite):
    cfg = compose([f"suite={suite}"])
    assert cfg.task and cfg.dataset._target_
    rank_task = cfg.report.rank_by.split(".")[0]
    assert rank_task in cfg.task, f"{suite}: report.rank_by names a task the suite does not run"


@pytest.mark.parametrize(
    "suite, missing",
    [
        ("codec_superb_asr", "dataset.root"),
        ("codec_superb_speaker", "dataset.root, dataset.trials"),
        ("codec_superb_emotion", "dataset.path"),
        ("codec_superb_audio_events", "dataset.root"),
    ],
)
def test_codec_superb_suites_name_the_data_they_need(tmp_path, suite, missing):
    result = run_cli("run", f"suite={suite}", f"run_dir={tmp_path / 'r'}", f"paths.cache_dir={tmp_path / 'c'}")
    assert result.returncode == 2
    assert f"missing mandatory config value(s): {missing}" in result.stderr


def test_codec_superb_asr_refuses_a_missing_librispeech_folder(tmp_path):
    result = run_cli("run", "suite=codec_superb_asr", f"dataset.root={tmp_path / 'LibriSpeech'}",
                     f"run_dir={tmp_path / 'r'}", f"paths.cache_dir={tmp_path / 'c'}")
    assert result.returncode == 2 and "LibriSpeech" in result.stderr and "found no such folder" in result.stderr


def test_demo_suite_reports_asr_and_speaker_with_offline_evaluators(tmp_path):
    result = run_cli("run", "suite=demo", "codec=[identity,codec2_700c]", f"run_dir={tmp_path / 'r'}",
                     f"paths.cache_dir={tmp_path / 'c'}")
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    identity, codec2 = (summary["codecs"][c]["metrics"] for c in ("identity", "codec2_700c"))
    asr = identity["asr_pocketsphinx"]
    assert asr["wer"]["mean"] == pytest.approx(asr["wer_ref"]["mean"]) and asr["wer"]["mean"] < 0.35
    assert asr["dwer"]["mean"] == 0.0 and "pocketsphinx" in asr["wer"]["evaluator"]
    assert codec2["asr_pocketsphinx"]["wer"]["mean"] > asr["wer"]["mean"] + 0.1
    assert identity["speaker"]["similarity"]["mean"] == pytest.approx(1.0, abs=1e-4)
    assert identity["speaker"]["eer"]["mean"] < 0.05 and "resemblyzer" in identity["speaker"]["eer"]["evaluator"]
    assert codec2["speaker"]["similarity"]["mean"] < 0.9
    for name in ("cer", "wer_delta"):
        assert name in asr
    assert "signal" in identity
