"""Traditional codecs through PyAV (FFmpeg's encoders and decoders, in memory).

One adapter class, :class:`PyAVCodec`, serves every FFmpeg codec; what
differs between codecs is data, a :class:`~codecbench.codecs.pyav_families.FamilySpec`
in :data:`~codecbench.codecs.pyav_families.FAMILIES` (encoder and decoder,
the rates and bitrates they accept, the options a config may set, where the
delay comes from, the declared latency and bitrate tolerance). A new
traditional codec is a ``FAMILIES`` entry plus YAML files in ``conf/codec/``.

Bit accounting: ``Encoded.bits`` is the exact sum of the packets the encoder
emitted, in bits. No container is involved (no Ogg pages, no RTP or file
headers) and codec stream headers sent once per stream (``extradata``: Opus's
OpusHead, AAC's AudioSpecificConfig, Vorbis's header packets, FLAC's
STREAMINFO) are excluded; they travel in ``Encoded.side`` because the decoder
needs them. What a packet holds per codec (frame headers, AMR's frame header
byte) is documented beside its family.

Delay: ``decode`` returns exactly the input's frames, aligned with the input:
it drops the encoder's leading padding (or the decoder does, given the
extradata), plus any delay read from the bitstream or measured at encode
time, as the family says (see :mod:`codecbench.codecs.pyav_families`). The
total is reported in ``Encoded.delay_samples``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from codecbench.audio import Audio
from codecbench.codecs.base import Codec, Encoded
from codecbench.codecs.pyav_families import FAMILIES, FamilySpec
from codecbench.errors import CodecbenchError, ConfigError, missing_extra

#: FFmpeg channel layout names by channel count.
LAYOUTS = {1: "mono", 2: "stereo"}

#: Full scale of the integer sample formats: float x codes as round(x * scale), clipped.
INT_SCALE = {"s16": 2**15, "s32p": 2**31}

#: Samples per frame handed to PyAV (it re-cuts them to the encoder's frame size).
CHUNK = 8192

#: FFmpeg's lambda unit: ``global_quality`` = quality * FF_QP2LAMBDA.
FF_QP2LAMBDA = 118
#: Highest ``global_quality`` the quality search tries (Vorbis quality 10).
MAX_GLOBAL_QUALITY = 10 * FF_QP2LAMBDA
#: d log(bits) / d log(global_quality + 1) of native Vorbis, about 0.4 on demo
#: speech and music (e.g. 60 -> 129 kbit/s from 8 to 64 on 16 kHz speech).
QUALITY_SEARCH_SLOPE = 0.4
#: Sample rate at which the declared latency (``frame_ms``, ``lookahead_ms``) is
#: given: the rate the variant codes 16 kHz speech at (``choose_rate(16000)``).
LATENCY_REFERENCE_RATE = 16000


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


def _check_bitrate(family: str, spec: FamilySpec, bitrate: Any) -> tuple[float | None, tuple[int, ...] | None]:
    """Validate ``bitrate`` (kbit/s); return it with the sample rates it is valid at."""
    if spec.lossless:
        if bitrate is not None:
            raise ConfigError(f"{family}: expected no bitrate (lossless, the rate is what it takes), found {bitrate!r}")
        return None, spec.sample_rates
    if isinstance(bitrate, bool) or not isinstance(bitrate, (int, float)):
        raise ConfigError(f"{family}: expected bitrate as a number of kbit/s, found {bitrate!r}")
    rates = spec.rates_for(float(bitrate))
    if rates is not None and not rates:
        note = f" ({spec.bitrate_note})" if spec.bitrate_note else ""
        raise ConfigError(f"{family}: expected bitrate {spec.describe_bitrates()} kbit/s{note}; found {bitrate:g}")
    return float(bitrate), rates


def _check_options(family: str, spec: FamilySpec, options: dict) -> dict[str, str]:
    """Validate the encoder options; return every settable option as FFmpeg text."""
    unknown = sorted(set(options) - set(spec.options))
    if unknown:
        valid = ", ".join(spec.options) or "none"
        raise ConfigError(f"{family}: unknown option(s) {', '.join(unknown)}; valid options: {valid}")
    chosen = {}
    for name, choice in spec.options.items():
        text = _option_text(options.get(name, choice.default))
        if text not in choice.values:
            raise ConfigError(f"{family}: expected {name} one of {', '.join(choice.values)}; found {options[name]!r}")
        chosen[name] = text
    return chosen


class PyAVCodec(Codec):
    """Any FFmpeg codec registered in ``FAMILIES``, encoded and decoded in memory.

    ``family`` names the entry; ``bitrate`` is the requested bitrate in kbit/s
    (``nominal_kbps``; omitted for lossless families); ``options`` are the
    family's encoder options (for Opus: ``vbr`` off|on|constrained,
    ``frame_duration`` in ms, ``application`` voip|audio|lowdelay). Invalid values
    raise ConfigError listing the valid ones.
    """

    version = "2"

    def __init__(self, family: str, bitrate: float | None = None, **options: Any):
        spec = FAMILIES.get(family)
        if spec is None:
            raise ConfigError(f"expected codec family one of {', '.join(sorted(FAMILIES))}; found {family!r}")
        self.nominal_kbps, self.sample_rates = _check_bitrate(family, spec, bitrate)
        self.options = _check_options(family, spec, options)
        self.spec = spec
        self.family = family
        self.channel_counts = spec.channel_counts
        self.lossless = spec.lossless
        self.bitrate_tolerance = spec.bitrate_tolerance
        rate = self.choose_rate(LATENCY_REFERENCE_RATE)
        self.frame_ms = 1000.0 * spec.frame(rate, self.options) / rate
        self.lookahead_ms = 1000.0 * spec.lookahead(rate, self.options) / rate

    def params(self) -> dict:
        """Everything that changes the output: codec, bitrate (kbit/s), encoder options, library versions."""
        av = _import_av()
        return {
            "family": self.family,
            "encoder": self.spec.encoder,
            "decoder": self.spec.decoder,
            "bitrate_kbps": self.nominal_kbps,
            "options": {**self.spec.fixed_options, **self.options},
            "av": av.__version__,
            "ffmpeg": av.ffmpeg_version_info,
        }

    # --- encoding ------------------------------------------------------------------

    def encode(self, audio: Audio) -> Encoded:
        """Encode with fresh encoder contexts; payload = list of raw packets (bytes).

        ``side`` holds the ``extradata`` the decoder needs, ``skip``, the
        samples ``decode`` drops from the decoder's output (negative: zeros it
        prepends) to align it with the input, and ``tail``, how many of the
        input's last samples may lie beyond the final packet (the delay found
        beyond what the encoder flushed: bitstream-read or measured).
        ``delay_samples`` is the whole delay removed, the decoder's part included.
        """
        self.check_input(audio.sample_rate, audio.channels)
        av = _import_av()
        if self.spec.quality_search:
            payload, padding, extradata = self._encode_to_target(av, audio)
        else:
            payload, padding, extradata = self._encode_once(av, audio, self._bitrate_settings())
        rate = audio.sample_rate
        # the delay FFmpeg (or the standard) accounts for, which the encoder flushes ...
        base = padding if self.spec.delay_ms is None else round(self.spec.delay_ms * rate / 1000)
        # ... and what lies beyond it: read from the bitstream, then measured
        extra = self.spec.residual_delay(payload) if self.spec.residual_delay is not None else 0
        skip = base + extra - (padding if self.spec.decoder_removes_padding else 0)
        if self._aligns():
            lag = self._measured_lag(av, audio, payload, extradata, skip)
            extra, skip = extra + lag, skip + lag
        return Encoded(
            payload=payload,
            bits=8 * sum(len(data) for data in payload),
            frames=audio.frames,
            sample_rate=rate,
            channels=audio.channels,
            side={"extradata": extradata, "skip": int(skip), "tail": max(0, int(extra))},
            delay_samples=int(base + extra),
        )

    def _aligns(self) -> bool:
        """Whether the remaining lag is measured at encode time (the family's ``align_when``)."""
        when = self.spec.align_when
        chosen = {**self.spec.fixed_options, **self.options}
        return when is not None and all(chosen.get(name) == value for name, value in when.items())

    def _bitrate_settings(self) -> dict[str, Any]:
        """Encoder context settings for the nominal bitrate (bits/s); none for lossless codecs."""
        return {} if self.nominal_kbps is None else {"bit_rate": int(round(self.nominal_kbps * 1000))}

    def _encode_once(self, av: Any, audio: Audio, settings: dict[str, Any]) -> tuple[list[bytes], int, bytes]:
        """One encoder pass: (packets, leading padding in samples, extradata)."""
        context = av.CodecContext.create(self.spec.encoder, "w")
        context.sample_rate = audio.sample_rate
        context.layout = LAYOUTS[audio.channels]
        context.format = self.spec.sample_format
        for name, value in settings.items():
            setattr(context, name, value)
        context.options = {**self.spec.fixed_options, **self.options}
        context.open()
        samples = audio.samples
        flush = round(self.spec.flush(audio.sample_rate, self.options))
        if flush:
            samples = np.pad(samples, ((0, 0), (0, flush)))
        packets = []
        for start in range(0, samples.shape[1], CHUNK):  # PyAV re-cuts frames to the encoder's frame size
            frame = self._frame(av, samples[:, start : start + CHUNK], audio.sample_rate)
            frame.pts = start
            packets.extend(context.encode(frame))
        packets.extend(context.encode(None))
        padding = max(0, -int(packets[0].pts)) if packets and packets[0].pts is not None else 0
        return [bytes(packet) for packet in packets], padding, bytes(context.extradata or b"")

    def _encode_to_target(self, av: Any, audio: Audio) -> tuple[list[bytes], int, bytes]:
        """The highest-quality stream whose packets fit the nominal bitrate.

        For encoders that ignore ``bit_rate`` (native Vorbis): the quality
        (``global_quality``, 0..``MAX_GLOBAL_QUALITY``) is searched, by
        interpolating log(bits) over log(global_quality + 1) between the
        closest settings found either side of the target, until they are
        adjacent. Bits grow with quality, so the result is the best that fits;
        when even quality 0 overshoots, quality 0 is used.
        """
        target = self.nominal_kbps * 1000.0 * audio.frames / audio.sample_rate
        tried: dict[int, tuple[list[bytes], int, bytes]] = {}

        def bits(quality: int) -> int:
            if quality not in tried:
                tried[quality] = self._encode_once(av, audio, {"qscale": True, "global_quality": quality})
            return 8 * sum(len(data) for data in tried[quality][0])

        below, above = None, None  # highest quality known to fit, lowest known to overshoot
        quality = 8
        while above is None or below is None or above - below > 1:
            if bits(quality) <= target:
                below = quality
            else:
                above = quality
            if below is None and quality == 0 or above is None and quality == MAX_GLOBAL_QUALITY:
                break
            quality = self._next_quality(below, above, bits, target)
        return tried[below if below is not None else 0]

    @staticmethod
    def _next_quality(below: int | None, above: int | None, bits: Any, target: float) -> int:
        """Next ``global_quality`` to try: interpolated inside the bracket, else extrapolated out of it.

        Both on log(bits) over log(global_quality + 1); outside a bracket with
        the slope ``QUALITY_SEARCH_SLOPE`` (measured on the demo corpus).
        """
        if below is not None and above is not None:
            x0, x1 = math.log(below + 1), math.log(above + 1)
            y0, y1 = math.log(max(bits(below), 1)), math.log(bits(above))
            guess = math.exp(x0 + (math.log(target) - y0) * (x1 - x0) / (y1 - y0)) - 1 if y1 > y0 else below
            return int(min(above - 1, max(below + 1, round(guess))))
        known = below if below is not None else above
        guess = (known + 1) * (target / max(bits(known), 1)) ** (1 / QUALITY_SEARCH_SLOPE) - 1
        if below is not None:
            return int(min(MAX_GLOBAL_QUALITY, max(below + 1, round(guess))))
        return int(max(0, min(above - 1, round(guess))))

    def _frame(self, av: Any, samples: np.ndarray, sample_rate: int) -> Any:
        """An av.AudioFrame holding ``samples`` (channels, frames) in the encoder's sample format."""
        fmt = self.spec.sample_format
        if fmt in INT_SCALE:
            dtype = np.int16 if fmt == "s16" else np.int32
            info = np.iinfo(dtype)
            samples = np.clip(np.round(samples.astype(np.float64) * INT_SCALE[fmt]), info.min, info.max).astype(dtype)
        planar = fmt.endswith("p")
        data = np.ascontiguousarray(samples if planar else samples.T.reshape(1, -1))
        frame = av.AudioFrame.from_ndarray(data, format=fmt, layout=LAYOUTS[samples.shape[0]])
        frame.sample_rate = sample_rate
        return frame

    def _measured_lag(self, av: Any, audio: Audio, payload: list[bytes], extradata: bytes, skip: int) -> int:
        """Integer lag of the decoded output behind ``audio`` after dropping ``skip`` samples.

        The pipeline's own measure (:func:`codecbench.reconstruct.measure_lag`,
        cross-correlation within +-50 ms), applied where the input is known.
        """
        from codecbench.reconstruct import measure_lag

        decoded = self._decode_samples(av, payload, extradata, audio.sample_rate, audio.channels)
        return measure_lag(audio, Audio(self._align(decoded, skip, audio.frames, slack=None), audio.sample_rate))

    # --- decoding ------------------------------------------------------------------

    def decode(self, encoded: Encoded) -> Audio:
        """Decode the packets; returns exactly ``encoded.frames`` frames, delay removed."""
        self.check_input(encoded.sample_rate, encoded.channels)
        av = _import_av()
        decoded = self._decode_samples(
            av, encoded.payload, encoded.side.get("extradata", b""), encoded.sample_rate, encoded.channels
        )
        skip, tail = int(encoded.side.get("skip", 0)), int(encoded.side.get("tail", 0))
        return Audio(self._align(decoded, skip, encoded.frames, tail), encoded.sample_rate)

    def _align(self, decoded: np.ndarray, skip: int, frames: int, slack: int | None) -> np.ndarray:
        """Drop ``skip`` leading samples (prepend zeros if negative); cut or zero-fill to ``frames``.

        At most ``slack`` samples may be missing at the end (alignment beyond
        the final packet); ``None``: any number.
        """
        decoded = decoded[:, skip:] if skip >= 0 else np.pad(decoded, ((0, 0), (-skip, 0)))
        short = frames - decoded.shape[1]
        if slack is not None and short > slack:
            raise CodecbenchError(
                f"{self.family}: expected at least {frames - slack} decoded frames after the delay, "
                f"found {decoded.shape[1]}"
            )
        if short > 0:
            decoded = np.pad(decoded, ((0, 0), (0, short)))
        return np.ascontiguousarray(decoded[:, :frames])

    def _decode_samples(self, av: Any, payload: list[bytes], extradata: bytes, rate: int, channels: int) -> np.ndarray:
        """Every sample the decoder outputs for ``payload``, float32 (channels, frames)."""
        context = av.CodecContext.create(self.spec.decoder, "r")
        context.sample_rate = rate
        context.layout = LAYOUTS[channels]
        if extradata:
            context.extradata = extradata
        blocks = []
        for data in payload:
            blocks.extend(self._samples(frame, rate, channels) for frame in context.decode(av.Packet(data)))
        try:
            blocks.extend(self._samples(frame, rate, channels) for frame in context.decode(None))
        except av.error.EOFError:  # decoders without delay (FLAC) refuse a second flush
            pass
        return np.concatenate(blocks, axis=1) if blocks else np.zeros((channels, 0), np.float32)

    def _samples(self, frame: Any, rate: int, channels: int) -> np.ndarray:
        """A decoded av.AudioFrame as float32 (channels, frames); checks rate and channels."""
        if frame.sample_rate != rate:
            raise CodecbenchError(f"{self.family}: expected decoded rate {rate} Hz, found {frame.sample_rate}")
        array = frame.to_ndarray()
        found = len(frame.layout.channels)
        if not frame.format.is_planar:
            array = array.reshape(-1, found).T
        if found != channels:
            raise CodecbenchError(f"{self.family}: expected {channels} decoded channels, found {found}")
        if np.issubdtype(array.dtype, np.integer):
            array = array / float(-np.iinfo(array.dtype).min)
        return array.astype(np.float32, copy=False)
