"""Classifier-free guidance schedulers (paper Fig. 5): the guidance scale for each image token.

The scale depends on the index n of the token about to be sampled, n = 0 … N-1 in generation order
(window by window, s² tokens per step), so a schedule means the same thing at every window size.
Every schedule except `constant` starts at 1 (no guidance) on the first token:

* `constant`    — the target on every token (classic CFG).
* `linear`      — 1 → target linearly over all N tokens; the target is reached on the last token.
* `half-linear` — 1 → target linearly over the first half (reached at n = N/2), then held. Default.
* `drop-first`  — 1 (guidance dropped) for the first image row (n < grid width), the target afterwards.
* `sin`         — 1 + (target-1)·sin(π/2 · n/(N-1)): fast rise, target on the last token.
* `sigmoid`     — a logistic ramp centred at N/2 (steepness 10), rescaled to hit 1 at n=0 and the target
                  at n = N-1.

The paper names these shapes without formulas; the exact breakpoints above are ours.
"""

from __future__ import annotations

import math

import torch

from ts_eval.errors import UsageError

SCHEDULES = ("constant", "linear", "half-linear", "drop-first", "sin", "sigmoid")
SIGMOID_STEEPNESS = 10.0


def check_schedule(name: str) -> None:
    if name not in SCHEDULES:
        raise UsageError(f"unknown cfg-schedule '{name}'; choose one of: {', '.join(SCHEDULES)}")


def cfg_scales(name: str, target: float, n_tokens: int, grid_width: int) -> torch.Tensor:
    """Scale for each of the `n_tokens` image tokens (float64, generation order)."""
    check_schedule(name)
    n = torch.arange(n_tokens, dtype=torch.float64)
    last = max(n_tokens - 1, 1)
    if name == "constant":
        ramp = torch.ones_like(n)
    elif name == "linear":
        ramp = n / last
    elif name == "half-linear":
        ramp = (n / max(n_tokens / 2, 1)).clamp(max=1.0)
    elif name == "drop-first":
        ramp = (n >= grid_width).to(torch.float64)
    elif name == "sin":
        ramp = torch.sin(math.pi / 2 * n / last)
    else:  # sigmoid
        k = SIGMOID_STEEPNESS
        lo, hi = 1 / (1 + math.exp(k / 2)), 1 / (1 + math.exp(-k / 2))
        ramp = (torch.sigmoid(k * (n / last - 0.5)) - lo) / (hi - lo)
    return 1.0 + (target - 1.0) * ramp
