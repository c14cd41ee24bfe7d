"""The sweep: one inference row per (window, resolution, batch size) — FLOPs always, latency unless flops-only —
and one training row per (training window, resolution)."""

from __future__ import annotations

import platform
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from ts_eval.devices import torch_device, torch_dtype
from ts_eval.errors import UsageError
from ts_eval.generators.token_shuffle.configs import ModelArgs, load_config
from ts_eval.generators.token_shuffle.generator import build_model, build_vq, token_grid
from ts_eval.generators.token_shuffle.model import cache_dtype, check_window, param_count, shuffle_param_count
from ts_eval.generators.token_shuffle.sampling import (
    SamplingOptions,
    cache_capacity,
    compile_decode_step,
    decode_step,
    prompt_block,
)
from ts_eval.sweep.flops import (
    analytic_flops,
    analytic_training_flops,
    counted_flops,
    counted_training_flops,
    counted_vq_flops,
)
from ts_eval.sweep.latency import time_generation
from ts_eval.sweep.tables import markdown

FORMAT = "ts-eval/sweep@2"
TOLERANCE = 0.02  # counted vs analytic FLOPs


@dataclass
class SweepOptions:
    config: str = "paper-2.7b"
    windows: tuple[int, ...] = (1, 2, 4)
    resolutions: tuple[int, ...] = (1024, 2048)
    batch_sizes: tuple[int, ...] = (1,)
    train_windows: tuple[int, ...] = (1, 2, 4, 8)  # the paper's Fig. 4
    cfg: bool = True
    flops_only: bool = False
    compile: bool = False
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
    for window in (*options.windows, *options.train_windows):
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


def kv_cache_bytes_per_image(args: ModelArgs, prefill_len: int, positions: int, cfg: bool, dtype) -> int:
    """The KV cache the sampler allocates for one image (its cond and uncond rows) in `dtype` (the cache's:
    the model's on GPU, fp32 on CPU); a GPU batch holds batch-size times this, a CPU generation (one image at
    a time) exactly this."""
    length = cache_capacity(args.max_text_tokens, prompt_block(prefill_len), positions)
    rows = 2 if cfg else 1
    return (
        2 * args.n_layers * rows * args.kv_heads * args.head_dim * length * torch.tensor([], dtype=dtype).element_size()
    )


def inference_row(
    args: ModelArgs,
    meta,
    meta_vq,
    window: int,
    resolution: int,
    batch: int,
    prefill_len: int,
    options: SweepOptions,
    cache_dtype,
) -> dict[str, Any]:
    grid = token_grid(args, resolution, window)
    image_tokens = grid[0] * grid[1]
    positions = image_tokens // (window * window)
    counted = counted_flops(meta, image_tokens, prefill_len, options.cfg)
    analytic = analytic_flops(args, window, image_tokens, prefill_len, options.cfg)
    vq_flops = counted_vq_flops(meta_vq, grid)
    return {
        "window": window,
        "resolution": resolution,
        "batch_size": batch,
        "cfg": options.cfg,
        "image_tokens": image_tokens,
        "image_positions": positions,
        "text_tokens": options.text_tokens,
        "params": param_count(meta),
        "shuffle_params": shuffle_param_count(meta),
        "vq_params": param_count(meta_vq),
        "flops_analytic": analytic,
        "flops_counted": counted["total"],
        "flops_rel_diff": (counted["total"] - analytic) / analytic,
        "flops_static": analytic_flops(
            args, window, image_tokens, prefill_len, options.cfg, static_block=prompt_block(prefill_len)
        ),
        "flops_prefill": counted["prefill"],
        "flops_decode_step_first": counted["decode_step_first"],
        "vq_decode_flops": vq_flops,
        "flops_end_to_end": counted["total"] + vq_flops,
        "kv_cache_bytes_per_image": kv_cache_bytes_per_image(args, prefill_len, positions, options.cfg, cache_dtype),
    }


def training_row(args: ModelArgs, meta, window: int, resolution: int, prefill_len: int) -> dict[str, Any]:
    grid = token_grid(args, resolution, window)
    image_tokens = grid[0] * grid[1]
    positions = image_tokens // (window * window)
    counted = counted_training_flops(meta, image_tokens, prefill_len)
    analytic = analytic_training_flops(args, window, image_tokens, prefill_len)
    return {
        "window": window,
        "resolution": resolution,
        "image_tokens": image_tokens,
        "image_positions": positions,
        "sequence_length": prefill_len + positions - 1,
        "train_flops_analytic": analytic,
        "train_flops_counted": counted,
        "train_flops_rel_diff": (counted - analytic) / analytic,
    }


