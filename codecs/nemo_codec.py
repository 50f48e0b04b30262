"""NVIDIA NeMo's audio codecs (Langman et al. 2024; Casanova et al. 2024), through ``nemo_toolkit[tts]``.

All five released checkpoints are ``nemo.collections.tts.models.AudioCodecModel``
instances: a convolutional encoder (HiFi-GAN-like on the waveform, or, for the
mel codecs, a residual network per band of a log-mel spectrogram), grouped
finite scalar quantisation (FSQ: ``num_groups`` groups of 4 dimensions, each
group one codebook of ``prod(levels)`` entries) and a HiFi-GAN decoder. One
code frame per ``samples_per_frame`` input samples; every group is needed to
decode (the groups are slices of one embedding, not residual stages), so
``n_codebooks`` is always all of them.

====================================  =======  =====  ========  =========  =============  =========
architecture (hub id)                 rate Hz  hop    frames/s  codebooks  levels (size)  kbit/s
====================================  =======  =====  ========  =========  =============  =========
nvidia/audio-codec-22khz              22050    256    86.13     8          8,5,5,5 (1000)  6.866
nvidia/audio-codec-44khz              44100    512    86.13     8          8,5,5,5 (1000)  6.866
nvidia/mel-codec-22khz                22050    256    86.13     8          8,5,5,5 (1000)  6.866
nvidia/mel-codec-44khz                44100    512    86.13     8          8,5,5,5 (1000)  6.866
nvidia/low-frame-rate-speech-codec-   22050    1024   21.53     8          8,7,6,6 (2016)  1.891
22khz
====================================  =======  =====  ========  =========  =============  =========

Nominal kbit/s = frames/s x codebooks x log2(codebook size) / 1000 (the model
cards round these to 6.9 and 1.89 kbit/s). ``Tokens.bits`` counts each code at
log2(size) bits, the total rounded up once per item.

Padding: ``AudioCodecModel.encode`` pads its input on the right to a whole
number of frames and emits a code frame for the partial last one, which the
decoder needs, so it is sent and counted: the measured bitrate equals the
nominal one over the padded length (``ceil(samples / hop) x hop``) and sits
above it over the unpadded length by at most one frame. The mel codecs' encoder
reports one valid frame fewer than that (NeMo's mel front end counts
``(samples - hop) / hop`` frames), so its decoded audio would stop up to one
frame short of the input; codecbench appends one more frame of zeros to their
padded input, which gives them the same ``ceil(samples / hop)`` frames, every
input sample decoded, and the same exact bitrate as the waveform codecs.

The encoders are not causal (symmetric, reflect-padded convolutions; the mel
codecs' STFT windows reach past their frame), so items batch only with items
of equal padded length (results equal one at a time). Output aligned with the
input: no delay removed. The decoder is deterministic.

``ARCHITECTURES`` holds each checkpoint's model configuration as NeMo's
training recipes (``examples/tts/conf/audio_codec/audio_codec_{22050,44100}.yaml``,
``mel_codec_{22050,44100}.yaml``, ``audio_codec_low_frame_rate_22050.yaml``) and
the model cards give it: sample rate, ``samples_per_frame``, encoder, FSQ and
decoder settings, and the reconstruction-loss settings ``AudioCodecModel``'s
constructor reads. ``random_init: true`` passes it, as an OmegaConf config, to
``AudioCodecModel(cfg=...)``. The datasets, optimiser, logging and the
discriminators are left out: inference never uses them, the constructor builds
a discriminator only when ``cfg.discriminator`` is set, and the low frame-rate
codec's speech-LM discriminator would download ``microsoft/wavlm-base-plus``.

Weights: ``weights`` is a hub id (the repository's ``<name>.nemo``, the file
``AudioCodecModel.from_pretrained(<hub id>)`` fetches; looked up in the Hugging
Face cache first, downloaded only when the hub answers), a ``.nemo`` file, a
folder holding one ``.nemo`` file, or an extracted ``.nemo`` folder
(``model_config.yaml`` + ``model_weights.ckpt``). It is loaded with
``AudioCodecModel.restore_from`` and the checkpoint's own configuration, less
the discriminator, datasets and logging (their weights stay unread). Before any
weights are read, the checkpoint's sample rate, frame size and FSQ layout are
compared with the YAML's architecture (expected vs found); then the encoder,
quantiser and decoder weights are loaded strictly: a missing, unexpected or
misshaped tensor is an error naming it (``AudioCodecModel.load_state_dict``
itself always loads non-strictly).
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import tarfile
from pathlib import Path

from codecbench.codecs.neural import (
    TokenCodec,
    import_torch,
    split_codes,
    stack_codes,
)
from codecbench.errors import ConfigError, missing_extra

#: the files of a .nemo archive (or of an extracted .nemo folder) that codecbench reads.
CONFIG_FILE, WEIGHTS_FILE = "model_config.yaml", "model_weights.ckpt"
#: modules of AudioCodecModel that coding uses; their weights must match the checkpoint exactly.
CODING_MODULES = ("audio_encoder", "vector_quantizer", "audio_decoder", "semantic_codec")
#: encoders that count one code frame fewer than samples / samples_per_frame (see the module docstring).
MEL_ENCODERS = ("MultiBandMelEncoder", "FullBandMelEncoder")
#: configuration keys dropped before building a model for inference (training-only parts).
TRAINING_ONLY = ("discriminator", "train_ds", "validation_ds", "test_ds", "log_config", "optim")

_M = "nemo.collections.tts.modules.audio_codec_modules."
_L = "nemo.collections.tts.losses.audio_codec_loss."


def _nemo_model_class():
    """``AudioCodecModel``, or the error naming the extra that installs it."""
    try:
        from nemo.collections.tts.models import AudioCodecModel
    except ImportError:
        raise missing_extra("nemo_toolkit", "nemo") from None
    return AudioCodecModel


def _losses(resolutions: list, mel_dims: list, mel_l1: float, stft: float) -> dict:
    """The reconstruction-loss settings of a NeMo codec recipe (built by the constructor, unused for coding)."""
    return {
        "mel_loss_l1_scale": mel_l1, "mel_loss_l2_scale": 0.0, "stft_loss_scale": stft,
        "time_domain_loss_scale": 0.0, "commit_loss_scale": 0.0, "loss_resolutions": resolutions,
        "mel_loss_dims": mel_dims, "mel_loss_log_guard": 1.0, "stft_loss_log_guard": 1.0,
        "feature_loss_type": "absolute", "disc_updates_per_period": 1, "disc_update_period": 2,
        "generator_loss": {"_target_": _L + "GeneratorSquaredLoss"},
        "discriminator_loss": {"_target_": _L + "DiscriminatorSquaredLoss"},
    }


def _resolutions(n: int) -> tuple[list, list]:
    """The first ``n`` of the recipes' loss resolutions [n_fft, hop, window] (32 ... 2048) and mel sizes."""
    return [[32 * 2**k, 8 * 2**k, 32 * 2**k] for k in range(n)], [5 * 2**k for k in range(n)]


