"""The regression gate: which metrics may regress, by how much, at what significance.

A gate file is YAML (see ``conf/gate/default.yaml`` and docs/COMPARE.md)::

    alpha: 0.05              # default significance level (0 < alpha < 1)
    max_new_failures: 0      # default: items that may newly fail a gated metric (null: no limit)
    metrics:
      signal.pesq_wb:        # task.metric, as in summary.json
        max_regression: 0.1  # largest allowed regression, in the metric's unit (>= 0)
        max_relative_regression: 0.05  # and/or a fraction of |baseline value| (>= 0)
        alpha: 0.01          # optional, overrides the default
        max_new_failures: 2  # optional, overrides the default

The regression is the change in the worse direction: ``baseline - candidate``
for a metric whose ``higher_is_better`` is true, ``candidate - baseline``
otherwise, over the paired items. The allowed regression is the smaller of
the limits given (each must hold). A metric **fails** the gate when

- its regression is larger than allowed **and** its one-sided p-value of
  "the candidate is worse" is below ``alpha``; or
- more items newly fail it in the candidate than ``max_new_failures``; or
- it has no paired value at all (nothing to check the gate on).

The gate holds when no gated metric fails.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from codecbench.errors import ConfigError

#: default significance level when the gate file sets none.
DEFAULT_ALPHA = 0.05
#: default number of items that may newly fail a gated metric.
DEFAULT_MAX_NEW_FAILURES = 0

_TOP_KEYS = {"alpha", "max_new_failures", "metrics"}
_METRIC_KEYS = {"max_regression", "max_relative_regression", "alpha", "max_new_failures"}


@dataclass(frozen=True)
class MetricGate:
    """The limits of one gated metric (``key`` is ``task.metric``)."""

    key: str
    max_regression: float | None
    max_relative_regression: float | None
    alpha: float
    max_new_failures: int | None

    def allowed(self, baseline: float | None) -> float | None:
        """The largest allowed regression (metric unit) given the baseline value; the smaller limit wins."""
        limits = []
        if self.max_regression is not None:
            limits.append(self.max_regression)
        if self.max_relative_regression is not None and baseline is not None:
            limits.append(self.max_relative_regression * abs(baseline))
        return min(limits) if limits else None

    def describe(self, baseline: float | None) -> str:
        """The allowed regression as the report shows it, e.g. ``0.02 = min(0.02, 0.1 × 0.2512), α 0.05``."""
        allowed = self.allowed(baseline)
        text = "n/a" if allowed is None else f"{allowed:.4g}"
        if self.max_relative_regression is not None:
            relative = f"{self.max_relative_regression:.3g} × {'n/a' if baseline is None else f'{abs(baseline):.4g}'}"
            text += (f" = min({self.max_regression:.4g}, {relative})" if self.max_regression is not None
                     else f" = {relative}")
        return f"{text}, α {self.alpha:g}"


@dataclass(frozen=True)
class Verdict:
    """One gated metric's outcome: ``failed`` and the reasons (empty when it passes)."""

    failed: bool
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class Gate:
    """A loaded gate file: ``path`` (as given) and one :class:`MetricGate` per gated metric."""

    path: str
    metrics: dict[str, MetricGate]

    def judge(self, key: str, higher_is_better: bool, paired) -> Verdict:
        """The verdict on ``paired`` (a :class:`codecbench.leaderboard.paired.Paired`) for metric ``key``."""
        gate = self.metrics[key]
        reasons = []
        if paired.difference is None:
            reasons.append(f"no paired value: {paired.reason}")
        else:
            regression = -paired.difference if higher_is_better else paired.difference
            allowed = gate.allowed(paired.baseline)
            if allowed is not None and regression > allowed and paired.p_worse < gate.alpha:
                reasons.append(
                    f"regression {regression:.4g} > allowed {allowed:.4g} "
                    f"and p {paired.p_worse:.3g} < α {gate.alpha:g}"
                )
        new = paired.new_failures or []
        if gate.max_new_failures is not None and len(new) > gate.max_new_failures:
            reasons.append(f"{len(new)} new failures > allowed {gate.max_new_failures}")
        return Verdict(bool(reasons), tuple(reasons))


