"""Tiny reference models with lively weights, shared by the Token-Shuffle tests."""

from __future__ import annotations

import math

import torch

from ts_eval.generators.token_shuffle.configs import CONFIGS
from ts_eval.generators.token_shuffle.generator import build_model
from ts_eval.generators.token_shuffle.tokenizer import ByteTokenizer

TINY = CONFIGS["tiny"]


def lively_model(window: int, seed: int = 0, dtype=torch.float32):
    """Tiny model with O(1) logits (the default 0.02 init makes every logit ~0 and comparisons vacuous)."""
    model = build_model(TINY, window, "cpu", torch.float32, seed=seed)
    gen = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 2:
                p.copy_(torch.randn(p.shape, generator=gen) / math.sqrt(p.shape[1] if "embeddings" not in name else 1))
    return model.to(dtype)


def prompt_rows(*texts: str) -> list[list[int]]:
    tok = ByteTokenizer()
    return [tok.encode(t) + [TINY.start_of_image] for t in texts]
