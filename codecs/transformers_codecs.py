"""EnCodec, DAC, Mimi, X-Codec and WavTokenizer through transformers (``pip install 'codecbench[neural]'``).

Each class knows the configurations of the released checkpoints
(``ARCHITECTURES``, keyed by hub id), so a YAML declares its rates and
codebooks before any weight is loaded, ``random_init: true`` builds the real
architecture, and loaded weights are checked against it. All five models
return audio aligned with their input (the convolutions' padding is handled
inside the models): no delay is removed (``delay_samples = 0``); the pipeline
measures any residual. Bits are the codes emitted: frames x codebooks x
log2(codebook size), plus EnCodec 48 kHz's scales. See :mod:`codecbench.codecs.neural`
for weights, devices, batching and chunking.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from codecbench.codecs.neural import TokenCodec, import_torch, split_codes, stack_codes
from codecbench.errors import CodecbenchError, ConfigError, missing_extra

#: bits per EnCodec scale: one float32 per chunk, as EnCodec's own .ecdc format stores it.
ENCODEC_SCALE_BITS = 32


def _transformers():
    try:
        import transformers
    except ImportError:
        raise missing_extra("transformers", "neural") from None
    return transformers


def _config_dict(model) -> dict:
    return model.config.to_dict()


def randomize_codebooks(model) -> int:
    """Draw all-zero Euclidean codebooks from N(0, 1); returns how many were drawn.

    transformers initialises EnCodec's, Mimi's and X-Codec's codebooks to zeros
    (training fills them by k-means and moving averages), so at random weights every
    code would be 0. For ``random_init`` they are drawn from torch's (seeded)
    generator instead, so codes vary as a trained model's do. DAC's codebooks are
    ordinary embeddings, already random.
    """
    torch = import_torch()
    drawn = 0
    with torch.no_grad():
        for module in model.modules():
            table = getattr(module, "embed_sum", None)  # Mimi: embed = embed_sum / cluster_usage (ones)
            if table is None:
                table = getattr(module, "embed", None)  # EnCodec, X-Codec
            if isinstance(table, torch.Tensor) and table.dim() == 2 and not table.any():
                table.normal_()
                drawn += 1
    return drawn


class TransformersCodec(TokenCodec):
    """A token codec whose model is transformers' ``<prefix>Model`` built from ``<prefix>Config``."""

    #: transformers class-name prefix, e.g. "Encodec" for EncodecModel / EncodecConfig.
    prefix: str = ""

    def _model_class(self):
        return getattr(_transformers(), f"{self.prefix}Model")

    def _new_model(self, arch: dict):
        """The model at random weights from the architecture's config (the base class seeds torch)."""
        return self._model_class()(getattr(_transformers(), f"{self.prefix}Config")(**arch))

    def load_folder(self, folder: Path):
        return self._model_class().from_pretrained(str(folder), local_files_only=True)

    def loaded_arch(self, model) -> dict:
        return _config_dict(model)

    def decode_padded(self, model, codes, sides, lengths):
        """``model.decode`` of the stacked codes: one ``(channels, samples)`` float32 array per item."""
        torch = import_torch()
        tensor = stack_codes(codes, torch, next(model.parameters()).device, self.n_codebooks)
        y = model.decode(tensor, return_dict=True).audio_values  # (batch, channels, samples)
        y = y.detach().to("cpu", torch.float32).numpy()
        return [y[b] for b in range(len(codes))]


