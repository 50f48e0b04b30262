"""Create (or reuse) the virtual environment the NeMo codec adapter is tested in.

``nemo_toolkit[tts]==3.0.0`` installs beside torch 2.13 (no torchaudio), but a
dry run in the main environment shows it would change packages codecbench's
environment already has: hydra-core 1.3.8 -> 1.3.2, omegaconf 2.3.1 -> 2.3.0,
fsspec, packaging, cloudpickle, urllib3 (and it adds 78 packages: lightning 2.4,
lhotse, wandb, nemo_text_processing, pyopenjtalk...). So the NeMo adapter is
tested in a venv of its own, created with ``--system-site-packages``: the main
environment's torch (and everything else) is reused, never replaced; pip
installs only what NeMo adds or pins differently, inside the venv, under the
constraint ``torch==<the main environment's torch>`` so that no other torch
can be pulled in.

The venv lives under ``~/.cache/codecbench-test-venvs`` (or
``$CODECBENCH_TEST_VENVS``) and is reused while its marker file records the
same requirements, Python and torch; codecbench itself is installed editable
from this checkout without dependencies (they come from the main environment),
and re-installed (seconds) when the venv points at another checkout.

Usage::

    python scripts/nemo_venv.py            # create or reuse; prints the venv's python
    python scripts/nemo_venv.py --rebuild  # start from scratch
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

#: what the venv adds to the main environment (the ``nemo`` extra of pyproject.toml).
REQUIREMENTS: tuple[str, ...] = ("nemo_toolkit[tts]==3.0.0",)

MARKER = "codecbench-venv.json"


def venv_root() -> Path:
    """Folder holding the cached test venvs."""
    return Path(os.environ.get("CODECBENCH_TEST_VENVS", Path.home() / ".cache" / "codecbench-test-venvs"))


def venv_path() -> Path:
    return venv_root() / "nemo-3.0.0"


def python_of(venv: Path) -> Path:
    return venv / "bin" / "python"


def main_torch_version() -> str:
    """The main environment's torch release without its local label (2.13.0+cpu -> 2.13.0)."""
    try:
        import torch
    except ImportError:
        raise SystemExit("the NeMo test venv reuses the main environment's torch: install torch first") from None
    return torch.__version__.split("+")[0]


def _pip(venv: Path, *args: str) -> None:
    subprocess.run([str(python_of(venv)), "-m", "pip", "install", "--disable-pip-version-check", *args], check=True)


def _marker() -> dict:
    return {"requirements": list(REQUIREMENTS), "python": sys.version.split()[0], "torch": main_torch_version(),
            "base": sys.prefix}


def _codecbench_location(venv: Path) -> Path | None:
    """Folder the venv's codecbench package is imported from, or None when it does not import."""
    probe = subprocess.run(
        [str(python_of(venv)), "-c", "import codecbench, pathlib; print(pathlib.Path(codecbench.__file__).parent)"],
        capture_output=True, text=True,
    )
    return Path(probe.stdout.strip()).resolve() if probe.returncode == 0 else None


def _check_torch(venv: Path, expected: str) -> None:
    """The venv imports the main environment's torch (same version, same files), or SystemExit says what it found."""
    probe = subprocess.run([str(python_of(venv)), "-c", "import torch; print(torch.__version__); print(torch.__file__)"],
                           capture_output=True, text=True)
    import torch

    found = probe.stdout.split()
    if probe.returncode != 0 or found != [torch.__version__, torch.__file__]:
        raise SystemExit(f"{venv}: expected the main environment's torch {torch.__version__} at {torch.__file__}, "
                         f"found {found or probe.stderr.strip()[-500:]}")
    assert expected == torch.__version__.split("+")[0]


def ensure(rebuild: bool = False) -> Path:
    """The venv's python, after creating the venv if needed and pointing its codecbench at this checkout."""
    venv = venv_path()
    marker = venv / MARKER
    current = marker.exists() and json.loads(marker.read_text()) == _marker()
    if rebuild or not current:
        if venv.exists():
            shutil.rmtree(venv)
        venv.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True)
        torch_version = main_torch_version()
        with tempfile.TemporaryDirectory() as tmp:
            constraints = Path(tmp) / "constraints.txt"
            constraints.write_text(f"torch=={torch_version}\n")
            _pip(venv, "-c", str(constraints), *REQUIREMENTS)
        _pip(venv, "--no-deps", "-e", str(REPO))
        _check_torch(venv, torch_version)
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
