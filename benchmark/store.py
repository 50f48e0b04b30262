"""The run folder's files: per-item rows (rows.jsonl) and provenance (run.json).

Rows are appended one JSON line at a time and flushed to disk before the
next item starts, so a run killed at any moment loses at most the item in
flight. A torn last line (the process died mid-write) is cut off when the
file is reopened; a row's key (codec, item, task) is never written twice.
One process writes a rows file at a time: :class:`RowStore` holds an
exclusive lock on it, so a second job started on the same folder and shard
stops with an error instead of duplicating rows.

A sharded run (``dataset.shard=K/N``) writes ``rows.shard-K-of-N.jsonl`` and
``run.shard-K-of-N.json`` per shard into one run folder, so concurrent shard
jobs never write the same file; ``codecbench merge`` (:mod:`codecbench.merge`)
combines them into ``rows.jsonl`` and ``run.json``. JSON files are written
atomically under a name unique to the writing process, so concurrent writers
of the same file (trials.tsv, a merge) never leave a mixed or partial file.
"""

from __future__ import annotations

import json
import os
import re
import threading
from pathlib import Path
from typing import Iterable, Iterator

try:  # POSIX; elsewhere rows files are not locked
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

from codecbench.errors import CodecbenchError

ROWS_FILE = "rows.jsonl"
RUN_FILE = "run.json"
SUMMARY_FILE = "summary.json"
TRIALS_FILE = "trials.tsv"
REPORT_FILE = "summary.md"

#: the pseudo-task name of codec-stage rows (bits, measured kbps, delay).
CODEC_STAGE = "codec"

#: a shard's run record, ``run.shard-K-of-N.json``.
SHARD_RECORD = re.compile(r"^run\.shard-(\d+)-of-(\d+)\.json$")


def row_key(row: dict) -> tuple[str, str, str]:
    return (row["codec"], row["item"], row["task"])


def _shard_suffix(shard) -> str:
    """``""`` for no shard, else ``".shard-K-of-N"``; ``shard`` is ``(index, count)`` (a Shard or a tuple)."""
    if shard is None:
        return ""
    index, count = shard
    return f".shard-{index}-of-{count}"


def rows_path(run_dir: str | Path, shard=None) -> Path:
    """``RUN_DIR/rows.jsonl``, or ``RUN_DIR/rows.shard-K-of-N.jsonl`` for shard ``(K, N)``."""
    return Path(run_dir) / f"rows{_shard_suffix(shard)}.jsonl"


def run_path(run_dir: str | Path, shard=None) -> Path:
    """``RUN_DIR/run.json``, or ``RUN_DIR/run.shard-K-of-N.json`` for shard ``(K, N)``."""
    return Path(run_dir) / f"run{_shard_suffix(shard)}.json"


def record_path(run_dir: str | Path, record: dict) -> Path:
    """Where ``record`` (a run record, maybe a shard's: it has ``shard.index``/``count``) is stored."""
    shard = record.get("shard")
    return run_path(run_dir, None if shard is None else (shard["index"], shard["count"]))


