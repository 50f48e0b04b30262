"""The codecs :class:`~codecbench.codecs.pyav.PyAVCodec` serves, as data.

Each :class:`FamilySpec` says which FFmpeg encoder and decoder to use, the
sample rates and bitrates they accept together (:class:`Tier`), the sample
format fed to the encoder, the encoder options a config may set, where the
codec's delay comes from, its declared latency, and how far its measured
bitrate may sit from nominal on demo speech (with the reason). The numbers
below were read from FFmpeg 8.1.2 as bundled in PyAV 18.1 and checked on the
demo corpus; the standard they come from is named beside each.

Delay, in the order the adapter applies it:

1. FFmpeg's own account: the first packet's pts is minus the encoder's
   leading padding (``AVCodecContext.initial_padding``). Unless the family
   sets ``delay_ms``, that is the delay removed.
2. ``delay_ms``: the standard's delay, where FFmpeg's is wrong or missing
   (AMR-NB: FFmpeg says 50 samples, the chain delays 40; G.723.1: FFmpeg says
   0, the 7.5 ms lookahead delays 60).
3. ``residual_delay``: a further delay read from the bitstream (Opus's SILK
   narrowband mode, from each packet's TOC byte).
4. ``align_when``: for codecs whose output is not a delayed copy of the input
   waveform but is phase-shifted by an item-dependent pre-filter (Opus's voip
   high-pass, whose cutoff follows the talker's pitch; AMR-NB's fixed 80 Hz
   pre-processing high-pass plus CELP synthesis), the encoder measures the
   remaining integer lag between its input and the decoded output (the
   pipeline's own measure, cross-correlation) and the decoder removes it.
   The lag is side information (``Encoded.delay_samples``), not payload.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Callable, Mapping, Sequence

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
class Tier:
    """Sample rates (Hz) and the bitrates (kbit/s) the encoder accepts at them.

    ``kbps`` lists the valid bitrates when the codec has a fixed table (MPEG
    audio, AMR modes); otherwise any bitrate from ``min_kbps`` to ``max_kbps``.
    """

    sample_rates: tuple[int, ...]
    kbps: tuple[float, ...] = ()
    min_kbps: float = 0.0
    max_kbps: float = 0.0

    def accepts(self, kbps: float) -> bool:
        if self.kbps:
            return any(abs(kbps - value) < 1e-9 for value in self.kbps)
        return self.min_kbps <= kbps <= self.max_kbps

    def describe(self) -> str:
        """The bitrates, as an error message lists them."""
        if self.kbps:
            return "one of " + ", ".join(f"{value:g}" for value in self.kbps)
        return f"from {self.min_kbps:g} to {self.max_kbps:g}"


#: Latency in samples at a sample rate, given the chosen encoder options.
Samples = Callable[[int, Mapping[str, str]], float]


def fixed_samples(count: float) -> Samples:
    """A latency of ``count`` samples at any rate."""
    return lambda rate, options: float(count)


def fixed_ms(ms: float) -> Samples:
    """A latency of ``ms`` milliseconds at any rate."""
    return lambda rate, options: ms * rate / 1000.0


@dataclass(frozen=True)
class FamilySpec:
    """What the adapter needs to know about one FFmpeg codec.

    ``sample_format``: the FFmpeg sample format fed to the encoder ("flt",
    "fltp", "s16" or "s32p"; integer formats are rounded and clipped from
    float). ``options``: encoder options a config may set; ``fixed_options``:
    options the family always sets. ``quality_search``: the encoder ignores
    ``bit_rate`` (native Vorbis), so the adapter searches its quality scale
    (``global_quality``, in FFmpeg lambda units) for the highest setting whose
    stream fits the bitrate. ``decoder_removes_padding``: the decoder drops the
    encoder's leading padding itself (told by ``extradata`` or the stream).
    ``delay_ms``, ``residual_delay``: see the module docs. ``align_when``: the
    options (fixed ones included) under which the remaining lag is measured at
    encode time; ``{}``: always, ``None``: never.
    ``flush``: zeros appended to the input so that an encoder which does not
    flush its lookahead itself still emits the frames covering the input's end.
    ``bitrate_note``: appended to the error for an invalid bitrate.
    ``frame`` and ``lookahead``: the declared algorithmic latency (samples at
    a rate, given the options). ``bitrate_tolerance``: relative distance of
    measured from nominal kbit/s allowed on demo speech (reason beside it).
    """

    encoder: str
    decoder: str
    tiers: tuple[Tier, ...]
    channel_counts: tuple[int, ...]
    sample_format: str
    frame: Samples
    lookahead: Samples
    bitrate_tolerance: float = 0.05
    options: Mapping[str, Choice] = field(default_factory=dict)
    fixed_options: Mapping[str, str] = field(default_factory=dict)
    lossless: bool = False
    quality_search: bool = False
    decoder_removes_padding: bool = False
    delay_ms: float | None = None
    residual_delay: Callable[[Sequence[bytes]], int] | None = None
    align_when: Mapping[str, str] | None = None
    flush: Samples = fixed_samples(0)
    bitrate_note: str = ""

    @property
    def sample_rates(self) -> tuple[int, ...] | None:
        """Every rate of every tier (``None``: any rate, for a family with an open tier)."""
        if any(not tier.sample_rates for tier in self.tiers):
            return None
        return tuple(sorted({rate for tier in self.tiers for rate in tier.sample_rates}))

    def rates_for(self, kbps: float) -> tuple[int, ...] | None:
        """The sample rates at which ``kbps`` is valid (empty: nowhere; ``None``: any rate)."""
        tiers = [tier for tier in self.tiers if tier.accepts(kbps)]
        if any(not tier.sample_rates for tier in tiers):
            return None
        return tuple(sorted({rate for tier in tiers for rate in tier.sample_rates}))

    def describe_bitrates(self) -> str:
        if len(self.tiers) == 1:
            return self.tiers[0].describe()
        return " or ".join(
            f"{tier.describe()} (at {', '.join(str(rate) for rate in tier.sample_rates)} Hz)" for tier in self.tiers
        )


def _opus_frame(rate: int, options: Mapping[str, str]) -> float:
    return float(options["frame_duration"]) * rate / 1000.0


def _opus_lookahead(rate: int, options: Mapping[str, str]) -> float:
    # libopus OPUS_GET_LOOKAHEAD: Fs/400 (2.5 ms CELT lookahead) plus, unless
    # application=lowdelay, Fs/250 (4 ms SILK delay compensation): the 312-sample
    # pre-skip at 48 kHz (RFC 7845 section 4.2).
    return rate / 400.0 + (0.0 if options.get("application") == "lowdelay" else rate / 250.0)


def _mpeg_frame(rate: int, options: Mapping[str, str]) -> float:
    # MPEG-1 frames hold 1152 samples; MPEG-2 (LSF) and 2.5 Layer III frames 576
    # (ISO/IEC 11172-3, 13818-3).
    return 1152.0 if rate >= 32000 else 576.0


_OPUS = FamilySpec(
    # libopus 6-510 kbit/s, coded at 48 kHz; the native Opus decoder always
    # outputs 48 kHz and applies the OpusHead pre-skip given the extradata.
    encoder="libopus",
    decoder="opus",
    tiers=(Tier((48000,), min_kbps=6.0, max_kbps=510.0),),
    channel_counts=(1, 2),
    sample_format="flt",
    frame=_opus_frame,
    lookahead=_opus_lookahead,
    # constrained VBR: on demo speech from 7% under (8 kbit/s: SILK spends less in
    # pauses) to 8% over (16 kbit/s) nominal; 10% covers it.
    bitrate_tolerance=0.10,
    options={
        "application": Choice(("voip", "audio", "lowdelay"), "audio"),
        "vbr": Choice(("off", "on", "constrained"), "on"),
        "frame_duration": Choice(("2.5", "5", "10", "20", "40", "60"), "20"),
    },
    decoder_removes_padding=True,
    residual_delay=opus_residual_delay,
    # application=voip: see "opus-voip".
    align_when={"application": "voip"},
)

#: MPEG audio bitrate tables (kbit/s) by version; rates in Hz.
_MPEG1_RATES = (32000, 44100, 48000)
_MPEG2_RATES = (16000, 22050, 24000)
_MPEG25_RATES = (8000, 11025, 12000)
_MPEG2_KBPS = (8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160)

#: Registered families, by ``family`` name (the YAML ``family:`` value).
FAMILIES: dict[str, FamilySpec] = {
    "opus": _OPUS,
    # Opus with application=voip: SILK-favouring mode decisions and a pitch-adaptive
    # high-pass (60-100 Hz, libopus hp_cutoff) instead of a 3 Hz DC reject. The
    # high-pass shifts the output's phase by -15..+5 samples at 48 kHz depending on
    # the talker (measured on demo speech), and its cutoff is not in the bitstream,
    # so the remaining lag is measured at encode time. Its own family (rather
    # than "opus" with application=voip, which codes the same) so that the two
    # ladders are ranked apart.
    "opus-voip": replace(
        _OPUS,
        options={name: choice for name, choice in _OPUS.options.items() if name != "application"},
        fixed_options={"application": "voip"},
    ),
    # LAME CBR. Frame headers and side info are payload (every frame carries
    # them); LAME's Xing/Info tag is a container matter (FFmpeg's muxer writes it)
    # and is not emitted here. Delay: FFmpeg's initial padding, 1105 samples =
    # LAME's 576-sample encoder delay + the 529-sample decoder delay.
    "mp3": FamilySpec(
        encoder="libmp3lame",
        decoder="mp3float",
        tiers=(
            Tier(_MPEG25_RATES, kbps=(8, 16, 24, 32, 40, 48, 56, 64)),
            Tier(_MPEG2_RATES, kbps=_MPEG2_KBPS),
            Tier(_MPEG1_RATES, kbps=(32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320)),
        ),
        channel_counts=(1, 2),
        sample_format="s32p",
        frame=_mpeg_frame,
        lookahead=fixed_samples(1105),
        # CBR: exact but for the padding bit and the frames that flush the
        # 1105-sample delay, ~3% on 3-second items.
        bitrate_tolerance=0.05,
    ),
    # FFmpeg's native AAC-LC encoder (ABR: bit_rate is a target, not a cap). Its
    # rate control holds the target only in a range of bits per sample: at 16 kHz
    # it undershoots 96-128 kbit/s (speech saturates near 75) and overshoots 48-64
    # by 10%; at 44.1 kHz it overshoots 16 kbit/s by 10%. The tiers keep each
    # bitrate at rates where demo speech and music land within +6% / -3%.
    # Payload: raw AAC frames; the 2-5 byte AudioSpecificConfig (extradata) is a
    # stream header, excluded. Delay: FFmpeg's initial padding, 1024 samples.
    "aac": FamilySpec(
        encoder="aac",
        decoder="aac",
        tiers=(
            Tier((16000, 22050, 24000, 32000), min_kbps=16.0, max_kbps=32.0),
            Tier((24000, 32000, 44100, 48000), min_kbps=32.0, max_kbps=64.0),
            Tier((32000, 44100, 48000), min_kbps=64.0, max_kbps=96.0),
            Tier((44100, 48000), min_kbps=96.0, max_kbps=128.0),
        ),
        channel_counts=(1, 2),
        sample_format="fltp",
        frame=fixed_samples(1024),
        lookahead=fixed_samples(1024),
        bitrate_tolerance=0.08,
    ),
    # AMR-NB (3GPP TS 26.071/26.090) through opencore, decoded by FFmpeg's
    # native decoder. Payload: each packet is one frame in the RFC 4867 storage
    # format, a 1-byte frame header (mode, quality bit) plus the speech bits
    # padded to whole bytes; the header is counted, since no AMR stream can be
    # stored or decoded without it, and it is why 4.75 kbit/s measures 5.2 (13
    # bytes per 20 ms, +9.5%; 12.2 kbit/s: 32 bytes, +4.9%). The "#!AMR\n" file
    # magic is a container header, not emitted. Delay: the 5 ms lookahead (TS
    # 26.090: 20 ms frame + 5 ms lookahead; a phase-blind GCC-PHAT finds exactly
    # 40 samples on every demo speech item); FFmpeg's 50-sample initial padding
    # overstates it. But the output does not follow the input's phase closely
    # (normalised cross-correlation 0.36-0.90): the 80 Hz pre-processing
    # high-pass leads by 0-9 samples, and on strongly periodic voices the
    # cross-correlation has a second, near-equal peak one pitch period later.
    # The alignment therefore follows the cross-correlation (the pipeline's
    # measure), measured at encode time: the delay removed is 31-80 samples.
    "amrnb": FamilySpec(
        encoder="libopencore_amrnb",
        decoder="amrnb",
        tiers=(Tier((8000,), kbps=(4.75, 5.15, 5.9, 6.7, 7.4, 7.95, 10.2, 12.2)),),
        channel_counts=(1,),
        sample_format="s16",
        frame=fixed_ms(20.0),
        lookahead=fixed_ms(5.0),
        bitrate_tolerance=0.12,
        delay_ms=5.0,
        align_when={},
    ),
    # G.722 sub-band ADPCM (FFmpeg implements the 64 kbit/s mode only). Payload:
    # one byte per two input samples, exact. Delay: FFmpeg's initial padding, 22
    # samples (the QMF analysis and synthesis filters), which its encoder does not
    # flush: 22 zeros are appended. It codes sample pairs: its "frame" is two samples.
    "g722": FamilySpec(
        encoder="g722",
        decoder="g722",
        tiers=(Tier((16000,), kbps=(64,)),),
        channel_counts=(1,),
        sample_format="s16",
        frame=fixed_samples(2),
        lookahead=fixed_samples(22),
        bitrate_tolerance=0.01,
        flush=fixed_samples(22),
    ),
    # G.723.1 (ITU-T, 2006): 30 ms frames, 7.5 ms lookahead. FFmpeg's encoder
    # implements the 6.3 kbit/s MP-MLQ rate only (5.3 kbit/s ACELP is decode-only,
    # avcodec_open2 answers "not yet implemented"). Payload: 24 bytes per frame
    # (189 bits + the 2-bit rate field, padded), 6.4 kbit/s: +1.6%. Delay: the
    # 7.5 ms lookahead; FFmpeg reports none.
    "g723_1": FamilySpec(
        encoder="g723_1",
        decoder="g723_1",
        tiers=(Tier((8000,), kbps=(6.3,)),),
        channel_counts=(1,),
        sample_format="s16",
        frame=fixed_ms(30.0),
        lookahead=fixed_ms(7.5),
        bitrate_tolerance=0.05,
        delay_ms=7.5,
        flush=fixed_ms(7.5),
        bitrate_note="FFmpeg's G.723.1 encoder implements only the 6.3 kbit/s rate (5.3 kbit/s is decode-only)",
    ),
    # MPEG-1/2 Layer II (FFmpeg's native encoder; MPEG-2 LSF below 32 kHz). CBR
    # frames with headers are payload. Delay: FFmpeg's initial padding, 481
    # samples (the polyphase filterbank), which its encoder does not flush: 481
    # zeros are appended.
    "mp2": FamilySpec(
        encoder="mp2",
        decoder="mp2",
        tiers=(
            Tier(_MPEG2_RATES, kbps=_MPEG2_KBPS),
            Tier(_MPEG1_RATES, kbps=(32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384)),
        ),
        channel_counts=(1, 2),
        sample_format="s16",
        frame=fixed_samples(1152),
        lookahead=fixed_samples(481),
        flush=fixed_samples(481),
        # CBR: padding bits and the frames that flush the delay, ~2% on speech.
        bitrate_tolerance=0.05,
    ),
    # AC-3 (ATSC A/52; FFmpeg's native float encoder): 1536-sample frames, CBR
    # from the A/52 bitrate table. Delay: FFmpeg's initial padding, 256 samples
    # (one block of MDCT overlap), which its encoder does not flush: 256 zeros
    # are appended.
    "ac3": FamilySpec(
        encoder="ac3",
        decoder="ac3",
        tiers=(
            Tier(
                (32000, 44100, 48000),
                kbps=(32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384, 448, 512, 576, 640),
            ),
        ),
        channel_counts=(1, 2),
        sample_format="fltp",
        frame=fixed_samples(1536),
        lookahead=fixed_samples(256),
        flush=fixed_samples(256),
        # CBR: exact but for the frames that flush the delay, ~5% on short items.
        bitrate_tolerance=0.08,
    ),
    # FFmpeg's native Vorbis encoder (experimental; there is no libvorbis in the
    # wheel). It ignores bit_rate and codes at a quality (global_quality / 118,
    # squared), and takes stereo only. Bits: the audio packets; the three header
    # packets (3.3 kB of codebooks in extradata, once per stream) are stream
    # headers, excluded. Delay: FFmpeg's initial padding, 1024 samples, which
    # the decoder drops itself. Frames: 2048-sample windows, 1024 per packet.
    "vorbis": FamilySpec(
        encoder="vorbis",
        decoder="vorbis",
        tiers=(Tier((), min_kbps=24.0, max_kbps=256.0),),
        channel_counts=(2,),
        sample_format="fltp",
        frame=fixed_samples(1024),
        lookahead=fixed_samples(1024),
        # the search keeps the stream at or under the target; the quality scale
        # is coarse at low rates (one step = 1/118 quality), so it can land ~8% under.
        bitrate_tolerance=0.10,
        fixed_options={"strict": "experimental"},
        quality_search=True,
        decoder_removes_padding=True,
    ),
    # G.711 (ITU-T): 8-bit companded samples at 8 kHz, 64 kbit/s exactly, no
    # delay. Sample by sample: the "frame" is one sample.
    "g711_mulaw": FamilySpec(
        encoder="pcm_mulaw",
        decoder="pcm_mulaw",
        tiers=(Tier((8000,), kbps=(64,)),),
        channel_counts=(1,),
        sample_format="s16",
        frame=fixed_samples(1),
        lookahead=fixed_samples(0),
        bitrate_tolerance=0.01,
    ),
    # FLAC: lossless for 16-bit PCM. Input is rounded to 16 bits (the demo corpus
    # is 16-bit, so it round-trips exactly); bits are the FLAC frames, the 34-byte
    # STREAMINFO (extradata) excluded. Blocks of up to 105 ms (FFmpeg's default).
    "flac": FamilySpec(
        encoder="flac",
        decoder="flac",
        tiers=(Tier(()),),
        channel_counts=(1, 2),
        sample_format="s16",
        frame=fixed_ms(105.0),
        lookahead=fixed_samples(0),
        lossless=True,
    ),
}
FAMILIES["g711_alaw"] = replace(FAMILIES["g711_mulaw"], encoder="pcm_alaw", decoder="pcm_alaw")
