"""The codec contract: ``encode(Audio) -> Encoded`` and ``decode(Encoded) -> Audio``.

An adapter declares its facts (the rates and channel counts it accepts, its
nominal bitrate, its algorithmic latency) and reports, in every ``Encoded``,
the exact number of bits it emitted. Bitrate is measured from those bits,
never typed in. The pipeline resamples to a supported rate before ``encode``
and back after ``decode``; adapters never resample, write files or change
global state, and import heavy dependencies lazily.
"""

from __future__ import annotations

import hashlib
import json
import math
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

from codecbench.audio import Audio
from codecbench.errors import AudioError, CodecbenchError


@dataclass(frozen=True)
class Tokens:
    """The payload of a token codec: integer codes, one array per codebook.

    ``codes[k]`` holds codebook ``k``'s codes, shape ``(streams, frames_k)``,
    integers in ``[0, codebook_sizes[k])``: one row per coded stream, that is
    one per channel, or a single row when the codec codes its channels jointly
    (EnCodec 48 kHz stereo). Codebooks may run at different frame
    rates (SNAC's coarse-to-fine levels), so each has its own ``frame_rates[k]``
    (frames per second of audio). ``side_bits`` counts side information sent
    beside the codes (EnCodec's per-chunk scales), already in bits.
    """

    codes: tuple  # tuple[np.ndarray, ...]
    codebook_sizes: tuple[int, ...]
    frame_rates: tuple[float, ...]
    side_bits: int = 0

    def __post_init__(self) -> None:
        if not (len(self.codes) == len(self.codebook_sizes) == len(self.frame_rates)):
            raise CodecbenchError(
                f"Tokens: expected one codebook size and frame rate per codebook, found {len(self.codes)} "
                f"code arrays, {len(self.codebook_sizes)} sizes and {len(self.frame_rates)} frame rates"
            )

    @property
    def bits(self) -> int:
        """Bits a fixed-length code costs: sum over codebooks of codes x log2(size), rounded up, plus side bits."""
        return math.ceil(sum(c.size * math.log2(n) for c, n in zip(self.codes, self.codebook_sizes))) + self.side_bits


@dataclass(frozen=True)
class Encoded:
    """What a codec emitted for one input.

    ``bits`` is the exact payload cost in bits (for bitrate accounting; what
    counts as payload is documented per adapter). ``frames`` and
    ``sample_rate`` describe the input the codec saw, so ``decode`` can return
    exactly that many frames; they are bookkeeping, not counted in ``bits``.
    ``delay_samples`` is the codec's delay, in samples at ``sample_rate``, that
    ``decode`` removes to align its output with the input (encoder priming,
    pre-skip, lookahead); it is reported, not counted in ``bits``.
    """

    payload: Any
    bits: int
    frames: int
    sample_rate: int
    channels: int
    side: dict = field(default_factory=dict)
    delay_samples: int = 0

    def __post_init__(self) -> None:
        if int(self.bits) < 0:
            raise CodecbenchError(f"Encoded.bits must be >= 0, found {self.bits}")

    @property
    def kbps(self) -> float:
        """Measured bitrate in kbit/s over the input's duration."""
        seconds = self.frames / self.sample_rate
        return self.bits / seconds / 1000.0 if seconds > 0 else float("nan")


