"""The sweep: one row per (window, resolution, batch size), FLOPs always, latency unless flops-only."""

from __future__ import annotations

import platform
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from ts_eval.devices import torch_device, torch_dtype
from ts_eval.errors import UsageError
from ts_eval.generators.token_shuffle.configs import load_config
from ts_eval.generators.token_shuffle.generator import build_model, build_vq, token_grid
from ts_eval.generators.token_shuffle.model import check_window, param_count, shuffle_param_count
from ts_eval.generators.token_shuffle.sampling import SamplingOptions
from ts_eval.sweep.flops import FORMULA, analytic_flops, counted_flops, counted_vq_flops
from ts_eval.sweep.latency import time_generation

FORMAT = "ts-eval/sweep@1"
TOLERANCE = 0.02  # counted vs analytic FLOPs


@dataclass
class SweepOptions:
    config: str = "paper-2.7b"
    windows: tuple[int, ...] = (1, 2, 4)
    resolutions: tuple[int, ...] = (1024, 2048)
    batch_sizes: tuple[int, ...] = (1,)
    cfg: bool = True
    flops_only: bool = False
    device: str = "auto"
    dtype: str = "auto"
    repeats: int = 3
    warmup: int = 1
    text_tokens: int = 64  # prompt length incl. <bos>; <|start_of_image|> comes on top
    cfg_scale: float = 7.5
    seed: int = 0
    progress: bool = True


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def validate(options: SweepOptions):
    """Check every combination before any work, so bad input costs nothing."""
    args = load_config(options.config)
    if not options.windows or not options.resolutions or not options.batch_sizes:
        raise UsageError("--windows, --resolutions and --batch-sizes each need at least one value")
    for window in options.windows:
        for resolution in options.resolutions:
            if window < 1:
                raise UsageError(f"window must be at least 1, got {window}")
            token_grid(args, resolution, window)
        check_window(args, window)
    if any(b < 1 for b in options.batch_sizes):
        raise UsageError("--batch-sizes must be positive")
    if options.repeats < 1:
        raise UsageError(f"--repeats must be at least 1, got {options.repeats}")
    if options.text_tokens < 1 or options.text_tokens > args.max_text_tokens:
        raise UsageError(f"--text-tokens must be in 1..{args.max_text_tokens} for this config")
    device = torch_device(options.device)  # refuses cuda without CUDA even for --flops-only
    dtype = torch_dtype(options.dtype, device)
    return args, device, dtype


def run_sweep(options: SweepOptions) -> dict[str, Any]:
    args, device, dtype = validate(options)
    prefill_len = options.text_tokens + 1
    rows: list[dict[str, Any]] = []
    combos = [(w, r, b) for w in options.windows for r in options.resolutions for b in options.batch_sizes]
    bar = tqdm(combos, desc="sweep", unit="row", disable=not options.progress)
    meta_models: dict[int, Any] = {}
    meta_vq = build_vq(args, "meta", dtype)
    real_vq = None if options.flops_only else build_vq(args, device, dtype, seed=options.seed + 1)
    sampling = SamplingOptions(cfg_scale=options.cfg_scale if options.cfg else 1.0)
    for window in options.windows:
        meta_models[window] = build_model(args, window, "meta", dtype)
    for window, resolution, batch in bar:
        bar.set_postfix_str(f"s={window} {resolution}px b={batch}")
        grid = token_grid(args, resolution, window)
        image_tokens = grid[0] * grid[1]
        positions = image_tokens // (window * window)
        meta = meta_models[window]
        counted = counted_flops(meta, image_tokens, prefill_len, options.cfg)
        analytic = analytic_flops(args, window, image_tokens, prefill_len, options.cfg)
        cache_rows = batch * (2 if options.cfg else 1)
        row: dict[str, Any] = {
            "window": window, "resolution": resolution, "batch_size": batch, "cfg": options.cfg,
            "image_tokens": image_tokens, "image_positions": positions, "text_tokens": options.text_tokens,
            "params": param_count(meta), "shuffle_params": shuffle_param_count(meta), "vq_params": param_count(meta_vq),
            "flops_analytic": analytic, "flops_counted": counted["total"],
            "flops_rel_diff": (counted["total"] - analytic) / analytic,
            "flops_prefill": counted["prefill"], "flops_decode_step_first": counted["decode_step_first"],
            "vq_decode_flops": counted_vq_flops(meta_vq, grid),
            "kv_cache_bytes": 2 * args.n_layers * cache_rows * args.kv_heads * args.head_dim
                              * (prefill_len + positions - 1) * torch.tensor([], dtype=dtype).element_size(),
        }
        if not options.flops_only:
            model = build_model(args, window, device, dtype, seed=options.seed)
            timing = time_generation(model, real_vq, batch_size=batch, grid=grid, prefill_len=prefill_len,
                                     options=sampling, repeats=options.repeats, warmup=options.warmup, seed=options.seed)
            row.update(asdict(timing))
            del model
        rows.append(row)
    bar.close()
    return {
        "format": FORMAT,
        "config": options.config,
        "model": args.to_dict(),
        "device": "meta (FLOPs only)" if options.flops_only else _device_name(device),
        "dtype": str(dtype).removeprefix("torch."),
        "torch": torch.__version__,
        "settings": {"cfg_scale": sampling.cfg_scale, "cfg_schedule": sampling.cfg_schedule, "top_k": sampling.top_k,
                     "repeats": options.repeats, "warmup": options.warmup, "prefill_len": prefill_len},
        "rows": rows,
    }


