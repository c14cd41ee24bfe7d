"""Timed generation with the reference sampler: warm-up excluded (and reported apart: with `torch.compile` it
holds the compilation), device-synchronised marks (CUDA events on GPU), fixed seeds, medians over repeats;
prefill, per-step decode and VQ decode reported apart."""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

import torch

from ts_eval.generators.token_shuffle.sampling import SamplingOptions, StepFn, decode_step, generate_codes
from ts_eval.generators.token_shuffle.timing import Clock, synchronize


@dataclass(frozen=True)
class Timing:
    latency_s: float  # median seconds per image (a batch's wall time / batch size)
    latency_p90_s: float
    batch_latency_s: float  # median wall time of one whole batch
    prefill_s: float  # median prefill (+ first draw) of one generation (one image on CPU, the batch on GPU)
    decode_step_s: float  # median seconds of one decode step (of one generation, as prefill)
    vq_decode_s: float  # per batch
    tokens_per_s: float  # image tokens sampled per second (prefill + decode, whole batch)
    warmup_s: float  # wall time of the warm-up runs (compilation included)
    compile_s: float  # warm-up time beyond a timed run: the one-off cost of torch.compile (≈0 eager)
    peak_mem_bytes: int | None


def _p90(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))]


def time_generation(
    model,
    vq,
    *,
    batch_size: int,
    grid: tuple[int, int],
    prefill_len: int,
    options: SamplingOptions,
    repeats: int,
    warmup: int = 1,
    use_cache: bool = True,
    step_fn: StepFn | None = None,
    seed: int = 0,
) -> Timing:
    """Generate `batch_size` images (prompts of `prefill_len - 1` fixed ids) `warmup + repeats` times and
    decode each image alone with `vq` (fp32), as the generator does."""
    device = model.output.weight.device
    prompts = [[(7 * i + j) % 200 + 1 for j in range(prefill_len - 1)] for i in range(batch_size)]
    uncond = prompts[0][:1]
    seeds = [seed + i for i in range(batch_size)]
    totals, prefills, steps, vq_times, warm = [], [], [], [], []
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    for run in range(warmup + repeats):
        started = time.perf_counter()
        clock = Clock(device)
        codes = generate_codes(
            model,
            prompts,
            uncond,
            seeds,
            grid,
            options,
            use_cache=use_cache,
            step_fn=step_fn or decode_step,
            clock=clock,
        )
        with torch.no_grad():
            clock.mark("start")
            for c in codes:
                vq.decode_code(c[None])
            clock.mark("vq")
        synchronize(device)
        if run < warmup:
            warm.append(time.perf_counter() - started)
            continue
        prefills.extend(clock.all("prefill"))
        steps.extend(clock.all("step"))
        vq_times.append(clock.total("vq"))
        totals.append(sum(s for _, s in clock.intervals()))  # first mark to last, gaps between images included
    batch = statistics.median(totals)
    generation = batch - statistics.median(vq_times)
    n_tokens = grid[0] * grid[1] * batch_size
    return Timing(
        latency_s=batch / batch_size,
        latency_p90_s=_p90(totals) / batch_size,
        batch_latency_s=batch,
        prefill_s=statistics.median(prefills),
        decode_step_s=statistics.median(steps) if steps else 0.0,
        vq_decode_s=statistics.median(vq_times),
        tokens_per_s=n_tokens / generation,
        warmup_s=sum(warm),
        compile_s=max(0.0, sum(warm) - len(warm) * batch) if warm else 0.0,
        peak_mem_bytes=int(torch.cuda.max_memory_allocated(device)) if device.type == "cuda" else None,
    )
