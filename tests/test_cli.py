"""End to end through the `codecbench` command: the default run, resume, kill, errors, multirun."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import DEMO, comparable_rows, run_cli

from codecbench.audio import load_audio, resample
from codecbench.cache import ReconstructionCache
from codecbench.store import read_rows

OPUS = {"opus_6k": 6.0, "opus_12k": 12.0, "opus_24k": 24.0}


@pytest.fixture(scope="module")
def default_run(tmp_path_factory):
    """`codecbench run` with no arguments, in an empty folder with an empty cache."""
    home = tmp_path_factory.mktemp("default_run")
    result = run_cli("run", cwd=home, env={"CODECBENCH_CACHE": str(home / "cache")})
    assert result.returncode == 0, result.stderr[-3000:]
    (run_dir,) = (home / "runs").iterdir()
    return home, run_dir, result


def _table_rows(stdout: str) -> list[list[str]]:
    lines = [line for line in stdout.splitlines() if line.startswith("| ") and not line.startswith("| rank")]
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in lines]


#: the default ladder (conf/config.yaml), 0.7 to 64 kbps plus the identity ceiling
LADDER = {"identity", "codec2_700c", "codec2_3200", "opus_6k", "opus_12k", "amrnb_12k2", "lc3_16k", "opus_24k",
          "mp3_32k", "aac_32k", "lc3_32k", "g722_64k"}


def test_default_run_ranks_identity_first_and_opus_by_bitrate(default_run):
    _, run_dir, result = default_run
    order = [r[1] for r in _table_rows(result.stdout)]
    assert set(order) == LADDER and order[0] == "identity" and order[-1] == "codec2_700c"
    assert order.index("opus_24k") < order.index("opus_12k") < order.index("opus_6k")
    summary = json.loads((run_dir / "summary.json").read_text())
    pesq = [summary["codecs"][c]["metrics"]["signal"]["pesq_wb"]["mean"] for c in ("identity", "opus_24k", "opus_12k", "opus_6k")]
    assert pesq == sorted(pesq, reverse=True) and pesq[0] > 4.6
    assert summary["complete"] is True and summary["dataset"]["n_items"] == 54


def test_default_run_measures_bitrates_within_declared_tolerance(default_run):
    _, run_dir, _ = default_run
    summary = json.loads((run_dir / "summary.json").read_text())
    record = json.loads((run_dir / "run.json").read_text())
    for codec_id, nominal in OPUS.items():
        entry = summary["codecs"][codec_id]
        assert entry["nominal_kbps"] == nominal
        assert abs(entry["measured_kbps"] - nominal) / nominal < 0.10, (codec_id, entry["measured_kbps"])
    for codec_id in LADDER - {"identity"}:  # on speech, where each codec declares its tolerance
        facts, measured = record["codecs"][codec_id], summary["codecs"][codec_id]["measured_kbps_by_domain"]["speech"]
        assert abs(measured - facts["nominal_kbps"]) <= facts["bitrate_tolerance"] * facts["nominal_kbps"], codec_id
    # measured, not declared: the total equals the per-item bits over the per-item seconds
    codec_rows = [r for r in read_rows(run_dir) if r["codec"] == "opus_12k" and r["task"] == "codec"]
    bits = sum(r["values"]["bits"] for r in codec_rows)
    seconds = sum(r["values"]["seconds"] for r in codec_rows)
    assert summary["codecs"]["opus_12k"]["measured_kbps"] == pytest.approx(bits / seconds / 1000)


def test_summary_schema_and_speech_only_metrics(default_run):
    _, run_dir, _ = default_run
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["schema_version"] == 1
    for codec in summary["codecs"].values():
        assert {"measured_kbps", "nominal_kbps", "n_items", "n_failed"} <= codec.keys()
        for name, entry in codec["metrics"]["signal"].items():
            assert {"mean", "ci_low", "ci_high", "n", "n_failed", "unit", "higher_is_better", "evaluator"} <= entry.keys()
            assert entry["ci_low"] <= entry["mean"] <= entry["ci_high"]
            # each metric is averaged over exactly the items of the domains it declares
            expected_n = 45 if entry["domains"] == ["speech"] else 54
            assert (entry["n"], entry["n_failed"]) == (expected_n, 0), name
            assert set(entry["by_domain"]) == set(entry["domains"] or ["speech", "music", "audio"])
    speech_only = {n for n, e in summary["codecs"]["identity"]["metrics"]["signal"].items() if e["domains"] == ["speech"]}
    assert {"pesq_wb", "pesq_nb", "stoi"} <= speech_only and "si_sdr" not in speech_only
    for row in read_rows(run_dir):
        if row["task"] == "signal" and row["domain"] != "speech":
            assert row["status"] == "ok" and row["failures"] == {}
            assert speech_only.isdisjoint(row["values"]) and "si_sdr" in row["values"]


def test_run_json_provenance(default_run):
    _, run_dir, _ = default_run
    record = json.loads((run_dir / "run.json").read_text())
    assert record["dataset"]["name"] == "demo" and len(record["dataset"]["fingerprint"]) == 64
    assert record["environment"]["packages"]["pesq"] == "0.0.4"
    assert "commit" in record["environment"]["git"]
    assert record["resampler"]["library"] == "soxr"
    assert record["tasks"]["signal"]["evaluators"]["pesq_wb"]["version"] == "0.0.4"
    assert record["codecs"]["opus_12k"]["nominal_kbps"] == 12.0 and len(record["codecs"]["opus_12k"]["fingerprint"]) == 64
    assert record["config"]["codec"]["opus_6k"]["bitrate"] == 6
    # verification trials travel with the run, for corpus metrics such as EER
    from codecbench.store import read_trials

    trials = read_trials(run_dir)
    assert len(trials) == 204 and sum(t.label for t in trials) == 102


def test_stored_pesq_equals_the_reference_package(default_run):
    """The pipeline hands the tasks the right audio: recompute PESQ from the cached reconstruction."""
    import pesq

    home, run_dir, _ = default_run
    record = json.loads((run_dir / "run.json").read_text())
    rows = {(r["codec"], r["item"], r["task"]): r for r in read_rows(run_dir)}
    cache = ReconstructionCache(home / "cache")
    for item in ("librivox_m1_0880", "flite_awb_h04s06"):
        reference = load_audio(DEMO / "audio" / f"{item}.flac")
        key = cache.key(record["codecs"]["opus_12k"]["fingerprint"], reference.fingerprint())
        reconstruction, _ = cache.get("opus_12k", key)
        expected = pesq.pesq(16000, resample(reference, 16000).samples[0], resample(reconstruction, 16000).samples[0], "wb")
        assert rows[("opus_12k", item, "signal")]["values"]["pesq_wb"] == pytest.approx(expected, abs=1e-9)


def test_rerun_resumes_and_report_rebuilds(default_run):
    home, run_dir, _ = default_run
    before = (run_dir / "rows.jsonl").read_bytes()
    again = run_cli("run", f"run_dir={run_dir}", cwd=home, env={"CODECBENCH_CACHE": str(home / "cache")})
    assert again.returncode == 0, again.stderr[-2000:]
    assert (run_dir / "rows.jsonl").read_bytes() == before
    (run_dir / "summary.md").unlink()
    report = run_cli("report", str(run_dir))
    assert report.returncode == 0, report.stderr
    assert [r[1] for r in _table_rows(report.stdout)] == [r[1] for r in _table_rows(again.stdout)]
    assert _table_rows(report.stdout)[0][1] == "identity"
    assert "pesq==0.0.4" in (run_dir / "summary.md").read_text()


def test_sigkill_then_rerun_gives_exactly_the_uninterrupted_rows(tmp_path):
    args = ["codec=[opus_12k,identity]", "dataset.limit=12"]
    reference = run_cli("run", *args, f"run_dir={tmp_path / 'whole'}", f"paths.cache_dir={tmp_path / 'c1'}")
    assert reference.returncode == 0, reference.stderr[-2000:]
    expected = comparable_rows(read_rows(tmp_path / "whole"))
    assert len(expected) == 12 * 2 * 2

    killed_dir = tmp_path / "killed"
    cmd = [sys.executable, "-m", "codecbench.cli", "run", *args, f"run_dir={killed_dir}", f"paths.cache_dir={tmp_path / 'c2'}"]
    process = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    rows_file = killed_dir / "rows.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline:
        if rows_file.exists() and rows_file.read_bytes().count(b"\n") >= 9:
            break
        time.sleep(0.01)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL
    written = rows_file.read_bytes().count(b"\n")
    assert 9 <= written < len(expected), "the kill must land part-way"

    resumed = run_cli("run", *args, f"run_dir={killed_dir}", f"paths.cache_dir={tmp_path / 'c2'}")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert comparable_rows(read_rows(killed_dir)) == expected
    record = json.loads((killed_dir / "run.json").read_text())
    assert len(record["sessions"]) == 2 and "finished" not in record["sessions"][0]


@pytest.mark.parametrize(
    "override, unknown, suggested",
    [
        ("codec=opus_13k", "codec 'opus_13k'", "opus_12k"),
        ("codec=[identity,opus24k]", "codec 'opus24k'", "opus_24k"),
        ("dataset=librispeach", "dataset 'librispeach'", "librispeech"),
        ("task=[signl]", "task 'signl'", "signal"),
    ],
)
def test_unknown_names_suggest_the_closest(tmp_path, override, unknown, suggested):
    result = run_cli("run", override, f"run_dir={tmp_path / 'r'}")
    assert result.returncode == 2
    match = re.search(rf"unknown {re.escape(unknown)}; did you mean ([^?]+)\?", result.stderr)
    assert match and suggested in match.group(1).split(", "), result.stderr
    assert "available:" in result.stderr
    assert not (tmp_path / "r").exists()


def test_missing_mandatory_value_is_named(tmp_path):
    result = run_cli("run", "dataset=manifest", f"run_dir={tmp_path / 'r'}", f"paths.cache_dir={tmp_path / 'c'}")
    assert result.returncode == 2
    assert "missing mandatory config value(s): dataset.path" in result.stderr
    assert "dataset.path=..." in result.stderr


def test_multirun_writes_one_folder_per_job(tmp_path):
    result = run_cli("run", "-m", "codec=identity,opus_6k", "dataset.limit=2",
                     f"run_dir={tmp_path / 'sweep'}", f"paths.cache_dir={tmp_path / 'c'}")
    assert result.returncode == 0, result.stderr[-2000:]
    jobs = sorted(p.name for p in (tmp_path / "sweep").iterdir() if p.is_dir())
    assert jobs == ["codec=identity,dataset.limit=2", "codec=opus_6k,dataset.limit=2"]
    for job, codec in zip(jobs, ["identity", "opus_6k"]):
        summary = json.loads((tmp_path / "sweep" / job / "summary.json").read_text())
        assert list(summary["codecs"]) == [codec] and summary["dataset"]["n_items"] == 2


def test_ls_and_help():
    listed = run_cli("ls", "codecs")
    assert listed.returncode == 0
    names = [line.split()[0] for line in listed.stdout.splitlines()]
    assert {"identity", "opus_6k", "opus_12k", "opus_24k"} <= set(names)
    lines = {line.split()[0]: line for line in listed.stdout.splitlines()}
    assert "(12 kbps nominal)" in lines["opus_12k"]
    assert "(6.0 kbps nominal; weights facebook/encodec_24khz)" in lines["encodec_24k_6kbps"]
    datasets = run_cli("ls", "datasets").stdout
    assert "needs dataset.path" in datasets and "needs dataset.root, dataset.trials" in datasets
    helped = run_cli("--help")
    assert helped.returncode == 0 and "codecbench run" in helped.stdout


def test_report_on_a_folder_that_is_not_a_run(tmp_path):
    result = run_cli("report", str(tmp_path))
    assert result.returncode == 2 and "run.json" in result.stderr
