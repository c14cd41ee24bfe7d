"""Token-shuffle conventions: window order, channel order (s1 s2 c), and exact inverses."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from ts_eval.generators.token_shuffle.shuffle import (
    grid_to_windows,
    merge_channels,
    shuffle,
    split_channels,
    unshuffle,
    windows_to_grid,
)


@settings(max_examples=60, deadline=None)
@given(
    s=st.sampled_from([1, 2, 4]),
    rows=st.integers(1, 4),
    cols=st.integers(1, 4),
    channels=st.integers(1, 5),
    batch=st.integers(1, 3),
    seed=st.integers(0, 2**31 - 1),
)
def test_unshuffle_inverts_shuffle_on_any_grid(s, rows, cols, channels, batch, seed):
    h, w = rows * s, cols * s  # non-square grids included
    x = torch.randn(batch, h, w, channels, generator=torch.Generator().manual_seed(seed))
    merged = shuffle(x, s)
    assert merged.shape == (batch, rows * cols, s * s * channels)  # n -> n/s² tokens of width s²·c
    assert torch.equal(unshuffle(merged, s, h, w), x)


@settings(max_examples=30, deadline=None)
@given(s=st.sampled_from([1, 2, 4]), rows=st.integers(1, 3), cols=st.integers(1, 3))
def test_windows_to_grid_inverts_grid_to_windows_for_codes(s, rows, cols):
    h, w = rows * s, cols * s
    codes = torch.randperm(h * w).view(1, h, w)
    assert torch.equal(windows_to_grid(grid_to_windows(codes, s), s, h, w), codes)
    assert torch.equal(
        split_channels(merge_channels(torch.arange(24.0).view(2, 4, 3)), 2), torch.arange(24.0).view(2, 4, 3)
    )


def test_window_order_is_raster_over_windows_then_raster_inside():
    grid = torch.arange(4 * 6).view(1, 4, 6)  # value = raster index of the token
    windows = grid_to_windows(grid, 2)
    assert windows[0].tolist() == [
        [0, 1, 6, 7],
        [2, 3, 8, 9],
        [4, 5, 10, 11],
        [12, 13, 18, 19],
        [14, 15, 20, 21],
        [16, 17, 22, 23],
    ]


def test_s1_is_the_identity():
    x = torch.randn(2, 3, 5, 4)
    assert torch.equal(shuffle(x, 1), x.reshape(2, 15, 4))


def test_channel_order_is_sub_token_major_unlike_pixel_unshuffle():
    s, c, h, w = 2, 3, 4, 4
    x = torch.randn(1, h, w, c)
    ours = shuffle(x, s)  # (1, n, s²·c), channel k·c + ch
    for n, (i, j) in enumerate([(0, 0), (0, 1), (1, 0), (1, 1)]):
        for k, (di, dj) in enumerate([(0, 0), (0, 1), (1, 0), (1, 1)]):
            assert torch.equal(ours[0, n, k * c : (k + 1) * c], x[0, i * s + di, j * s + dj])
    # F.pixel_unshuffle orders channels (c s1 s2): channel ch·s² + k. Same numbers, transposed channel axes.
    theirs = F.pixel_unshuffle(x.permute(0, 3, 1, 2), s).flatten(2).transpose(1, 2)  # (1, n, c·s²)
    assert not torch.equal(ours, theirs)
    assert torch.equal(ours, theirs.unflatten(-1, (c, s * s)).transpose(-1, -2).flatten(-2))
