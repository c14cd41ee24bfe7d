"""The memory roofline of decoding: the bytes one decode step must read (weights, KV cache), a read bandwidth
measured on the same device, and the peak HBM bandwidth of known GPUs.

At batch 1 a decode step is bound by reading the weights once: its floor is weight bytes ÷ bandwidth, and a
step's `roofline ratio` is that floor over the measured step time (1.0 = at the roofline).
"""

from __future__ import annotations

import statistics
import time

import torch

from ts_eval.generators.token_shuffle.model import TokenShuffleTransformer, cache_dtype

# Peak HBM bandwidth (bytes/s) from the vendors' data sheets, matched against torch.cuda.get_device_name;
# the first matching entry wins, so specific names come before generic ones.
PEAK_BANDWIDTH = [
    ("H200", 4.8e12),
    ("GH200", 4.0e12),
    ("H100 NVL", 3.9e12),
    ("H100 PCIe", 2.0e12),
    ("H100", 3.35e12),
    ("B200", 8.0e12),
    ("A100-SXM4-80GB", 2.039e12),
    ("A100 80GB PCIe", 1.935e12),
    ("A100", 1.555e12),
    ("L40S", 0.864e12),
    ("L40", 0.864e12),
    ("A10G", 0.6e12),
    ("A10", 0.6e12),
    ("L4", 0.3e12),
    ("RTX 4090", 1.008e12),
    ("RTX 6000 Ada", 0.96e12),
    ("V100", 0.9e12),
    ("T4", 0.32e12),
]


def peak_bandwidth(device_name: str) -> float | None:
    return next((bw for key, bw in PEAK_BANDWIDTH if key in device_name), None)


def decode_weight_bytes(model: TokenShuffleTransformer) -> int:
    """Parameter bytes one decode step reads: every layer, the final norm, the shuffle MLPs and the codebook
    rows of the LM head (the embedding table is only indexed: s² rows, not counted)."""
    modules = [model.layers, model.norm, model.shuffle_in, model.shuffle_out]
    read = sum(p.numel() * p.element_size() for m in modules if m is not None for p in m.parameters())
    head = model.output.weight
    return read + model.args.codebook_size * head.shape[1] * head.element_size()


def decode_kv_bytes(model: TokenShuffleTransformer, rows: int, cache_length: int) -> int:
    """KV-cache bytes one static-shape decode step reads: keys and values of `cache_length` positions."""
    args = model.args
    weight = model.output.weight
    element = torch.tensor([], dtype=cache_dtype(weight.device.type, weight.dtype)).element_size()
    return 2 * args.n_layers * rows * args.kv_heads * args.head_dim * cache_length * element


def measure_read_bandwidth(device, nbytes: int = 1 << 29, repeats: int = 7) -> float:
    """Median bytes/s of summing an fp32 buffer of `nbytes` (far beyond any cache) on `device`."""
    device = torch.device(device)
    buffer = torch.ones(nbytes // 4, dtype=torch.float32, device=device)
    seconds = []
    for _ in range(repeats + 1):
        if device.type == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            buffer.sum()
            end.record()
            torch.cuda.synchronize()
            seconds.append(start.elapsed_time(end) / 1000.0)
        else:
            started = time.perf_counter()
            buffer.sum()
            seconds.append(time.perf_counter() - started)
    del buffer
    return nbytes / statistics.median(seconds[1:])  # the first touches the pages / warms the kernel
