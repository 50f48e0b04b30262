"""The speaker task's speechbrain backend, in a virtual environment of its own.

speechbrain needs torchaudio, which pins its own torch, so this runs in the
venv scripts/speechbrain_venv.py creates (about 7 GB, several minutes the
first time; reused after). Opt-in: set CODECBENCH_TEST_SPEECHBRAIN=1.
It builds a local model folder laid out like speechbrain/spkrec-ecapa-voxceleb
with the real ECAPA-TDNN architecture at small sizes and random weights, and
runs `codecbench run` there on the demo corpus with that folder as the model.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from conftest import REPO

pytestmark = pytest.mark.skipif(
    os.environ.get("CODECBENCH_TEST_SPEECHBRAIN") != "1",
    reason="needs a 7 GB venv with torch 2.9.1 + torchaudio + speechbrain; set CODECBENCH_TEST_SPEECHBRAIN=1",
)


def _run(*args: str, timeout: float) -> str:
    done = subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{' '.join(args)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def test_speechbrain_ecapa_backend_loads_a_local_folder_and_runs_the_pipeline(tmp_path):
    python = _run(sys.executable, "scripts/speechbrain_venv.py", timeout=3600).strip().splitlines()[-1]
    made = _run(python, "tests/speechbrain_check.py", str(tmp_path / "ecapa"), timeout=300)
    model = json.loads(made.splitlines()[-1])
    run_dir = tmp_path / "run"
    _run(
        python, "-m", "codecbench.cli", "run", "codec=[identity]", "task=[speaker]",
        "task.speaker.backend=speechbrain", f"task.speaker.model={model['model']}",
        f"paths.cache_dir={tmp_path / 'cache'}", f"run_dir={run_dir}", "progress=false",
        timeout=600,
    )
    record = json.loads((run_dir / "run.json").read_text())
    evaluator = record["tasks"]["speaker"]["evaluators"]["similarity"]
    # the weights the task reports are the ones written to the folder (loaded, not re-initialised)
    assert evaluator["weights_sha256"] == model["weights_sha256"]
    assert evaluator["architecture"] == "ECAPA_TDNN" and evaluator["embedding_dim"] == model["embedding_dim"]
    assert evaluator["packages"]["torchaudio"] and evaluator["packages"]["speechbrain"]
    rows = [json.loads(line) for line in (run_dir / "rows.jsonl").read_text().splitlines()]
    speaker = [r for r in rows if r["task"] == "speaker" and r["domain"] == "speech"]
    assert len(speaker) == 45 and all(r["status"] == "ok" for r in speaker)
    assert {len(r["extra"]["embedding"]) for r in speaker} == {model["embedding_dim"]}
    metrics = json.loads((run_dir / "summary.json").read_text())["codecs"]["identity"]["metrics"]["speaker"]
    assert metrics["similarity"]["mean"] == pytest.approx(1.0, abs=1e-6)
    for name in ("eer", "eer_cross", "eer_ref", "min_dcf_001", "min_dcf_005"):
        assert metrics[name]["n"] == 204 and metrics[name]["n_failed"] == 0
        assert 0.0 <= metrics[name]["mean"] <= 1.0
    # identity codec: reconstruction and reference embeddings are equal, so all three modes agree
    assert metrics["eer"]["mean"] == pytest.approx(metrics["eer_ref"]["mean"])
    assert metrics["eer_cross"]["mean"] == pytest.approx(metrics["eer_ref"]["mean"])
