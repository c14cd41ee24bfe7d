"""Bootstrap confidence intervals over prompts, and the paired bootstrap the CI gate uses."""

from __future__ import annotations

from typing import Any

import numpy as np

_CHUNK = 256  # resamples per vectorised batch: bounded memory for large prompt sets


def _resampled_means(values: np.ndarray, resamples: int, seed: int, weights: np.ndarray | None = None) -> np.ndarray:
    rng = np.random.default_rng(seed)
    n = len(values)
    means = np.empty(resamples, dtype=np.float64)
    for start in range(0, resamples, _CHUNK):
        stop = min(start + _CHUNK, resamples)
        picks = rng.integers(0, n, size=(stop - start, n))
        if weights is None:
            means[start:stop] = values[picks].mean(axis=1)
        else:
            means[start:stop] = (values[picks] * weights[picks]).sum(axis=1) / weights[picks].sum(axis=1)
    return means


def bootstrap_ci(
    values, *, resamples: int = 1000, seed: int = 0, confidence: float = 0.95, weights=None
) -> list[float]:  # 1000 = options.DEFAULT_RESAMPLES (stats sits below options)
    """Percentile bootstrap CI of the mean (resampling prompts with replacement, seeded).

    With `weights` (positive, one per value) it is the CI of the weighted mean: e.g. per-prompt shares
    weighted by votes give the pooled share, resampled by prompt (a cluster bootstrap).
    """
    values = np.asarray(values, dtype=np.float64)
    if weights is not None:
        weights = np.asarray(weights, dtype=np.float64)
        if weights.shape != values.shape or not np.all(weights > 0):
            raise ValueError("bootstrap weights must be positive, one per value")
    if len(values) == 0:
        return [float("nan"), float("nan")]
    point = float(np.average(values, weights=weights))
    if len(values) == 1 or resamples <= 0:
        return [point, point]
    means = _resampled_means(values, resamples, seed, weights)
    alpha = (1.0 - confidence) / 2.0
    lo, hi = np.quantile(means, [alpha, 1.0 - alpha])
    return [float(lo), float(hi)]


def paired_bootstrap(
    baseline, current, *, resamples: int = 10000, seed: int = 0, confidence: float = 0.95
) -> dict[str, Any]:
    """Paired bootstrap of mean(current - baseline) over shared prompts.

    Returns the observed delta, its CI, and `p_drop_not_real`: the share of resamples in which the
    current mean is not below the baseline (a one-sided p-value for "current is worse").
    """
    base = np.asarray(baseline, dtype=np.float64)
    cur = np.asarray(current, dtype=np.float64)
    if base.shape != cur.shape:
        raise ValueError("paired bootstrap needs one baseline and one current value per prompt")
    diff = cur - base
    if len(diff) == 0:
        return {"delta": float("nan"), "ci95": [float("nan"), float("nan")], "p_drop_not_real": 1.0}
    means = _resampled_means(diff, resamples, seed)
    alpha = (1.0 - confidence) / 2.0
    lo, hi = np.quantile(means, [alpha, 1.0 - alpha])
    return {
        "delta": float(diff.mean()),
        "ci95": [float(lo), float(hi)],
        "p_drop_not_real": float(np.mean(means >= 0.0)),
    }
