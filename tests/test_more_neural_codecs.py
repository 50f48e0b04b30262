"""SQCodec and CoDiCodec: every YAML at random weights of its real architecture, checked against the packages.

No hub serves weights here, so each YAML is composed with the project's Hydra
config and ``random_init=true`` (SQCodec at small layer widths: the real model
class, sample rate, hop, attention window and FSQ levels are kept; CoDiCodec at
full size, its sizes being constants of its package), then checked against
facts written down from the papers (``EXPECTED``) and against the packages' own
encode/decode functions at the same weights. Loading a local folder, the
Hugging Face cache layout and the message a user without weights gets are
tested too.
"""

from __future__ import annotations

import importlib.util
import math
import sys
from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest
from hydra.utils import instantiate
from omegaconf import open_dict

from codecbench.audio import Audio, resample
from codecbench.codecs.base import Tokens
from codecbench.codecs.neural import TokenCodec, WeightsUnavailable
from codecbench.errors import ConfigError

from conftest import CODEC_DIR, check_codec_yaml_headers, check_decoded, compose, missing


#: id -> (sample rate Hz, channels, frames/s, codebook size, nominal kbit/s, samples the input is padded to)
#: SQCodec (arXiv 2504.04949): FSQ levels 7^6 (16.84 bits) or 9^3 x 7^3 (17.93 bits), hop = conv strides x
#: transformer compression, padded to hop x attention window. CoDiCodec (arXiv 2509.09836): 128 tokens of
#: FSQ 11^4 (13.84 bits) per 32 STFT frames of hop 1024 (32768 samples), 2.38 kbit/s at 44.1 kHz.
_Q = lambda rate, hop, size, window: (rate, 1, rate / hop, size, rate / hop * math.log2(size) / 1000,  # noqa: E731
                                     hop * window)
EXPECTED = {
    "sqcodec_16k_0_75kbps": _Q(16000, 360, 7**6, 200), "sqcodec_16k_1_5kbps": _Q(16000, 180, 7**6, 300),
    "sqcodec_16k_3kbps": _Q(16000, 90, 7**6, 400), "sqcodec_16k_6kbps": _Q(16000, 45, 7**6, 300),
    "sqcodec_16k_12kbps": _Q(16000, 24, 9**3 * 7**3, 400), "sqcodec_24k_12kbps": _Q(24000, 36, 9**3 * 7**3, 400),
    "sqcodec_24k_24kbps": _Q(24000, 18, 9**3 * 7**3, 600),
    "codicodec_44k": (44100, 2, 44100 * 128 / 32768, 11**4, 44100 * 128 / 32768 * math.log2(11**4) / 1000, 32768),
}
#: the bitrates the papers and model names state (kbit/s), rounded
STATED_KBPS = {"sqcodec_16k_0_75kbps": 0.75, "sqcodec_16k_1_5kbps": 1.5, "sqcodec_16k_3kbps": 3.0,
               "sqcodec_16k_6kbps": 6.0, "sqcodec_16k_12kbps": 12.0, "sqcodec_24k_12kbps": 12.0,
               "sqcodec_24k_24kbps": 24.0, "codicodec_44k": 2.38}
IDS = sorted(EXPECTED)
SQ_IDS = [i for i in IDS if i.startswith("sqcodec")]


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """One intra-op thread on the shared machine (restored afterwards)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _small_sq(arch: dict) -> dict:
    """SQCodec at small widths: same strides, window, compression and FSQ levels. The encoder keeps its last
    width (192) and feature_dim >= 32, and the transformer-compressed models (0.75, 1.5 kbit/s) their whole
    encoder: narrower random encoders shrink their output until every frame gets FSQ's centre code."""
    n_enc, n_dec = len(arch["compress_rates"]) + 1, len(arch["decode_rates"]) + 1
    small = {"decoder_dims": [16] * (n_dec - 1) + [8], "decoder_depths": [1] * n_dec}
    if arch["en_coder_compress_rate"] == 1:
        small.update({"feature_dim": 32, "encoder_dims": [4] * (n_enc - 1) + [192], "encoder_depths": [1] * n_enc,
                      "en_coder_depth": 1})
    return small


