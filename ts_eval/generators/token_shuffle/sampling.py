"""Generation as a few small functions, read top to bottom (gpt-fast / LlamaGen style):

`pack_prompts` -> `prefill` (whole prompt, fills the KV cache, predicts window 0) -> `decode_step`
(feeds window k-1 at one position, predicts window k: s² tokens per step) -> `generate_codes`.

CFG batches `[cond rows, uncond rows]` and mixes logits in fp32 with a per-token scale from the CFG
schedule. Each image samples with its own `torch.Generator` seeded by the harness, so an image never
depends on its batch. `full_logits` is the same model without a cache (training, the no-cache baseline,
and the cache-equivalence tests).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from tqdm.auto import tqdm

from ts_eval.generators.token_shuffle.cfg_schedule import cfg_scales
from ts_eval.generators.token_shuffle.model import TokenShuffleTransformer, attention_mask, decode_mask
from ts_eval.generators.token_shuffle.shuffle import windows_to_grid
from ts_eval.generators.token_shuffle.timing import Clock


@dataclass(frozen=True)
class SamplingOptions:
    cfg_scale: float = 7.5  # 1.0 turns CFG off (no uncond rows at all)
    cfg_schedule: str = "half-linear"
    temperature: float = 1.0  # 0: greedy
    top_k: int = 1000  # 0: off
    top_p: float = 1.0  # 1.0: off

    @property
    def cfg(self) -> bool:
        return self.cfg_scale != 1.0


def pack_prompts(rows: list[list[int]], device) -> tuple[torch.Tensor, torch.Tensor]:
    """Left-pad token rows to one length. Returns (tokens (R, P), pad (R,)); pads hold id 0 and stay masked."""
    length = max(len(r) for r in rows)
    tokens = torch.zeros(len(rows), length, dtype=torch.long)
    for i, row in enumerate(rows):
        tokens[i, length - len(row):] = torch.tensor(row, dtype=torch.long)
    pad = torch.tensor([length - len(r) for r in rows], dtype=torch.long)
    return tokens.to(device), pad.to(device)


def prefill(model: TokenShuffleTransformer, tokens: torch.Tensor, pad: torch.Tensor) -> torch.Tensor:
    """Run the whole prompt (ending in <|start_of_image|>) into the cache; logits of window 0: (R, s², V)."""
    length = tokens.shape[1]
    input_pos = torch.arange(length, device=tokens.device)
    rope_pos = (input_pos[None, :] - pad[:, None]).clamp(min=0)
    hidden = model.backbone(model.embed_text(tokens), rope_pos, attention_mask(input_pos, length, pad), input_pos, length)
    return model.image_logits(hidden[:, -1:])[:, 0]


def decode_step(model: TokenShuffleTransformer, codes: torch.Tensor, pad: torch.Tensor, position: int) -> torch.Tensor:
    """Feed one window (R, s²) at cache index `position`; logits of the next window: (R, s², V)."""
    input_pos = torch.tensor([position], device=codes.device)
    rope_pos = (position - pad)[:, None]
    x = model.embed_windows(codes[:, None, :])
    hidden = model.backbone(x, rope_pos, decode_mask(pad, position + 1), input_pos, position + 1)
    return model.image_logits(hidden)[:, 0]


def full_logits(model: TokenShuffleTransformer, tokens: torch.Tensor, pad: torch.Tensor,
                windows: torch.Tensor) -> torch.Tensor:
    """No cache: prompt + windows (R, k, s²) in one forward; logits of windows 0..k: (R, k+1, s², V)."""
    x = torch.cat([model.embed_text(tokens), model.embed_windows(windows)], dim=1)
    length = x.shape[1]
    input_pos = torch.arange(length, device=tokens.device)
    rope_pos = (input_pos[None, :] - pad[:, None]).clamp(min=0)
    hidden = model.backbone(x, rope_pos, attention_mask(input_pos, length, pad), None, length)
    return model.image_logits(hidden[:, tokens.shape[1] - 1:])


def mix_cfg(logits: torch.Tensor, scales: torch.Tensor) -> torch.Tensor:
    """[cond; uncond] (2B, s², V) -> uncond + scale·(cond - uncond) in fp32, one scale per sub-token."""
    cond, uncond = logits.float().chunk(2)
    return uncond + scales.to(cond.device, torch.float32)[None, :, None] * (cond - uncond)


def sample_tokens(logits: torch.Tensor, options: SamplingOptions, generators: list[torch.Generator]) -> torch.Tensor:
    """(B, s², V) fp32 logits -> (B, s²) codes; temperature, top-k, top-p, then one draw per row's generator."""
    if options.temperature == 0:
        return logits.argmax(-1)
    logits = logits / options.temperature
    vocab = logits.shape[-1]
    if 0 < options.top_k < vocab:
        kth = torch.topk(logits, options.top_k, dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if options.top_p < 1.0:
        sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
        cumulative = sorted_logits.softmax(-1).cumsum(-1)
        drop_sorted = cumulative - sorted_logits.softmax(-1) > options.top_p  # keep the token that crosses p
        logits = logits.masked_fill(torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted), float("-inf"))
    probs = logits.softmax(-1)
    # Exponential race == multinomial draw, but each row consumes only its own generator.
    noise = torch.stack([torch.empty_like(probs[i]).exponential_(generator=g) for i, g in enumerate(generators)])
    return (probs / noise).argmax(-1)


