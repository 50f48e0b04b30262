"""The run folder's files: per-item rows (rows.jsonl) and provenance (run.json).

Rows are appended one JSON line at a time and flushed to disk before the
next item starts, so a run killed at any moment loses at most the item in
flight. A torn last line (the process died mid-write) is cut off when the
file is reopened; a row's key (codec, item, task) is never written twice.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterator

from codecbench.errors import CodecbenchError

ROWS_FILE = "rows.jsonl"
RUN_FILE = "run.json"
SUMMARY_FILE = "summary.json"
TRIALS_FILE = "trials.tsv"
REPORT_FILE = "summary.md"

#: the pseudo-task name of codec-stage rows (bits, measured kbps, delay).
CODEC_STAGE = "codec"


def row_key(row: dict) -> tuple[str, str, str]:
    return (row["codec"], row["item"], row["task"])


class RowStore:
    """Append-only rows of one run folder, with the keys already present."""

    def __init__(self, run_dir: str | Path):
        self.path = Path(run_dir) / ROWS_FILE
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.done: set[tuple[str, str, str]] = set()
        #: codec id -> items with at least one failed row (what max_failure_fraction counts).
        self.failed_items: dict[str, set[str]] = {}
        for row in self._read_repairing():
            self._note(row)
        self._handle = open(self.path, "a", encoding="utf-8")

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


def read_rows(run_dir: str | Path) -> Iterator[dict]:
    """Rows of a run folder, skipping a torn final line (never repairs: read-only)."""
    path = Path(run_dir) / ROWS_FILE
    if not path.exists():
        raise CodecbenchError(f"{run_dir}: expected a run folder with {ROWS_FILE}, found none")
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            if line.endswith("\n") and line.strip():
                yield json.loads(line)


def write_json(path: str | Path, data: dict) -> None:
    """Write JSON atomically (temporary file, then rename)."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True, allow_nan=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)


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
    path = Path(run_dir) / TRIALS_FILE
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def read_trials(run_dir: str | Path) -> list:
    """The run folder's trials (``Trial`` objects), or an empty list."""
    from codecbench.datasets.base import Trial

    path = Path(run_dir) / TRIALS_FILE
    if not path.exists():
        return []
    rows = [line.split("\t") for line in path.read_text(encoding="utf-8").splitlines()[1:] if line.strip()]
    return [Trial(int(label), enroll, test) for label, enroll, test in rows]