def _compose_codec(codec_id: str, *overrides: str, small: bool = True):
    cfg = compose([f"codec={codec_id}", *(f"codec.{codec_id}.{o}" for o in overrides)])
    node = cfg.codec[codec_id]
    if small and codec_id.startswith("sqcodec"):
        from codecbench.codecs.sqcodec_codec import SQCodec

        with open_dict(node):
            node.config = _small_sq(SQCodec.ARCHITECTURES[node.architecture])
    return node


def needs_package(codec_id: str) -> None:
    """Skip unless the codec's package is installed (pip install 'codecbench[neural]'; sq-codec needs Python 3.11+)."""
    package = "sq_codec" if codec_id.startswith("sqcodec") else "codicodec"
    if package == "sq_codec" and sys.version_info < (3, 11):
        pytest.skip("sq-codec needs Python 3.11 or newer")
    if importlib.util.find_spec(package) is None:  # not importorskip: importing codicodec changes torch's flags
        missing(f"{package} is not installed: pip install -e '.[neural]'")


@lru_cache(maxsize=None)
def random_codec(codec_id: str) -> TokenCodec:
    needs_package(codec_id)
    codec = instantiate(_compose_codec(codec_id, "random_init=true"))
    assert isinstance(codec, TokenCodec)
    return codec


#: CoDiCodec at small widths: its sizes are constants of ``codicodec.models`` (read when the model is built and
#: run), set for one test's duration by monkeypatch; same classes, STFT, chunks, 128 tokens per chunk, FSQ levels.
SMALL_CODICODEC = {"dim": 64, "heads": 2, "num_layers": 1, "num_layers_encoder": 1, "cond_channels": 64,
                   "frontend_base_channels": 8, "frontend_multipliers_list": [1, 2, 4, 8],
                   "frontend_layers_list": [1, 1, 1, 1], "frontend_encoder_layers_list": [1, 1, 1, 1]}


@pytest.fixture
def small_codicodec(monkeypatch):
    """Builds codicodec_44k from its YAML at small random weights (the sizes restored after the test)."""
    needs_package("codicodec")
    from codecbench.codecs.codicodec_codec import _codicodec

    _, models, _ = _codicodec()
    for name, value in SMALL_CODICODEC.items():
        monkeypatch.setattr(models, name, value)
    return lambda *overrides: instantiate(_compose_codec("codicodec_44k", *overrides))


@lru_cache(maxsize=None)
def _demo(item_id: str):
    from codecbench.datasets.demo import DemoDataset

    return next(item for item in DemoDataset() if item.id == item_id).load()


def inputs(codec: TokenCodec) -> list[Audio]:
    """Two demo crops of different lengths (speech, music) at the codec's rate and channels: 1.2 s and 0.8 s,
    or for CoDiCodec 0.5 s and 0.7 s (one 32768-sample chunk each: its decoder is slow at full size)."""
    out = []
    lengths = (0.5, 0.7) if codec.family.startswith("codicodec") else (1.2, 0.8)
    for item_id, seconds in zip(("librivox_m1_0880", "music_band"), lengths):
        audio = _demo(item_id).channel(0)
        audio = resample(Audio(audio.samples[:, : int(seconds * audio.sample_rate)], audio.sample_rate),
                         codec.sample_rates[0])
        if codec.channel_counts == (2,):
            audio = Audio(np.concatenate([audio.samples, 0.5 * audio.samples]), audio.sample_rate)
        out.append(audio)
    return out


def test_yamls_have_headers_and_expected_facts() -> None:
    mine = sorted(p.stem for p in CODEC_DIR.glob("*.yaml") if p.stem.startswith(("sqcodec_", "codicodec_")))
    assert mine == IDS
    check_codec_yaml_headers(IDS)


@pytest.mark.parametrize("codec_id", IDS)
def test_declared_facts(codec_id: str) -> None:
    """Rates, codebook and nominal kbit/s as the papers state them, without loading anything."""
    codec = instantiate(_compose_codec(codec_id, small=False))
    rate, channels, frame_rate, size, kbps, pad = EXPECTED[codec_id]
    assert codec.sample_rates == (rate,) and codec.channel_counts == (channels,)
    assert (codec.n_codebooks, codec.codebook_size, codec.pad_multiple) == (1, size, pad)
    assert codec.frame_rates == pytest.approx([frame_rate]) and codec.nominal_kbps == pytest.approx(kbps, rel=1e-9)
    assert codec.nominal_kbps == pytest.approx(STATED_KBPS[codec_id], rel=0.005)  # the names round to 0.5 %
    assert codec.random_init is False and codec._model is None


