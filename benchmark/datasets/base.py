"""Dataset items and the dataset base class.

An :class:`Item` points at one audio file and carries its metadata
(transcript, speaker, label, domain). A :class:`Dataset` is a list of items,
optionally with speaker-verification trials, and a fingerprint over ids,
file contents and metadata that goes into every run's provenance.

Sharding (``dataset.shard=K/N``, 1 <= K <= N) splits a dataset into N
disjoint slices for N jobs: the item ids are sorted (Python string order, so
the split does not depend on the order a loader yields the items), and shard
K keeps the ids at sorted positions K-1, K-1+N, K-1+2N, ... (round robin, so
shard sizes differ by at most one and each shard gets a mix of the corpus).
Every item is in exactly one shard. A sharded dataset still describes and
fingerprints the whole dataset (so shards can be checked against each other)
and keeps every trial (corpus metrics are computed over all shards at merge).
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, NamedTuple

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


#: how shards are assigned, as recorded in each shard's run record.
SHARD_ASSIGNMENT = (
    "round robin over the item ids sorted as strings: shard K of N keeps sorted positions K-1, K-1+N, ..."
)

_SHARD_SPEC = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")


class Shard(NamedTuple):
    """Shard ``index`` of ``count`` (1 <= index <= count), selected with ``dataset.shard=index/count``."""

    index: int
    count: int

    @property
    def spec(self) -> str:
        """``"K/N"``, as written on the command line."""
        return f"{self.index}/{self.count}"

    @property
    def tag(self) -> str:
        """``"shard-K-of-N"``, as used in file names."""
        return f"shard-{self.index}-of-{self.count}"


def parse_shard(spec) -> Shard | None:
    """``"K/N"`` (1-based: 1 <= K <= N) as a :class:`Shard`; None (or "null") means the whole dataset.

    Raises ConfigError saying what was expected and what was found.
    """
    if spec is None or (isinstance(spec, str) and spec.strip().lower() in ("", "null", "none")):
        return None
    match = _SHARD_SPEC.match(spec) if isinstance(spec, str) else None
    if match is None or not 1 <= int(match.group(1)) <= int(match.group(2)):
        raise ConfigError(
            f"dataset.shard: expected K/N with 1<=K<=N (shard K of N, counted from 1, e.g. 2/4), found {spec!r}"
        )
    return Shard(int(match.group(1)), int(match.group(2)))


def shard_of(item_ids, count: int) -> dict[str, int]:
    """Item id -> the shard index (1..count) it belongs to, for ``count`` shards (see the module docstring)."""
    return {item_id: position % count + 1 for position, item_id in enumerate(sorted(item_ids))}


class Dataset:
    """A named list of items, with optional verification trials.

    Subclasses build ``items`` (and ``trials``) in ``__init__``. ``limit``
    keeps the first N items (in the dataset's own stable order), for quick runs.
    :meth:`select_shard` then keeps one shard of those: ``items`` become the
    shard's items, while ``all_items``, :meth:`describe`, :meth:`fingerprint`
    and ``trials`` still cover the whole (limited) dataset.
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
        #: every item, in the dataset's order, also when ``items`` holds one shard.
        self.all_items: list[Item] = self.items
        self.trials: list[Trial] = list(trials or [])
        #: the shard ``items`` hold, or None for the whole dataset.
        self.shard: Shard | None = None
        self._fingerprint: str | None = None

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self) -> Iterator[Item]:
        return iter(self.items)

    def fingerprint(self) -> str:
        """sha256 over every item's id, metadata and file bytes, and the trials (of the whole dataset)."""
        if self._fingerprint is None:
            digest = hashlib.sha256()
            for item in self.all_items:
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
        """Name, number of items and trials of the whole dataset (a shard's own facts: :meth:`shard_record`)."""
        return {"name": self.name, "n_items": len(self.all_items), "n_trials": len(self.trials)}

    def select_shard(self, spec) -> None:
        """Keep only shard ``spec`` (``"K/N"``, see :func:`parse_shard`) in ``items``; None keeps everything.

        The whole dataset's fingerprint is computed first, so every shard
        records the same one. An empty shard (N larger than the number of
        items) is allowed: its job writes its record and no rows.
        """
        shard = parse_shard(spec)
        if shard is None:
            return
        if self.shard is not None:
            raise ConfigError(
                f"dataset {self.name!r}: already reduced to shard {self.shard.spec}, found a second shard {spec!r}"
            )
        self.fingerprint()
        owner = shard_of([item.id for item in self.all_items], shard.count)
        self.items = [item for item in self.all_items if owner[item.id] == shard.index]
        self.shard = shard

    def whole(self) -> Dataset:
        """The whole dataset (this one when it is not sharded): what tasks draw labels from."""
        if self.shard is None:
            return self
        whole = copy.copy(self)
        whole.items, whole.shard = whole.all_items, None
        return whole

    def shard_record(self) -> dict | None:
        """What a shard's run record says about it (None when not sharded).

        ``items``: the shard's item ids in dataset order; ``positions``: their
        0-based positions in the whole dataset (so a merge can restore its order).
        """
        if self.shard is None:
            return None
        position = {item.id: n for n, item in enumerate(self.all_items)}
        return {
            "index": self.shard.index,
            "count": self.shard.count,
            "spec": self.shard.spec,
            "assignment": SHARD_ASSIGNMENT,
            "n_items": len(self.items),
            "items": [item.id for item in self.items],
            "positions": [position[item.id] for item in self.items],
        }
