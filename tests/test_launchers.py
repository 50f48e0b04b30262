"""Distributed runs through Hydra launcher plugins: joblib, submitit (its local executor) and Ray (a local cluster).

Each test sweeps 2 codecs x 2 shards through a real launcher, merges the
result with `codecbench merge` (which checks that every item was scored
exactly once) and compares the merged summaries with one unsharded run. The
runs are cheap (4 demo items, identity and Opus 12k, SI-SDR only); Ray's
start-up dominates its test, so there is one Ray test only.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from conftest import run_cli

from codecbench.store import shard_records

CODECS = ("identity", "opus_12k")
CHEAP = ["task=[signal]", "task.signal.metrics=[si_sdr]", "dataset.limit=4", "workers=0", "progress=false"]
SHARDS = "dataset.shard=1/2,2/2"


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> dict:
    """The unsharded run's summary.json (both codecs in one run)."""
    home = tmp_path_factory.mktemp("launch_reference")
    result = run_cli("run", f"codec=[{','.join(CODECS)}]", *CHEAP, f"run_dir={home / 'run'}",
                     f"paths.cache_dir={home / 'cache'}")
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads((home / "run" / "summary.json").read_text())


def _sweep(tmp_path: Path, launcher: list[str], codec: str, env: dict | None = None) -> Path:
    """``codecbench run -m LAUNCHER... CODEC dataset.shard=1/2,2/2`` into tmp_path/sweep, then ``codecbench merge``."""
    sweep = tmp_path / "sweep"
    result = run_cli("run", "-m", *launcher, codec, SHARDS, *CHEAP, f"run_dir={sweep}",
                     f"paths.cache_dir={tmp_path / 'cache'}", env=env)
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    merged = run_cli("merge", str(sweep))
    assert merged.returncode == 0, merged.stdout + merged.stderr
    assert merged.stdout.count("2 of 2 shards, 4 items") == merged.stdout.count("each exactly once") >= 1
    return sweep


def _job_folders(sweep: Path) -> list[Path]:
    """The run folders of a sweep: the shards of one job configuration share one folder."""
    folders = sorted(p for p in sweep.iterdir() if p.is_dir() and not p.name.startswith("."))
    for folder in folders:
        assert "shard" not in folder.name
        assert list(shard_records(folder)) == [(1, 2), (2, 2)], folder
    return folders


def _without_run_dir(summary: dict) -> dict:
    return {key: value for key, value in summary.items() if key != "run_dir"}


def assert_same(found, expected, where: str = "summary") -> None:
    """Equal structures, floats equal to 1e-9 relative: launcher workers limit BLAS/OpenMP threads,
    which changes float sums in the last bits (e.g. SI-SDR 11.253697422307498 vs ...503)."""
    if isinstance(expected, dict):
        assert isinstance(found, dict) and sorted(found) == sorted(expected), where
        for key in expected:
            assert_same(found[key], expected[key], f"{where}.{key}")
    elif isinstance(expected, list):
        assert isinstance(found, list) and len(found) == len(expected), where
        for n, (a, b) in enumerate(zip(found, expected)):
            assert_same(a, b, f"{where}[{n}]")
    elif isinstance(expected, float) and isinstance(found, float):
        assert math.isclose(found, expected, rel_tol=1e-9, abs_tol=1e-12), f"{where}: {found} != {expected}"
    else:
        assert found == expected, f"{where}: {found!r} != {expected!r}"


@pytest.mark.slow
@pytest.mark.parametrize("launcher", [["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"],
                                      ["hydra/launcher=submitit_local"]], ids=["joblib", "submitit_local"])
def test_sweep_of_shards_gives_one_folder_with_both_codecs(tmp_path, reference, launcher):
    """codec=[a,b] (a list, not a sweep) and 2 shards: 2 jobs, each scoring both codecs on its half."""
    sweep = _sweep(tmp_path, launcher, f"codec=[{','.join(CODECS)}]")
    (folder,) = _job_folders(sweep)
    assert_same(_without_run_dir(json.loads((folder / "summary.json").read_text())), _without_run_dir(reference))
    record = json.loads((folder / "run.json").read_text())
    assert record["shards"]["count"] == 2 and sorted(s["shard"] for s in record["sessions"]) == ["1/2", "2/2"]
    # each job keeps its own copy of Hydra's files (.hydra/<job id>/), not one overwritten by the other
    overrides = sorted(p.read_text() for p in folder.glob(".hydra/*/overrides.yaml"))
    assert len(overrides) == 2 and "dataset.shard=1/2" in overrides[0] and "dataset.shard=2/2" in overrides[1]
    if "submitit" in launcher[0]:  # each shard ran as its own submitit job, with its own log folder
        assert len([p for p in (sweep / ".submitit").iterdir() if p.name.isdigit()]) == 2


@pytest.mark.slow
def test_ray_sweep_of_codecs_and_shards_on_a_local_cluster(tmp_path, reference):
    """codec=a,b (a sweep) x 2 shards: 4 jobs, one run folder per codec; `merge SWEEP` merges both."""
    launcher = ["hydra/launcher=ray", "+hydra.launcher.ray.init.num_cpus=2",
                "+hydra.launcher.ray.init.include_dashboard=false"]
    # RAY_AUTH_MODE=disabled: a throwaway local cluster needs no token (Ray would write one under ~/.ray)
    sweep = _sweep(tmp_path, launcher, "codec=" + ",".join(CODECS), env={"RAY_AUTH_MODE": "disabled"})
    folders = _job_folders(sweep)
    assert [f.name.split(",")[0] for f in folders] == [f"codec={c}" for c in CODECS]
    merged = {}
    for folder in folders:
        summary = json.loads((folder / "summary.json").read_text())
        assert summary["complete"] is True and summary["dataset"] == reference["dataset"]
        merged.update(summary["codecs"])
    assert_same(merged, reference["codecs"])


def test_slurm_preset_composes_onto_submitit_slurm():
    """conf/hydra/launcher/slurm.yaml: submitit's SLURM launcher with codecbench's defaults, overridable."""
    from hydra import compose, initialize_config_module

    with initialize_config_module("codecbench.conf", version_base="1.3"):
        cfg = compose("config", overrides=["hydra/launcher=slurm", "hydra.launcher.partition=cpu",
                                           "hydra.launcher.timeout_min=30"], return_hydra_config=True)
    launcher = cfg.hydra.launcher
    assert launcher._target_ == "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher"
    assert launcher.partition == "cpu" and launcher.timeout_min == 30  # overrides win over the preset
    assert (launcher.cpus_per_task, launcher.mem_gb, launcher.max_num_timeout) == (8, 32, 3)
    # shards of one configuration share a job folder: dataset.shard is not part of its name
    assert "dataset.shard" in cfg.hydra.job.config.override_dirname.exclude_keys
