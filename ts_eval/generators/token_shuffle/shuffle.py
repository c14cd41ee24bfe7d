"""Token-shuffle and token-unshuffle: the window order of image tokens and the channel merge.

Fixed conventions (every other part relies on them):

* **Window order.** An H×W token grid is generated window by window, windows in raster order over the
  (H/s)×(W/s) window grid, and inside a window the s² tokens in raster order: sub-token k = i·s + j
  for row i, column j of the window. `grid_to_windows` / `windows_to_grid` convert between the two.
* **Channel order `(s1 s2 c)`.** Merging s² vectors of width c gives one vector of width s²·c whose
  channel k·c + ch is channel ch of sub-token k (sub-token major). This differs from
  `F.pixel_unshuffle`, whose channel order is `(c s1 s2)`; `tests/test_token_shuffle_shuffle.py` pins both.
* **s = 1** is the identity everywhere, and the model then has no shuffle MLPs: a plain AR model.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ts_eval.generators.token_shuffle.matmul import linear


def grid_to_windows(grid: torch.Tensor, s: int) -> torch.Tensor:
    """(B, H, W, *rest) -> (B, H/s · W/s, s², *rest) in window order."""
    b, h, w = grid.shape[:3]
    rest = grid.shape[3:]
    x = grid.reshape(b, h // s, s, w // s, s, *rest)
    x = x.transpose(2, 3)  # (B, H/s, W/s, s, s, *rest)
    return x.reshape(b, (h // s) * (w // s), s * s, *rest)


def windows_to_grid(windows: torch.Tensor, s: int, h: int, w: int) -> torch.Tensor:
    """(B, H/s · W/s, s², *rest) -> (B, H, W, *rest); the inverse of `grid_to_windows`."""
    b = windows.shape[0]
    rest = windows.shape[3:]
    x = windows.reshape(b, h // s, w // s, s, s, *rest)
    x = x.transpose(2, 3)  # (B, H/s, s, W/s, s, *rest)
    return x.reshape(b, h, w, *rest)


def merge_channels(sub_tokens: torch.Tensor) -> torch.Tensor:
    """(..., s², c) -> (..., s²·c), channel order (s1 s2 c)."""
    return sub_tokens.flatten(-2)


def split_channels(merged: torch.Tensor, s: int) -> torch.Tensor:
    """(..., s²·c) -> (..., s², c); the inverse of `merge_channels`."""
    return merged.unflatten(-1, (s * s, merged.shape[-1] // (s * s)))


def shuffle(grid: torch.Tensor, s: int) -> torch.Tensor:
    """Feature grid (B, H, W, c) -> merged tokens (B, H/s · W/s, s²·c)."""
    return merge_channels(grid_to_windows(grid, s))


def unshuffle(tokens: torch.Tensor, s: int, h: int, w: int) -> torch.Tensor:
    """Merged tokens (B, H/s · W/s, s²·c) -> feature grid (B, H, W, c)."""
    return windows_to_grid(split_channels(tokens, s), s, h, w)


class ResidualMLP(nn.Module):
    """x + W2·gelu(W1·x): the paper's residual MLP blocks around (un)shuffle.

    No norm inside: the input side follows the embedding, the output side the Transformer's final norm."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.w1 = nn.Linear(dim, hidden, bias=False)
        self.w2 = nn.Linear(hidden, dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + linear(F.gelu(linear(x, self.w1.weight)), self.w2.weight)


class TokenShuffle(nn.Module):
    """Embedded window (…, s², d) -> one Transformer token (…, d): compress d -> d/s², merge, refine."""

    def __init__(self, dim: int, s: int, blocks: int, ratio: float):
        super().__init__()
        self.s = s
        self.compress = nn.Linear(dim, dim // (s * s), bias=False)
        self.blocks = nn.ModuleList(ResidualMLP(dim, int(dim * ratio)) for _ in range(blocks))

    def forward(self, window_embeddings: torch.Tensor) -> torch.Tensor:
        x = merge_channels(linear(window_embeddings, self.compress.weight))
        for block in self.blocks:
            x = block(x)
        return x


class TokenUnshuffle(nn.Module):
    """One Transformer output (…, d) -> s² sub-token features (…, s², d) for the shared LM head."""

    def __init__(self, dim: int, s: int, blocks: int, ratio: float):
        super().__init__()
        self.s = s
        self.blocks = nn.ModuleList(ResidualMLP(dim, int(dim * ratio)) for _ in range(blocks))
        self.expand = nn.Linear(dim // (s * s), dim, bias=False)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        x = hidden
        for block in self.blocks:
            x = block(x)
        return linear(split_channels(x, self.s), self.expand.weight)
