"""Statistics for summaries: means with percentile-bootstrap confidence intervals."""

from __future__ import annotations

import numpy as np

#: resamples and seed of every bootstrap in summaries (fixed: reruns give equal CIs).
BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 0


def bootstrap_mean_ci(
    values, confidence: float = 0.95, resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED
) -> tuple[float | None, float | None, float | None]:
    """Mean of ``values`` and its percentile-bootstrap CI at ``confidence`` (0-1).

    Returns ``(None, None, None)`` for no values (never a made-up number) and a
    zero-width interval for one value.
    """
    data = np.asarray(list(values), dtype=np.float64)
    if data.size == 0:
        return None, None, None
    mean = float(data.mean())
    if data.size == 1:
        return mean, mean, mean
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, data.size, size=(resamples, data.size))
    means = data[idx].mean(axis=1)
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(means, [alpha, 1.0 - alpha])
    # a resample of n equal values can average one ulp outside them; a mean never lies outside the data
    low, high = (float(np.clip(bound, data.min(), data.max())) for bound in (low, high))
    return mean, low, high
