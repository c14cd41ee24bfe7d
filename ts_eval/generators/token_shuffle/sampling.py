"""Generation as a few small functions, read top to bottom (gpt-fast / LlamaGen style):

`pack_prompts` -> `prefill` (whole prompt, fills the KV cache, predicts window 0) -> `decode_step` (feeds
window k-1 at one position, predicts and samples window k: s² tokens per step) -> `generate_codes`.

The decode step has static shapes for a whole generation and takes everything that changes from step to
step from tensors already on the device (the step index, from which it derives positions, the attention
mask, the CFG scales and the sampling noise), so it runs the same eager or under `torch.compile` (CUDA
graphs on GPU) without a host round trip. CFG batches `[cond rows, uncond rows]` and mixes logits in fp32
with the schedule's scale per token; sampling (temperature, top-k, top-p, a Gumbel draw from `noise.py`) is
part of the step. `full_logits` is the same model without a cache (training, the no-cache baseline, and the
cache-equivalence tests).

On CPU each image runs alone (its cond and uncond rows together): a CPU matmul's rounding depends on how
many rows it multiplies, so batching images would make an image depend on its batch. On GPU images are
batched (see docs/token-shuffle-reference.md for what that means for reproducibility).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from tqdm.auto import tqdm

from ts_eval.errors import UsageError
from ts_eval.generators.token_shuffle.cfg_schedule import cfg_scales
from ts_eval.generators.token_shuffle.model import TokenShuffleTransformer
from ts_eval.generators.token_shuffle.noise import gumbel, key_tensor
from ts_eval.generators.token_shuffle.shuffle import grid_to_windows, windows_to_grid
from ts_eval.generators.token_shuffle.timing import Clock

PROMPT_BUCKET = 16  # prompts are padded to a multiple of this, so a compiled step sees few cache shapes


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


def prompt_block(longest: int, bucket: int = PROMPT_BUCKET) -> int:
    """Positions the prompts of a batch take: the longest row rounded up to a multiple of `bucket`."""
    return -(-longest // bucket) * bucket


def pack_prompts(rows: list[list[int]], device, bucket: int = PROMPT_BUCKET) -> tuple[torch.Tensor, torch.Tensor]:
    """Token rows -> (tokens (R, P), lengths (R,)): each row from index 0, padded on the right with id 0 up to
    P = `prompt_block` of the longest row."""
    length = prompt_block(max(len(r) for r in rows), bucket)
    tokens = torch.zeros(len(rows), length, dtype=torch.long)
    for i, row in enumerate(rows):
        tokens[i, : len(row)] = torch.tensor(row, dtype=torch.long)
    lengths = torch.tensor([len(r) for r in rows], dtype=torch.long)
    return tokens.to(device), lengths.to(device)


def prefill(model: TokenShuffleTransformer, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Run the prompts (each ending in <|start_of_image|>) into the cache; logits of window 0: (R, s², V)."""
    positions = torch.arange(tokens.shape[1], device=tokens.device).expand_as(tokens)
    hidden = model.backbone(model.embed_text(tokens), positions, None, cache="fill")
    last = hidden[torch.arange(tokens.shape[0], device=tokens.device), lengths - 1]  # each row's <|start_of_image|>
    return model.image_logits(last[:, None])[:, 0]


def full_logits(
    model: TokenShuffleTransformer, tokens: torch.Tensor, lengths: torch.Tensor, windows: torch.Tensor
) -> torch.Tensor:
    """No cache: prompts (R, P) + windows (R, k, s²) in one forward; logits of windows 0..k: (R, k+1, s², V).

    Windows follow the padded prompt block; each row's windows take RoPE positions len, len+1, … and its
    pads are hidden from every real token, so a row computes what it would alone."""
    p, k = tokens.shape[1], windows.shape[1]
    x = torch.cat([model.embed_text(tokens), model.embed_windows(windows)], dim=1)
    index = torch.arange(p + k, device=tokens.device)
    rope_pos = torch.where(index < p, index, lengths[:, None] + index - p)
    real = (index[None, :] < lengths[:, None]) | (index[None, :] >= p)  # (R, T): not a pad
    causal = index[:, None] >= index[None, :]
    mask = (causal & real[:, None, :]) | torch.eye(p + k, dtype=torch.bool, device=tokens.device)  # a pad sees itself
    hidden = model.backbone(x, rope_pos, mask[:, None])
    first = hidden[torch.arange(tokens.shape[0], device=tokens.device), lengths - 1][:, None]
    return model.image_logits(torch.cat([first, hidden[:, p:]], dim=1))


