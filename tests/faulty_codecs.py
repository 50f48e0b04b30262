"""Codecs that misbehave on purpose, to test how the pipeline records their faults.

They are fault injectors for the pipeline under test, not stand-ins for real codecs.
"""

from __future__ import annotations

import numpy as np

from codecbench.audio import Audio
from codecbench.codecs.base import Encoded
from codecbench.codecs.identity import IdentityCodec


class RaisingCodec(IdentityCodec):
    """Raises on items longer than ``max_seconds``."""

    def __init__(self, max_seconds: float = 0.0):
        self.max_seconds = max_seconds

    def params(self) -> dict:
        return {"max_seconds": self.max_seconds}

    def encode(self, audio: Audio) -> Encoded:
        if audio.duration > self.max_seconds:
            raise RuntimeError(f"refusing {audio.duration:.2f} s of audio")
        return super().encode(audio)


class NaNCodec(IdentityCodec):
    def decode(self, encoded: Encoded) -> Audio:
        samples = np.array(encoded.payload, copy=True)
        samples[:, ::100] = np.nan
        return Audio(samples, encoded.sample_rate)


class ExtraChannelCodec(IdentityCodec):
    def decode(self, encoded: Encoded) -> Audio:
        return Audio(np.concatenate([encoded.payload, encoded.payload]), encoded.sample_rate)


class MonoOnlyHalfCodec(IdentityCodec):
    """Mono-only, at 8 kHz, halving the signal: exercises resampling and per-channel coding."""

    sample_rates = (8000,)
    channel_counts = (1,)

    def decode(self, encoded: Encoded) -> Audio:
        return Audio(np.asarray(encoded.payload) * 0.5, encoded.sample_rate)


class StereoOnlyCodec(IdentityCodec):
    """Stereo-only (like FFmpeg's native Vorbis encoder): exercises the mono upmix."""

    channel_counts = (2,)

    def decode(self, encoded: Encoded) -> Audio:
        samples = np.asarray(encoded.payload).copy()
        samples[1] *= 0.5  # the two channels differ, so the pipeline's mean is visible
        return Audio(samples, encoded.sample_rate)
