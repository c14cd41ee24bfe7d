"""Decode speed of the reference Token-Shuffle generator: image tokens/s and ms per image for each window,
with and without the KV cache, with CFG on and off.

Weights are random (speed does not depend on them). Each row runs one warm-up generation, then the median
of `--repeats`; generation time (prefill + decode steps) and VQ decode are timed apart with the sampler's
own device clock (CUDA events on GPU). The no-cache baseline recomputes the whole sequence every step, so
it only runs where it finishes in reasonable time (`--no-cache`), once, without warm-up.
`ms_per_image_from_median_step` (prefill + (n-1) × the median step) is printed next to the wall-clock
median because on a shared machine other processes inflate a few steps a lot.

    python benchmarks/decode_speed.py [--configs tiny,small] [--windows 1,2,4] [--resolution 512]
                                      [--device cpu] [--dtype fp32] [--batch-sizes 1] [--threads 1] [--json OUT.json]

GPU run of the paper's config (random weights, bf16, 1024²):
    python benchmarks/decode_speed.py --configs paper-2.7b --resolution 1024 --device cuda --dtype bf16 --batch-sizes 1,8
"""

from __future__ import annotations

import argparse
import platform
from pathlib import Path

import torch
from tabulate import tabulate

from ts_eval.devices import torch_device, torch_dtype
from ts_eval.generators.token_shuffle.configs import load_config
from ts_eval.generators.token_shuffle.generator import build_model, build_vq, token_grid
from ts_eval.generators.token_shuffle.sampling import SamplingOptions
from ts_eval.store import write_json
from ts_eval.sweep.latency import time_generation


def _ints(text: str) -> list[int]:
    return [int(v) for v in text.split(",") if v.strip()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", default="tiny,small")
    parser.add_argument("--windows", type=_ints, default=[1, 2, 4])
    parser.add_argument("--resolution", type=int, default=512, help="512 px = 1,024 tokens at downsample 16")
    parser.add_argument("--batch-sizes", type=_ints, default=[1])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="auto")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--text-tokens", type=int, default=64)
    parser.add_argument("--no-cache", default="tiny:1024,small:64",
                        help="config:max_positions pairs that also get the no-cache baseline (it costs ~n² per image)")
    parser.add_argument("--json", default="decode_speed.json")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch_device(args.device)
    dtype = torch_dtype(args.dtype, device)
    no_cache_limits = {k: int(v) for k, _, v in (pair.partition(":") for pair in args.no_cache.split(",") if pair)}
    rows = []
    for name in args.configs.split(","):
        config = load_config(name)
        vq = build_vq(config, device, dtype, seed=1)
        for window in args.windows:
            grid = token_grid(config, args.resolution, window)
            positions = grid[0] * grid[1] // (window * window)
            model = build_model(config, window, device, dtype, seed=0)
            for batch in args.batch_sizes:
                for cfg in (False, True):
                    caches = [True]
                    if positions <= no_cache_limits.get(name, 0):
                        caches.append(False)
                    for use_cache in caches:
                        timing = time_generation(model, vq, batch_size=batch, grid=grid, prefill_len=args.text_tokens + 1,
                                                 options=SamplingOptions(cfg_scale=7.5 if cfg else 1.0),
                                                 repeats=args.repeats if use_cache else 1,
                                                 warmup=1 if use_cache else 0, use_cache=use_cache)
                        generation = timing.batch_latency_s - timing.vq_decode_s
                        # Robust to interference from other processes: prefill + (n-1) median steps.
                        from_steps = timing.prefill_s + (positions - 1) * timing.decode_step_s
                        rows.append({"config": name, "window": window, "resolution": args.resolution,
                                     "image_tokens": grid[0] * grid[1], "positions": positions, "batch_size": batch,
                                     "cfg": cfg, "kv_cache": use_cache,
                                     "ms_per_image": 1e3 * generation / batch,
                                     "ms_per_image_from_median_step": 1e3 * from_steps / batch,
                                     "image_tokens_per_s": timing.tokens_per_s,
                                     "decode_step_ms": 1e3 * timing.decode_step_s, "prefill_ms": 1e3 * timing.prefill_s,
                                     "vq_decode_ms": 1e3 * timing.vq_decode_s, "peak_mem_bytes": timing.peak_mem_bytes})
                        print(rows[-1], flush=True)
            del model
    for row in rows:  # speed-ups against the matching s=1 / cached rows
        same = lambda other, **kw: all(other[k] == kw.get(k, row[k]) for k in ("config", "batch_size", "cfg", "window", "kv_cache"))
        base = next((o for o in rows if same(o, window=1)), None)
        cached = next((o for o in rows if same(o, kv_cache=True)), None)
        for key, suffix in (("ms_per_image", ""), ("ms_per_image_from_median_step", "_from_median_step")):
            row["speedup_vs_s1" + suffix] = base[key] / row[key] if base else None
            row["cache_speedup" + suffix] = row[key] / cached[key] if cached and not row["kv_cache"] else None
    device_name = torch.cuda.get_device_name(device) if device.type == "cuda" else \
        f"cpu ({platform.machine()}, {torch.get_num_threads()} threads)"
    headers = ["config", "window", "positions", "batch_size", "cfg", "kv_cache", "ms_per_image",
               "ms_per_image_from_median_step", "image_tokens_per_s", "decode_step_ms", "prefill_ms", "vq_decode_ms",
               "speedup_vs_s1", "speedup_vs_s1_from_median_step", "cache_speedup", "cache_speedup_from_median_step"]
    print(f"\n{device_name}, {str(dtype).removeprefix('torch.')}, torch {torch.__version__}, {args.resolution}px")
    print(tabulate([[r[h] for h in headers] for r in rows], headers=headers, floatfmt=".4g"))
    write_json(Path(args.json), {"device": device_name, "dtype": str(dtype).removeprefix("torch."),
                                 "torch": torch.__version__, "rows": rows})


if __name__ == "__main__":
    main()
