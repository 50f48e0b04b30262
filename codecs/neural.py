"""The token-codec base: neural codecs that turn audio into integer codes and back.

A :class:`TokenCodec` wraps one PyTorch model (EnCodec, DAC, Mimi, X-Codec,
SNAC...) behind the codec contract. What it adds to :class:`Codec`:

- **Facts from the architecture.** Each YAML names an ``architecture`` (the hub
  id whose configuration the adapter knows), from which the sample rate, frame
  rate, number of codebooks, codebook size and the nominal bitrate follow
  (EnCodec 6 kbit/s at 24 kHz = 75 frames/s x 8 codebooks x 10 bits). Loaded
  weights must match these facts, or loading stops with expected vs found.
- **Weights** from a hub id or a local folder (``weights``), or, with
  ``random_init: true``, the real architecture at random weights (seeded),
  for tests and plumbing checks. Random weights are marked everywhere: the
  family gets a ``-random`` suffix and ``facts()['weights_source']`` says so,
  so their results cannot pass for a trained codec's. ``weights_hash()`` is a
  sha256 over the state dict (names, dtypes, shapes, bytes), part of the
  fingerprint (cache key) and of run.json.
- **Offline first.** The hub id is looked up in the local Hugging Face cache
  first; the hub is contacted only when the cache misses, ``HF_HUB_OFFLINE`` is
  not set and its host answers within ``hub_timeout`` seconds. Otherwise a
  :class:`WeightsUnavailable` error says how to get the weights (the
  ``hf download`` command, where the cache lives, ``codec.<id>.weights=DIR``).
- **Device and dtype** given explicitly (``cpu``, ``cuda``, ``cuda:1``,
  ``mps`` or ``auto``; ``float32``, ``float16``, ``bfloat16``); the model runs
  in eval mode under ``torch.inference_mode``.
- **Batching**: :meth:`encode_batch` / :meth:`decode_batch` code several items
  at once, ``batch_size`` pieces per forward pass. A causal model (EnCodec
  24 kHz, Mimi: right padding cannot reach earlier frames) batches items of
  different lengths: each is zero-padded on the right to the longest, keeps
  the code frames its own (padded) length gives, and its decoded audio is cut
  to its length; results equal one-at-a-time coding up to floating-point ties
  (a batched convolution may round differently and flip a near-tie code, well
  under 1 % of codes; decoded audio within 1e-4). A non-causal model (DAC,
  SNAC, X-Codec, EnCodec 48 kHz) would let the padding change an item's last
  frames (or, through time-wise normalisation and attention, all of them), so
  it batches only pieces of equal padded length (the pieces of a long input,
  items of equal length): its results equal one at a time.
- **Chunked inference** for long audio: an input longer than ``chunk_seconds``
  is cut into pieces of ``chunk_seconds`` that overlap by ``overlap_seconds``
  (both rounded to the nearest whole frame, ``pad_multiple`` samples; recorded as
  ``chunk_samples`` and ``overlap_samples``). Each piece is coded on its own, and all the
  codes of all pieces are sent: the overlap costs ``overlap / (chunk -
  overlap)`` extra bits, and ``Encoded.bits`` counts them. On decoding, the
  pieces are joined with a linear cross-fade over each overlap (weight of the
  next piece rising from 0 to 1). Inputs up to ``chunk_seconds`` are coded
  whole, bit-identical to ``chunk_seconds: null`` (never chunk).

Every ``Encoded`` holds a :class:`Tokens` payload (one array per codebook,
shape ``(1, frames_k)``: a joint stereo stream is one stream) with
``bits = Tokens.bits`` (codes x log2(codebook size), plus side bits such as
EnCodec 48 kHz's scales). torch and the model packages are imported lazily.
"""

from __future__ import annotations

import hashlib
import math
import os
import socket
from abc import abstractmethod
from pathlib import Path
from urllib.parse import urlparse

import numpy as np

from codecbench.audio import Audio
from codecbench.codecs.base import Codec, Encoded, Tokens
from codecbench.errors import CodecbenchError, ConfigError, missing_extra

DTYPES = ("float32", "float16", "bfloat16")
DEVICES = ("cpu", "cuda", "mps", "auto")


class WeightsUnavailable(CodecbenchError):
    """A codec's weights are neither a local folder nor in the Hugging Face cache, and the hub is unreachable."""