def run_sweep(options: SweepOptions) -> dict[str, Any]:
    args, device, dtype = validate(options)
    prefill_len = options.text_tokens + 1
    combos = [(w, r, b) for w in options.windows for r in options.resolutions for b in options.batch_sizes]
    train_combos = [(w, r) for w in options.train_windows for r in options.resolutions]
    bar = tqdm(total=len(combos) + len(train_combos), desc="sweep", unit="row", disable=not options.progress)
    meta_models = {w: build_model(args, w, "meta", dtype) for w in {*options.windows, *options.train_windows}}
    meta_vq = build_vq(args, "meta")
    real_vq = None if options.flops_only else build_vq(args, device, seed=options.seed + 1)
    sampling = SamplingOptions(cfg_scale=options.cfg_scale if options.cfg else 1.0)
    rows: list[dict[str, Any]] = []
    for window, resolution, batch in combos:
        bar.set_postfix_str(f"inference s={window} {resolution}px b={batch}")
        # FLOPs-only sweeps describe the model on its accelerator: the cache in the model's dtype
        kv_dtype = dtype if options.flops_only else cache_dtype(device.type, dtype)
        row = inference_row(
            args, meta_models[window], meta_vq, window, resolution, batch, prefill_len, options, kv_dtype
        )
        if not options.flops_only:
            model = build_model(args, window, device, dtype, seed=options.seed)
            step_fn = compile_decode_step(device) if options.compile else decode_step
            timing = time_generation(
                model,
                real_vq,
                batch_size=batch,
                grid=token_grid(args, resolution, window),
                prefill_len=prefill_len,
                options=sampling,
                repeats=options.repeats,
                warmup=options.warmup,
                step_fn=step_fn,
                seed=options.seed,
            )
            row.update(asdict(timing))
            del model
        rows.append(row)
        bar.update(1)
    training_rows = []
    for window, resolution in train_combos:
        bar.set_postfix_str(f"training s={window} {resolution}px")
        training_rows.append(training_row(args, meta_models[window], window, resolution, prefill_len))
        bar.update(1)
    bar.close()
    return {
        "format": FORMAT,
        "config": options.config,
        "model": args.to_dict(),
        "device": "meta (FLOPs only)" if options.flops_only else _device_name(device),
        "dtype": str(dtype).removeprefix("torch."),
        "torch": torch.__version__,
        "settings": {
            "cfg_scale": sampling.cfg_scale,
            "cfg_schedule": sampling.cfg_schedule,
            "top_k": sampling.top_k,
            "repeats": options.repeats,
            "warmup": options.warmup,
            "prefill_len": prefill_len,
            "compile": options.compile,
            "batch_invariant": device.type == "cpu",
        },
        "rows": rows,
        "training_rows": training_rows,
    }


def check_agreement(result: dict[str, Any], tolerance: float = TOLERANCE) -> list[str]:
    """Rows whose counted and analytic FLOPs differ by more than `tolerance`."""
    inference = [
        f"inference s={r['window']} {r['resolution']}px: counted {r['flops_counted']:.4g} vs analytic "
        f"{r['flops_analytic']:.4g}"
        for r in result["rows"]
        if abs(r["flops_rel_diff"]) > tolerance
    ]
    training = [
        f"training s={r['window']} {r['resolution']}px: counted {r['train_flops_counted']:.4g} vs analytic "
        f"{r['train_flops_analytic']:.4g}"
        for r in result.get("training_rows", [])
        if abs(r["train_flops_rel_diff"]) > tolerance
    ]
    return inference + training


def write_outputs(
    result: dict[str, Any], json_path: Path | None, markdown_path: Path | None, plot_dir: Path | None
) -> None:
    from ts_eval.store import write_atomic, write_json

    if json_path is not None:
        write_json(json_path, result)
    if markdown_path is not None:
        write_atomic(markdown_path, markdown(result).encode("utf-8"))
    if plot_dir is not None:
        from ts_eval.sweep.plots import plot_sweep

        plot_sweep(result, plot_dir)
