"""Codec conformance: every ``conf/codec/*.yaml`` against the codec contract.

Each config is instantiated the way a run does (``hydra.utils.instantiate``)
and round-trips demo speech, music and sounds; bitrate, delay, quality order,
determinism and configuration errors are checked on real codec output.
"""

from __future__ import annotations

import json
import subprocess
import sys
from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest
from hydra.utils import instantiate
from omegaconf import OmegaConf

import codecbench
import codecbench.conf
from codecbench.audio import Audio, load_audio, resample
from codecbench.codecs.base import Codec, Encoded
from codecbench.codecs.pyav import PyAVCodec
from codecbench.errors import AudioError, CodecbenchError, ConfigError
from codecbench.reconstruct import measure_lag

DEMO = Path(codecbench.__file__).parent / "data" / "demo"
CODEC_DIR = Path(codecbench.conf.__file__).parent / "codec"
CODEC_IDS = sorted(path.stem for path in CODEC_DIR.glob("*.yaml"))
MANIFEST = [json.loads(line) for line in (DEMO / "manifest.jsonl").read_text().splitlines() if line.strip()]
SPEECH_IDS = tuple(row["id"] for row in MANIFEST if row["domain"] == "speech")
OTHER_IDS = tuple(row["id"] for row in MANIFEST if row["domain"] != "speech")
#: one item per kind: read and synthetic speech (16 kHz), music and a sound
#: (44.1 kHz mono), and the 48 kHz stereo ensemble.
ROUNDTRIP_IDS = ["librivox_m1_0870", "flite_slt_h02s03", "music_band", "fd_bell", "music_ensemble_stereo"]
#: speech items for the PESQ check: different voices, real and synthetic.
PESQ_IDS = SPEECH_IDS[::5]


def test_configs_found() -> None:
    assert {"identity", "opus_6k", "opus_12k", "opus_24k"} <= set(CODEC_IDS)
    assert len(SPEECH_IDS) == 45


def make_codec(codec_id: str) -> Codec:
    """Instantiate ``conf/codec/<codec_id>.yaml`` as a run does."""
    codec = instantiate(OmegaConf.load(CODEC_DIR / f"{codec_id}.yaml"))
    assert isinstance(codec, Codec)
    return codec


@lru_cache(maxsize=None)
def demo_audio(item_id: str) -> Audio:
    """A demo item at its file's rate and channel count."""
    row = next(row for row in MANIFEST if row["id"] == item_id)
    return load_audio(DEMO / row["path"])


@lru_cache(maxsize=None)
def demo_at(item_id: str, sample_rate: int) -> Audio:
    return resample(demo_audio(item_id), sample_rate)


@lru_cache(maxsize=None)
def roundtrips(codec_id: str, item_ids: tuple[str, ...]) -> tuple[tuple[Audio, Encoded, Audio], ...]:
    """(input at the codec's rate, encoded, reconstruction) for each of ``item_ids``."""
    codec = make_codec(codec_id)
    out = []
    for item_id in item_ids:
        audio = demo_at(item_id, codec.choose_rate(demo_audio(item_id).sample_rate))
        encoded = codec.encode(audio)
        out.append((audio, encoded, codec.decode(encoded)))
    return tuple(out)


def lag_samples(reference: Audio, signal: Audio) -> int:
    """Samples by which ``signal`` trails ``reference``: the pipeline's own measure."""
    return measure_lag(reference, signal)


@pytest.mark.parametrize("shift", [-37, -1, 0, 1, 6, 312])
def test_lag_measure_finds_known_shift(shift: int) -> None:
    x = demo_at("librivox_m1_0880", 48000)
    shifted = Audio(np.roll(x.samples, shift, axis=1), x.sample_rate)
    assert lag_samples(x, shifted) == shift