def _hifigan(rate: int, down: list, enc_channels: int, enc_act: str, dec_channels: int, dec_act: str,
             dec_out: str, levels: list, losses: dict, dilations: list | None = None) -> dict:
    """An AudioCodecModel configuration with the HiFi-GAN encoder and decoder."""
    encoder = {"_target_": _M + "HiFiGANEncoder", "down_sample_rates": down, "encoded_dim": 32,
               "base_channels": enc_channels, "activation": enc_act}
    if dilations is not None:
        encoder["resblock_dilation_sizes"] = dilations
    return {
        "sample_rate": rate, "samples_per_frame": math.prod(down),
        "audio_encoder": encoder,
        "audio_decoder": {"_target_": _M + "HiFiGANDecoder", "up_sample_rates": down[::-1], "input_dim": 32,
                          "base_channels": dec_channels, "activation": dec_act, "output_activation": dec_out},
        "vector_quantizer": {"_target_": _M + "GroupFiniteScalarQuantizer", "num_groups": 8,
                             "num_levels_per_group": levels},
        **losses,
    }


def _mel(rate: int, win: int, up: list, losses: dict) -> dict:
    """An AudioCodecModel configuration with the multi-band mel encoder (8 bands of 10 mels) and HiFi-GAN decoder."""
    hop = math.prod(up)
    return {
        "sample_rate": rate, "samples_per_frame": hop,
        "audio_encoder": {
            "_target_": _M + "MultiBandMelEncoder", "mel_bands": [[10 * k, 10 * k + 10] for k in range(8)],
            "out_channels": 4, "hidden_channels": 128, "filters": 256,
            "mel_processor": {"_target_": _M + "MelSpectrogramProcessor", "mel_dim": 80, "sample_rate": rate,
                              "win_length": win, "hop_length": hop},
        },
        "audio_decoder": {"_target_": _M + "HiFiGANDecoder", "up_sample_rates": up, "input_dim": 32,
                          "base_channels": 1024},
        "vector_quantizer": {"_target_": _M + "GroupFiniteScalarQuantizer", "num_groups": 8,
                             "num_levels_per_group": [8, 5, 5, 5]},
        **losses,
    }


