"""`--model python`: call a user's own function as the generator.

    ts-eval run genai-bench --model python --model-arg entry=examples/my_generator.py:generate
    ts-eval run genai-bench --model python --model-arg entry=mypackage.sampler:generate

The function takes `(prompts: list[str], seeds: list[int])` and returns one `PIL.Image` per prompt, in order.
Each image should be a function of its own (prompt, seed) only, as for every generator: then resumed runs
and runs on many GPUs give the same images. `entry` is `module:function` (the current directory is
importable) or `path/to/file.py:function`. Options: entry (required), batch_size (prompts per call,
default 8). The manifest records the entry and the sha256 of its source file.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from PIL import Image

from ts_eval.errors import UsageError
from ts_eval.options import option, parse_options
from ts_eval.records import ImageRequest

OWNER = "model 'python'"


def import_entry_module(target: str) -> ModuleType:
    """A module by dotted name (cwd importable, as with `python -m`) or by .py file path."""
    try:
        if target.endswith(".py"):
            path = Path(target).expanduser().resolve()
            if not path.is_file():
                raise UsageError(f"{OWNER}: entry file {target} does not exist")
            spec = importlib.util.spec_from_file_location(f"ts_eval_entry_{path.stem}", path)
            if spec is None or spec.loader is None:  # not for a .py file; kept for the type checker
                raise UsageError(f"{OWNER}: entry file {target} cannot be loaded as a module")
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            return module
        if os.getcwd() not in sys.path and "" not in sys.path:
            sys.path.append(os.getcwd())
        return importlib.import_module(target)
    except UsageError:
        raise
    except Exception as exc:  # the user's module may fail in any way; say which and why in one line
        detail = f"{type(exc).__name__}: {exc}".splitlines()[0]
        raise UsageError(f"{OWNER}: cannot import {target!r} ({detail})") from None


def check_takes_prompts_and_seeds(function: Callable[..., Any], owner: str) -> None:
    """One line, before any image is made, when `function` cannot be called as `function(prompts, seeds)`."""
    try:
        inspect.signature(function).bind([], [])
    except TypeError:
        raise UsageError(f"{owner} must take (prompts: list[str], seeds: list[int])") from None
    except ValueError:  # builtins without a signature: trust them
        pass


def load_entry(entry: str) -> tuple[Callable[..., Any], str | None]:
    """`module:function` -> (the function, sha256 of its module's source file or None)."""
    target, sep, attr = entry.rpartition(":")
    if not sep or not target or not attr.isidentifier():
        raise UsageError(f"{OWNER}: entry={entry!r} must be module:function or path/to/file.py:function")
    module = import_entry_module(target)
    function = getattr(module, attr, None)
    if function is None:
        raise UsageError(f"{OWNER}: {target} has no attribute {attr!r}")
    if not callable(function):
        raise UsageError(f"{OWNER}: {target}:{attr} is a {type(function).__name__}, not a function")
    check_takes_prompts_and_seeds(function, f"{OWNER}: {target}:{attr}")
    source = getattr(module, "__file__", None)
    sha = hashlib.sha256(Path(source).read_bytes()).hexdigest() if source and Path(source).is_file() else None
    return function, sha


@dataclass(frozen=True)
class PythonOptions:
    """Your own function `(prompts, seeds) -> images`, named by entry=module:function or path/to/file.py:function."""

    entry: str = option("", "module:function or path/to/file.py:function (required)")
    batch_size: int = option(8, "prompts per call of the function")


class PythonGenerator:
    name = "python"
    Options = PythonOptions

    def __init__(self, args: dict[str, str], device: str = "auto", dtype: str = "auto"):
        self.options = opts = parse_options(args, PythonOptions, OWNER)
        if not opts.entry:
            raise UsageError(f"{OWNER} needs --model-arg entry=module:function (see examples/my_generator.py)")
        if opts.batch_size < 1:
            raise UsageError(f"{OWNER}: batch_size={opts.batch_size} must be at least 1")
        self.entry = opts.entry
        self.batch_size = opts.batch_size
        self.function, self.source_sha256 = load_entry(self.entry)

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "config": {"entry": self.entry, "source_sha256": self.source_sha256},
            "checkpoint_sha256": None,
        }

    def generate(self, requests: list[ImageRequest]) -> list[Image.Image]:
        images = self.function([r.prompt for r in requests], [r.seed for r in requests])
        return checked_images(images, len(requests), OWNER, self.entry)


def checked_images(images: Any, n_prompts: int, owner: str, entry: str) -> list[Image.Image]:
    """A user function's answer as a list of PIL images, one per prompt, or one line saying what is wrong."""
    if not isinstance(images, (list, tuple)):
        raise UsageError(
            f"{owner}: {entry} returned {type(images).__name__}; it must return a list of PIL images, one per prompt"
        )
    if len(images) != n_prompts:
        raise UsageError(
            f"{owner}: {entry} returned {len(images)} images for {n_prompts} prompts; "
            "it must return one per prompt, in order"
        )
    for i, image in enumerate(images):
        if not isinstance(image, Image.Image):
            raise UsageError(
                f"{owner}: {entry} returned {type(image).__name__} at position {i}; each item must be a PIL.Image.Image"
            )
    return list(images)
