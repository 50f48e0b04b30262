"""Reconstruction cache, content-addressed by (codec fingerprint, reference audio hash).

A cached entry holds the aligned reconstruction at the item's rate and the
facts measured while making it (bits, rates, timings, residual delay), so
adding a task or rerunning never runs a codec twice. Entries are written to
a temporary file and renamed, so a killed run never leaves a torn entry.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

from codecbench.audio import Audio

#: bump when the pipeline's codec stage (resampling, alignment) changes its output.
PIPELINE_VERSION = "2"


class ReconstructionCache:
    """Folder of ``<codec id>/<key[:2]>/<key>.npz`` entries under ``root``."""

    def __init__(self, root: str | Path):
        self.root = Path(os.path.expanduser(str(root)))

    def key(self, codec_fingerprint: str, audio_hash: str) -> str:
        blob = f"{PIPELINE_VERSION}:{codec_fingerprint}:{audio_hash}".encode()
        return hashlib.sha256(blob).hexdigest()

    def _path(self, codec_id: str, key: str) -> Path:
        return self.root / codec_id / key[:2] / f"{key}.npz"

    def get(self, codec_id: str, key: str) -> tuple[Audio, dict] | None:
        """The cached reconstruction and its facts, or ``None``; an unreadable entry counts as absent."""
        path = self._path(codec_id, key)
        if not path.exists():
            return None
        try:
            with np.load(path, allow_pickle=False) as data:
                samples = data["samples"]
                facts = json.loads(str(data["facts"]))
        except (OSError, ValueError, KeyError):
            return None
        return Audio(samples, int(facts["sample_rate"])), facts

    def put(self, codec_id: str, key: str, audio: Audio, facts: dict) -> None:
        path = self._path(codec_id, key)
        path.parent.mkdir(parents=True, exist_ok=True)
        facts = {**facts, "sample_rate": audio.sample_rate}
        tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp.npz")
        np.savez(tmp, samples=audio.samples, facts=np.array(json.dumps(facts, sort_keys=True)))
        os.replace(tmp, path)