class NemoCodec(TokenCodec):
    """NeMo's ``AudioCodecModel`` (mono, non-causal, 8 FSQ codebooks sent together per frame)."""

    family = "nemo"
    WEIGHT_FILES = ["*.nemo"]
    #: hub id -> AudioCodecModel configuration (the model section of the training recipe, inference parts).
    ARCHITECTURES = {
        "nvidia/audio-codec-22khz": _hifigan(22050, [2, 2, 8, 8], 48, "lrelu", 768, "half_snake", "clamp",
                                             [8, 5, 5, 5], _losses(*_resolutions(6), 10.0, 10.0)),
        "nvidia/audio-codec-44khz": _hifigan(44100, [2, 4, 8, 8], 48, "lrelu", 768, "half_snake", "clamp",
                                             [8, 5, 5, 5], _losses(*_resolutions(7), 10.0, 10.0)),
        "nvidia/mel-codec-22khz": _mel(22050, 1024, [8, 8, 2, 2], _losses(*_resolutions(7), 1.0, 20.0)),
        "nvidia/mel-codec-44khz": _mel(44100, 2048, [8, 8, 4, 2], _losses(*_resolutions(7), 1.0, 20.0)),
        "nvidia/low-frame-rate-speech-codec-22khz": _hifigan(
            22050, [2, 2, 4, 8, 8], 48, "lrelu", 1024, "lrelu", "tanh", [8, 7, 6, 6],
            _losses(*_resolutions(7), 1.0, 20.0), dilations=[1]),
    }

    def __init__(self, architecture: str, weights: str | None = None, **kwargs):
        super().__init__(architecture, weights=weights, **kwargs)
        # a hub download fetches only the checkpoint AudioCodecModel.from_pretrained reads: <repo name>.nemo
        self.WEIGHT_FILES = [f"{Path(self.weights).name}.nemo"]

    # ---- facts ---------------------------------------------------------------------------
    @classmethod
    def layout(cls, arch: dict) -> dict:
        quantizer = arch["vector_quantizer"]
        return {"sample_rate": int(arch["sample_rate"]), "channels": 1,
                "hop_length": int(arch["samples_per_frame"]), "strides": [1] * int(quantizer["num_groups"]),
                "codebook_size": math.prod(int(n) for n in quantizer["num_levels_per_group"])}

    def min_codebooks(self) -> int:
        return self.max_codebooks

    @staticmethod
    def _config_arch(cfg: dict) -> dict:
        """A checkpoint configuration's facts in ARCHITECTURES' terms (the grouped FSQ it must use)."""
        quantizer = cfg.get("vector_quantizer") or {}
        target = str(quantizer.get("_target_", "none"))
        if not target.endswith("GroupFiniteScalarQuantizer"):
            raise ConfigError(f"nemo: expected a GroupFiniteScalarQuantizer vector_quantizer, found {target}")
        return {"sample_rate": cfg.get("sample_rate"), "samples_per_frame": cfg.get("samples_per_frame"),
                "vector_quantizer": {"num_groups": quantizer.get("num_groups"),
                                     "num_levels_per_group": list(quantizer.get("num_levels_per_group") or [])}}

    def loaded_arch(self, model) -> dict:
        quantizer = model.vector_quantizer
        if type(quantizer).__name__ != "GroupFiniteScalarQuantizer":
            raise ConfigError(f"nemo: expected a GroupFiniteScalarQuantizer, found {type(quantizer).__name__}")
        levels = [int(n) for n in quantizer.fsqs[0].num_levels.reshape(-1).tolist()]
        return {"sample_rate": int(model.sample_rate), "samples_per_frame": int(model.samples_per_frame),
                "vector_quantizer": {"num_groups": int(quantizer.num_codebooks), "num_levels_per_group": levels}}

    # ---- building and loading ------------------------------------------------------------
    def build_random(self, arch: dict):
        from omegaconf import OmegaConf

        return _nemo_model_class()(cfg=OmegaConf.create(arch))

    def locate(self) -> tuple[Path, str]:
        """As TokenCodec.locate, and ``weights`` may also name a ``.nemo`` file (source ``file:<path>``)."""
        path = Path(os.path.expanduser(self.weights))
        if not path.is_file():
            return super().locate()
        if path.suffix != ".nemo":
            raise ConfigError(f"nemo weights: expected a .nemo file, a folder or a hub id, found the file {path}")
        return path.resolve(), f"file:{path.resolve()}"

    def load_folder(self, folder: Path):
        """The model from a .nemo file (``locate``), an extracted .nemo folder or a folder holding a .nemo."""
        if folder.is_file():
            return self._restore(folder)
        if (folder / CONFIG_FILE).is_file() and (folder / WEIGHTS_FILE).is_file():
            return self._restore(folder)
        files = sorted(folder.glob("*.nemo"))
        named = folder / f"{Path(self.weights).name}.nemo"
        if named.is_file():
            return self._restore(named)
        if len(files) == 1:
            return self._restore(files[0])
        found = ", ".join(p.name for p in files) if files else "no .nemo file"
        raise FileNotFoundError(
            f"expected in {folder} one .nemo file (for a hub download: {named.name}) or an extracted .nemo "
            f"({CONFIG_FILE} + {WEIGHTS_FILE}); found {found}"
        )

    @staticmethod
    def read_config(path: Path) -> dict:
        """The model configuration stored in a .nemo file (read from the archive, nothing extracted) or folder."""
        from omegaconf import OmegaConf

        if path.is_dir():
            text = (path / CONFIG_FILE).read_text()
        else:
            with tarfile.open(path, "r:*") as archive:
                member = next((m for m in archive.getmembers() if Path(m.name).name == CONFIG_FILE), None)
                if member is None:
                    raise ConfigError(f"nemo: expected {CONFIG_FILE} inside {path}, found {archive.getnames()}")
                text = archive.extractfile(member).read().decode()
        cfg = OmegaConf.to_container(OmegaConf.load(io.StringIO(text)), resolve=True)
        return cfg.get("model", cfg)

    def _restore(self, path: Path):
        """``AudioCodecModel.restore_from(path)`` with the checkpoint's configuration for inference, strictly."""
        from omegaconf import OmegaConf

        cfg = self.read_config(path)
        self._check_layout(self._config_arch(cfg), path)  # before reading any weights
        inference = OmegaConf.create({k: v for k, v in cfg.items() if k not in TRAINING_ONLY})
        model_class = _nemo_model_class()
        from nemo.core.connectors.save_restore_connector import SaveRestoreConnector

        connector = _strict_connector(SaveRestoreConnector)()
        if path.is_dir():
            connector.model_extracted_dir = str(path)
        with _restore_state(model_class):
            return model_class.restore_from(str(path), override_config_path=inference, map_location="cpu",
                                            strict=True, save_restore_connector=connector)

    # ---- coding --------------------------------------------------------------------------
    def encode_padded(self, model, x, lengths):
        torch = import_torch()
        audio, extra = x[:, 0, :], 0
        if type(model.audio_encoder).__name__ in MEL_ENCODERS:  # one frame of zeros: see the module docstring
            extra = self.hop_length
            audio = torch.nn.functional.pad(audio, (0, extra))
        audio_len = torch.tensor([n + extra for n in lengths], dtype=torch.long, device=x.device)
        tokens, tokens_len = model.encode(audio=audio, audio_len=audio_len)  # (batch, codebooks, frames)
        frames = [n // self.hop_length for n in lengths]
        if tokens_len.tolist() != frames or tokens.shape[1] != self.max_codebooks:
            raise ConfigError(
                f"nemo: expected {self.max_codebooks} codebooks x {frames} frames, found {tokens.shape[1]} x "
                f"{tokens_len.tolist()}"
            )
        return [(codes[: self.n_codebooks], {}, 0) for codes in split_codes(tokens, frames)]

    def decode_padded(self, model, codes, sides, lengths):
        torch = import_torch()
        device = next(model.parameters()).device
        tokens = stack_codes(codes, torch, device, self.n_codebooks)
        tokens_len = torch.tensor([len(item[0]) for item in codes], dtype=torch.long, device=device)
        audio, audio_len = model.decode(tokens=tokens, tokens_len=tokens_len)
        return [audio[b, None, : int(audio_len[b])].detach().to("cpu", torch.float32).numpy()
                for b in range(len(codes))]


def _strict_connector(base):
    """A SaveRestoreConnector that loads the coding modules' weights strictly (named errors), the rest not at all."""

    class StrictCodingConnector(base):
        def load_instance_with_state_dict(self, instance, state_dict, strict):
            expected = {k: v for k, v in instance.state_dict().items() if k.split(".")[0] in CODING_MODULES}
            found = {k: v for k, v in state_dict.items() if k.split(".")[0] in CODING_MODULES}
            missing = sorted(set(expected) - set(found))
            unexpected = sorted(set(found) - set(expected))
            shapes = [f"{k}: expected {tuple(expected[k].shape)}, found {tuple(found[k].shape)}"
                      for k in sorted(set(expected) & set(found)) if tuple(expected[k].shape) != tuple(found[k].shape)]
            if missing or unexpected or shapes:
                raise ConfigError(
                    "nemo: the checkpoint's weights do not fit its configuration: "
                    + "; ".join(part for part in (
                        f"missing {len(missing)} tensors (e.g. {', '.join(missing[:3])})" if missing else "",
                        f"{len(unexpected)} unexpected (e.g. {', '.join(unexpected[:3])})" if unexpected else "",
                        f"shape mismatches: {'; '.join(shapes[:3])}" if shapes else "") if part)
                )
            super().load_instance_with_state_dict(instance, found, strict)

    return StrictCodingConnector


@contextlib.contextmanager
def _restore_state(model_class):
    """Undo what ``restore_from`` leaves behind: the class-wide connector and AppState's restore path."""
    from nemo.utils.app_state import AppState

    app_state = AppState()
    connector = model_class.__dict__.get("_save_restore_connector", _MISSING)
    restore_path = app_state.model_restore_path
    try:
        yield
    finally:
        if connector is _MISSING:
            if "_save_restore_connector" in model_class.__dict__:
                delattr(model_class, "_save_restore_connector")
        else:
            model_class._save_restore_connector = connector
        app_state.model_restore_path = restore_path


_MISSING = object()
