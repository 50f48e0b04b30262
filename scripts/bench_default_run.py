"""Wall time of the default run (`codecbench run`: the default codec ladder on the demo corpus).

Runs the real command twice in a temporary folder: first with an empty
reconstruction cache, then into a new run folder with the cache warm (only
the tasks run). Prints the wall time of each and the demo audio evaluated
per wall second. A benchmark, not a test: it prints figures and asserts nothing.

    python scripts/bench_default_run.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def timed_run(home: Path, run_dir: str) -> float:
    env = {**os.environ, "CODECBENCH_CACHE": str(home / "cache")}
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "codecbench.cli", "run", f"run_dir={run_dir}"],
        cwd=home, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    return time.perf_counter() - start


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        cold = timed_run(home, "runs/cold")
        warm = timed_run(home, "runs/warm")
        summary = json.loads((home / "runs" / "cold" / "summary.json").read_text())
        run = json.loads((home / "runs" / "cold" / "run.json").read_text())
    n_codecs = len(summary["codecs"])
    audio_s = sum(r["duration_s"] for r in map(json.loads, _demo_manifest().read_text().splitlines()))
    print(f"default run: {n_codecs} codecs x {summary['dataset']['n_items']} items ({audio_s:.1f} s of audio each)")
    print(f"  cold cache: {cold:6.1f} s wall  ({n_codecs * audio_s / cold:5.1f} s of audio per wall second)")
    print(f"  warm cache: {warm:6.1f} s wall  (reconstructions from the cache; tasks only)")
    print(f"  pipeline wall time inside the cold run: {run['sessions'][-1]['wall_s']:.1f} s")
    print(f"  machine: {os.cpu_count()} cores, {run['environment']['platform']}")


def _demo_manifest() -> Path:
    import codecbench

    return Path(codecbench.__file__).parent / "data" / "demo" / "manifest.jsonl"


if __name__ == "__main__":
    main()
