"""Decode speed of the reference Token-Shuffle generator.

Two tables:

* windows (default): image tokens/s and ms per image for each config and window, with and without the KV
  cache, CFG on and off; `--compile` runs the compiled decode step, `--dtype` picks the Transformer's dtype.
* `--roofline`: one config (default `gpt-b`: LlamaGen GPT-B's shape, 768 wide, 12 layers, 16,384 codes,
  256 tokens, CFG, batch 1, window 1) as eager fp32, compiled fp32, eager bf16 and compiled bf16: ms per
  decode step, the weight-read roofline ratio (weight bytes per step ÷ a read bandwidth measured in the same
  run, over the step time; also with the KV-cache reads), and the speed-up over eager fp32. The variants run
  interleaved, round after round, with a bandwidth measurement in every round, and the medians over rounds
  are reported, so a shared machine's load hits every variant alike. Each round times prefill and the first
  `--steps` decode steps of one image (a static-shape step costs the same at every position; s/image is
  prefill + (n-1) × the median step). Compile time is reported apart; the warm-up (which holds it) is
  never timed.

Weights are random (speed does not depend on them); the VQ decoder is fp32, one image at a time, as the
generator runs it. `ms_per_image_from_median_step` (prefill + (n-1) × the median step) is printed next to the
wall-clock median because on a shared machine other processes inflate a few steps a lot.

    python benchmarks/decode_speed.py [--configs tiny,small] [--windows 1,2,4] [--resolution 512] [--compile]
                                      [--device cpu] [--dtype fp32] [--batch-sizes 1] [--threads 1] [--json OUT.json]
    python benchmarks/decode_speed.py --roofline [--configs gpt-b] [--rounds 5] [--json OUT.json]

GPU run of the paper's config (random weights, bf16, 1024²): `benchmarks/gpu_suite.py`, or
    python benchmarks/decode_speed.py --configs paper-2.7b --resolution 1024 --device cuda --dtype bf16 --compile
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from pathlib import Path

import torch
from tabulate import tabulate

from ts_eval.devices import torch_device, torch_dtype
from ts_eval.generators.token_shuffle.configs import load_config
from ts_eval.generators.token_shuffle.generator import build_model, build_vq, token_grid
from ts_eval.generators.token_shuffle.roofline import decode_kv_bytes, decode_weight_bytes, measure_read_bandwidth
from ts_eval.generators.token_shuffle.sampling import (
    Generation,
    SamplingOptions,
    compile_decode_step,
    decode_step,
    prompt_block,
)
from ts_eval.generators.token_shuffle.timing import Clock
from ts_eval.store import write_json
from ts_eval.sweep.latency import time_generation


def _ints(text: str) -> list[int]:
    return [int(v) for v in text.split(",") if v.strip()]


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def window_rows(args, device, dtype) -> list[dict]:
    no_cache_limits = {k: int(v) for k, _, v in (pair.partition(":") for pair in args.no_cache.split(",") if pair)}
    rows = []
    for name in args.configs.split(","):
        config = load_config(name)
        vq = build_vq(config, device, seed=1)
        for window in args.windows:
            grid = token_grid(config, args.resolution, window)
            positions = grid[0] * grid[1] // (window * window)
            model = build_model(config, window, device, dtype, seed=0)
            step_fn = compile_decode_step(device) if args.compile else decode_step
            for batch in args.batch_sizes:
                for cfg in (False, True):
                    caches = [True]
                    if positions <= no_cache_limits.get(name, 0) and not args.compile:
                        caches.append(False)
                    for use_cache in caches:
                        timing = time_generation(
                            model,
                            vq,
                            batch_size=batch,
                            grid=grid,
                            prefill_len=args.text_tokens + 1,
                            options=SamplingOptions(cfg_scale=7.5 if cfg else 1.0),
                            repeats=args.repeats if use_cache else 1,
                            warmup=1 if use_cache else 0,
                            use_cache=use_cache,
                            step_fn=step_fn,
                        )
                        generation = timing.batch_latency_s - timing.vq_decode_s
                        # Robust to interference from other processes: prefill + (n-1) median steps, per
                        # generation (one image on CPU, the whole batch on GPU).
                        per_generation = timing.prefill_s + (positions - 1) * timing.decode_step_s
                        generations = batch if device.type == "cpu" else 1
                        rows.append(
                            {
                                "config": name,
                                "window": window,
                                "resolution": args.resolution,
                                "image_tokens": grid[0] * grid[1],
                                "positions": positions,
                                "batch_size": batch,
                                "cfg": cfg,
                                "kv_cache": use_cache,
                                "compile": args.compile,
                                "ms_per_image": 1e3 * generation / batch,
                                "ms_per_image_from_median_step": 1e3 * per_generation * generations / batch,
                                "image_tokens_per_s": timing.tokens_per_s,
                                "decode_step_ms": 1e3 * timing.decode_step_s,
                                "prefill_ms": 1e3 * timing.prefill_s,
                                "vq_decode_ms": 1e3 * timing.vq_decode_s,
                                "compile_s": timing.compile_s,
                                "peak_mem_bytes": timing.peak_mem_bytes,
                            }
                        )
                        print(rows[-1], flush=True)
            del model
    for row in rows:  # speed-ups against the matching s=1 / cached rows
        base = next((o for o in rows if _same_setting(o, row, window=1)), None)
        cached = next((o for o in rows if _same_setting(o, row, kv_cache=True)), None)
        for key, suffix in (("ms_per_image", ""), ("ms_per_image_from_median_step", "_from_median_step")):
            row["speedup_vs_s1" + suffix] = base[key] / row[key] if base else None
            row["cache_speedup" + suffix] = row[key] / cached[key] if cached and not row["kv_cache"] else None
    return rows


WINDOW_HEADERS = [
    "config",
    "window",
    "positions",
    "batch_size",
    "cfg",
    "kv_cache",
    "ms_per_image",
    "ms_per_image_from_median_step",
    "image_tokens_per_s",
    "decode_step_ms",
    "prefill_ms",
    "vq_decode_ms",
    "speedup_vs_s1",
    "speedup_vs_s1_from_median_step",
    "cache_speedup",
    "cache_speedup_from_median_step",
    "compile_s",
]


def _same_setting(other: dict, row: dict, **override) -> bool:
    """`other` has `row`'s setting, with the keys in `override` replaced."""
    return all(other[k] == override.get(k, row[k]) for k in ("config", "batch_size", "cfg", "window", "kv_cache"))


