"""How a number is printed for a reader: one policy for `run`, `report`, `view`, the leaderboard and the gate.

- A score (a group mean, one image's score) has two decimals, as the papers' tables print them: `0.52`.
- A confidence-interval bound or a delta has three: they resolve differences the two-decimal scores round away
  (`[0.497, 0.548]`, `-0.004`).
- A value that is not zero but would print as zero keeps two significant digits: `0.0040`, `0.00012`, and
  below 1e-4 `4.0e-06`, so a smoke run with random weights does not print a wall of `0.00`.
- A missing value prints as `--`.

Formats for machines (CSV, JSON) keep full precision; only what a person reads goes through here.
"""

from __future__ import annotations

import math
from typing import TypeGuard

SCORE_DECIMALS = 2
FINE_DECIMALS = 3
MISSING = "--"


def _fixed(value: float, decimals: int) -> str:
    if value != 0 and abs(value) < 0.5 * 10**-decimals:
        exponent = math.floor(math.log10(abs(value)))
        return f"{value:.{1 - exponent}f}" if exponent >= -4 else f"{value:.1e}"
    return f"{value:.{decimals}f}"


def _finite(value: float | None) -> TypeGuard[float]:
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def score(value: float | None) -> str:
    """A score: `0.52`; tiny ones `0.0040` / `4.0e-06`; None or NaN `--`."""
    return _fixed(float(value), SCORE_DECIMALS) if _finite(value) else MISSING


def bound(value: float | None) -> str:
    """A confidence-interval bound: `0.497`."""
    return _fixed(float(value), FINE_DECIMALS) if _finite(value) else MISSING


def interval(lo: float | None, hi: float | None) -> str:
    """A 95% CI: `[0.497, 0.548]`."""
    return f"[{bound(lo)}, {bound(hi)}]"


def delta(value: float | None) -> str:
    """A signed change: `+0.012`, `-0.004`; float dust around zero is `+0.000`, never `-0.000`."""
    if not _finite(value):
        return MISSING
    value = round(float(value), 12) + 0.0
    text = _fixed(value, FINE_DECIMALS)
    return text if text.startswith("-") else f"+{text}"