class Codec(ABC):
    """Base of every codec adapter.

    Subclasses set the class attributes below (or override the properties)
    and implement ``encode`` and ``decode``. ``version`` is the adapter's own
    version: bump it whenever its output for the same input can change, so
    cached reconstructions are not reused.
    """

    #: adapter version, part of the fingerprint (cache key and provenance).
    version: str = "1"
    #: sample rates (Hz) the codec accepts; ``None`` = any rate.
    sample_rates: tuple[int, ...] | None = None
    #: channel counts the codec accepts; ``None`` = any.
    channel_counts: tuple[int, ...] | None = None
    #: declared bitrate in kbit/s (``None`` for variable or lossless codecs).
    nominal_kbps: float | None = None
    #: codec family, e.g. "opus", "identity", "encodec".
    family: str = "unknown"
    #: True when decode(encode(x)) must equal x sample for sample.
    lossless: bool = False
    #: frame length in ms (the audio one packet covers); None when not framed.
    frame_ms: float | None = None
    #: encoder lookahead in ms beyond the frame; None when unknown.
    lookahead_ms: float | None = None
    #: False for parametric vocoders (Codec2) that synthesise their own phases: their output
    #: does not follow the input waveform, so a sample-exact delay is not defined for them.
    preserves_waveform: bool = True
    #: how far (relative, 0.1 = 10%) measured kbps may sit from nominal on demo speech,
    #: with the reason in the adapter's docs (frame headers, padding, VBR...).
    bitrate_tolerance: float = 0.10

    @abstractmethod
    def encode(self, audio: Audio) -> Encoded:
        """Compress ``audio`` (at a supported rate and channel count)."""

    @abstractmethod
    def decode(self, encoded: Encoded) -> Audio:
        """Reconstruct audio of ``encoded.frames`` frames at ``encoded.sample_rate``."""

    def params(self) -> dict:
        """Constructor parameters that change the output (JSON-serialisable)."""
        return {}

    def weights_hash(self) -> str | None:
        """Hash of model weights, for neural codecs; ``None`` when there are none."""
        return None

    def facts(self) -> dict:
        """Declared facts, recorded in run.json and summary.json.

        A class from outside codecbench (a user's codec) also records what was
        loaded: its import path, source file sha256 and package version
        (``loaded``), so an edited class gets a new fingerprint.
        """
        facts = {
            "adapter": f"{type(self).__module__}.{type(self).__qualname__}",
            "adapter_version": self.version,
            "family": self.family,
            "sample_rates": list(self.sample_rates) if self.sample_rates else None,
            "channel_counts": list(self.channel_counts) if self.channel_counts else None,
            "nominal_kbps": self.nominal_kbps,
            "lossless": self.lossless,
            "frame_ms": self.frame_ms,
            "lookahead_ms": self.lookahead_ms,
            "algorithmic_latency_ms": self.algorithmic_latency_ms(),
            "bitrate_tolerance": self.bitrate_tolerance,
            "preserves_waveform": self.preserves_waveform,
            "params": self.params(),
            "weights_hash": self.weights_hash(),
        }
        if not type(self).__module__.startswith("codecbench."):
            from codecbench.codecs.custom import code_provenance

            facts["loaded"] = {"kind": "class", **code_provenance(type(self))}
        return facts

    def algorithmic_latency_ms(self) -> float | None:
        """Declared algorithmic latency: frame + lookahead, in ms (None when either is unknown)."""
        if self.frame_ms is None or self.lookahead_ms is None:
            return None
        return float(self.frame_ms) + float(self.lookahead_ms)

    def fingerprint(self) -> str:
        """sha256 over adapter, version, parameters and weights: the cache key's codec half."""
        blob = json.dumps(self.facts(), sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()

    def choose_rate(self, sample_rate: int) -> int:
        """The supported rate to code ``sample_rate`` audio at.

        The input rate when supported; else the lowest supported rate above it
        (no information is thrown away); else the highest supported rate.
        """
        if not self.sample_rates or sample_rate in self.sample_rates:
            return sample_rate
        above = [r for r in self.sample_rates if r > sample_rate]
        return min(above) if above else max(self.sample_rates)

    def accepts_channels(self, channels: int) -> bool:
        return not self.channel_counts or channels in self.channel_counts

    def check_input(self, sample_rate: int, channels: int) -> None:
        """AudioError unless the codec accepts ``sample_rate`` (Hz) and ``channels``, listing the valid ones.

        For adapters to call at the top of ``encode`` and ``decode`` (the pipeline
        already adapts rate and channels; direct callers get a clear error).
        """
        if self.sample_rates and sample_rate not in self.sample_rates:
            raise AudioError(f"{self.family}: expected sample rate one of {self.sample_rates} Hz, found {sample_rate}")
        if not self.accepts_channels(channels):
            raise AudioError(f"{self.family}: expected channels one of {self.channel_counts}, found {channels}")
