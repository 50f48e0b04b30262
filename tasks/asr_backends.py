"""Speech recognisers behind one interface, for the ``asr`` task.

A backend turns 16 kHz (``sample_rate``) mono float32 arrays into raw text,
several at a time (``transcribe``). Building one checks its options and that
its package is installed (an error naming the ``asr`` pip extra otherwise);
the model is loaded lazily, once, on the first ``transcribe`` or ``info``
call, never per item. ``info()`` is the provenance stored in run.json:
package versions, the model as configured, the hub commit it resolved to
(hub ids) and the sha256 of every file of the model folder, and the decoding
settings. ``describe()`` is a one-line summary made without loading anything.

Backends (``BACKENDS``):

- ``faster_whisper``: Whisper in CTranslate2 format through faster-whisper.
  ``model`` is a size name ("large-v3", "tiny.en"), a hub id of a CTranslate2
  conversion ("Systran/faster-whisper-large-v3") or a local folder; both go
  through ``faster_whisper.utils.download_model`` unless a folder is given.
  Decoding is deterministic: temperature 0 only (no sampling fallback), no
  conditioning on previous text, no VAD. Items are decoded one after the
  other with ``WhisperModel.transcribe``: faster-whisper's
  ``BatchedInferencePipeline`` batches the VAD chunks of *one* recording
  (consecutive clips are merged into chunks of up to 30 s), so it cannot
  batch separate items without changing what is decoded.
- ``transformers``: any ``pipeline("automatic-speech-recognition")`` model
  (Whisper and other AutoModelForSpeechSeq2Seq, wav2vec2 and other CTC)
  from a hub id or a local folder, batched with the pipeline's
  ``batch_size``. Seq2seq models decode with beam search, no sampling.
- ``pocketsphinx``: CMU PocketSphinx with the US English model shipped in
  its wheel (acoustic model, language model, dictionary), 16 kHz; samples
  are clipped to [-1, 1] and converted to 16-bit PCM, as it takes. Its
  feature state (noise estimate) is reset before each item, so a transcript
  does not depend on what was decoded before (without the reset, decoding a
  noisy clip first changed 4 of 10 demo transcripts).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from codecbench.errors import CodecbenchError, ConfigError
from codecbench.provenance import file_sha256, package_version
from codecbench.tasks.text import import_asr_package

#: Hz; the rate Whisper's feature extractor and PocketSphinx's default model take.
RATE = 16000


def folder_sha256(folder: Path) -> dict[str, str]:
    """sha256 of every regular, non-hidden file in ``folder`` and below, by relative path."""
    return {
        str(path.relative_to(folder)): file_sha256(path)
        for path in sorted(folder.rglob("*"))
        if path.is_file() and not any(part.startswith(".") for part in path.relative_to(folder).parts)
    }


def hub_commit(snapshot_file: str | Path | None) -> str | None:
    """The commit of a hub cache path ``.../snapshots/<commit>/<file>`` (None outside the hub cache)."""
    if not snapshot_file:
        return None
    parts = Path(snapshot_file).parts  # not resolved: the snapshot's files are links into blobs/
    for index, part in enumerate(parts[:-1]):
        if part == "snapshots":
            return parts[index + 1]
    return None


class AsrBackend(ABC):
    """A speech recogniser: ``transcribe(list of 1-D float32 arrays at sample_rate Hz) -> list of str``."""

    #: backend id, as in the task config's ``backend``.
    name: ClassVar[str]
    #: distribution whose absence is reported with the pip extra.
    package: ClassVar[str]
    #: module imported at build time to check the package is installed.
    module: ClassVar[str]
    #: options the backend accepts, with their defaults.
    defaults: ClassVar[dict[str, Any]]
    #: options named in ``describe()`` (the ones that change transcripts).
    described: ClassVar[tuple[str, ...]] = ()

    def __init__(self, model: str | None, options: dict | None = None):
        options = dict(options or {})
        unknown = sorted(set(options) - set(self.defaults))
        if unknown:
            raise ConfigError(
                f"asr backend {self.name!r}: unknown option(s) {', '.join(unknown)}; "
                f"expected any of: {', '.join(sorted(self.defaults))}"
            )
        self.model = None if model is None else str(model)
        self.options = {**self.defaults, **options}
        import_asr_package(self.module, self.package)
        self.sample_rate = RATE
        self._loaded = False
        self._info: dict = {}
        self.check()

    def check(self) -> None:
        """Validate options beyond their names (raise ConfigError)."""

    def load(self) -> None:
        """Load the model, once."""
        if self._loaded:
            return
        try:
            self._info = self._load()
        except CodecbenchError:
            raise
        except Exception as exc:
            raise CodecbenchError(
                f"asr backend {self.name!r}: could not load model {self.model!r}: {type(exc).__name__}: {exc} "
                "(a hub id needs network access or a filled hub cache; a local folder must hold the model files)"
            ) from exc
        self._loaded = True

    @abstractmethod
    def _load(self) -> dict:
        """Load the model; return its provenance (model source, hashes)."""

    @abstractmethod
    def _transcribe(self, audios: list[np.ndarray]) -> list[str]:
        """Raw texts of ``audios`` (1-D float32 at ``sample_rate``), in order."""

    def transcribe(self, audios: list[np.ndarray]) -> list[str]:
        """Raw texts of ``audios`` (1-D float32 at ``sample_rate`` Hz), in order; loads the model once."""
        self.load()
        if not audios:
            return []
        texts = self._transcribe(audios)
        if len(texts) != len(audios):
            raise CodecbenchError(
                f"asr backend {self.name!r}: expected {len(audios)} transcripts, found {len(texts)}"
            )
        return [str(text) for text in texts]

    def info(self) -> dict:
        """Provenance as stored in run.json (loads the model once)."""
        self.load()
        return {
            "backend": self.name,
            "model": self.model,
            "sample_rate": self.sample_rate,
            "options": dict(self.options),
            **self._info,
        }

    def describe(self) -> str:
        """One line from the configuration, e.g. ``faster-whisper==1.2.1 'large-v3' (beam_size 5, ...)``."""
        settings = ", ".join(f"{key} {self.options[key]}" for key in self.described)
        return f"{self.package}=={package_version(self.package)} {self.model!r} ({settings}, {self.sample_rate} Hz)"

    @staticmethod
    def _model_files(folder: Path) -> dict:
        return {"folder_sha256": folder_sha256(folder), "hub_commit": hub_commit(folder)}


class FasterWhisperBackend(AsrBackend):
    """Whisper through faster-whisper (CTranslate2), one item at a time, temperature 0.

    Options: ``revision`` (hub revision, None: main), ``device`` ("auto",
    "cpu", "cuda"), ``compute_type`` (CTranslate2 type: "default" keeps the
    stored one where the device supports it, "int8", "float16", "float32"...),
    ``beam_size`` (>= 1), ``language`` (code such as "en"; None detects it;
    English-only models always use "en"), ``without_timestamps`` (decode
    without timestamp tokens; with them, faster-whisper's default, audio over
    30 s is cut at segment ends), ``cpu_threads`` (0: CTranslate2's default),
    ``download_root`` (hub cache folder) and ``local_files_only``.
    """

    name = "faster_whisper"
    package = "faster-whisper"
    module = "faster_whisper"
    defaults = {
        "revision": None, "device": "auto", "compute_type": "default", "beam_size": 5, "language": "en",
        "without_timestamps": False, "cpu_threads": 0, "download_root": None, "local_files_only": False,
    }
    described = ("revision", "compute_type", "beam_size", "language", "without_timestamps")

    def check(self) -> None:
        if not self.model:
            raise ConfigError(
                "asr backend 'faster_whisper': expected model (a size name, hub id or folder), found none"
            )
        if int(self.options["beam_size"]) < 1:
            raise ConfigError(f"asr option beam_size: expected >= 1, found {self.options['beam_size']}")

    def _load(self) -> dict:
        faster_whisper = import_asr_package("faster_whisper", self.package)
        from faster_whisper.utils import download_model

        folder = Path(self.model)
        if not folder.is_dir():  # a size name or hub id: the hub cache (downloading when allowed)
            folder = Path(download_model(
                self.model, local_files_only=bool(self.options["local_files_only"]),
                cache_dir=self.options["download_root"], revision=self.options["revision"],
            ))
        self._model = faster_whisper.WhisperModel(
            str(folder), device=self.options["device"], compute_type=self.options["compute_type"],
            cpu_threads=int(self.options["cpu_threads"]),
        )
        return {
            "packages": {name: package_version(name) for name in ("faster-whisper", "ctranslate2")},
            **self._model_files(folder),
            "device": self._model.model.device,
            "resolved_compute_type": self._model.model.compute_type,
            "decoding": {
                "temperature": 0.0, "condition_on_previous_text": False, "vad_filter": False,
                "batching": "none: WhisperModel.transcribe per item",
            },
        }

    def _transcribe(self, audios: list[np.ndarray]) -> list[str]:
        texts = []
        for audio in audios:
            segments, _ = self._model.transcribe(
                audio, language=self.options["language"], task="transcribe", beam_size=int(self.options["beam_size"]),
                temperature=0.0, condition_on_previous_text=False, vad_filter=False,
                without_timestamps=bool(self.options["without_timestamps"]),
            )
            texts.append(" ".join(segment.text for segment in segments))
        return texts


class TransformersBackend(AsrBackend):
    """A transformers ``automatic-speech-recognition`` pipeline, batched.

    Options: ``revision`` (hub revision), ``device`` ("cpu", "cuda", "cuda:1"...),
    ``dtype`` ("float32", "float16", "bfloat16"), ``batch_size`` (items per
    forward pass, >= 1), ``beam_size`` (seq2seq models; >= 1), ``language``
    (passed to multilingual Whisper models only, with task "transcribe"),
    ``chunk_length_s`` (None: whole items; seconds: the pipeline's chunked
    long-form decoding), ``sample_rate`` (Hz the model's feature extractor
    takes; checked on load) and ``local_files_only``.

    Models that generate (Whisper and other seq2seq) are batched: Whisper
    pads every item to 30 s anyway, so its texts do not depend on the batch
    (the tests check this at random weights). CTC models run one item per
    forward pass whatever ``batch_size`` says: the pipeline's batched CTC
    path decodes the logits of the batch padding up to a length it rounds
    from the input length, which adds characters to shorter items (seen at
    random weights), so batching would change their texts.
    """

    name = "transformers"
    package = "transformers"
    module = "transformers"
    defaults = {
        "revision": None, "device": "cpu", "dtype": "float32", "batch_size": 8, "beam_size": 5, "language": "en",
        "chunk_length_s": None, "sample_rate": RATE, "local_files_only": False,
    }
    described = ("revision", "dtype", "beam_size", "language", "chunk_length_s")

    def check(self) -> None:
        if not self.model:
            raise ConfigError("asr backend 'transformers': expected model (a hub id or folder), found none")
        for key in ("batch_size", "beam_size"):
            if int(self.options[key]) < 1:
                raise ConfigError(f"asr option {key}: expected >= 1, found {self.options[key]}")
        self.sample_rate = int(self.options["sample_rate"])

    def _load(self) -> dict:
        transformers = import_asr_package("transformers", self.package)
        import_asr_package("torch", "torch")
        model_kwargs = {"local_files_only": True} if self.options["local_files_only"] else {}
        self._pipe = transformers.pipeline(
            "automatic-speech-recognition", model=self.model, revision=self.options["revision"],
            device=self.options["device"], dtype=self.options["dtype"], model_kwargs=model_kwargs,
        )
        found = int(self._pipe.feature_extractor.sampling_rate)
        if found != self.sample_rate:
            raise ConfigError(
                f"asr model {self.model!r}: expected a feature extractor at sample_rate={self.sample_rate} Hz "
                f"(the option), found {found} Hz; set the option sample_rate: {found}"
            )
        model = self._pipe.model
        generation = getattr(model, "generation_config", None)
        self._generates = bool(model.can_generate())
        self._multilingual = bool(getattr(generation, "is_multilingual", False))
        folder = Path(self.model)
        if folder.is_dir():
            files = self._model_files(folder)
        else:  # a hub id: the commit the cached config resolved to
            from huggingface_hub import try_to_load_from_cache

            cached = try_to_load_from_cache(self.model, "config.json", revision=self.options["revision"])
            files = {"folder_sha256": None, "hub_commit": hub_commit(cached if isinstance(cached, str) else None)}
        return {
            "packages": {name: package_version(name) for name in ("transformers", "torch")},
            **files,
            "architecture": type(model).__name__,
            "decoding": {"generate_kwargs": self._generate_kwargs(), "batch_size": self._batch_size()},
        }

    def _batch_size(self) -> int:
        """Items per forward pass: the option for generating models, 1 for CTC (class docstring)."""
        return int(self.options["batch_size"]) if self._generates else 1

    def _generate_kwargs(self) -> dict | None:
        if not self._generates:
            return None
        kwargs = {"num_beams": int(self.options["beam_size"]), "do_sample": False}
        if self._multilingual and self.options["language"]:
            kwargs.update(language=self.options["language"], task="transcribe")
        return kwargs

    def _transcribe(self, audios: list[np.ndarray]) -> list[str]:
        # fresh dicts each call: the pipeline pops their keys
        inputs = [{"raw": audio, "sampling_rate": self.sample_rate} for audio in audios]
        kwargs: dict = {"batch_size": self._batch_size()}
        if self._generate_kwargs() is not None:
            kwargs["generate_kwargs"] = self._generate_kwargs()
        if self.options["chunk_length_s"] is not None:
            kwargs["chunk_length_s"] = float(self.options["chunk_length_s"])
        return [out["text"] for out in self._pipe(inputs, **kwargs)]


class PocketsphinxBackend(AsrBackend):
    """CMU PocketSphinx, one utterance per item.

    ``model``: an acoustic model folder (None: the US English model shipped in
    the pocketsphinx wheel). Options: ``lm`` (language model file), ``dict``
    (pronunciation dictionary), both None for the shipped ones, and
    ``samprate`` (Hz; 16000 for the shipped model).
    """

    name = "pocketsphinx"
    package = "pocketsphinx"
    module = "pocketsphinx"
    defaults = {"lm": None, "dict": None, "samprate": RATE}

    def check(self) -> None:
        self.sample_rate = int(self.options["samprate"])

    def describe(self) -> str:
        model = "en-us (shipped in the wheel)" if self.model is None else repr(self.model)
        files = f"lm {self.options['lm']}, dict {self.options['dict']}"
        return f"pocketsphinx=={package_version('pocketsphinx')} {model} ({files}, {self.sample_rate} Hz)"

    def _load(self) -> dict:
        pocketsphinx = import_asr_package("pocketsphinx", self.package)
        settings = {"samprate": self.sample_rate}
        if self.model is not None:
            settings["hmm"] = self.model
        settings.update({key: self.options[key] for key in ("lm", "dict") if self.options[key] is not None})
        self._decoder = pocketsphinx.Decoder(loglevel="FATAL", **settings)
        shipped = Path(pocketsphinx.get_model_path()).resolve()
        files = {}
        for key in ("hmm", "lm", "dict"):
            path = Path(self._decoder.config[key]).resolve()
            where = str(path.relative_to(shipped)) if path.is_relative_to(shipped) else str(path)
            files[key] = {
                "path": ("<pocketsphinx model>/" + where) if path.is_relative_to(shipped) else where,
                "sha256": folder_sha256(path) if path.is_dir() else file_sha256(path),
            }
        return {"packages": {"pocketsphinx": package_version("pocketsphinx")}, "model_files": files}

    def _transcribe(self, audios: list[np.ndarray]) -> list[str]:
        texts = []
        for audio in audios:
            pcm = (np.clip(audio, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()
            self._decoder.reinit_feat()  # forget the noise estimate of earlier items: order-independent
            self._decoder.start_utt()
            self._decoder.process_raw(pcm, full_utt=True)
            self._decoder.end_utt()
            hypothesis = self._decoder.hyp()
            texts.append(hypothesis.hypstr if hypothesis is not None else "")
        return texts


BACKENDS: dict[str, type[AsrBackend]] = {
    backend.name: backend for backend in (FasterWhisperBackend, TransformersBackend, PocketsphinxBackend)
}


def build_backend(backend: str, model: str | None, options: dict | None = None) -> AsrBackend:
    """The backend named ``backend`` (a key of ``BACKENDS``) for ``model`` with ``options``."""
    if backend not in BACKENDS:
        raise ConfigError(f"asr backend: expected one of {', '.join(BACKENDS)}, found {backend!r}")
    return BACKENDS[backend](model, options)
