"""What the classification tasks share (``emotion``, ``audio_events``).

A classifier (:class:`Classifier`) scores each clip over its classes; a
:class:`LabelSpace` turns the scores into a dataset label; the task
(:class:`ClassificationTask`) predicts the label of the reference and of
the reconstruction of each item and scores the pair. Per item, 1.0 or 0.0:

- ``accuracy``: the prediction on the reconstruction is the item's label;
- ``accuracy_ref``: the prediction on the reference is the item's label;
- ``accuracy_delta``: ``accuracy - accuracy_ref`` of the item (1, 0 or -1);
- ``agreement``: the predictions on reconstruction and reference are equal.

All four are per-item metrics (mean with a 95% bootstrap CI over items, from
the base class): the mean of 0/1 values is the share of items, exactly the
corpus accuracy, and per-item values give the CI, the per-domain split and a
paired ``accuracy_delta`` for free. Items without a label get ``agreement``
only; an item whose label no model class maps to gets the three accuracy
metrics recorded as failures (the model could never be right on it: usually
a missing ``label_map`` entry), not counted as wrong.

Labels: a model's class names and a dataset's labels may be spelled
differently. They are compared after :func:`normalize_label` (case-folded,
``_`` and ``-`` as spaces, whitespace collapsed: ``"Camera_shutter"`` equals
``"camera shutter"``), and ``label_map`` maps model classes to dataset labels
(``{"neu": "neutral"}``; several classes may map to one label). The
candidate labels are the dataset's label set: an explicit ``labels`` list,
or every distinct label of the dataset's items in the task's domains. With
``restrict_to_labels`` the prediction is the best-scoring class among those
that map to a candidate (a 527-class AudioSet model evaluated on ESC-50's 50
classes); a reported prediction is spelled as the dataset spells it.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Iterable, Mapping, Sequence

import numpy as np

from codecbench.audio import Audio, check_signal, resample, resampler_info
from codecbench.errors import CodecbenchError, ConfigError
from codecbench.tasks.base import Metric, MetricFailure, Task, TaskRow

if TYPE_CHECKING:
    from codecbench.datasets.base import Dataset, Item

log = logging.getLogger("codecbench")

#: metric names, in the order they are declared.
METRIC_NAMES = ("accuracy", "accuracy_ref", "accuracy_delta", "agreement")

#: how labels are compared (recorded in provenance).
NORMALISATION = "case-folded; '_' and '-' read as spaces; whitespace collapsed"


# -- labels -------------------------------------------------------------------------


def normalize_label(label: str) -> str:
    """``label`` as compared: case-folded, ``_``/``-`` as spaces, whitespace collapsed."""
    return " ".join(str(label).casefold().replace("_", " ").replace("-", " ").split())


def _text_list(values, what: str) -> list[str]:
    """A list of non-empty strings from a config value; ConfigError otherwise."""
    if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
        raise ConfigError(f"{what}: expected a list of names, found {values!r}")
    out = [str(value) for value in values]
    empty = [value for value in out if not value.strip()]
    if empty:
        raise ConfigError(f"{what}: expected non-empty names, found {out!r}")
    return out


def check_label_map(label_map: Mapping | None, task: str) -> dict[str, str]:
    """``label_map`` (model class -> dataset label) as a plain dict of strings."""
    if label_map is None:
        return {}
    if not isinstance(label_map, Mapping):
        raise ConfigError(
            f"task {task}: label_map: expected a mapping of model class to dataset label, found {label_map!r}"
        )
    return {str(key): str(value) for key, value in label_map.items()}


def candidate_labels(
    labels: Iterable[str] | None, dataset: Dataset | None, domains: Sequence[str], task: str
) -> tuple[tuple[str, ...], str | None]:
    """The candidate labels and where they came from (``"config"``, ``"dataset"`` or None).

    ``labels`` (explicit, kept in the order given) wins over ``dataset``,
    whose distinct item labels in ``domains`` are taken sorted by their normalised form.
    Labels equal after normalisation count once (the first spelling is kept).
    """
    if labels is not None:
        found, source = _text_list(labels, f"task {task}: labels"), "config"
        if not found:
            raise ConfigError(f"task {task}: labels: expected at least one label (or null), found []")
    elif dataset is not None:
        found = sorted(
            {item.label for item in dataset if item.label is not None and item.domain in domains},
            key=lambda label: (normalize_label(label), label),
        )
        source = "dataset"
    else:
        return (), None
    unique: dict[str, str] = {}
    for label in found:
        unique.setdefault(normalize_label(label), label)
    return tuple(unique.values()), source


class LabelSpace:
    """Maps a model's class scores to a dataset label.

    ``class_names``: the model's classes, in score order. ``label_map``:
    model class -> dataset label (keys compared after normalisation; keys
    that name no class are ignored, with a warning). ``candidates``: the
    dataset's labels (may be empty). ``restrict``: predict only classes
    that map to a candidate (ignored without candidates).
    """

    def __init__(
        self,
        class_names: Sequence[str],
        label_map: Mapping[str, str],
        candidates: Sequence[str],
        restrict: bool,
        task: str,
    ):
        self.task = task
        self.class_names = tuple(str(name) for name in class_names)
        mapping = {normalize_label(key): value for key, value in label_map.items()}
        classes = {normalize_label(name) for name in self.class_names}
        self.unused_map_keys = tuple(key for key in label_map if normalize_label(key) not in classes)
        if self.unused_map_keys:
            log.warning("task %s: label_map keys that name no class of the model, ignored: %s",
                        task, ", ".join(self.unused_map_keys))
        spelling = {normalize_label(label): label for label in candidates}
        mapped = [mapping.get(normalize_label(name), name) for name in self.class_names]
        #: the label reported for each class: the dataset's spelling when it is a candidate.
        self.labels = tuple(spelling.get(normalize_label(label), label) for label in mapped)
        self._known = {normalize_label(label) for label in self.labels}
        self.restricted = bool(restrict and candidates)
        if self.restricted:
            self.allowed = np.array([normalize_label(label) in spelling for label in self.labels])
            if not self.allowed.any():
                raise ConfigError(
                    f"task {task}: none of the model's {len(self.class_names)} classes maps to a candidate label "
                    f"(expected label_map entries or labels that match; classes: "
                    f"{', '.join(self.class_names[:20])}{' ...' if len(self.class_names) > 20 else ''}; "
                    f"candidates: {', '.join(candidates)})"
                )
        else:
            self.allowed = np.ones(len(self.class_names), dtype=bool)
        #: candidates that no class maps to (items with these labels get failed accuracy metrics).
        self.unreachable = tuple(label for label in candidates if normalize_label(label) not in self._known)

    def knows(self, label: str) -> bool:
        """Whether some class maps to ``label``, so a prediction can equal it."""
        return normalize_label(label) in self._known

    def predict(self, scores: np.ndarray) -> str:
        """The label of the best-scoring allowed class (first one on ties)."""
        scores = np.asarray(scores, dtype=np.float64).reshape(-1)
        if scores.size != len(self.class_names):
            raise CodecbenchError(
                f"task {self.task}: expected {len(self.class_names)} class scores, found {scores.size}"
            )
        allowed = scores[self.allowed]
        if not np.all(np.isfinite(allowed)):
            raise CodecbenchError(f"task {self.task}: expected finite class scores, found {allowed.tolist()[:8]}")
        return self.labels[int(np.flatnonzero(self.allowed)[int(np.argmax(allowed))])]

    def info(self) -> dict:
        return {
            "classes": list(self.class_names),
            "class_labels": list(self.labels),
            "restricted_to_candidates": self.restricted,
            "unreachable_candidates": list(self.unreachable),
            "unused_label_map_keys": list(self.unused_map_keys),
            "normalisation": NORMALISATION,
        }


# -- metrics ------------------------------------------------------------------------


def declare_metrics(evaluator: str, domains: Sequence[str], sample_rate: int) -> tuple[Metric, ...]:
    """The four per-item metrics of a classification task, computed by ``evaluator`` at ``sample_rate`` Hz."""
    common = {"evaluator": evaluator, "domains": tuple(domains), "sample_rate": sample_rate}
    return (
        Metric("accuracy", "fraction", True, (0.0, 1.0), description=(
            "Share of labelled items whose reconstruction is classified as the item's label (1 or 0 per item)."
        ), **common),
        Metric("accuracy_ref", "fraction", True, (0.0, 1.0), description=(
            "Share of labelled items whose reference is classified as the item's label: the classifier's own "
            "accuracy, the ceiling for accuracy (context, the same for every codec)."
        ), **common),
        Metric("accuracy_delta", "fraction", True, (-1.0, 1.0), description=(
            "accuracy - accuracy_ref, paired per item (1, 0 or -1); 0: the codec kept every label, negative: "
            "it cost correct classifications."
        ), **common),
        Metric("agreement", "fraction", True, (0.0, 1.0), description=(
            "Share of items (labelled or not) whose reconstruction gets the same prediction as the reference; "
            "1 is transparent to the classifier."
        ), **common),
    )


def _fail(reason: str):
    def raise_failure() -> float:
        raise MetricFailure(reason)

    return raise_failure


def score_predictions(
    task: Task, space: LabelSpace, item: Item, prediction: str, prediction_ref: str
) -> TaskRow:
    """The row of one item from its two predictions (extra: label and both predictions)."""
    functions = {"agreement": lambda: float(prediction == prediction_ref)}
    if item.label is not None:
        if space.knows(item.label):
            truth = normalize_label(item.label)
            correct = float(normalize_label(prediction) == truth)
            correct_ref = float(normalize_label(prediction_ref) == truth)
            functions |= {
                "accuracy": lambda: correct,
                "accuracy_ref": lambda: correct_ref,
                "accuracy_delta": lambda: correct - correct_ref,
            }
        else:
            reason = (
                f"label {item.label!r} of item {item.id!r}: expected a label some model class maps to "
                f"(add it to label_map), found none among {len(set(space.labels))} labels"
            )
            functions |= dict.fromkeys(("accuracy", "accuracy_ref", "accuracy_delta"), _fail(reason))
    row = task.compute_metrics(item, functions)
    row.extra = {"label": item.label, "prediction": prediction, "prediction_ref": prediction_ref}
    return row


# -- classifiers --------------------------------------------------------------------


class Classifier(ABC):
    """A model that scores mono clips at ``sample_rate`` Hz over ``class_names``.

    Built once per task (the model loads once); ``scores`` takes a batch.
    """

    #: Hz; clips are resampled to this rate before ``scores``.
    sample_rate: int
    #: the model's classes, in score order.
    class_names: tuple[str, ...]

    @abstractmethod
    def scores(self, clips: list[np.ndarray]) -> list[np.ndarray | Exception]:
        """Per clip (1-D float32 at ``sample_rate``): its class scores (higher is likelier), or the error."""

    @abstractmethod
    def info(self) -> dict:
        """Provenance: backend, model id or folder, revision, weight hashes, package versions, rate."""

    @abstractmethod
    def describe(self) -> str:
        """One line naming the exact evaluator, for the metric cards."""


# -- the task -----------------------------------------------------------------------


class ClassificationTask(Task):
    """Predicts the label of reference and reconstruction and scores the pair (see the module docstring).

    Subclasses set ``name``, ``extra`` and ``backends`` and build the
    classifier in ``load_classifier``. The model is loaded once, on first
    use (``metrics``, ``evaluator_info`` or scoring), so building the task
    (and composing its config) needs no download; a model that cannot be
    loaded fails the run before any item is scored.
    """

    #: pip extra that installs the task's evaluators.
    extra: str = ""
    #: backend names this task accepts.
    backends: tuple[str, ...] = ()

    def __init__(
        self,
        *,
        backend: str,
        model: str,
        revision: str | None,
        label_map: Mapping[str, str] | None,
        labels: Iterable[str] | None,
        dataset: Dataset | None,
        restrict_to_labels: bool,
        device: str,
        domains: Sequence[str],
    ):
        from codecbench.datasets.base import DOMAINS

        if backend not in self.backends:
            raise ConfigError(
                f"task {self.name}: backend: expected one of {', '.join(self.backends)}, found {backend!r}"
            )
        domains = _text_list(domains, f"task {self.name}: domains")
        unknown = [d for d in domains if d not in DOMAINS]
        if unknown or not domains:
            raise ConfigError(f"task {self.name}: domains: expected some of {', '.join(DOMAINS)}, found {domains}")
        if not str(model).strip():
            raise ConfigError(f"task {self.name}: model: expected a hub id or a local folder, found {model!r}")
        self.backend = str(backend)
        self.model = str(model)
        self.revision = None if revision is None else str(revision)
        self.domains = tuple(domains)
        self.label_map = check_label_map(label_map, self.name)
        self.candidates, self.labels_from = candidate_labels(labels, dataset, self.domains, self.name)
        self.restrict_to_labels = bool(restrict_to_labels)
        self.device = str(device)
        self._loaded: tuple[Classifier, LabelSpace, tuple[Metric, ...]] | None = None

    def bind_dataset(self, dataset: Dataset) -> None:
        """Take the candidate labels from the run's dataset, unless ``labels`` set them explicitly."""
        if self.labels_from != "config":
            self.candidates, self.labels_from = candidate_labels(None, dataset, self.domains, self.name)
            self._loaded = None  # the label space depends on the candidates

    # -- loading ----------------------------------------------------------------------

    @abstractmethod
    def load_classifier(self, device: str) -> Classifier:
        """Build the configured backend's classifier on ``device`` (the model loads here)."""

    def resolved_device(self) -> str:
        """``device``, with ``auto`` resolved to ``cuda`` when available, else ``cpu``."""
        if self.device != "auto":
            return self.device
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"

    def _load(self) -> tuple[Classifier, LabelSpace, tuple[Metric, ...]]:
        if self._loaded is None:
            classifier = self.load_classifier(self.resolved_device())
            space = LabelSpace(
                classifier.class_names, self.label_map, self.candidates, self.restrict_to_labels, self.name
            )
            metrics = declare_metrics(classifier.describe(), self.domains, classifier.sample_rate)
            self._loaded = (classifier, space, metrics)
        return self._loaded

    @property
    def classifier(self) -> Classifier:
        return self._load()[0]

    @property
    def label_space(self) -> LabelSpace:
        return self._load()[1]

    @property
    def metrics(self) -> tuple[Metric, ...]:
        return self._load()[2]

    # -- provenance ---------------------------------------------------------------------

    def params(self) -> dict:
        return {
            "backend": self.backend,
            "model": self.model,
            "revision": self.revision,
            "device": self.device,
            "label_map": dict(self.label_map),
            "labels": list(self.candidates),
            "labels_from": self.labels_from,
            "restrict_to_labels": self.restrict_to_labels,
            "domains": list(self.domains),
        }

    def evaluator_info(self) -> dict:
        """The classifier's provenance, the label space, downmix and resampler."""
        classifier, space, _ = self._load()
        return {
            "classifier": classifier.info(),
            "labels": {
                "candidates": list(self.candidates),
                "from": self.labels_from,
                "label_map": dict(self.label_map),
                **space.info(),
            },
            "downmix": "mean over channels",
            "resampler": resampler_info(),
        }

    # -- scoring ------------------------------------------------------------------------

    def score(self, reference: Audio, reconstruction: Audio, item: Item) -> TaskRow:
        result = self.score_batch([(reference, reconstruction, item)])[0]
        if isinstance(result, Exception):
            raise result
        return result

    def _clip(self, audio: Audio, item: Item, side: str, sample_rate: int) -> np.ndarray:
        """Mono float32 at ``sample_rate`` Hz; AudioError naming the item for empty or non-finite audio."""
        check_signal(audio, f"{side} of item {item.id!r}", allow_silence=True)
        return resample(audio.mono(), sample_rate).samples[0]

    def score_batch(self, batch: list[tuple[Audio, Audio, Item]]) -> list[TaskRow | Exception]:
        """Classify every reference and reconstruction of the batch in one call to the classifier."""
        classifier, space, _ = self._load()
        results: list[TaskRow | Exception] = [TaskRow() for _ in batch]
        todo, clips = [], []
        for index, (reference, reconstruction, item) in enumerate(batch):
            if item.domain not in self.domains:
                continue  # no metric applies: an empty row, as for any task on another domain
            try:
                pair = [self._clip(audio, item, side, classifier.sample_rate)
                        for audio, side in ((reference, "reference"), (reconstruction, "reconstruction"))]
            except Exception as exc:
                results[index] = exc
                continue
            todo.append(index)
            clips += pair
        scores = classifier.scores(clips) if clips else []
        for position, index in enumerate(todo):
            item = batch[index][2]
            rate, ref, rec = classifier.sample_rate, 2 * position, 2 * position + 1
            try:
                prediction_ref = self._predict(space, scores[ref], item, "reference", clips[ref], rate)
                prediction = self._predict(space, scores[rec], item, "reconstruction", clips[rec], rate)
                results[index] = score_predictions(self, space, item, prediction, prediction_ref)
            except Exception as exc:
                results[index] = exc
        return results

    def _predict(self, space: LabelSpace, scores, item: Item, side: str, clip: np.ndarray, rate: int) -> str:
        if isinstance(scores, Exception):
            raise CodecbenchError(
                f"{self.backend} {self.model!r} on the {side} of item {item.id!r} "
                f"({clip.size / rate:.3f} s at {rate} Hz): {type(scores).__name__}: {scores}"
            ) from scores
        return space.predict(scores)
