"""Speaker encoders for the ``speaker`` task: one contract, three backends.

An encoder maps mono float32 clips at its ``sample_rate`` (Hz) to
L2-normalised embeddings of ``dim`` floats (each component in [-1, 1]).
Clips of equal length go through the model together (no padding: an
embedding never depends on what else was in its batch); clips of other
lengths go alone.

Backends (``BACKENDS``):

- ``resemblyzer``: the GE2E ``VoiceEncoder`` of the resemblyzer package,
  whose weights ship in its wheel (``model``: a weights file, None for
  that one). Each clip goes through resemblyzer's own
  ``preprocess_wav`` (volume raised to -30 dBFS if quieter, long silences
  trimmed with webrtcvad) and ``embed_utterance`` (1.6 s partials at 1.3
  per second, averaged). 256 dims, non-negative components, 16000 Hz.
- ``speechbrain``: ``speechbrain.inference.speaker.EncoderClassifier
  .from_hparams`` with ``model`` a hub id (e.g.
  ``speechbrain/spkrec-ecapa-voxceleb``, ECAPA-TDNN, 192 dims) or a local
  folder with its ``hyperparams.yaml`` and checkpoints (a top-level
  ``pretrained_path`` in that YAML is pointed at the folder, so a local
  copy of a hub model loads from disk). Needs the ``speechbrain`` extra
  (torchaudio, which pins torch).
- ``transformers``: ``AutoFeatureExtractor`` + ``AutoModelForAudioXVector``
  ``.from_pretrained(model, revision=...)`` with ``model`` a hub id (e.g.
  ``microsoft/wavlm-base-plus-sv``, 512 dims) or a local folder; the
  embedding is the model's ``embeddings`` output.

Every encoder reports its provenance (``info``): package versions, model
source and revision, the sample rate and ``weights_sha256``, a sha256 over
the loaded model's state dict (parameter and buffer names, dtypes, shapes
and bytes), so a run names the exact weights it used wherever they came
from.
"""

from __future__ import annotations

import hashlib
import importlib
import re
import warnings
from abc import ABC, abstractmethod
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path

import numpy as np

from codecbench.errors import CodecbenchError, ConfigError, missing_extra
from codecbench.provenance import package_version

#: pip extra of the resemblyzer and transformers backends.
EXTRA = "speaker"

#: pip extra of the speechbrain backend (torchaudio pins torch: an environment of its own).
SPEECHBRAIN_EXTRA = "speechbrain"