@pytest.mark.parametrize("item_id", ROUNDTRIP_IDS)
@pytest.mark.parametrize("codec_id", CODEC_IDS)
def test_roundtrip_contract(codec_id: str, item_id: str) -> None:
    codec = make_codec(codec_id)
    native = demo_audio(item_id)
    if not codec.accepts_channels(native.channels):
        pytest.skip(f"{codec_id} does not take {native.channels} channels")
    rate = codec.choose_rate(native.sample_rate)
    assert not codec.sample_rates or rate in codec.sample_rates
    audio = demo_at(item_id, rate)

    encoded = codec.encode(audio)
    assert (encoded.frames, encoded.sample_rate, encoded.channels) == (audio.frames, rate, audio.channels)
    assert encoded.bits > 0

    recon = codec.decode(encoded)
    assert (recon.frames, recon.sample_rate, recon.channels) == (audio.frames, rate, audio.channels)
    assert recon.samples.dtype == np.float32
    assert np.isfinite(recon.samples).all()
    assert np.abs(recon.samples).max() > 1e-3, "reconstruction is (near) silent"
    if codec.lossless:
        assert np.array_equal(recon.samples, audio.samples)


def measured_kbps(codec_id: str, item_ids: tuple[str, ...]) -> float:
    """Total payload bits / total input seconds over ``item_ids``, in kbit/s."""
    runs = roundtrips(codec_id, item_ids)
    bits = sum(encoded.bits for _, encoded, _ in runs)
    seconds = sum(encoded.frames / encoded.sample_rate for _, encoded, _ in runs)
    return bits / seconds / 1000.0


def nominal_kbps(codec_id: str) -> float:
    return make_codec(codec_id).nominal_kbps


#: codecs that declare a nominal bitrate (identity and lossless codecs declare none).
RATED_IDS = [c for c in CODEC_IDS if OmegaConf.load(CODEC_DIR / f"{c}.yaml").get("bitrate") is not None]


def test_rated_ids_are_the_codecs_with_a_nominal_rate() -> None:
    assert RATED_IDS == [c for c in CODEC_IDS if make_codec(c).nominal_kbps is not None]


@pytest.mark.parametrize("codec_id", RATED_IDS)
def test_bitrate_near_nominal_on_demo_speech(codec_id: str) -> None:
    nominal, measured = nominal_kbps(codec_id), measured_kbps(codec_id, SPEECH_IDS)
    assert abs(measured - nominal) <= 0.10 * nominal, f"{codec_id}: {measured:.2f} kbit/s vs nominal {nominal}"


@pytest.mark.parametrize("codec_id", RATED_IDS)
def test_bitrate_no_overshoot_on_demo_music_and_sounds(codec_id: str) -> None:
    """Declared rates are honest beyond speech too: at most 10% above nominal."""
    nominal, measured = nominal_kbps(codec_id), measured_kbps(codec_id, OTHER_IDS)
    assert measured <= 1.10 * nominal, f"{codec_id}: {measured:.2f} kbit/s vs nominal {nominal}"


@pytest.mark.parametrize("codec_id", CODEC_IDS)
def test_residual_delay_at_most_one_sample(codec_id: str) -> None:
    lags = [lag_samples(audio, recon) for audio, _, recon in roundtrips(codec_id, SPEECH_IDS)]
    worst = max(lags, key=abs)
    assert abs(worst) <= 1, f"{codec_id}: residual lags {sorted(set(lags))} samples"


def test_identity_bits_are_raw_float32() -> None:
    audio = demo_audio("music_ensemble_stereo")
    assert make_codec("identity").encode(audio).bits == 32 * audio.channels * audio.frames


def test_pesq_rises_with_opus_bitrate() -> None:
    from pesq import pesq

    means = {}
    for codec_id in ("opus_6k", "opus_12k", "opus_24k"):
        recon = {
            item_id: rec
            for item_id, (_, _, rec) in zip(SPEECH_IDS, roundtrips(codec_id, SPEECH_IDS))
            if item_id in PESQ_IDS
        }
        scores = [
            pesq(16000, demo_at(i, 16000).samples[0], resample(recon[i], 16000).samples[0], "wb") for i in PESQ_IDS
        ]
        means[codec_id] = float(np.mean(scores))
    assert means["opus_24k"] > means["opus_12k"] > means["opus_6k"], means


