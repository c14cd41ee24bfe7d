"""Generators for models that live in the caller's Python process: a function, or a diffusers pipeline object.

`ts_eval.evaluate(task, model=...)` wraps what it is given here, so the run goes through the same store, resume,
lock and manifest as `ts-eval run`. An object in memory cannot be pinned by a file the way a registered model
is, so each adapter describes it as closely as it can, and the caller guarantees the rest:

- the images depend only on each (prompt, seed) - not on the batch, the order, or earlier calls - so a resumed or
  repeated run makes the same images;
- the description (below) changes whenever the model changes: if you change weights or settings the description
  cannot see (e.g. fine-tune the object in place), pass another `model_name` or `out`, or a resume keeps images of
  the old model.

A function is described by its qualified name and the sha256 of its source file; a pipeline by its class, its
`name_or_path`, its config and its scheduler's, the call settings, dtype and device, and the sha256 of its folder
where it was loaded from a local one. `model_name` names the model in the manifest and tables.
"""

from __future__ import annotations

import hashlib
import inspect
import json
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from PIL import Image

from ts_eval.errors import UsageError
from ts_eval.generators.diffusers_adapter import DiffusersGenerator, check_ranges
from ts_eval.generators.pretrained import folder_sha256, snapshot_commit
from ts_eval.generators.python_entry import check_takes_prompts_and_seeds, checked_images
from ts_eval.options import option, parse_options
from ts_eval.records import ImageRequest


def qualified_name(obj: Any) -> str:
    """`module:qualname` of a function or a callable object's class."""
    target = obj if inspect.isfunction(obj) or inspect.ismethod(obj) or inspect.isclass(obj) else type(obj)
    return f"{getattr(target, '__module__', '?')}:{getattr(target, '__qualname__', type(obj).__name__)}"


def source_sha256(obj: Any) -> str | None:
    """sha256 of the file that defines the function (or the callable's class); None where there is none."""
    target = obj if inspect.isfunction(obj) or inspect.ismethod(obj) or inspect.isclass(obj) else type(obj)
    try:
        path = inspect.getsourcefile(inspect.unwrap(target))
    except (TypeError, OSError):
        return None
    return hashlib.sha256(Path(path).read_bytes()).hexdigest() if path and Path(path).is_file() else None


@dataclass(frozen=True)
class CallableOptions:
    """A function `(prompts, seeds) -> images` you hold, the in-memory form of `--model python`."""

    batch_size: int = option(8, "prompts per call of the function")


class CallableGenerator:
    """A function `(prompts: list[str], seeds: list[int]) -> list[PIL.Image]`, one image per prompt, in order; the
    in-memory form of `--model python` (same name in the tables)."""

    Options = CallableOptions

    def __init__(self, function: Callable[..., Any], *, model_name: str | None = None, batch_size: int = 8):
        self.owner = f"model {qualified_name(function)}"
        check_takes_prompts_and_seeds(function, self.owner)
        if batch_size < 1:
            raise UsageError(f"{self.owner}: batch_size={batch_size} must be at least 1")
        self.function = function
        self.name = model_name or "python"
        self.batch_size = batch_size
        self.options = CallableOptions(batch_size=batch_size)

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "config": {"callable": qualified_name(self.function), "source_sha256": source_sha256(self.function)},
            "checkpoint_sha256": None,
        }

    def generate(self, requests: list[ImageRequest]) -> list[Image.Image]:
        images = self.function([r.prompt for r in requests], [r.seed for r in requests])
        return checked_images(images, len(requests), self.owner, qualified_name(self.function))


@dataclass(frozen=True)
class PipelineOptions:
    """A diffusers pipeline object you hold, called as `--model diffusers` calls the one it loads."""

    steps: int | None = option(None, "denoising steps (unset: the pipeline's default)")
    guidance: float | None = option(None, "guidance scale (unset: the pipeline's default)")
    negative_prompt: str | None = option(None, "text to steer away from")
    resolution: int | None = option(None, "square image side in pixels (unset: the pipeline's)")
    batch_size: int = option(1, "prompts per pipeline call (1: an image depends on nothing else in the run)")


def is_pipeline(obj: Any) -> bool:
    """A diffusers pipeline (or an object shaped like one: callable, with components, a config and a scheduler)."""
    return callable(obj) and all(hasattr(obj, name) for name in ("components", "config", "scheduler"))


def _plain(value: Any) -> Any:
    """A config as JSON can hold it (diffusers' FrozenDict, tuples, dtypes...)."""
    return json.loads(json.dumps(dict(value) if hasattr(value, "items") else value, sort_keys=True, default=str))


class PipelineGenerator(DiffusersGenerator):
    """A diffusers text-to-image pipeline object, called as `--model diffusers` calls the one it loads: one CPU
    `torch.Generator` per image seeded with the request's seed, `output_type="pil"`. The pipeline stays on the
    device and in the dtype the caller put it. Options: steps, guidance, negative_prompt, resolution, batch_size
    (default 1: batched kernels round a few pixels differently, and images must not depend on the batch)."""

    Options = PipelineOptions

    def __init__(self, pipe: Any, args: dict[str, str], *, model_name: str | None = None):
        import torch

        owner = f"model {qualified_name(pipe)}"
        self.options = opts = parse_options(args, PipelineOptions, owner)
        self._torch = torch
        self.name = model_name or "diffusers"
        self.pipe = pipe
        self.batch_size = opts.batch_size
        self.steps, self.guidance, self.resolution = opts.steps, opts.guidance, opts.resolution
        self.negative_prompt = opts.negative_prompt
        check_ranges(self, owner)
        self._check_call_options()  # fills steps/guidance from the pipeline's own defaults, refuses what it lacks
        self.name_or_path = getattr(pipe, "name_or_path", None) or _plain(pipe.config).get("_name_or_path")
        folder = Path(str(self.name_or_path)) if self.name_or_path else None
        self.local_folder = folder if folder is not None and folder.is_dir() else None
        self.weights_sha256 = folder_sha256(self.local_folder) if self.local_folder else None
        pipe.set_progress_bar_config(disable=True)  # the harness shows one bar for the whole run

    def describe(self) -> dict[str, Any]:
        pipe = self.pipe
        try:
            library = version("diffusers")
        except PackageNotFoundError:
            library = None
        return {
            "name": self.name,
            "config": {
                "pipeline": qualified_name(pipe),
                "name_or_path": str(self.name_or_path or "") or None,
                "commit": snapshot_commit(self.local_folder) if self.local_folder else None,
                "config": _plain(pipe.config),
                "scheduler": qualified_name(pipe.scheduler),
                "scheduler_config": _plain(getattr(pipe.scheduler, "config", {})),
                "steps": self.steps,
                "guidance": self.guidance,
                "negative_prompt": self.negative_prompt,
                "resolution": self.resolution,
                "dtype": str(getattr(pipe, "dtype", None)).removeprefix("torch."),
                "device_type": getattr(getattr(pipe, "device", None), "type", None),
                "diffusers": library,
            },
            "checkpoint_sha256": self.weights_sha256,
        }
