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

The venv is cached and reused while it records the same requirements, Python
and torch (scripts/test_venvs.py says where); codecbench itself is installed
editable from this checkout without dependencies (they come from the main
environment).

Usage::

    python scripts/nemo_venv.py            # create or reuse; prints the venv's python
    python scripts/nemo_venv.py --rebuild  # start from scratch
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

from test_venvs import REPO, ensure, pip_install, python_of, venv_root

#: what the venv adds to the main environment (the ``nemo`` extra of pyproject.toml).
REQUIREMENTS: tuple[str, ...] = ("nemo_toolkit[tts]==3.0.0",)


def venv_path() -> Path:
    return venv_root() / "nemo-3.0.0"


def main_torch_version() -> str:
    """The main environment's torch release without its local label (2.13.0+cpu -> 2.13.0)."""
    try:
        import torch
    except ImportError:
        raise SystemExit("the NeMo test venv reuses the main environment's torch: install torch first") from None
    return torch.__version__.split("+")[0]


def _marker() -> dict:
    return {"requirements": list(REQUIREMENTS), "python": sys.version.split()[0], "torch": main_torch_version(),
            "base": sys.prefix}


def _check_torch(venv: Path) -> None:
    """The venv imports the main environment's torch (same version, same files), or SystemExit says what it found."""
    probe = subprocess.run([str(python_of(venv)), "-c", "import torch; print(torch.__version__); print(torch.__file__)"],
                           capture_output=True, text=True)
    import torch

    found = probe.stdout.split()
    if probe.returncode != 0 or found != [torch.__version__, torch.__file__]:
        raise SystemExit(f"{venv}: expected the main environment's torch {torch.__version__} at {torch.__file__}, "
                         f"found {found or probe.stderr.strip()[-500:]}")


def build(venv: Path) -> None:
    """NeMo under the constraint ``torch==<main torch>``, then codecbench without dependencies; torch checked."""
    torch_version = main_torch_version()
    with tempfile.TemporaryDirectory() as tmp:
        constraints = Path(tmp) / "constraints.txt"
        constraints.write_text(f"torch=={torch_version}\n")
        pip_install(venv, "-c", str(constraints), *REQUIREMENTS)
    pip_install(venv, "--no-deps", "-e", str(REPO))
    _check_torch(venv)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rebuild", action="store_true", help="delete and recreate the venv")
    args = parser.parse_args()
    print(ensure(venv_path(), _marker(), build, rebuild=args.rebuild, system_site_packages=True))


if __name__ == "__main__":
    main()
