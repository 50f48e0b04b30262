"""Traditional codecs through PyAV (FFmpeg's encoders and decoders, in memory).

One adapter class, :class:`PyAVCodec`, serves every FFmpeg codec; what
differs between codecs is data, a :class:`FamilySpec` in :data:`FAMILIES`
(encoder and decoder names, accepted rates and channel counts, the bitrate
range, the encoder options a config may set and their valid values). A new
traditional codec is a new ``FAMILIES`` entry plus YAML files in
``conf/codec/``, not a new class. Only Opus (libopus) is registered so far.

Bit accounting: ``Encoded.bits`` is the exact sum of the raw packet payloads
the encoder emitted, in bits. No container is involved (no Ogg pages, no
RTP headers), and codec stream headers (Opus's 19-byte OpusHead
``extradata``, sent once per stream) are excluded; they travel in
``Encoded.side`` because the decoder needs them.

Delay: encoders emit leading padding (libopus: 312 samples at 48 kHz, 120
for ``application=lowdelay``; the first packet's pts is minus that). The
adapter removes it so the reconstruction lines up with the input sample for
sample: the Opus decoder drops it itself, given the OpusHead pre-skip; for
families whose decoder does not, ``decode`` drops ``side["skip"]`` frames.
A family may also declare a residual delay read from the bitstream itself
(``FamilySpec.residual_delay``): Opus's SILK narrowband mode lags the other
modes by 6 samples at 48 kHz, see :func:`opus_residual_delay`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from codecbench.audio import Audio
from codecbench.codecs.base import Codec, Encoded
from codecbench.errors import AudioError, CodecbenchError, ConfigError, missing_extra

#: FFmpeg channel layout names by channel count.
LAYOUTS = {1: "mono", 2: "stereo"}

#: Extra delay of Opus's SILK narrowband mode (TOC configs 0-3), in samples at
#: 48 kHz, beyond the pre-skip the decoder already removes. Measured by
#: cross-correlation on demo speech and music (libopus in PyAV 18.1): 5.5-6.9
#: samples for SILK NB at 6-12 kbit/s, while SILK MB/WB, hybrid and CELT modes
#: line up within 0.5 sample. (SILK's resampler delay compensation is kept in
#: samples at the internal rate; one 8 kHz sample is 6 samples at 48 kHz.)
OPUS_SILK_NB_DELAY = 6


def opus_residual_delay(packets: Sequence[bytes]) -> int:
    """Samples (48 kHz) to drop after pre-skip so Opus output lines up with its input.

    Read from the TOC byte of each packet (RFC 6716, section 3.1): when most
    packets are SILK narrowband (config 0-3), ``OPUS_SILK_NB_DELAY``; else 0.
    A stream that switches modes is aligned for its majority mode.
    """
    narrowband = sum(1 for packet in packets if packet and packet[0] >> 3 < 4)
    return OPUS_SILK_NB_DELAY if 2 * narrowband > len(packets) else 0


@dataclass(frozen=True)
class Choice:
    """An encoder option (an FFmpeg AVOption) a config may set: valid values and default."""

    values: tuple[str, ...]
    default: str


@dataclass(frozen=True)
class FamilySpec:
    """What the adapter needs to know about one FFmpeg codec.

    ``min_kbps``/``max_kbps`` bound the requested bitrate in kbit/s.
    ``sample_format`` is the packed or planar float format fed to the
    encoder ("flt" or "fltp"). ``decoder_removes_padding`` is True when the
    decoder drops the encoder's leading padding itself (from ``extradata``).
    ``residual_delay`` maps the packets to further samples (at the decoded
    rate) by which the decoder output lags the input; ``None`` means 0.
    """

    encoder: str
    decoder: str
    sample_rates: tuple[int, ...]
    channel_counts: tuple[int, ...]
    min_kbps: float
    max_kbps: float
    sample_format: str = "flt"
    options: Mapping[str, Choice] = field(default_factory=dict)
    decoder_removes_padding: bool = False
    residual_delay: Callable[[Sequence[bytes]], int] | None = None


#: Registered families, by ``family`` name (the YAML ``family:`` value).
FAMILIES: dict[str, FamilySpec] = {
    # libopus: 6-510 kbit/s; the FFmpeg wrapper encodes only at 48 kHz here,
    # and the native Opus decoder always outputs 48 kHz, applying the OpusHead
    # pre-skip when given the encoder's extradata.
    "opus": FamilySpec(
        encoder="libopus",
        decoder="opus",
        sample_rates=(48000,),
        channel_counts=(1, 2),
        min_kbps=6.0,
        max_kbps=510.0,
        sample_format="flt",
        options={
            "application": Choice(("voip", "audio", "lowdelay"), "audio"),
            "vbr": Choice(("off", "on", "constrained"), "on"),
            "frame_duration": Choice(("2.5", "5", "10", "20", "40", "60"), "20"),
        },
        decoder_removes_padding=True,
        residual_delay=opus_residual_delay,
    ),
}


def _import_av() -> Any:
    try:
        import av
    except ImportError as exc:
        raise missing_extra("av", "codecs") from exc
    return av


def _option_text(value: Any) -> str:
    """An option value as FFmpeg spells it (YAML ``on``/``off`` arrive as booleans)."""
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


class PyAVCodec(Codec):
    """Any FFmpeg codec registered in :data:`FAMILIES`, encoded and decoded in memory.

    ``bitrate`` is the requested bitrate in kbit/s (``nominal_kbps``);
    ``options`` are the family's encoder options (for Opus: ``application``
    voip|audio|lowdelay, ``vbr`` off|on|constrained, ``frame_duration`` in
    ms). Invalid values raise ConfigError listing the valid ones.
    """

    version = "1"

    def __init__(self, family: str, bitrate: float, **options: Any):
        spec = FAMILIES.get(family)
        if spec is None:
            raise ConfigError(f"expected codec family one of {', '.join(sorted(FAMILIES))}; found {family!r}")
        if isinstance(bitrate, bool) or not isinstance(bitrate, (int, float)):
            raise ConfigError(f"{family}: expected bitrate as a number of kbit/s, found {bitrate!r}")
        if not spec.min_kbps <= bitrate <= spec.max_kbps:
            raise ConfigError(
                f"{family}: expected bitrate from {spec.min_kbps:g} to {spec.max_kbps:g} kbit/s, found {bitrate:g}"
            )
        unknown = sorted(set(options) - set(spec.options))
        if unknown:
            raise ConfigError(
                f"{family}: unknown option(s) {', '.join(unknown)}; valid options: {', '.join(spec.options)}"
            )
        chosen = {}
        for name, choice in spec.options.items():
            text = _option_text(options.get(name, choice.default))
            if text not in choice.values:
                raise ConfigError(
                    f"{family}: expected {name} one of {', '.join(choice.values)}; found {options[name]!r}"
                )
            chosen[name] = text
        self.spec = spec
        self.family = family
        self.nominal_kbps = float(bitrate)
        self.options = chosen
        self.sample_rates = spec.sample_rates
        self.channel_counts = spec.channel_counts

    def params(self) -> dict:
        """Everything that changes the output: codec, bitrate (kbit/s), options, library versions."""
        av = _import_av()
        return {
            "family": self.family,
            "encoder": self.spec.encoder,
            "decoder": self.spec.decoder,
            "bitrate_kbps": self.nominal_kbps,
            "options": dict(self.options),
            "av": av.__version__,
            "ffmpeg": av.ffmpeg_version_info,
        }

    def _check_input(self, sample_rate: int, channels: int) -> None:
        if sample_rate not in self.sample_rates:
            raise AudioError(
                f"{self.family}: expected sample rate one of {self.sample_rates} Hz, found {sample_rate}"
            )
        if channels not in self.channel_counts:
            raise AudioError(f"{self.family}: expected channels one of {self.channel_counts}, found {channels}")

    def encode(self, audio: Audio) -> Encoded:
        """Encode with a fresh encoder context; payload = list of raw packets (bytes)."""
        self._check_input(audio.sample_rate, audio.channels)
        av = _import_av()
        context = av.CodecContext.create(self.spec.encoder, "w")
        context.sample_rate = audio.sample_rate
        context.layout = LAYOUTS[audio.channels]
        context.format = self.spec.sample_format
        context.bit_rate = int(round(self.nominal_kbps * 1000))
        context.options = dict(self.options)
        context.open()
        chunk = context.frame_size or 1024
        packets = []
        for start in range(0, audio.frames, chunk):
            frame = self._frame(av, audio.samples[:, start : start + chunk], audio.sample_rate)
            frame.pts = start
            packets.extend(context.encode(frame))
        packets.extend(context.encode(None))
        padding = max(0, -int(packets[0].pts)) if packets and packets[0].pts is not None else 0
        payload = [bytes(packet) for packet in packets]
        return Encoded(
            payload=payload,
            bits=8 * sum(len(data) for data in payload),
            frames=audio.frames,
            sample_rate=audio.sample_rate,
            channels=audio.channels,
            side={
                "extradata": bytes(context.extradata or b""),
                "skip": 0 if self.spec.decoder_removes_padding else padding,
            },
        )

    def _frame(self, av: Any, samples: np.ndarray, sample_rate: int) -> Any:
        """An av.AudioFrame holding ``samples`` (channels, frames) in the encoder's float format."""
        if self.spec.sample_format == "flt":  # packed: one row of interleaved samples
            data = np.ascontiguousarray(samples.T).reshape(1, -1)
        elif self.spec.sample_format == "fltp":
            data = np.ascontiguousarray(samples)
        else:
            raise CodecbenchError(f"{self.family}: sample format {self.spec.sample_format!r} is not supported yet")
        frame = av.AudioFrame.from_ndarray(data, format=self.spec.sample_format, layout=LAYOUTS[samples.shape[0]])
        frame.sample_rate = sample_rate
        return frame

    def decode(self, encoded: Encoded) -> Audio:
        """Decode the packets; returns exactly ``encoded.frames`` frames, delay removed."""
        self._check_input(encoded.sample_rate, encoded.channels)
        av = _import_av()
        context = av.CodecContext.create(self.spec.decoder, "r")
        context.sample_rate = encoded.sample_rate
        context.layout = LAYOUTS[encoded.channels]
        if encoded.side.get("extradata"):
            context.extradata = encoded.side["extradata"]
        blocks = []
        for data in encoded.payload:
            for frame in context.decode(av.Packet(data)):
                blocks.append(self._samples(frame, encoded))
        for frame in context.decode(None):
            blocks.append(self._samples(frame, encoded))
        decoded = np.concatenate(blocks, axis=1) if blocks else np.zeros((encoded.channels, 0), np.float32)
        residual = self.spec.residual_delay(encoded.payload) if self.spec.residual_delay else 0
        decoded = decoded[:, int(encoded.side.get("skip", 0)) + residual :]
        short = encoded.frames - decoded.shape[1]
        if short > residual:
            raise CodecbenchError(
                f"{self.family}: expected at least {encoded.frames - residual} decoded frames, "
                f"found {decoded.shape[1]}"
            )
        if short > 0:  # the last ``residual`` input samples may lie beyond the final packet
            decoded = np.pad(decoded, ((0, 0), (0, short)))
        return Audio(np.ascontiguousarray(decoded[:, : encoded.frames]), encoded.sample_rate)

    def _samples(self, frame: Any, encoded: Encoded) -> np.ndarray:
        """A decoded av.AudioFrame as float32 (channels, frames); checks rate and channels."""
        if frame.sample_rate != encoded.sample_rate:
            raise CodecbenchError(
                f"{self.family}: expected decoded rate {encoded.sample_rate} Hz, found {frame.sample_rate}"
            )
        array = frame.to_ndarray()
        channels = len(frame.layout.channels)
        if not frame.format.is_planar:
            array = array.reshape(-1, channels).T
        if channels != encoded.channels:
            raise CodecbenchError(f"{self.family}: expected {encoded.channels} decoded channels, found {channels}")
        if np.issubdtype(array.dtype, np.integer):
            array = array / float(-np.iinfo(array.dtype).min)
        return array.astype(np.float32, copy=False)
