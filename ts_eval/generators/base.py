"""The narrow interface every generator implements."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from PIL import Image

from ts_eval.records import ImageRequest


@runtime_checkable
class Generator(Protocol):
    """Built as `cls(args: dict[str, str], device: str, dtype: str)` from `--model-arg k=v` pairs.

    The class names its options dataclass as `Options` (fields made with `ts_eval.options.option`: type, default,
    one-line meaning) and parses `args` with `ts_eval.options.parse_options(args, Options, owner)` into `options`,
    whose values the manifest records; `ts-eval models` lists the same definition.

    `generate` gives one image per request, a function of that request and the batch it was made in.
    The run store fixes each image's batch (a fixed partition of the run's order by `batch_size`, made whole
    again on resume), so resumed and multi-GPU runs give identical images even where GPU kernels round with
    the batch's shape. A generator whose images never depend on their batch sets `batch_invariant = True`;
    only its missing images are then made on resume.
    """

    name: str
    batch_size: int
    batch_invariant: bool
    options: Any  # the parsed options dataclass

    def describe(self) -> dict[str, Any]:
        """Name, config and checkpoint sha256 for the manifest; equal descriptions mean equal images."""
        ...

    def generate(self, requests: list[ImageRequest]) -> list[Image.Image]: ...
