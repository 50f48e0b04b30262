"""The ``quality`` task: non-intrusive quality predictors (DNSMOS, PLCMOS) from speechmos.

Each predictor scores the reference and the reconstruction on their own (no
comparison); every score is reported three ways, for speech items only:

- ``<score>``: the reconstruction's score;
- ``<score>_ref``: the reference's score (the same for every codec; context
  for reading the others, not a ranking);
- ``<score>_delta``: reconstruction minus reference (0: the codec kept the
  predicted quality; negative: it lost some), MOS difference in [-4, 4].

Scores (MOS on the 1-5 scale, higher is better; all at 16000 Hz, the rate
both models take: ``speechmos.dnsmos.SR`` and ``speechmos.plcmos.SR``):

- ``dnsmos_sig``, ``dnsmos_bak``, ``dnsmos_ovrl``: DNSMOS P.835 speech
  signal, background and overall quality (``dnsmos_models/sig_bak_ovr.onnx``
  plus speechmos' polynomial mapping, which caps them at 4.44, 4.52, 4.64);
- ``dnsmos_p808``: DNSMOS P.808 overall MOS (``dnsmos_models/model_v8.onnx``);
- ``plcmos``: PLCMOS v2 (``plcmos_models/plcmos_v2.onnx``), the mean over 15
  random "rater" embeddings. speechmos draws them from numpy's legacy global
  RNG; this task seeds it with ``PLCMOS_SEED`` before each call and restores
  the previous state afterwards, so scores are reproducible and the
  reference and reconstruction are rated by the same raters. (Not
  thread-safe: score items from one thread per process.)

Lowest values measured on adversarial input (speech under white noise at 0
and -20 dB SNR, full-scale noise, sign-clipped speech, impulses): 1.06 OVRL,
1.06 BAK, 1.20 SIG, 2.08 P.808, 1.43 PLCMOS, so the declared 1-5 range holds
in practice; the models' outputs are not clamped.

Computation: both signals are downmixed to mono and resampled once to 16 kHz
(:class:`codecbench.tasks.signal.SignalPair`), then handed unchanged to
speechmos' ``DNSMOS`` and ``PLCMOS`` objects, built once per task (their
ONNX sessions load once), so values equal ``speechmos.dnsmos.run(x, 16000)``
and ``speechmos.plcmos.run(x, 16000)`` (with the seed) on those arrays. A
reference is scored once per item, and once per run: its scores are kept by
content hash, so further codecs reuse them.

Failures are recorded, never turned into numbers: silent or non-finite
input (SignalPair; a silent reconstruction fails the ``_ref`` metrics of
that row too), a clip shorter than ``min_seconds`` (DNSMOS reads 9.01 s
windows and speechmos repeats a shorter clip until it fills one, so a few
milliseconds would still get a number), and the models' own errors (PLCMOS
fails below about 0.1 s).

Samples outside [-1, 1], which speechmos refuses (lossy codecs overshoot on
items that peak at full scale, as the demo item codec2_m1_h01s03 does), are clipped to
[-1, 1] first: the signal a 16-bit PCM file of it would hold, which is what
the reference DNSMOS/PLCMOS scripts read. Values then equal speechmos on
``np.clip(x, -1, 1)``; ``evaluator_info`` records the rule.
"""

from __future__ import annotations

import copy
import hashlib
import importlib
from abc import ABC, abstractmethod
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Iterable

import numpy as np

from codecbench.audio import Audio, resampler_info
from codecbench.errors import CodecbenchError, ConfigError, missing_extra
from codecbench.tasks.base import Metric, MetricFailure, Task, TaskRow
from codecbench.tasks.signal import SignalPair, seconds_text
from codecbench.provenance import file_sha256, package_version
from codecbench.tasks.base import select_names

if TYPE_CHECKING:
    from codecbench.datasets.base import Item

#: pip extra that installs this task's evaluators (speechmos, onnxruntime, librosa).
EXTRA = "quality"

#: domains the predictors apply to: DNSMOS and PLCMOS are speech models.
SPEECH = ("speech",)

#: Hz; the rate DNSMOS and PLCMOS take (speechmos.dnsmos.SR, speechmos.plcmos.SR).
RATE = 16000

