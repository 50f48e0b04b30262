"""Neural token codecs: every neural YAML in conf/codec/ at random weights of its real architecture.

No hub serves weights here, so each YAML is composed with the project's Hydra
config, ``random_init=true`` and small layer widths (``SMALL``: the real model
class, sample rate, frame rate and codebook layout are kept), then checked
against facts written down independently of the adapters (``EXPECTED``, from
the models' papers and configurations). Loading a local folder written by
``save_pretrained``, the message a user without weights gets, chunked
inference and a run through the real pipeline are tested too.
"""

from __future__ import annotations

import json
import math
import time
from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest
from hydra.utils import instantiate
from omegaconf import OmegaConf, open_dict

from codecbench.audio import Audio, resample
from codecbench.codecs.base import Tokens
from codecbench.codecs.neural import TokenCodec, WeightsUnavailable, locate_weights, pieces
from codecbench.errors import ConfigError
from codecbench.store import read_json, read_rows

from conftest import CODEC_DIR, check_codec_yaml_headers, check_decoded, compose, run_cli, write_audio


#: id -> (sample rate Hz, channels, code frames/s of each codebook, codebook size, nominal kbit/s)
_E24 = lambda n: (24000, 1, [75.0] * n, 1024, 75 * n * 10 / 1000)  # noqa: E731
_E48 = lambda n: (48000, 2, [150.0] * n, 1024, 150 * n * 10 / 1000)  # noqa: E731
_D = lambda rate, hop, n: (rate, 1, [rate / hop] * n, 1024, rate / hop * n * 10 / 1000)  # noqa: E731
_M = lambda n: (24000, 1, [12.5] * n, 2048, 12.5 * n * 11 / 1000)  # noqa: E731
_X = lambda n: (16000, 1, [50.0] * n, 1024, 50 * n * 10 / 1000)  # noqa: E731
_W = lambda fps: (24000, 1, [float(fps)], 4096, fps * 12 / 1000)  # noqa: E731
_S = lambda rate, hop, strides: (rate, 1, [rate / (hop * s) for s in strides], 4096,  # noqa: E731
                                 sum(rate / (hop * s) for s in strides) * 12 / 1000)
EXPECTED = {
    "encodec_24k_1_5kbps": _E24(2), "encodec_24k_3kbps": _E24(4), "encodec_24k_6kbps": _E24(8),
    "encodec_24k_12kbps": _E24(16), "encodec_24k_24kbps": _E24(32),
    "encodec_48k_3kbps": _E48(2), "encodec_48k_6kbps": _E48(4), "encodec_48k_12kbps": _E48(8),
    "encodec_48k_24kbps": _E48(16), "encodec_32k_2_2kbps": (32000, 1, [50.0] * 4, 2048, 50 * 4 * 11 / 1000),
    "dac_16k": _D(16000, 320, 12), "dac_16k_6cb": _D(16000, 320, 6), "dac_24k": _D(24000, 320, 32),
    "dac_24k_8cb": _D(24000, 320, 8), "dac_24k_16cb": _D(24000, 320, 16), "dac_44k": _D(44100, 512, 9),
    "dac_44k_4cb": _D(44100, 512, 4),
    "mimi_8cb": _M(8), "mimi_16cb": _M(16), "mimi_32cb": _M(32),
    "xcodec_hubert_ls_0_5kbps": _X(1), "xcodec_hubert_ls_1kbps": _X(2), "xcodec_hubert_ls_2kbps": _X(4),
    "xcodec_hubert_ls_4kbps": _X(8), "xcodec_wavlm_mls_4kbps": _X(8), "xcodec_wavlm_more_data_4kbps": _X(8),
    "xcodec_general_4kbps": _X(8), "xcodec_general_balanced_4kbps": _X(8),
    "snac_24k": _S(24000, 512, [4, 2, 1]), "snac_32k": _S(32000, 384, [8, 4, 2, 1]),
    "snac_44k": _S(44100, 384, [8, 4, 2, 1]),
    # WavTokenizer: one 4096-entry codebook at 40 frames/s (hop 600) or 75 frames/s (hop 320)
    "wavtokenizer_small_speech_40token": _W(40), "wavtokenizer_small_speech_75token": _W(75),
    "wavtokenizer_medium_speech_75token": _W(75), "wavtokenizer_medium_speech_75token_v2": _W(75),
    "wavtokenizer_medium_music_audio_75token": _W(75), "wavtokenizer_medium_music_audio_75token_v2": _W(75),
    "wavtokenizer_large_unify_40token": _W(40), "wavtokenizer_large_speech_75token_v2": _W(75),
}
#: samples each family pads its input to (a multiple of): one code frame, or SNAC's attention block.
PAD = {"facebook/encodec_24khz": 320, "facebook/encodec_32khz": 640, "facebook/encodec_48khz": 320, "descript/dac_16khz": 320,
       "descript/dac_24khz": 320, "descript/dac_44khz": 512, "kyutai/mimi": 1920,
       **{f"hf-audio/xcodec-{name}": 320 for name in ("hubert-librispeech", "hubert-general",
                                                        "hubert-general-balanced", "wavlm-mls", "wavlm-more-data")},
       "hubertsiuzdak/snac_24khz": 2048, "hubertsiuzdak/snac_32khz": 12288, "hubertsiuzdak/snac_44khz": 12288,
       **{f"swiss-ai/wavtokenizer-{name}-40token": 600 for name in ("small-speech", "large-unify")},
       **{f"swiss-ai/wavtokenizer-{name}": 320 for name in (
           "small-speech-75token", "medium-speech-75token", "medium-speech-75token-v2", "medium-music-audio-75token",
           "medium-music-audio-75token-v2", "large-speech-75token-v2")}}

