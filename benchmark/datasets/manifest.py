"""A generic manifest (JSON Lines or CSV) of audio files, and the trials TSV reader.

A manifest lists one item per JSON object (``.jsonl``/``.json``, one object per
line) or per CSV row (``.csv``, header row first). Fields:

``path``        required; a relative path resolves against the manifest's folder
``id``          default: ``path`` relative to the manifest's folder, suffix removed
                ('/' kept), e.g. ``audio/a.flac`` -> ``audio/a``
``transcript``, ``speaker``, ``label``   optional text
``domain``      ``speech`` | ``music`` | ``audio`` (default ``speech``)

Every other field goes into ``Item.metadata``. In a CSV an empty cell means "no value".

A trials file is tab-separated with the header ``label<TAB>enroll_id<TAB>test_id``,
one trial per line, ``label`` 1 (same speaker) or 0 (different speakers).

The small readers at the top of this module (text, CSV, labels, audio paths,
layout roots) are shared by every dataset loader, so they all report bad input
the same way: the file, the line, what was expected and what was found.
"""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path, PurePosixPath
from typing import Iterable

from codecbench.datasets.base import DOMAINS, Dataset, Item, Trial
from codecbench.errors import AudioError, ConfigError

#: manifest suffixes (lower case) and the format each one means.
MANIFEST_FORMATS = {".jsonl": "jsonl", ".json": "jsonl", ".csv": "csv"}

#: the exact header a trials TSV starts with.
TRIALS_HEADER = ("label", "enroll_id", "test_id")

#: the item fields a manifest may set; anything else goes into metadata.
ITEM_FIELDS = ("id", "path", "domain", "transcript", "speaker", "label")


# ---------------------------------------------------------------------------
# shared readers (used by every loader in codecbench.datasets)
# ---------------------------------------------------------------------------


def where(path: str | Path, line: int | None = None) -> str:
    """``"FILE, line N"`` (or just ``"FILE"``) for error messages."""
    return f"{path}, line {line}" if line is not None else str(path)


def read_text(path: str | Path, what: str) -> str:
    """The UTF-8 text of ``path`` (a leading BOM dropped).

    ``what`` says what the file should be ("manifest", "trials list") in the
    ConfigError raised when it is missing or not UTF-8 text.
    """
    path = Path(path)
    if not path.is_file():
        found = "a folder" if path.is_dir() else "no such file"
        raise ConfigError(f"{path}: expected a {what} file, found {found}")
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: expected a UTF-8 {what} file, found undecodable bytes ({exc})") from exc


def read_lines(path: str | Path, what: str) -> list[tuple[int, str]]:
    """``(line number from 1, line)`` for every non-blank line, end-of-line characters removed.

    Lines are split on ``\\n`` only (a JSON string may legally hold U+2028).
    """
    text = read_text(path, what)
    lines = []
    for number, line in enumerate(text.split("\n"), start=1):
        line = line.rstrip("\r")
        if line.strip():
            lines.append((number, line))
    return lines


def read_csv_rows(path: str | Path, what: str, required: Iterable[str]) -> list[tuple[int, dict]]:
    """``(line number, {column: cell})`` for every data row of a CSV with a header row.

    Raises ConfigError naming the file when a ``required`` column is missing
    (saying which) or a row has a different number of cells than the header.
    """
    text = read_text(path, what)
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, None)
    if not header:
        raise ConfigError(f"{path}: expected a {what} with a header row, found an empty file")
    header = [name.strip() for name in header]
    missing = [name for name in required if name not in header]
    if missing:
        raise ConfigError(
            f"{where(path, 1)}: expected columns {', '.join(required)}; "
            f"missing {', '.join(missing)}; found columns {', '.join(header)}"
        )
    rows = []
    for cells in reader:
        if not cells or not any(cell.strip() for cell in cells):
            continue
        if len(cells) != len(header):
            raise ConfigError(
                f"{where(path, reader.line_num)}: expected {len(header)} cells (as in the header), "
                f"found {len(cells)}"
            )
        rows.append((reader.line_num, dict(zip(header, cells))))
    return rows


