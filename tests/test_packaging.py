"""The folder-to-namespace mapping survives a real wheel build and install."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest
from conftest import REPO


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(REPO), "--no-deps", "--no-build-isolation", "-q", "-w", str(out)],
        check=True, capture_output=True, text=True,
    )
    (path,) = out.glob("codecbench-*.whl")
    return path


def test_wheel_maps_folders_into_the_codecbench_namespace(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for expected in (
        "codecbench/__init__.py", "codecbench/cli.py", "codecbench/datasets/base.py",
        "codecbench/codecs/base.py", "codecbench/codecs/pyav.py", "codecbench/tasks/signal.py",
        "codecbench/leaderboard/__init__.py", "codecbench/conf/config.yaml",
        "codecbench/conf/codec/opus_12k.yaml", "codecbench/conf/dataset/demo.yaml",
        "codecbench/conf/task/signal.yaml", "codecbench/conf/paths/default.yaml",
        "codecbench/data/demo/SOURCES.md", "codecbench/data/demo/manifest.jsonl",
        "codecbench/data/demo/trials.tsv",
    ):
        assert expected in names, expected
    assert len([n for n in names if n.startswith("codecbench/data/demo/audio/") and n.endswith(".flac")]) == 54
    # nothing lands as a top-level package: `codecs` would shadow the standard library
    tops = {n.split("/")[0] for n in names}
    assert tops == {"codecbench", next(t for t in tops if t.endswith(".dist-info"))}


def test_installed_wheel_imports_and_runs_help(wheel, tmp_path):
    """Install the wheel alone into a fresh venv; its dependencies come from this environment."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    target = next((venv / "lib").glob("python*")) / "site-packages"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
        check=True, capture_output=True, text=True,
    )
    # dependencies from this interpreter's site-packages, after the venv's own and after the
    # standard library (a .pth line appends to sys.path; .pth files inside it are not read,
    # so an editable install of codecbench there stays out)
    (target / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    env = {"PATH": "/usr/bin:/bin"}
    code = (
        "import codecs, codecbench, codecbench.codecs.base, codecbench.tasks.signal, codecbench.conf;"
        "from codecbench.datasets.demo import DemoDataset;"
        "assert codecs.__file__.endswith('codecs.py'), codecs.__file__;"
        f"assert codecbench.__file__.startswith({str(target)!r}), codecbench.__file__;"
        "assert len(DemoDataset()) == 54;"
        "print('ok')"
    )
    python = venv / "bin" / "python"
    result = subprocess.run([str(python), "-c", code], env=env, capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr
    helped = subprocess.run([str(python), "-m", "codecbench.cli", "--help"], env=env, capture_output=True, text=True, cwd=tmp_path)
    assert helped.returncode == 0 and "codecbench run" in helped.stdout, helped.stderr


def test_import_and_help_load_no_heavy_dependency():
    code = (
        "import sys, codecbench, codecbench.cli, codecbench.codecs, codecbench.tasks, codecbench.datasets;"
        "from codecbench.cli import main;"
        "heavy = {'av', 'pesq', 'pystoi', 'torch', 'hydra', 'soxr', 'soundfile'} & set(sys.modules);"
        "print(sorted(heavy))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.strip() == "[]", result.stdout + result.stderr
