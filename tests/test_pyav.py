"""The PyAV families: what each codec's bits hold, where its delay comes from, its errors.

The generic contract (shapes, bitrate tolerance, residual delay, the PESQ
ladder) is checked for every YAML in ``test_codecs.py``; this module pins
what is particular to FFmpeg's codecs: packet layouts and header accounting,
the delay read from FFmpeg or the standard, FLAC's exactness, Vorbis's
quality search, Opus-voip's measured alignment, and the errors that list the
valid choices.
"""

from __future__ import annotations

import math
from dataclasses import replace
import subprocess
import sys

import numpy as np
import pytest
from hydra.utils import instantiate
from omegaconf import OmegaConf
from test_codecs import CODEC_IDS, MANIFEST, SPEECH_IDS, _config, demo_at, demo_audio, make_codec

from codecbench.audio import Audio
from codecbench.codecs import pyav_families
from codecbench.codecs.pyav import PyAVCodec
from codecbench.errors import AudioError, CodecbenchError, ConfigError
from codecbench.reconstruct import measure_lag, reconstruct

PYAV_IDS = [c for c in CODEC_IDS if _config(c).get("_target_") == "codecbench.codecs.pyav.PyAVCodec"]
#: AMR-NB modes (kbit/s) and their speech bits per 20 ms frame (3GPP TS 26.101, table 1a).
AMR_BITS = {4.75: 95, 5.15: 103, 5.9: 118, 6.7: 134, 7.4: 148, 7.95: 159, 10.2: 204, 12.2: 244}


def speech(rate: int, item_id: str = "librivox_m1_0870") -> Audio:
    return demo_at(item_id, rate)


def test_every_family_has_a_config() -> None:
    families = {make_codec(c).family for c in PYAV_IDS}
    assert families == set(pyav_families.FAMILIES)


# --- declared facts -----------------------------------------------------------------


def test_opus_facts() -> None:
    codec = make_codec("opus_12k")
    assert (codec.family, codec.nominal_kbps) == ("opus", 12.0)
    assert codec.sample_rates == (48000,) and codec.channel_counts == (1, 2)
    assert codec.params()["options"] == {"application": "audio", "vbr": "constrained", "frame_duration": "20"}
    assert (codec.frame_ms, codec.lookahead_ms) == (20.0, 6.5)  # pre-skip 312 samples at 48 kHz
    assert PyAVCodec("opus", 12, application="lowdelay", frame_duration=10).lookahead_ms == 2.5
    assert PyAVCodec("opus", 12, frame_duration=10).frame_ms == 10.0


@pytest.mark.parametrize(
    "codec_id, rates, frame_ms, lookahead_ms",
    [
        ("amrnb_12k2", (8000,), 20.0, 5.0),
        ("g723_1_6k3", (8000,), 30.0, 7.5),
        ("g722_64k", (16000,), 0.125, 1.375),
        ("g711_alaw", (8000,), 0.125, 0.0),
        ("mp3_16k", (8000, 11025, 12000, 16000, 22050, 24000), 36.0, 1105 / 16),  # 576-sample frames at 16 kHz
        ("mp3_320k", (32000, 44100, 48000), 36.0, 1105 / 32),  # 1152-sample frames at 32 kHz
        ("aac_16k", (16000, 22050, 24000, 32000), 64.0, 64.0),
        ("aac_128k", (44100, 48000), 1024 / 44.1, 1024 / 44.1),
        ("ac3_96k", (32000, 44100, 48000), 48.0, 8.0),
        ("mp2_192k", (32000, 44100, 48000), 36.0, 481 / 32),
        ("vorbis_64k", None, 64.0, 64.0),
        ("flac", None, 105.0, 0.0),
    ],
)
def test_rates_and_latency(codec_id: str, rates: tuple | None, frame_ms: float, lookahead_ms: float) -> None:
    """Rates follow the bitrate (MPEG tables, AAC tiers); latency is given at the rate 16 kHz speech is coded at."""
    codec = make_codec(codec_id)
    assert codec.sample_rates == rates
    assert codec.frame_ms == pytest.approx(frame_ms) and codec.lookahead_ms == pytest.approx(lookahead_ms)


