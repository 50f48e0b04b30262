"""Codec adapters behind one contract (:mod:`codecbench.codecs.base`).

Each variant is a YAML file in ``conf/codec/`` whose ``_target_`` is an adapter
class here; the file name is the codec's id everywhere.
"""

from codecbench.codecs.base import Codec, Encoded

__all__ = ["Codec", "Encoded"]