@dataclass(frozen=True)
class DecodeState:
    """Everything a step needs beyond the fed window and the step index, on the device, made once per
    generation."""

    options: SamplingOptions
    lengths: torch.Tensor  # (R,) prompt length of each row: window k is fed at cache index len + k
    key_index: torch.Tensor  # (S,) 0 … S-1 over the cache
    scales: torch.Tensor  # (n, s²) fp32 CFG scale of each token, window order
    noise_keys: torch.Tensor  # (B, 2) int64, per image
    sub_tokens: torch.Tensor  # (s²,) 0 … s²-1
    codes: torch.Tensor  # (V,) 0 … V-1


def token_scales(options: SamplingOptions, grid: tuple[int, int], window: int) -> torch.Tensor:
    """(n, s²) CFG scale of each token in window order: the schedule over the grid, cut into windows."""
    scales = cfg_scales(options.cfg_schedule, options.cfg_scale, grid)
    return grid_to_windows(scales[None], window)[0]


def make_state(
    options: SamplingOptions,
    lengths: torch.Tensor,
    cache_length: int,
    grid: tuple[int, int],
    window: int,
    seeds: list[int],
    vocab: int,
) -> DecodeState:
    device = lengths.device
    if grid[0] * grid[1] * vocab >= 2**32:
        raise UsageError(
            f"a {grid[0]}x{grid[1]} token grid with a {vocab}-code codebook exceeds the sampling "
            "noise counter (2^32 draws per image)"
        )
    return DecodeState(
        options=options,
        lengths=lengths,
        key_index=torch.arange(cache_length, device=device),
        scales=token_scales(options, grid, window).to(device, torch.float32),
        noise_keys=key_tensor(seeds, device),
        sub_tokens=torch.arange(window * window, device=device),
        codes=torch.arange(vocab, device=device),
    )


def mix_cfg(logits: torch.Tensor, scales: torch.Tensor) -> torch.Tensor:
    """[cond; uncond] (2B, s², V) -> uncond + scale·(cond - uncond) in fp32, one scale per sub-token."""
    cond, uncond = logits.float().chunk(2)
    return uncond + scales.to(torch.float32)[None, :, None] * (cond - uncond)


def pick_codes(logits: torch.Tensor, options: SamplingOptions, noise: torch.Tensor) -> torch.Tensor:
    """(B, T, V) fp32 logits -> (B, T) codes: temperature, top-k, top-p, then argmax(logits + Gumbel noise)."""
    if options.temperature == 0:
        return logits.argmax(-1)
    logits = logits / options.temperature
    vocab = logits.shape[-1]
    if 0 < options.top_k < vocab:
        kth = torch.topk(logits, options.top_k, dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if options.top_p < 1.0:
        sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
        probs = sorted_logits.softmax(-1)
        drop_sorted = probs.cumsum(-1) - probs > options.top_p  # keep the token that crosses p
        logits = logits.masked_fill(torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted), float("-inf"))
    return (logits + noise).argmax(-1)


def sample_tokens(
    logits: torch.Tensor, options: SamplingOptions, noise_keys: torch.Tensor, token_index: torch.Tensor
) -> torch.Tensor:
    """(B, T, V) fp32 logits of tokens `token_index` (T,) -> (B, T) codes, each image drawing with its keys."""
    codes = torch.arange(logits.shape[-1], device=logits.device)
    return pick_codes(logits, options, gumbel(noise_keys, token_index, codes))