def image_prompt_rows(prompts: list[list[int]], uncond: list[int], start_of_image: int, cfg: bool) -> list[list[int]]:
    rows = [p + [start_of_image] for p in prompts]
    if cfg:
        rows += [uncond + [start_of_image]] * len(prompts)
    return rows


@torch.no_grad()
def generate_codes(model: TokenShuffleTransformer, prompts: list[list[int]], uncond: list[int], seeds: list[int],
                   grid: tuple[int, int], options: SamplingOptions, *, use_cache: bool = True,
                   clock: Clock | None = None, progress: bool = False) -> torch.Tensor:
    """Token rows (without <|start_of_image|>) -> VQ code grids (B, H, W).

    `clock`, if given, is marked before prefill, after prefill and after every decode step.
    """
    device = model.output.weight.device
    s = model.window
    h, w = grid
    n_windows = (h // s) * (w // s)
    rows = image_prompt_rows(prompts, uncond, model.args.start_of_image, options.cfg)
    tokens, pad = pack_prompts(rows, device)
    generators = [torch.Generator(device=device).manual_seed(int(seed)) for seed in seeds]
    scales = cfg_scales(options.cfg_schedule, options.cfg_scale, n_windows * s * s, w).view(n_windows, s * s)
    scales = scales.to(device, torch.float32)  # one copy, not one per step

    def next_window(logits: torch.Tensor, k: int) -> torch.Tensor:
        mixed = mix_cfg(logits, scales[k]) if options.cfg else logits.float()
        return sample_tokens(mixed, options, generators)

    windows = torch.empty(len(prompts), n_windows, s * s, dtype=torch.long, device=device)
    if clock:
        clock.mark()
    if use_cache:
        model.setup_caches(len(rows), tokens.shape[1] + n_windows - 1)
        logits = prefill(model, tokens, pad)
    else:
        logits = full_logits(model, tokens, pad, windows[:, :0].repeat(len(rows) // len(prompts), 1, 1))[:, -1]
    windows[:, 0] = next_window(logits, 0)
    if clock:
        clock.mark()
    try:
        for k in tqdm(range(1, n_windows), desc="decode", unit="step", disable=not progress, leave=False):
            fed = windows[:, k - 1].repeat(len(rows) // len(prompts), 1)  # cond and uncond rows see the same image
            if use_cache:
                logits = decode_step(model, fed, pad, tokens.shape[1] + k - 1)
            else:
                history = windows[:, :k].repeat(len(rows) // len(prompts), 1, 1)
                logits = full_logits(model, tokens, pad, history)[:, -1]
            windows[:, k] = next_window(logits, k)
            if clock:
                clock.mark()
    finally:
        model.clear_caches()
    return windows_to_grid(windows, s, h, w)
