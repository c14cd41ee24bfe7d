"""Timed generation with the reference sampler: warm-up excluded, device-synchronised marks (CUDA events on
GPU), fixed seeds, medians over repeats; prefill, per-step decode and VQ decode reported apart."""

from __future__ import annotations

import statistics
from dataclasses import dataclass

import torch

from ts_eval.generators.token_shuffle.sampling import SamplingOptions, generate_codes
from ts_eval.generators.token_shuffle.timing import Clock, synchronize


@dataclass(frozen=True)
class Timing:
    latency_s: float  # median seconds per image (a batch's wall time / batch size)
    latency_p90_s: float
    batch_latency_s: float  # median wall time of one whole batch
    prefill_s: float
    decode_step_s: float  # median seconds of one decode step (the whole batch)
    vq_decode_s: float  # per batch
    tokens_per_s: float  # image tokens sampled per second (prefill + decode, whole batch)
    peak_mem_bytes: int | None


def _p90(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(0.9 * (len(ordered) - 1))))]


def time_generation(model, vq, *, batch_size: int, grid: tuple[int, int], prefill_len: int,
                    options: SamplingOptions, repeats: int, warmup: int = 1, use_cache: bool = True,
                    seed: int = 0) -> Timing:
    """Generate `batch_size` images (prompts of `prefill_len - 1` fixed ids) `warmup + repeats` times."""
    device = model.output.weight.device
    prompts = [[(7 * i + j) % 200 + 1 for j in range(prefill_len - 1)] for i in range(batch_size)]
    uncond = prompts[0][:1]
    seeds = [seed + i for i in range(batch_size)]
    totals, prefills, steps, vq_times = [], [], [], []
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    for run in range(warmup + repeats):
        clock = Clock(device)
        codes = generate_codes(model, prompts, uncond, seeds, grid, options, use_cache=use_cache, clock=clock)
        with torch.no_grad():
            clock.mark()
            vq.decode_code(codes)
            clock.mark()
        synchronize(device)
        intervals = clock.intervals()  # prefill, n-1 decode steps, (gap), vq decode
        if run < warmup:
            continue
        gen = intervals[:-2]
        prefills.append(gen[0])
        steps.extend(gen[1:])
        vq_times.append(intervals[-1])
        totals.append(sum(intervals))
    batch = statistics.median(totals)
    generation = statistics.median(prefills) + sum(steps) / max(len(totals), 1)
    n_tokens = grid[0] * grid[1] * batch_size
    return Timing(
        latency_s=batch / batch_size,
        latency_p90_s=_p90(totals) / batch_size,
        batch_latency_s=batch,
        prefill_s=statistics.median(prefills),
        decode_step_s=statistics.median(steps) if steps else 0.0,
        vq_decode_s=statistics.median(vq_times),
        tokens_per_s=n_tokens / generation,
        peak_mem_bytes=int(torch.cuda.max_memory_allocated(device)) if device.type == "cuda" else None,
    )
