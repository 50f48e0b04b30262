"""The ``signal`` task: reference-based signal metrics of a reconstruction.

Speech metrics (items of the "speech" domain only; absent on music and
general audio):

- ``pesq_wb``: PESQ wide-band, ITU-T P.862.2, at 16000 Hz, MOS-LQO.
- ``pesq_nb``: PESQ narrow-band, ITU-T P.862 with the P.862.1 MOS-LQO
  mapping, at 8000 Hz.
- ``stoi``: STOI (Taal et al. 2011), 0-1 in practice, at 10000 Hz, the rate pystoi
  works at, so pystoi does no resampling of its own.

Computation: both signals are downmixed to mono (``Audio.mono``, the mean
over channels), then resampled once per rate per item with the project's one
resampler (``codecbench.audio.resample``, soxr VHQ), then handed to the
reference packages ``pesq`` and ``pystoi`` unchanged, so values equal
``pesq.pesq(16000, ref16k, deg16k, "wb")``, ``pesq.pesq(8000, ref8k, deg8k,
"nb")`` and ``pystoi.stoi(ref10k, deg10k, 10000)`` on those arrays.

Failures are recorded, never turned into numbers: silent or non-finite
input, pesq's ``NoUtterancesError`` / ``BufferTooShortError``, and clips too
short for STOI's 30-frame window (pystoi warns and returns 1e-5 there; this
module records a failure instead).

Adding a metric to this task is one function ``(SignalPair) -> float`` plus
one :class:`SignalMetric` declaration in ``SIGNAL_METRICS``.
"""

from __future__ import annotations

import copy
import importlib
import math
import warnings
from dataclasses import dataclass
from functools import partial
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Callable, Iterable

import numpy as np

from codecbench.audio import Audio, check_signal, resample, resampler_info
from codecbench.errors import AudioError, ConfigError, missing_extra
from codecbench.tasks.base import Metric, MetricFailure, Task, TaskRow

if TYPE_CHECKING:
    from types import ModuleType

    from codecbench.datasets.base import Item

#: pip extra that installs this task's evaluators.
EXTRA = "signal"

#: domains the speech metrics apply to.
SPEECH = ("speech",)

PESQ_WB_RATE = 16000  # Hz, P.862.2
PESQ_NB_RATE = 8000  # Hz, P.862 / P.862.1
STOI_RATE = 10000  # Hz, pystoi's internal rate (pystoi.stoi.FS)

#: frames (256-sample windows, 50% overlap, after silent-frame removal) STOI needs.
STOI_MIN_FRAMES = 30


# -- provenance ---------------------------------------------------------------------


def package_version(package: str) -> str:
    """Installed version of ``package``, read now; missing_extra error when not installed."""
    try:
        return version(package)
    except PackageNotFoundError as exc:
        raise missing_extra(package, EXTRA) from exc


def import_evaluator(module: str, package: str) -> ModuleType:
    """Import an evaluator package lazily; missing_extra error when not installed."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise missing_extra(package, EXTRA) from exc


@dataclass(frozen=True)
class Evaluator:
    """Who computes a metric: the package (version read at run time), standard, mode and rate (Hz)."""

    package: str
    standard: str
    mode: str
    sample_rate: int

    def info(self) -> dict:
        """Provenance as stored in run.json; raises missing_extra when the package is absent."""
        import_evaluator(self.package, self.package)
        return {
            "package": self.package,
            "version": package_version(self.package),
            "standard": self.standard,
            "mode": self.mode,
            "sample_rate": self.sample_rate,
            "downmix": "mean over channels",
            "resampler": resampler_info(),
        }

    def describe(self) -> str:
        """One line, e.g. ``pesq==0.0.4 (ITU-T P.862.2, mode wb, 16000 Hz)``."""
        return (
            f"{self.package}=={package_version(self.package)} "
            f"({self.standard}, mode {self.mode}, {self.sample_rate} Hz)"
        )


# -- the signals of one item --------------------------------------------------------


class SignalPair:
    """Reference and reconstruction of one item, as mono float32 arrays per rate.

    Each signal is downmixed once and resampled at most once per rate (soxr
    VHQ, on first request). Before any array is handed out, both signals are
    checked to be non-empty, finite and not all-silent (AudioError naming the
    item otherwise), so such input becomes a recorded failure, not a score.
    """

    def __init__(self, reference: Audio, reconstruction: Audio, item_id: str):
        if reference.sample_rate != reconstruction.sample_rate:
            raise AudioError(
                f"item {item_id!r}: expected reference and reconstruction at the same rate, "
                f"found {reference.sample_rate} Hz and {reconstruction.sample_rate} Hz"
            )
        self.item_id = item_id
        self.reference = reference.mono()
        self.reconstruction = reconstruction.mono()
        self._checked = False
        self._by_rate: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def mono_at(self, sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
        """``(reference, reconstruction)`` as 1-D float32 arrays at ``sample_rate`` Hz."""
        if not self._checked:
            check_signal(self.reference, f"reference of item {self.item_id!r}")
            check_signal(self.reconstruction, f"reconstruction of item {self.item_id!r}")
            self._checked = True
        if sample_rate not in self._by_rate:
            self._by_rate[sample_rate] = (
                resample(self.reference, sample_rate).samples[0],
                resample(self.reconstruction, sample_rate).samples[0],
            )
        return self._by_rate[sample_rate]


def _seconds(samples: np.ndarray, sample_rate: int) -> str:
    return f"{samples.size / sample_rate:.3f} s"


# -- metric functions ---------------------------------------------------------------


def _pesq(pair: SignalPair, sample_rate: int, mode: str) -> float:
    """pesq.pesq on the pair at ``sample_rate``; pesq's errors become MetricFailure with the reason."""
    pesq = import_evaluator("pesq", "pesq")
    reference, reconstruction = pair.mono_at(sample_rate)
    try:
        return float(pesq.pesq(sample_rate, reference, reconstruction, mode))
    except pesq.PesqError as exc:
        reason = exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        raise MetricFailure(
            f"pesq ({mode}) raised {type(exc).__name__}: {reason} (reference "
            f"{_seconds(reference, sample_rate)}, reconstruction {_seconds(reconstruction, sample_rate)} "
            f"at {sample_rate} Hz)"
        ) from exc