def sample_window(logits: torch.Tensor, state: DecodeState, step: torch.Tensor) -> torch.Tensor:
    """Logits of window `step` ((1,) int64), (R, s², V) -> its codes (B, s²): CFG mix, then a draw."""
    options = state.options
    mixed = mix_cfg(logits, state.scales.index_select(0, step)[0]) if options.cfg else logits.float()
    if options.temperature == 0:
        return mixed.argmax(-1)
    token_index = step * state.sub_tokens.shape[0] + state.sub_tokens
    return pick_codes(mixed, options, gumbel(state.noise_keys, token_index, state.codes))


def decode_logits(
    model: TokenShuffleTransformer, state: DecodeState, fed: torch.Tensor, step: torch.Tensor
) -> torch.Tensor:
    """Feed window step-1 (B, s²) at cache index len + step - 1 of each row; logits of window `step` (R, s², V)."""
    rows = torch.cat([fed, fed]) if state.options.cfg else fed  # cond and uncond rows see the same image
    position = state.lengths + step - 1  # (R,)
    mask = (state.key_index[None, :] <= position[:, None])[:, None, None, :]
    hidden = model.backbone(
        model.embed_windows(rows[:, None]), position[:, None], mask, cache="step", write_pos=position
    )
    return model.image_logits(hidden)[:, 0]


def decode_step(
    model: TokenShuffleTransformer, state: DecodeState, fed: torch.Tensor, step: torch.Tensor
) -> torch.Tensor:
    """One step of the sampler: feed window step-1 (B, s²), return the codes of window `step` (B, s²)."""
    return sample_window(decode_logits(model, state, fed, step), state, step)


StepFn = Callable[[TokenShuffleTransformer, DecodeState, torch.Tensor, torch.Tensor], torch.Tensor]


def compile_decode_step(device) -> StepFn:
    """`torch.compile` of `decode_step`: CUDA graphs ("reduce-overhead") on GPU; on CPU inductor with frozen
    weights (constant-folded and prepacked for oneDNN, which is what makes bf16 use AVX-512-BF16/AMX)."""
    if torch.device(device).type == "cuda":
        graphed = torch.compile(decode_step, mode="reduce-overhead", fullgraph=True)

        def step(*args):
            torch.compiler.cudagraph_mark_step_begin()  # each call is a new step: the previous output is copied out
            return graphed(*args)

        return step
    return torch.compile(decode_step, fullgraph=True, options={"freezing": True})


def cache_capacity(max_text_tokens: int, block: int, n_windows: int) -> int:
    """Cache positions allocated: the longest prompt the model takes (+ <|start_of_image|>, bucketed) or this
    batch's prompt block if longer, + the image positions. Allocating for the longest prompt keeps the buffers
    (and a compiled step's view of them) the same from one batch to the next."""
    return max(prompt_block(max_text_tokens + 1), block) + n_windows - 1


def image_prompt_rows(prompts: list[list[int]], uncond: list[int], start_of_image: int, cfg: bool) -> list[list[int]]:
    rows = [p + [start_of_image] for p in prompts]
    if cfg:
        rows += [uncond + [start_of_image]] * len(prompts)
    return rows


