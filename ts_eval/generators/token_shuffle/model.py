"""A Llama-style decoder (RMSNorm, SwiGLU, RoPE, torch SDPA, optional GQA) with Token-Shuffle on image tokens.

Text positions are embedded as usual and never shuffled; each image position is one s×s window of VQ tokens
(`TokenShuffle`), and each output that predicts a window goes through `TokenUnshuffle` and the shared LM
head, restricted to the codebook rows (text and special tokens cannot appear inside an image).

The KV cache is preallocated (gpt-fast style), once per model for the longest prompt the model accepts, and
every row starts at cache index 0: a row's prompt fills indices 0 … len-1, its image positions follow at
len, len+1, …, and the pads of shorter prompts sit after the prompt, where they are overwritten by image
positions before any query can see them. A decode step writes one position per row and attends over the
first `length` cache positions (the batch's padded prompt block + the image positions) with a mask, so its
shapes never change during a generation (what `torch.compile` and CUDA graphs need), and the cache buffers
keep their addresses from one generation to the next.
"""

from __future__ import annotations

import math
from typing import cast

import torch
import torch.nn.functional as F
from torch import nn

from ts_eval.errors import UsageError
from ts_eval.generators.token_shuffle.configs import ModelArgs
from ts_eval.generators.token_shuffle.matmul import linear
from ts_eval.generators.token_shuffle.shuffle import TokenShuffle, TokenUnshuffle


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.rms_norm(x.float(), (x.shape[-1],), eps=self.eps).type_as(x) * self.weight  # fp32 statistics


def cache_dtype(device_type: str, dtype: torch.dtype) -> torch.dtype:
    """The dtype of the KV cache and of attention: the model's, except on CPU, where it is fp32. CPU attention
    kernels in bf16 take about twice their fp32 time (a GPT-B decode step on AVX-512-BF16 without AMX: 2.3 vs
    1.2 ms per layer), and converting a bf16 cache to fp32 every step costs more than the attention itself."""
    return torch.float32 if device_type == "cpu" else dtype


