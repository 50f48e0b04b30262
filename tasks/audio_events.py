"""The ``audio_events`` task: sound-event classification of the reference and the reconstruction.

Items of the "audio" domain (general sounds: ESC-50, the demo's
freedesktop sounds) and, by default, "music": both models below are trained
on the AudioSet ontology, whose classes include instruments and genres, and
summaries report each domain on its own (``by_domain``). Set ``domains`` to
``[audio]`` to score general sounds only. Metrics (``accuracy``,
``accuracy_ref``, ``accuracy_delta``, ``agreement``) and label handling
(``label_map``, candidate labels, ``restrict_to_labels``) are those of
:mod:`codecbench.tasks.classification`.

Backends (both load the model once per task, on first use):

- ``clap`` (default): zero-shot classification with CLAP through
  transformers (``ClapModel`` + ``ClapProcessor``, e.g.
  ``laion/clap-htsat-unfused``, 48 kHz). The classes are the candidate
  labels, each put into ``template`` (default ``"this is the sound of
  {label}"``) as a phrase: the ``label_map`` keys that map to the label,
  else the label with ``_`` and ``-`` read as spaces (``sea_waves`` -> "this
  is the sound of sea waves"). The text embeddings are computed once, when
  the model loads. A clip's scores are CLAP's ``logits_per_audio``: cosine
  similarity of the audio and text embeddings times ``exp(logit_scale_a)``.
  Clips are featurised one at a time, as transformers' zero-shot pipeline
  does; CLAP's feature extractor crops clips longer than its window (10 s)
  at a random offset, so numpy's global RNG is seeded with ``CLAP_SEED``
  before each clip and restored afterwards: a clip always gets the same crop.
  Candidate labels are required (``labels``, or a dataset with labelled
  items in ``domains``).
- ``transformers``: any supervised audio-classification checkpoint through
  ``AutoModelForAudioClassification``, e.g.
  ``MIT/ast-finetuned-audioset-10-10-0.4593`` (AST, 527 AudioSet classes,
  16 kHz, the first 10.24 s of a clip), with ``label_map`` from the model's
  classes to the dataset's labels (``{"Dog": "dog", "Bark": "dog"}``).

Both signals are downmixed to mono (mean over channels) and resampled to
the model's rate with the project's resampler before the model sees them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterable, Mapping, Sequence

import numpy as np

from codecbench.errors import ConfigError
from codecbench.tasks.classification import ClassificationTask, Classifier, normalize_label
from codecbench.tasks.hf_audio import (
    TransformersAudioClassifier, describe_source, extract, import_package, load_pretrained, model_folder,
    model_source, scores_by_shape, transformers_info,
)

if TYPE_CHECKING:
    from codecbench.datasets.base import Dataset

#: pip extra that installs this task's evaluators.
EXTRA = "audio_events"

#: domains the task applies to by default.
DEFAULT_DOMAINS = ("audio", "music")

#: CLAP prompt; ``{label}`` is replaced by each candidate's phrase.
DEFAULT_TEMPLATE = "this is the sound of {label}"

#: seed of numpy's legacy global RNG before each clip's CLAP features (the crop of long clips).
CLAP_SEED = 0


def check_template(template: str, task: str) -> str:
    """``template`` if it holds ``{label}`` and nothing else to fill; ConfigError otherwise."""
    template = str(template)
    try:
        filled = template.format(label="x")
    except (KeyError, IndexError, ValueError) as exc:
        raise ConfigError(
            f"task {task}: template: expected text with one {{label}} field, found {template!r} ({exc})"
        ) from exc
    if filled == template:
        raise ConfigError(f"task {task}: template: expected a {{label}} field, found none in {template!r}")
    return template


def clap_phrases(candidates: Sequence[str], label_map: Mapping[str, str]) -> tuple[str, ...]:
    """Per candidate label, the phrases for the template: its label_map keys, else the readable label."""
    phrases: list[str] = []
    for label in candidates:
        keys = [key for key, value in label_map.items() if normalize_label(value) == normalize_label(label)]
        phrases += keys or [" ".join(label.replace("_", " ").replace("-", " ").split())]
    return tuple(dict.fromkeys(phrases))


class ClapZeroShotClassifier(Classifier):
    """CLAP zero-shot: audio embedding vs the text embedding of each phrase in the template."""

    def __init__(
        self, model: str, revision: str | None, device: str, phrases: Sequence[str], template: str, task: str
    ):
        transformers = import_package("transformers", "transformers", EXTRA)
        import torch
        import torch.nn.functional as F

        self.processor = load_pretrained(transformers, "ClapProcessor", model, revision, task)
        self.model = load_pretrained(transformers, "ClapModel", model, revision, task)
        self.model.to(device).eval()
        self.device = device
        self.template = template
        self.class_names = tuple(phrases)
        self.sample_rate = int(self.processor.feature_extractor.sampling_rate)
        texts = [template.format(label=phrase) for phrase in phrases]
        tokens = self.processor.tokenizer(texts, padding=True, return_tensors="pt")
        with torch.inference_mode():
            self.text_embeds = F.normalize(
                self._embedding(self.model.get_text_features(**{k: v.to(device) for k, v in tokens.items()})), dim=-1
            )
            self.logit_scale = self.model.logit_scale_a.exp()
        self.source = model_source(model, revision, model_folder(model, revision))
        self._versions = transformers_info(transformers)

    @staticmethod
    def _embedding(output):
        """The projected embedding (transformers 5 returns it as ``pooler_output``, 4.x as the tensor)."""
        return getattr(output, "pooler_output", output)

    def _features(self, clip: np.ndarray):
        state = np.random.get_state()
        np.random.seed(CLAP_SEED)
        try:
            return extract(self.processor.feature_extractor, clip, self.sample_rate)
        finally:
            np.random.set_state(state)

    def _logits(self, inputs: dict):
        import torch.nn.functional as F

        audio = self.model.get_audio_features(**inputs)
        return F.normalize(self._embedding(audio), dim=-1) @ self.text_embeds.T * self.logit_scale

    def scores(self, clips: list[np.ndarray]) -> list[np.ndarray | Exception]:
        return scores_by_shape([self._features(clip) for clip in clips], self._logits, self.device)

    def info(self) -> dict:
        return {
            "backend": "transformers ClapModel zero-shot",
            "architecture": type(self.model).__name__,
            **self.source,
            **self._versions,
            "sample_rate": self.sample_rate,
            "device": self.device,
            "template": self.template,
            "prompts": [self.template.format(label=phrase) for phrase in self.class_names],
            "feature_seed": CLAP_SEED,
            "scores": "logits_per_audio (cosine similarity x exp(logit_scale_a))",
        }

    def describe(self) -> str:
        return (
            f"transformers=={self._versions['transformers']} ClapModel {describe_source(self.source)}, "
            f"{self.sample_rate} Hz, zero-shot over {len(self.class_names)} prompts {self.template!r}"
        )


class AudioEventsTask(ClassificationTask):
    """Sound-event accuracy and agreement of reconstruction vs reference.

    ``backend``: ``clap`` (zero-shot) or ``transformers`` (supervised);
    ``model``: hub id or local folder; ``revision``: hub revision;
    ``template``: CLAP prompt with ``{label}``; ``label_map``: model class
    (CLAP: phrase) -> dataset label; ``labels``: candidate labels (None: the
    distinct labels of ``dataset``'s items in ``domains``);
    ``restrict_to_labels``: predict only classes mapping to a candidate;
    ``device``: ``auto``, ``cpu``, ``cuda``...; ``domains``: item domains scored.
    """

    name = "audio_events"
    extra = EXTRA
    backends = ("clap", "transformers")

    def __init__(
        self,
        backend: str = "clap",
        model: str = "laion/clap-htsat-unfused",
        revision: str | None = None,
        template: str = DEFAULT_TEMPLATE,
        label_map: Mapping[str, str] | None = None,
        labels: Iterable[str] | None = None,
        dataset: Dataset | None = None,
        restrict_to_labels: bool = True,
        device: str = "auto",
        domains: Sequence[str] = DEFAULT_DOMAINS,
    ):
        super().__init__(
            backend=backend, model=model, revision=revision, label_map=label_map, labels=labels,
            dataset=dataset, restrict_to_labels=restrict_to_labels, device=device, domains=domains,
        )
        self.template = check_template(template, self.name)

    def load_classifier(self, device: str) -> Classifier:
        if self.backend == "transformers":
            return TransformersAudioClassifier(self.model, self.revision, device, self.name, EXTRA)
        if not self.candidates:
            raise ConfigError(
                f"task {self.name}: CLAP zero-shot needs candidate labels; found none: set "
                f"task.{self.name}.labels=[...] or use a dataset whose {'/'.join(self.domains)} items carry labels"
            )
        phrases = clap_phrases(self.candidates, self.label_map)
        return ClapZeroShotClassifier(self.model, self.revision, device, phrases, self.template, self.name)

    def params(self) -> dict:
        return {**super().params(), **({"template": self.template} if self.backend == "clap" else {})}