def test_sqcodec_architectures_match_the_package_configs() -> None:
    """ARCHITECTURES = the package's configs/<model>.toml, but 12kbps_24khz's rate (its toml says 16000)."""
    needs_package("sqcodec")
    import tomllib

    import sq_codec
    from codecbench.codecs.sqcodec_codec import SQCodec

    assert sorted(sq_codec.list_models()) == sorted(SQCodec.ARCHITECTURES)
    for model, arch in SQCodec.ARCHITECTURES.items():
        toml = tomllib.loads((sq_codec.CONFIG_DIR / f"{model}.toml").read_text())
        assert {k: v for k, v in arch.items() if k != "sample_rate"} == toml["network_config"], model
        assert toml["model_version"] == "v0" and toml["weight_url"].endswith(f"/weights/{model}.v0/{{}}.pt")
        assert arch["sample_rate"] == (24000 if model == "12kbps_24khz" else toml["sample_rate"]), model
    assert tomllib.loads((sq_codec.CONFIG_DIR / "12kbps_24khz.toml").read_text())["sample_rate"] == 16000


@pytest.mark.parametrize("codec_id", SQ_IDS)
def test_roundtrip_at_random_weights(codec_id: str) -> None:
    codec = random_codec(codec_id)
    rate, channels, frame_rate, size, kbps, pad = EXPECTED[codec_id]
    audios = inputs(codec)
    singles = [codec.encode(a) for a in audios]
    for audio, enc in zip(audios, singles):
        tokens = enc.payload
        padded = -(-audio.frames // pad) * pad
        frames = round(padded * frame_rate / rate)
        assert isinstance(tokens, Tokens) and [c.shape for c in tokens.codes] == [(1, frames)]
        assert tokens.codes[0].min() >= 0 and tokens.codes[0].max() < size
        assert len(np.unique(tokens.codes[0])) > 1, "every frame got one code: degenerate random weights"
        assert tokens.codebook_sizes == (size,) and tokens.frame_rates == pytest.approx([frame_rate])
        assert enc.bits == math.ceil(frames * math.log2(size)) and tokens.side_bits == 0
        assert frames * math.log2(size) / (padded / rate) / 1000 == pytest.approx(kbps, rel=1e-9)
        assert (enc.frames, enc.sample_rate, enc.channels, enc.delay_samples) == (audio.frames, rate, channels, 0)
    decoded = [codec.decode(e) for e in singles]
    for audio, out in zip(audios, decoded):
        check_decoded(out, audio, channels, rate)
    # batching (items of equal padded length share a forward pass): the same codes, the same audio
    for one, many in zip(singles, codec.encode_batch(audios)):
        assert one.bits == many.bits and np.array_equal(one.payload.codes[0], many.payload.codes[0]), codec_id
    for one, many in zip(decoded, codec.decode_batch(singles)):
        assert np.abs(one.samples - many.samples).max() <= 1e-4 * np.abs(one.samples).max(), codec_id


@pytest.mark.parametrize("codec_id", ["sqcodec_16k_0_75kbps", "sqcodec_16k_6kbps"])
def test_sqcodec_equals_the_package_encode_and_decode(codec_id: str) -> None:
    """The adapter's codes and audio = sq_codec.SQCodec.encode_audio / decode_audio(indices=...) at the same weights."""
    import torch

    codec = random_codec(codec_id)
    import sq_codec

    reference = sq_codec.SQCodec.__new__(sq_codec.SQCodec)  # without __init__: it reads a toml, nothing else
    reference.network = codec.model()
    audio = inputs(codec)[0]
    with torch.inference_mode():
        _, indices = reference.encode_audio(torch.from_numpy(audio.samples))
        expected = reference.decode_audio(indices=indices)[:, : audio.frames].numpy()
    enc = codec.encode(audio)
    assert np.array_equal(enc.payload.codes[0], indices.numpy())
    np.testing.assert_allclose(codec.decode(enc).samples, expected, rtol=0, atol=1e-6)


def test_codicodec_roundtrip_equals_the_package(small_codicodec, monkeypatch) -> None:
    """At small random weights: tokens, bits, batching, and tokens and audio equal to codicodec's
    encode_audio_inference / decode_latent_inference (float32, same noise seed) on the input zero-padded to whole
    chunks, as codecbench feeds it. torchaudio is neither installed nor needed."""
    import torch
    from types import SimpleNamespace

    codec = small_codicodec("random_init=true")
    model = codec.model()
    from codicodec import inference, utils  # imported by the fixture through the adapter (flags restored)

    rate, channels, frame_rate, size, kbps, pad = EXPECTED["codicodec_44k"]
    audios = inputs(codec)
    batch = codec.encode_batch(audios)  # equal padded lengths: one forward pass
    monkeypatch.setattr(utils, "mixed_precision", False)  # the package autocasts to float16, even on CPU
    trainer, cpu = SimpleNamespace(gen=model), torch.device("cpu")
    references = []
    for audio, enc in zip(audios, batch):
        tokens = enc.payload
        assert [c.shape for c in tokens.codes] == [(1, 128)] and tokens.codebook_sizes == (size,)
        assert 0 <= tokens.codes[0].min() and tokens.codes[0].max() < size and len(np.unique(tokens.codes[0])) > 1
        assert enc.bits == math.ceil(128 * math.log2(size)) and tokens.frame_rates == pytest.approx([frame_rate])
        assert (enc.frames, enc.sample_rate, enc.channels, enc.delay_samples) == (audio.frames, rate, 2, 0)
        # the package, one item at a time, on the input zero-padded to whole chunks
        padded = np.pad(audio.samples, ((0, 0), (0, -audio.frames % pad)))
        latents = inference.encode_audio_inference(padded, trainer, 64, device=cpu, preprocess_on_gpu=False)
        indices = model.fsq.codes_to_indexes(latents)  # (chunks, 128)
        assert np.array_equal(tokens.codes[0][0], indices.reshape(-1).numpy())
        references.append(indices)
    audio = audios[0]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(codec.seed)
        codes = model.fsq.indexes_to_codes(references[0])
        expected = inference.decode_latent_inference(codes, trainer, "parallel", 32,
                                                     denoising_steps=codec.denoising_steps, device=cpu)
    out = codec.decode(batch[0])
    check_decoded(out, audio, 2, rate)
    np.testing.assert_allclose(out.samples, expected.numpy()[:, : audio.frames], rtol=0, atol=1e-5)
    assert "torchaudio" not in sys.modules and importlib.util.find_spec("torchaudio") is None


def test_codicodec_full_size_facts_and_global_state() -> None:
    """The real sizes (148.5 M parameters) at random weights code one chunk; random weights are marked;
    importing codicodec (which sets cuDNN/TF32 flags and TORCHINDUCTOR_CACHE_DIR) through the adapter leaves
    them as they were; config overrides are refused."""
    import os

    import torch

    codec = random_codec("codicodec_44k")
    from codecbench.codecs.codicodec_codec import _codicodec

    before = (torch.backends.cudnn.benchmark, torch.backends.cuda.matmul.allow_tf32,
              os.environ.get("TORCHINDUCTOR_CACHE_DIR"))
    _codicodec()
    assert "codicodec.models" in sys.modules and before[:2] == (False, False)  # torch's defaults: restored
    assert before == (torch.backends.cudnn.benchmark, torch.backends.cuda.matmul.allow_tf32,
                      os.environ.get("TORCHINDUCTOR_CACHE_DIR"))
    facts = codec.facts()
    assert facts["random_init"] is True and facts["family"] == "codicodec-random"
    assert facts["weights_source"] == "random:seed=0 (NOT trained weights)" and len(facts["weights_hash"]) == 64
    assert facts["params"]["denoising_steps"] == 5 and facts["frame_ms"] == pytest.approx(1000 * 32768 / 44100)
    assert sum(p.numel() for p in codec.model().parameters()) == 148_533_388
    tokens = codec.encode(inputs(codec)[0]).payload.codes[0]
    assert tokens.shape == (1, 128) and len(np.unique(tokens)) > 1 and tokens.max() < 11**4
    from codecbench.codecs.codicodec_codec import CoDiCodec

    with pytest.raises(ConfigError, match="config overrides are not supported"):
        CoDiCodec(config={"dim": 64})


def _save(codec: TokenCodec, folder: Path) -> None:
    """Write the model as its hub repository lays it out."""
    import torch

    model = codec.model()
    folder.mkdir(parents=True)
    if codec.family.startswith("sqcodec"):
        for name, module in model.trainable_modules.items():
            torch.save(module.state_dict(), folder / f"{name}.pt")
    else:
        torch.save({"gen_state_dict": model.state_dict()}, folder / "codicodec.pt")


def _check_folder_load(saved: TokenCodec, loaded: TokenCodec, folder: Path) -> None:
    audio = inputs(saved)[1]
    ours, theirs = saved.encode(audio), loaded.encode(audio)
    assert np.array_equal(ours.payload.codes[0], theirs.payload.codes[0])
    assert np.array_equal(saved.decode(ours).samples, loaded.decode(theirs).samples)
    assert loaded.weights_hash() == saved.weights_hash()
    facts = loaded.facts()
    assert facts["weights_source"] == f"folder:{folder.resolve()}" and facts["random_init"] is False
    assert not facts["family"].endswith("-random")


def test_local_weights_folder_loads_through_the_yaml(tmp_path) -> None:
    """The repository layout (weights/<model>.v0/<module>.pt), as `hf download zhai-lw/SQCodec` writes it."""
    saved = random_codec("sqcodec_16k_1_5kbps")
    _save(saved, tmp_path / "repo" / "weights" / "1k5bps.v0")
    _check_folder_load(saved, instantiate(_compose_codec("sqcodec_16k_1_5kbps", f"weights={tmp_path / 'repo'}")),
                       tmp_path / "repo")


def test_codicodec_local_weights_folder(small_codicodec, tmp_path) -> None:
    saved = small_codicodec("random_init=true")
    _save(saved, tmp_path / "repo")
    _check_folder_load(saved, small_codicodec(f"weights={tmp_path / 'repo'}"), tmp_path / "repo")
    (tmp_path / "other").mkdir()
    import torch

    torch.save({"state_dict": {}}, tmp_path / "other" / "codicodec.pt")
    with pytest.raises(ConfigError, match="expected a checkpoint with key 'gen_state_dict'"):
        small_codicodec(f"weights={tmp_path / 'other'}").weights_hash()


def test_sqcodec_folder_layouts_and_the_hugging_face_cache(tmp_path, monkeypatch) -> None:
    """The five module files directly in a folder (the package's own cache layout), the hub id found in the
    local HF cache with HF_HUB_OFFLINE=1, and a folder missing a module (named, not skipped as the package does)."""
    from huggingface_hub import constants

    saved = random_codec("sqcodec_16k_6kbps")
    _save(saved, tmp_path / "flat")
    flat = instantiate(_compose_codec("sqcodec_16k_6kbps", f"weights={tmp_path / 'flat'}"))
    assert flat.weights_hash() == saved.weights_hash()

    commit = "0123456789abcdef0123456789abcdef01234567"
    entry = tmp_path / "hub" / "models--zhai-lw--SQCodec"
    _save(saved, entry / "snapshots" / commit / "weights" / "6kbps.v0")
    (entry / "refs").mkdir()
    (entry / "refs" / "main").write_text(commit)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    cached = instantiate(_compose_codec("sqcodec_16k_6kbps"))
    assert cached.weights == "zhai-lw/SQCodec" and cached.weights_source() == f"hub:zhai-lw/SQCodec@{commit}"
    assert cached.weights_hash() == saved.weights_hash()

    (tmp_path / "flat" / "en_decoder.pt").unlink()
    broken = instantiate(_compose_codec("sqcodec_16k_6kbps", f"weights={tmp_path / 'flat'}"))
    with pytest.raises(ConfigError, match=r"missing in .*flat: en_decoder\.pt"):
        broken.weights_hash()


@pytest.mark.parametrize("codec_id, hub_id, command", [
    ("sqcodec_16k_3kbps", "zhai-lw/SQCodec", "hf download zhai-lw/SQCodec"),
    ("codicodec_44k", "SonyCSLParis/codicodec", "hf download SonyCSLParis/codicodec"),
])
def test_missing_weights_say_how_to_get_them(codec_id, hub_id, command, tmp_path, monkeypatch) -> None:
    from huggingface_hub import constants

    needs_package(codec_id)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    codec = instantiate(_compose_codec(codec_id, small=False))
    with pytest.raises(WeightsUnavailable) as error:
        codec.weights_hash()
    message = str(error.value)
    assert f"weights {hub_id!r} are not on this machine" in message and "HF_HUB_OFFLINE is set" in message
    assert command in message and "weights=DIR" in message and str(tmp_path / "hub") in message