def import_torch():
    """torch, or the error naming the pip extra that installs it."""
    try:
        import torch
    except ImportError:
        raise missing_extra("torch", "neural") from None
    return torch


def resolve_device(device: str) -> str:
    """The torch device string for ``device`` ("cpu", "cuda", "cuda:N", "mps", "auto").

    "auto" picks cuda, then mps, then cpu. A device that is not available here
    is a ConfigError (never a silent fallback to another device).
    """
    torch = import_torch()
    kind = str(device).split(":")[0]
    if kind not in DEVICES:
        raise ConfigError(f"device: expected one of {', '.join(DEVICES)} (or cuda:N), found {device!r}")
    if kind == "auto":
        if torch.cuda.is_available():
            return "cuda"
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return "mps"
        return "cpu"
    if kind == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device: {device!r} was asked for, but torch {torch.__version__} sees no CUDA device here")
    if kind == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ConfigError(f"device: 'mps' was asked for, but torch {torch.__version__} has no MPS device here")
    return str(device)


def resolve_dtype(dtype: str):
    """The torch dtype named ``dtype`` (float32 | float16 | bfloat16)."""
    if dtype not in DTYPES:
        raise ConfigError(f"dtype: expected one of {', '.join(DTYPES)}, found {dtype!r}")
    return getattr(import_torch(), dtype)


def state_dict_sha256(module) -> str:
    """sha256 over a module's state dict: each tensor's name, dtype, shape and bytes, in name order."""
    torch = import_torch()
    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        flat = tensor.detach().to("cpu").contiguous().reshape(-1)
        digest.update(f"{name}|{flat.dtype}|{tuple(tensor.shape)}\n".encode())
        digest.update(flat.view(torch.uint8).numpy().tobytes() if flat.numel() else b"")
    return digest.hexdigest()


def deep_merge(base: dict, overrides: dict | None) -> dict:
    """``base`` with ``overrides`` applied; nested mappings merge key by key."""
    merged = dict(base)
    for key, value in (overrides or {}).items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _plain(value):
    """OmegaConf containers (from Hydra) to plain dicts and lists."""
    try:
        from omegaconf import DictConfig, ListConfig, OmegaConf
    except ImportError:  # pragma: no cover - hydra is a core dependency
        return value
    if isinstance(value, (DictConfig, ListConfig)):
        return OmegaConf.to_container(value, resolve=True)
    return value


def _hub_unreachable(timeout: float) -> str | None:
    """Why the Hugging Face hub cannot be used now (offline flag, no connection), or None when it answers."""
    from huggingface_hub import constants

    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on") or constants.HF_HUB_OFFLINE:
        return "HF_HUB_OFFLINE is set"
    url = urlparse(constants.ENDPOINT)
    host, port = url.hostname or "huggingface.co", url.port or (443 if url.scheme == "https" else 80)
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as exc:
        return f"cannot connect to {constants.ENDPOINT} within {timeout:g} s: {exc}"
    return None


def locate_weights(
    weights: str, revision: str | None, family: str, hub_timeout: float = 5.0, files: list[str] | None = None
) -> tuple[Path, str]:
    """The local folder holding ``weights`` (a folder, or a hub id: cache first, then the hub), and its source.

    The source is ``folder:<path>`` or ``hub:<id>@<revision>``. A path that
    looks local (absolute, ``./``, ``~``) but is not a folder is a ConfigError;
    a hub id that is not cached and cannot be downloaded is a
    :class:`WeightsUnavailable` that says how to get it. ``files``: the file
    patterns a download fetches (None = the whole repository).
    """
    path = Path(os.path.expanduser(str(weights)))
    if path.is_dir():
        return path.resolve(), f"folder:{path.resolve()}"
    if str(weights).startswith(("/", ".", "~")) or str(weights).count("/") > 1 or path.exists():
        raise ConfigError(
            f"{family} weights: expected a folder (or a hub id such as owner/name), found no folder at {path}"
        )
    try:
        from huggingface_hub import constants, snapshot_download
    except ImportError:
        raise missing_extra("huggingface_hub", "neural") from None
    try:
        folder = snapshot_download(repo_id=str(weights), revision=revision, local_files_only=True)
        return Path(folder), f"hub:{weights}@{Path(folder).name}"
    except Exception as cached_miss:  # not in the cache (or a partial entry): try the hub when it can answer
        reason = _hub_unreachable(hub_timeout)
        if reason is None:
            try:
                folder = snapshot_download(repo_id=str(weights), revision=revision, allow_patterns=files)
                return Path(folder), f"hub:{weights}@{Path(folder).name}"
            except Exception as exc:
                reason = f"download failed: {type(exc).__name__}: {exc}"
        message = weights_help(family, str(weights), revision, constants.HF_HUB_CACHE, reason)
        raise WeightsUnavailable(message) from cached_miss