class KVCache(nn.Module):
    k_cache: torch.Tensor  # buffers, registered in __init__
    v_cache: torch.Tensor
    row_index: torch.Tensor

    """Keys and values of `rows` sequences of `length` positions, written in place."""

    def __init__(self, rows: int, kv_heads: int, length: int, head_dim: int, dtype, device):
        super().__init__()
        shape = (rows, kv_heads, length, head_dim)
        self.register_buffer("k_cache", torch.zeros(shape, dtype=dtype, device=device), persistent=False)
        self.register_buffer("v_cache", torch.zeros(shape, dtype=dtype, device=device), persistent=False)
        self.register_buffer("row_index", torch.arange(rows, device=device), persistent=False)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.k_cache.shape)

    def write_prefix(self, k: torch.Tensor, v: torch.Tensor) -> None:
        """k, v (R, Hkv, T, hd) -> cache indices 0 … T-1 of every row."""
        t = k.shape[2]
        self.k_cache[:, :, :t] = k
        self.v_cache[:, :, :t] = v

    def write_at(
        self, positions: torch.Tensor, k: torch.Tensor, v: torch.Tensor, length: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """k, v (R, Hkv, 1, hd) -> cache index positions[r] of row r; returns the first `length` positions."""
        self.k_cache[self.row_index, :, positions] = k[:, :, 0]
        self.v_cache[self.row_index, :, positions] = v[:, :, 0]
        return self.k_cache[:, :, :length], self.v_cache[:, :, :length]


def rope_angles(positions: torch.Tensor, inv_freq: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """positions (R, T) -> cos, sin (R, T, 1, hd/2) in fp32."""
    angles = positions.float()[:, :, None, None] * inv_freq
    return angles.cos(), angles.sin()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate interleaved pairs (Meta's Llama layout) in fp32. x: (R, T, H, hd)."""
    pairs = x.float().unflatten(-1, (-1, 2))
    x0, x1 = pairs[..., 0], pairs[..., 1]
    return torch.stack([x0 * cos - x1 * sin, x1 * cos + x0 * sin], dim=-1).flatten(-2).type_as(x)


class Attention(nn.Module):
    def __init__(self, args: ModelArgs):
        super().__init__()
        self.n_heads, self.kv_heads, self.head_dim = args.n_heads, args.kv_heads, args.head_dim
        self.wqkv = nn.Linear(args.dim, (args.n_heads + 2 * args.kv_heads) * args.head_dim, bias=False)
        self.wo = nn.Linear(args.dim, args.dim, bias=False)
        self.kv_cache: KVCache | None = None

    def forward(self, x, cos, sin, mask, cache: str, write_pos):
        """cache "none": attend over x itself with `mask`; "fill" (prefill): write x's keys and values at the
        cache's first positions, causal attention over x; "step" (decode): write one position per row at
        `write_pos`, attend over the whole cache with `mask`."""
        r, t, _ = x.shape
        q_size, kv_size = self.n_heads * self.head_dim, self.kv_heads * self.head_dim
        q, k, v = linear(x, self.wqkv.weight).split([q_size, kv_size, kv_size], dim=-1)
        q = apply_rope(q.view(r, t, self.n_heads, self.head_dim), cos, sin).transpose(1, 2)
        k = apply_rope(k.view(r, t, self.kv_heads, self.head_dim), cos, sin).transpose(1, 2)
        v = v.view(r, t, self.kv_heads, self.head_dim).transpose(1, 2)
        q, k, v = (z.to(cache_dtype(x.device.type, x.dtype)) for z in (q, k, v))
        causal = False
        if cache == "fill":
            assert self.kv_cache is not None, "setup_caches() before a cached forward"
            self.kv_cache.write_prefix(k, v)
            causal, mask = True, None
        elif cache == "step":
            assert self.kv_cache is not None, "setup_caches() before a cached forward"
            k, v = self.kv_cache.write_at(write_pos, k, v, mask.shape[-1])
        y = F.scaled_dot_product_attention(
            q, k, v, attn_mask=mask, is_causal=causal, enable_gqa=self.kv_heads != self.n_heads
        ).to(x.dtype)
        return linear(y.transpose(1, 2).reshape(r, t, q_size), self.wo.weight)


class FeedForward(nn.Module):
    def __init__(self, args: ModelArgs):
        super().__init__()
        self.w1 = nn.Linear(args.dim, args.ffn_dim, bias=False)
        self.w3 = nn.Linear(args.dim, args.ffn_dim, bias=False)
        self.w2 = nn.Linear(args.ffn_dim, args.dim, bias=False)

    def forward(self, x):
        return linear(F.silu(linear(x, self.w1.weight)) * linear(x, self.w3.weight), self.w2.weight)


class TransformerBlock(nn.Module):
    def __init__(self, args: ModelArgs):
        super().__init__()
        self.attention = Attention(args)
        self.feed_forward = FeedForward(args)
        self.attention_norm = RMSNorm(args.dim, args.norm_eps)
        self.ffn_norm = RMSNorm(args.dim, args.norm_eps)

    def forward(self, x, cos, sin, mask, cache, write_pos):
        h = x + self.attention(self.attention_norm(x), cos, sin, mask, cache, write_pos)
        return h + self.feed_forward(self.ffn_norm(h))


def check_window(args: ModelArgs, window: int) -> None:
    if window < 1:
        raise UsageError(f"window must be at least 1, got {window}")
    if args.dim % (window * window):
        raise UsageError(f"window {window} needs a model dim divisible by {window * window}; dim is {args.dim}")


class TokenShuffleTransformer(nn.Module):
    def __init__(self, args: ModelArgs, window: int):
        super().__init__()
        check_window(args, window)
        self.args, self.window = args, window
        self.tok_embeddings = nn.Embedding(args.vocab_size, args.dim)
        self.layers = nn.ModuleList(TransformerBlock(args) for _ in range(args.n_layers))
        self.norm = RMSNorm(args.dim, args.norm_eps)
        self.output = nn.Linear(args.dim, args.vocab_size, bias=False)
        if window > 1:  # window 1 is a plain AR model: no shuffle MLPs at all
            blocks, ratio = args.shuffle_mlp_blocks, args.shuffle_mlp_ratio
            self.shuffle_in = TokenShuffle(args.dim, window, blocks, ratio)
            self.shuffle_out = TokenUnshuffle(args.dim, window, blocks, ratio)
        else:
            self.shuffle_in = self.shuffle_out = None
        self.register_buffer("inv_freq", torch.empty(args.head_dim // 2), persistent=False)
        self.reset_buffers()

    def reset_buffers(self) -> None:
        """Recompute non-persistent buffers (needed after `to_empty`)."""
        half = self.args.head_dim // 2
        exponents = torch.arange(half, dtype=torch.float32, device=self.inv_freq.device) / half
        self.inv_freq = (1.0 / (self.args.rope_base**exponents)).to(self.inv_freq.device)

    # -- caches ----------------------------------------------------------------------------------------
    def setup_caches(self, rows: int, length: int) -> None:
        """A cache of `length` positions for `rows` sequences; an existing one of that shape is reused
        (zeroed: masked stale values could only matter if they were not finite), so a compiled or
        graph-captured step keeps reading the same buffers."""
        weight = self.output.weight
        dtype = cache_dtype(weight.device.type, weight.dtype)
        shape = (rows, self.args.kv_heads, length, self.args.head_dim)
        for attention in self._attentions():
            cache = attention.kv_cache
            if cache is not None and cache.shape == shape and cache.k_cache.dtype == dtype:
                cache.k_cache.zero_()
                cache.v_cache.zero_()
            else:
                attention.kv_cache = KVCache(rows, self.args.kv_heads, length, self.args.head_dim, dtype, weight.device)

    def clear_caches(self) -> None:
        for attention in self._attentions():
            attention.kv_cache = None

    def _attentions(self) -> list[Attention]:
        # nn.ModuleList holds nn.Module to a type checker; its items are the TransformerBlocks built in __init__
        return [cast(TransformerBlock, layer).attention for layer in self.layers]

    # -- the pieces the sampler calls ----------------------------------------------------------------
    def embed_text(self, tokens: torch.Tensor) -> torch.Tensor:
        """(R, T) vocabulary ids -> (R, T, d); text is never shuffled."""
        return self.tok_embeddings(tokens)

    def embed_windows(self, codes: torch.Tensor) -> torch.Tensor:
        """(R, n, s²) codebook indices -> (R, n, d): one Transformer token per window."""
        emb = self.tok_embeddings(codes + self.args.image_offset)
        return emb.squeeze(-2) if self.shuffle_in is None else self.shuffle_in(emb)

    def backbone(
        self,
        x: torch.Tensor,
        rope_pos: torch.Tensor,
        mask: torch.Tensor | None,
        cache: str = "none",
        write_pos: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Transformer layers + final norm. rope_pos: (R, T); mask: (R, 1, T, keys) bool, None for "fill";
        cache: "none", "fill" (prefill) or "step" (decode, with write_pos (R,): each row's new cache index)."""
        cos, sin = rope_angles(rope_pos, self.inv_freq)
        for layer in self.layers:
            x = layer(x, cos, sin, mask, cache, write_pos)
        return self.norm(x)

    def image_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """(R, T, d) -> (R, T, s², codebook): unshuffle, then the shared head over the codebook rows only."""
        sub = hidden.unsqueeze(-2) if self.shuffle_out is None else self.shuffle_out(hidden)
        return linear(sub, self.output.weight[self.args.image_offset :])


def param_count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def shuffle_param_count(model: TokenShuffleTransformer) -> int:
    return sum(param_count(m) for m in (model.shuffle_in, model.shuffle_out) if m is not None)


@torch.no_grad()
def init_weights(module: nn.Module, seed: int) -> None:
    """Deterministic random init from `seed` alone (no global RNG): N(0, 0.02) for linears and embeddings,
    fan-in scaled normals for convolutions, ones/zeros for norms. Values are drawn on the parameters' device,
    so a CPU and a GPU model with the same seed differ (as their images would anyway)."""
    generators: dict[torch.device, torch.Generator] = {}
    for _, sub in sorted(module.named_modules(), key=lambda kv: kv[0]):
        for pname, p in sorted(sub.named_parameters(recurse=False)):
            if p.device.type == "meta":
                continue
            gen = generators.setdefault(p.device, torch.Generator(device=p.device).manual_seed(seed))
            if isinstance(sub, (RMSNorm, nn.GroupNorm)) or pname == "bias":
                p.fill_(1.0 if (pname == "weight") else 0.0)
                continue
            value = torch.randn(p.shape, generator=gen, device=p.device, dtype=torch.float32)
            scale = 1.0 / math.sqrt(p[0].numel()) if isinstance(sub, nn.Conv2d) else 0.02
            p.copy_(value * scale)
