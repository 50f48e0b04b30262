"""Checks every NeMo codec YAML at random weights; run inside the NeMo venv by tests/test_nemo_venv.py.

For each ``conf/codec/nemo_*.yaml`` (composed with the project's Hydra config,
``random_init=true``, full size): parameter counts of the encoder, quantiser and
decoder (the model cards state 64.4 M for the mel codec 44 kHz and 112.7 M for
the low frame-rate codec), encode/decode of demo crops (shapes, rate, finite
output, codes in range), measured bitrate equal to the nominal one over the
padded length, batching equal to one at a time, and ``save_to`` of the model
then loading that ``.nemo`` through ``weights=<file>``: identical codes, audio
and weights hash. Then, on one small model (``config`` overrides: narrower
layers, same rates and FSQ), the other weight layouts (a folder holding the
.nemo, an extracted .nemo, the Hugging Face cache with HF_HUB_OFFLINE=1), the
refusals (another architecture's checkpoint, weights that do not fit their
configuration, missing weights) and that importing and restoring leave global
state as it was.

At random initialisation the HiFi-GAN encoders' outputs are about 0.01, so
every frame would get FSQ's centre code and the checks could not tell codes
apart (their output is mostly a per-channel constant); the gain and bias of
their last convolution are rescaled per channel so that their output has zero
mean and unit spread over time on a demo crop before coding (the weights stay
random, the architecture is unchanged; the mel encoders need no such step).

Prints one JSON object on its last line. Usage: python tests/nemo_check.py OUT_DIR [CODEC_ID ...]
"""

from __future__ import annotations

import json
import math
import os
import sys
import tarfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from conftest import REPO, compose  # noqa: E402

CODEC_IDS = sorted(p.stem for p in (REPO / "conf" / "codec").glob("nemo_*.yaml"))
#: parameters of encoder + quantiser + decoder that the model cards state (millions, rounded to 0.1)
CARD_PARAMS_M = {"nemo_mel_codec_44k": 64.4, "nemo_low_frame_rate_22k": 112.7}
#: demo crops (item id, seconds): two of equal length (batched together) and a shorter one (its own batch)
CROPS = (("librivox_m1_0880", 0.6), ("music_band", 0.6), ("librivox_m1_0880", 0.37))
#: narrower layers for the layout checks (same rates, strides and FSQ levels)
SMALL = {"audio_encoder": {"base_channels": 4}, "audio_decoder": {"base_channels": 32}}


def check(condition: bool, message: str) -> None:
    if not condition:
        raise AssertionError(message)


def node(codec_id: str, *overrides: str):
    return compose([f"codec={codec_id}", *(f"codec.{codec_id}.{o}" for o in overrides)]).codec[codec_id]


def build(codec_id: str, *overrides: str, config: dict | None = None):
    from hydra.utils import instantiate
    from omegaconf import open_dict

    cfg = node(codec_id, *overrides)
    if config is not None:
        with open_dict(cfg):
            cfg.config = config
    return instantiate(cfg)


def spread_codes(codec) -> None:
    """Rescale a random HiFi-GAN encoder's output convolution, per channel, to zero mean and unit spread over
    time on a demo crop (see the module docstring); re-hash the weights."""
    import torch

    from codecbench.codecs.neural import state_dict_sha256

    model = codec.model()
    if type(model.audio_encoder).__name__ == "HiFiGANEncoder":
        probe = demo_inputs(codec)[0]
        with torch.inference_mode():
            encoded, _ = model.encode_audio(audio=torch.from_numpy(probe.samples),
                                            audio_len=torch.tensor([probe.frames]))
        conv = model.audio_encoder.post_conv.conv  # out = W x + b, W = g v / |v| (weight norm)
        mean, spread = encoded[0].mean(dim=-1), encoded[0].std(dim=-1)  # per channel, over time
        with torch.no_grad():
            conv.parametrizations.weight.original0.mul_((1.0 / spread)[:, None, None])
            conv.bias.copy_(-(mean - conv.bias) / spread)
        codec._weights_hash = state_dict_sha256(model)