def _import(module: str, extra: str):
    """Import an encoder's package lazily; a missing package (or one it imports) names the extra."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        missing = (exc.name or module).split(".")[0]
        if missing == "pkg_resources":
            raise CodecbenchError(
                f"{module}: resemblyzer imports webrtcvad, which imports pkg_resources, removed in "
                "setuptools 81; install it with: pip install 'setuptools<81' (the speaker extra pins it)"
            ) from exc
        raise missing_extra(missing, extra) from exc


def state_dict_sha256(module) -> str:
    """sha256 over a torch module's state dict: names, dtypes, shapes and bytes, in name order."""
    import torch

    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        flat = tensor.detach().to("cpu").contiguous().reshape(-1)
        digest.update(f"{name}:{flat.dtype}:{tuple(tensor.shape)}:".encode())
        digest.update(flat.view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


@contextmanager
def torch_threads(count: int | None):
    """Run the block with ``count`` torch intra-op threads (None: leave torch's setting), then restore it.

    torch's thread count is process-wide: score from one thread per process
    (as the pipeline does). One thread avoids the spin-waiting that makes a
    small model many times slower on a busy machine (resemblyzer's LSTM:
    0.06 s of CPU per 7 s clip on one thread, over 1 s on two threads when
    the cores are shared).
    """
    if count is None:
        yield
        return
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(int(count))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def normalise(embedding: np.ndarray) -> np.ndarray:
    """The embedding as float64 with unit L2 norm; CodecbenchError when non-finite or zero."""
    embedding = np.asarray(embedding, dtype=np.float64).ravel()
    if not np.isfinite(embedding).all():
        raise CodecbenchError(f"expected a finite embedding, found {int((~np.isfinite(embedding)).sum())} NaN/inf")
    norm = float(np.linalg.norm(embedding))
    if norm == 0.0:
        raise CodecbenchError("expected a non-zero embedding, found all zeros")
    return embedding / norm


class SpeakerEncoder(ABC):
    """A loaded speaker-embedding model (see the module docstring for the backends)."""

    #: backend id, as in the task's ``backend`` parameter.
    backend: str

    def __init__(self, model: str | None, revision: str | None, device: str):
        self.model = model
        self.revision = revision
        self.device = device

    @property
    @abstractmethod
    def sample_rate(self) -> int:
        """Hz; clips are resampled to it."""

    @property
    @abstractmethod
    def dim(self) -> int:
        """Embedding size, as the model declares it."""

    @abstractmethod
    def _embed_equal_length(self, clips: np.ndarray) -> np.ndarray:
        """Embeddings ``(n, dim)`` of clips ``(n, samples)`` of equal length (mono float32)."""

    @abstractmethod
    def torch_module(self):
        """The loaded torch module whose state dict holds every weight the encoder uses."""

    @abstractmethod
    def architecture(self) -> str:
        """Model architecture in words, e.g. ``ECAPA_TDNN`` or ``WavLMForXVector``."""

    #: packages whose versions the provenance records, the first being the backend's own.
    packages: tuple[str, ...]

    @cached_property
    def weights_sha256(self) -> str:
        """sha256 of the loaded weights (``state_dict_sha256``), computed once."""
        return state_dict_sha256(self.torch_module())

    def info(self) -> dict:
        """Provenance: backend, model source and revision, packages, weights sha256, size, rate, device."""
        return {
            "backend": self.backend,
            "architecture": self.architecture(),
            "model": self.model,
            "revision": self.revision,
            "packages": {name: package_version(name) for name in self.packages},
            "weights_sha256": self.weights_sha256,
            "embedding_dim": self.dim,
            "sample_rate": self.sample_rate,
            "device": self.device,
        }

    def describe(self) -> str:
        """One line for metric cards, e.g. ``transformers==5.24.0 WavLMForXVector microsoft/... (...)``."""
        source = f" {self.model}" if self.model else ""
        revision = f"@{self.revision}" if self.revision else ""
        return (f"{self.packages[0]}=={package_version(self.packages[0])} {self.architecture()}{source}{revision} "
                f"({self.dim} dims, weights sha256:{self.weights_sha256[:12]}, {self.sample_rate} Hz)")

    def embed(self, clips: list[np.ndarray]) -> list[np.ndarray | Exception]:
        """Unit-norm float64 embeddings of ``clips`` (1-D float32 at ``sample_rate``), in order.

        Clips of equal length share one forward pass. A failure (the model
        raised, or gave a non-finite, zero or wrongly sized embedding) is
        returned in place of that clip's embedding.
        """
        out: list[np.ndarray | Exception] = [CodecbenchError("not embedded")] * len(clips)
        by_length: dict[int, list[int]] = {}
        for index, clip in enumerate(clips):
            by_length.setdefault(int(clip.size), []).append(index)
        for indices in by_length.values():
            try:
                embeddings = np.asarray(self._embed_equal_length(np.stack([clips[i] for i in indices])))
                if embeddings.shape != (len(indices), self.dim):
                    raise CodecbenchError(
                        f"{self.backend}: expected embeddings of shape ({len(indices)}, {self.dim}), "
                        f"found {embeddings.shape}"
                    )
            except Exception as exc:  # the clips of this group fail, with the reason
                for i in indices:
                    out[i] = exc
                continue
            for i, embedding in zip(indices, embeddings):
                try:
                    out[i] = normalise(embedding)
                except CodecbenchError as exc:
                    out[i] = CodecbenchError(f"{self.backend}: {exc}")
        return out


class ResemblyzerEncoder(SpeakerEncoder):
    """resemblyzer's VoiceEncoder (GE2E, 3-layer LSTM), 256 dims at 16000 Hz.

    ``model``: a weights file of that architecture; None: ``pretrained.pt`` from the wheel.
    """

    backend = "resemblyzer"
    packages = ("resemblyzer", "webrtcvad", "torch", "librosa")

    def __init__(self, model: str | None = None, revision: str | None = None, device: str = "cpu"):
        if revision is not None:
            raise ConfigError(
                f"task speaker: backend resemblyzer has no revisions; expected revision=null, found {revision!r}"
            )
        super().__init__(model, revision, device)
        with warnings.catch_warnings():
            # webrtcvad imports pkg_resources and resemblyzer scipy.ndimage.morphology: both warn
            warnings.filterwarnings("ignore", message="pkg_resources is deprecated", category=UserWarning)
            warnings.filterwarnings("ignore", message=".*scipy.ndimage.morphology", category=DeprecationWarning)
            self._package = _import("resemblyzer", EXTRA)
            self._hparams = _import("resemblyzer.hparams", EXTRA)
        self._weights = Path(model) if model else Path(self._package.__file__).parent / "pretrained.pt"
        self._encoder = self._package.VoiceEncoder(device=device, verbose=False, weights_fpath=self._weights)
        self._encoder.eval()

    @property
    def sample_rate(self) -> int:
        return int(self._hparams.sampling_rate)

    @property
    def dim(self) -> int:
        return int(self._hparams.model_embedding_size)

    def torch_module(self):
        return self._encoder

    def architecture(self) -> str:
        return f"VoiceEncoder ({self._weights.name})"

    def _embed_equal_length(self, clips: np.ndarray) -> np.ndarray:
        # preprocess_wav trims silences, so lengths differ after it: one clip at a time
        embeddings = []
        for clip in clips:
            speech = self._package.preprocess_wav(clip)
            if speech.size == 0:
                raise CodecbenchError(
                    f"resemblyzer: expected speech, found none: webrtcvad trimmed all "
                    f"{clip.size / self.sample_rate:.2f} s"
                )
            embeddings.append(self._encoder.embed_utterance(speech))
        return np.stack(embeddings)

    def info(self) -> dict:
        return {
            **super().info(),
            "preprocessing": "resemblyzer.preprocess_wav: raised to -30 dBFS if quieter, silences longer than "
            "about 0.2 s trimmed by webrtcvad (mode 3); embed_utterance: 1.6 s partials at 1.3/s, averaged",
        }


class SpeechBrainEncoder(SpeakerEncoder):
    """speechbrain ``EncoderClassifier`` (ECAPA-TDNN, x-vector...) from a hub id or a local folder."""

    backend = "speechbrain"
    packages = ("speechbrain", "torch", "torchaudio")

    #: Hz; speechbrain's VoxCeleb speaker models take 16 kHz (their hyperparams declare no rate).
    RATE = 16000

    def __init__(self, model: str | None = None, revision: str | None = None, device: str = "cpu"):
        if not model:
            raise ConfigError("task speaker: backend speechbrain needs model=<hub id or local folder>, "
                              "e.g. speechbrain/spkrec-ecapa-voxceleb; found none")
        super().__init__(model, revision, device)
        speaker = _import("speechbrain.inference.speaker", SPEECHBRAIN_EXTRA)
        fetching = _import("speechbrain.utils.fetching", SPEECHBRAIN_EXTRA)
        # savedir=None: files are read where they are (the local folder, or the Hugging Face cache),
        # never linked into the working directory
        self._classifier = speaker.EncoderClassifier.from_hparams(
            source=model, savedir=None, overrides=self._overrides(model),
            fetch_config=fetching.FetchConfig(revision=revision), run_opts={"device": device},
        )
        self._classifier.mods.eval()
        # measured, not assumed: the size of what the loaded architecture emits for 1 s of noise
        probe = np.random.default_rng(0).normal(0.0, 0.1, self.RATE).astype(np.float32)
        self._dim = int(self._embed_equal_length(probe[None, :]).shape[-1])

    @staticmethod
    def _overrides(model: str) -> dict:
        """For a local folder whose hyperparams.yaml has a top-level ``pretrained_path``: point it there."""
        hyperparams = Path(model) / "hyperparams.yaml"
        if hyperparams.is_file() and re.search(r"^pretrained_path\s*:", hyperparams.read_text(), re.M):
            return {"pretrained_path": str(Path(model).resolve())}
        return {}

    @property
    def sample_rate(self) -> int:
        return self.RATE

    @property
    def dim(self) -> int:
        return self._dim

    def torch_module(self):
        return self._classifier.mods

    def architecture(self) -> str:
        return type(self._classifier.mods["embedding_model"]).__name__

    def _embed_equal_length(self, clips: np.ndarray) -> np.ndarray:
        import torch

        with torch.no_grad():
            batch = torch.from_numpy(np.ascontiguousarray(clips, dtype=np.float32)).to(self.device)
            embeddings = self._classifier.encode_batch(batch, torch.ones(len(clips), device=self.device))
        return embeddings.reshape(len(clips), -1).cpu().numpy()


class TransformersXVectorEncoder(SpeakerEncoder):
    """A transformers audio x-vector model (e.g. WavLM-SV) with its feature extractor."""

    backend = "transformers"
    packages = ("transformers", "torch")

    def __init__(self, model: str | None = None, revision: str | None = None, device: str = "cpu"):
        if not model:
            raise ConfigError("task speaker: backend transformers needs model=<hub id or local folder>, "
                              "e.g. microsoft/wavlm-base-plus-sv; found none")
        super().__init__(model, revision, device)
        transformers = _import("transformers", EXTRA)
        self._extractor = transformers.AutoFeatureExtractor.from_pretrained(model, revision=revision)
        self._model = transformers.AutoModelForAudioXVector.from_pretrained(model, revision=revision)
        self._model.to(device).eval()

    @property
    def sample_rate(self) -> int:
        return int(self._extractor.sampling_rate)

    @property
    def dim(self) -> int:
        return int(self._model.config.xvector_output_dim)

    def torch_module(self):
        return self._model

    def architecture(self) -> str:
        return type(self._model).__name__

    def _embed_equal_length(self, clips: np.ndarray) -> np.ndarray:
        import torch

        inputs = self._extractor(list(clips), sampling_rate=self.sample_rate, return_tensors="pt")
        with torch.no_grad():
            output = self._model(**{key: value.to(self.device) for key, value in inputs.items()})
        return output.embeddings.cpu().numpy()

    def info(self) -> dict:
        return {**super().info(), "commit": getattr(self._model.config, "_commit_hash", None)}


BACKENDS: dict[str, type[SpeakerEncoder]] = {
    cls.backend: cls for cls in (ResemblyzerEncoder, SpeechBrainEncoder, TransformersXVectorEncoder)
}


def load_encoder(backend: str, model: str | None = None, revision: str | None = None,
                 device: str = "cpu") -> SpeakerEncoder:
    """The encoder of ``backend`` (a key of ``BACKENDS``), loaded from ``model`` at ``revision``."""
    if backend not in BACKENDS:
        raise ConfigError(f"task speaker: expected backend one of {', '.join(BACKENDS)}, found {backend!r}")
    return BACKENDS[backend](model=model, revision=revision, device=device)