def _step_times(model, step_fn, grid, prefill_len, steps: int) -> tuple[list[float], float]:
    """One image (CFG 7.5, batch 1), prefill and the first `steps` decode steps (a static-shape step costs
    the same at every position): the seconds of each step, and the wall time projected to the whole image."""
    prompt = [(7 * j) % 200 + 1 for j in range(prefill_len - 1)]
    clock = Clock(model.output.weight.device)
    generation = Generation(model, [prompt], prompt[:1], [0], grid, SamplingOptions(cfg_scale=7.5))
    clock.mark("start")
    generation.prefill()
    clock.mark("prefill")
    for _ in range(min(steps, generation.n_windows - 1)):
        generation.advance(step_fn)
        clock.mark("step")
    step_seconds = clock.all("step")
    return step_seconds, clock.total("prefill") + (generation.n_windows - 1) * statistics.median(step_seconds)


def roofline_rows(args, device) -> tuple[list[dict], dict]:
    config = load_config(args.configs.split(",")[0])
    grid = token_grid(config, args.resolution or config.default_resolution, 1)
    prefill_len = args.text_tokens + 1
    fp32 = build_model(config, 1, device, torch.float32, seed=0)
    models = {"fp32": fp32, "bf16": build_model(config, 1, device, torch.bfloat16, seed=0)}
    variants = [(mode, dtype) for dtype in ("fp32", "bf16") for mode in ("eager", "compiled")]
    steps = {v: (decode_step if v[0] == "eager" else compile_decode_step(device)) for v in variants}
    cache_length = prompt_block(prefill_len) + grid[0] * grid[1] - 1
    load_before = os.getloadavg()
    warmup = {}
    for variant in variants:  # warm-up: compilation (compiled) or first-touch costs (eager); never timed
        started = time.perf_counter()
        _step_times(models[variant[1]], steps[variant], grid, prefill_len, args.steps)
        warmup[variant] = time.perf_counter() - started
        print(f"warm-up {variant}: {warmup[variant]:.1f} s", flush=True)
    per_round: dict = {v: [] for v in variants}
    walls: dict = {v: [] for v in variants}
    bandwidths = []
    for round_index in range(args.rounds):
        bandwidths.append(measure_read_bandwidth(device))
        for variant in variants:
            step_seconds, wall = _step_times(models[variant[1]], steps[variant], grid, prefill_len, args.steps)
            per_round[variant].append(statistics.median(step_seconds))
            walls[variant].append(wall)
        print(
            f"round {round_index + 1}/{args.rounds}: bandwidth {bandwidths[-1] / 1e9:.1f} GB/s, ms/step "
            + ", ".join(f"{m} {d} {1e3 * per_round[(m, d)][-1]:.1f}" for m, d in variants),
            flush=True,
        )
    bandwidth = statistics.median(bandwidths)
    base = statistics.median(per_round[("eager", "fp32")])
    rows = []
    for mode, dtype in variants:
        model = models[dtype]
        step = statistics.median(per_round[(mode, dtype)])
        weights = decode_weight_bytes(model)
        kv = decode_kv_bytes(model, 2, cache_length)
        rows.append(
            {
                "variant": f"{mode} {dtype}",
                "ms_per_step": 1e3 * step,
                "ms_per_step_rounds": [round(1e3 * s, 2) for s in per_round[(mode, dtype)]],
                "weight_mb_per_step": weights / 1e6,
                "kv_mb_per_step": kv / 1e6,
                "weight_roofline_ms": 1e3 * weights / bandwidth,
                "roofline_ratio": weights / bandwidth / step,
                "roofline_ratio_with_kv": (weights + kv) / bandwidth / step,
                "speedup_vs_eager_fp32": base / step,
                "s_per_image_projected": statistics.median(walls[(mode, dtype)]),
                # the warm-up ran prefill + `steps` steps: what it took beyond that is compilation
                "compile_s": max(0.0, warmup[(mode, dtype)] - args.steps * step) if mode == "compiled" else 0.0,
            }
        )
    context = {
        "config": args.configs.split(",")[0],
        "grid": list(grid),
        "prefill_len": prefill_len,
        "cfg": 7.5,
        "batch_size": 1,
        "window": 1,
        "cache_length": cache_length,
        "rounds": args.rounds,
        "read_bandwidth_gb_s": bandwidth / 1e9,
        "read_bandwidth_rounds_gb_s": [round(b / 1e9, 2) for b in bandwidths],
        "loadavg_before": load_before,
        "loadavg_after": os.getloadavg(),
    }
    return rows, context


