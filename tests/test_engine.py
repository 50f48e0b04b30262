"""The execution engine: metric workers give the in-process rows, survive crashes, and resume exactly once."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import REPO, comparable_rows, compose, run_cli, tone, write_audio
from omegaconf import OmegaConf
from probe_tasks import BatchSizeTask, LevelTask

from codecbench.audio import load_audio
from codecbench.datasets.base import Item
from codecbench.engine import batches_itself, resolve_workers, runs_in_main
from codecbench.errors import ConfigError
from codecbench.pipeline import Evaluation
from codecbench.store import read_rows

#: one thread per process in main and workers, so floating-point sums are the same everywhere
SINGLE_THREAD = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
                 "NUMEXPR_NUM_THREADS": "1", "PYTHONPATH": str(REPO / "tests")}
#: 12 demo items in batches of 3 (4 batches), a batching probe task that fails the batch holding one item,
#: the signal task (one unit per item in a pool) and efficiency (measures the codec: stays in the main process)
RUN_ARGS = [
    "codec=[opus_12k]", "dataset.limit=12", "batch_size=3", "task=[signal,efficiency]",
    "task.signal.metrics=[stoi,si_sdr,mel_distance]",
    "+task.batchsize._target_=probe_tasks.BatchSizeTask", "+task.batchsize.fail_id=codec2_f1_h01s02",
    "max_failure_fraction=1.0", "progress=false", "pool_min_work_s=0",
]


class KillerTask(BatchSizeTask):
    """Fault injector: in a worker process it kills its own process on ``kill_id`` (a segfault, an OOM kill)."""

    name = "killer"

    def __init__(self, kill_id: str):
        super().__init__()
        self.kill_id = kill_id

    def score_batch(self, batch):
        if multiprocessing.parent_process() is not None and any(item.id == self.kill_id for _, _, item in batch):
            os.kill(os.getpid(), signal.SIGKILL)
        return super().score_batch(batch)


def _sessions(run_dir: Path) -> list[dict]:
    return json.loads((run_dir / "run.json").read_text())["sessions"]


@pytest.fixture(scope="module")
def in_process_rows(tmp_path_factory):
    """The reference: RUN_ARGS scored in the main process (workers=0)."""
    tmp = tmp_path_factory.mktemp("in_process")
    result = run_cli("run", *RUN_ARGS, "workers=0", f"run_dir={tmp / 'run'}", f"paths.cache_dir={tmp / 'cache'}",
                     env=SINGLE_THREAD)
    assert result.returncode == 0, result.stderr[-3000:]
    assert _sessions(tmp / "run")[-1]["workers"] == 0
    rows = comparable_rows(read_rows(tmp / "run"))
    assert len(rows) == 12 * 4
    return rows


def test_workers_setting():
    assert resolve_workers(None) >= 1
    assert resolve_workers(0) == 0 and resolve_workers(3) == 3
    for bad in (-1, "two", 1.5, True):
        with pytest.raises(ConfigError, match=r"workers: expected a number of worker processes >= 0.*found"):
            resolve_workers(bad)
    assert OmegaConf.select(compose([]), "workers") is None  # default: one per core


def test_which_tasks_leave_the_main_process():
    from codecbench.tasks.efficiency import EfficiencyTask
    from codecbench.tasks.signal import SignalTask

    assert runs_in_main(EfficiencyTask()) and not runs_in_main(SignalTask()) and not runs_in_main(LevelTask())
    assert batches_itself(BatchSizeTask()) and not batches_itself(SignalTask())


def test_two_workers_write_the_in_process_rows(tmp_path, in_process_rows):
    result = run_cli("run", *RUN_ARGS, "workers=2", f"run_dir={tmp_path / 'run'}",
                     f"paths.cache_dir={tmp_path / 'cache'}", env=SINGLE_THREAD)
    assert result.returncode == 0, result.stderr[-3000:]
    session = _sessions(tmp_path / "run")[-1]
    assert session["workers"] == 2 and session["peak_rss_mb"]["worker"] > 0
    rows = comparable_rows(read_rows(tmp_path / "run"))
    assert rows == in_process_rows
    # the probe's batches are the pipeline's (3 items), and its crashed batch fails exactly those items
    failed = sorted(k[1] for k, v in rows.items() if k[2] == "batchsize" and v[0] == "failed")
    assert failed == ["codec2_f1_h01s02", "codec2_f1_h01s09", "codec2_m1_h01s03"]
    assert all("model crashed on a batch of 3" in rows[("opus_12k", i, "batchsize")][1] for i in failed)
    assert {v[4]["batch"] for k, v in rows.items() if k[2] == "batchsize" and v[0] == "ok"} == {3}
    assert all(v[0] == "ok" for k, v in rows.items() if k[2] in ("signal", "efficiency", "codec"))


def _manifest(tmp_path: Path, n: int, seconds: float = 0.5) -> Path:
    lines = []
    for k in range(n):
        write_audio(tmp_path / "audio" / f"i{k}.wav", tone(seconds, freq=180 + 15 * k))
        lines.append(json.dumps({"id": f"i{k}", "path": f"audio/i{k}.wav", "domain": "speech"}))
    (tmp_path / "manifest.jsonl").write_text("\n".join(lines) + "\n")
    return tmp_path / "manifest.jsonl"


def test_main_process_scores_with_the_workers_thread_count(tmp_path):
    """Items scored in the main process before the pool starts get the workers' values to the last bit."""
    manifest = _manifest(tmp_path, 6, seconds=3.0)
    rows = {}
    for name, min_work in (("never", "1e9"), ("at_once", "0")):
        cfg = compose([
            "dataset=manifest", f"dataset.path={manifest}", "codec=[opus_12k]", "task=[signal]",
            "task.signal.metrics=[si_sdr,mel_distance,stoi]", f"paths.cache_dir={tmp_path / 'cache'}",
            "progress=false", "workers=2", "batch_size=2", f"pool_min_work_s={min_work}",
        ])
        Evaluation(cfg, tmp_path / name).run()
        rows[name] = comparable_rows(read_rows(tmp_path / name))
        assert _sessions(tmp_path / name)[-1]["workers"] == (0 if name == "never" else 2)
    assert len(rows["never"]) == 12 and rows["never"] == rows["at_once"]