def pesq_wb(pair: SignalPair) -> float:
    """PESQ wide-band (P.862.2) at 16000 Hz, MOS-LQO in about 1.01-4.64."""
    return _pesq(pair, PESQ_WB_RATE, "wb")


def pesq_nb(pair: SignalPair) -> float:
    """PESQ narrow-band (P.862, P.862.1 mapping) at 8000 Hz, MOS-LQO in about 1.00-4.55."""
    return _pesq(pair, PESQ_NB_RATE, "nb")


def stoi(pair: SignalPair) -> float:
    """STOI at 10000 Hz, 0-1 in practice, within [-1, 1] (higher is more intelligible).

    pystoi returns 1e-5 with a RuntimeWarning when fewer than 30 non-silent
    frames remain; that is raised here as a MetricFailure instead. (The
    warning is caught with ``warnings.catch_warnings``, which is process-wide:
    score items from one thread per process.)
    """
    pystoi = import_evaluator("pystoi", "pystoi")
    reference, reconstruction = pair.mono_at(STOI_RATE)
    if reference.shape != reconstruction.shape:
        raise MetricFailure(
            f"stoi: expected reference and reconstruction of equal length, found "
            f"{reference.size} and {reconstruction.size} samples at {STOI_RATE} Hz"
        )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        value = float(pystoi.stoi(reference, reconstruction, STOI_RATE))
    too_short = False
    for warning in caught:
        if issubclass(warning.category, RuntimeWarning) and "Not enough STFT frames" in str(warning.message):
            too_short = True
        else:  # not ours to swallow
            warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
    if too_short:
        raise MetricFailure(
            f"stoi: expected at least {STOI_MIN_FRAMES} non-silent STFT frames, found fewer "
            f"(reference {_seconds(reference, STOI_RATE)} at {STOI_RATE} Hz); pystoi would return 1e-5"
        )
    return value


# -- declarations -------------------------------------------------------------------

# pesq 0.0.4's raw P.862 score is 4.5 - 0.1 * d - 0.0309 * a, with the disturbances d and
# a averages of per-frame values capped at 45, so it lies in [4.5 - 45 * 0.1309, 4.5]
# (not the nominal [-0.5, 4.5]: measured pesq_wb 1.025 on speech vs. loud noise).
_PESQ_RAW_RANGE = (4.5 - 45 * (0.1 + 0.0309), 4.5)


def _mos_lqo_range(slope: float, offset: float) -> tuple[float, float]:
    """Range of pesq's mapping 0.999 + 4 / (1 + exp(-slope * raw + offset)), rounded outward to 1e-3."""
    low, high = (0.999 + 4.0 / (1.0 + math.exp(-slope * raw + offset)) for raw in _PESQ_RAW_RANGE)
    return math.floor(low * 1000) / 1000, math.ceil(high * 1000) / 1000


PESQ_WB_RANGE = _mos_lqo_range(1.3669, 3.8224)  # P.862.2 mapping: (1.012, 4.644)
PESQ_NB_RANGE = _mos_lqo_range(1.4945, 4.6607)  # P.862.1 mapping: (1.003, 4.549)

