"""Everything a GPU session should measure, in one script, with no downloads (random weights built from configs):

1. the reference generator, the paper's 2.7B config in bf16 at 1024²: windows 1, 2, 4; batch 1 and 16; eager
   and compiled (`torch.compile`, CUDA graphs): ms per decode step, prefill, VQ decode (fp32), ms per image,
   image tokens/s, peak memory, and the achieved bytes/s of a step (weights + KV cache read) as a fraction
   of the GPU's peak HBM bandwidth (from a table of known GPUs) and of a read bandwidth measured in the
   same run. A static-shape step costs the same at every position, so a few timed steps after the warm-up
   (which holds compilation and CUDA-graph capture, reported apart) give ms/image = prefill + (n-1) steps;
   the VQ decoder's time is added per image;
2. VQAScore's CLIP-FlanT5-XXL shape in bf16 (T5-XXL and CLIP ViT-L/14-336 configs with random weights, the
   2-layer GELU projector between them): images/s at batch 1, 8, 32, peak memory;
3. GenEval's detector (Mask2Former Swin-S: mmdetection's official config when mmdet is installed, else
   transformers' Mask2Former with a Swin-S backbone) and its CLIP ViT-L/14 (QuickGELU) colour classifier in
   fp16: images/s;
4. the projected wall time of `ts-eval run genai-bench --split hard` (871 prompts, one image each) and of
   the full 1600 prompts, at window 2, from the measured parts.

It writes `reports/gpu-<device>.{json,md}` (or `--out DIR`). Every section runs in its own try/except: an
error is recorded in the report and the next section runs. `--budget-s` (default 450) skips what would
not fit, so the whole script stays under 8 minutes on one H100/H200-class GPU.

`--smoke` runs the same code on CPU with tiny shapes (fp32; window 2, batch 1 and 2; tiny scorer shapes), for
CI; it writes `gpu-cpu-smoke.{json,md}` under `--out`.

    python benchmarks/gpu_suite.py                      # on a GPU machine, ~5-8 minutes
    python benchmarks/gpu_suite.py --smoke --out /tmp/x  # anywhere, ~1 minute

Run on one H200: reports/gpu-nvidia-h200.md (docs/token-shuffle-reference.md reads it). Its CPU twin runs in CI.
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import re
import statistics
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any

import torch

from ts_eval.generators.token_shuffle.configs import load_config
from ts_eval.generators.token_shuffle.generator import build_model, build_vq, token_grid
from ts_eval.generators.token_shuffle.roofline import (
    decode_kv_bytes,
    decode_weight_bytes,
    measure_read_bandwidth,
    peak_bandwidth,
)
from ts_eval.generators.token_shuffle.sampling import Generation, SamplingOptions, compile_decode_step, decode_step
from ts_eval.generators.token_shuffle.timing import Clock, synchronize
from ts_eval.geneval.tiny import TINY_MASK2FORMER, TINY_SWIN
from ts_eval.store import write_atomic, write_json

FORMAT = "ts-eval/gpu-suite@1"
GENAI_HARD_PROMPTS, GENAI_ALL_PROMPTS = 871, 1600  # GenAI-Bench-1600: 871 advanced ("hard") prompts
HARNESS_SCORER_BATCH = 8  # `ts-eval run --batch-size` default
DECODE_RESERVE_S = 120.0  # left for the scorer sections when the decode section decides what still fits


@dataclass(frozen=True)
class Shapes:
    decode_config: str
    resolution: int
    windows: tuple[int, ...]
    batches: tuple[int, ...]
    compile_batches: tuple[int, ...]  # batch sizes also timed with the compiled step
    dtype: torch.dtype
    warm_steps: int  # compile + CUDA-graph capture + a few replays
    timed_steps: int
    prompt_tokens: int
    t5: dict[str, Any]
    clip_vision: dict[str, Any]
    vqa_batches: tuple[int, ...]
    vqa_text_tokens: int
    swin: dict[str, Any]
    mask2former: dict[str, Any]
    detector_size: tuple[int, int]  # (height, width) after the test-time resize
    color_clip: str | dict[str, Any]
    color_batches: tuple[int, ...]
    geneval_batches: tuple[int, ...]


FULL = Shapes(
    decode_config="paper-2.7b",
    resolution=1024,
    windows=(2, 1, 4),
    batches=(1, 16),
    compile_batches=(1, 16),
    dtype=torch.bfloat16,
    warm_steps=6,
    timed_steps=24,
    prompt_tokens=64,
    # google/flan-t5-xxl's config.json
    t5=dict(
        vocab_size=32128,
        d_model=4096,
        d_kv=64,
        d_ff=10240,
        num_layers=24,
        num_decoder_layers=24,
        num_heads=64,
        feed_forward_proj="gated-gelu",
        tie_word_embeddings=False,
        decoder_start_token_id=0,
        pad_token_id=0,
        eos_token_id=1,
    ),
    # openai/clip-vit-large-patch14-336's vision_config
    clip_vision=dict(
        hidden_size=1024,
        intermediate_size=4096,
        num_hidden_layers=24,
        num_attention_heads=16,
        image_size=336,
        patch_size=14,
        projection_dim=768,
        hidden_act="quick_gelu",
    ),
    vqa_batches=(1, 8, 32),
    vqa_text_tokens=48,
    # Swin-S (mmdet's mask2former_swin-s-p4-w7-224_8xb2-lsj-50e_coco: embed 96, depths 2-2-18-2, window 7)
    swin=dict(
        embed_dim=96,
        depths=[2, 2, 18, 2],
        num_heads=[3, 6, 12, 24],
        window_size=7,
        image_size=224,
        out_features=["stage1", "stage2", "stage3", "stage4"],
    ),
    mask2former=dict(num_labels=80, num_queries=100),
    detector_size=(800, 800),  # a square image at mmdet's (1333, 800) test scale
    color_clip="ViT-L-14-quickgelu",
    color_batches=(1, 8, 32),
    geneval_batches=(1, 8),
)

SMOKE = Shapes(
    decode_config="tiny",
    resolution=128,
    windows=(2,),
    batches=(1, 2),
    compile_batches=(1,),
    dtype=torch.float32,
    warm_steps=3,
    timed_steps=4,
    prompt_tokens=12,
    t5=dict(
        vocab_size=128,
        d_model=32,
        d_kv=8,
        d_ff=64,
        num_layers=2,
        num_decoder_layers=2,
        num_heads=4,
        feed_forward_proj="gated-gelu",
        tie_word_embeddings=False,
        decoder_start_token_id=0,
        pad_token_id=0,
        eos_token_id=1,
    ),
    clip_vision=dict(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        image_size=32,
        patch_size=8,
        projection_dim=32,
        hidden_act="quick_gelu",
    ),
    vqa_batches=(1, 2),
    vqa_text_tokens=8,
    swin=TINY_SWIN,
    mask2former=TINY_MASK2FORMER,
    detector_size=(64, 64),
    color_clip={
        "embed_dim": 32,
        "quick_gelu": True,
        "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "head_width": 16, "patch_size": 8},
        "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
    },
    color_batches=(1, 2),
    geneval_batches=(1, 2),
)


class Budget:
    """Wall-clock budget of the whole script; a measurement that would overrun it is skipped."""

    def __init__(self, seconds: float):
        self.started = time.perf_counter()
        self.seconds = seconds

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def allows(self, estimate_s: float) -> bool:
        return self.elapsed() + estimate_s <= self.seconds


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def _free(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def _peak(device: torch.device) -> int | None:
    return int(torch.cuda.max_memory_allocated(device)) if device.type == "cuda" else None


def _timed(fn: Callable[[], Any], device: torch.device, repeats: int = 3) -> float:
    """Median seconds of `fn` after one warm-up call (device-synchronised)."""
    fn()
    synchronize(device)
    seconds = []
    for _ in range(repeats):
        clock = Clock(device)
        clock.mark("start")
        fn()
        clock.mark("run")
        seconds.append(clock.total("run"))
    return statistics.median(seconds)


def _error(exc: BaseException) -> dict[str, str]:
    return {
        "error": f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}",
        "traceback": "".join(traceback.format_exception(exc)[-3:])[-1500:],
    }


def section(report: dict, name: str, device: torch.device, fn: Callable[[], dict]) -> None:
    """Run one section; its result, or its error, goes into the report; the script goes on either way."""
    started = time.perf_counter()
    print(f"[gpu-suite] {name} ...", file=sys.stderr, flush=True)
    try:
        report[name] = fn()
    except Exception as exc:  # every failure is recorded; the other sections still run
        report[name] = _error(exc)
        print(f"[gpu-suite] {name} failed: {report[name]['error']}", file=sys.stderr, flush=True)
    report[name]["section_s"] = round(time.perf_counter() - started, 1)
    _free(device)


# -- 0. the device ------------------------------------------------------------------------------------------


def environment(device: torch.device) -> dict:
    name = _device_name(device)
    out = {
        "device": name,
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "python": platform.python_version(),
        "peak_hbm_bytes_per_s": peak_bandwidth(name) if device.type == "cuda" else None,
    }
    out["measured_read_bytes_per_s"] = measure_read_bandwidth(
        device, nbytes=(1 << 31) if device.type == "cuda" else 1 << 26
    )
    if device.type == "cuda":
        src = torch.empty(1 << 29, dtype=torch.uint8, device=device)
        dst = torch.empty_like(src)
        out["measured_copy_bytes_per_s"] = 2 * src.numel() / _timed(lambda: dst.copy_(src), device, repeats=5)
        out["gpu_memory_bytes"] = torch.cuda.get_device_properties(device).total_memory
        del src, dst
    return out


# -- 1. the reference generator -----------------------------------------------------------------------------


def _time_decode(model, window: int, batch: int, compiled: bool, shapes: Shapes, device: torch.device) -> dict:
    args = model.args
    grid = token_grid(args, shapes.resolution, window)
    prompts = [[(7 * i + j) % 200 + 1 for j in range(shapes.prompt_tokens)] for i in range(batch)]
    options = SamplingOptions(cfg_scale=7.5)
    step_fn = compile_decode_step(device) if compiled else decode_step

    def run(steps: int, clock: Clock | None) -> Generation:
        generation = Generation(model, prompts, prompts[0][:1], list(range(batch)), grid, options)
        if clock:
            clock.mark("start")
        generation.prefill()
        if clock:
            clock.mark("prefill")
        for _ in range(min(steps, generation.n_windows - 1)):
            generation.advance(step_fn)
            if clock:
                clock.mark("step")
        return generation

    started = time.perf_counter()
    run(shapes.warm_steps, None)  # compile, capture, replay
    synchronize(device)
    warmup_s = time.perf_counter() - started
    _free(device)
    clock = Clock(device)
    generation = run(shapes.timed_steps, clock)
    step_s = statistics.median(clock.all("step"))
    prefill_s = clock.total("prefill")
    n = generation.n_windows
    rows = generation.tokens.shape[0]
    weights = decode_weight_bytes(model)
    kv = decode_kv_bytes(model, rows, generation.state.key_index.shape[0])
    return {
        "window": window,
        "batch_size": batch,
        "mode": "compiled" if compiled else "eager",
        "image_positions": n,
        "decode_step_ms": 1e3 * step_s,
        "prefill_ms": 1e3 * prefill_s,
        "generation_ms_per_image": 1e3 * (prefill_s + (n - 1) * step_s) / batch,
        "image_tokens_per_s": batch * window * window / step_s,
        "warmup_s": warmup_s,
        "weight_bytes_per_step": weights,
        "kv_bytes_per_step": kv,
        "achieved_bytes_per_s": (weights + kv) / step_s,
        "peak_mem_bytes": _peak(device),
    }


def decode_section(device: torch.device, shapes: Shapes, budget: Budget, environment_info: dict) -> dict:
    args = load_config(shapes.decode_config)
    vq = build_vq(args, device, seed=1)
    vq_ms = {}
    estimates = {"compiled": 90.0, "eager": 20.0}  # seconds per measurement, updated from the ones done
    rows: list[dict] = []
    skipped: list[str] = []
    for window in shapes.windows:
        grid = token_grid(args, shapes.resolution, window)
        if shapes.resolution not in vq_ms:
            codes = torch.zeros(1, *grid, dtype=torch.long, device=device)
            with torch.no_grad():
                vq_ms[shapes.resolution] = 1e3 * _timed(partial(vq.decode_code, codes), device)
        torch._dynamo.reset()  # a fresh compile cache per model: no recompile limit carried over
        model = build_model(args, window, device, shapes.dtype, seed=0)
        for batch in shapes.batches:
            for compiled in (True, False) if batch in shapes.compile_batches else (False,):
                label = f"s={window} b={batch} {'compiled' if compiled else 'eager'}"
                estimate = estimates["compiled" if compiled else "eager"]
                if device.type == "cuda" and not budget.allows(estimate + DECODE_RESERVE_S):
                    skipped.append(f"{label}: time budget")
                    continue
                try:
                    row = _time_decode(model, window, batch, compiled, shapes, device)
                except Exception as exc:  # e.g. out of memory at batch 16, or a compile failure: next row
                    rows.append(
                        {
                            "window": window,
                            "batch_size": batch,
                            "mode": "compiled" if compiled else "eager",
                            **_error(exc),
                        }
                    )
                    _free(device)
                    continue
                estimates[row["mode"]] = row["warmup_s"] + 2 * row["prefill_ms"] / 1e3 + 10.0
                row["vq_decode_ms_per_image"] = vq_ms[shapes.resolution]
                row["ms_per_image"] = row["generation_ms_per_image"] + vq_ms[shapes.resolution]
                peak = environment_info.get("peak_hbm_bytes_per_s")
                measured = environment_info.get("measured_read_bytes_per_s")
                row["fraction_of_peak_hbm"] = row["achieved_bytes_per_s"] / peak if peak else None
                row["fraction_of_measured_read"] = row["achieved_bytes_per_s"] / measured if measured else None
                rows.append(row)
                print(f"[gpu-suite]   {label}: {row['decode_step_ms']:.3g} ms/step", file=sys.stderr, flush=True)
        del model
        torch._dynamo.reset()
        _free(device)
    return {
        "config": shapes.decode_config,
        "resolution": shapes.resolution,
        "dtype": str(shapes.dtype).removeprefix("torch."),
        "cfg": 7.5,
        "prompt_tokens": shapes.prompt_tokens,
        "timed_steps": shapes.timed_steps,
        "rows": rows,
        "skipped": skipped,
    }


KERNEL_KINDS = (
    ("matmul", re.compile(r"gemm|gemv|cutlass|xmma|nvjet|matmul|mm_", re.I)),
    ("attention", re.compile(r"flash|fmha|attention|sdpa", re.I)),
    ("fused (inductor)", re.compile(r"triton", re.I)),
)


def _kernel_kind(name: str) -> str:
    return next((kind for kind, pattern in KERNEL_KINDS if pattern.search(name)), "other")


def profile_section(device: torch.device, shapes: Shapes, budget: Budget) -> dict:
    """Where a compiled batch-1 decode step's time goes (window = the first of the decode windows): kernel time
    per step by kind and the top kernels, against the step's wall time. Wall time well above kernel time means
    launch or host gaps; kernel time near wall time means the kernels themselves run below the bandwidth."""
    from torch.profiler import ProfilerActivity, profile

    if device.type == "cuda" and not budget.allows(60):
        return {"skipped": "time budget"}
    args = load_config(shapes.decode_config)
    window = shapes.windows[0]
    torch._dynamo.reset()
    model = build_model(args, window, device, shapes.dtype, seed=0)
    prompts = [[(7 * j) % 200 + 1 for j in range(shapes.prompt_tokens)]]
    generation = Generation(
        model, prompts, prompts[0][:1], [0], token_grid(args, shapes.resolution, window), SamplingOptions(cfg_scale=7.5)
    )
    generation.prefill()
    step_fn = compile_decode_step(device)
    steps = max(2, min(shapes.timed_steps, (generation.n_windows - 1 - shapes.warm_steps) // 2))
    for _ in range(shapes.warm_steps):
        generation.advance(step_fn)
    clock = Clock(device)
    clock.mark("start")
    for _ in range(steps):
        generation.advance(step_fn)
        clock.mark("step")
    wall_ms = 1e3 * statistics.median(clock.all("step"))
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=activities) as prof:
        for _ in range(steps):
            generation.advance(step_fn)
        synchronize(device)
    kernels = []
    for event in prof.key_averages():
        on_device = getattr(event, "self_device_time_total", None)
        if on_device is None:
            on_device = getattr(event, "self_cuda_time_total", 0)
        if device.type == "cuda" and on_device > 0 and event.device_type == torch.autograd.DeviceType.CUDA:
            kernels.append(
                {
                    "name": event.key[:120],
                    "kind": _kernel_kind(event.key),
                    "calls_per_step": event.count / steps,
                    "us_per_step": on_device / steps,
                }
            )
    kernels.sort(key=lambda k: -k["us_per_step"])
    kernel_ms = sum(k["us_per_step"] for k in kernels) / 1e3
    by_kind: dict[str, float] = {}
    for k in kernels:
        by_kind[k["kind"]] = by_kind.get(k["kind"], 0.0) + k["us_per_step"] / 1e3
    weights = decode_weight_bytes(model)
    kv = decode_kv_bytes(model, generation.tokens.shape[0], generation.state.key_index.shape[0])
    del model, generation
    torch._dynamo.reset()
    return {
        "window": window,
        "batch_size": 1,
        "mode": "compiled",
        "steps_profiled": steps,
        "step_wall_ms": wall_ms,
        "kernel_ms_per_step": kernel_ms,
        "kernels_per_step": sum(k["calls_per_step"] for k in kernels),
        "gap_ms_per_step": wall_ms - kernel_ms if kernels else None,
        "ms_by_kind": by_kind,
        "bytes_per_step": weights + kv,
        "top_kernels": kernels[:12],
        "note": None
        if kernels or device.type != "cuda"
        else "the profiler saw no kernels (CUDA graph replays not traced)",
    }


# -- 2. VQAScore's CLIP-FlanT5-XXL shape ----------------------------------------------------------------------


class ClipT5Shape(torch.nn.Module):
    """CLIP vision tower -> 2-layer GELU projector -> T5 encoder-decoder scoring an answer: what t2v-metrics'
    CLIP-T5 runs per (image, question) pair, built from configs with random weights."""

    def __init__(self, shapes: Shapes, dtype: torch.dtype):
        super().__init__()
        from transformers import CLIPVisionConfig, CLIPVisionModel, T5Config, T5ForConditionalGeneration

        self.vision = CLIPVisionModel._from_config(CLIPVisionConfig(**shapes.clip_vision), torch_dtype=dtype)
        self.t5 = T5ForConditionalGeneration._from_config(T5Config(**shapes.t5), torch_dtype=dtype)
        width, d_model = shapes.clip_vision["hidden_size"], shapes.t5["d_model"]
        self.projector = torch.nn.Sequential(
            torch.nn.Linear(width, d_model), torch.nn.GELU(), torch.nn.Linear(d_model, d_model)
        ).to(dtype)

    def forward(self, images: torch.Tensor, question: torch.Tensor, answer: torch.Tensor) -> torch.Tensor:
        patches = self.vision(images, output_hidden_states=True).hidden_states[-2][:, 1:]  # layer -2, no CLS
        embeds = torch.cat([self.projector(patches), self.t5.get_input_embeddings()(question)], dim=1)
        return self.t5(inputs_embeds=embeds, labels=answer).logits


def vqascore_section(device: torch.device, shapes: Shapes, budget: Budget) -> dict:
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    with torch.device(device):
        model = ClipT5Shape(shapes, dtype).eval()
    params = sum(p.numel() for p in model.parameters())
    size = shapes.clip_vision["image_size"]
    rows = []
    for batch in shapes.vqa_batches:
        if device.type == "cuda" and not budget.allows(30):
            rows.append({"batch_size": batch, "skipped": "time budget"})
            continue
        images = torch.randn(batch, 3, size, size, device=device, dtype=dtype)
        question = torch.randint(2, shapes.t5["vocab_size"], (batch, shapes.vqa_text_tokens), device=device)
        answer = torch.randint(2, shapes.t5["vocab_size"], (batch, 2), device=device)
        _free(device)
        with torch.no_grad():
            seconds = _timed(partial(model, images, question, answer), device)
        rows.append(
            {
                "batch_size": batch,
                "s_per_batch": seconds,
                "images_per_s": batch / seconds,
                "peak_mem_bytes": _peak(device),
            }
        )
    return {
        "shape": "CLIP-FlanT5-XXL (T5-XXL + CLIP ViT-L/14-336 + projector)" if shapes is FULL else "tiny CLIP-T5",
        "params": params,
        "dtype": str(dtype).removeprefix("torch."),
        "image_size": size,
        "question_tokens": shapes.vqa_text_tokens,
        "rows": rows,
    }


# -- 3. GenEval's detector and colour classifier -------------------------------------------------------------


def _mmdet_detector(device: torch.device):
    from mmdet.apis import inference_detector, init_detector

    from ts_eval.geneval.mmdet_backend import resolve_config

    cfg, path = resolve_config("")
    detector = init_detector(cfg, checkpoint=None, device=str(device))
    return f"mmdet {path.stem} (random weights)", lambda images: inference_detector(detector, images)


def _hf_detector(device: torch.device, shapes: Shapes):
    from transformers import Mask2FormerConfig, Mask2FormerForUniversalSegmentation, SwinConfig

    config = Mask2FormerConfig(backbone_config=SwinConfig(**shapes.swin), **shapes.mask2former)
    # Built on the CPU and moved, as a loaded checkpoint would be: built under a torch.device context,
    # transformers 5's Mask2Former leaves its level embedding on the CPU.
    model = Mask2FormerForUniversalSegmentation(config).to(device).eval()
    height, width = shapes.detector_size

    def detect(images):
        pixels = torch.randn(len(images), 3, height, width, device=device)
        return model(pixel_values=pixels)

    return "transformers Mask2Former, Swin-S backbone (random weights)", detect


def geneval_section(device: torch.device, shapes: Shapes, budget: Budget) -> dict:
    import numpy as np
    import open_clip

    out: dict[str, Any] = {}
    try:
        if shapes is SMOKE:
            raise ImportError("the smoke run uses the transformers detector")
        name, detect = _mmdet_detector(device)
    except ImportError as exc:
        out["mmdet"] = f"not used: {exc}"
        name, detect = _hf_detector(device, shapes)
    out["detector"] = name
    rows = []
    for batch in shapes.geneval_batches:
        if device.type == "cuda" and not budget.allows(30):
            rows.append({"batch_size": batch, "skipped": "time budget"})
            continue
        images = [np.random.default_rng(i).integers(0, 256, (1024, 1024, 3), dtype=np.uint8) for i in range(batch)]
        with torch.no_grad():
            seconds = _timed(partial(detect, images), device)
        rows.append({"batch_size": batch, "images_per_s": batch / seconds, "peak_mem_bytes": _peak(device)})
    out["detector_rows"] = rows
    _free(device)
    dtype = torch.float16 if device.type == "cuda" else torch.float32  # the official classifier runs fp16 on GPU
    if isinstance(shapes.color_clip, str):
        clip = open_clip.create_model(shapes.color_clip, pretrained=None, device=device)
    else:
        clip = open_clip.CLIP(**shapes.color_clip).to(device)
    clip = clip.to(dtype).eval()
    size = clip.visual.image_size[0] if isinstance(clip.visual.image_size, tuple) else clip.visual.image_size
    colour = []
    for batch in shapes.color_batches:
        crops = torch.randn(batch, 3, size, size, device=device, dtype=dtype)
        with torch.no_grad():
            seconds = _timed(partial(clip.encode_image, crops), device)
        colour.append({"batch_size": batch, "crops_per_s": batch / seconds})
    out["color_classifier"] = f"open_clip {shapes.color_clip if isinstance(shapes.color_clip, str) else 'tiny CLIP'}"
    out["color_rows"] = colour
    return out


# -- 4. projected wall time of a GenAI-Bench run ----------------------------------------------------------------


def projection(report: dict) -> dict:
    decode = [r for r in report.get("decode", {}).get("rows", []) if "ms_per_image" in r and r["window"] == 2]
    vqa = [r for r in report.get("vqascore", {}).get("rows", []) if "images_per_s" in r]
    if not decode or not vqa:
        return {"error": "needs the window-2 decode rows and the VQAScore rows, which did not run"}
    best = min(decode, key=lambda r: r["ms_per_image"])
    batch1 = min((r for r in decode if r["batch_size"] == 1), key=lambda r: r["ms_per_image"], default=best)
    scorer = min(vqa, key=lambda r: abs(r["batch_size"] - HARNESS_SCORER_BATCH))
    score_s = 1.0 / scorer["images_per_s"]
    out = {"window": 2, "scorer_batch_size": scorer["batch_size"], "score_s_per_image": score_s, "runs": []}
    for label, row in (("fastest", best), ("batch 1", batch1)):
        generate_s = row["ms_per_image"] / 1e3
        for split, prompts in (("hard (871 prompts)", GENAI_HARD_PROMPTS), ("all (1600 prompts)", GENAI_ALL_PROMPTS)):
            out["runs"].append(
                {
                    "generator": f"{label}: s=2 b={row['batch_size']} {row['mode']}",
                    "split": split,
                    "generate_s_per_image": generate_s,
                    "images": prompts,
                    "generate_min": prompts * generate_s / 60,
                    "score_min": prompts * score_s / 60,
                    "total_min": prompts * (generate_s + score_s) / 60,
                }
            )
    return out


# -- the report -------------------------------------------------------------------------------------------------


def _fmt(value, digits: int = 4) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


def _table(rows: list[dict], columns: list[tuple[str, str, Callable[[Any], Any]]]) -> str:
    head = "| " + " | ".join(c[0] for c in columns) + " |\n|" + "---|" * len(columns) + "\n"
    body = []
    for r in rows:
        if "error" in r or "skipped" in r:
            body.append(
                f"| {r.get('window', '')} {r.get('batch_size', '')} {r.get('mode', '')} | "
                f"{r.get('error') or r.get('skipped')} |"
            )
        else:
            body.append("| " + " | ".join(_fmt(fn(r.get(key))) for _, key, fn in columns) + " |")
    return head + "\n".join(body)


def _environment_md(report: dict) -> list[str]:
    env = report.get("environment", {})
    kind = (
        "SMOKE run (CPU, tiny shapes): numbers mean nothing" if report["smoke"] else "random weights built from configs"
    )
    lines = [
        f"# GPU suite: {env.get('device', report['device'])}",
        "",
        (
            f"torch {env.get('torch')}, CUDA {env.get('cuda')}; {kind}; "
            f"{report['elapsed_s']:.0f} s in all (budget {report['budget_s']:.0f} s)."
        ),
        "",
    ]
    if "error" in env:
        lines += [f"Environment: **error** {env['error']}", ""]
    else:
        peak = env.get("peak_hbm_bytes_per_s")
        lines += [
            f"Peak HBM bandwidth (data sheet): {peak / 1e12:.2f} TB/s." if peak else "Peak HBM bandwidth: unknown GPU.",
            f"Measured read bandwidth (sum of a buffer): {env.get('measured_read_bytes_per_s', 0) / 1e9:.1f} GB/s"
            + (
                f"; copy: {env['measured_copy_bytes_per_s'] / 1e9:.1f} GB/s (read + write)."
                if env.get("measured_copy_bytes_per_s")
                else "."
            ),
            "",
        ]
    return lines


def _decode_md(report: dict) -> list[str]:
    lines: list[str] = []
    decode = report.get("decode", {})
    lines += [
        f"## Reference generator: `{decode.get('config')}` at {decode.get('resolution')}², {decode.get('dtype')}, CFG 7.5",
        "",
    ]
    if "error" in decode:
        lines += [f"**error** {decode['error']}", ""]
    else:
        mib = lambda b: b / 2**20 if b else None  # noqa: E731
        lines += [
            _table(
                decode["rows"],
                [
                    ("window", "window", lambda v: v),
                    ("batch", "batch_size", lambda v: v),
                    ("mode", "mode", lambda v: v),
                    ("ms/step", "decode_step_ms", lambda v: v),
                    ("prefill ms", "prefill_ms", lambda v: v),
                    ("VQ ms/image", "vq_decode_ms_per_image", lambda v: v),
                    ("ms/image", "ms_per_image", lambda v: v),
                    ("tokens/s", "image_tokens_per_s", lambda v: v),
                    ("GB/s achieved", "achieved_bytes_per_s", lambda v: v / 1e9),
                    ("of peak HBM", "fraction_of_peak_hbm", lambda v: v),
                    ("of measured read", "fraction_of_measured_read", lambda v: v),
                    ("KV MB/step", "kv_bytes_per_step", lambda v: v / 1e6),
                    ("peak MiB", "peak_mem_bytes", mib),
                    ("warm-up s (compile)", "warmup_s", lambda v: v),
                ],
            ),
            "",
        ]
        target = [
            r
            for r in decode["rows"]
            if r.get("mode") == "compiled" and r.get("batch_size") == 1 and r.get("fraction_of_peak_hbm") is not None
        ]
        for r in target:
            verdict = "meets" if r["fraction_of_peak_hbm"] >= 0.7 else "misses"
            lines.append(
                f"- s={r['window']} compiled batch 1: {r['fraction_of_peak_hbm']:.0%} of peak HBM bandwidth "
                f"({verdict} the 70% goal); weights {r['weight_bytes_per_step'] / 1e9:.2f} GB + KV "
                f"{r['kv_bytes_per_step'] / 1e9:.2f} GB per step."
            )
        if decode.get("skipped"):
            lines.append("- skipped: " + "; ".join(decode["skipped"]))
        lines.append("")
    return lines


def _profile_md(report: dict) -> list[str]:
    lines: list[str] = []
    env = report.get("environment", {})
    prof = report["profile"]
    if "skipped" in prof:
        return [f"## Where a compiled batch-1 step goes: skipped ({prof['skipped']})", ""]
    lines += [f"## Where a compiled batch-1 step goes (window {prof.get('window')})", ""]
    if "error" in prof:
        lines += [f"**error** {prof['error']}", ""]
    elif prof.get("kernels_per_step"):
        peak = env.get("peak_hbm_bytes_per_s")
        at_kernel_speed = prof["bytes_per_step"] / (prof["kernel_ms_per_step"] / 1e3)
        lines += [
            f"Step wall time {prof['step_wall_ms']:.3g} ms; kernels {prof['kernel_ms_per_step']:.3g} ms "
            f"({prof['kernels_per_step']:.0f} per step), so {prof['gap_ms_per_step']:.3g} ms between kernels. "
            f"Counting kernel time only, the step reads {at_kernel_speed / 1e9:.0f} GB/s"
            + (f" ({at_kernel_speed / peak:.0%} of peak HBM)." if peak else ".")
            + " By kind: "
            + ", ".join(f"{kind} {ms:.3g} ms" for kind, ms in sorted(prof["ms_by_kind"].items(), key=lambda kv: -kv[1]))
            + ".",
            "",
            _table(
                prof["top_kernels"],
                [
                    ("kernel", "name", lambda v: v),
                    ("kind", "kind", lambda v: v),
                    ("calls/step", "calls_per_step", lambda v: v),
                    ("us/step", "us_per_step", lambda v: v),
                ],
            ),
            "",
        ]
    else:
        lines += [prof.get("note") or "no kernel times (CPU run)", ""]
    return lines


def _vqascore_md(report: dict) -> list[str]:
    lines: list[str] = []
    vqa = report.get("vqascore", {})
    lines += [f"## VQAScore: {vqa.get('shape', 'CLIP-FlanT5-XXL shape')}", ""]
    if "error" in vqa:
        lines += [f"**error** {vqa['error']}", ""]
    else:
        lines += [
            (
                f"{vqa['params'] / 1e9:.2f} B parameters, {vqa['dtype']}, {vqa['image_size']}² images, "
                f"{vqa['question_tokens']} question tokens."
            ),
            "",
            _table(
                vqa["rows"],
                [
                    ("batch", "batch_size", lambda v: v),
                    ("images/s", "images_per_s", lambda v: v),
                    ("peak MiB", "peak_mem_bytes", lambda v: v / 2**20 if v else None),
                ],
            ),
            "",
        ]
    return lines


def _geneval_md(report: dict) -> list[str]:
    lines: list[str] = []
    geneval = report.get("geneval", {})
    lines += ["## GenEval: detector and colour classifier", ""]
    if "error" in geneval:
        lines += [f"**error** {geneval['error']}", ""]
    else:
        lines += [
            f"Detector: {geneval['detector']}." + (f" ({geneval['mmdet']})" if geneval.get("mmdet") else ""),
            "",
            _table(
                geneval["detector_rows"],
                [
                    ("batch", "batch_size", lambda v: v),
                    ("images/s", "images_per_s", lambda v: v),
                    ("peak MiB", "peak_mem_bytes", lambda v: v / 2**20 if v else None),
                ],
            ),
            "",
            f"Colour classifier: {geneval['color_classifier']}.",
            "",
            _table(
                geneval["color_rows"], [("batch", "batch_size", lambda v: v), ("crops/s", "crops_per_s", lambda v: v)]
            ),
            "",
        ]
    return lines


def _projection_md(report: dict) -> list[str]:
    lines: list[str] = []
    proj = report.get("projection", {})
    lines += ["## Projected wall time of `ts-eval run genai-bench` (one GPU, window 2)", ""]
    if "error" in proj:
        lines += [f"**error** {proj['error']}", ""]
    else:
        lines += [
            _table(
                proj["runs"],
                [
                    ("generator", "generator", lambda v: v),
                    ("split", "split", lambda v: v),
                    ("generate s/image", "generate_s_per_image", lambda v: v),
                    ("generate min", "generate_min", lambda v: v),
                    ("score min", "score_min", lambda v: v),
                    ("total min", "total_min", lambda v: v),
                ],
            ),
            "",
            (
                f"Scoring at VQAScore batch {proj['scorer_batch_size']} ({proj['score_s_per_image']:.3g} s/image); "
                "data loading, PNG/JPEG encoding and the model loads are not included."
            ),
            "",
        ]
    return lines


SECTION_MARKDOWN = {
    "decode": _decode_md,
    "profile": _profile_md,
    "vqascore": _vqascore_md,
    "geneval": _geneval_md,
    "projection": _projection_md,
}


def markdown(report: dict) -> str:
    """The report as markdown: the device, then each section that ran, in the suite's order."""
    lines = _environment_md(report)
    for name, render in SECTION_MARKDOWN.items():
        if name in report:
            lines += render(report)
    if report.get("merged_from"):
        lines += [
            "Sections measured in separate runs on the same kind of GPU: "
            + "; ".join(f"{', '.join(entry['sections'])} ({entry['note']})" for entry in report["merged_from"])
            + ".",
            "",
        ]
    return "\n".join(lines) + "\n"


