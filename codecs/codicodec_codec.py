"""CoDiCodec (Pasini, Lattner and Fazekas, Sony CSL 2025), discrete tokens, through the ``codicodec`` package.

CoDiCodec turns stereo audio into a complex STFT (hop 1024, window 2048,
1024 bins; real and imaginary parts of both channels) and cuts it into chunks
of 32 frames (32768 samples, 0.74 s at 44.1 kHz). A transformer encoder
summarises each chunk into 128 "summary embeddings" of 4 dimensions, each
quantised by FSQ with levels 11 x 11 x 11 x 11: one token in ``[0, 14641)``
(13.84 bits). The 128 tokens of a chunk are a set describing the whole chunk,
not a time sequence; codecbench sends them as one codebook of 14641 entries at
``128 / 32768`` tokens per sample: 172.3 tokens/s and 2.384 kbit/s at 44.1 kHz,
the 2.38 kbit/s of the paper. Stereo is coded jointly (one token stream), so the
codec declares 2 channels; the pipeline duplicates mono input.

The STFT frames of a chunk reach 1024 samples into the next one, and the
input is zero-padded to whole chunks: the tokens of the padding are sent and
counted (a 1 s item costs two chunks, 1.49 s of tokens). Chunks are encoded
independently, so items batch with items of equal padded length (results equal
one at a time).

The decoder is a consistency model: starting from Gaussian noise it refines
the spectrogram in ``denoising_steps`` steps (the package's default for its
parallel decoding: 5), conditioned on the tokens of pairs of chunks. codecbench
draws that noise from torch's generator seeded with ``seed`` for each item (the
global RNG state is restored) and decodes items one at a time, so a
reconstruction is deterministic and independent of batching. The model runs in
codecbench's ``dtype`` (float32 by default); the package's own ``encode`` /
``decode`` run it under float16 autocast, even on CPU. No delay to remove.

The sample rate is not stored in the model (it works on STFT frames). The
authors state 2.38 kbit/s and load audio at 44.1 kHz in their example, so the
variant declares 44.1 kHz (``hparams.sample_rate = 48000`` in the package is
used only by a mel-spectrogram helper).

Importing ``codicodec`` sets ``torch.backends`` flags (cuDNN benchmark, TF32)
and the ``TORCHINDUCTOR_CACHE_DIR`` environment variable; codecbench restores
them right after the import. torchaudio is imported only by ``audio.create_melmat``,
which encoding and decoding never call. The architecture's sizes are constants
of the package (``codicodec.hparams``), so it is always built at full size
(148.5 M parameters); ``config`` overrides are refused.

Weights: ``SonyCSLParis/codicodec`` holds ``codicodec.pt``, a checkpoint whose
``gen_state_dict`` is the model's state dict (loaded strictly). ``weights`` is that
hub id (Hugging Face cache first) or a local folder holding ``codicodec.pt``
(the package keeps its own download in ``<site-packages>/codicodec/models/``).
The package's ``EncoderDecoder`` downloads at construction; codecbench never
calls it.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from codecbench.codecs.neural import TokenCodec, import_torch, split_codes
from codecbench.errors import ConfigError, missing_extra

HUB_ID = "SonyCSLParis/codicodec"
CHECKPOINT = "codicodec.pt"


def _codicodec():
    """The package's ``hparams``, ``models`` and ``audio`` modules; the global state its import changes is restored."""
    torch = import_torch()
    flags = [(torch.backends.cudnn, "benchmark"), (torch.backends.cudnn, "allow_tf32"),
             (torch.backends.cuda.matmul, "allow_tf32"),
             (torch.backends.cuda.matmul, "allow_fp16_reduced_precision_reduction")]
    saved = [getattr(owner, name) for owner, name in flags]
    env = os.environ.get("TORCHINDUCTOR_CACHE_DIR")
    try:
        from codicodec import audio, hparams, models
    except ImportError:
        raise missing_extra("codicodec", "neural") from None
    finally:
        for (owner, name), value in zip(flags, saved):
            if getattr(owner, name) != value:
                setattr(owner, name, value)
        if env is None:
            os.environ.pop("TORCHINDUCTOR_CACHE_DIR", None)
        else:
            os.environ["TORCHINDUCTOR_CACHE_DIR"] = env
    return hparams, models, audio