def shard_records(run_dir: str | Path) -> dict[tuple[int, int], Path]:
    """``(K, N)`` -> path of every shard record (``run.shard-K-of-N.json``) in ``run_dir``, sorted."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        return {}
    found = {}
    for path in run_dir.iterdir():
        match = SHARD_RECORD.match(path.name)
        if match:
            found[(int(match.group(1)), int(match.group(2)))] = path
    return {shard: found[shard] for shard in sorted(found, key=lambda shard: (shard[1], shard[0]))}


class RowStore:
    """Append-only rows of one run folder (or one shard of it), with the keys already present.

    ``shard``: ``(K, N)`` to write ``rows.shard-K-of-N.jsonl`` instead of
    ``rows.jsonl``. The file is locked while the store is open: a second
    writer raises CodecbenchError naming the file.
    """

    def __init__(self, run_dir: str | Path, shard=None):
        self.path = rows_path(run_dir, shard)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.done: set[tuple[str, str, str]] = set()
        #: codec id -> items with at least one failed row (what max_failure_fraction counts).
        self.failed_items: dict[str, set[str]] = {}
        self._handle = open(self.path, "a", encoding="utf-8")
        self._lock()
        for row in self._read_repairing():
            self._note(row)

    def _lock(self) -> None:
        """Take the exclusive lock on the rows file (before repairing it: never cut another writer's line)."""
        if fcntl is None:
            return
        try:
            fcntl.flock(self._handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            self._handle.close()
            raise CodecbenchError(
                f"{self.path}: expected one writer per run folder and shard, found another process writing "
                f"these rows ({exc.strerror}); is a job with the same run_dir and dataset.shard still running?"
            ) from exc

    def _read_repairing(self) -> list[dict]:
        """Read existing rows; cut a torn final line left by a killed process."""
        if not self.path.exists():
            return []
        data = self.path.read_bytes()
        good_end = data.rfind(b"\n") + 1
        if good_end != len(data):
            with open(self.path, "r+b") as handle:
                handle.truncate(good_end)
        return [json.loads(line) for line in data[:good_end].decode("utf-8").splitlines() if line.strip()]

    def __contains__(self, key: tuple[str, str, str]) -> bool:
        return key in self.done

    def append(self, row: dict) -> None:
        """Write one row durably; refuse a key that is already stored."""
        key = row_key(row)
        if key in self.done:
            raise CodecbenchError(f"{self.path}: row {key} is already stored; a row is never written twice")
        self._handle.write(json.dumps(row, sort_keys=True, allow_nan=False) + "\n")
        self._handle.flush()
        os.fsync(self._handle.fileno())
        self._note(row)

    def _note(self, row: dict) -> None:
        self.done.add(row_key(row))
        if row["status"] != "ok":
            self.failed_items.setdefault(row["codec"], set()).add(row["item"])

    def close(self) -> None:
        self._handle.close()

    def __enter__(self) -> RowStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def read_rows(run_dir: str | Path, shard=None) -> Iterator[dict]:
    """Rows of a run folder (or of its shard ``(K, N)``), skipping a torn final line (never repairs: read-only)."""
    path = rows_path(run_dir, shard)
    if not path.exists():
        raise CodecbenchError(f"{run_dir}: expected a run folder with {path.name}, found none")
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            if line.endswith("\n") and line.strip():
                yield json.loads(line)


def _write_atomically(path: Path, text: str) -> None:
    """Write ``text`` to a temporary file unique to this process and thread, then rename it over ``path``."""
    tmp = path.with_name(f"{path.name}.{os.getpid()}-{threading.get_ident()}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_json(path: str | Path, data: dict) -> None:
    """Write JSON atomically (temporary file, then rename)."""
    _write_atomically(Path(path), json.dumps(data, indent=2, sort_keys=True, allow_nan=False) + "\n")


def write_rows(run_dir: str | Path, rows: Iterable[dict]) -> Path:
    """Replace ``RUN_DIR/rows.jsonl`` with ``rows`` at once (atomically; used by merge). Returns its path."""
    path = rows_path(run_dir)
    _write_atomically(path, "".join(json.dumps(row, sort_keys=True, allow_nan=False) + "\n" for row in rows))
    return path


def read_json(path: str | Path) -> dict:
    path = Path(path)
    if not path.exists():
        raise CodecbenchError(f"expected {path}, found no such file")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise CodecbenchError(f"{path}: expected JSON, found a syntax error ({exc})") from exc


def write_trials(run_dir: str | Path, trials) -> None:
    """Copy the dataset's verification trials into the run folder (nothing when there are none)."""
    if not trials:
        return
    lines = ["label\tenroll_id\ttest_id"] + [f"{t.label}\t{t.enroll_id}\t{t.test_id}" for t in trials]
    _write_atomically(Path(run_dir) / TRIALS_FILE, "\n".join(lines) + "\n")


def read_trials(run_dir: str | Path) -> list:
    """The run folder's trials (``Trial`` objects), or an empty list."""
    from codecbench.datasets.base import Trial

    path = Path(run_dir) / TRIALS_FILE
    if not path.exists():
        return []
    rows = [line.split("\t") for line in path.read_text(encoding="utf-8").splitlines()[1:] if line.strip()]
    return [Trial(int(label), enroll, test) for label, enroll, test in rows]
