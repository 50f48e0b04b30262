"""LibriSpeech in its release layout.

``<root>/<subset>/<speaker>/<chapter>/<speaker>-<chapter>-<utt>.flac`` with one
``<speaker>-<chapter>.trans.txt`` per chapter folder, lines ``ID WORD WORD ...``.
``root`` may also be the folder that holds ``LibriSpeech/<subset>/`` (where the
archives unpack). Items are sorted by id; transcripts are lower-cased.
"""

from __future__ import annotations

from pathlib import Path

from codecbench.datasets.base import Dataset, Item
from codecbench.datasets.manifest import layout_root, read_lines, require_folder, where
from codecbench.errors import ConfigError

#: the folder the LibriSpeech archives unpack into.
NESTED_FOLDER = "LibriSpeech"


def _subsets_present(root: Path) -> list[str]:
    """Names of the folders in ``root`` and ``root/LibriSpeech`` (the candidate subsets)."""
    names = set()
    for folder in (root, root / NESTED_FOLDER):
        if folder.is_dir():
            names.update(p.name for p in folder.iterdir() if p.is_dir() and p.name != NESTED_FOLDER)
    return sorted(names)


def read_transcripts(path: Path) -> dict[str, tuple[int, str]]:
    """``{utterance id: (line number, lower-cased transcript)}`` from one ``.trans.txt``."""
    transcripts: dict[str, tuple[int, str]] = {}
    for number, line in read_lines(path, "LibriSpeech transcript"):
        utt_id, _, words = line.strip().partition(" ")
        if not words.strip():
            raise ConfigError(f"{where(path, number)}: expected 'ID WORD WORD ...', found {line!r}")
        if utt_id in transcripts:
            raise ConfigError(
                f"{path}: expected one line per utterance, found {utt_id!r} on lines "
                f"{transcripts[utt_id][0]} and {number}"
            )
        transcripts[utt_id] = (number, " ".join(words.split()).lower())
    return transcripts


def _chapter_items(chapter_dir: Path, subset: str) -> list[Item]:
    """The items of one ``<speaker>/<chapter>`` folder, every flac matched to a transcript line."""
    speaker, chapter = chapter_dir.parent.name, chapter_dir.name
    flacs = {p.stem: p for p in chapter_dir.glob("*.flac")}
    trans_path = chapter_dir / f"{speaker}-{chapter}.trans.txt"
    if not flacs and not trans_path.exists():
        return []
    transcripts = read_transcripts(trans_path) if trans_path.is_file() else {}
    for utt_id in sorted(flacs.keys() - transcripts.keys()):
        found = "no such line" if trans_path.is_file() else "no such file"
        raise ConfigError(f"{flacs[utt_id]}: expected a transcript line '{utt_id} ...' in {trans_path}, found {found}")
    for utt_id, (number, _) in sorted(transcripts.items(), key=lambda kv: kv[1][0]):
        if utt_id not in flacs:
            raise ConfigError(
                f"{where(trans_path, number)}: expected audio file {chapter_dir / (utt_id + '.flac')} "
                f"for transcript {utt_id!r}, found no such file"
            )
    return [
        Item(
            id=utt_id,
            path=flacs[utt_id],
            domain="speech",
            transcript=text,
            speaker=speaker,
            metadata={"chapter": chapter, "subset": subset},
        )
        for utt_id, (_, text) in transcripts.items()
    ]


def read_librispeech(root: str | Path, subset: str) -> list[Item]:
    """Every utterance of ``subset`` under ``root``, sorted by id.

    Raises ConfigError when the root or subset is missing (listing the subsets
    that are there), a flac has no transcript line, a transcript line has no
    flac, or the subset holds no utterances.
    """
    root = require_folder(root, "LibriSpeech root")
    base = layout_root(root, NESTED_FOLDER, subset)
    if base is None or not (base / subset).is_dir():
        present = ", ".join(_subsets_present(root)) or "none"
        raise ConfigError(
            f"{root}: expected the LibriSpeech subset folder {subset!r} in it or in {root / NESTED_FOLDER}, "
            f"found subsets: {present}"
        )
    subset_dir = base / subset
    items = []
    for chapter_dir in sorted(p for p in subset_dir.glob("*/*") if p.is_dir()):
        items.extend(_chapter_items(chapter_dir, subset))
    if not items:
        raise ConfigError(
            f"{subset_dir}: expected <speaker>/<chapter>/<speaker>-<chapter>-<utt>.flac files, found none"
        )
    return sorted(items, key=lambda item: item.id)


class LibriSpeechDataset(Dataset):
    """A LibriSpeech subset (``test-clean``, ``dev-other``, ...) read from its release layout.

    Each item: id ``<speaker>-<chapter>-<utt>``, lower-cased transcript,
    speaker = speaker folder, metadata ``chapter`` and ``subset``.
    """

    name = "librispeech"

    def __init__(self, root: str | Path, subset: str = "test-clean", limit: int | None = None):
        Dataset.__init__(self, read_librispeech(root, subset), None, limit)
        self.root = Path(root)
        self.subset = subset
