"""Cached virtual environments that optional backends are tested in (shared by the ``*_venv.py`` scripts).

A backend whose packages cannot live in the main environment (speechbrain
needs torchaudio; NeMo downgrades hydra-core) is tested in a venv of its own.
Each venv lives under ``~/.cache/codecbench-test-venvs`` (or
``$CODECBENCH_TEST_VENVS``) and is reused while its marker file records the
same requirements; codecbench itself is installed editable from this
checkout, and re-installed without dependencies (seconds) when the venv
points at another checkout.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parent.parent

#: file in the venv recording what it was built with; written last, so a half-built venv is rebuilt.
MARKER = "codecbench-venv.json"


def venv_root() -> Path:
    """Folder holding the cached test venvs."""
    return Path(os.environ.get("CODECBENCH_TEST_VENVS", Path.home() / ".cache" / "codecbench-test-venvs"))


def python_of(venv: Path) -> Path:
    return venv / "bin" / "python"


def pip_install(venv: Path, *args: str) -> None:
    """``pip install ARGS`` with the venv's python; CalledProcessError when pip fails."""
    subprocess.run([str(python_of(venv)), "-m", "pip", "install", "--disable-pip-version-check", *args], check=True)


def codecbench_location(venv: Path) -> Path | None:
    """Folder the venv's codecbench package is imported from, or None when it does not import."""
    probe = subprocess.run(
        [str(python_of(venv)), "-c", "import codecbench, pathlib; print(pathlib.Path(codecbench.__file__).parent)"],
        capture_output=True, text=True,
    )
    return Path(probe.stdout.strip()).resolve() if probe.returncode == 0 else None


def ensure(venv: Path, marker: dict, build: Callable[[Path], None], rebuild: bool = False,
           system_site_packages: bool = False) -> Path:
    """The venv's python: ``build(venv)`` into a fresh venv unless one with the same ``marker`` exists.

    ``build`` installs the backend and codecbench (editable, from ``REPO``);
    afterwards a reused venv is only re-pointed at this checkout when needed.
    """
    marker_file = venv / MARKER
    current = marker_file.exists() and json.loads(marker_file.read_text()) == marker
    if rebuild or not current:
        if venv.exists():
            shutil.rmtree(venv)
        venv.parent.mkdir(parents=True, exist_ok=True)
        options = ["--system-site-packages"] if system_site_packages else []
        subprocess.run([sys.executable, "-m", "venv", *options, str(venv)], check=True)
        build(venv)
        marker_file.write_text(json.dumps(marker))
    elif codecbench_location(venv) != (REPO / "benchmark").resolve():
        pip_install(venv, "--no-deps", "-e", str(REPO))
    return python_of(venv)