class CoDiCodec(TokenCodec):
    """CoDiCodec's discrete tokens through ``codicodec.models.UNet`` (joint stereo, FSQ summary tokens)."""

    family = "codicodec"
    WEIGHT_FILES = [CHECKPOINT]
    #: hub id -> the facts of the package's architecture (codicodec 0.1.2, hparams.py), and the declared rate.
    ARCHITECTURES = {
        HUB_ID: {"sample_rate": 44100, "channels": 2, "hop": 1024, "spec_length": 32, "num_latents": 128,
                 "fsq_levels": [11, 11, 11, 11]},
    }

    def __init__(self, architecture: str = HUB_ID, denoising_steps: int = 5, **kwargs):
        super().__init__(architecture, **kwargs)
        if self.config_overrides:
            raise ConfigError(
                f"{self.family}: config overrides are not supported (the architecture's sizes are constants of "
                f"the codicodec package), found {self.config_overrides}"
            )
        if int(denoising_steps) < 1:
            raise ConfigError(f"{self.family}: denoising_steps expected >= 1, found {denoising_steps}")
        self.denoising_steps = int(denoising_steps)
        self.frame_ms = 1000.0 * self.pad_multiple / self.native_rate  # one chunk of tokens covers 32768 samples

    @classmethod
    def layout(cls, arch: dict) -> dict:
        chunk = int(arch["hop"]) * int(arch["spec_length"])
        return {"sample_rate": int(arch["sample_rate"]), "channels": int(arch["channels"]),
                "hop_length": chunk // int(arch["num_latents"]), "strides": [1],
                "codebook_size": int(np.prod(arch["fsq_levels"])), "pad_multiple": chunk}

    def params(self) -> dict:
        return {**super().params(), "denoising_steps": self.denoising_steps, "noise_seed": self.seed}

    def _package_arch(self, hparams) -> dict:
        return {"channels": 2 if hparams.stereo else 1, "hop": hparams.hop,
                "spec_length": hparams.spec_length, "num_latents": hparams.num_latents,
                "fsq_levels": list(hparams.fsq_levels)}

    def _unet(self):
        hparams, models, _ = _codicodec()
        found = self._package_arch(hparams)
        for key, value in found.items():
            if self.arch[key] != value:
                raise ConfigError(
                    f"{self.family}: the installed codicodec package builds {key}={value}, expected {self.arch[key]} "
                    f"(architecture {self.architecture!r}, codicodec 0.1.2)"
                )
        return models.UNet()

    def build_random(self, arch: dict):
        """The full-size model at random weights, with the zero-initialised layers drawn too.

        The package initialises the output layers of its residual branches and of its
        transformers to zero (a training device): at such weights every token would be the
        same and the decoder would return its noise. For ``random_init`` every all-zero
        weight matrix or kernel is drawn from N(0, 0.02^2) instead (torch's seeded generator).
        """
        torch = import_torch()
        model = self._unet()
        with torch.no_grad():
            for param in model.parameters():
                if param.dim() >= 2 and not param.any():
                    param.normal_(0.0, 0.02)
        return model

    def load_folder(self, folder: Path):
        torch = import_torch()
        path = folder / CHECKPOINT
        if not path.is_file():
            raise FileNotFoundError(f"expected {path} (CoDiCodec's checkpoint), found no such file")
        model = self._unet()
        try:
            checkpoint = torch.load(path, map_location="cpu", weights_only=True)
        except Exception:  # the authors' checkpoint may pickle more than tensors; the package loads it this way
            checkpoint = torch.load(path, map_location="cpu", weights_only=False)
        if not isinstance(checkpoint, dict) or "gen_state_dict" not in checkpoint:
            found = sorted(checkpoint)[:8] if isinstance(checkpoint, dict) else type(checkpoint).__name__
            raise ConfigError(
                f"{self.family}: expected a checkpoint with key 'gen_state_dict' in {path}, found {found}"
            )
        model.load_state_dict(checkpoint["gen_state_dict"], strict=True)
        return model

    def loaded_arch(self, model) -> dict:
        hparams, _, _ = _codicodec()
        return {**self._package_arch(hparams), "sample_rate": self.native_rate,
                "num_latents": int(model.latents.shape[1]), "fsq_levels": [int(v) for v in model.fsq._levels_tensor]}

    def encode_padded(self, model, x, lengths):
        torch = import_torch()
        hparams, _, audio = _codicodec()
        dtype = next(model.parameters()).dtype
        spec = audio.to_representation_encoder(x.float())  # (batch, 4, 1024, stft frames)
        pad = -spec.shape[-1] % hparams.spec_length  # as the package's encode: zero frames to whole chunks
        spec = torch.nn.functional.pad(spec, (0, pad)).to(dtype)
        latents = model.encoder_forward(spec, dont_quantize=False)  # (batch, 128 x chunks, 4), FSQ-quantised
        indices = model.fsq.codes_to_indexes(latents.float())
        frames = [n // self.hop_length for n in lengths]
        return [(codes, {}, 0) for codes in split_codes(indices[:, None, :], frames)]

    def decode_padded(self, model, codes, sides, lengths):
        torch = import_torch()
        hparams, _, audio = _codicodec()
        param = next(model.parameters())
        pair = 2 * hparams.num_latents
        out = []
        for item in codes:  # one at a time: the decoder's noise must not depend on the batch
            indices = torch.from_numpy(item[0].astype(np.int64))[None, :].to(param.device)
            latents = model.fsq.indexes_to_codes(indices).to(param.dtype)  # (1, tokens, 4)
            frames = latents.shape[-2] // hparams.num_latents * hparams.spec_length
            latents = torch.nn.functional.pad(latents, (0, 0, 0, -latents.shape[-2] % pair))  # whole chunk pairs
            with torch.random.fork_rng(devices=[param.device] if param.device.type == "cuda" else []):
                torch.manual_seed(self.seed)
                spec = model.decode_single_parallel(latents, denoising_steps=self.denoising_steps)
            y = audio.to_waveform(spec[..., :frames].float())  # (1, 2, samples), clamped to [-1, 1]
            out.append(y[0].detach().to("cpu", torch.float32).numpy())
        return out
