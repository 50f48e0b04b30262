"""A folder of audio files as a dataset: every readable audio file below ``root``.

Item ids are paths relative to ``root`` without their suffix (``a/b/c.wav``
-> ``a/b/c``). All items get one ``domain``. Used by ``codecbench score``
for the reference folder, and by runs as ``dataset=folder dataset.root=DIR``.
"""

from __future__ import annotations

from pathlib import Path

from codecbench.datasets.base import Dataset, Item
from codecbench.datasets.manifest import require_folder, strip_suffix
from codecbench.errors import ConfigError

#: file suffixes read as audio (what libsndfile reads), lower case.
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".aiff", ".aif", ".au", ".mp3", ".opus")


def audio_files(root: Path) -> dict[str, Path]:
    """Relative path without suffix -> file, for every audio file below ``root`` (sorted).

    Raises ConfigError when two files differ only in their suffix (``a.wav`` and
    ``a.flac``), since they would share an id.
    """
    found: dict[str, Path] = {}
    for path in sorted(root.rglob("*")):
        if path.is_file() and path.suffix.lower() in AUDIO_SUFFIXES:
            key = strip_suffix(path.relative_to(root).as_posix())
            if key in found:
                raise ConfigError(f"{root}: expected one audio file per name, found {found[key].name} and {path.name}")
            found[key] = path
    return found


class FolderDataset(Dataset):
    """Every audio file below ``root`` (suffixes in ``AUDIO_SUFFIXES``), one ``domain`` for all."""

    name = "folder"

    def __init__(self, root: str | Path, domain: str = "speech", limit: int | None = None):
        root = require_folder(root, "audio")
        files = audio_files(root)
        if not files:
            raise ConfigError(f"{root}: expected audio files ({', '.join(AUDIO_SUFFIXES)}), found none")
        self.root = root
        super().__init__([Item(id=key, path=path, domain=domain) for key, path in files.items()], limit=limit)
