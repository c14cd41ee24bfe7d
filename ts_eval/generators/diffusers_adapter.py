"""`--model diffusers`: any diffusers text-to-image pipeline, loaded with `AutoPipelineForText2Image`.

    ts-eval run genai-bench --model diffusers --model-arg path=stabilityai/stable-diffusion-xl-base-1.0 \\
        --model-arg steps=50 --model-arg guidance=5

Options (`--model-arg k=v`): path (Hub repo id or local folder, required), revision (Hub branch, tag or
commit; default main, the manifest records the commit), variant (weights variant such as fp16), steps,
guidance, negative_prompt, scheduler (a diffusers scheduler class the pipeline lists as compatible),
resolution (square side in pixels; default the pipeline's), safety_checker (keep a pipeline's NSFW filter,
default true), dtype (default --dtype: bf16 on CUDA, fp32 on CPU), batch_size (default 1).
Unset steps and guidance take the pipeline's own defaults; the manifest records the values used.

Each image starts from noise drawn by its own CPU `torch.Generator` seeded with the request's seed, so the
noise is the same on every device. With batch_size=1 an image's bytes depend on nothing else in the run.
Larger batches run faster on big GPUs, but batched kernels round differently, and so do other thread counts,
devices and library versions: a few pixels can move by a level or two (measured on CPU), which changes
the PNG's sha256 but not its score in any useful sense.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from PIL import Image

from ts_eval import hub
from ts_eval.devices import torch_device, torch_dtype
from ts_eval.errors import UsageError, missing_extra
from ts_eval.generators.pretrained import Source, load_failed, local_sha256, resolve_source, snapshot_commit
from ts_eval.options import option, parse_options
from ts_eval.records import ImageRequest

OWNER = "model 'diffusers'"


@dataclass(frozen=True)
class DiffusersOptions:
    """Any diffusers text-to-image pipeline (AutoPipelineForText2Image), from the Hub or a local folder."""

    path: str = option("", "Hub repo id or local folder of the pipeline (required)")
    revision: str | None = option(None, "Hub branch, tag or commit (unset: main); the manifest records the commit")
    variant: str | None = option(None, "weights variant, e.g. fp16")
    steps: int | None = option(None, "denoising steps (unset: the pipeline's default)")
    guidance: float | None = option(None, "guidance scale (unset: the pipeline's default)")
    negative_prompt: str | None = option(None, "text to steer away from")
    scheduler: str | None = option(None, "a diffusers scheduler class the pipeline lists as compatible")
    resolution: int | None = option(None, "square image side in pixels (unset: the pipeline's)")
    safety_checker: bool = option(True, "keep the pipeline's NSFW filter")
    dtype: str | None = option(None, "fp32, bf16 or fp16 (unset: --dtype)")
    batch_size: int = option(1, "prompts per pipeline call (1: an image depends on nothing else in the run)")


def import_diffusers():
    """diffusers and torch, or one line naming the extra that installs them."""
    try:
        import diffusers  # pyright: ignore[reportMissingImports]  # the optional [diffusers] extra
        import torch
    except ImportError as exc:
        if exc.name in ("diffusers", "torch", "transformers"):
            raise missing_extra(exc.name, "diffusers") from None
        raise UsageError(f"diffusers could not be imported ({exc}); run: pip install 'ts-eval[diffusers]'") from None
    try:  # diffusers imports its pipelines lazily; a transformers too old for them fails only here
        _ = diffusers.AutoPipelineForText2Image
    except (ImportError, RuntimeError) as exc:
        import transformers

        while exc.__cause__ is not None:  # diffusers wraps the ImportError that says what is missing
            exc = exc.__cause__
        reason = str(exc).strip().splitlines()[0]
        raise UsageError(
            f"diffusers {diffusers.__version__} does not work with transformers {transformers.__version__} "
            f"({reason}); run: pip install 'ts-eval[diffusers]'"
        ) from None
    hub.quiet_third_party_logs()  # diffusers and transformers set up their own log handlers on import
    return diffusers, torch


def check_ranges(generator, owner: str) -> None:
    """batch_size, steps, guidance and resolution of a pipeline generator within their ranges (unset: the pipeline's)."""
    steps, guidance, resolution = generator.steps, generator.guidance, generator.resolution
    for key, ok in (
        ("batch_size", generator.batch_size >= 1),
        ("steps", steps is None or steps >= 1),
        ("guidance", guidance is None or guidance >= 0),
        ("resolution", resolution is None or resolution >= 8),
    ):
        if not ok:
            raise UsageError(f"{owner}: {key}={getattr(generator, key)} is out of range")


def signature_default(params, name: str) -> Any:
    """A pipeline's default for one __call__ argument, or None where it has none."""
    default = params[name].default if name in params else None
    return None if default is inspect.Parameter.empty else default


def version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", version)[:2])


@contextmanager
def quiet_hub(diffusers) -> Iterator[None]:
    """diffusers logs every failed Hub look-up before raising; the one-line error says it all."""
    logging = diffusers.utils.logging
    level = logging.get_verbosity()
    logging.set_verbosity_error()
    try:
        yield
    finally:
        logging.set_verbosity(level)


class DiffusersGenerator:
    name = "diffusers"
    Options = DiffusersOptions

    def __init__(self, args: dict[str, str], device: str = "auto", dtype: str = "auto"):
        self.options = opts = parse_options(args, DiffusersOptions, OWNER)
        diffusers, torch = import_diffusers()
        self._torch = torch
        self.library_version = diffusers.__version__
        self.device = torch_device(device)
        self.dtype = torch_dtype(opts.dtype or dtype, self.device)
        self.batch_size = opts.batch_size
        self.steps, self.guidance, self.resolution = opts.steps, opts.guidance, opts.resolution
        self.negative_prompt = opts.negative_prompt
        self.variant = opts.variant
        check_ranges(self, OWNER)

        self.source = resolve_source(opts.path, opts.revision, OWNER)
        self.pipe, self.commit = self._load(diffusers, self.source)
        self.weights_sha256 = local_sha256(self.source)
        if not opts.safety_checker and getattr(self.pipe, "safety_checker", None) is not None:
            self.pipe.safety_checker = None
        self.safety_checker = getattr(self.pipe, "safety_checker", None) is not None
        if opts.scheduler:
            self.pipe.scheduler = self._scheduler(diffusers, opts.scheduler)
        self._check_call_options()
        self.pipe.to(self.device)
        self.pipe.set_progress_bar_config(disable=True)  # the harness shows one bar for the whole run

    def _load(self, diffusers, source: Source):
        """Fetch a Hub snapshot first (its folder name is the commit), then load the pipeline from disk."""
        folder, commit = source.path, None
        try:
            if not source.local:
                with quiet_hub(diffusers):
                    folder = diffusers.DiffusionPipeline.download(
                        source.path, revision=source.revision, variant=self.variant
                    )
                commit = snapshot_commit(folder)
            dtype_key = "dtype" if version_tuple(diffusers.__version__) >= (0, 40) else "torch_dtype"  # renamed in 0.40
            pipe = diffusers.AutoPipelineForText2Image.from_pretrained(
                folder, variant=self.variant, **{dtype_key: self.dtype}
            )
        except (OSError, ValueError) as exc:
            raise load_failed("diffusers pipeline", source, exc) from None
        return pipe, commit

    def _scheduler(self, diffusers, name: str):
        compatible = sorted({cls.__name__ for cls in self.pipe.scheduler.compatibles})
        cls = getattr(diffusers, name, None)
        if not (isinstance(cls, type) and issubclass(cls, diffusers.SchedulerMixin)) or name not in compatible:
            raise UsageError(
                f"{OWNER}: scheduler {name!r} does not fit {type(self.pipe).__name__}; "
                f"choose one of: {', '.join(compatible)}"
            )
        return cls.from_config(self.pipe.scheduler.config)

    def _check_call_options(self) -> None:
        """Fill unset steps/guidance from the pipeline's signature; refuse options it does not take."""
        params = inspect.signature(self.pipe.__call__).parameters
        wanted = {
            "steps": ("num_inference_steps", self.steps),
            "guidance": ("guidance_scale", self.guidance),
            "negative_prompt": ("negative_prompt", self.negative_prompt),
            "resolution": ("height", self.resolution),
        }
        for name, (param, value) in wanted.items():
            if value is not None and param not in params:
                raise UsageError(f"{OWNER}: {type(self.pipe).__name__} takes no {param}; drop {name}=")
        if self.steps is None:
            self.steps = signature_default(params, "num_inference_steps")
        if self.guidance is None:
            self.guidance = signature_default(params, "guidance_scale")
        factor = int(getattr(self.pipe, "vae_scale_factor", 8) or 8)
        if self.resolution is not None and self.resolution % factor:
            raise UsageError(
                f"{OWNER}: resolution {self.resolution} is not a multiple of {factor} (the VAE's "
                f"downsampling); use e.g. {max(factor, self.resolution // factor * factor)}"
            )

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "config": {
                **self.source.describe(self.commit),
                "variant": self.variant,
                "pipeline": type(self.pipe).__name__,
                "scheduler": type(self.pipe.scheduler).__name__,
                "steps": self.steps,
                "guidance": self.guidance,
                "negative_prompt": self.negative_prompt,
                "resolution": self.resolution,
                "safety_checker": self.safety_checker,
                "dtype": str(self.dtype).removeprefix("torch."),
                "device_type": self.device.type,
                "diffusers": self.library_version,
            },
            "checkpoint_sha256": self.weights_sha256,
        }

    def generate(self, requests: list[ImageRequest]) -> list[Image.Image]:
        torch = self._torch
        kwargs: dict[str, Any] = {}
        if self.steps is not None:
            kwargs["num_inference_steps"] = self.steps
        if self.guidance is not None:
            kwargs["guidance_scale"] = self.guidance
        if self.negative_prompt is not None:
            kwargs["negative_prompt"] = [self.negative_prompt] * len(requests)
        if self.resolution is not None:
            kwargs["height"] = kwargs["width"] = self.resolution
        generators = [torch.Generator(device="cpu").manual_seed(r.seed) for r in requests]
        with torch.no_grad():
            out = self.pipe(prompt=[r.prompt for r in requests], generator=generators, output_type="pil", **kwargs)
        return list(out.images)
