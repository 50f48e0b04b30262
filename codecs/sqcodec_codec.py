"""SQCodec, "One Quantizer is Enough" (Zhai et al. 2025), through the ``sq-codec`` package.

SQCodec codes mono audio with a single finite scalar quantiser (FSQ): a
convolutional encoder (strides ``compress_rates``), a local-attention
transformer (``en_encoder``; the 0.75 and 1.5 kbit/s models also shorten the
sequence by ``en_coder_compress_rate``), then FSQ with six dimensions. One code
frame is one FSQ index in ``[0, prod(levels))``: codecbench sends it as a single
codebook of ``prod(levels)`` entries (levels 7^6 = 117649 entries, 16.84
bits; levels 9^3 x 7^3 = 250047 entries, 17.93 bits), which is exactly the
information FSQ emits. ``Tokens.bits`` counts ``frames x log2(prod(levels))``,
rounded up once per item (a fixed-length code would need 17 or 18 whole bits
per frame; the nominal rates the authors give are the log2 figures).

Variants (``architecture``: the package's model name; nominal = frames/s x bits):

====================  =======  ======  ==========  ===============
model                 rate Hz  hop     frames/s    kbit/s
====================  =======  ======  ==========  ===============
0k75bps               16000    360     44.4        0.75
1k5bps                16000    180     88.9        1.50
3kbps                 16000    90      177.8       2.99
6kbps                 16000    45      355.6       5.99
12kbps                16000    24      666.7       11.95
12kbps_24khz          24000    36      666.7       11.95
24kbps_24khz          24000    18      1333.3      23.91
====================  =======  ======  ==========  ===============

The package's ``12kbps_24khz.toml`` says ``sample_rate = 16000``; its name, its
weights' name and its bitrate (36-sample hop x 17.93 bits = 11.95 kbit/s only at
24 kHz) say 24 kHz, which is what codecbench declares.

Padding: the model pads its input on the right to a multiple of ``hop x
en_coder_window_size`` samples (6kbps: 13500 = 0.84 s; 0k75bps: 72000 = 4.5 s)
and its encoder is not causal (symmetric convolutions, and GRN layers that
normalise over the whole sequence), so the codes of the padding are needed and
sent: an item shorter than that measures above the nominal rate by the padded
share (exactly ``padded length / length``). Items batch only with items of equal
padded length (results equal one at a time). Output aligned with the input: no
delay removed. The decoder is deterministic.

Weights: the hub repository ``zhai-lw/SQCodec`` holds, per model,
``weights/<model>.v0/{encoder,quantizer,decoder,en_encoder,en_decoder}.pt``
(state dicts; the package downloads them with ``requests`` into
``~/.cache/sq_codec/<model>.v0``, which codecbench never does). ``weights`` is
that hub id (looked up in the Hugging Face cache, downloaded only when the hub
answers) or a local folder: the repository's root, or a folder holding the five
``.pt`` files (for example ``~/.cache/sq_codec/6kbps.v0``). All five are
required and loaded strictly (the package itself skips missing files with a
warning).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from codecbench.codecs.neural import TokenCodec, import_torch, split_codes
from codecbench.errors import missing_extra

#: the hub repository holding every SQCodec model's weights.
HUB_ID = "zhai-lw/SQCodec"
#: the modules SQCodec saves one state dict file each for (``EnCodec.trainable_modules``).
MODULE_FILES = ("encoder", "quantizer", "decoder", "en_encoder", "en_decoder")


def _sq_codec():
    try:
        from sq_codec.en_codec import EnCodec, ModelConfig
    except ImportError:
        raise missing_extra("sq-codec", "neural") from None
    return EnCodec, ModelConfig


def _net(compress, enc_dims, enc_depths, decode, dec_dims, dec_depths, levels, depth, window, en_compress) -> dict:
    """One ``[network_config]`` table of the package's configs/<model>.toml."""
    return {
        "feature_dim": 256, "compress_rates": compress, "encoder_dims": enc_dims, "encoder_depths": enc_depths,
        "decode_rates": decode, "decoder_dims": dec_dims, "decoder_depths": dec_depths, "base_unit": "normal",
        "use_norm": True, "use_snake_act": True, "decoder_last_layer": "legacy",
        "vq_config": {"name": "taae_fsq", "codebook_dim": levels, "codebook_num": 1},
        "en_coder_depth": depth, "en_coder_window_size": window, "en_coder_dynamic_pos": True,
        "en_coder_compress_rate": en_compress, "en_coder_cache_size": 0,
    }


_L7, _L9 = [7] * 6, [9, 9, 9, 7, 7, 7]
_E3, _D4 = ([24, 48, 96, 192], [1, 1, 1, 2]), ([384, 192, 96, 48, 24], [3, 2, 2, 1, 1])
_E2, _D3 = ([24, 96, 192], [1, 1, 2]), ([384, 192, 96, 48], [3, 2, 1, 1])


