"""`--model reference`: the reference Token-Shuffle model behind the harness's generator interface.

    ts-eval run genai-bench --model reference --model-arg config=tiny --model-arg window=2

Options (`--model-arg k=v`): config (tiny | small | gpt-b | paper-2.7b | config JSON), window, checkpoint
(folder, see checkpoint.py), vq (VQ decoder weights: safetensors or LlamaGen's `vq_ds16_t2i.pt`), tokenizer
(byte or a Hugging Face name/path), cfg, cfg-schedule, top-k, top-p, temperature, resolution, dtype (of the
Transformer; the VQ decoder is always fp32), batch-size, kv-cache, compile (torch.compile of the decode step),
init-seed (random weights when no checkpoint is given).
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from ts_eval.devices import torch_device, torch_dtype
from ts_eval.errors import UsageError
from ts_eval.generators.token_shuffle import checkpoint as ckpt
from ts_eval.generators.token_shuffle.cfg_schedule import check_schedule
from ts_eval.generators.token_shuffle.configs import CONFIGS, ModelArgs, load_config
from ts_eval.generators.token_shuffle.model import TokenShuffleTransformer, check_window, init_weights
from ts_eval.generators.token_shuffle.options import ReferenceOptions
from ts_eval.generators.token_shuffle.sampling import (
    SamplingOptions,
    compile_decode_step,
    decode_step,
    generate_codes,
)
from ts_eval.generators.token_shuffle.tokenizer import encode_prompt, load_tokenizer
from ts_eval.generators.token_shuffle.vq import VQDecoder, to_uint8
from ts_eval.options import parse_options
from ts_eval.records import ImageRequest

# Bumped whenever the same settings would draw other images (e.g. a new source of sampling noise), so a run
# made by an older sampler is never resumed with images of a newer one.
SAMPLER = "gumbel-hash@2"


def token_grid(args: ModelArgs, resolution: int, window: int) -> tuple[int, int]:
    """Check resolution and window against the VQ stride and the token grid; returns the grid (H, W)."""
    stride = args.vq.downsample
    if resolution < stride or resolution % stride:
        raise UsageError(
            f"resolution {resolution} is not a multiple of the VQ stride {stride}; "
            f"use e.g. {max(stride, resolution // stride * stride)}"
        )
    side = resolution // stride
    if side % window:
        raise UsageError(
            f"window {window} does not divide the {side}x{side} token grid of a {resolution}px image; "
            f"choose a window that divides {side} or another resolution"
        )
    return side, side


def build_model(
    args: ModelArgs,
    window: int,
    device,
    dtype,
    *,
    seed: int = 0,
    weights: dict[str, torch.Tensor] | None = None,
    where: Path | None = None,
) -> TokenShuffleTransformer:
    """Build on the meta device (no memory), then materialise on `device` with random or given weights."""
    with torch.device("meta"):
        model = TokenShuffleTransformer(args, window)
    if torch.device(device).type == "meta":
        return model.to(dtype=dtype)  # (buffers are not counted: FLOPs and parameter counts only)
    model = model.to_empty(device=device)
    model.reset_buffers()
    if weights is None:
        init_weights(model, seed)
    else:
        ckpt.load_into(model, weights, where or Path("<weights>"))
    model = model.to(dtype=dtype).eval()
    model.reset_buffers()  # RoPE frequencies stay fp32 in a bf16 model
    return model


@contextmanager
def one_thread(device: torch.device):
    """torch on one CPU thread inside the block (no-op on other devices)."""
    if device.type != "cpu":
        yield
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def build_vq(args: ModelArgs, device, *, seed: int = 0, path: Path | None = None) -> VQDecoder:
    """The VQ decoder, always in fp32 (LlamaGen decodes in fp32 whatever the Transformer's dtype)."""
    with torch.device("meta"):
        vq = VQDecoder(args.vq)
    if torch.device(device).type == "meta":
        return vq
    vq = vq.to_empty(device=device)
    if path is None:
        init_weights(vq, seed)
    else:  # LlamaGen files hold the encoder too; the decoder needs none of it
        ckpt.load_into(
            vq, ckpt.read_tensors(path), path, ignore_prefixes=("encoder.", "quant_conv.", "quantize.codebook_used")
        )
    return vq.to(dtype=torch.float32).eval()


class TokenShuffleGenerator:
    name = "reference"
    Options = ReferenceOptions

    def __init__(self, args: dict[str, str], device: str = "auto", dtype: str = "auto"):
        self.options = opts = parse_options(args, ReferenceOptions, "model 'reference'")
        self.device = torch_device(device)
        self.dtype = torch_dtype(opts.dtype or dtype, self.device)
        checkpoint = Path(opts.checkpoint) if opts.checkpoint else None
        if checkpoint is not None:
            if not checkpoint.is_dir():
                raise UsageError(
                    f"checkpoint {checkpoint} is not a folder; a checkpoint is a folder with "
                    f"{ckpt.CONFIG_FILE} and {ckpt.MODEL_FILE}"
                )
            ckpt_args, ckpt_window = ckpt.read_checkpoint_config(checkpoint)
        self.config_name = opts.config or ("checkpoint" if checkpoint else "tiny")
        self.args: ModelArgs = (
            load_config(opts.config) if opts.config else (ckpt_args if checkpoint else CONFIGS["tiny"])
        )
        default_window = ckpt_window if checkpoint else self.args.default_window
        self.window = default_window if opts.window is None else opts.window
        if self.window < 1:
            raise UsageError(f"window must be at least 1, got {self.window}")
        # 0 is refused below
        self.resolution = self.args.default_resolution if opts.resolution is None else opts.resolution
        self.grid = token_grid(self.args, self.resolution, self.window)
        check_window(self.args, self.window)
        check_schedule(opts.cfg_schedule)
        if opts.cfg < 1.0 and opts.cfg != 0:
            raise UsageError(f"cfg={opts.cfg} must be 1 (off) or more")
        for key, ok in (
            ("temperature", opts.temperature >= 0),
            ("top_k", opts.top_k >= 0),
            ("top_p", 0 < opts.top_p <= 1),
            ("batch_size", opts.batch_size >= 1),
        ):
            if not ok:
                raise UsageError(f"model 'reference': {key}={getattr(opts, key)} is out of range")
        self.sampling = SamplingOptions(
            cfg_scale=opts.cfg if opts.cfg else 1.0,
            cfg_schedule=opts.cfg_schedule,
            temperature=opts.temperature,
            top_k=opts.top_k,
            top_p=opts.top_p,
        )
        self.batch_size = opts.batch_size
        self.use_cache = opts.kv_cache
        self.compile = opts.compile
        if self.compile and not self.use_cache:
            raise UsageError(
                "model 'reference': compile=true needs kv-cache=true (only the cached decode step is compiled)"
            )
        self.init_seed = opts.init_seed
        self.tokenizer = load_tokenizer(opts.tokenizer or self.args.tokenizer, self.args.text_vocab_size)

        weights_files: list[Path] = []
        weights = None
        if checkpoint is not None:
            if self.window != ckpt_window:
                raise UsageError(f"checkpoint {checkpoint} was trained with window {ckpt_window}, not {self.window}")
            weights = ckpt.read_tensors(checkpoint / ckpt.MODEL_FILE)
            weights_files.append(checkpoint / ckpt.MODEL_FILE)
        self.model = build_model(
            self.args,
            self.window,
            self.device,
            self.dtype,
            seed=self.init_seed,
            weights=weights,
            where=checkpoint / ckpt.MODEL_FILE if checkpoint else None,
        )
        vq_path = Path(opts.vq) if opts.vq else None
        if vq_path is None and checkpoint is not None and (checkpoint / ckpt.VQ_FILE).is_file():
            vq_path = checkpoint / ckpt.VQ_FILE
        if vq_path is not None:
            weights_files.append(vq_path)
        self.vq = build_vq(self.args, self.device, seed=self.init_seed + 1, path=vq_path)
        self.weights_sha256 = ckpt.sha256_files(weights_files) if weights_files else None
        self.step_fn = compile_decode_step(self.device) if self.compile else decode_step

    def describe(self) -> dict[str, Any]:
        config = {
            "config": self.config_name,
            "model": self.args.to_dict(),
            "window": self.window,
            "resolution": self.resolution,
            "tokenizer": self.tokenizer.name,
            "sampling": asdict(self.sampling),
            "sampler": SAMPLER,
            "dtype": str(self.dtype).removeprefix("torch."),
            "vq_dtype": "float32",
            "device_type": self.device.type,
            "kv_cache": self.use_cache,
            "compile": self.compile,
            "init_seed": None if self.weights_sha256 else self.init_seed,
        }
        if self.device.type == "cuda":
            # GPU matmul kernels change with the batch's shape, so there an image depends on its batch: the
            # batch size is part of the run's identity (a resume with another one is refused). On CPU each
            # image runs alone and the batch size changes nothing.
            config["batch_size"] = self.batch_size
        return {"name": self.name, "config": config, "checkpoint_sha256": self.weights_sha256}

    @property
    def batch_invariant(self) -> bool:
        """On CPU each image runs alone (see `decode` and the sampler); GPU kernels round with the batch."""
        return self.device.type == "cpu"

    def prompt_ids(self, text: str) -> list[int]:
        return encode_prompt(self.tokenizer, text, self.args.max_text_tokens)

    @torch.no_grad()
    def generate_codes(self, requests: list[ImageRequest], **kwargs) -> torch.Tensor:
        return generate_codes(
            self.model,
            [self.prompt_ids(r.prompt) for r in requests],
            self.prompt_ids(""),
            [r.seed for r in requests],
            self.grid,
            self.sampling,
            use_cache=self.use_cache,
            step_fn=self.step_fn,
            **kwargs,
        )

    @torch.no_grad()
    def decode(self, codes: torch.Tensor) -> list[Image.Image]:
        """Each image alone, in fp32; on CPU on one thread, because oneDNN splits a convolution's sums by the
        thread count, and pixels must not depend on the machine's cores."""
        with one_thread(self.device):
            return [Image.fromarray(to_uint8(self.vq.decode_code(c[None]))[0].cpu().numpy(), "RGB") for c in codes]

    def generate(self, requests: list[ImageRequest]) -> list[Image.Image]:
        return self.decode(self.generate_codes(requests))