def check_agreement(result: dict[str, Any], tolerance: float = TOLERANCE) -> list[str]:
    """Rows whose counted and analytic FLOPs differ by more than `tolerance`."""
    return [f"s={r['window']} {r['resolution']}px: counted {r['flops_counted']:.4g} vs analytic {r['flops_analytic']:.4g}"
            for r in result["rows"] if abs(r["flops_rel_diff"]) > tolerance]


def _baseline(rows: list[dict[str, Any]], row: dict[str, Any]) -> dict[str, Any] | None:
    for other in rows:
        if other["window"] == 1 and all(other[k] == row[k] for k in ("resolution", "batch_size", "cfg")):
            return other
    return None


def _si(value: float, unit: str = "") -> str:
    """42.77e12 -> '42.77 T' (engineering prefixes, so tiny and 2.7B configs read alike)."""
    for prefix, scale in (("P", 1e15), ("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(value) >= scale:
            return f"{value / scale:.4g} {prefix}{unit}"
    return f"{value:.4g} {unit}".rstrip()


def markdown(result: dict[str, Any]) -> str:
    rows = result["rows"]
    timed = any("latency_s" in r for r in rows)
    head = ["window", "resolution", "batch", "image tokens", "positions", "FLOPs (analytic)", "FLOPs (counted)",
            "diff", "× fewer than s=1", "VQ decode FLOPs", "params (+ shuffle MLPs)", "KV cache"]
    if timed:
        head += ["s / image", "p90", "prefill s", "decode step ms", "VQ s", "tokens/s", "× faster than s=1"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        base = _baseline(rows, r)
        cells = [r["window"], r["resolution"], r["batch_size"], r["image_tokens"], r["image_positions"],
                 _si(r["flops_analytic"]), _si(r["flops_counted"]), f"{r['flops_rel_diff']:+.2%}",
                 f"{base['flops_counted'] / r['flops_counted']:.2f}" if base else "",
                 _si(r["vq_decode_flops"]),
                 f"{_si(r['params'])} (+{_si(r['shuffle_params'])})", f"{r['kv_cache_bytes'] / 2**20:.1f} MiB"]
        if timed:
            cells += [f"{r['latency_s']:.4g}", f"{r['latency_p90_s']:.4g}", f"{r['prefill_s']:.4g}",
                      f"{r['decode_step_s'] * 1e3:.3g}", f"{r['vq_decode_s']:.4g}", f"{r['tokens_per_s']:.4g}",
                      f"{base['latency_s'] / r['latency_s']:.2f}" if base else ""]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    settings = result["settings"]
    intro = (f"Config `{result['config']}` ({result['dtype']}), device: {result['device']}, torch {result['torch']}; "
             f"CFG {'on' if rows and rows[0]['cfg'] else 'off'} (scale {settings['cfg_scale']}), prompt of "
             f"{settings['prefill_len'] - 1} tokens + <|start_of_image|>. FLOPs are for one image, the whole sampling "
             "loop; VQ decode apart. KV cache for the whole batch.")
    method = ("Counted FLOPs: `torch.utils.flop_counter.FlopCounterMode` around the sampler's own `prefill` and "
              "`decode_step` on the meta device with the MATH SDPA backend; decode steps 1, 2 and n-1 are counted "
              "exactly and, the count being affine in position (checked on the third step), the series is summed. "
              "Analytic FLOPs:")
    title = f"# Token-Shuffle efficiency sweep: `{result['config']}`\n\n"
    return title + intro + "\n\n" + "\n".join(lines) + "\n\n" + method + "\n\n```\n" + FORMULA + "```\n"


def write_outputs(result: dict[str, Any], json_path: Path, markdown_path: Path | None, plot_dir: Path | None) -> None:
    from ts_eval.store import write_atomic, write_json

    write_json(json_path, result)
    if markdown_path is not None:
        write_atomic(markdown_path, markdown(result).encode("utf-8"))
    if plot_dir is not None:
        from ts_eval.sweep.plots import plot_sweep

        plot_sweep(result, plot_dir)
