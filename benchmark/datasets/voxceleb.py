"""VoxCeleb1 speaker verification from a trial list.

A trial list has lines ``label path1 path2`` (whitespace-separated), e.g.
``1 id10270/x6uYqmx31kE/00001.wav id10270/8jEAjG6SegY/00008.wav``; label 1 =
same speaker, 0 = different. Paths are relative to ``root``, which may be the
folder holding the ``idXXXXX/`` speaker folders or the one holding ``wav/idXXXXX/``.
"""

from __future__ import annotations

from pathlib import Path

from codecbench.datasets.base import Dataset, Item, Trial
from codecbench.datasets.manifest import (
    audio_file,
    layout_root,
    parse_trial_label,
    read_lines,
    require_folder,
    strip_suffix,
    where,
)
from codecbench.errors import ConfigError

#: the folder the VoxCeleb1 archives unpack the speaker folders into.
NESTED_FOLDER = "wav"


def read_trial_list(path: str | Path) -> list[tuple[int, int, str, str]]:
    """``(line number, label, path1, path2)`` for every line of a VoxCeleb trial list.

    Raises ConfigError naming the file and line for a wrong number of fields or
    a label other than 0/1, and when the list holds no trials.
    """
    rows = []
    for number, line in read_lines(path, "VoxCeleb trial list"):
        at = where(path, number)
        fields = line.split()
        if len(fields) != 3:
            raise ConfigError(f"{at}: expected 3 fields 'label path1 path2', found {len(fields)}: {line.strip()!r}")
        rows.append((number, parse_trial_label(fields[0], at), fields[1], fields[2]))
    if not rows:
        raise ConfigError(f"{path}: expected at least one trial line 'label path1 path2', found none")
    return rows


class VoxCelebDataset(Dataset):
    """The utterances a VoxCeleb trial list names, with its trials.

    Items are the unique paths, sorted by id: id = path without suffix
    (``id10270/x6uYqmx31kE/00001``), speaker = first path component,
    metadata ``video`` = second component. Trials keep the list's order.
    """

    name = "voxceleb"

    def __init__(self, root: str | Path, trials: str | Path, limit: int | None = None):
        root = require_folder(root, "VoxCeleb root")
        rows = read_trial_list(trials)
        first_speaker = rows[0][2].split("/")[0]
        base = layout_root(root, NESTED_FOLDER, first_speaker) or root
        items: dict[str, Item] = {}
        trial_list = []
        for number, label, *paths in rows:
            ids = []
            for relative in paths:
                item_id = strip_suffix(relative)
                if item_id not in items:
                    parts = item_id.split("/")
                    items[item_id] = Item(
                        id=item_id,
                        path=audio_file(base, relative, where(trials, number)),
                        domain="speech",
                        speaker=parts[0],
                        metadata={"video": parts[1]} if len(parts) > 2 else {},
                    )
                ids.append(item_id)
            trial_list.append(Trial(label, ids[0], ids[1]))
        Dataset.__init__(self, sorted(items.values(), key=lambda item: item.id), trial_list, limit)
        self.root = root
        self.trials_path = Path(trials)
