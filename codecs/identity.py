"""The identity codec: the reconstruction is the input, bit for bit.

Its bitrate is that of the raw float32 samples (32 bits per sample per
channel), so it also serves as the ceiling of every metric.
"""

from __future__ import annotations

import numpy as np

from codecbench.audio import Audio
from codecbench.codecs.base import Codec, Encoded


class IdentityCodec(Codec):
    family = "identity"
    lossless = True

    def encode(self, audio: Audio) -> Encoded:
        payload = np.array(audio.samples, dtype=np.float32, copy=True)
        return Encoded(
            payload=payload,
            bits=payload.size * 32,
            frames=audio.frames,
            sample_rate=audio.sample_rate,
            channels=audio.channels,
        )

    def decode(self, encoded: Encoded) -> Audio:
        return Audio(np.array(encoded.payload, dtype=np.float32, copy=True), encoded.sample_rate)