ROOFLINE_HEADERS = [
    "variant",
    "ms_per_step",
    "weight_mb_per_step",
    "kv_mb_per_step",
    "weight_roofline_ms",
    "roofline_ratio",
    "roofline_ratio_with_kv",
    "speedup_vs_eager_fp32",
    "s_per_image_projected",
    "compile_s",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", default=None, help="default: tiny,small (windows) or gpt-b (--roofline)")
    parser.add_argument("--windows", type=_ints, default=[1, 2, 4])
    parser.add_argument(
        "--resolution",
        type=int,
        default=None,
        help="pixels (default 512 for the windows table, the config's own for --roofline)",
    )
    parser.add_argument("--batch-sizes", type=_ints, default=[1])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="auto")
    parser.add_argument("--compile", action="store_true", help="torch.compile the decode step")
    parser.add_argument(
        "--roofline", action="store_true", help="eager/compiled × fp32/bf16 against the memory roofline"
    )
    parser.add_argument("--rounds", type=int, default=5, help="--roofline: interleaved rounds (median reported)")
    parser.add_argument("--steps", type=int, default=48, help="--roofline: decode steps timed per generation")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--text-tokens", type=int, default=64)
    parser.add_argument(
        "--no-cache",
        default="tiny:1024,small:64",
        help="config:max_positions pairs that also get the no-cache baseline (it costs ~n² per image)",
    )
    parser.add_argument("--json", default="decode_speed.json")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch_device(args.device)
    header = f"{_device_name(device)}, torch {torch.__version__}"
    if args.roofline:
        args.configs = args.configs or "gpt-b"
        rows, context = roofline_rows(args, device)
        print(
            f"\n{header}; {context['config']} {context['grid'][0]}x{context['grid'][1]} tokens, CFG, batch 1, window 1; "
            f"read bandwidth {context['read_bandwidth_gb_s']:.1f} GB/s (median of {context['rounds']} rounds); "
            f"load average {context['loadavg_before'][0]:.1f} before, {context['loadavg_after'][0]:.1f} after"
        )
        print(tabulate([[r[h] for h in ROOFLINE_HEADERS] for r in rows], headers=ROOFLINE_HEADERS, floatfmt=".4g"))
        write_json(
            Path(args.json), {"device": _device_name(device), "torch": torch.__version__, **context, "rows": rows}
        )
        return
    args.configs = args.configs or "tiny,small"
    args.resolution = args.resolution or 512
    dtype = torch_dtype(args.dtype, device)
    rows = window_rows(args, device, dtype)
    print(
        f"\n{header}, {str(dtype).removeprefix('torch.')}, {args.resolution}px"
        + (", compiled decode step" if args.compile else "")
    )
    print(tabulate([[r[h] for h in WINDOW_HEADERS] for r in rows], headers=WINDOW_HEADERS, floatfmt=".4g"))
    write_json(
        Path(args.json),
        {
            "device": _device_name(device),
            "dtype": str(dtype).removeprefix("torch."),
            "torch": torch.__version__,
            "rows": rows,
        },
    )


if __name__ == "__main__":
    main()