def demo_inputs(codec) -> list:
    from codecbench.audio import Audio, resample
    from codecbench.datasets.demo import DemoDataset

    items = {item.id: item for item in DemoDataset()}
    out = []
    for item_id, seconds in CROPS:
        audio = items[item_id].load().channel(0)
        crop = Audio(audio.samples[:, : int(seconds * audio.sample_rate)], audio.sample_rate)
        out.append(resample(crop, codec.sample_rates[0]))
    return out


def code_and_check(codec, audios: list) -> tuple[list, list, list]:
    """Encode and decode one at a time, checking tokens, bits and audio; returns encodings, decodings, rows."""
    rate, hop, size = codec.sample_rates[0], codec.hop_length, codec.codebook_size
    encoded = [codec.encode(a) for a in audios]
    decoded = [codec.decode(e) for e in encoded]
    rows = []
    for audio, enc, out in zip(audios, encoded, decoded):
        tokens, frames = enc.payload, -(-audio.frames // hop)
        check([c.shape for c in tokens.codes] == [(1, frames)] * 8, f"expected 8 x (1, {frames}) codes, found "
              f"{[c.shape for c in tokens.codes]}")
        check(all(0 <= c.min() and c.max() < size for c in tokens.codes), "codes outside [0, codebook size)")
        check(len(np.unique(np.concatenate(tokens.codes, axis=1))) > 8, "codes barely vary: degenerate weights")
        check(tokens.codebook_sizes == (size,) * 8 and tokens.side_bits == 0, "codebook sizes or side bits")
        check(enc.bits == math.ceil(8 * frames * math.log2(size)), f"bits {enc.bits}")
        padded_kbps = enc.bits / (frames * hop / rate) / 1000  # above nominal by the one rounded-up bit
        exact_kbps = 8 * frames * math.log2(size) / (frames * hop / rate) / 1000
        check(abs(exact_kbps - codec.nominal_kbps) <= 1e-12 * codec.nominal_kbps,
              f"measured {exact_kbps} kbit/s over the padded length, nominal {codec.nominal_kbps}")
        check(0 <= padded_kbps - exact_kbps < 1e-3 / (frames * hop / rate), "more than one rounded-up bit")
        check((enc.frames, enc.sample_rate, enc.channels, enc.delay_samples) == (audio.frames, rate, 1, 0), "facts")
        check((out.channels, out.frames, out.sample_rate) == (1, audio.frames, rate), "decoded shape or rate")
        check(out.samples.dtype == np.float32 and bool(np.isfinite(out.samples).all()), "decoded not finite float32")
        check(float(out.samples.std()) > 0, "decoded audio is constant")
        rows.append({"frames": audio.frames, "code_frames": frames, "bits": enc.bits,
                     "kbps": enc.bits / (audio.frames / rate) / 1000, "kbps_padded": padded_kbps})
    for k in range(8):
        check(len(np.unique(np.concatenate([e.payload.codes[k] for e in encoded], axis=1))) > 1,
              f"codebook {k} sent one code only: degenerate weights")
    return encoded, decoded, rows


def check_batching(codec, audios, encoded, decoded) -> None:
    for one, many in zip(encoded, codec.encode_batch(audios)):
        check(one.bits == many.bits and all(np.array_equal(a, b) for a, b in zip(one.payload.codes,
                                                                                  many.payload.codes)),
              "batched codes differ from one at a time")
    for one, many in zip(decoded, codec.decode_batch(encoded)):
        scale = float(np.abs(one.samples).max())
        check(float(np.abs(one.samples - many.samples).max()) <= 1e-4 * scale, "batched audio differs")


def check_same(saved, loaded, audio, source: str) -> None:
    ours, theirs = saved.encode(audio), loaded.encode(audio)
    check(all(np.array_equal(a, b) for a, b in zip(ours.payload.codes, theirs.payload.codes)), "loaded codes differ")
    check(np.array_equal(saved.decode(ours).samples, loaded.decode(theirs).samples), "loaded audio differs")
    check(loaded.weights_hash() == saved.weights_hash(), "loaded weights hash differs")
    facts = loaded.facts()
    check(facts["weights_source"] == source, f"weights_source {facts['weights_source']!r}, expected {source!r}")
    check(facts["random_init"] is False and facts["family"] == "nemo", "loaded codec marked random")


def check_codec(codec_id: str, out_dir: Path) -> dict:
    start = time.time()
    codec = build(codec_id, "random_init=true")
    model = codec.model()
    params = {name: sum(p.numel() for p in getattr(model, name).parameters())
              for name in ("audio_encoder", "vector_quantizer", "audio_decoder")}
    if codec_id in CARD_PARAMS_M:
        check(round(sum(params.values()) / 1e6, 1) == CARD_PARAMS_M[codec_id],
              f"{codec_id}: {sum(params.values())} parameters, the model card states {CARD_PARAMS_M[codec_id]} M")
    check(codec.facts()["family"] == "nemo-random" and "NOT trained" in codec.weights_source(), "random marking")
    spread_codes(codec)
    audios = demo_inputs(codec)
    encoded, decoded, rows = code_and_check(codec, audios)
    check_batching(codec, audios, encoded, decoded)
    path = out_dir / f"{codec_id}.nemo"
    model.save_to(str(path))
    loaded = build(codec_id, f"weights={path}")
    check_same(codec, loaded, audios[2], f"file:{path.resolve()}")
    size_mb = path.stat().st_size / 1e6
    path.unlink()
    return {"params": params, "nominal_kbps": codec.nominal_kbps, "items": rows, "nemo_mb": round(size_mb, 1),
            "seconds": round(time.time() - start, 1)}


def check_layouts(out_dir: Path) -> dict:
    """Weight layouts and refusals on small models (codec nemo_audio_codec_22k, nemo_low_frame_rate_22k)."""
    from huggingface_hub import constants

    from codecbench.codecs.nemo_codec import CONFIG_FILE, NemoCodec
    from codecbench.codecs.neural import WeightsUnavailable
    from codecbench.errors import ConfigError

    saved = build("nemo_audio_codec_22k", "random_init=true", config=SMALL)
    spread_codes(saved)
    audio = demo_inputs(saved)[2]
    nemo_file = out_dir / "small.nemo"
    saved.model().save_to(str(nemo_file))
    results = {}

    folder = out_dir / "snapshot"  # a folder holding the repository's .nemo file, as `hf download` writes it
    folder.mkdir()
    (folder / "audio-codec-22khz.nemo").symlink_to(nemo_file)
    check_same(saved, build("nemo_audio_codec_22k", f"weights={folder}", config=SMALL), audio,
               f"folder:{folder.resolve()}")

    extracted = out_dir / "extracted"  # an extracted .nemo (model_config.yaml + model_weights.ckpt)
    with tarfile.open(nemo_file, "r:*") as archive:
        archive.extractall(extracted, filter="data")
    check_same(saved, build("nemo_audio_codec_22k", f"weights={extracted}", config=SMALL), audio,
               f"folder:{extracted.resolve()}")

    commit = "0123456789abcdef0123456789abcdef01234567"  # the Hugging Face cache, offline
    entry = out_dir / "hub" / "models--nvidia--audio-codec-22khz"
    (entry / "snapshots" / commit).mkdir(parents=True)
    (entry / "snapshots" / commit / "audio-codec-22khz.nemo").symlink_to(nemo_file)
    (entry / "refs").mkdir()
    (entry / "refs" / "main").write_text(commit)
    before = (os.environ.get("HF_HUB_OFFLINE"), constants.HF_HUB_CACHE)
    os.environ["HF_HUB_OFFLINE"], constants.HF_HUB_CACHE = "1", str(out_dir / "hub")
    try:
        check_same(saved, build("nemo_audio_codec_22k", config=SMALL), audio,
                   f"hub:nvidia/audio-codec-22khz@{commit}")
        try:
            build("nemo_mel_codec_44k").weights_hash()
            raise AssertionError("missing weights were not refused")
        except WeightsUnavailable as error:
            message = str(error)
            check("hf download nvidia/mel-codec-44khz" in message and "HF_HUB_OFFLINE is set" in message, message)
            results["missing_weights"] = message.splitlines()[0]
    finally:
        constants.HF_HUB_CACHE = before[1]
        if before[0] is None:
            os.environ.pop("HF_HUB_OFFLINE")
        else:
            os.environ["HF_HUB_OFFLINE"] = before[0]

    # another architecture's checkpoint: refused from its configuration, before any weights are read
    other = build("nemo_low_frame_rate_22k", "random_init=true", config=SMALL)
    other_file = out_dir / "lfr.nemo"
    other.model().save_to(str(other_file))
    try:
        build("nemo_audio_codec_22k", f"weights={other_file}").weights_hash()
        raise AssertionError("a low frame-rate checkpoint loaded as the 22 kHz audio codec")
    except ConfigError as error:
        check("expected hop_length 256, found 1024" in str(error), str(error))
        results["wrong_architecture"] = str(error)

    # weights that do not fit their configuration: named tensors, expected vs found shapes
    text = (extracted / CONFIG_FILE).read_text()
    check("base_channels: 32" in text, "expected the small decoder width in the saved config")
    (extracted / CONFIG_FILE).write_text(text.replace("base_channels: 32", "base_channels: 48"))
    try:
        build("nemo_audio_codec_22k", f"weights={extracted}").weights_hash()
        raise AssertionError("weights of another width loaded")
    except ConfigError as error:
        check("shape mismatches: audio_decoder." in str(error) and "expected (1, 24, 1), found (1, 16, 1)" in str(error),
              str(error))
        results["misfit_weights"] = str(error)

    # restore_from leaves no class-wide connector or restore path behind, and the working directory as it was
    from nemo.utils.app_state import AppState

    check("_save_restore_connector" not in NemoCodec.__dict__, "connector set on the adapter")
    from nemo.collections.tts.models import AudioCodecModel

    check(type(AudioCodecModel.__dict__.get("_save_restore_connector", object())).__name__
          != "StrictCodingConnector", "the strict connector stayed on AudioCodecModel")
    check(AppState().model_restore_path is None, f"AppState restore path {AppState().model_restore_path}")
    check(Path.cwd() == REPO, f"working directory {Path.cwd()}")
    return results


def main() -> None:
    out_dir = Path(sys.argv[1])
    out_dir.mkdir(parents=True, exist_ok=True)
    os.chdir(REPO)
    ids = sys.argv[2:] or CODEC_IDS
    import torch

    torch.set_num_threads(2)
    flags = (torch.backends.cudnn.benchmark, torch.backends.cuda.matmul.allow_tf32, torch.get_num_threads(),
             torch.are_deterministic_algorithms_enabled(), torch.get_default_dtype())
    from codecbench.codecs.nemo_codec import _nemo_model_class

    _nemo_model_class()  # import nemo through the adapter
    after = (torch.backends.cudnn.benchmark, torch.backends.cuda.matmul.allow_tf32, torch.get_num_threads(),
             torch.are_deterministic_algorithms_enabled(), torch.get_default_dtype())
    check(flags == after, f"importing nemo changed torch's flags: {flags} -> {after}")
    report = {"codecs": {codec_id: check_codec(codec_id, out_dir) for codec_id in ids}}
    if not sys.argv[2:]:
        report["layouts"] = check_layouts(out_dir)
    import nemo

    report["nemo_version"] = nemo.__version__
    report["torch"] = torch.__version__
    print(json.dumps(report))


if __name__ == "__main__":
    main()