#: seed of numpy's legacy global RNG before each PLCMOS call (its 15 rater embeddings).
PLCMOS_SEED = 0

#: seconds; shorter clips are a recorded failure (see the module docstring).
MIN_SECONDS = 1.0

MOS_RANGE = (1.0, 5.0)
DELTA_RANGE = (MOS_RANGE[0] - MOS_RANGE[1], MOS_RANGE[1] - MOS_RANGE[0])

SIDES = ("reference", "reconstruction")


def _import(module: str):
    """Import a speechmos module; a missing package (speechmos or what it imports) names the extra."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        missing = (exc.name or "speechmos").split(".")[0]
        raise missing_extra(missing, EXTRA) from exc


# -- the predictors ------------------------------------------------------------------


class Predictor(ABC):
    """One speechmos model, loaded once: ``predict(samples)`` -> scores by speechmos key.

    ``samples``: mono float32 at 16000 Hz, within [-1, 1].
    """

    name: str
    standard: str
    module: str
    #: model files, relative to the speechmos package folder.
    models: tuple[str, ...]

    def __init__(self) -> None:
        module = _import(self.module)
        if module.SR != RATE:
            raise CodecbenchError(f"{self.module}: expected a model rate of {RATE} Hz, found SR = {module.SR}")
        self._root = Path(module.__file__).resolve().parent
        self._model = self._load(module)

    @abstractmethod
    def _load(self, module):
        """The speechmos model object, its ONNX sessions loaded."""

    @abstractmethod
    def predict(self, samples: np.ndarray) -> dict[str, float]:
        """Scores of one mono 16 kHz signal, by speechmos key."""

    def info(self) -> dict:
        """Provenance: package, model files and their sha256, runtime, rate."""
        import onnxruntime

        return {
            "package": "speechmos",
            "version": package_version("speechmos"),
            "standard": self.standard,
            "models": {name: file_sha256(self._root / name) for name in self.models},
            "runtime": {"package": "onnxruntime", "version": onnxruntime.__version__},
            "sample_rate": RATE,
            "downmix": "mean over channels",
            "resampler": resampler_info(),
            "input_range": "samples clipped to [-1, 1] (as in a 16-bit PCM file) before scoring",
        }


class Dnsmos(Predictor):
    """DNSMOS P.835 (SIG, BAK, OVRL, polynomial-mapped) and P.808, as ``speechmos.dnsmos.run``."""

    name = "dnsmos"
    standard = "DNSMOS P.835 (SIG, BAK, OVRL) and P.808 (Reddy et al. 2021-2022)"
    module = "speechmos.dnsmos"
    models = ("dnsmos_models/sig_bak_ovr.onnx", "dnsmos_models/model_v8.onnx")

    def _load(self, module):
        return module.DNSMOS(str(self._root / self.models[0]), str(self._root / self.models[1]))

    def predict(self, samples: np.ndarray) -> dict[str, float]:
        scores = self._model(samples, RATE, False)  # False: the non-personalised model, as run() does
        return {key: float(scores[key]) for key in ("sig_mos", "bak_mos", "ovrl_mos", "p808_mos")}

    def info(self) -> dict:
        return {
            **super().info(),
            "personalized": False,
            "window_seconds": 9.01,
            "features": {"package": "librosa", "version": package_version("librosa")},  # P.808 mel input
        }


class Plcmos(Predictor):
    """PLCMOS v2, as ``speechmos.plcmos.run`` with numpy's legacy RNG seeded by ``PLCMOS_SEED``."""

    name = "plcmos"
    standard = "PLCMOS v2 (Diener et al., Interspeech 2023)"
    module = "speechmos.plcmos"
    models = ("plcmos_models/plcmos_v2.onnx",)

    def _load(self, module):
        model = module.PLCMOS()
        if Path(model.model_path).resolve() != self._root / self.models[0]:
            raise CodecbenchError(f"speechmos PLCMOS: expected model {self.models[0]}, found {model.model_path}")
        return model

    def predict(self, samples: np.ndarray) -> dict[str, float]:
        state = np.random.get_state()
        np.random.seed(PLCMOS_SEED)
        try:
            return {"plcmos": float(self._model(samples)["plcmos"])}
        finally:
            np.random.set_state(state)

    def info(self) -> dict:
        return {
            **super().info(),
            "rater_embeddings": f"{self._model.embed_rounds} draws of N(0, 1)^64 from numpy's legacy global RNG, "
            f"seeded with {PLCMOS_SEED} before each call (previous state restored)",
            "numpy": np.__version__,
        }