@pytest.mark.parametrize("codec_id", CODEC_IDS)
def test_encoding_is_deterministic(codec_id: str) -> None:
    audio = demo_at("music_ensemble_stereo", make_codec(codec_id).choose_rate(48000))
    first, second = make_codec(codec_id), make_codec(codec_id)
    runs = [first.encode(audio), second.encode(audio), first.encode(audio)]
    for other in runs[1:]:
        assert other.bits == runs[0].bits
        assert other.side == runs[0].side
        if isinstance(runs[0].payload, np.ndarray):
            assert np.array_equal(other.payload, runs[0].payload)
        else:
            assert other.payload == runs[0].payload


def test_fingerprints_differ_between_configs() -> None:
    fingerprints = {make_codec(codec_id).fingerprint() for codec_id in CODEC_IDS}
    assert len(fingerprints) == len(CODEC_IDS)


# --- Opus specifics -------------------------------------------------------------


def test_opus_facts() -> None:
    codec = make_codec("opus_12k")
    assert (codec.family, codec.nominal_kbps) == ("opus", 12.0)
    assert codec.sample_rates == (48000,) and codec.channel_counts == (1, 2)
    assert codec.params()["options"] == {"application": "audio", "vbr": "constrained", "frame_duration": "20"}


@pytest.mark.parametrize("extra", [-1, 0, 1, 7])
def test_opus_short_tail_still_gives_every_frame(extra: int) -> None:
    """Lengths where the last packet ends just at the input's end (6 kbit/s: SILK NB, 6-sample shift)."""
    codec = make_codec("opus_6k")
    frames = 50 * 960 - 312 + extra
    audio = Audio(demo_at("librivox_m1_0870", 48000).samples[:, :frames], 48000)
    recon = codec.decode(codec.encode(audio))
    assert recon.frames == frames
    assert abs(lag_samples(audio, recon)) <= 1


def test_opus_rejects_wrong_rate() -> None:
    with pytest.raises(AudioError, match=r"48000.*found 16000"):
        make_codec("opus_12k").encode(demo_audio("librivox_m1_0870"))
    with pytest.raises(AudioError, match=r"channels one of \(1, 2\), found 3"):
        make_codec("opus_12k").encode(Audio(np.zeros((3, 960), np.float32), 48000))


@pytest.mark.parametrize(
    "kwargs, listed",
    [
        ({"bitrate": 5}, "from 6 to 510 kbit/s, found 5"),
        ({"bitrate": 511}, "from 6 to 510 kbit/s, found 511"),
        ({"bitrate": "12k"}, "number of kbit/s, found '12k'"),
        ({"bitrate": 12, "application": "music"}, "application one of voip, audio, lowdelay; found 'music'"),
        ({"bitrate": 12, "vbr": "maybe"}, "vbr one of off, on, constrained; found 'maybe'"),
        ({"bitrate": 12, "complexity": 5}, "valid options: application, vbr, frame_duration"),
        ({"family": "mp9", "bitrate": 12}, "family one of opus; found 'mp9'"),
    ],
)
def test_invalid_parameters_list_valid_choices(kwargs: dict, listed: str) -> None:
    kwargs = {"family": "opus", **kwargs}
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
        codec.encode(demo_at("librivox_m1_0880", 48000))


def test_constructing_does_not_import_av() -> None:
    code = (
        "import sys\n"
        "from codecbench.codecs.pyav import PyAVCodec\n"
        "PyAVCodec('opus', 12, application='voip')\n"
        "assert 'av' not in sys.modules, 'av imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