def weights_help(family: str, weights: str, revision: str | None, cache: str, reason: str) -> str:
    """The message telling a user without weights how to get them or point to a local copy."""
    rev = f" --revision {revision}" if revision else ""
    cache_entry = "models--" + weights.replace("/", "--")
    return (
        f"{family}: weights {weights!r} are not on this machine: not a local folder, not in the Hugging Face "
        f"cache ({cache}), and not downloadable now ({reason}).\n"
        f"To get them, on a machine with network access run (pip install huggingface_hub):\n"
        f"    hf download {weights}{rev}\n"
        f"  then copy its cache entry ~/.cache/huggingface/hub/{cache_entry} into {cache} here; or\n"
        f"    hf download {weights}{rev} --local-dir DIR\n"
        f"  then copy DIR here and point the codec at it: codec.<codec id>.weights=DIR "
        f"(for example: codecbench run codec=<codec id> codec.<codec id>.weights=DIR).\n"
        f"To check the plumbing without trained weights: codec.<codec id>.random_init=true "
        f"(results are marked as random weights)."
    )


def pieces(frames: int, chunk: int | None, overlap: int) -> list[tuple[int, int]]:
    """(start, length) of the pieces a ``frames``-long input is coded in (see the module docstring).

    ``chunk`` and ``overlap`` are in samples; ``chunk=None`` or an input no
    longer than ``chunk`` gives one piece.
    """
    if chunk is None or frames <= chunk:
        return [(0, frames)]
    out, start, stride = [], 0, chunk - overlap
    while True:
        out.append((start, min(chunk, frames - start)))
        if start + chunk >= frames:
            return out
        start += stride


def crossfade_join(parts: list[np.ndarray], spans: list[tuple[int, int]], frames: int) -> np.ndarray:
    """Join decoded pieces ``(channels, length)`` at ``spans`` (start, length) into ``frames`` samples.

    Where piece j+1 overlaps piece j, the output is ``(1 - w) * piece_j + w * piece_j+1``
    with ``w`` rising linearly from 0 to 1 over the overlap.
    """
    out = np.zeros((parts[0].shape[0], frames), dtype=np.float32)
    end = 0
    for part, (start, length) in zip(parts, spans):
        part = part[:, :length]
        overlap = max(0, end - start)
        if overlap:
            w = ((np.arange(overlap) + 0.5) / overlap).astype(np.float32)
            out[:, start:end] = (1 - w) * out[:, start:end] + w * part[:, :overlap]
        out[:, start + overlap : start + length] = part[:, overlap:]
        end = start + length
    return out


