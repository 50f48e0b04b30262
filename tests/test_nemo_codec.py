"""NeMo codecs in the main environment, where nemo_toolkit is not installed (see tests/test_nemo_venv.py).

nemo_toolkit[tts] 3.0.0 would change hydra-core, omegaconf, fsspec, packaging,
cloudpickle and urllib3 here, so it lives in its own venv. What needs no NeMo is
checked here: every nemo YAML composes and instantiates with the facts the model
cards state, the architecture table holds the recipes' settings, and building a
model without the package raises the error naming the ``nemo`` extra.
"""

from __future__ import annotations

import importlib.util
import math
import tomllib

import pytest
from hydra.utils import instantiate

from codecbench.codecs.nemo_codec import NemoCodec
from codecbench.errors import CodecbenchError, ConfigError

from conftest import CODEC_DIR, REPO, check_codec_yaml_headers, compose, missing


#: id -> (hub id, sample rate Hz, samples per frame, codebook size, FSQ levels, kbit/s the model card states)
EXPECTED = {
    "nemo_audio_codec_22k": ("nvidia/audio-codec-22khz", 22050, 256, 1000, [8, 5, 5, 5], 6.9),
    "nemo_audio_codec_44k": ("nvidia/audio-codec-44khz", 44100, 512, 1000, [8, 5, 5, 5], 6.9),
    "nemo_mel_codec_22k": ("nvidia/mel-codec-22khz", 22050, 256, 1000, [8, 5, 5, 5], 6.9),
    "nemo_mel_codec_44k": ("nvidia/mel-codec-44khz", 44100, 512, 1000, [8, 5, 5, 5], 6.9),
    "nemo_low_frame_rate_22k": ("nvidia/low-frame-rate-speech-codec-22khz", 22050, 1024, 2016, [8, 7, 6, 6], 1.89),
}
IDS = sorted(EXPECTED)


def _codec(codec_id: str, *overrides: str) -> NemoCodec:
    cfg = compose([f"codec={codec_id}", *(f"codec.{codec_id}.{o}" for o in overrides)])
    codec = instantiate(cfg.codec[codec_id])
    assert isinstance(codec, NemoCodec)
    return codec


def test_the_nemo_yamls_are_these() -> None:
    mine = sorted(p.stem for p in CODEC_DIR.glob("nemo_*.yaml"))
    assert mine == IDS
    check_codec_yaml_headers(IDS)


@pytest.mark.parametrize("codec_id", IDS)
def test_declared_facts(codec_id: str) -> None:
    """Rates, codebooks and nominal kbit/s as the model cards state them, without importing nemo."""
    hub, rate, hop, size, levels, card_kbps = EXPECTED[codec_id]
    codec = _codec(codec_id)
    assert (codec.architecture, codec.weights) == (hub, hub) and codec.WEIGHT_FILES == [f"{hub.split('/')[1]}.nemo"]
    assert codec.sample_rates == (rate,) and codec.channel_counts == (1,) and codec.causal is False
    assert (codec.hop_length, codec.pad_multiple, codec.n_codebooks, codec.codebook_size) == (hop, hop, 8, size)
    assert math.prod(levels) == size and codec.arch["vector_quantizer"]["num_levels_per_group"] == levels
    assert codec.frame_rates == pytest.approx([rate / hop] * 8)
    assert codec.nominal_kbps == pytest.approx(8 * rate / hop * math.log2(size) / 1000, rel=1e-12)
    assert codec.nominal_kbps == pytest.approx(card_kbps, rel=0.005)  # the cards round to 0.5 %
    assert codec.frame_ms == pytest.approx(1000 * hop / rate)
    assert codec.random_init is False and codec._model is None and codec.family == "nemo"
    assert codec.chunk_samples % hop == 0 and codec.chunk_samples == round(30 * rate / hop) * hop