PREDICTORS: dict[str, type[Predictor]] = {"dnsmos": Dnsmos, "plcmos": Plcmos}


# -- the scores and their metrics ------------------------------------------------------


@dataclass(frozen=True)
class Score:
    """One predicted score: its base metric name, predictor, speechmos key and description."""

    name: str
    predictor: str
    key: str
    label: str
    description: str

    #: what each of ``metric_names()`` scores.
    OF: ClassVar[tuple[str, str, str]] = ("reconstruction", "reference", "reconstruction - reference")

    def metric_names(self) -> tuple[str, str, str]:
        """(reconstruction, reference, delta) metric names."""
        return self.name, f"{self.name}_ref", f"{self.name}_delta"


SCORES: tuple[Score, ...] = (
    Score("dnsmos_sig", "dnsmos", "sig_mos", "DNSMOS P.835 SIG", "speech signal quality"),
    Score("dnsmos_bak", "dnsmos", "bak_mos", "DNSMOS P.835 BAK", "background noise quality (5: not noticeable)"),
    Score("dnsmos_ovrl", "dnsmos", "ovrl_mos", "DNSMOS P.835 OVRL", "overall quality"),
    Score("dnsmos_p808", "dnsmos", "p808_mos", "DNSMOS P.808", "overall quality (P.808 ACR)"),
    Score("plcmos", "plcmos", "plcmos", "PLCMOS v2", "quality under packet loss concealment"),
)

SCORE_NAMES: tuple[str, ...] = tuple(score.name for score in SCORES)
METRIC_NAMES: tuple[str, ...] = tuple(name for score in SCORES for name in score.metric_names())


def _declare(score: Score, info: dict) -> tuple[Metric, Metric, Metric]:
    models = ", ".join(f"{name} sha256:{sha[:12]}" for name, sha in info["models"].items())
    evaluator = (
        f"speechmos=={info['version']} {score.label} ({models}, onnxruntime=={info['runtime']['version']}, "
        f"{RATE} Hz)"
    )
    common = {"higher_is_better": True, "evaluator": evaluator, "domains": SPEECH, "sample_rate": RATE}
    name, ref, delta = score.metric_names()
    of_reconstruction = f"{score.label}, {score.description}, of the reconstruction (mono, 16 kHz), 1-5."
    of_reference = f"{score.label}, {score.description}, of the reference: the same for every codec."
    difference = f"{score.label} of the reconstruction minus that of the reference; 0: kept, negative: lost."
    return (
        Metric(name=name, unit="MOS", range=MOS_RANGE, description=of_reconstruction, **common),
        Metric(name=ref, unit="MOS", range=MOS_RANGE, description=of_reference, **common),
        Metric(name=delta, unit="MOS difference", range=DELTA_RANGE, description=difference, **common),
    )


# -- one item --------------------------------------------------------------------------


class _ItemScores:
    """The predictors' scores of one item's two sides, each computed at most once (errors too)."""

    def __init__(self, task: QualityTask, pair: SignalPair):
        self._task = task
        self._pair = pair
        self._done: dict[tuple[str, str], tuple[dict | None, Exception | None]] = {}

    def side(self, predictor: str, side: str) -> dict[str, float]:
        key = (predictor, side)
        if key not in self._done:
            try:
                self._done[key] = (self._compute(predictor, side), None)
            except Exception as exc:  # kept, so each metric of this side records the same reason
                self._done[key] = (None, exc)
        scores, error = self._done[key]
        if error is not None:
            raise error
        return scores

    def value(self, score: Score, side: str) -> float:
        return self.side(score.predictor, side)[score.key]

    def delta(self, score: Score) -> float:
        return self.value(score, "reconstruction") - self.value(score, "reference")

    def _compute(self, predictor: str, side: str) -> dict[str, float]:
        samples = self._pair.mono_at(RATE)[SIDES.index(side)]
        if np.abs(samples).max() > 1.0:  # as a 16-bit PCM file would hold it; speechmos refuses |x| > 1
            samples = np.clip(samples, -1.0, 1.0)
        if samples.size < self._task.min_seconds * RATE:
            raise MetricFailure(
                f"{predictor}: expected at least min_seconds={self._task.min_seconds} s of {side}, found "
                f"{seconds_text(samples, RATE)} at {RATE} Hz (DNSMOS would repeat a short clip to fill its 9.01 s window)"
            )
        return self._task.predict(predictor, samples, side)


