"""ESC-50 environmental sounds in the release layout.

``<root>/meta/esc50.csv`` (columns filename, fold, target, category, esc10,
src_file, take) and ``<root>/audio/<filename>``; ``root`` may also be the folder
holding ``ESC-50-master/`` (where the GitHub archive unpacks). 2000 clips of 5 s,
44.1 kHz, 50 classes in 5 cross-validation folds.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

from codecbench.datasets.base import Dataset, Item
from codecbench.datasets.manifest import (
    audio_file,
    layout_root,
    read_csv_rows,
    reject_duplicates,
    require_folder,
    strip_suffix,
    where,
)
from codecbench.errors import ConfigError

#: the columns meta/esc50.csv must have.
COLUMNS = ("filename", "fold", "target", "category", "esc10", "src_file", "take")
#: ESC-50's cross-validation folds.
FOLDS = range(1, 6)
#: the folder the GitHub archive unpacks into.
NESTED_FOLDER = "ESC-50-master"
CSV_PATH = "meta/esc50.csv"


def _int_cell(row: dict, column: str, at: str) -> int:
    try:
        return int(row[column])
    except ValueError:
        raise ConfigError(f"{at}: expected an integer {column}, found {row[column]!r}") from None


def _bool_cell(row: dict, column: str, at: str) -> bool:
    value = row[column].strip()
    if value not in ("True", "False"):
        raise ConfigError(f"{at}: expected {column} True or False, found {value!r}")
    return value == "True"


def _check_folds(folds: int | Iterable[int] | None) -> set[int] | None:
    """The folds to keep as a set (None: all); ConfigError for a fold outside 1-5."""
    if folds is None:
        return None
    wanted = [folds] if isinstance(folds, int) else list(folds)
    bad = [f for f in wanted if not isinstance(f, int) or f not in FOLDS]
    if bad or not wanted:
        raise ConfigError(f"dataset.folds: expected fold numbers from 1 to 5, found {wanted}")
    return set(wanted)


class ESC50Dataset(Dataset):
    """ESC-50 clips, sorted by id (file name without suffix), optionally only some folds.

    Each item: domain ``audio``, label = category, metadata ``fold``, ``target``
    (class index 0-49), ``esc10`` (bool), ``src_file``, ``take``.
    ``folds``: fold numbers (1-5) to keep; None keeps all.
    """

    name = "esc50"

    def __init__(self, root: str | Path, folds: Iterable[int] | None = None, limit: int | None = None):
        keep = _check_folds(folds)
        root = require_folder(root, "ESC-50 root")
        base = layout_root(root, NESTED_FOLDER, CSV_PATH) or root
        csv_path = base / CSV_PATH
        rows = read_csv_rows(csv_path, "metadata CSV", required=COLUMNS)
        reject_duplicates(((row["filename"], number) for number, row in rows), csv_path)
        items = []
        for number, row in rows:
            at = where(csv_path, number)
            fold = _int_cell(row, "fold", at)
            if fold not in FOLDS:
                raise ConfigError(f"{at}: expected fold from 1 to 5, found {fold}")
            if keep is not None and fold not in keep:
                continue
            items.append(
                Item(
                    id=strip_suffix(row["filename"]),
                    path=audio_file(base / "audio", row["filename"], at),
                    domain="audio",
                    label=row["category"],
                    metadata={
                        "fold": fold,
                        "target": _int_cell(row, "target", at),
                        "esc10": _bool_cell(row, "esc10", at),
                        "src_file": row["src_file"],
                        "take": row["take"],
                    },
                )
            )
        if not items:
            raise ConfigError(f"{csv_path}: expected clips in folds {sorted(keep or FOLDS)}, found none")
        Dataset.__init__(self, sorted(items, key=lambda item: item.id), None, limit)
        self.root = root
        self.folds = sorted(keep) if keep is not None else None