def codebooks_for_bandwidth(codec: TokenCodec, architecture: str, bandwidth: float) -> int:
    """Codebooks an RVQ model uses at ``bandwidth`` kbit/s: bandwidth / (frame rate x log2 codebook size).

    ConfigError unless ``bandwidth`` is one of the architecture's ``target_bandwidths``.
    """
    arch = codec.ARCHITECTURES.get(architecture, {})
    bandwidths = [float(b) for b in arch.get("target_bandwidths", [])]
    if float(bandwidth) not in bandwidths:
        raise ConfigError(
            f"{codec.family} {architecture}: bandwidth expected one of {bandwidths} kbit/s, found {bandwidth}"
        )
    layout = codec.layout(arch)
    frame_rate = layout["sample_rate"] / layout["hop_length"]
    return int(float(bandwidth) * 1000 // (frame_rate * math.log2(layout["codebook_size"])))


class EncodecCodec(TransformersCodec):
    """EnCodec (Défossez et al. 2022) through ``transformers.EncodecModel``.

    24 kHz: mono, causal, 75 frames/s, codebooks of 1024 (10 bits), bandwidth
    1.5/3/6/12/24 kbit/s = 2/4/8/16/32 codebooks (6 kbit/s = 75 x 8 x 10).
    48 kHz: stereo coded jointly (one code stream), non-causal, 150 frames/s,
    3/6/12/24 kbit/s = 2/4/8/16 codebooks; the model codes 1 s chunks that
    overlap by 1 % (10 ms) and normalises each chunk by its RMS: each chunk's
    scale is sent as a float32 (``ENCODEC_SCALE_BITS`` = 32 side bits per chunk,
    about 32 bit/s on top of the codes).

    ``random_init`` fits the codebooks to the random encoder's output on white
    noise (see :meth:`build_random`); transformers leaves them at zero.
    """

    prefix = "Encodec"
    family = "encodec"
    ARCHITECTURES = {
        "facebook/encodec_24khz": {
            "sampling_rate": 24000, "audio_channels": 1, "target_bandwidths": [1.5, 3.0, 6.0, 12.0, 24.0],
            "upsampling_ratios": [8, 5, 4, 2], "codebook_size": 1024, "normalize": False,
            "chunk_length_s": None, "overlap": None, "use_causal_conv": True, "norm_type": "weight_norm",
        },
        # MusicGen's tokenizer (AudioCraft's EnCodec 32 kHz, in transformers format on the hub)
        "facebook/encodec_32khz": {
            "sampling_rate": 32000, "audio_channels": 1, "target_bandwidths": [2.2],
            "upsampling_ratios": [8, 5, 4, 4], "codebook_size": 2048, "normalize": False,
            "chunk_length_s": None, "overlap": None, "use_causal_conv": False, "norm_type": "weight_norm",
            "num_filters": 64, "use_conv_shortcut": False,
        },
        "facebook/encodec_48khz": {
            "sampling_rate": 48000, "audio_channels": 2, "target_bandwidths": [3.0, 6.0, 12.0, 24.0],
            "upsampling_ratios": [8, 5, 4, 2], "codebook_size": 1024, "normalize": True,
            "chunk_length_s": 1.0, "overlap": 0.01, "use_causal_conv": False, "norm_type": "time_group_norm",
        },
    }

    def __init__(self, architecture: str, bandwidth: float, **kwargs):
        self.bandwidth = float(bandwidth)
        super().__init__(architecture, n_codebooks=codebooks_for_bandwidth(self, architecture, bandwidth), **kwargs)
        self.causal = bool(self.arch.get("use_causal_conv", True))
        self.lookahead_ms = 0.0 if self.causal else None

    @classmethod
    def layout(cls, arch: dict) -> dict:
        rate, hop = int(arch["sampling_rate"]), int(np.prod(arch["upsampling_ratios"]))
        bits = math.ceil(math.log2(arch["codebook_size"]))
        quantizers = int(1000 * max(arch["target_bandwidths"]) // (math.ceil(rate / hop) * bits))
        return {"sample_rate": rate, "channels": int(arch["audio_channels"]), "hop_length": hop,
                "strides": [1] * quantizers, "codebook_size": int(arch["codebook_size"])}

    def params(self) -> dict:
        return {**super().params(), "bandwidth": self.bandwidth}

    def build_random(self, arch: dict):
        torch = import_torch()
        model = self._new_model(arch).eval()
        # A randomly initialised EnCodec encoder varies little over time (std ~2 % of its mean), so
        # N(0, 1) codebooks would all pick one code. Like EnCodec's own k-means init, fit the
        # codebooks to the encoder's output, here on 1 s of (seeded) white noise: level 0 drawn
        # around its mean with its spread, each next level around 0 with half the spread.
        rms = 1.0 if arch.get("normalize") else 0.1
        probe = torch.randn(1, int(arch["audio_channels"]), int(arch["sampling_rate"])) * rms
        with torch.no_grad():
            embeddings = model.encoder(probe)
            mean, spread = embeddings.mean(dim=(0, 2)), embeddings.std(dim=(0, 2))
            for level, layer in enumerate(model.quantizer.layers):
                table = layer.codebook.embed
                table.copy_(torch.randn(table.shape) * spread * 0.5**level + (mean if level == 0 else 0))
        return model

    def _chunk_spans(self, model, length: int) -> list[int]:
        """Code frames of each model chunk of a ``length``-sample input (one chunk when the model does not chunk)."""
        chunk, stride = model.config.chunk_length, model.config.chunk_stride
        if chunk is None:
            return [-(-length // self.hop_length)]
        return [-(-min(chunk, length - offset) // self.hop_length) for offset in range(0, length, stride)]

    def encode_padded(self, model, x, lengths):
        out = model.encode(x, bandwidth=self.bandwidth, return_dict=True)
        codes = out.audio_codes.detach().to("cpu").numpy().astype(np.int32)  # (chunks, batch, codebooks, frames)
        results = []
        for b, length in enumerate(lengths):
            spans = self._chunk_spans(model, length)
            item = [np.concatenate([codes[c, b, k, :n] for c, n in enumerate(spans)]) for k in range(self.n_codebooks)]
            scales = out.audio_scales
            if scales[0] is None:
                results.append((item, {"chunk_frames": spans}, 0))
            else:
                values = [float(scales[c][b].reshape(-1)[0]) for c in range(len(spans))]
                results.append((item, {"chunk_frames": spans, "scales": values}, ENCODEC_SCALE_BITS * len(spans)))
        return results

    def decode_padded(self, model, codes, sides, lengths):
        torch = import_torch()
        param = next(model.parameters())
        n_chunks = max(len(side["chunk_frames"]) for side in sides)
        per_chunk = max(max(side["chunk_frames"]) for side in sides)
        array = np.zeros((n_chunks, len(codes), self.n_codebooks, per_chunk), dtype=np.int64)
        scales = None if "scales" not in sides[0] else np.ones((n_chunks, len(codes), 1), dtype=np.float32)
        for b, (item, side) in enumerate(zip(codes, sides)):
            offset = 0
            for c, n in enumerate(side["chunk_frames"]):
                for k in range(self.n_codebooks):
                    array[c, b, k, :n] = item[k][offset : offset + n]
                if scales is not None:
                    scales[c, b, 0] = side["scales"][c]
                offset += n
        # the last chunk of the longest item may be shorter: the model trims it (last_frame_pad_length)
        last_pad = per_chunk - max(side["chunk_frames"][-1] for side in sides if len(side["chunk_frames"]) == n_chunks)
        audio_scales = [None] * n_chunks if scales is None else [
            torch.from_numpy(scales[c]).to(device=param.device, dtype=param.dtype) for c in range(n_chunks)
        ]
        y = model.decode(torch.from_numpy(array).to(param.device), audio_scales,
                         last_frame_pad_length=last_pad, return_dict=True).audio_values
        y = y.detach().to("cpu", torch.float32).numpy()
        return [y[b] for b in range(len(codes))]


class DacCodec(TransformersCodec):
    """DAC, the Descript Audio Codec (Kumar et al. 2023), through ``transformers.DacModel``.

    Mono, non-causal, codebooks of 1024 (10 bits). 16 kHz: 50 frames/s, 12
    codebooks (6 kbit/s); 24 kHz: 75 frames/s, 32 codebooks (24 kbit/s);
    44.1 kHz: 86.13 frames/s (hop 512), 9 codebooks (7.75 kbit/s).
    ``n_codebooks`` sends the first N (quantizer dropout trained them to work alone).
    """

    prefix = "Dac"
    family = "dac"
    _common = {"encoder_hidden_size": 64, "decoder_hidden_size": 1536, "codebook_size": 1024, "codebook_dim": 8}
    ARCHITECTURES = {
        "descript/dac_16khz": {**_common, "sampling_rate": 16000, "downsampling_ratios": [2, 4, 5, 8],
                               "n_codebooks": 12},
        "descript/dac_24khz": {**_common, "sampling_rate": 24000, "downsampling_ratios": [2, 4, 5, 8],
                               "n_codebooks": 32},
        "descript/dac_44khz": {**_common, "sampling_rate": 44100, "downsampling_ratios": [2, 4, 8, 8],
                               "n_codebooks": 9},
    }

    @classmethod
    def layout(cls, arch: dict) -> dict:
        return {"sample_rate": int(arch["sampling_rate"]), "channels": 1,
                "hop_length": int(np.prod(arch["downsampling_ratios"])),
                "strides": [1] * int(arch["n_codebooks"]), "codebook_size": int(arch["codebook_size"])}

    def build_random(self, arch: dict):
        return self._new_model(arch)

    def encode_padded(self, model, x, lengths):
        codes = model.encode(x, n_quantizers=self.n_codebooks, return_dict=True).audio_codes[:, : self.n_codebooks]
        return [(item, {}, 0) for item in split_codes(codes, [n // self.hop_length for n in lengths])]

    def decode_padded(self, model, codes, sides, lengths):
        torch = import_torch()
        tensor = stack_codes(codes, torch, next(model.parameters()).device, self.n_codebooks)
        y = model.decode(audio_codes=tensor, return_dict=True).audio_values  # (batch, samples)
        y = y.detach().to("cpu", torch.float32).numpy()
        return [y[b][None, :] for b in range(len(codes))]


class MimiCodec(TransformersCodec):
    """Mimi (Kyutai, Moshi 2024) through ``transformers.MimiModel``.

    24 kHz mono, causal, 12.5 frames/s (hop 1920 samples, 80 ms), up to 32
    codebooks of 2048 (11 bits): the first is the semantic (distilled)
    codebook, the rest acoustic RVQ. 8 codebooks = 1.1 kbit/s, 32 = 4.4 kbit/s.
    """

    prefix = "Mimi"
    family = "mimi"
    causal = True
    ARCHITECTURES = {
        "kyutai/mimi": {
            "sampling_rate": 24000, "audio_channels": 1, "upsampling_ratios": [8, 6, 5, 4], "codebook_size": 2048,
            "num_quantizers": 32, "num_semantic_quantizers": 1, "frame_rate": 12.5,
        },
    }

    @classmethod
    def layout(cls, arch: dict) -> dict:
        # the encoder's strided convolutions, then a stride-2 downsampling layer
        hop = int(np.prod(arch.get("upsampling_ratios") or [8, 6, 5, 4])) * 2
        rate = int(arch["sampling_rate"])
        if arch.get("frame_rate") not in (None, rate / hop):
            raise ConfigError(f"mimi: expected frame_rate {rate / hop} (= {rate} / {hop}), found {arch['frame_rate']}")
        return {"sample_rate": rate, "channels": int(arch.get("audio_channels", 1)), "hop_length": hop,
                "strides": [1] * int(arch["num_quantizers"]), "codebook_size": int(arch["codebook_size"])}

    def min_codebooks(self) -> int:
        return int(self.arch.get("num_semantic_quantizers", 1))

    def build_random(self, arch: dict):
        model = self._new_model(arch)
        randomize_codebooks(model)
        return model

    def encode_padded(self, model, x, lengths):
        codes = model.encode(x, num_quantizers=self.n_codebooks, return_dict=True).audio_codes
        return [(item, {}, 0) for item in split_codes(codes, [n // self.hop_length for n in lengths])]


class XcodecCodec(TransformersCodec):
    """X-Codec (Ye et al. 2025) through ``transformers.XcodecModel``.

    16 kHz mono, non-causal, 50 frames/s, codebooks of 1024 (10 bits);
    bandwidth 0.5/1/1.5/2/4 kbit/s = 1/2/3/4/8 codebooks. The encoder joins a
    DAC-style acoustic encoder with a semantic model (HuBERT or WavLM base) whose
    weights are part of the checkpoint.
    """

    prefix = "Xcodec"
    family = "xcodec"
    _hubert = {"model_type": "hubert"}
    _wavlm = {"model_type": "wavlm"}
    _base = {"sample_rate": 16000, "target_bandwidths": [0.5, 1.0, 1.5, 2.0, 4.0], "codebook_size": 1024,
             "acoustic_model_config": {"model_type": "dac", "downsampling_ratios": [8, 5, 4, 2],
                                       "upsampling_ratios": [8, 5, 4, 2], "encoder_hidden_size": 64,
                                       "decoder_hidden_size": 1024, "hidden_size": 256}}
    ARCHITECTURES = {
        "hf-audio/xcodec-hubert-librispeech": {**_base, "semantic_model_config": _hubert},
        "hf-audio/xcodec-hubert-general": {**_base, "semantic_model_config": _hubert},
        "hf-audio/xcodec-hubert-general-balanced": {**_base, "semantic_model_config": _hubert},
        "hf-audio/xcodec-wavlm-mls": {**_base, "semantic_model_config": _wavlm},
        "hf-audio/xcodec-wavlm-more-data": {**_base, "semantic_model_config": _wavlm},
    }

    def __init__(self, architecture: str, bandwidth: float, **kwargs):
        self.bandwidth = float(bandwidth)
        super().__init__(architecture, n_codebooks=codebooks_for_bandwidth(self, architecture, bandwidth), **kwargs)

    @classmethod
    def layout(cls, arch: dict) -> dict:
        rate, hop = int(arch["sample_rate"]), int(np.prod(arch["acoustic_model_config"]["downsampling_ratios"]))
        bits = math.ceil(math.log2(arch["codebook_size"]))
        quantizers = int(1000 * max(arch["target_bandwidths"]) // (math.ceil(rate / hop) * bits))
        return {"sample_rate": rate, "channels": 1, "hop_length": hop, "strides": [1] * quantizers,
                "codebook_size": int(arch["codebook_size"])}

    def params(self) -> dict:
        return {**super().params(), "bandwidth": self.bandwidth}

    def build_random(self, arch: dict):
        model = self._new_model(arch)
        randomize_codebooks(model)
        return model

    def _bandwidth_arg(self, model):
        """The bandwidth value as the model's config spells it (1 or 1.0)."""
        return next(b for b in model.config.target_bandwidths if float(b) == self.bandwidth)

    def encode_padded(self, model, x, lengths):
        codes = model.encode(x, bandwidth=self._bandwidth_arg(model), return_dict=True).audio_codes
        return [(item, {}, 0) for item in split_codes(codes, [n // self.hop_length for n in lengths])]


class WavTokenizerCodec(TransformersCodec):
    """WavTokenizer (Ji et al., ICLR 2025) through ``transformers.WavTokenizerModel``.

    24 kHz mono, non-causal, one VQ codebook of 4096 codes (12 bits). Two
    temporal configurations: hop 600 samples = 40 frames/s = 0.48 kbit/s, and
    hop 320 samples = 75 frames/s = 0.9 kbit/s; the released small, medium and
    large checkpoints share the rest of the inference architecture (EnCodec's
    SEANet encoder with 32 filters and a 512-dimensional latent; a Vocos
    decoder of 12 ConvNeXt blocks, 768 wide, with a self-attention layer over
    time and an inverse-STFT head, n_fft = 4 x hop). The decoder's attention
    and GroupNorm span the whole sequence, so only inputs of equal padded
    length are batched together. Code assignment is a nearest-neighbour search:
    keep ``dtype: float32`` (the transformers documentation measures about
    two thirds of the codes flipping in bfloat16).

    ``random_init`` fits the codebook to the random encoder's output on white
    noise, as :class:`EncodecCodec` does (transformers leaves it at zero).
    """

    prefix = "WavTokenizer"
    family = "wavtokenizer"
    _common = {
        "sampling_rate": 24000, "audio_channels": 1, "num_filters": 32, "num_lstm_layers": 2, "hidden_size": 512,
        "codebook_size": 4096, "codebook_dim": 512, "decoder_hidden_size": 768, "decoder_intermediate_size": 2304,
        "decoder_num_layers": 12, "adanorm_num_embeddings": 4,
    }
    _40 = {**_common, "upsampling_ratios": [6, 5, 5, 4]}  # hop 600: 40 frames/s
    _75 = {**_common, "upsampling_ratios": [8, 5, 4, 2]}  # hop 320: 75 frames/s
    #: the checkpoints converted to the transformers format (transformers' WavTokenizer documentation)
    ARCHITECTURES = {
        "swiss-ai/wavtokenizer-small-speech-40token": _40,
        "swiss-ai/wavtokenizer-small-speech-75token": _75,
        "swiss-ai/wavtokenizer-medium-speech-75token": _75,
        "swiss-ai/wavtokenizer-medium-speech-75token-v2": _75,
        "swiss-ai/wavtokenizer-medium-music-audio-75token": _75,
        "swiss-ai/wavtokenizer-medium-music-audio-75token-v2": _75,
        "swiss-ai/wavtokenizer-large-unify-40token": _40,
        "swiss-ai/wavtokenizer-large-speech-75token-v2": _75,
    }

    @classmethod
    def layout(cls, arch: dict) -> dict:
        return {"sample_rate": int(arch["sampling_rate"]), "channels": int(arch.get("audio_channels", 1)),
                "hop_length": int(np.prod(arch["upsampling_ratios"])), "strides": [1],
                "codebook_size": int(arch["codebook_size"])}

    @staticmethod
    def _model_class():
        """``transformers.WavTokenizerModel``, or an error naming the transformers release needed."""
        tf = _transformers()
        if not hasattr(tf, "WavTokenizerModel"):
            raise CodecbenchError(
                f"wavtokenizer: expected transformers with WavTokenizerModel (5.24 has it), found transformers "
                f"{tf.__version__} without it; upgrade it with: pip install -U transformers"
            )
        return tf.WavTokenizerModel

    def build_random(self, arch: dict):
        torch = import_torch()
        model = self._new_model(arch).eval()
        # As for EnCodec (same SEANet encoder): N(0, 1) codes would all pick one entry, so the codebook is
        # drawn around the encoder's output on 1 s of (seeded) white noise, with its spread.
        probe = torch.randn(1, int(arch.get("audio_channels", 1)), int(arch["sampling_rate"])) * 0.1
        with torch.no_grad():
            embeddings = model.encoder_model.encoder(probe)
            mean, spread = embeddings.mean(dim=(0, 2)), embeddings.std(dim=(0, 2))
            table = model.encoder_model.quantizer.codebook.embed
            table.copy_(torch.randn(table.shape) * spread + mean)
        return model

    def encode_padded(self, model, x, lengths):
        codes = model.encode(x, return_dict=True).audio_codes  # (batch, 1, ceil(samples / hop))
        return [(item, {}, 0) for item in split_codes(codes, [n // self.hop_length for n in lengths])]