def test_vorbis_is_stereo_only_and_the_pipeline_upmixes() -> None:
    codec = make_codec("vorbis_64k")
    assert codec.channel_counts == (2,)
    with pytest.raises(AudioError, match=r"expected channels one of \(2,\), found 1"):
        codec.encode(speech(16000))
    _, facts = reconstruct(codec, "vorbis_64k", speech(16000))
    assert facts["channel_mode"] == "upmixed" and abs(facts["residual_delay_samples"]) <= 1


@pytest.mark.parametrize("codec_id", ["amrnb_12k2", "g722_64k", "g723_1_6k3", "g711_mulaw"])
def test_mono_only_codecs_refuse_stereo_when_called_directly(codec_id: str) -> None:
    codec = make_codec(codec_id)
    stereo = demo_at("music_ensemble_stereo", codec.choose_rate(48000))
    with pytest.raises(AudioError, match=r"expected channels one of \(1,\), found 2"):
        codec.encode(stereo)


def test_wrong_rate_is_refused() -> None:
    with pytest.raises(AudioError, match=r"48000.*found 16000"):
        make_codec("opus_12k").encode(demo_audio("librivox_m1_0870"))
    with pytest.raises(AudioError, match=r"expected sample rate one of \(8000,\) Hz, found 16000"):
        make_codec("amrnb_12k2").encode(speech(16000))
    with pytest.raises(AudioError, match=r"channels one of \(1, 2\), found 3"):
        make_codec("opus_12k").encode(Audio(np.zeros((3, 960), np.float32), 48000))


# --- configuration errors -------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, listed",
    [
        ({"family": "opus", "bitrate": 5}, "expected bitrate from 6 to 510 kbit/s; found 5"),
        ({"family": "opus", "bitrate": 511}, "from 6 to 510 kbit/s; found 511"),
        ({"family": "opus", "bitrate": "12k"}, "number of kbit/s, found '12k'"),
        ({"family": "opus", "bitrate": None}, "number of kbit/s, found None"),
        (
            {"family": "opus", "bitrate": 12, "application": "music"},
            "application one of voip, audio, lowdelay; found 'music'",
        ),
        ({"family": "opus", "bitrate": 12, "vbr": "maybe"}, "vbr one of off, on, constrained; found 'maybe'"),
        ({"family": "opus", "bitrate": 12, "complexity": 5}, "valid options: application, vbr, frame_duration"),
        ({"family": "opus-voip", "bitrate": 12, "application": "audio"}, "valid options: vbr, frame_duration"),
        ({"family": "mp9", "bitrate": 12}, "expected codec family one of aac, ac3, amrnb, flac, g711_alaw"),
        (
            {"family": "amrnb", "bitrate": 8.0},
            "amrnb: expected bitrate one of 4.75, 5.15, 5.9, 6.7, 7.4, 7.95, 10.2, 12.2 kbit/s; found 8",
        ),
        (
            {"family": "g723_1", "bitrate": 5.3},
            "expected bitrate one of 6.3 kbit/s (FFmpeg's G.723.1 encoder implements only the 6.3 kbit/s "
            "rate (5.3 kbit/s is decode-only)); found 5.3",
        ),
        ({"family": "g723_1", "bitrate": 6.4}, "expected bitrate one of 6.3 kbit/s"),
        (
            {"family": "mp3", "bitrate": 100},
            "expected bitrate one of 8, 16, 24, 32, 40, 48, 56, 64 (at 8000, 11025, 12000 Hz) or one of 8, 16, "
            "24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160 (at 16000, 22050, 24000 Hz) or one of 32, 40, 48, "
            "56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320 (at 32000, 44100, 48000 Hz) kbit/s; found 100",
        ),
        ({"family": "aac", "bitrate": 200}, "or from 96 to 128 (at 44100, 48000 Hz) kbit/s; found 200"),
        ({"family": "ac3", "bitrate": 100}, "one of 32, 40, 48, 56, 64, 80, 96, 112"),
        ({"family": "g722", "bitrate": 48}, "g722: expected bitrate one of 64 kbit/s; found 48"),
        ({"family": "flac", "bitrate": 500}, "flac: expected no bitrate (lossless"),
    ],
)
def test_invalid_parameters_list_valid_choices(kwargs: dict, listed: str) -> None:
    with pytest.raises(ConfigError) as error:
        PyAVCodec(**kwargs)
    assert listed in str(error.value)