def _number(where: str, key: str, value, low: float, high: float | None = None, integer: bool = False):
    """``value`` checked to be a number in [low, high] (an int when ``integer``); ConfigError otherwise."""
    kind = "an integer" if integer else "a number"
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (integer and not isinstance(value, int)):
        raise ConfigError(f"{where}: {key}: expected {kind}, found {value!r}")
    if not math.isfinite(value) or value < low or (high is not None and value > high):
        bounds = f">= {low:g}" if high is None else f"between {low:g} and {high:g}"
        raise ConfigError(f"{where}: {key}: expected {kind} {bounds}, found {value!r}")
    return value


def _alpha(where: str, value) -> float:
    alpha = float(_number(where, "alpha", value, 0.0, 1.0))
    if alpha in (0.0, 1.0):
        raise ConfigError(f"{where}: alpha: expected 0 < alpha < 1, found {value!r}")
    return alpha


def _new_failures(where: str, value) -> int | None:
    return None if value is None else int(_number(where, "max_new_failures", value, 0, integer=True))


def packaged_gates() -> dict[str, Path]:
    """Gate files shipped in ``conf/gate/``: name -> path."""
    folder = Path(str(resources.files("codecbench.conf"))) / "gate"
    return {path.stem: path for path in sorted(folder.glob("*.yaml"))}


def resolve(spec: str) -> Path:
    """A gate file path, or the name of a shipped gate (``default`` -> conf/gate/default.yaml)."""
    path = Path(spec)
    if path.is_file():
        return path
    shipped = packaged_gates()
    if spec in shipped:
        return shipped[spec]
    raise ConfigError(
        f"--gate {spec}: expected a gate YAML file or one of the shipped gates ({', '.join(shipped) or 'none'}), "
        "found no such file"
    )


def load_gate(spec: str) -> Gate:
    """Read and check a gate file (``spec``: a path or a shipped gate's name); ConfigError names what is wrong."""
    import yaml

    path = resolve(spec)
    where = str(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"{where}: expected a readable YAML gate file, found an error: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping with a 'metrics' key, found {type(data).__name__}")
    unknown = sorted(set(data) - _TOP_KEYS)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(map(str, unknown))}; "
                          f"expected {', '.join(sorted(_TOP_KEYS))}")
    alpha = _alpha(where, data.get("alpha", DEFAULT_ALPHA))
    max_new = _new_failures(where, data.get("max_new_failures", DEFAULT_MAX_NEW_FAILURES))
    entries = data.get("metrics")
    if not isinstance(entries, dict) or not entries:
        raise ConfigError(f"{where}: metrics: expected a mapping of task.metric to limits, found {entries!r}")
    metrics = {}
    for key, limits in entries.items():
        here = f"{where}: metrics.{key}"
        task, dot, metric = str(key).partition(".")
        if not (task and dot and metric):
            raise ConfigError(f"{here}: expected a name of the form task.metric (e.g. signal.pesq_wb), found {key!r}")
        if not isinstance(limits, dict):
            raise ConfigError(f"{here}: expected a mapping with max_regression and/or max_relative_regression, "
                              f"found {limits!r}")
        unknown = sorted(set(limits) - _METRIC_KEYS)
        if unknown:
            raise ConfigError(f"{here}: unknown key(s) {', '.join(map(str, unknown))}; "
                              f"expected {', '.join(sorted(_METRIC_KEYS))}")
        absolute, relative = limits.get("max_regression"), limits.get("max_relative_regression")
        if absolute is None and relative is None:
            raise ConfigError(f"{here}: expected max_regression and/or max_relative_regression, found neither")
        metrics[str(key)] = MetricGate(
            key=str(key),
            max_regression=None if absolute is None else float(_number(here, "max_regression", absolute, 0.0)),
            max_relative_regression=None if relative is None else float(
                _number(here, "max_relative_regression", relative, 0.0)),
            alpha=_alpha(here, limits["alpha"]) if "alpha" in limits else alpha,
            max_new_failures=_new_failures(here, limits["max_new_failures"]) if "max_new_failures" in limits
            else max_new,
        )
    return Gate(where, metrics)
