"""Speaker-verification error rates over a list of scored trials: EER and minDCF, in NumPy.

A trial has a ``score`` (higher: more likely the same speaker) and a
``label`` (1: target, same speaker; 0: non-target). The decision rule is
*accept when score >= t*. The threshold sweep visits every operating point
that rule can produce: ``t`` at each distinct score, ascending (tied scores
are one threshold: they are accepted or rejected together), then ``t = +inf``
(reject everything). At each point

- ``P_miss(t)``: fraction of target trials with score < t (0 at the lowest
  threshold, 1 at +inf);
- ``P_fa(t)``: fraction of non-target trials with score >= t (1 at the
  lowest threshold, 0 at +inf).

**EER** (fraction, 0-1; lower is better) is where the curve of these points,
joined by straight lines, crosses ``P_miss = P_fa``. A straight line between
two neighbouring points is what a decision randomised between their two
thresholds achieves, so ties need no arbitrary order: a block of tied target
and non-target scores is one segment. This is the same value as the usual
ROC reading ``brentq(lambda x: 1 - x - interp1d(fpr, tpr)(x), 0, 1)`` on
``sklearn.metrics.roc_curve`` (the tests check it, ties included).
Perfectly separated scores give 0; identical score distributions give
about 0.5.

**minDCF** (normalised, 0-1; lower is better) at prior ``p_target`` with
costs ``C_miss = C_fa = 1`` (NIST SRE): the minimum over the sweep's
points of ``C_miss * P_miss * p_target + C_fa * P_fa * (1 - p_target)``,
divided by ``min(C_miss * p_target, C_fa * (1 - p_target))``, the cost of
the better trivial system (accept all or reject all), so 1 means no better
than that. (A linear cost has its minimum over a segment at an end, so only
the points matter.)

**Confidence intervals**: a stratified percentile bootstrap over trials:
target and non-target trials are resampled with replacement separately
(their counts kept, so every resample has both), the statistic recomputed,
and the 2.5% and 97.5% quantiles reported. ``BOOTSTRAP_RESAMPLES``
resamples with seed ``BOOTSTRAP_SEED`` (from :mod:`codecbench.stats`), so
reruns give equal intervals. Trials sharing enrolment or test utterances
are not independent; this interval treats them as independent and so is
narrower than one that resamples speakers would be.
"""

from __future__ import annotations

from typing import Callable, Mapping

import numpy as np

from codecbench.errors import CodecbenchError
from codecbench.stats import BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED

#: NIST SRE detection costs, as used for every minDCF here.
C_MISS = 1.0
C_FA = 1.0


def _check(scores, labels) -> tuple[np.ndarray, np.ndarray]:
    """Scores as float64 and labels as bool, 1-D, equal length, finite, both classes present."""
    scores = np.asarray(scores, dtype=np.float64).ravel()
    labels = np.asarray(labels).ravel()
    if scores.shape != labels.shape:
        raise CodecbenchError(
            f"verification: expected one label per score, found {scores.size} scores and {labels.size} labels"
        )
    if not np.isfinite(scores).all():
        raise CodecbenchError(f"verification: expected finite scores, found {int((~np.isfinite(scores)).sum())} not")
    if not np.isin(labels, (0, 1)).all():
        raise CodecbenchError(f"verification: expected labels 0 or 1, found {sorted(set(labels.tolist()) - {0, 1})}")
    labels = labels.astype(bool)
    n_target = int(labels.sum())
    if n_target == 0 or n_target == labels.size:
        raise CodecbenchError(
            f"verification: expected both target and non-target trials, found {n_target} target and "
            f"{labels.size - n_target} non-target"
        )
    return scores, labels


