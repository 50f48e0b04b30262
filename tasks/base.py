"""The task contract.

A task scores one item from ``(reference Audio, reconstruction Audio, Item)``
into a :class:`TaskRow` (metric values plus per-metric failures with their
reasons) and aggregates rows into a summary. Each metric declares what it
measures (:class:`Metric`): unit, range, direction, the domains it applies
to, the sample rate it is computed at and the exact evaluator.

A metric that fails on an item is recorded as a failure with its reason,
never turned into a number. A metric that does not apply to an item's domain
(PESQ on music) is simply absent from that item's row.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterable, Sequence

from codecbench.audio import Audio
from codecbench.errors import CodecbenchError, ConfigError
from codecbench.stats import bootstrap_mean_ci

if TYPE_CHECKING:
    from codecbench.datasets.base import Item, Trial


@dataclass(frozen=True)
class Metric:
    """What one metric measures and who computes it.

    ``range`` is ``(low, high)``; ``None`` at either end means unbounded there.
    ``domains`` lists the item domains it applies to (``None``: all).
    ``sample_rate`` is the rate (Hz) it is computed at (``None``: the item's).
    ``evaluator`` names the implementation, e.g. ``"pesq==0.0.4 (ITU-T P.862.2)"``.
    """

    name: str
    unit: str
    higher_is_better: bool
    range: tuple[float | None, float | None]
    evaluator: str
    description: str
    domains: tuple[str, ...] | None = None
    sample_rate: int | None = None
    kind: str = "per_item"  # "per_item": mean over items; "corpus": computed over the corpus

    def applies_to(self, domain: str | None) -> bool:
        return self.domains is None or domain in self.domains

    def card(self) -> dict:
        """Declared facts, as stored in summary.json and run.json."""
        return {
            "unit": self.unit,
            "higher_is_better": self.higher_is_better,
            "range": list(self.range),
            "evaluator": self.evaluator,
            "sample_rate": self.sample_rate,
            "domains": list(self.domains) if self.domains else None,
            "kind": self.kind,
            "description": self.description,
        }


def select_names(task: str, requested: Iterable[str] | str | None, available: Sequence[str]) -> tuple[str, ...]:
    """The names in ``requested`` (None: all of ``available``), in the order given.

    For a task's ``metrics`` option. Raises ConfigError for unknown, repeated
    or no names, listing the valid ones.
    """
    if requested is None:
        return tuple(available)
    names = [requested] if isinstance(requested, str) else [str(name) for name in requested]
    unknown = [name for name in names if name not in available]
    if unknown:
        raise ConfigError(
            f"task {task}: unknown metric {', '.join(map(repr, unknown))}; "
            f"expected names from: {', '.join(available)}"
        )
    if not names:
        raise ConfigError(f"task {task}: expected at least one metric from: {', '.join(available)}; found none")
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ConfigError(f"task {task}: expected each metric once, found repeated {', '.join(repeated)}")
    return tuple(names)


class MetricFailure(Exception):
    """A metric could not be computed on an item; the message is the recorded reason."""


@dataclass
class TaskRow:
    """One task's result on one item.

    ``values``: metric name -> number; ``failures``: metric name -> reason;
    ``extra``: JSON-serialisable material that corpus metrics aggregate later
    (edit counts, transcripts, embeddings), stored in the row as ``extra``.
    """

    values: dict[str, float] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)
    extra: dict = field(default_factory=dict)


class Task(ABC):
    """Base of every task runner."""

    #: task id, as in conf/task/<name>.yaml and in result rows.
    name: str = "task"

    @property
    @abstractmethod
    def metrics(self) -> tuple[Metric, ...]:
        """The metrics this task reports."""

    @abstractmethod
    def score(self, reference: Audio, reconstruction: Audio, item: Item) -> TaskRow:
        """Score one item. Both audios are at the item's rate and aligned."""

    def score_batch(self, batch: list[tuple[Audio, Audio, Item]]) -> list[TaskRow | Exception]:
        """Score several ``(reference, reconstruction, item)`` at once, for batched inference.

        Returns one TaskRow, or the Exception that item raised, per entry, in order.
        The default scores one at a time; model-based tasks override it.
        """
        results: list[TaskRow | Exception] = []
        for reference, reconstruction, item in batch:
            try:
                results.append(self.score(reference, reconstruction, item))
            except Exception as exc:  # recorded by the pipeline as this item's failure
                results.append(exc)
        return results

    def bind_dataset(self, dataset) -> None:
        """Called once when a run is built, with the run's dataset.

        Tasks that draw something from the dataset (candidate labels) override
        this; the default ignores it.
        """

    def bind(self, codec, codec_id: str) -> None:
        """Called before the items of each codec are scored.

        Tasks that measure the codec itself (its speed, its tokens) keep it
        here; the default ignores it, since most tasks score audio only.
        """

    def evaluator_info(self) -> dict:
        """Provenance of the evaluators (package versions, models, normalisers)."""
        return {m.name: m.evaluator for m in self.metrics}

    def params(self) -> dict:
        return {}

    # -- helpers for subclasses -------------------------------------------------

    def compute_metrics(self, item: Item, functions: dict[str, Callable[..., float]], *args: Any) -> TaskRow:
        """Call ``functions[name](*args)`` for each applicable metric; record exceptions and non-finite
        values as failures.

        ``args`` lets a task hand every metric the same inputs (one item's signals) through functions
        built once, rather than new closures per item.
        """
        row = TaskRow()
        domain = item.domain
        for metric in self.metrics:
            function = functions.get(metric.name)
            if function is None or not metric.applies_to(domain):
                continue
            try:
                value = float(function(*args))
            except Exception as exc:  # every failure is kept, with its reason
                row.failures[metric.name] = f"{type(exc).__name__}: {exc}".strip()
                continue
            if math.isfinite(value):
                row.values[metric.name] = value
            else:
                row.failures[metric.name] = f"non-finite value {value!r}"
        return row

    # -- aggregation -------------------------------------------------------------

    def cards(self) -> dict[str, dict]:
        """Metric name -> declared facts (``Metric.card``), as stored in run.json."""
        return {metric.name: metric.card() for metric in self.metrics}

    @classmethod
    def summarize(
        cls,
        cards: dict[str, dict],
        rows: Iterable[dict],
        domains: dict[str, str | None],
        trials: list[Trial] | None = None,
    ) -> dict:
        """Summary per metric over this task's rows for one codec.

        A classmethod over the metric cards stored in run.json, so a run folder
        can be summarised again without building the task (and loading its
        models). ``rows`` are stored rows (``item``, ``status``, ``values``,
        ``failures``, ``extra``); ``domains`` maps item id to domain;
        ``trials`` are the dataset's verification trials (for corpus metrics
        such as EER; per-item metrics ignore them). Each metric gets an
        overall entry over the items of the domains it applies to (never
        mixing in others) and a ``by_domain`` entry per such domain present.
        A failed row counts as a failure only where the metric applies.
        Per-item metrics get the mean and a 95% bootstrap CI; tasks with corpus
        metrics override this.
        """
        rows = list(rows)
        out = {}
        for name, card in cards.items():
            applicable = [
                row for row in rows if card["domains"] is None or domains.get(row["item"]) in card["domains"]
            ]
            by_domain: dict[str, list[dict]] = {}
            for row in applicable:
                by_domain.setdefault(domains.get(row["item"]) or "unknown", []).append(row)
            out[name] = {
                **cls._mean_entry(name, applicable),
                **card,
                "by_domain": {d: cls._mean_entry(name, r) for d, r in sorted(by_domain.items())},
            }
        return out

    @staticmethod
    def _mean_entry(name: str, rows: list[dict]) -> dict:
        """mean, 95% CI, n and n_failed of one per-item metric over ``rows``."""
        values, failed = [], 0
        for row in rows:
            if row["status"] != "ok" or name in row.get("failures", {}):
                failed += 1
            elif name in row.get("values", {}):
                values.append(row["values"][name])
        mean, low, high = bootstrap_mean_ci(values)
        return {"mean": mean, "ci_low": low, "ci_high": high, "n": len(values), "n_failed": failed}


class CodecBoundTask(Task):
    """A task that measures the codec itself (its speed, its tokens), not only the audio.

    ``bind`` keeps the codec; ``bound_codec`` returns it in ``score``. The
    codec is ``None`` for reconstructions that come without one (a folder of
    files): subclasses record why their codec metrics are missing then. Such a
    task overrides ``Task.bind``, which is how the engine knows to score it in
    the main process, where the codec lives.
    """

    _bound: bool = False
    _codec = None
    _codec_id: str | None = None

    def bind(self, codec, codec_id: str) -> None:
        """Measure ``codec`` (id ``codec_id``) on the items scored from now on (None: no codec)."""
        self._bound, self._codec, self._codec_id = True, codec, codec_id

    def bound_codec(self) -> tuple:
        """``(codec or None, codec id)``; CodecbenchError when ``bind`` was never called."""
        if not self._bound:
            raise CodecbenchError(
                f"task {self.name}: expected a codec bound with bind(codec, codec_id) before score(), found none; "
                "the pipeline binds each codec before scoring its items"
            )
        return self._codec, self._codec_id