def test_architectures_are_the_recipes() -> None:
    """Encoder, decoder and quantiser settings of NeMo's recipes (examples/tts/conf/audio_codec/*.yaml)."""
    archs = NemoCodec.ARCHITECTURES
    assert sorted(archs) == sorted(e[0] for e in EXPECTED.values())
    for hub, arch in archs.items():
        encoder, decoder, quantizer = arch["audio_encoder"], arch["audio_decoder"], arch["vector_quantizer"]
        assert quantizer["_target_"].endswith(".GroupFiniteScalarQuantizer") and quantizer["num_groups"] == 8
        assert math.prod(decoder["up_sample_rates"]) == arch["samples_per_frame"] and decoder["input_dim"] == 32
        assert "discriminator" not in arch and "train_ds" not in arch  # inference parts only (module docstring)
        assert arch["generator_loss"]["_target_"].endswith("GeneratorSquaredLoss")
        if hub.startswith("nvidia/mel-codec"):
            assert encoder["_target_"].endswith(".MultiBandMelEncoder") and len(encoder["mel_bands"]) == 8
            assert encoder["out_channels"] * 8 == 32 and encoder["mel_processor"]["hop_length"] == arch["samples_per_frame"]
            assert encoder["mel_processor"]["win_length"] == 4 * arch["samples_per_frame"]
            assert decoder["base_channels"] == 1024
        else:
            assert encoder["_target_"].endswith(".HiFiGANEncoder") and encoder["encoded_dim"] == 32
            assert encoder["down_sample_rates"] == decoder["up_sample_rates"][::-1]
    lfr = archs["nvidia/low-frame-rate-speech-codec-22khz"]
    assert lfr["audio_encoder"]["resblock_dilation_sizes"] == [1] and lfr["audio_decoder"]["base_channels"] == 1024
    assert lfr["audio_decoder"]["output_activation"] == "tanh"
    for hub in ("nvidia/audio-codec-22khz", "nvidia/audio-codec-44khz"):
        assert archs[hub]["audio_decoder"]["activation"] == "half_snake"
        assert archs[hub]["audio_decoder"]["output_activation"] == "clamp"


def test_config_overrides_and_refusals() -> None:
    small = _codec("nemo_audio_codec_22k", "config={audio_decoder:{base_channels:64}}")
    assert small.arch["audio_decoder"]["base_channels"] == 64 and small.arch["audio_decoder"]["up_sample_rates"]
    assert small.params()["config"] == {"audio_decoder": {"base_channels": 64}}
    with pytest.raises(ConfigError, match=r"n_codebooks expected 8\.\.8, found 4"):
        NemoCodec("nvidia/mel-codec-44khz", n_codebooks=4)  # FSQ groups are slices of one embedding: all are needed
    with pytest.raises(ConfigError, match="unknown architecture 'nvidia/nano-codec'"):
        NemoCodec("nvidia/nano-codec")


def test_a_non_nemo_file_is_refused(tmp_path) -> None:
    path = tmp_path / "model.ckpt"
    path.write_bytes(b"not a nemo archive")
    codec = NemoCodec("nvidia/audio-codec-22khz", weights=str(path))
    if importlib.util.find_spec("torch") is None:
        missing("torch is not installed")
    with pytest.raises(ConfigError, match=r"expected a \.nemo file, a folder or a hub id, found the file .*model\.ckpt"):
        codec.weights_hash()


@pytest.mark.parametrize("codec_id", ["nemo_audio_codec_44k", "nemo_low_frame_rate_22k"])
def test_without_nemo_the_error_names_the_extra(codec_id: str) -> None:
    if importlib.util.find_spec("nemo") is not None:
        pytest.skip("nemo_toolkit is installed here: tests/test_nemo_venv.py covers it")
    codec = _codec(codec_id, "random_init=true")
    with pytest.raises(CodecbenchError) as error:
        codec.weights_hash()
    message = str(error.value)
    assert "'nemo_toolkit'" in message and "pip install 'codecbench[nemo]'" in message


def test_the_nemo_extra_is_pinned_and_kept_out_of_test_and_all() -> None:
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert extras["nemo"] == ["nemo_toolkit[tts]==3.0.0"]
    assert not any("nemo" in req for req in extras["test"] + extras["all"])