@torch.no_grad()
def generate_codes(
    model: TokenShuffleTransformer,
    prompts: list[list[int]],
    uncond: list[int],
    seeds: list[int],
    grid: tuple[int, int],
    options: SamplingOptions,
    *,
    use_cache: bool = True,
    step_fn: StepFn | None = None,
    batch_invariant: bool | None = None,
    clock: Clock | None = None,
    progress: bool = False,
) -> torch.Tensor:
    """Token rows (without <|start_of_image|>) -> VQ code grids (B, H, W).

    `step_fn` is `decode_step` or its compiled form. `batch_invariant` (default: on CPU) runs each image
    alone. `clock`, if given, is marked at the start of each generation ("start"), after prefill and the
    first draw ("prefill") and after every decode step ("step").
    """
    device = model.output.weight.device
    if batch_invariant is None:
        batch_invariant = device.type == "cpu"
    groups = [[i] for i in range(len(prompts))] if batch_invariant else [list(range(len(prompts)))]
    s = model.window
    steps = (grid[0] // s) * (grid[1] // s) - 1
    bar = tqdm(total=steps * len(groups), desc="decode", unit="step", disable=not progress, leave=False)
    codes = [
        _generate(
            model,
            [prompts[i] for i in group],
            uncond,
            [seeds[i] for i in group],
            grid,
            options,
            use_cache=use_cache,
            step_fn=step_fn or decode_step,
            clock=clock,
            bar=bar,
        )
        for group in groups
    ]
    bar.close()
    return torch.cat(codes)


class Generation:
    """One generation of a group of images (all of a batch on GPU, one image on CPU): `prefill` samples window
    0, each `advance` one more window; `codes` gives the grids. `generate_codes` runs one to the end; a
    benchmark may time a few steps, which cost the same at every position (static shapes)."""

    def __init__(
        self,
        model: TokenShuffleTransformer,
        prompts: list[list[int]],
        uncond: list[int],
        seeds: list[int],
        grid: tuple[int, int],
        options: SamplingOptions,
        use_cache: bool = True,
    ):
        device = model.output.weight.device
        self.model, self.grid, self.use_cache = model, grid, use_cache
        s = model.window
        self.n_windows = (grid[0] // s) * (grid[1] // s)
        rows = image_prompt_rows(prompts, uncond, model.args.start_of_image, options.cfg)
        self.copies = len(rows) // len(prompts)  # 2 with CFG: cond and uncond rows
        self.tokens, self.lengths = pack_prompts(rows, device)
        cache_length = self.tokens.shape[1] + self.n_windows - 1  # what this group's steps attend over
        self.state = make_state(options, self.lengths, cache_length, grid, s, seeds, model.args.codebook_size)
        self.windows = torch.empty(len(prompts), self.n_windows, s * s, dtype=torch.long, device=device)
        self.step = torch.zeros(1, dtype=torch.long, device=device)  # the window being sampled, on the device
        self.done = 0  # windows sampled so far (host-side count, never read from the device)

    @torch.no_grad()
    def prefill(self) -> None:
        model, tokens, lengths = self.model, self.tokens, self.lengths
        if self.use_cache:
            model.setup_caches(
                tokens.shape[0], cache_capacity(model.args.max_text_tokens, tokens.shape[1], self.n_windows)
            )
            logits = prefill(model, tokens, lengths)
        else:
            logits = full_logits(model, tokens, lengths, self.windows[:, :0].repeat(self.copies, 1, 1))[:, -1]
        self.windows[:, 0] = sample_window(logits, self.state, self.step)
        self.done = 1

    @torch.no_grad()
    def advance(self, step_fn: StepFn) -> None:
        k = self.done
        self.step += 1
        if self.use_cache:
            self.windows[:, k] = step_fn(self.model, self.state, self.windows[:, k - 1], self.step)
        else:
            history = self.windows[:, :k].repeat(self.copies, 1, 1)
            logits = full_logits(self.model, self.tokens, self.lengths, history)[:, -1]
            self.windows[:, k] = sample_window(logits, self.state, self.step)
        self.done = k + 1

    def codes(self) -> torch.Tensor:
        s = self.model.window
        return windows_to_grid(self.windows, s, *self.grid)


def _generate(model, prompts, uncond, seeds, grid, options, *, use_cache, step_fn, clock, bar) -> torch.Tensor:
    generation = Generation(model, prompts, uncond, seeds, grid, options, use_cache)
    if clock:
        clock.mark("start")
    generation.prefill()
    if clock:
        clock.mark("prefill")
    for _ in range(1, generation.n_windows):
        generation.advance(step_fn)
        if clock:
            clock.mark("step")
        bar.update(1)
    return generation.codes()
