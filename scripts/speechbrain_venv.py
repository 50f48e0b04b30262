"""Create (or reuse) the virtual environment the speechbrain backend is tested in.

speechbrain 1.x does not import without torchaudio, and torchaudio pins an
exact torch release; neither installs beside the torch of the main test
environment. So the speechbrain backend of the ``speaker`` task is tested in
a virtual environment of its own, with the torch/torchaudio pair that
installs on these machines (``torch==2.9.1``, ``torchaudio==2.9.*``; on
x86_64 that is a CUDA build from PyPI, about 7 GB in the venv and some
minutes to install; it runs on the CPU).

The venv is cached and reused (scripts/test_venvs.py says where and when).

Usage::

    python scripts/speechbrain_venv.py            # create or reuse; prints the venv's python
    python scripts/speechbrain_venv.py --rebuild  # start from scratch
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from test_venvs import REPO, ensure, pip_install, venv_root

#: installed in this order: torch first, so torchaudio's exact pin resolves against it.
REQUIREMENTS: tuple[tuple[str, ...], ...] = (
    ("torch==2.9.1", "torchaudio==2.9.*"),
    ("speechbrain==1.1.2",),
)

#: codecbench extras installed with it (editable, from this checkout).
EXTRAS = ""


def venv_path() -> Path:
    return venv_root() / "speechbrain-torch2.9.1"


def build(venv: Path) -> None:
    """torch + torchaudio, then speechbrain, then codecbench (editable, with its dependencies)."""
    for group in REQUIREMENTS:
        pip_install(venv, *group)
    pip_install(venv, "-e", f"{REPO}{EXTRAS}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rebuild", action="store_true", help="delete and recreate the venv")
    args = parser.parse_args()
    marker = {"requirements": [list(group) for group in REQUIREMENTS], "python": sys.version.split()[0]}
    print(ensure(venv_path(), marker, build, rebuild=args.rebuild))


if __name__ == "__main__":
    main()
