"""`--device`/`--dtype` strings -> torch objects, with one-line errors (imported only by torch backends)."""

from __future__ import annotations

import os

from ts_eval.errors import UsageError

DTYPES = {
    "fp32": "float32",
    "float32": "float32",
    "bf16": "bfloat16",
    "bfloat16": "bfloat16",
    "fp16": "float16",
    "float16": "float16",
}


def torch_device(device: str = "auto"):
    import torch

    if device in ("auto", None):
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and "LOCAL_RANK" in os.environ:  # under torchrun: one GPU per local rank
        device = f"cuda:{os.environ['LOCAL_RANK']}"
    try:
        resolved = torch.device(device)
    except RuntimeError:
        raise UsageError(f"--device {device!r} is not a device; use cpu, cuda or cuda:N") from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise UsageError(
            f"--device {device} asked for CUDA but torch {torch.__version__} sees no CUDA device; use --device cpu"
        )
    return resolved


def torch_dtype(dtype: str = "auto", device=None):
    """`auto` is bf16 on CUDA and fp32 on CPU."""
    import torch

    if dtype in ("auto", None):
        return torch.bfloat16 if device is not None and torch.device(device).type == "cuda" else torch.float32
    if dtype not in DTYPES:
        raise UsageError(f"--dtype {dtype!r} unknown; choose one of: auto, fp32, bf16, fp16")
    return getattr(torch, DTYPES[dtype])
