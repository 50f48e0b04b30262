"""Create (or reuse) the virtual environment the speechbrain backend is tested in.

speechbrain 1.x does not import without torchaudio, and torchaudio pins an
exact torch release; neither installs beside the torch of the main test
environment. So the speechbrain backend of the ``speaker`` task is tested in
a virtual environment of its own, with the torch/torchaudio pair that
installs on these machines (``torch==2.9.1``, ``torchaudio==2.9.*``; on
x86_64 that is a CUDA build from PyPI, about 7 GB in the venv and some
minutes to install; it runs on the CPU).

The venv lives under ``~/.cache/codecbench-test-venvs`` (or
``$CODECBENCH_TEST_VENVS``) and is reused while its marker file records the
same requirements; codecbench itself is installed editable from this
checkout, and re-installed (without dependencies, seconds) when the venv
points at another checkout.

Usage::

    python scripts/speechbrain_venv.py            # create or reuse; prints the venv's python
    python scripts/speechbrain_venv.py --rebuild  # start from scratch
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

#: installed in this order: torch first, so torchaudio's exact pin resolves against it.
REQUIREMENTS: tuple[tuple[str, ...], ...] = (
    ("torch==2.9.1", "torchaudio==2.9.*"),
    ("speechbrain==1.1.2",),
)

#: codecbench extras installed with it (editable, from this checkout).
EXTRAS = ""

MARKER = "codecbench-venv.json"


def venv_root() -> Path:
    """Folder holding the cached test venvs."""
    return Path(os.environ.get("CODECBENCH_TEST_VENVS", Path.home() / ".cache" / "codecbench-test-venvs"))


def venv_path() -> Path:
    return venv_root() / "speechbrain-torch2.9.1"


def python_of(venv: Path) -> Path:
    return venv / "bin" / "python"


def _pip(venv: Path, *args: str) -> None:
    subprocess.run([str(python_of(venv)), "-m", "pip", "install", "--disable-pip-version-check", *args], check=True)


def _marker() -> dict:
    return {"requirements": [list(group) for group in REQUIREMENTS], "python": sys.version.split()[0]}


def _codecbench_location(venv: Path) -> Path | None:
    """Folder the venv's codecbench package is imported from, or None when it does not import."""
    probe = subprocess.run(
        [str(python_of(venv)), "-c", "import codecbench, pathlib; print(pathlib.Path(codecbench.__file__).parent)"],
        capture_output=True, text=True,
    )
    return Path(probe.stdout.strip()).resolve() if probe.returncode == 0 else None


def ensure(rebuild: bool = False) -> Path:
    """The venv's python, after creating the venv if needed and pointing its codecbench at this checkout."""
    venv = venv_path()
    marker = venv / MARKER
    current = marker.exists() and json.loads(marker.read_text()) == _marker()
    if rebuild or not current:
        if venv.exists():
            shutil.rmtree(venv)
        venv.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        for group in REQUIREMENTS:
            _pip(venv, *group)
        _pip(venv, "-e", f"{REPO}{EXTRAS}")
        marker.write_text(json.dumps(_marker()))  # written last: a half-built venv is rebuilt
    elif _codecbench_location(venv) != (REPO / "benchmark").resolve():
        _pip(venv, "--no-deps", "-e", str(REPO))
    return python_of(venv)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rebuild", action="store_true", help="delete and recreate the venv")
    args = parser.parse_args()
    print(ensure(args.rebuild))


if __name__ == "__main__":
    main()
