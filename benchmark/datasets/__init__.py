"""Datasets: lists of items (id, audio file, metadata) in standard layouts.

Config names: ``dataset=demo``, ``dataset=manifest``, ``dataset=librispeech``,
``dataset=voxceleb``, ``dataset=esc50`` (see conf/dataset/).
"""

from codecbench.datasets.base import Dataset, Item, Trial

__all__ = ["Dataset", "Item", "Trial"]