#: small layer widths per family: same model class, rates and codebook layout, a fraction of the compute.
_HUBERT_SMALL = {"hidden_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 32,
                 "conv_dim": [8] * 7, "num_conv_pos_embeddings": 16, "num_conv_pos_embedding_groups": 2}
SMALL = {
    "encodec": {"num_filters": 4, "hidden_size": 16, "num_lstm_layers": 1},
    "dac": {"encoder_hidden_size": 4, "decoder_hidden_size": 32},
    "mimi": {"hidden_size": 32, "num_filters": 4, "codebook_dim": 16, "vector_quantization_hidden_dimension": 16,
             "upsample_groups": 32, "num_hidden_layers": 1, "intermediate_size": 32, "num_attention_heads": 2,
             "num_key_value_heads": 2},
    "xcodec": {"acoustic_model_config": {"encoder_hidden_size": 4, "decoder_hidden_size": 32, "hidden_size": 64},
               "semantic_model_config": _HUBERT_SMALL},
    "snac": {"encoder_dim": 4, "decoder_dim": 64},
    "wavtokenizer": {"num_filters": 4, "hidden_size": 16, "codebook_dim": 16, "num_lstm_layers": 1,
                     "decoder_hidden_size": 32, "decoder_intermediate_size": 64, "decoder_num_layers": 1,
                     "decoder_attention_num_groups": 4},
}


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """One intra-op thread: on a shared 2-core machine, torch's second thread makes these small models
    several times slower (waiting on a busy core). Restored afterwards."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


#: the adapter modules whose YAMLs this file runs (other neural families have their own test files,
#: e.g. tests/test_more_neural_codecs.py for SQCodec and CoDiCodec)
MODULES = ("codecbench.codecs.transformers_codecs.", "codecbench.codecs.snac_codec.")


def _neural_ids() -> list[str]:
    """Every YAML with a ``weights`` entry whose adapter lives in one of ``MODULES``."""
    nodes = {p.stem: OmegaConf.load(p) for p in CODEC_DIR.glob("*.yaml")}
    return sorted(k for k, n in nodes.items() if "weights" in n and str(n.get("_target_", "")).startswith(MODULES))


NEURAL_IDS = _neural_ids()


def _family(codec_id: str) -> str:
    return codec_id.split("_")[0]


def _compose_codec(codec_id: str, *overrides: str, small: bool = True):
    cfg = compose([f"codec={codec_id}", *(f"codec.{codec_id}.{o}" for o in overrides)])
    node = cfg.codec[codec_id]
    if small:
        with open_dict(node):
            node.config = SMALL[_family(codec_id)]
    return node


@lru_cache(maxsize=None)
def random_codec(codec_id: str) -> TokenCodec:
    """The YAML's codec at small random weights, instantiated as a run does."""
    codec = instantiate(_compose_codec(codec_id, "random_init=true"))
    assert isinstance(codec, TokenCodec)
    return codec


