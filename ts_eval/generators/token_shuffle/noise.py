"""Sampling noise as a pure function of (image seed, token index, code): a counter-based hash.

A draw never depends on the batch, the device's RNG state, the step at which it is taken or on whether
the step is compiled: the Gumbel noise of code v for image token t of an image with seed σ is

    u = (hash(σ, t·V + v) >> 8 + ½) / 2²⁴ ∈ (0, 1),    g = −log(−log u)

and the sampled code is argmax(logits/temperature + g) over the codes the filters keep (the Gumbel-max
trick: exactly a draw from softmax(logits/temperature)). The hash is two rounds of Wellons' `lowbias32`
integer mixer on 32-bit values kept in int64 tensors; every product stays below 2⁴⁹, so the integer
arithmetic is exact on every device and in compiled code.
"""

from __future__ import annotations

import torch

MASK32 = 0xFFFFFFFF
_M1, _M2 = 0x7FEB352D, 0x846CA68B  # lowbias32 multipliers
_GOLDEN = 0x9E3779B9


def _mul32(x, c: int):
    """(x · c) mod 2³² for 32-bit x (int or int64 tensor) without overflowing int64."""
    return (x * (c & 0xFFFF) + (((x * (c >> 16)) & 0xFFFF) << 16)) & MASK32


def _mix32(x):
    x = x ^ (x >> 16)
    x = _mul32(x, _M1)
    x = x ^ (x >> 15)
    x = _mul32(x, _M2)
    return x ^ (x >> 16)


def seed_keys(seed: int) -> tuple[int, int]:
    """Two 32-bit keys from a 64-bit image seed (plain integers, computed once per image)."""
    seed &= (1 << 64) - 1
    first = _mix32((seed & MASK32) ^ _mix32(seed >> 32))
    return first, _mix32(first ^ _GOLDEN)


def key_tensor(seeds: list[int], device) -> torch.Tensor:
    """(B, 2) int64 keys of each image, placed on the device once."""
    return torch.tensor([seed_keys(int(s)) for s in seeds], dtype=torch.int64, device=device)


def gumbel(keys: torch.Tensor, token_index: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
    """keys (B, 2), token_index (T,), codes (V,) = arange(V), all int64 -> Gumbel noise (B, T, V) fp32."""
    counter = token_index[:, None] * codes.shape[0] + codes  # < 2³² (checked by the sampler)
    first, second = keys[:, 0, None, None], keys[:, 1, None, None]
    bits = _mix32(_mix32(counter ^ first) ^ second)
    uniform = ((bits >> 8).to(torch.float32) + 0.5) * (1.0 / (1 << 24))
    return -torch.log(-torch.log(uniform))
