"""The demo corpus shipped inside the package (``codecbench/data/demo``).

54 short items (45 speech, 4 music, 5 general audio) with transcripts,
speakers and labels, plus 204 speaker-verification trials; licences in
``SOURCES.md`` beside the audio. It is the default dataset: it needs no download.
"""

from __future__ import annotations

from pathlib import Path

import codecbench
from codecbench.datasets.manifest import ManifestDataset


def demo_dir() -> Path:
    """The folder holding the demo corpus (manifest.jsonl, trials.tsv, audio/, SOURCES.md)."""
    return Path(codecbench.__file__).resolve().parent / "data" / "demo"


class DemoDataset(ManifestDataset):
    """The embedded demo corpus; ``limit`` keeps the first N items in manifest order.

    Each item's metadata keeps the manifest's extra fields: ``sample_rate`` (Hz),
    ``channels``, ``duration_s`` (seconds), ``synthetic``, ``source``, ``license``.
    """

    name = "demo"

    def __init__(self, limit: int | None = None):
        folder = demo_dir()
        super().__init__(folder / "manifest.jsonl", limit, trials=folder / "trials.tsv")