def test_a_worker_that_dies_fails_only_its_item(tmp_path):
    cfg = compose([
        "dataset=manifest", f"dataset.path={_manifest(tmp_path, 8)}", "codec=[identity]", "task=[]",
        f"paths.cache_dir={tmp_path / 'cache'}", "progress=false", "workers=2", "batch_size=3",
        "max_failure_fraction=1.0", "pool_min_work_s=0",
    ])
    OmegaConf.set_struct(cfg, False)
    cfg.task = {"killer": {"_target_": "test_engine.KillerTask", "kill_id": "i4"}}
    Evaluation(cfg, tmp_path / "run").run()
    rows = {(r["item"], r["task"]): r for r in read_rows(tmp_path / "run")}
    assert len(rows) == 16
    dead = rows[("i4", "killer")]
    assert dead["status"] == "failed" and "worker process died while scoring item 'i4' on its own" in dead["error"]
    assert rows[("i4", "codec")]["status"] == "ok"
    # its batch-mates were scored again on their own; every other item kept its batch of 3 (or the last 2)
    batches = {item: rows[(item, "killer")]["extra"]["batch"] for item in ("i0", "i1", "i2", "i3", "i5", "i6", "i7")}
    assert batches == {"i0": 3, "i1": 3, "i2": 3, "i3": 1, "i5": 1, "i6": 2, "i7": 2}
    level = LevelTask()  # identity codec: the reconstruction is the reference
    for item in batches:
        reference = load_audio(tmp_path / "audio" / f"{item}.wav")
        expected = level.score(reference, reference, Item(item, tmp_path / "audio" / f"{item}.wav")).values
        assert rows[(item, "killer")]["status"] == "ok" and rows[(item, "killer")]["values"] == expected
    assert _sessions(tmp_path / "run")[-1]["workers"] == 2


def _descendants(pid: int) -> set[int]:
    """Processes below ``pid`` (its children, theirs...), from /proc: the fork server and the workers."""
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
    out, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - out
        out |= frontier
    return out


def _alive(pid: int) -> bool:
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _wait_gone(pids: set[int], seconds: float = 10.0) -> None:
    deadline = time.time() + seconds
    while time.time() < deadline and any(_alive(pid) for pid in pids):
        time.sleep(0.1)
    assert not any(_alive(pid) for pid in pids), "worker processes outlived the main process"


def _interrupt(run_dir: Path, cache: Path, signum: int, after_rows: int) -> tuple[int, set[int]]:
    """Start RUN_ARGS with 2 workers; send ``signum`` once ``after_rows`` rows exist; return its status and workers."""
    cmd = [sys.executable, "-m", "codecbench.cli", "run", *RUN_ARGS, "workers=2", f"run_dir={run_dir}",
           f"paths.cache_dir={cache}"]
    process = subprocess.Popen(cmd, env={**os.environ, **SINGLE_THREAD},
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    rows_file = run_dir / "rows.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and process.poll() is None:
        if rows_file.exists() and rows_file.read_bytes().count(b"\n") >= after_rows:
            break
        time.sleep(0.01)
    workers = _descendants(process.pid)
    os.kill(process.pid, signum)
    return process.wait(timeout=60), workers


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="finds worker processes through /proc")
def test_interrupted_and_killed_runs_resume_to_the_uninterrupted_rows(tmp_path, in_process_rows):
    run_dir, cache = tmp_path / "run", tmp_path / "cache"
    # Ctrl-C: the main process stops its workers and records nothing for the units in flight
    status, workers = _interrupt(run_dir, cache, signal.SIGINT, after_rows=6)
    assert status != 0 and len(workers) >= 2
    _wait_gone(workers)
    first = comparable_rows(read_rows(run_dir))
    assert 6 <= len(first) < len(in_process_rows), "the interrupt must land part-way"
    assert all("KeyboardInterrupt" not in (v[1] or "") for v in first.values())
    # SIGKILL of the resumed run: its workers notice and exit on their own
    status, workers = _interrupt(run_dir, cache, signal.SIGKILL, after_rows=len(first) + 8)
    assert status == -signal.SIGKILL and len(workers) >= 2
    _wait_gone(workers)
    second = comparable_rows(read_rows(run_dir))
    assert len(first) < len(second) < len(in_process_rows), "the kill must land part-way"
    # the third session completes the run: every row exactly once, as in one uninterrupted run
    resumed = run_cli("run", *RUN_ARGS, "workers=2", f"run_dir={run_dir}", f"paths.cache_dir={cache}",
                      env=SINGLE_THREAD)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert comparable_rows(read_rows(run_dir)) == in_process_rows
    sessions = _sessions(run_dir)
    assert len(sessions) == 3 and "finished" not in sessions[0] and "finished" not in sessions[1]