#: STOI is a mean of correlation coefficients; measured -0.020 on speech vs. an envelope-inverted copy.
STOI_RANGE = (-1.0, 1.0)


@dataclass(frozen=True)
class SignalMetric:
    """One metric of this task: its declared facts and the function that computes it.

    ``declare()`` reads the evaluator package's version at run time, so it is
    called when a task is built, not at import.
    """

    name: str
    compute: Callable[[SignalPair], float]
    evaluator: Evaluator
    unit: str
    higher_is_better: bool
    range: tuple[float, float]
    description: str
    domains: tuple[str, ...] | None

    def declare(self) -> Metric:
        return Metric(
            name=self.name,
            unit=self.unit,
            higher_is_better=self.higher_is_better,
            range=self.range,
            evaluator=self.evaluator.describe(),
            description=self.description,
            domains=self.domains,
            sample_rate=self.evaluator.sample_rate,
        )


SIGNAL_METRICS: tuple[SignalMetric, ...] = (
    SignalMetric(
        name="pesq_wb",
        compute=pesq_wb,
        evaluator=Evaluator("pesq", "ITU-T P.862.2 wide-band", "wb", PESQ_WB_RATE),
        unit="MOS-LQO",
        higher_is_better=True,
        range=PESQ_WB_RANGE,
        description="Wide-band PESQ (P.862.2) of the mono downmix at 16 kHz; 4.64 is transparent.",
        domains=SPEECH,
    ),
    SignalMetric(
        name="pesq_nb",
        compute=pesq_nb,
        evaluator=Evaluator("pesq", "ITU-T P.862 narrow-band, P.862.1 mapping", "nb", PESQ_NB_RATE),
        unit="MOS-LQO",
        higher_is_better=True,
        range=PESQ_NB_RANGE,
        description="Narrow-band PESQ (P.862 with P.862.1 mapping) of the mono downmix at 8 kHz; 4.55 is transparent.",
        domains=SPEECH,
    ),
    SignalMetric(
        name="stoi",
        compute=stoi,
        evaluator=Evaluator("pystoi", "STOI (Taal et al. 2011)", "classic (extended=False)", STOI_RATE),
        unit="score",
        higher_is_better=True,
        # a mean of correlation coefficients: 0-1 in practice, slightly negative on adversarial input
        range=STOI_RANGE,
        description="Short-time objective intelligibility of the mono downmix at 10 kHz; 1 is identical, "
        "0-1 in practice.",
        domains=SPEECH,
    ),
)

METRIC_NAMES: tuple[str, ...] = tuple(spec.name for spec in SIGNAL_METRICS)


def _select(names: Iterable[str] | str | None) -> tuple[SignalMetric, ...]:
    """The declared metrics named in ``names`` (None: all), in the order given."""
    if names is None:
        return SIGNAL_METRICS
    names = [names] if isinstance(names, str) else [str(name) for name in names]
    by_name = {spec.name: spec for spec in SIGNAL_METRICS}
    unknown = [name for name in names if name not in by_name]
    if unknown:
        raise ConfigError(
            f"task signal: unknown metric {', '.join(map(repr, unknown))}; "
            f"expected names from: {', '.join(METRIC_NAMES)}"
        )
    if not names:
        raise ConfigError(f"task signal: expected at least one metric from: {', '.join(METRIC_NAMES)}; found none")
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ConfigError(f"task signal: expected each metric once, found repeated {', '.join(repeated)}")
    return tuple(by_name[name] for name in names)


# -- the task -----------------------------------------------------------------------


class SignalTask(Task):
    """PESQ (wide-band, narrow-band) and STOI against the reference, via the reference packages.

    ``metrics``: names to compute, from ``METRIC_NAMES`` (default: all).
    Building the task imports the evaluator packages and reads their versions,
    so a missing package fails here (naming the pip extra), not on every item.
    """

    name = "signal"

    def __init__(self, metrics: Iterable[str] | str | None = None):
        self._specs = _select(metrics)
        self._evaluators = {spec.name: spec.evaluator.info() for spec in self._specs}
        self._metrics = tuple(spec.declare() for spec in self._specs)

    @property
    def metrics(self) -> tuple[Metric, ...]:
        return self._metrics

    def params(self) -> dict:
        return {"metrics": [spec.name for spec in self._specs]}

    def evaluator_info(self) -> dict:
        """Per metric: package, version, standard, mode, sample rate, downmix and resampler."""
        return copy.deepcopy(self._evaluators)

    def score(self, reference: Audio, reconstruction: Audio, item: Item) -> TaskRow:
        """Values of the metrics that apply to ``item.domain``; failures with their reasons."""
        pair = SignalPair(reference, reconstruction, item.id)
        return self.compute_metrics(item, {spec.name: partial(spec.compute, pair) for spec in self._specs})