SECTIONS = ("decode", "profile", "vqascore", "geneval", "projection")


def run_suite(
    device: torch.device, shapes: Shapes, budget_s: float, smoke: bool, sections: tuple[str, ...] = SECTIONS
) -> dict:
    budget = Budget(budget_s)
    report: dict[str, Any] = {
        "format": FORMAT,
        "device": _device_name(device),
        "smoke": smoke,
        "budget_s": budget_s,
        "shapes": {k: (str(v) if isinstance(v, torch.dtype) else v) for k, v in asdict(shapes).items()},
    }
    section(report, "environment", device, lambda: environment(device))
    runs = {
        "decode": lambda: decode_section(device, shapes, budget, report["environment"]),
        "profile": lambda: profile_section(device, shapes, budget),
        "vqascore": lambda: vqascore_section(device, shapes, budget),
        "geneval": lambda: geneval_section(device, shapes, budget),
        "projection": lambda: projection(report),
    }
    for name in SECTIONS:
        if name in sections:
            section(report, name, device, runs[name])
    report["elapsed_s"] = budget.elapsed()
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="CPU, tiny shapes: the same code, for CI")
    parser.add_argument("--device", default=None, help="default: cuda (cpu with --smoke)")
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent.parent / "reports"))
    parser.add_argument("--budget-s", type=float, default=450.0, help="skip measurements that would overrun this")
    parser.add_argument(
        "--sections",
        default=",".join(SECTIONS),
        help=f"comma-separated sections to run (default: all of {', '.join(SECTIONS)})",
    )
    args = parser.parse_args(argv)
    sections = tuple(name.strip() for name in args.sections.split(",") if name.strip())
    unknown = [name for name in sections if name not in SECTIONS]
    if unknown:
        print(f"gpu_suite: unknown section {unknown[0]!r}; choose from {', '.join(SECTIONS)}", file=sys.stderr)
        return 2
    device = torch.device(args.device or ("cpu" if args.smoke else "cuda"))
    if device.type == "cuda" and not torch.cuda.is_available():
        print("gpu_suite: no CUDA device; run it on a GPU machine, or with --smoke on CPU", file=sys.stderr)
        return 2
    shapes = SMOKE if args.smoke else FULL
    torch.manual_seed(0)  # the scorer-shaped models draw their random weights from the global generator
    report = run_suite(device, shapes, args.budget_s, args.smoke, sections)
    stem = "gpu-cpu-smoke" if args.smoke else f"gpu-{_slug(report['device'])}"
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / f"{stem}.json", json.loads(json.dumps(report, default=str)))
    write_atomic(out / f"{stem}.md", markdown(report).encode("utf-8"))
    print(markdown(report))
    print(f"wrote {out / stem}.json and .md", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
