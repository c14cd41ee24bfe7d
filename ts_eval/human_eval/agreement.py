"""Agreement statistics, from libraries: Krippendorff's alpha (`krippendorff`), Cohen's kappa (scikit-learn)."""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping
from typing import Any, Literal, TypeVar

import numpy as np

from ts_eval.errors import missing_extra

Unit = TypeVar("Unit", bound=Hashable)
Rater = TypeVar("Rater", bound=Hashable)
Level = Literal["nominal", "ordinal", "interval", "ratio"]


def krippendorff_alpha(values: Mapping[Unit, Mapping[Rater, float]], level: Level) -> dict[str, Any]:
    """Alpha over `values[unit][rater]`; raters may rate any subset of units (missing cells are allowed).

    Only units with two or more values carry information; `value` is None when there are none, or when
    every value is the same (alpha is then undefined: no disagreement to compare against).
    """
    try:
        import krippendorff
    except ImportError:
        raise missing_extra("krippendorff", "human") from None
    result: dict[str, Any] = {"method": "krippendorff_alpha", "level": level, "value": None}
    units = [u for u, by_rater in values.items() if len(by_rater) >= 2]
    result["units"] = len(units)
    raters = sorted({r for u in units for r in values[u]}, key=str)
    result["raters"] = len(raters)
    if not units:
        result["note"] = "no item was rated by two or more raters"
        return result
    index = {r: i for i, r in enumerate(raters)}
    table = np.full((len(raters), len(units)), np.nan)
    for j, unit in enumerate(units):
        for rater, value in values[unit].items():
            table[index[rater], j] = value
    if len(np.unique(table[~np.isnan(table)])) < 2:
        result["note"] = "every answer is the same, alpha is undefined"
        return result
    alpha = float(krippendorff.alpha(reliability_data=table, level_of_measurement=level))
    result["value"] = None if math.isnan(alpha) else round(alpha, 4)
    return result


def cohen_kappa(first: list[int], second: list[int]) -> float | None:
    """Cohen's kappa of two paired label lists; None when it is undefined (a single label on both sides)."""
    try:
        from sklearn.metrics import cohen_kappa_score
    except ImportError:
        raise missing_extra("scikit-learn", "human") from None
    if len(set(first) | set(second)) < 2:
        return None
    kappa = float(cohen_kappa_score(first, second))
    return None if math.isnan(kappa) else kappa
