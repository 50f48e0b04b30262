"""LC3, the Bluetooth LE Audio codec, through lc3py (Google's liblc3, ``import lc3``).

LC3 codes mono frames of 2.5, 5, 7.5 or 10 ms at 8, 16, 24, 32 or 48 kHz
into a fixed number of bytes per frame (20 to 400), chosen from the bitrate.
The adapter codes one channel; the pipeline codes each channel of a stereo
item on its own.

Bit accounting: ``Encoded.bits`` is 8 x the bytes of every LC3 frame emitted
(``Encoder.get_frame_bytes(bitrate)`` per frame). There is no container and
no header: an LC3 frame is self-contained once the decoder knows the frame
duration and rate. The encoder is fed whole frames, the last one padded with
zeros, and as many frames as it takes to flush the algorithmic delay, so the
measured rate sits slightly above ``frame bytes x 8 / frame_ms``: +0.33% over
the 45 demo speech items, at most +0.6% on any item as long as the shortest
(2.24 s).

Delay: the decoder output lags the input by the codec's algorithmic delay,
``Encoder.get_delay_samples()`` (liblc3's ``lc3_delay_samples``): 2.5 ms at
10 ms frames (40 samples at 16 kHz), 4 ms at 7.5 ms frames, as the LC3
specification says. ``decode`` drops that many samples, so the output lines
up with the input sample for sample (measured by cross-correlation on demo
speech: residual lag 0 at every frame duration).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from codecbench.audio import Audio
from codecbench.codecs.base import Codec, Encoded
from codecbench.errors import CodecbenchError, ConfigError, missing_extra
from codecbench.provenance import require_version

#: Sample rates (Hz) LC3 codes without its high-resolution mode.
SAMPLE_RATES = (8000, 16000, 24000, 32000, 48000)

#: Frame duration (ms) -> encoder lookahead (ms): the LC3 specification's
#: algorithmic delay beyond the frame (10 and 7.5 ms frames; liblc3's 5 and
#: 2.5 ms frames share the 10 ms frame's 2.5 ms). ``decode`` removes the delay
#: the library reports, which the tests check against this table.
LOOKAHEAD_MS = {2.5: 2.5, 5.0: 2.5, 7.5: 4.0, 10.0: 2.5}

#: Bytes per LC3 frame the specification allows, whatever the frame duration.
MIN_FRAME_BYTES, MAX_FRAME_BYTES = 20, 400


def _import_lc3() -> Any:
    try:
        import lc3
    except ImportError as exc:
        raise missing_extra("lc3py", "codecs") from exc
    return lc3


def release(coder: Any) -> None:
    """Free an lc3py Encoder's or Decoder's C states now.

    lc3py 1.1.3's ``__del__`` builds a generator over its states and never runs
    it, so each encoder and decoder leaks its state (about 15 KB per item at
    48 kHz). The states are freed here and the list emptied, so a ``__del__``
    that does free them (a later lc3py) finds nothing left to free.
    """
    for name in ("_Encoder__encoders", "_Decoder__decoders"):
        states = getattr(coder, name, None)
        if isinstance(states, list):
            for state in states:
                coder.free(state)
            states.clear()


def bitrate_range_kbps(frame_ms: float) -> tuple[float, float]:
    """Lowest and highest LC3 bitrate (kbit/s) at ``frame_ms``: 20 and 400 bytes per frame."""
    return MIN_FRAME_BYTES * 8 / frame_ms, MAX_FRAME_BYTES * 8 / frame_ms


class LC3Codec(Codec):
    """LC3 at a constant ``bitrate`` (kbit/s) with ``frame_ms`` frames (2.5, 5, 7.5 or 10 ms).

    The bitrate sets the bytes per frame, ``floor(bitrate x frame_ms / 8)``;
    it must give 20 to 400 bytes (16 to 320 kbit/s at 10 ms frames).
    Invalid values raise ConfigError listing the valid ones.
    """

    version = "1"
    family = "lc3"
    sample_rates = SAMPLE_RATES
    channel_counts = (1,)
    #: no padding beyond the frame: the last frame is zero-filled and one more
    #: may flush the 2.5 ms delay: +0.33% on demo speech, at most +0.6% per item.
    bitrate_tolerance = 0.02

    def __init__(self, bitrate: float, frame_ms: float = 10):
        if isinstance(frame_ms, bool) or not isinstance(frame_ms, (int, float)) or float(frame_ms) not in LOOKAHEAD_MS:
            choices = ", ".join(f"{ms:g}" for ms in LOOKAHEAD_MS)
            raise ConfigError(f"lc3: expected frame_ms one of {choices}; found {frame_ms!r}")
        frame_ms = float(frame_ms)
        if isinstance(bitrate, bool) or not isinstance(bitrate, (int, float)):
            raise ConfigError(f"lc3: expected bitrate as a number of kbit/s, found {bitrate!r}")
        low, high = bitrate_range_kbps(frame_ms)
        if not low <= bitrate <= high:
            raise ConfigError(
                f"lc3: expected bitrate from {low:.4g} to {high:.4g} kbit/s at {frame_ms:g} ms frames, "
                f"found {bitrate:g}"
            )
        self.nominal_kbps = float(bitrate)
        self.frame_ms = frame_ms
        self.lookahead_ms = LOOKAHEAD_MS[frame_ms]

    @property
    def frame_us(self) -> int:
        """Frame duration in microseconds, as liblc3 takes it."""
        return int(round(self.frame_ms * 1000))

    def params(self) -> dict:
        """What changes the output: bitrate (kbit/s), frame duration (ms), lc3py version."""
        return {"bitrate_kbps": self.nominal_kbps, "frame_ms": self.frame_ms, "lc3py": require_version("lc3py", "codecs")}

    def encode(self, audio: Audio) -> Encoded:
        """Encode with a fresh encoder; payload = list of LC3 frames (bytes), delay flushed."""
        self.check_input(audio.sample_rate, audio.channels)
        lc3 = _import_lc3()
        encoder = lc3.Encoder(self.frame_us, audio.sample_rate)
        try:
            size = encoder.get_frame_samples()
            delay = encoder.get_delay_samples()
            frame_bytes = encoder.get_frame_bytes(int(round(self.nominal_kbps * 1000)))
            count = math.ceil((audio.frames + delay) / size)
            pcm = np.zeros(count * size, np.float32)
            pcm[: audio.frames] = audio.samples[0]
            payload = [encoder.encode(pcm[i * size : (i + 1) * size].tobytes(), frame_bytes) for i in range(count)]
        finally:
            release(encoder)
        return Encoded(
            payload=payload,
            bits=8 * sum(len(frame) for frame in payload),
            frames=audio.frames,
            sample_rate=audio.sample_rate,
            channels=1,
            delay_samples=delay,
        )

    def decode(self, encoded: Encoded) -> Audio:
        """Decode every frame, drop ``encoded.delay_samples``; returns exactly ``encoded.frames`` frames."""
        self.check_input(encoded.sample_rate, encoded.channels)
        lc3 = _import_lc3()
        decoder = lc3.Decoder(self.frame_us, encoded.sample_rate)
        try:
            blocks = [np.frombuffer(decoder.decode(frame), np.float32) for frame in encoded.payload]
        finally:
            release(decoder)
        decoded = np.concatenate(blocks) if blocks else np.zeros(0, np.float32)
        start, stop = encoded.delay_samples, encoded.delay_samples + encoded.frames
        if decoded.size < stop:
            raise CodecbenchError(f"lc3: expected at least {stop} decoded samples, found {decoded.size}")
        return Audio(np.array(decoded[start:stop], np.float32)[None, :], encoded.sample_rate)