def parse_trial_label(text: str, at: str) -> int:
    """A verification label: ``"1"`` (same speaker) -> 1, ``"0"`` -> 0; anything else raises ConfigError."""
    if text.strip() not in ("0", "1"):
        raise ConfigError(f"{at}: expected trial label 0 or 1, found {text!r}")
    return int(text)


def strip_suffix(relative: str) -> str:
    """``"a/b/c.wav"`` -> ``"a/b/c"``: an item id from a relative path, '/' kept."""
    return PurePosixPath(relative).with_suffix("").as_posix()


def audio_file(base: Path, relative: str, at: str) -> Path:
    """``base / relative`` (normalised), which must be an existing file; AudioError naming ``at`` otherwise."""
    path = Path(os.path.normpath(base / relative))
    if not path.is_file():
        raise AudioError(f"{at}: expected audio file {path}, found no such file")
    return path


def require_folder(path: str | Path, what: str) -> Path:
    """``path`` as a Path, which must be an existing folder (ConfigError otherwise)."""
    path = Path(path)
    if not path.is_dir():
        found = "a file" if path.exists() else "no such folder"
        raise ConfigError(f"{path}: expected the {what} folder, found {found}")
    return path


def layout_root(root: Path, nested: str, probe: str) -> Path | None:
    """The folder, ``root`` or ``root/nested``, that holds ``probe``; None if neither does.

    Lets a user point ``root`` either at the folder that holds the data or at
    the folder the archive unpacked into (``LibriSpeech/``, ``wav/``).
    """
    for candidate in (root, root / nested):
        if (candidate / probe).exists():
            return candidate
    return None


def reject_duplicates(ids: Iterable[tuple[str, int]], path: str | Path) -> None:
    """Raise ConfigError naming ``path`` and both lines when an id occurs twice in ``(id, line)`` pairs."""
    first_line: dict[str, int] = {}
    for item_id, line in ids:
        if item_id in first_line:
            raise ConfigError(
                f"{path}: expected unique item ids, found {item_id!r} on lines {first_line[item_id]} and {line}"
            )
        first_line[item_id] = line


# ---------------------------------------------------------------------------
# manifests and trials
# ---------------------------------------------------------------------------


def _optional_text(record: dict, name: str, at: str) -> str | None:
    value = record.get(name)
    if value is None:
        return None
    if isinstance(value, (dict, list)):
        raise ConfigError(f"{at}: expected field {name!r} to be text, found {type(value).__name__} {value!r}")
    return str(value)


def item_from_record(record: dict, folder: Path, at: str) -> Item:
    """One manifest record -> Item; relative paths resolve against ``folder``; ``at`` names the line."""
    raw_path = record.get("path")
    if not isinstance(raw_path, str) or not raw_path.strip():
        found = f"fields {', '.join(sorted(record)) or 'none'}" if "path" not in record else f"path {raw_path!r}"
        raise ConfigError(f"{at}: expected a 'path' field holding a file path, found {found}")
    domain = record.get("domain")
    domain = "speech" if domain is None else domain
    if domain not in DOMAINS:
        raise ConfigError(f"{at}: expected domain one of {', '.join(DOMAINS)}, found {domain!r}")
    path = audio_file(folder, raw_path.strip(), at)
    item_id = _optional_text(record, "id", at)
    if item_id is None or not item_id.strip():
        item_id = strip_suffix(Path(os.path.relpath(path, folder)).as_posix())
    return Item(
        id=item_id,
        path=path,
        domain=domain,
        transcript=_optional_text(record, "transcript", at),
        speaker=_optional_text(record, "speaker", at),
        label=_optional_text(record, "label", at),
        metadata={key: value for key, value in record.items() if key not in ITEM_FIELDS},
    )