def _sweep(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``error_rates`` on checked arrays (float64 scores, bool labels with both classes)."""
    order = np.argsort(scores, kind="stable")
    scores, labels = scores[order], labels[order]
    # first index of each distinct score: the trials before it are rejected at that threshold
    starts = np.flatnonzero(np.r_[True, scores[1:] != scores[:-1]])
    targets_below = np.r_[0, np.cumsum(labels)][starts]
    nontargets_below = np.r_[0, np.cumsum(~labels)][starts]
    n_target = int(labels.sum())
    n_nontarget = labels.size - n_target
    p_miss = np.r_[targets_below, n_target] / n_target
    p_fa = 1.0 - np.r_[nontargets_below, n_nontarget] / n_nontarget
    return np.r_[scores[starts], np.inf], p_miss, p_fa


def error_rates(scores, labels) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The threshold sweep: ``(thresholds, p_miss, p_fa)``, one entry per operating point.

    ``thresholds`` are the distinct scores ascending, then ``+inf``;
    ``p_miss`` rises from 0 to 1 and ``p_fa`` falls from 1 to 0 along them.
    """
    return _sweep(*_check(scores, labels))


def eer_of(p_miss: np.ndarray, p_fa: np.ndarray) -> float:
    """EER of a threshold sweep (``error_rates``): where the joined points cross P_miss = P_fa."""
    gap = p_miss - p_fa  # -1 at the first point, +1 at the last, non-decreasing
    k = int(np.argmax(gap >= 0))  # >= 1, since gap[0] = -1
    alpha = -gap[k - 1] / (gap[k] - gap[k - 1])
    return float(p_fa[k - 1] + alpha * (p_fa[k] - p_fa[k - 1]))


def min_dcf_of(p_miss: np.ndarray, p_fa: np.ndarray, p_target: float, c_miss: float = C_MISS,
               c_fa: float = C_FA) -> float:
    """Normalised minDCF of a threshold sweep (``error_rates``) at prior ``p_target`` (0 < p_target < 1)."""
    if not 0.0 < p_target < 1.0:
        raise CodecbenchError(f"min_dcf: expected 0 < p_target < 1, found {p_target}")
    cost = c_miss * p_miss * p_target + c_fa * p_fa * (1.0 - p_target)
    return float(cost.min() / min(c_miss * p_target, c_fa * (1.0 - p_target)))


def eer(scores, labels) -> float:
    """Equal error rate (fraction 0-1) of scored trials; see the module docstring."""
    return eer_of(*error_rates(scores, labels)[1:])


def min_dcf(scores, labels, p_target: float, c_miss: float = C_MISS, c_fa: float = C_FA) -> float:
    """Normalised minimum detection cost (0-1) of scored trials at prior ``p_target`` (0 < p_target < 1)."""
    return min_dcf_of(*error_rates(scores, labels)[1:], p_target, c_miss, c_fa)


#: a statistic of a threshold sweep: ``(p_miss, p_fa) -> value``, e.g. ``eer_of``.
CurveStatistic = Callable[[np.ndarray, np.ndarray], float]


def bootstrap_cis(
    statistics: Mapping[str, CurveStatistic],
    scores,
    labels,
    confidence: float = 0.95,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
) -> dict[str, tuple[float, float]]:
    """Stratified percentile-bootstrap CIs ``name -> (low, high)`` of several sweep statistics at once.

    Every statistic is computed on the same resamples (one sweep each).
    """
    scores, labels = _check(scores, labels)
    rng = np.random.default_rng(seed)
    target, nontarget = scores[labels], scores[~labels]
    resampled_labels = np.r_[np.ones(target.size, bool), np.zeros(nontarget.size, bool)]
    values = {name: np.empty(resamples) for name in statistics}
    for r in range(resamples):
        draw = np.r_[target[rng.integers(0, target.size, target.size)],
                     nontarget[rng.integers(0, nontarget.size, nontarget.size)]]
        _, p_miss, p_fa = _sweep(draw, resampled_labels)
        for name, statistic in statistics.items():
            values[name][r] = statistic(p_miss, p_fa)
    alpha = (1.0 - confidence) / 2.0
    return {name: tuple(float(q) for q in np.quantile(v, [alpha, 1.0 - alpha])) for name, v in values.items()}