@lru_cache(maxsize=None)
def _demo(item_id: str):
    from codecbench.datasets.demo import DemoDataset

    return next(item for item in DemoDataset() if item.id == item_id).load()


def inputs(codec: TokenCodec) -> list[Audio]:
    """Two demo crops of different lengths (1.2 s speech, 0.8 s music) at the codec's rate and channels."""
    out = []
    for item_id, seconds in (("librivox_m1_0880", 1.2), ("music_band", 0.8)):
        audio = _demo(item_id).channel(0)
        audio = resample(Audio(audio.samples[:, : int(seconds * audio.sample_rate)], audio.sample_rate),
                         codec.sample_rates[0])
        if codec.channel_counts == (2,):
            audio = Audio(np.concatenate([audio.samples] * 2), audio.sample_rate)
        out.append(audio)
    return out


def expected_frames(codec_id: str, codec: TokenCodec, frames: int) -> list[int]:
    """Code frames per codebook for a ``frames``-sample input, from EXPECTED and PAD alone."""
    rate, _, frame_rates, _, _ = EXPECTED[codec_id]
    padded = -(-frames // PAD[codec.architecture]) * PAD[codec.architecture]
    if codec.architecture == "facebook/encodec_48khz":  # 1 s chunks every 0.99 s, each rounded up to frames
        chunks = [min(rate, padded - off) for off in range(0, padded, int(0.99 * rate))]
        return [sum(-(-c // 320) for c in chunks)] * len(frame_rates)
    return [round(padded * fr / rate) for fr in frame_rates]


def test_neural_yamls_cover_the_families() -> None:
    assert set(NEURAL_IDS) == set(EXPECTED), set(NEURAL_IDS) ^ set(EXPECTED)
    check_codec_yaml_headers(NEURAL_IDS)


@pytest.mark.parametrize("codec_id", NEURAL_IDS)
def test_declared_facts(codec_id: str) -> None:
    """Rates, codebooks and nominal kbit/s as the architecture defines them (no weights loaded)."""
    codec = instantiate(_compose_codec(codec_id, small=False))
    rate, channels, frame_rates, size, kbps = EXPECTED[codec_id]
    assert codec.sample_rates == (rate,) and codec.channel_counts == (channels,)
    assert codec.n_codebooks == len(frame_rates) and codec.codebook_size == size
    assert codec.frame_rates == pytest.approx(frame_rates) and codec.frame_rate == pytest.approx(max(frame_rates))
    assert codec.nominal_kbps == pytest.approx(kbps, rel=1e-9)
    assert codec.frame_ms == pytest.approx(1000 / min(frame_rates))
    assert codec.random_init is False and codec._model is None  # building the codec loads nothing


@pytest.mark.parametrize("codec_id", NEURAL_IDS)
def test_roundtrip_at_random_weights(codec_id: str) -> None:
    codec = random_codec(codec_id)
    rate, channels, frame_rates, size, kbps = EXPECTED[codec_id]
    audios = inputs(codec)
    singles = [codec.encode(a) for a in audios]
    for audio, enc in zip(audios, singles):
        tokens = enc.payload
        assert isinstance(tokens, Tokens) and len(tokens.codes) == len(frame_rates)
        frames = expected_frames(codec_id, codec, audio.frames)
        assert [c.shape for c in tokens.codes] == [(1, f) for f in frames]
        assert all(c.min() >= 0 and c.max() < size for c in tokens.codes)
        assert len(np.unique(tokens.codes[0])) > 1, "every frame got one code: random codebooks are degenerate"
        assert tokens.codebook_sizes == (size,) * len(frame_rates) and tokens.frame_rates == pytest.approx(frame_rates)
        # measured bits = the codes emitted (+ EnCodec 48 kHz's float32 scale per 1 s chunk)
        code_bits = sum(frames) * math.log2(size)
        n_chunks = len(range(0, -(-audio.frames // 320) * 320, int(0.99 * rate))) if "48k" in codec_id else 0
        assert tokens.side_bits == 32 * n_chunks
        assert enc.bits == math.ceil(code_bits) + 32 * n_chunks
        if "48k" not in codec_id:  # exact: codes per second of (padded) input = the nominal rate
            padded_s = -(-audio.frames // PAD[codec.architecture]) * PAD[codec.architecture] / rate
            assert code_bits / padded_s / 1000 == pytest.approx(kbps, rel=1e-9)
        assert (enc.frames, enc.sample_rate, enc.channels, enc.delay_samples) == (audio.frames, rate, channels, 0)

    decoded = [codec.decode(e) for e in singles]
    for audio, out in zip(audios, decoded):
        check_decoded(out, audio, channels, rate)

    # batching (causal codecs pad to the longest item; the others batch equal lengths only): the
    # same bits and codes as one by one but for rare floating-point ties (a batched convolution
    # rounds differently); the same codes decode to the same audio within float precision.
    for one, many in zip(singles, codec.encode_batch(audios)):
        assert one.bits == many.bits and [c.shape for c in one.payload.codes] == [c.shape for c in many.payload.codes]
        same = sum(int((a == b).sum()) for a, b in zip(one.payload.codes, many.payload.codes))
        total = sum(a.size for a in one.payload.codes)
        assert same >= (0.99 if codec.causal else 1.0) * total, f"{codec_id}: batched codes agree on {same} of {total}"
    for one, many in zip(decoded, codec.decode_batch(singles)):
        assert np.abs(one.samples - many.samples).max() <= 1e-4 * np.abs(one.samples).max(), codec_id


@pytest.mark.parametrize("codec_id", ["encodec_24k_6kbps", "snac_32k"])
def test_random_weights_are_marked_and_seeded(codec_id: str) -> None:
    codec = random_codec(codec_id)
    facts = codec.facts()
    assert facts["random_init"] is True and facts["family"].endswith("-random")
    assert facts["weights_source"] == "random:seed=0 (NOT trained weights)"
    assert len(facts["weights_hash"]) == 64 and facts["params"]["seed"] == 0
    again = instantiate(_compose_codec(codec_id, "random_init=true"))
    other_seed = instantiate(_compose_codec(codec_id, "random_init=true", "seed=1"))
    assert again.weights_hash() == codec.weights_hash() != other_seed.weights_hash()
    assert again.fingerprint() == codec.fingerprint() != other_seed.fingerprint()
    audio = inputs(codec)[0]
    assert np.array_equal(again.decode(again.encode(audio)).samples, codec.decode(codec.encode(audio)).samples)


def _save(codec: TokenCodec, folder: Path) -> None:
    """Write the codec's model as its hub checkpoint is laid out (transformers save_pretrained, or SNAC's files)."""
    import torch

    model = codec.model()
    if codec.family.startswith("snac"):
        folder.mkdir(parents=True)
        (folder / "config.json").write_text(json.dumps(codec.arch))
        torch.save(model.state_dict(), folder / "pytorch_model.bin")
    else:
        model.save_pretrained(str(folder))


@pytest.mark.parametrize("codec_id", ["encodec_24k_6kbps", "encodec_48k_6kbps", "dac_44k_4cb", "mimi_8cb",
                                      "xcodec_hubert_ls_2kbps", "snac_24k", "wavtokenizer_large_unify_40token",
                                      "wavtokenizer_medium_speech_75token"])
def test_local_weights_folder_loads_through_the_yaml(codec_id: str, tmp_path) -> None:
    saved = random_codec(codec_id)
    _save(saved, tmp_path / "weights")
    loaded = instantiate(_compose_codec(codec_id, f"weights={tmp_path / 'weights'}"))
    audio = inputs(saved)[1]
    ours, theirs = saved.encode(audio), loaded.encode(audio)
    assert all(np.array_equal(a, b) for a, b in zip(ours.payload.codes, theirs.payload.codes))
    assert np.array_equal(saved.decode(ours).samples, loaded.decode(theirs).samples)
    assert loaded.weights_hash() == saved.weights_hash()
    facts = loaded.facts()
    assert facts["weights_source"] == f"folder:{(tmp_path / 'weights').resolve()}" and facts["random_init"] is False
    assert not facts["family"].endswith("-random")


def test_hub_id_loads_from_the_hugging_face_cache_offline(tmp_path, monkeypatch) -> None:
    """The YAML's hub id, found in the local HF cache (the layout `hf download` writes), with HF_HUB_OFFLINE=1."""
    from huggingface_hub import constants

    saved = random_codec("mimi_8cb")
    commit = "0123456789abcdef0123456789abcdef01234567"
    entry = tmp_path / "hub" / "models--kyutai--mimi"
    _save(saved, entry / "snapshots" / commit)
    (entry / "refs").mkdir()
    (entry / "refs" / "main").write_text(commit)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    loaded = instantiate(_compose_codec("mimi_8cb"))
    assert loaded.weights == "kyutai/mimi" and loaded.weights_source() == f"hub:kyutai/mimi@{commit}"
    assert loaded.weights_hash() == saved.weights_hash()
    audio = inputs(saved)[1]
    ours, theirs = saved.encode(audio).payload.codes, loaded.encode(audio).payload.codes
    assert all(np.array_equal(a, b) for a, b in zip(ours, theirs))


def test_weights_of_another_architecture_are_refused(tmp_path) -> None:
    _save(random_codec("dac_44k_4cb"), tmp_path / "dac44")
    codec = instantiate(_compose_codec("dac_16k", f"weights={tmp_path / 'dac44'}"))
    with pytest.raises(ConfigError, match="expected sample_rate 16000, found 44100"):
        codec.weights_hash()
    # WavTokenizer's checkpoints share rate and codebook: a 75 frames/s folder is told by its hop
    _save(random_codec("wavtokenizer_medium_speech_75token"), tmp_path / "wt75")
    codec = instantiate(_compose_codec("wavtokenizer_large_unify_40token", f"weights={tmp_path / 'wt75'}"))
    with pytest.raises(ConfigError, match="expected hop_length 600, found 320"):
        codec.weights_hash()


def test_missing_weights_fail_fast_with_instructions(tmp_path, monkeypatch) -> None:
    """Not cached, hub unreachable (a closed local port): the error says how to get the weights, in seconds."""
    from huggingface_hub import constants

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")
    started = time.perf_counter()
    with pytest.raises(WeightsUnavailable) as error:
        locate_weights("facebook/encodec_24khz", None, "encodec", hub_timeout=2.0)
    assert time.perf_counter() - started < 10
    message = str(error.value)
    assert "cannot connect to http://127.0.0.1:9" in message and str(tmp_path / "hub") in message
    assert "hf download facebook/encodec_24khz --local-dir DIR" in message and "weights=DIR" in message
    with pytest.raises(ConfigError, match="expected a folder"):
        locate_weights(str(tmp_path / "no_such_folder"), None, "encodec")


def test_run_without_weights_says_how_to_get_them(tmp_path) -> None:
    result = run_cli(
        "run", "codec=encodec_24k_6kbps", "dataset.limit=1", "task=[signal]", f"run_dir={tmp_path / 'run'}",
        f"paths.cache_dir={tmp_path / 'cache'}", env={"HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")},
        timeout=120,
    )
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert "weights 'facebook/encodec_24khz' are not on this machine" in result.stderr
    assert "HF_HUB_OFFLINE is set" in result.stderr and str(tmp_path / "hf" / "hub") in result.stderr
    assert "hf download facebook/encodec_24khz" in result.stderr and "codec.<codec id>.weights=DIR" in result.stderr


def test_chunked_inference_joins_independent_pieces() -> None:
    """A 1.2 s item in 0.4 s pieces overlapping by 0.08 s: each piece coded alone, all codes sent, cross-faded."""
    whole = random_codec("encodec_24k_6kbps")
    chunked = instantiate(_compose_codec("encodec_24k_6kbps", "random_init=true", "chunk_seconds=0.4",
                                         "overlap_seconds=0.08", "batch_size=1"))  # pieces one by one: exact
    audio = inputs(whole)[0]
    assert (chunked.chunk_samples, chunked.overlap_samples, audio.frames) == (9600, 1920, 28800)
    spans = [(0, 9600), (7680, 9600), (15360, 9600), (23040, 5760)]
    assert pieces(audio.frames, 9600, 1920) == spans
    alone = [whole.encode(Audio(audio.samples[:, s : s + n], audio.sample_rate)) for s, n in spans]
    enc = chunked.encode(audio)
    for k in range(whole.n_codebooks):
        assert np.array_equal(enc.payload.codes[k], np.concatenate([a.payload.codes[k] for a in alone], axis=1))
    assert enc.bits == sum(a.bits for a in alone) > whole.encode(audio).bits  # the overlaps are paid for
    expected = np.zeros_like(audio.samples)
    fade_in = (np.arange(1920) + 0.5) / 1920  # weight of the next piece over each overlap
    for (start, length), part in zip(spans, (whole.decode(a).samples for a in alone)):
        if start:
            previous = expected[:, start : start + 1920]
            expected[:, start : start + 1920] = (1 - fade_in) * previous + fade_in * part[:, :1920]
            expected[:, start + 1920 : start + length] = part[:, 1920:]
        else:
            expected[:, :length] = part
    np.testing.assert_allclose(chunked.decode(enc).samples, expected, rtol=1e-4, atol=1e-6)


def test_device_and_dtype_are_explicit() -> None:
    from codecbench.pipeline import instantiate as build  # as a run builds it: the adapter's own error

    with pytest.raises(ConfigError, match="dtype expected one of float32, float16, bfloat16, found 'float64'"):
        build(_compose_codec("mimi_8cb", "dtype=float64"), "codec mimi_8cb")
    import torch

    if not torch.cuda.is_available():
        codec = instantiate(_compose_codec("mimi_8cb", "random_init=true", "device=cuda"))
        with pytest.raises(ConfigError, match="sees no CUDA device"):
            codec.encode(inputs(codec)[1])
    half = instantiate(_compose_codec("mimi_8cb", "random_init=true", "dtype=bfloat16"))
    out = half.decode(half.encode(inputs(half)[1]))
    assert out.samples.dtype == np.float32 and np.isfinite(out.samples).all()
    assert half.fingerprint() != random_codec("mimi_8cb").fingerprint()


def test_pipeline_runs_a_random_weight_codec_and_caches_it(tmp_path) -> None:
    """codecbench's Evaluation over two real speech crops: rows, bits, provenance, then a cache hit."""
    from codecbench.pipeline import Evaluation

    lines = []
    for item_id in ("librivox_m1_0880", "librivox_m1_0930"):
        audio = _demo(item_id)
        crop = audio.samples[0, : int(1.5 * audio.sample_rate)]
        write_audio(tmp_path / "data" / f"{item_id}.wav", crop, audio.sample_rate)
        lines.append(json.dumps({"id": item_id, "path": f"{item_id}.wav", "domain": "speech"}))
    (tmp_path / "data" / "manifest.jsonl").write_text("\n".join(lines) + "\n")
    cfg = compose([
        "codec=dac_16k", "codec.dac_16k.random_init=true", "dataset=manifest",
        "codec.dac_16k.config={encoder_hidden_size:4,decoder_hidden_size:32}",  # as on the command line
        f"dataset.path={tmp_path / 'data' / 'manifest.jsonl'}", "task=[signal]", "task.signal.metrics=[si_sdr]",
        f"paths.cache_dir={tmp_path / 'cache'}", "progress=false",
    ])
    assert OmegaConf.to_container(cfg.codec.dac_16k.config) == SMALL["dac"]
    summary = Evaluation(cfg, tmp_path / "run").run()
    entry = summary["codecs"]["dac_16k"]
    assert entry["family"] == "dac-random" and entry["n_failed"] == 0 and entry["nominal_kbps"] == pytest.approx(6.0)
    # 1.5 s at 16 kHz = 75 frames of 320 samples, 12 codebooks x 10 bits each: exactly 6 kbit/s
    assert entry["measured_kbps"] == pytest.approx(6.0, rel=1e-9)
    record = read_json(tmp_path / "run" / "run.json")["codecs"]["dac_16k"]
    assert record["weights_source"].startswith("random:") and len(record["weights_hash"]) == 64
    rows = [r for r in read_rows(tmp_path / "run") if r["task"] == "codec"]
    assert [r["values"]["bits"] for r in rows] == [9000, 9000] and {r["info"]["cache"] for r in rows} == {"miss"}
    Evaluation(cfg, tmp_path / "again").run()
    assert {r["info"]["cache"] for r in read_rows(tmp_path / "again") if r["task"] == "codec"} == {"hit"}
