"""The model's matmuls: `F.linear`, except for the few rows of a CPU decode step in fp32.

For 1-2 rows (an image's cond and uncond rows), MKL's `x @ Wᵀ` (what `F.linear` runs) reads the weights at a
third to a half of the machine's bandwidth, while `W @ xᵀ` streams them at up to the bandwidth (measured on a
GPT-B-shaped layer stack, one thread: 4-5 vs 8-20 GB/s against 9-17 GB/s for a plain sum). A decode step is
bound by reading the weights once, so on CPU in fp32 few rows go that way. bf16 keeps `F.linear` (oneDNN),
which is the faster of the two there.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

FEW_ROWS = 8


def linear(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """x (..., k) · weightᵀ (k, n) -> (..., n), bias-free."""
    rows = x.numel() // x.shape[-1]
    if x.device.type == "cpu" and x.dtype == torch.float32 and rows <= FEW_ROWS:
        return (weight @ x.reshape(rows, x.shape[-1]).T).T.reshape(*x.shape[:-1], weight.shape[0])
    return F.linear(x, weight)