def test_yaml_booleans_read_as_ffmpeg_switches() -> None:
    config = OmegaConf.create("{_target_: codecbench.codecs.pyav.PyAVCodec, family: opus, bitrate: 12, vbr: off}")
    assert instantiate(config).options["vbr"] == "off"


def test_missing_av_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    codec = make_codec("opus_12k")
    monkeypatch.setitem(sys.modules, "av", None)  # makes `import av` raise ImportError
    with pytest.raises(CodecbenchError, match=r"pip install 'codecbench\[codecs\]'"):
        codec.encode(speech(48000))


def test_constructing_every_config_does_not_import_av() -> None:
    code = (
        "import sys\n"
        "from hydra.utils import instantiate\n"
        "from omegaconf import OmegaConf\n"
        "import codecbench.conf, pathlib\n"
        "folder = pathlib.Path(codecbench.conf.__file__).parent / 'codec'\n"
        f"for name in {PYAV_IDS!r}:\n"
        "    codec = instantiate(OmegaConf.load(folder / (name + '.yaml')))\n"
        "    codec.algorithmic_latency_ms(), codec.choose_rate(16000)\n"
        "assert 'av' not in sys.modules, 'av imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# --- what the bits hold -----------------------------------------------------------------


@pytest.mark.parametrize("mode", sorted(AMR_BITS))
def test_amr_packets_are_storage_format_frames(mode: float) -> None:
    """One RFC 4867 storage frame per 20 ms: a header byte (mode, Q=1) + the speech bits padded to bytes."""
    codec = PyAVCodec("amrnb", mode)
    encoded = codec.encode(speech(8000))
    header = (sorted(AMR_BITS).index(mode) << 3) | 0x04
    assert {packet[0] for packet in encoded.payload} == {header}
    assert {len(packet) for packet in encoded.payload} == {1 + math.ceil(AMR_BITS[mode] / 8)}
    assert encoded.bits == 8 * sum(len(packet) for packet in encoded.payload)
    assert len(encoded.payload) >= math.ceil((encoded.frames + 40) / 160)  # the 5 ms lookahead is flushed


def test_opus_bits_exclude_the_opushead_header() -> None:
    encoded = make_codec("opus_12k").encode(speech(48000))
    assert encoded.side["extradata"][:8] == b"OpusHead" and len(encoded.side["extradata"]) == 19
    assert encoded.bits == 8 * sum(len(packet) for packet in encoded.payload)


def test_mp3_packets_are_cbr_frames_without_a_tag() -> None:
    """MPEG-2 Layer III at 16 kHz, 32 kbit/s: 144-byte frames (72 * 32000 / 16000), sync first, no Xing/Info."""
    encoded = make_codec("mp3_32k").encode(speech(16000))
    assert all(packet[:2] == b"\xff\xf3" for packet in encoded.payload)  # sync, MPEG-2, Layer III, no CRC
    assert {len(packet) for packet in encoded.payload} == {144}
    assert not any(b"Xing" in packet or b"Info" in packet for packet in encoded.payload[:2])


def test_ac3_packets_are_a52_frames() -> None:
    encoded = make_codec("ac3_96k").encode(speech(32000))
    assert all(packet[:2] == b"\x0b\x77" for packet in encoded.payload)
    assert {len(packet) for packet in encoded.payload} == {96000 * 1536 // 32000 // 8}
    assert len(encoded.payload) == math.ceil((encoded.frames + 256) / 1536)


@pytest.mark.parametrize("codec_id", ["g711_mulaw", "g711_alaw"])
def test_g711_is_eight_bits_a_sample(codec_id: str) -> None:
    audio = speech(8000)
    assert make_codec(codec_id).encode(audio).bits == 8 * audio.frames


def test_g722_is_a_byte_per_sample_pair_and_flushes_its_qmf_delay() -> None:
    audio = speech(16000)
    assert make_codec("g722_64k").encode(audio).bits == 8 * math.ceil((audio.frames + 22) / 2)


def test_g723_1_is_24_bytes_per_30_ms_and_flushes_its_lookahead() -> None:
    encoded = make_codec("g723_1_6k3").encode(speech(8000))
    assert {len(packet) for packet in encoded.payload} == {24}
    assert len(encoded.payload) == math.ceil((encoded.frames + 60) / 240)


def test_flac_bits_exclude_streaminfo() -> None:
    encoded = make_codec("flac").encode(speech(16000))
    assert len(encoded.side["extradata"]) == 34
    assert encoded.payload[0][:2] == b"\xff\xf8"  # frame sync, fixed block size
    assert encoded.bits == 8 * sum(len(packet) for packet in encoded.payload)


# --- delay ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "codec_id, rate, delay",
    [
        ("opus_12k", 48000, 312),  # pre-skip, removed by the decoder
        ("opus_6k", 48000, 318),  # + 6 for SILK narrowband, read from the TOC bytes
        ("mp3_32k", 16000, 1105),
        ("aac_32k", 16000, 1024),
        ("mp2_64k", 16000, 481),
        ("ac3_96k", 32000, 256),
        ("g722_64k", 16000, 22),
        ("vorbis_64k", 16000, 1024),
        ("g723_1_6k3", 8000, 60),  # the standard's 7.5 ms; FFmpeg reports none
        ("g711_mulaw", 8000, 0),
        ("flac", 16000, 0),
    ],
)
def test_delay_removed_is_ffmpegs_or_the_standards(codec_id: str, rate: int, delay: int) -> None:
    codec = make_codec(codec_id)
    audio = speech(rate)
    if not codec.accepts_channels(1):
        audio = Audio(np.concatenate([audio.samples] * 2), rate)
    assert codec.encode(audio).delay_samples == delay


def phase_blind_lag(reference: Audio, signal: Audio, max_lag: int = 400) -> int:
    """Samples ``signal`` trails ``reference`` by GCC-PHAT: cross-spectrum phase only, each bin weighted alike."""
    n = 1 << int(np.ceil(np.log2(2 * reference.frames)))
    cross = np.fft.rfft(signal.samples[0], n) * np.conj(np.fft.rfft(reference.samples[0], n))
    corr = np.fft.irfft(cross / (np.abs(cross) + 1e-12), n)
    return int(np.argmax(np.concatenate([corr[-max_lag:], corr[: max_lag + 1]]))) - max_lag


def test_amr_delay_is_the_5_ms_lookahead_and_alignment_follows_the_cross_correlation() -> None:
    """GCC-PHAT finds the standard's 40 samples on every item; the removed delay is where cross-correlation peaks.

    The two differ by the 80 Hz high-pass's phase lead (a few samples) or,
    on strongly periodic voices, by about one pitch period, where the
    cross-correlation has a second, near-equal peak.
    """
    codec = make_codec("amrnb_12k2")
    for item_id in SPEECH_IDS[::4]:
        audio = speech(8000, item_id)
        encoded = codec.encode(audio)
        recon = codec.decode(encoded)
        assert phase_blind_lag(audio, recon) + encoded.delay_samples == 40, item_id
        assert measure_lag(audio, recon) == 0, item_id
        assert -10 <= encoded.delay_samples - 40 <= 50, item_id


def test_opus_voip_needs_and_gets_its_measured_alignment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without alignment the voip high-pass leaves lags beyond a sample; with it, none at 48 or 16 kHz."""
    items = SPEECH_IDS[::3]
    codec = make_codec("opus_voip_24k")
    aligned = [reconstruct(codec, "opus_voip_24k", demo_audio(i))[1]["residual_delay_samples"] for i in items]
    assert max(map(abs, aligned)) <= 1, aligned
    unaligned = replace(pyav_families.FAMILIES["opus-voip"], align_when=None)
    monkeypatch.setitem(pyav_families.FAMILIES, "opus-voip", unaligned)
    plain = PyAVCodec("opus-voip", 24, vbr="constrained")
    lags = [measure_lag(speech(48000, i), plain.decode(plain.encode(speech(48000, i)))) for i in items]
    assert max(map(abs, lags)) >= 5, lags


@pytest.mark.parametrize("extra", [-1, 0, 1, 7])
def test_opus_short_tail_still_gives_every_frame(extra: int) -> None:
    """Lengths where the last packet ends just at the input's end (6 kbit/s: SILK NB, 6-sample shift)."""
    codec = make_codec("opus_6k")
    frames = 50 * 960 - 312 + extra
    audio = Audio(speech(48000).samples[:, :frames], 48000)
    recon = codec.decode(codec.encode(audio))
    assert recon.frames == frames
    assert abs(measure_lag(audio, recon)) <= 1


@pytest.mark.parametrize("frames", [1, 239, 240, 241, 8000])
def test_short_and_frame_multiple_inputs_decode_to_their_length(frames: int) -> None:
    for codec_id in ("g723_1_6k3", "amrnb_4k75", "g711_alaw"):
        codec = make_codec(codec_id)
        audio = Audio(speech(8000).samples[:, 4000 : 4000 + frames], 8000)
        assert codec.decode(codec.encode(audio)).frames == frames


# --- FLAC exactness and the Vorbis quality search ------------------------------------


@pytest.mark.parametrize("item_id", [row["id"] for row in MANIFEST])
def test_flac_is_bit_exact_on_every_demo_item(item_id: str) -> None:
    """The demo corpus is 16-bit PCM: FLAC gives back the very samples, at the file's rate and channels."""
    codec, audio = make_codec("flac"), demo_audio(item_id)
    assert np.array_equal(codec.decode(codec.encode(audio)).samples, audio.samples)


def test_flac_rounds_float_input_to_16_bits() -> None:
    """Lossless on 16-bit PCM: other floats come back rounded to the 16-bit grid (and clipped to it)."""
    rng = np.random.default_rng(0)
    x = rng.uniform(-1.2, 1.2, (2, 4000)).astype(np.float32)
    codec = make_codec("flac")
    recon = codec.decode(codec.encode(Audio(x, 44100))).samples
    expected = np.clip(np.round(x.astype(np.float64) * 32768), -32768, 32767) / 32768
    assert np.array_equal(recon, expected.astype(np.float32))
    assert not np.array_equal(recon, x)


@pytest.mark.parametrize("codec_id", ["vorbis_64k", "vorbis_128k"])
def test_vorbis_search_keeps_every_item_at_or_under_the_bitrate(codec_id: str) -> None:
    codec = make_codec(codec_id)
    for item_id in ("librivox_m1_0870", "flite_kal16_h02s03", "music_piano"):
        mono = demo_audio(item_id)
        encoded = codec.encode(Audio(np.concatenate([mono.samples] * 2), mono.sample_rate))
        assert 0.85 * codec.nominal_kbps <= encoded.kbps <= codec.nominal_kbps, (item_id, encoded.kbps)
