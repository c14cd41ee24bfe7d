"""Classifier-free guidance schedules (paper Fig. 5): the guidance scale of each image token.

A schedule is a function of the token's image row: progress r/(H-1) for row r of an H-row token grid, i.e.
how much of the image lies above it. Every token of a row gets the same scale, so a schedule gives the same
scale to the same token at every window size s (at s = 2 a window's two rows get their own scales, one per
sub-token), and `drop-first` is the first image row at every s. Every schedule except `constant` starts at
1 (no guidance) on the first row:

* `constant`    — the target on every row (classic CFG).
* `linear`      — 1 → target linearly over the rows; the target is reached on the last row.
* `half-linear` — 1 → target linearly over the first half of the rows (reached at row H/2), then held. Default.
* `drop-first`  — 1 (guidance dropped) on the first image row, the target on every later row.
* `sin`         — 1 + (target-1)·sin(π/2 · r/(H-1)): fast rise, target on the last row.
* `sigmoid`     — a logistic ramp centred on the middle row (steepness 10), rescaled to 1 on row 0 and the
                  target on the last row.

The paper draws these shapes over "the index of the next token" without formulas; the definition over rows
(which makes a schedule mean the same at every window) and the exact breakpoints are ours.
"""

from __future__ import annotations

import math

import torch

from ts_eval.errors import UsageError
from ts_eval.generators.token_shuffle.options import SCHEDULES

SIGMOID_STEEPNESS = 10.0


def check_schedule(name: str) -> None:
    if name not in SCHEDULES:
        raise UsageError(f"unknown cfg-schedule '{name}'; choose one of: {', '.join(SCHEDULES)}")


def row_scales(name: str, target: float, rows: int) -> torch.Tensor:
    """Scale of each of the `rows` image rows (float64)."""
    check_schedule(name)
    r = torch.arange(rows, dtype=torch.float64)
    last = max(rows - 1, 1)
    if name == "constant":
        ramp = torch.ones_like(r)
    elif name == "linear":
        ramp = r / last
    elif name == "half-linear":
        ramp = (r / max(rows / 2, 1)).clamp(max=1.0)
    elif name == "drop-first":
        ramp = (r >= 1).to(torch.float64)
    elif name == "sin":
        ramp = torch.sin(math.pi / 2 * r / last)
    else:  # sigmoid
        k = SIGMOID_STEEPNESS
        lo, hi = 1 / (1 + math.exp(k / 2)), 1 / (1 + math.exp(-k / 2))
        ramp = (torch.sigmoid(k * (r / last - 0.5)) - lo) / (hi - lo)
    return 1.0 + (target - 1.0) * ramp


def cfg_scales(name: str, target: float, grid: tuple[int, int]) -> torch.Tensor:
    """Scale of every token of an (H, W) grid (float64, (H, W)): its row's scale."""
    h, w = grid
    return row_scales(name, target, h)[:, None].expand(h, w).contiguous()