def _jsonl_records(path: Path) -> list[tuple[int, dict]]:
    records = []
    for number, line in read_lines(path, "manifest"):
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            snippet = line if len(line) <= 80 else line[:77] + "..."
            raise ConfigError(
                f"{where(path, number)}: expected one JSON object per line, found malformed JSON "
                f"({exc.msg}, column {exc.colno}): {snippet!r}"
            ) from exc
        if not isinstance(record, dict):
            raise ConfigError(
                f"{where(path, number)}: expected one JSON object per line, found a {type(record).__name__}"
            )
        records.append((number, record))
    return records


def _csv_records(path: Path) -> list[tuple[int, dict]]:
    rows = read_csv_rows(path, "manifest", required=("path",))
    return [(number, {k: (v if v.strip() else None) for k, v in row.items()}) for number, row in rows]


def read_manifest(path: str | Path) -> list[Item]:
    """The items of a JSONL or CSV manifest, in file order (see the module docstring for fields).

    Raises ConfigError (AudioError for a missing audio file) naming the
    manifest and line: unknown suffix, missing file, malformed line, missing
    ``path``, bad domain, duplicate ids, no items.
    """
    path = Path(path)
    kind = MANIFEST_FORMATS.get(path.suffix.lower())
    if kind is None:
        raise ConfigError(
            f"{path}: expected a manifest ending in {', '.join(MANIFEST_FORMATS)}, "
            f"found suffix {path.suffix or '(none)'!r}"
        )
    records = _jsonl_records(path) if kind == "jsonl" else _csv_records(path)
    if not records:
        raise ConfigError(f"{path}: expected at least one item in the manifest, found none")
    folder = path.parent
    items = [item_from_record(record, folder, where(path, number)) for number, record in records]
    reject_duplicates(((item.id, number) for item, (number, _) in zip(items, records)), path)
    return items


def read_trials(path: str | Path, known_ids: Iterable[str]) -> list[Trial]:
    """Trials from a TSV with header ``label<TAB>enroll_id<TAB>test_id``, in file order.

    Raises ConfigError naming the file and line for a wrong header, a wrong
    number of fields, a label other than 0/1, an id not in ``known_ids``, or no trials.
    """
    known = set(known_ids)
    lines = read_lines(path, "trials list")
    if not lines or tuple(lines[0][1].split("\t")) != TRIALS_HEADER:
        found = repr(lines[0][1]) if lines else "an empty file"
        raise ConfigError(f"{where(path, lines[0][0] if lines else 1)}: expected the header {chr(9).join(TRIALS_HEADER)!r}, found {found}")
    trials = []
    for number, line in lines[1:]:
        at = where(path, number)
        fields = line.split("\t")
        if len(fields) != 3:
            raise ConfigError(f"{at}: expected 3 tab-separated fields (label, enroll_id, test_id), found {len(fields)}")
        label = parse_trial_label(fields[0], at)
        for column, item_id in zip(TRIALS_HEADER[1:], fields[1:]):
            if item_id not in known:
                raise ConfigError(f"{at}: expected {column} to name an item of the dataset, found unknown id {item_id!r}")
        trials.append(Trial(label, fields[1], fields[2]))
    if not trials:
        raise ConfigError(f"{path}: expected at least one trial after the header, found none")
    return trials


class ManifestDataset(Dataset):
    """Items listed in a JSONL or CSV manifest, optionally with a trials TSV.

    ``path``: the manifest file; ``limit``: keep the first N items (file order);
    ``trials``: optional trials TSV whose ids name manifest items.
    """

    name = "manifest"

    def __init__(self, path: str | Path, limit: int | None = None, *, trials: str | Path | None = None):
        items = read_manifest(path)
        trial_list = read_trials(trials, (item.id for item in items)) if trials is not None else None
        Dataset.__init__(self, items, trial_list, limit)
        self.path = Path(path)
