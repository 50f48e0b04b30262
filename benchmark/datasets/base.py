"""Dataset items and the dataset base class.

An :class:`Item` points at one audio file and carries its metadata
(transcript, speaker, label, domain). A :class:`Dataset` is a list of items,
optionally with speaker-verification trials, and a fingerprint over ids,
file contents and metadata that goes into every run's provenance.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from codecbench.audio import Audio, load_audio
from codecbench.errors import ConfigError
from codecbench.provenance import file_sha256

#: the domains an item may have; metrics declare which ones they apply to.
DOMAINS = ("speech", "music", "audio")


@dataclass(frozen=True)
class Item:
    """One evaluation item.

    ``domain`` is "speech", "music" or "audio" (general sounds).
    ``metadata`` holds anything else the source provides (licence, chapter...).
    """

    id: str
    path: Path
    domain: str = "speech"
    transcript: str | None = None
    speaker: str | None = None
    label: str | None = None
    metadata: dict = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        if self.domain not in DOMAINS:
            raise ConfigError(
                f"item {self.id!r}: expected domain one of {', '.join(DOMAINS)}, found {self.domain!r}"
            )
        object.__setattr__(self, "path", Path(self.path))

    def load(self) -> Audio:
        """Read the item's audio (raises AudioError naming the file on failure)."""
        return load_audio(self.path)

    def file_hash(self) -> str:
        """sha256 of the audio file's bytes."""
        return file_sha256(self.path)

    def describe(self) -> dict:
        """Metadata as stored beside results (JSON-serialisable)."""
        return {
            "id": self.id,
            "path": str(self.path),
            "domain": self.domain,
            "transcript": self.transcript,
            "speaker": self.speaker,
            "label": self.label,
        }


@dataclass(frozen=True)
class Trial:
    """A speaker-verification trial: ``label`` 1 = same speaker, 0 = different."""

    label: int
    enroll_id: str
    test_id: str


class Dataset:
    """A named list of items, with optional verification trials.

    Subclasses build ``items`` (and ``trials``) in ``__init__``. ``limit``
    keeps the first N items (in the dataset's own stable order), for quick runs.
    """

    name: str = "dataset"

    def __init__(self, items: list[Item], trials: list[Trial] | None = None, limit: int | None = None):
        ids = [item.id for item in items]
        duplicates = sorted({i for i in ids if ids.count(i) > 1}) if len(set(ids)) != len(ids) else []
        if duplicates:
            raise ConfigError(f"dataset {self.name!r}: expected unique item ids, found duplicates {duplicates[:5]}")
        if limit is not None:
            if int(limit) < 1:
                raise ConfigError(f"dataset.limit: expected a positive number of items, found {limit}")
            items = items[: int(limit)]
            kept = {item.id for item in items}
            trials = [t for t in (trials or []) if t.enroll_id in kept and t.test_id in kept]
        self.items: list[Item] = list(items)
        self.trials: list[Trial] = list(trials or [])
        self._fingerprint: str | None = None

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self) -> Iterator[Item]:
        return iter(self.items)

    def fingerprint(self) -> str:
        """sha256 over every item's id, metadata and file bytes, and the trials."""
        if self._fingerprint is None:
            digest = hashlib.sha256()
            for item in self.items:
                meta = {k: v for k, v in item.describe().items() if k != "path"}
                digest.update(json.dumps(meta, sort_keys=True).encode())
                try:
                    digest.update(item.file_hash().encode())
                except OSError as exc:  # the item fails later, with its own error; the fingerprint says so
                    digest.update(f"unreadable:{type(exc).__name__}".encode())
            for trial in self.trials:
                digest.update(f"{trial.label}\t{trial.enroll_id}\t{trial.test_id}\n".encode())
            self._fingerprint = digest.hexdigest()
        return self._fingerprint

    def describe(self) -> dict:
        return {"name": self.name, "n_items": len(self.items), "n_trials": len(self.trials)}
