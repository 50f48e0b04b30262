"""Paired statistics of a candidate against a baseline on the same items or trials.

Every function here pairs the two sides on what both scored, and reports a
:class:`Paired` result: the baseline and candidate values over the paired
items, their difference ``candidate - baseline`` (in the metric's unit) with
a 95% percentile-bootstrap CI, and ``p_worse``, a one-sided p-value of the
hypothesis that the candidate is worse (the metric's ``higher_is_better``
says which way that is).

- Per-item metrics (:func:`per_item`): the mean of the per-item differences,
  its CI from :func:`codecbench.stats.bootstrap_mean_ci` (the summaries'
  bootstrap: 2000 resamples, seed 0), and the Wilcoxon signed-rank test of
  the differences (``scipy.stats.wilcoxon``, zero differences dropped, exact
  null distribution for small samples without ties, normal approximation
  otherwise). All-zero differences (a rerun of the baseline) give
  difference 0 and p = 1: no evidence of any change.
- ASR corpus rates (:func:`asr_rates`: ``wer``, ``cer``, ``wer_ref``,
  ``cer_ref``, ``dwer``, ``wer_delta``): values from the asr task's own
  ``corpus_entry`` over the paired items (total errors / total reference
  units), and a paired bootstrap over items: each resample draws the items
  once (``BOOTSTRAP_RESAMPLES`` multinomial draws, seed ``BOOTSTRAP_SEED``,
  as the task's own CI does) and recomputes both corpus rates with the
  task's ratio of sums on the same draw.
- Verification metrics over trials (:func:`verification`: ``eer``,
  ``min_dcf_*``, with the speaker task's enrolment/test sides): the trials
  whose two embeddings exist in both runs, scored by the task's own
  ``trial_scores``; values from ``error_rates`` and the metric's statistic;
  a paired stratified bootstrap over trials (target and non-target trials
  resampled separately, as the task's CI does, the same draw on both sides).

For the bootstrap methods ``p_worse`` is ``(k + 1) / (B + 1)``, where ``k``
counts the ``B`` resampled differences that are not worse (zero or better):
small when nearly every resample shows the candidate worse, 1 when none does.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Callable, Iterator

import numpy as np

from codecbench.stats import BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED, bootstrap_mean_ci

#: confidence level of every interval reported here.
CONFIDENCE = 0.95

#: items per block of bootstrap weights (bounds memory on large corpora; the asr task's block size).
BLOCK = 250


@dataclass
class Paired:
    """A candidate against a baseline on one metric, over what both scored.

    ``baseline``/``candidate``: the metric over the paired items (a mean, or
    the corpus value); ``difference`` = candidate - baseline, with its 95% CI
    ``ci_low``/``ci_high``; ``p_worse``: one-sided p-value that the candidate
    is worse (0-1); ``n``: paired items or trials; ``n_failed_baseline`` /
    ``n_failed_candidate``: items (trials) where the metric failed on that
    side; ``new_failures``: items with a value in the baseline that failed
    in the candidate; ``method``: how the CI and p were computed; ``reason``:
    why there is no value (None when there is one).
    """

    baseline: float | None
    candidate: float | None
    difference: float | None
    ci_low: float | None
    ci_high: float | None
    p_worse: float | None
    n: int
    method: str
    n_failed_baseline: int = 0
    n_failed_candidate: int = 0
    new_failures: list[str] | None = None
    reason: str | None = None

    def as_dict(self) -> dict:
        return asdict(self)


def _failed(row: dict | None, name: str) -> bool:
    return row is not None and (row["status"] != "ok" or name in row.get("failures", {}))


def _failure_counts(name: str, baseline: dict[str, dict], candidate: dict[str, dict],
                    has_value: Callable[[dict], bool]) -> dict:
    """Failures of metric ``name`` on each side, and the items that newly fail in the candidate."""
    new = sorted(item for item, row in candidate.items()
                 if _failed(row, name) and item in baseline and has_value(baseline[item]))
    return {
        "n_failed_baseline": sum(_failed(row, name) for row in baseline.values()),
        "n_failed_candidate": sum(_failed(row, name) for row in candidate.values()),
        "new_failures": new,
    }


def _empty(method: str, reason: str, **counts) -> Paired:
    return Paired(None, None, None, None, None, None, 0, method, reason=reason, **counts)


# -- per-item metrics -------------------------------------------------------------------


def wilcoxon_p_worse(differences: np.ndarray, higher_is_better: bool) -> float:
    """One-sided Wilcoxon signed-rank p-value that ``differences`` (candidate - baseline) lean worse.

    Zero differences are dropped (scipy's ``zero_method="wilcox"``); with none
    left there is no evidence of a change and the p-value is 1.
    """
    from scipy.stats import wilcoxon

    differences = np.asarray(differences, dtype=np.float64)
    if not np.any(differences != 0):
        return 1.0
    alternative = "less" if higher_is_better else "greater"
    return float(wilcoxon(differences, alternative=alternative).pvalue)


def per_item(name: str, higher_is_better: bool, baseline: dict[str, dict], candidate: dict[str, dict]) -> Paired:
    """Paired differences of a per-item metric over the items with a value on both sides.

    ``baseline``/``candidate``: item id -> stored row of this task (``status``,
    ``values``, ``failures``).
    """
    from scipy import __version__ as scipy_version

    method = (f"mean of per-item differences, 95% percentile bootstrap ({BOOTSTRAP_RESAMPLES} resamples, "
              f"seed {BOOTSTRAP_SEED}); p: one-sided Wilcoxon signed-rank test (scipy=={scipy_version})")

    def has_value(row: dict) -> bool:
        return row["status"] == "ok" and name in row.get("values", {})

    counts = _failure_counts(name, baseline, candidate, has_value)
    items = sorted(item for item in baseline.keys() & candidate.keys()
                   if has_value(baseline[item]) and has_value(candidate[item]))
    if not items:
        return _empty(method, "no item has a value in both runs", **counts)
    base = np.array([baseline[item]["values"][name] for item in items], dtype=np.float64)
    cand = np.array([candidate[item]["values"][name] for item in items], dtype=np.float64)
    differences = cand - base
    mean, low, high = bootstrap_mean_ci(differences, CONFIDENCE)
    return Paired(
        baseline=float(base.mean()), candidate=float(cand.mean()), difference=mean, ci_low=low, ci_high=high,
        p_worse=wilcoxon_p_worse(differences, higher_is_better), n=len(items), method=method, **counts,
    )


# -- bootstrap helpers ------------------------------------------------------------------


def item_weights(n_items: int) -> Iterator[np.ndarray]:
    """Blocks of bootstrap weights ``(resamples, n_items)``: how often each item is drawn.

    ``BOOTSTRAP_RESAMPLES`` multinomial draws of ``n_items`` items in all, from
    ``default_rng(BOOTSTRAP_SEED)``, in blocks of ``BLOCK`` resamples: the
    draws the asr task's own corpus CI makes.
    """
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    for start in range(0, BOOTSTRAP_RESAMPLES, BLOCK):
        size = min(BLOCK, BOOTSTRAP_RESAMPLES - start)
        yield rng.multinomial(n_items, np.full(n_items, 1.0 / n_items), size=size).astype(np.float64)


def bootstrap_summary(differences: np.ndarray, higher_is_better: bool) -> tuple[float | None, float | None, float]:
    """``(ci_low, ci_high, p_worse)`` of resampled differences (candidate - baseline); non-finite ones dropped.

    ``p_worse = (k + 1) / (B + 1)`` with ``k`` the resamples that are not
    worse (a difference of zero, or one in the better direction).
    """
    differences = np.asarray(differences, dtype=np.float64)
    differences = differences[np.isfinite(differences)]
    if differences.size == 0:
        return None, None, 1.0
    alpha = (1.0 - CONFIDENCE) / 2.0
    low, high = np.quantile(differences, [alpha, 1.0 - alpha])
    not_worse = int(np.sum(differences >= 0 if higher_is_better else differences <= 0))
    return float(low), float(high), (not_worse + 1) / (differences.size + 1)


# -- ASR corpus rates -------------------------------------------------------------------


def asr_rates(name: str, higher_is_better: bool, baseline: dict[str, dict], candidate: dict[str, dict]) -> Paired:
    """Paired bootstrap over items of an asr corpus rate (``codecbench.tasks.asr.METRIC_NAMES``).

    The items paired are those whose ok rows store the edit counts the
    metric needs on both sides (for ``wer_delta``: ``wer`` and ``wer_ref``).
    """
    from codecbench.tasks.asr import DELTA, corpus_entry, corpus_ratio, stored_counts

    method = (f"corpus value over the paired items (asr task's corpus_entry); 95% CI and p: paired bootstrap "
              f"over items ({BOOTSTRAP_RESAMPLES} resamples, seed {BOOTSTRAP_SEED}), both rates recomputed "
              "with the task's ratio of summed edit counts on each resample")
    needs = DELTA[1:] if name == DELTA[0] else (name,)

    def has_value(row: dict) -> bool:
        return row["status"] == "ok" and all(stored_counts(row, part) is not None for part in needs)

    counts = _failure_counts(name, baseline, candidate, has_value)
    items = sorted(item for item in baseline.keys() & candidate.keys()
                   if has_value(baseline[item]) and has_value(candidate[item]))
    if not items:
        return _empty(method, "no item has the edit counts of this metric in both runs", **counts)

    def value_and_statistic(rows: dict[str, dict]):
        shared = [rows[item] for item in items]
        value = corpus_entry(name, shared)["mean"]
        rates = [corpus_ratio([stored_counts(row, part) for row in shared]) for part in needs]
        if len(rates) == 1:
            return value, rates[0]
        return value, lambda weights: rates[0](weights) - rates[1](weights)

    base_value, base_statistic = value_and_statistic(baseline)
    cand_value, cand_statistic = value_and_statistic(candidate)
    if base_value is None or cand_value is None:
        return _empty(method, "the paired items' references hold no words or characters", **counts)
    resampled = np.concatenate([cand_statistic(w) - base_statistic(w) for w in item_weights(len(items))])
    with np.errstate(invalid="ignore"):
        low, high, p_worse = bootstrap_summary(resampled, higher_is_better)
    return Paired(base_value, cand_value, cand_value - base_value, low, high, p_worse, len(items), method, **counts)


# -- verification metrics over trials ----------------------------------------------------


def verification(name: str, higher_is_better: bool, baseline: dict[str, dict], candidate: dict[str, dict],
                 trials: list) -> Paired:
    """Paired stratified bootstrap over trials of a speaker-task corpus metric (``CORPUS_BY_NAME``).

    ``trials``: the run's verification trials (``Trial``). A trial is paired
    when its enrolment and test embeddings (on the sides the metric uses)
    exist in both runs; the others count as failures of the side that lacks one.
    """
    from codecbench.tasks.speaker import CORPUS_BY_NAME, stored_embeddings, trial_scores
    from codecbench.tasks.verification import error_rates

    metric = CORPUS_BY_NAME[name]
    method = ("value over the paired trials (the speaker task's trial_scores, error_rates and the metric's EER or "
              f"minDCF statistic); 95% CI and p: paired stratified bootstrap over trials ({BOOTSTRAP_RESAMPLES} "
              f"resamples, seed {BOOTSTRAP_SEED}), target and non-target trials drawn separately")
    enroll, test = metric.mode
    sides = [stored_embeddings(rows.values()) for rows in (baseline, candidate)]

    def usable(embeddings, trial) -> bool:
        return trial.enroll_id in embeddings[enroll] and trial.test_id in embeddings[test]

    base_ok = [usable(sides[0], t) for t in trials]
    cand_ok = [usable(sides[1], t) for t in trials]
    counts = {
        "n_failed_baseline": base_ok.count(False),
        "n_failed_candidate": cand_ok.count(False),
        "new_failures": sorted({f"{t.enroll_id}|{t.test_id}"
                                for t, b, c in zip(trials, base_ok, cand_ok) if b and not c}),
    }
    shared = [t for t, b, c in zip(trials, base_ok, cand_ok) if b and c]
    labels = np.array([int(t.label) for t in shared], dtype=int)
    n_target = int(labels.sum())
    if not shared or n_target in (0, labels.size):
        reason = (f"expected paired target and non-target trials, found {n_target} target and "
                  f"{labels.size - n_target} non-target")
        return _empty(method, reason, **counts)
    scores = []
    for embeddings in sides:
        scores.append(trial_scores(shared, embeddings[enroll], embeddings[test])[0])  # every one has both
    base_value, cand_value = (metric.statistic(*error_rates(s, labels)[1:]) for s in scores)
    target, nontarget = np.flatnonzero(labels == 1), np.flatnonzero(labels == 0)
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    resampled = np.empty(BOOTSTRAP_RESAMPLES)
    for r in range(BOOTSTRAP_RESAMPLES):
        draw = np.r_[target[rng.integers(0, target.size, target.size)],
                     nontarget[rng.integers(0, nontarget.size, nontarget.size)]]
        base, cand = (metric.statistic(*error_rates(s[draw], labels[draw])[1:]) for s in scores)
        resampled[r] = cand - base
    low, high, p_worse = bootstrap_summary(resampled, higher_is_better)
    return Paired(base_value, cand_value, cand_value - base_value, low, high, p_worse, len(shared), method,
                  **counts)
