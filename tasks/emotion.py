"""The ``emotion`` task: speech emotion recognition on the reference and the reconstruction.

Speech items only. Metrics (``accuracy``, ``accuracy_ref``,
``accuracy_delta``, ``agreement``; per-item 0/1 values averaged with a 95%
bootstrap CI) and label handling (``label_map``, candidate labels,
``restrict_to_labels``) are those of :mod:`codecbench.tasks.classification`.

Backends (both load the model once per task, on first use):

- ``transformers`` (default): any audio-classification checkpoint through
  ``AutoFeatureExtractor`` + ``AutoModelForAudioClassification``, e.g.
  ``superb/wav2vec2-base-superb-er`` (IEMOCAP, classes neu/hap/ang/sad,
  16 kHz); scores are the logits. See :mod:`codecbench.tasks.hf_audio`.
- ``emotion2vec``: emotion2vec checkpoints through funasr's ``AutoModel``
  (``emotion2vec/emotion2vec_plus_large``, ``..._base``, ``..._seed``: 9
  classes angry, disgusted, fearful, happy, neutral, other, sad, surprised,
  <unk>; 16 kHz), one clip at a time (funasr's emotion2vec inference loops
  over clips itself); scores are funasr's softmax probabilities. A hub id
  is fetched with ``huggingface_hub.snapshot_download`` at ``revision``
  (funasr's own download ignores revisions); a local folder holds
  ``config.yaml``, ``model.pt`` and ``tokens.txt`` (ModelScope ids such as
  ``iic/emotion2vec_plus_large``: download the folder and give its path).
  Class names are funasr's tokens without their Chinese prefix
  (``"生气/angry"`` -> ``"angry"``).

Both signals are downmixed to mono (mean over channels) and resampled to
the model's rate with the project's resampler before the model sees them.
"""

from __future__ import annotations

import logging
import random
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Iterator, Mapping

import numpy as np

from codecbench.errors import ConfigError
from codecbench.provenance import package_version
from codecbench.tasks.classification import ClassificationTask, Classifier
from codecbench.tasks.hf_audio import TransformersAudioClassifier, describe_source, import_package, model_source

if TYPE_CHECKING:
    from codecbench.datasets.base import Dataset

#: pip extra of the transformers backend; the emotion2vec backend's is EMOTION2VEC_EXTRA.
EXTRA = "emotion"
EMOTION2VEC_EXTRA = "emotion2vec"

#: domains the task applies to.
SPEECH = ("speech",)

#: Hz; the rate emotion2vec takes.
EMOTION2VEC_RATE = 16000


@contextmanager
def _global_state_kept() -> Iterator[None]:
    """Restore the global RNGs (Python, numpy, torch) and the root logger afterwards.

    funasr's AutoModel seeds every global RNG and calls ``logging.basicConfig``
    when it loads, and draws random item keys when it infers.
    """
    import torch

    python_state, numpy_state = random.getstate(), np.random.get_state()
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
    try:
        with torch.random.fork_rng(devices=devices):
            yield
    finally:
        random.setstate(python_state)
        np.random.set_state(numpy_state)
        root.setLevel(level)
        root.handlers[:] = handlers


def emotion2vec_folder(model: str, revision: str | None, task: str) -> Path:
    """The local folder of an emotion2vec checkpoint: ``model`` itself, or its hub snapshot at ``revision``."""
    if Path(model).is_dir():
        return Path(model)
    hub = import_package("huggingface_hub", "huggingface_hub", EMOTION2VEC_EXTRA)
    try:
        return Path(hub.snapshot_download(repo_id=model, revision=revision))
    except Exception as exc:
        raise ConfigError(
            f"task {task}: could not fetch emotion2vec checkpoint {model!r} (expected a hub id, reachable or in "
            f"the Hugging Face cache, or a folder with config.yaml, model.pt, tokens.txt): "
            f"{type(exc).__name__}: {exc}"
        ) from exc


class Emotion2vecClassifier(Classifier):
    """emotion2vec through funasr: utterance-level class probabilities at 16 kHz."""

    sample_rate = EMOTION2VEC_RATE

    def __init__(self, model: str, revision: str | None, device: str, task: str):
        funasr = import_package("funasr", "funasr", EMOTION2VEC_EXTRA)
        import torch

        folder = emotion2vec_folder(model, revision, task)
        try:
            with _global_state_kept():
                self.automodel = funasr.AutoModel(
                    model=str(folder), device=device, ncpu=torch.get_num_threads(), disable_update=True,
                    disable_pbar=True, disable_log=True, log_level="WARNING",
                )
        except Exception as exc:
            raise ConfigError(
                f"task {task}: funasr could not build emotion2vec from {folder}: {type(exc).__name__}: {exc}"
            ) from exc
        self.tokens = tuple(t for t in self.automodel.kwargs["token_list"] if not t.startswith("unuse"))
        self.class_names = tuple(token.split("/")[-1] for token in self.tokens)
        self.device = device
        self.source = model_source(model, revision, folder)

    def scores(self, clips: list[np.ndarray]) -> list[np.ndarray | Exception]:
        out: list[np.ndarray | Exception] = []
        for clip in clips:
            try:
                with _global_state_kept():
                    result = self.automodel.generate(
                        clip, fs=self.sample_rate, granularity="utterance", extract_embedding=False,
                        disable_pbar=True,
                    )[0]
                if tuple(result["labels"]) != self.tokens:
                    raise ValueError(f"expected classes {list(self.tokens)}, found {result['labels']}")
                out.append(np.asarray(result["scores"], dtype=np.float64))
            except Exception as exc:  # recorded for this clip only
                out.append(exc)
        return out

    def info(self) -> dict:
        return {
            "backend": "funasr emotion2vec",
            **self.source,
            "funasr": package_version("funasr"),
            "torch": package_version("torch"),
            "sample_rate": self.sample_rate,
            "device": self.device,
            "scores": "softmax probabilities (utterance granularity)",
        }

    def describe(self) -> str:
        return f"funasr=={package_version('funasr')} emotion2vec {describe_source(self.source)}, {self.sample_rate} Hz"


class EmotionTask(ClassificationTask):
    """Emotion accuracy and agreement of reconstruction vs reference (speech items).

    ``backend``: ``transformers`` or ``emotion2vec``; ``model``: hub id or
    local folder; ``revision``: hub revision (None: default branch);
    ``label_map``: model class -> dataset label; ``labels``: candidate
    labels (None: the distinct labels of ``dataset``'s speech items);
    ``restrict_to_labels``: predict only classes mapping to a candidate;
    ``device``: ``auto`` (cuda when available), ``cpu``, ``cuda``, ...
    """

    name = "emotion"
    extra = EXTRA
    backends = ("transformers", "emotion2vec")

    def __init__(
        self,
        backend: str = "transformers",
        model: str = "superb/wav2vec2-base-superb-er",
        revision: str | None = None,
        label_map: Mapping[str, str] | None = None,
        labels: Iterable[str] | None = None,
        dataset: Dataset | None = None,
        restrict_to_labels: bool = True,
        device: str = "auto",
    ):
        super().__init__(
            backend=backend, model=model, revision=revision, label_map=label_map, labels=labels,
            dataset=dataset, restrict_to_labels=restrict_to_labels, device=device, domains=SPEECH,
        )

    def load_classifier(self, device: str) -> Classifier:
        if self.backend == "emotion2vec":
            return Emotion2vecClassifier(self.model, self.revision, device, self.name)
        return TransformersAudioClassifier(self.model, self.revision, device, self.name, EXTRA)
