"""Bootstrap CIs and the paired bootstrap, checked against known answers."""

from __future__ import annotations

import numpy as np
import pytest

from ts_eval.stats import bootstrap_ci, paired_bootstrap


def test_bootstrap_ci_matches_the_normal_approximation_for_a_large_sample():
    values = np.random.default_rng(0).normal(0.7, 0.1, size=2000)
    lo, hi = bootstrap_ci(values, resamples=2000, seed=1)
    half = 1.96 * values.std(ddof=1) / np.sqrt(len(values))
    assert lo == pytest.approx(values.mean() - half, abs=0.002)
    assert hi == pytest.approx(values.mean() + half, abs=0.002)


def test_bootstrap_ci_is_seeded_and_degenerate_cases_are_exact():
    values = [0.1, 0.9, 0.4, 0.6]
    assert bootstrap_ci(values, seed=3) == bootstrap_ci(values, seed=3)
    assert bootstrap_ci(values, seed=3) != bootstrap_ci(values, seed=4)
    assert bootstrap_ci([0.5] * 10) == [0.5, 0.5]
    assert bootstrap_ci([0.25]) == [0.25, 0.25]
    assert all(np.isnan(bootstrap_ci([])))


def test_paired_bootstrap_sees_a_consistent_small_drop_and_ignores_noise():
    rng = np.random.default_rng(0)
    base = rng.uniform(0, 1, size=500)
    dropped = paired_bootstrap(base, base - 0.02 + rng.normal(0, 0.01, size=500), seed=0)
    assert dropped["delta"] == pytest.approx(-0.02, abs=0.002)
    assert dropped["ci95"][1] < 0 and dropped["p_drop_not_real"] < 0.01
    noisy = paired_bootstrap(base, base + rng.normal(0, 0.05, size=500), seed=0)
    assert noisy["ci95"][0] < 0 < noisy["ci95"][1] and noisy["p_drop_not_real"] > 0.05
    with pytest.raises(ValueError, match="one baseline and one current value per prompt"):
        paired_bootstrap([1, 2], [1])