# -- the task --------------------------------------------------------------------------


class QualityTask(Task):
    """DNSMOS (P.835 SIG/BAK/OVRL, P.808) and PLCMOS of reference and reconstruction, and their difference.

    ``scores``: base names from ``SCORE_NAMES`` (default: all); each yields
    three metrics (``<score>``, ``<score>_ref``, ``<score>_delta``). Only the
    predictors these need are loaded.
    ``min_seconds``: clips shorter than this (seconds) are recorded failures.
    Building the task loads the ONNX sessions once and reads package versions
    and model hashes; a missing package fails here, naming the pip extra.
    """

    name = "quality"

    def __init__(self, scores: Iterable[str] | str | None = None, min_seconds: float = MIN_SECONDS):
        by_name = {score.name: score for score in SCORES}
        self._scores = tuple(by_name[name] for name in select_names(self.name, scores, SCORE_NAMES))
        self.min_seconds = float(min_seconds)
        if not self.min_seconds >= 0.0:
            raise ConfigError(f"task quality: expected min_seconds >= 0, found {min_seconds!r}")
        needed = dict.fromkeys(score.predictor for score in self._scores)
        self.predictors: dict[str, Predictor] = {name: PREDICTORS[name]() for name in needed}
        infos = {name: {**p.info(), "min_seconds": self.min_seconds} for name, p in self.predictors.items()}
        self._metrics = tuple(m for score in self._scores for m in _declare(score, infos[score.predictor]))
        self._evaluators = {}
        for score in self._scores:
            for metric_name, of in zip(score.metric_names(), Score.OF):
                self._evaluators[metric_name] = {**infos[score.predictor], "score": score.key, "of": of}
        self._reference_scores: dict[tuple[str, str], dict[str, float]] = {}

    @property
    def metrics(self) -> tuple[Metric, ...]:
        return self._metrics

    def params(self) -> dict:
        return {"scores": [score.name for score in self._scores], "min_seconds": self.min_seconds}

    def evaluator_info(self) -> dict:
        """Per metric: speechmos version, model files and sha256, onnxruntime version, rate, seed, score."""
        return copy.deepcopy(self._evaluators)

    def predict(self, predictor: str, samples: np.ndarray, side: str) -> dict[str, float]:
        """One predictor's scores of one side; a reference's are kept by content hash for later codecs."""
        key = None
        if side == "reference":
            key = (predictor, hashlib.sha256(np.ascontiguousarray(samples).tobytes()).hexdigest())
            if key in self._reference_scores:
                return self._reference_scores[key]
        try:
            scores = self.predictors[predictor].predict(samples)
        except Exception as exc:
            raise MetricFailure(
                f"{predictor} on the {side} raised {type(exc).__name__}: {exc} ({seconds_text(samples, RATE)} at {RATE} Hz)"
            ) from exc
        if key is not None:
            self._reference_scores[key] = scores
        return scores

    def score(self, reference: Audio, reconstruction: Audio, item: Item) -> TaskRow:
        """Values of the metrics (speech items only); failures with their reasons."""
        scores = _ItemScores(self, SignalPair(reference, reconstruction, item.id))
        functions = {}
        for score in self._scores:
            name, ref, delta = score.metric_names()
            functions[name] = partial(scores.value, score, "reconstruction")
            functions[ref] = partial(scores.value, score, "reference")
            functions[delta] = partial(scores.delta, score)
        return self.compute_metrics(item, functions)
