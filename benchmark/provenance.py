"""Provenance: package versions, the code's git commit, the machine."""

from __future__ import annotations

import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path

#: distributions whose versions every run records (absent ones are recorded as absent).
TRACKED_PACKAGES = (
    "codecbench", "numpy", "soundfile", "soxr", "hydra-core", "omegaconf", "tqdm",
    "av", "pesq", "pystoi", "torch",
)


def package_version(name: str) -> str | None:
    """Installed version of a distribution, or ``None`` when it is not installed."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def require_version(name: str, extra: str) -> str:
    """Installed version of a distribution; an error naming the pip extra when it is not installed."""
    from codecbench.errors import missing_extra

    found = package_version(name)
    if found is None:
        raise missing_extra(name, extra)
    return found


def file_sha256(path: str | Path) -> str:
    """sha256 of a file's bytes, read in 1 MiB blocks (weights, models and data provenance)."""
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def git_state() -> dict:
    """Commit and dirty flag of the checkout codecbench runs from (``None`` outside a git checkout)."""
    source = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(
            ["git", "-C", str(source), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10
        )
        if commit.returncode != 0:
            return {"commit": None, "dirty": None, "reason": "not a git checkout (installed package)"}
        status = subprocess.run(
            ["git", "-C", str(source), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, timeout=10,
        )
        return {"commit": commit.stdout.strip(), "dirty": bool(status.stdout.strip())}
    except (OSError, subprocess.SubprocessError) as exc:
        return {"commit": None, "dirty": None, "reason": f"git unavailable: {exc}"}


def environment() -> dict:
    """Python, platform and tracked package versions."""
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "machine": platform.machine(),
        "packages": {name: package_version(name) for name in TRACKED_PACKAGES},
        "git": git_state(),
    }
