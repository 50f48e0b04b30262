"""Where reconstructions come from: a codec adapter (through the cache) or a folder of files.

Both give, per item, the reconstruction at the reference's rate and length,
plus the facts measured on the way (bits when known, residual delay...).
``codecbench run`` uses :class:`CodecSource`; ``codecbench score`` uses
:class:`FolderSource` for reconstructions decoded elsewhere.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from codecbench.audio import Audio, check_signal, load_audio, resample
from codecbench.cache import ReconstructionCache
from codecbench.codecs.base import Codec
from codecbench.datasets.base import Dataset, Item
from codecbench.datasets.folder import audio_files
from codecbench.datasets.manifest import require_folder
from codecbench.errors import CodecbenchError
from codecbench.reconstruct import fit_length, measure_lag, reconstruct


class CodecSource:
    """Reconstructions made by ``codec``, cached by codec fingerprint and audio hash."""

    def __init__(self, codec_id: str, codec: Codec, cache: ReconstructionCache):
        self.codec_id = codec_id
        self.codec = codec
        self.cache = cache

    def record(self) -> dict:
        """The codec's declared facts and fingerprint, for run.json."""
        return {**self.codec.facts(), "source": "codec", "fingerprint": self.codec.fingerprint()}

    def reconstruct(self, item: Item, reference: Audio) -> tuple[Audio, dict]:
        key = self.cache.key(self.codec.fingerprint(), reference.fingerprint())
        what = f"reconstruction of item {item.id!r} by codec {self.codec_id!r}"
        cached = self.cache.get(self.codec_id, key)
        if cached is not None:
            audio, facts = cached
            check_signal(audio, f"{what} (cached)", allow_silence=True)  # once here, not once per task
            return audio, {**{k: v for k, v in facts.items() if k != "sample_rate"}, "cache": "hit"}
        audio, facts = reconstruct(self.codec, self.codec_id, reference)
        check_signal(audio, what, allow_silence=True)
        self.cache.put(self.codec_id, key, audio, facts)
        return audio, {**facts, "cache": "miss"}


def _shift(audio: Audio, lag: int) -> Audio:
    """Move ``audio`` earlier by ``lag`` samples (later when negative), zero-filled, same length."""
    samples = np.zeros_like(audio.samples)
    if lag >= 0:
        samples[:, : audio.frames - lag] = audio.samples[:, lag:]
    else:
        samples[:, -lag:] = audio.samples[:, : audio.frames + lag]
    return Audio(samples, audio.sample_rate)


class FolderSource:
    """Reconstructions decoded elsewhere: files below ``root`` matched to items by relative path.

    A file matches an item when its path relative to ``root``, without the
    suffix, equals the item id (so ``ref/a/b.flac`` pairs with ``deg/a/b.wav``).
    Files are resampled to the reference's rate and cut or zero-padded to its
    length (the difference is recorded). With ``align``, the residual delay
    measured by cross-correlation is removed before scoring; otherwise it is
    only recorded. Bits are unknown here, so no bitrate is measured.
    """

    codec = None  # nothing to time or inspect: tasks that need a codec record why they cannot run

    def __init__(self, codec_id: str, root: str | Path, dataset: Dataset, align: bool = False):
        self.codec_id = codec_id
        self.root = require_folder(root, "reconstructions")
        self.align = bool(align)
        self.files = audio_files(self.root)
        ids = {item.id for item in dataset}
        self.unmatched_items = sorted(ids - set(self.files))
        self.unmatched_files = sorted(str(self.files[key].relative_to(self.root)) for key in set(self.files) - ids)

    def record(self) -> dict:
        digest = hashlib.sha256()
        for key, path in sorted(self.files.items()):
            digest.update(key.encode() + b"\0" + hashlib.sha256(path.read_bytes()).digest())
        return {
            "source": "folder", "path": str(self.root), "family": "external", "nominal_kbps": None,
            "align": self.align, "fingerprint": digest.hexdigest(),
            "unmatched_items": self.unmatched_items, "unmatched_files": self.unmatched_files,
        }

    def reconstruct(self, item: Item, reference: Audio) -> tuple[Audio, dict]:
        path = self.files.get(item.id)
        if path is None:
            raise CodecbenchError(f"expected a reconstruction {self.root}/{item.id}.<audio suffix>, found none")
        decoded = load_audio(path)
        if decoded.channels != reference.channels:
            raise CodecbenchError(
                f"{path}: expected {reference.channels} channel(s) like the reference, found {decoded.channels}"
            )
        check_signal(decoded, str(path), allow_silence=True)
        back = resample(decoded, reference.sample_rate)
        length_difference = back.frames - reference.frames
        back = fit_length(back, reference.frames)
        lag = measure_lag(reference, back)
        shift = lag if self.align else 0
        if shift:
            back = _shift(back, shift)
        facts = {
            "seconds": reference.duration,
            "residual_delay_samples": lag - shift,
            "applied_shift_samples": shift,
            "length_difference_samples": length_difference,
            "file": str(path),
            "file_rate": decoded.sample_rate,
            "item_rate": reference.sample_rate,
            "resampled": decoded.sample_rate != reference.sample_rate,
            "channels": reference.channels,
        }
        return back, facts