class TokenCodec(Codec):
    """Base of neural token codecs. Subclasses fill in the family specifics (see the abstract methods).

    Parameters (all from the YAML; units in brackets):

    - ``architecture``: the hub id whose configuration this variant declares
      (a key of the subclass's ``ARCHITECTURES``).
    - ``weights``: hub id or local folder to load (default: ``architecture``).
    - ``revision``: hub revision (branch, tag or commit); None = the default branch.
    - ``n_codebooks``: codebooks to send (1 .. the architecture's maximum; None = all).
    - ``device``, ``dtype``: see the module docstring.
    - ``random_init``, ``seed``: build the architecture with random weights
      drawn from torch's generator seeded with ``seed`` (global RNG state is restored).
    - ``config``: overrides applied to the architecture's configuration
      (layer widths, for small test models; rates and codebook layout must stay).
    - ``chunk_seconds`` [s], ``overlap_seconds`` [s]: chunked inference (None = never chunk).
    - ``batch_size``: pieces per forward pass (speed and memory only; not in the fingerprint). Memory
      grows with batch_size x chunk_seconds: lower either for long inputs on small machines.
    - ``hub_timeout`` [s]: how long to wait for the hub's host before giving up.
    """

    version = "1"
    #: architecture id -> configuration keyword arguments (the real checkpoints' configurations).
    ARCHITECTURES: dict[str, dict] = {}
    #: file patterns a hub download fetches (the checkpoint and its configuration, not the whole repository).
    WEIGHT_FILES: list[str] = ["*.json", "model*.safetensors", "pytorch_model*.bin"]
    #: True when right zero-padding cannot change earlier codes (causal encoder).
    causal: bool = False

    def __init__(
        self,
        architecture: str,
        weights: str | None = None,
        revision: str | None = None,
        n_codebooks: int | None = None,
        device: str = "cpu",
        dtype: str = "float32",
        random_init: bool = False,
        seed: int = 0,
        config: dict | None = None,
        chunk_seconds: float | None = 30.0,
        overlap_seconds: float = 0.5,
        batch_size: int = 4,
        hub_timeout: float = 5.0,
    ):
        if architecture not in self.ARCHITECTURES:
            raise ConfigError(
                f"{self.family}: unknown architecture {architecture!r}; expected one of {', '.join(self.ARCHITECTURES)}"
            )
        if dtype not in DTYPES:
            raise ConfigError(f"{self.family}: dtype expected one of {', '.join(DTYPES)}, found {dtype!r}")
        if str(device).split(":")[0] not in DEVICES:
            raise ConfigError(
                f"{self.family}: device expected one of {', '.join(DEVICES)} (or cuda:N), found {device!r}"
            )
        self.architecture = architecture
        self.weights = str(weights) if weights is not None else architecture
        self.revision = revision
        self.device = str(device)
        self.dtype = dtype
        self.random_init = bool(random_init)
        self.seed = int(seed)
        self.config_overrides = _plain(config) or {}
        self.batch_size = int(batch_size)
        self.hub_timeout = float(hub_timeout)
        if self.batch_size < 1:
            raise ConfigError(f"{self.family}: batch_size expected >= 1, found {batch_size}")
        self.arch = deep_merge(self.ARCHITECTURES[architecture], self.config_overrides)
        layout = self.layout(self.arch)
        self.causal = bool(layout.get("causal", self.causal))
        self.native_rate = int(layout["sample_rate"])
        self.sample_rates = (self.native_rate,)
        self.channel_counts = (int(layout["channels"]),)
        self.hop_length = int(layout["hop_length"])
        self.strides = tuple(int(s) for s in layout["strides"])  # per codebook, in frames of hop_length
        self.max_codebooks = len(self.strides)
        self.codebook_size = int(layout["codebook_size"])
        self.pad_multiple = int(layout.get("pad_multiple", self.hop_length))
        n = self.max_codebooks if n_codebooks is None else int(n_codebooks)
        if not self.min_codebooks() <= n <= self.max_codebooks:
            raise ConfigError(
                f"{self.family} {architecture}: n_codebooks expected {self.min_codebooks()}.."
                f"{self.max_codebooks}, found {n}"
            )
        self.n_codebooks = n
        #: frames per second of each codebook that is sent (Hz); SNAC's levels differ.
        self.frame_rates = tuple(self.native_rate / (self.hop_length * s) for s in self.strides[:n])
        self.frame_rate = max(self.frame_rates)
        self.nominal_kbps = sum(self.frame_rates) * math.log2(self.codebook_size) / 1000.0
        self.frame_ms = 1000.0 * self.hop_length * max(self.strides[:n]) / self.native_rate
        self.lookahead_ms = 0.0 if self.causal else None
        if chunk_seconds is not None and float(chunk_seconds) <= 0:
            raise ConfigError(f"{self.family}: chunk_seconds expected > 0 or null, found {chunk_seconds}")
        self.chunk_seconds = None if chunk_seconds is None else float(chunk_seconds)
        self.overlap_seconds = float(overlap_seconds)
        self.chunk_samples, self.overlap_samples = self._chunking()
        if self.random_init:
            self.family = f"{self.family}-random"
        self._model = None
        self._weights_hash: str | None = None
        self._weights_source: str | None = None

    # ---- what each family provides -------------------------------------------------------
    @classmethod
    @abstractmethod
    def layout(cls, arch: dict) -> dict:
        """Facts of a configuration: sample_rate [Hz], channels, hop_length [samples per code frame],
        strides (per codebook, in hops: 1 for every codebook of an RVQ), codebook_size, and
        optionally pad_multiple [samples] the input length is padded to."""

    @abstractmethod
    def build_random(self, arch: dict):
        """The model built from ``arch`` (random weights; the caller seeds torch)."""

    @abstractmethod
    def load_folder(self, folder: Path):
        """The model loaded from a local folder of weights."""

    @abstractmethod
    def loaded_arch(self, model) -> dict:
        """The configuration of a loaded model, in ``ARCHITECTURES``' terms (for :meth:`layout`)."""

    @abstractmethod
    def encode_padded(self, model, x, lengths: list[int]) -> list[tuple[list[np.ndarray], dict, int]]:
        """Code a padded batch ``x`` (batch, channels, samples) whose items have ``lengths`` (padded to
        ``pad_multiple``). Per item: (codes per sent codebook, 1-D int arrays; side info (JSON-able);
        side bits)."""

    @abstractmethod
    def decode_padded(
        self, model, codes: list[list[np.ndarray]], sides: list[dict], lengths: list[int]
    ) -> list[np.ndarray]:
        """Decode items' codes (as :meth:`encode_padded` made them) into (channels, >= length) float arrays."""

    def min_codebooks(self) -> int:
        return 1

    # ---- the contract --------------------------------------------------------------------
    def params(self) -> dict:
        return {
            "architecture": self.architecture,
            "weights": self.weights,
            "revision": self.revision,
            "n_codebooks": self.n_codebooks,
            "device": self.device,
            "dtype": self.dtype,
            "random_init": self.random_init,
            "seed": self.seed if self.random_init else None,
            "config": self.config_overrides,
            "chunk_seconds": self.chunk_seconds,
            "overlap_seconds": self.overlap_seconds if self.chunk_seconds is not None else None,
        }

    def facts(self) -> dict:
        facts = super().facts()
        facts.update({
            "frame_rate": self.frame_rate,
            "frame_rates": list(self.frame_rates),
            "n_codebooks": self.n_codebooks,
            "codebook_size": self.codebook_size,
            "bits_per_code": math.log2(self.codebook_size),
            "chunk_samples": self.chunk_samples,
            "overlap_samples": self.overlap_samples,
            "random_init": self.random_init,
            "weights_source": self.weights_source(),
            "delay_removed_samples": 0,
        })
        return facts

    def weights_hash(self) -> str:
        """sha256 over the model's state dict as loaded (before any dtype cast); loads the model."""
        self.model()
        return self._weights_hash

    def weights_source(self) -> str:
        """Where the weights came from: ``random:seed=N (NOT trained weights)``, ``folder:...`` or ``hub:id@commit``."""
        self.model()
        return self._weights_source

    def model(self):
        """The model, loaded on first use, in eval mode on ``device`` in ``dtype``."""
        if self._model is not None:
            return self._model
        torch = import_torch()
        device, dtype = resolve_device(self.device), resolve_dtype(self.dtype)
        if self.random_init:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(self.seed)
                model = self.build_random(self.arch)
            source = f"random:seed={self.seed} (NOT trained weights)"
        else:
            folder, source = self.locate()
            try:
                model = self.load_folder(folder)
            except CodecbenchError:
                raise
            except Exception as exc:
                raise ConfigError(
                    f"{self.family}: could not load weights from {folder}: {type(exc).__name__}: {exc}"
                ) from exc
            self._check_layout(self.loaded_arch(model), folder)
        self._weights_hash = state_dict_sha256(model)
        self._weights_source = source
        self._model = model.to(device=device, dtype=dtype).eval()
        return self._model

    def locate(self) -> tuple[Path, str]:
        """Where the trained weights are, and their source: ``locate_weights`` of ``weights`` (a folder or a hub id)."""
        return locate_weights(self.weights, self.revision, self.family, self.hub_timeout, self.WEIGHT_FILES)

    def _check_layout(self, loaded: dict, folder: Path) -> None:
        expected, found = self.layout(self.arch), self.layout(loaded)
        for key in ("sample_rate", "channels", "hop_length", "codebook_size", "pad_multiple"):
            if key in expected and expected.get(key) != found.get(key):
                raise ConfigError(
                    f"{self.family}: weights in {folder} do not match architecture {self.architecture!r}: "
                    f"expected {key} {expected.get(key)}, found {found.get(key)}"
                )
        if list(found["strides"][: self.n_codebooks]) != list(expected["strides"][: self.n_codebooks]):
            raise ConfigError(
                f"{self.family}: weights in {folder} do not match architecture {self.architecture!r}: expected at "
                f"least {self.n_codebooks} codebooks with strides {expected['strides'][: self.n_codebooks]}, "
                f"found {found['strides']}"
            )

    def _chunking(self) -> tuple[int | None, int]:
        if self.chunk_seconds is None:
            return None, 0
        step = self.pad_multiple  # both rounded to the nearest whole frame (halves up)
        chunk = max(1, math.floor(self.chunk_seconds * self.native_rate / step + 0.5)) * step
        overlap = math.floor(self.overlap_seconds * self.native_rate / step + 0.5) * step
        if not 0 <= overlap < chunk:
            raise ConfigError(
                f"{self.family}: overlap_seconds expected in [0, chunk_seconds), found {self.overlap_seconds} "
                f"(chunk {self.chunk_seconds} s)"
            )
        return chunk, overlap

    def encode(self, audio: Audio) -> Encoded:
        return self.encode_batch([audio])[0]

    def decode(self, encoded: Encoded) -> Audio:
        return self.decode_batch([encoded])[0]

    def encode_batch(self, audios: list[Audio]) -> list[Encoded]:
        """Code several items (each at a supported rate and channel count) in padded batches."""
        for audio in audios:
            self.check_input(audio.sample_rate, audio.channels)
            if audio.frames == 0:
                raise CodecbenchError(f"{self.family}: expected audio with at least one sample, found 0 frames")
        jobs = [(i, start, length) for i, a in enumerate(audios)
                for start, length in pieces(a.frames, self.chunk_samples, self.overlap_samples)]
        results = self._run_batches(
            jobs, lambda batch: self._encode_pieces([audios[i].samples[:, s : s + n] for i, s, n in batch])
        )
        out = []
        for i, audio in enumerate(audios):
            mine = [(job, res) for job, res in zip(jobs, results) if job[0] == i]
            codes = [np.concatenate([res[0][k] for _, res in mine])[None, :] for k in range(self.n_codebooks)]
            tokens = Tokens(
                codes=tuple(codes),
                codebook_sizes=(self.codebook_size,) * self.n_codebooks,
                frame_rates=self.frame_rates,
                side_bits=sum(res[2] for _, res in mine),
            )
            side = {"pieces": [[s, n, [len(c) for c in res[0]]] for (_, s, n), res in mine],
                    "piece_side": [res[1] for _, res in mine]}
            out.append(Encoded(payload=tokens, bits=tokens.bits, frames=audio.frames, sample_rate=audio.sample_rate,
                               channels=audio.channels, side=side, delay_samples=0))
        return out

    def decode_batch(self, encoded: list[Encoded]) -> list[Audio]:
        """Reconstruct several items in padded batches; each has exactly its input's frames."""
        jobs = []
        for i, enc in enumerate(encoded):
            if not isinstance(enc.payload, Tokens) or len(enc.payload.codes) != self.n_codebooks:
                found = len(enc.payload.codes) if isinstance(enc.payload, Tokens) else type(enc.payload).__name__
                raise CodecbenchError(
                    f"{self.family}: expected Tokens with {self.n_codebooks} codebooks, found {found}"
                )
            self.check_input(enc.sample_rate, enc.channels)
            if "pieces" not in enc.side or "piece_side" not in enc.side:
                raise CodecbenchError(
                    f"{self.family}: expected an Encoded made by this codec's encode (side keys pieces, piece_side), "
                    f"found side keys {sorted(enc.side)}"
                )
            offsets = [0] * self.n_codebooks
            for (start, length, counts), side in zip(enc.side["pieces"], enc.side["piece_side"]):
                codes = [enc.payload.codes[k][0, offsets[k] : offsets[k] + counts[k]] for k in range(self.n_codebooks)]
                offsets = [o + c for o, c in zip(offsets, counts)]
                jobs.append((i, start, length, codes, side))
        results = self._run_batches(jobs, self._decode_pieces)
        out = []
        for i, enc in enumerate(encoded):
            mine = [(job, res) for job, res in zip(jobs, results) if job[0] == i]
            samples = crossfade_join([res for _, res in mine], [(j[1], j[2]) for j, _ in mine], enc.frames)
            out.append(Audio(samples, enc.sample_rate))
        return out

    # ---- batching ------------------------------------------------------------------------
    def _run_batches(self, jobs: list, run) -> list:
        """``run`` over ``jobs`` in groups of ``batch_size``, longest first (so padding stays small);
        a non-causal codec groups only jobs of equal padded length (see the module docstring)."""
        order = sorted(range(len(jobs)), key=lambda j: -self._job_length(jobs[j]))
        groups: list[tuple[int, list[int]]] = []  # (padded length of the first, job indices)
        for j in order:
            length = self._padded_length(self._job_length(jobs[j]))
            if groups and len(groups[-1][1]) < self.batch_size and (self.causal or groups[-1][0] == length):
                groups[-1][1].append(j)
            else:
                groups.append((length, [j]))
        results: list = [None] * len(jobs)
        for _, group in groups:
            for j, res in zip(group, run([jobs[j] for j in group])):
                results[j] = res
        return results

    @staticmethod
    def _job_length(job) -> int:
        return job[2]

    def _padded_length(self, frames: int) -> int:
        return -(-frames // self.pad_multiple) * self.pad_multiple

    def _encode_pieces(self, segments: list[np.ndarray]) -> list[tuple[list[np.ndarray], dict, int]]:
        torch = import_torch()
        model = self.model()
        lengths = [self._padded_length(s.shape[1]) for s in segments]
        x = np.zeros((len(segments), segments[0].shape[0], max(lengths)), dtype=np.float32)
        for row, seg in zip(x, segments):
            row[:, : seg.shape[1]] = seg
        param = next(model.parameters())
        with torch.inference_mode():
            tensor = torch.from_numpy(x).to(device=param.device, dtype=param.dtype)
            results = self.encode_padded(model, tensor, lengths)
        for codes, _, _ in results:
            for k, c in enumerate(codes):
                if c.size and (c.min() < 0 or c.max() >= self.codebook_size):
                    raise CodecbenchError(
                        f"{self.family}: codebook {k} emitted codes outside [0, {self.codebook_size}): "
                        f"{int(c.min())}..{int(c.max())}"
                    )
        return results

    def _decode_pieces(self, jobs: list) -> list[np.ndarray]:
        torch = import_torch()
        model = self.model()
        lengths = [self._padded_length(length) for _, _, length, _, _ in jobs]
        with torch.inference_mode():
            outs = self.decode_padded(model, [j[3] for j in jobs], [j[4] for j in jobs], lengths)
        results = []
        for (_, _, length, _, _), y in zip(jobs, outs):
            if y.shape[-1] + self.hop_length <= length:
                raise CodecbenchError(
                    f"{self.family}: decoder returned {y.shape[-1]} samples, expected at least {length}"
                )
            # DAC's odd-stride transposed convolutions end a few samples (< 1 frame) short: zero-filled
            y = np.pad(np.asarray(y[:, :length], dtype=np.float32), ((0, 0), (0, max(0, length - y.shape[-1]))))
            if not np.isfinite(y).all():
                raise CodecbenchError(f"{self.family}: decoder returned NaN or inf samples")
            results.append(y)
        return results


def stack_codes(codes: list[list[np.ndarray]], torch, device, n_codebooks: int, level: int | None = None):
    """Items' codes for one level (or all codebooks) as a (batch, codebooks, frames) long tensor, zero-padded."""
    frames = max(len(item[0]) for item in codes)
    out = np.zeros((len(codes), n_codebooks, frames), dtype=np.int64)
    for b, item in enumerate(codes):
        for k in range(n_codebooks):
            out[b, k, : len(item[k])] = item[k]
    return torch.from_numpy(out).to(device)


def split_codes(tensor, frames: list[int]) -> list[list[np.ndarray]]:
    """(batch, codebooks, frames) codes -> per item, per codebook, its first ``frames[b]`` codes (int32)."""
    array = tensor.detach().to("cpu").numpy().astype(np.int32)
    return [[array[b, k, : frames[b]].copy() for k in range(array.shape[1])] for b in range(array.shape[0])]