class SQCodec(TokenCodec):
    """SQCodec through ``sq_codec.en_codec.EnCodec`` (mono, non-causal, one FSQ codebook per frame)."""

    family = "sqcodec"
    WEIGHT_FILES = ["weights/*/*.pt"]
    #: model name -> sample rate [Hz] and the package's network_config (sq-codec 0.0.1, configs/<model>.toml).
    ARCHITECTURES = {
        "0k75bps": {"sample_rate": 16000, **_net([6, 5, 4], *_E3, [5, 4, 3, 2], *_D4, _L7, 5, 200, 3)},
        "1k5bps": {"sample_rate": 16000, **_net([6, 5, 3], *_E3, [5, 3, 3, 2], *_D4, _L7, 5, 300, 2)},
        "3kbps": {"sample_rate": 16000, **_net([6, 5, 3], *_E3, [5, 3, 3, 2], *_D4, _L7, 3, 400, 1)},
        "6kbps": {"sample_rate": 16000, **_net([9, 5], *_E2, [5, 3, 3], *_D3, _L7, 3, 300, 1)},
        "12kbps": {"sample_rate": 16000, **_net([6, 4], *_E2, [4, 3, 2], *_D3, _L9, 3, 400, 1)},
        "12kbps_24khz": {"sample_rate": 24000, **_net([6, 6], *_E2, [4, 3, 3], *_D3, _L9, 3, 400, 1)},
        "24kbps_24khz": {"sample_rate": 24000, **_net([6, 3], *_E2, [3, 3, 2], *_D3, _L9, 3, 600, 1)},
    }

    def __init__(self, architecture: str, weights: str | None = None, **kwargs):
        super().__init__(architecture, weights=HUB_ID if weights is None else weights, **kwargs)
        self.model_tag = f"{architecture}.v0"
        self.WEIGHT_FILES = [f"weights/{self.model_tag}/*.pt"]  # a hub download fetches this model only

    @classmethod
    def layout(cls, arch: dict) -> dict:
        hop = math.prod(int(r) for r in arch["compress_rates"]) * int(arch["en_coder_compress_rate"])
        return {"sample_rate": int(arch["sample_rate"]), "channels": 1, "hop_length": hop, "strides": [1],
                "codebook_size": math.prod(int(n) for n in arch["vq_config"]["codebook_dim"]),
                "pad_multiple": hop * int(arch["en_coder_window_size"])}

    def params(self) -> dict:
        return {**super().params(), "model_tag": self.model_tag}

    def _network(self, arch: dict):
        encodec, model_config = _sq_codec()
        return encodec(model_config(**{k: v for k, v in arch.items() if k != "sample_rate"}))

    def build_random(self, arch: dict):
        return self._network(arch)

    def weights_folder(self, folder: Path) -> Path:
        """The folder holding the five module files: ``folder`` itself, or the hub layout below it."""
        for candidate in (folder / "weights" / self.model_tag, folder):
            if all((candidate / f"{name}.pt").is_file() for name in MODULE_FILES):
                return candidate
        missing = [name for name in MODULE_FILES if not (folder / f"{name}.pt").is_file()]
        raise FileNotFoundError(
            f"expected SQCodec {self.architecture} weights: {', '.join(f'{n}.pt' for n in MODULE_FILES)} in "
            f"{folder / 'weights' / self.model_tag} (the {HUB_ID} layout) or in {folder}; found neither "
            f"(missing in {folder}: {', '.join(f'{n}.pt' for n in missing)})"
        )

    def load_folder(self, folder: Path):
        torch = import_torch()
        where = self.weights_folder(folder)
        network = self._network(self.arch)
        for name, module in network.trainable_modules.items():
            module.load_state_dict(torch.load(where / f"{name}.pt", map_location="cpu", weights_only=True))
        return network

    def loaded_arch(self, model) -> dict:
        # the .pt files hold no configuration: the network was built from this variant's and the strict
        # state-dict load checked every tensor's shape against it; its sample rate is this variant's.
        return {"sample_rate": self.native_rate, **model.mc.model_dump(exclude={"hop_length"})}

    def encode_padded(self, model, x, lengths):
        # SQCodec.encode_audio, on input already padded to a multiple of hop x window (model.fill_length)
        feature = model.encoder(x)
        _, indices, _ = model.quantizer(model.en_encoder(feature))  # (batch, frames) FSQ indices
        return [(codes, {}, 0) for codes in split_codes(indices[:, None, :], [n // self.hop_length for n in lengths])]

    def decode_padded(self, model, codes, sides, lengths):
        torch = import_torch()
        device = next(model.parameters()).device
        indices = torch.from_numpy(np.stack([item[0] for item in codes]).astype(np.int64)).to(device)
        # SQCodec.decode_audio(indices=...)
        y = model.decoder(model.en_decoder(model.quantizer.to_features(indices))).squeeze(1)
        return [row[None, :].detach().to("cpu", torch.float32).numpy() for row in y]
