"""SNAC, the Multi-Scale Neural Audio Codec (Siuzdak et al. 2024), through the ``snac`` package.

SNAC quantises at several temporal resolutions: codebook ``k`` runs at
``sample_rate / (hop x vq_strides[k])`` frames per second (coarse first), all
codebooks of 4096 (12 bits). 24 kHz: hop 512, strides 4/2/1 -> 11.7 + 23.4 +
46.9 frames/s = 0.98 kbit/s. 32 kHz: hop 384, strides 8/4/2/1 -> 1.9 kbit/s.
44.1 kHz: hop 384, strides 8/4/2/1 -> 2.6 kbit/s. Every level is needed to
decode, so ``n_codebooks`` is always all of them.

The model pads its input on the right to a multiple of ``hop x
lcm(vq_strides[0], attn_window_size)`` samples (12288 = 0.28 s at 44.1 kHz,
2048 at 24 kHz), and emits codes for the padding too; the decoder needs them,
so they are counted: on a short item the measured bitrate sits above the
nominal one by the padded share (exactly ``padded length / length``).

Its decoder adds Gaussian noise (``NoiseBlock``). codecbench draws that noise
from torch's generator seeded with ``seed`` for each item (the global RNG state
is restored) and decodes items one at a time, so a reconstruction is
deterministic and independent of batching. Non-causal: no delay to remove.
Weights: a hub id (``hubertsiuzdak/snac_24khz``...) or a folder holding
``config.json`` and ``pytorch_model.bin``, as ``SNAC.from_pretrained`` reads them.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from codecbench.codecs.neural import TokenCodec, import_torch, split_codes
from codecbench.errors import missing_extra


def _snac():
    try:
        from snac import SNAC
    except ImportError:
        raise missing_extra("snac", "neural") from None
    return SNAC


class SnacCodec(TokenCodec):
    """SNAC through ``snac.SNAC`` (mono, non-causal, multi-scale codebooks of 4096)."""

    family = "snac"
    WEIGHT_FILES = ["config.json", "pytorch_model.bin"]
    ARCHITECTURES = {
        "hubertsiuzdak/snac_24khz": {
            "sampling_rate": 24000, "encoder_dim": 48, "encoder_rates": [2, 4, 8, 8], "decoder_dim": 1024,
            "decoder_rates": [8, 8, 4, 2], "attn_window_size": None, "codebook_size": 4096, "codebook_dim": 8,
            "vq_strides": [4, 2, 1], "noise": True, "depthwise": True,
        },
        "hubertsiuzdak/snac_32khz": {
            "sampling_rate": 32000, "encoder_dim": 64, "encoder_rates": [2, 3, 8, 8], "decoder_dim": 1536,
            "decoder_rates": [8, 8, 3, 2], "attn_window_size": 32, "codebook_size": 4096, "codebook_dim": 8,
            "vq_strides": [8, 4, 2, 1], "noise": True, "depthwise": True,
        },
        "hubertsiuzdak/snac_44khz": {
            "sampling_rate": 44100, "encoder_dim": 64, "encoder_rates": [2, 3, 8, 8], "decoder_dim": 1536,
            "decoder_rates": [8, 8, 3, 2], "attn_window_size": 32, "codebook_size": 4096, "codebook_dim": 8,
            "vq_strides": [8, 4, 2, 1], "noise": True, "depthwise": True,
        },
    }

    @classmethod
    def layout(cls, arch: dict) -> dict:
        hop = int(np.prod(arch["encoder_rates"]))
        strides = [int(s) for s in arch["vq_strides"]]
        return {"sample_rate": int(arch["sampling_rate"]), "channels": 1, "hop_length": hop, "strides": strides,
                "codebook_size": int(arch["codebook_size"]),
                "pad_multiple": hop * math.lcm(strides[0], arch.get("attn_window_size") or 1)}

    def min_codebooks(self) -> int:
        return self.max_codebooks

    def params(self) -> dict:
        return {**super().params(), "noise_seed": self.seed}

    def build_random(self, arch: dict):
        return _snac()(**arch)

    def load_folder(self, folder: Path):
        for name in ("config.json", "pytorch_model.bin"):
            if not (folder / name).is_file():
                raise FileNotFoundError(f"expected {folder / name} (SNAC's checkpoint layout), found no such file")
        return _snac().from_pretrained(str(folder))

    def loaded_arch(self, model) -> dict:
        return {"sampling_rate": model.sampling_rate, "encoder_rates": list(model.encoder_rates),
                "vq_strides": list(model.vq_strides), "codebook_size": model.codebook_size,
                "attn_window_size": model.attn_window_size}

    def encode_padded(self, model, x, lengths):
        codes = model.encode(x)  # one (batch, frames_k) tensor per codebook, coarse first
        per_level = [split_codes(c[:, None, :], [n // (self.hop_length * s) for n in lengths]) for c, s in
                     zip(codes, self.strides)]
        return [([level[b][0] for level in per_level], {}, 0) for b in range(len(lengths))]

    def decode_padded(self, model, codes, sides, lengths):
        torch = import_torch()
        device = next(model.parameters()).device
        out = []
        for item in codes:  # one at a time: the decoder's noise must not depend on the batch
            tensors = [torch.from_numpy(c.astype(np.int64))[None, :].to(device) for c in item]
            with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
                torch.manual_seed(self.seed)
                y = model.decode(tensors)
            out.append(y[0].detach().to("cpu", torch.float32).numpy())
        return out
