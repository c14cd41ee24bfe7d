"""The narrow interface every generator implements."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from PIL import Image

from ts_eval.records import ImageRequest


@runtime_checkable
class Generator(Protocol):
    """Built as `cls(args: dict[str, str], device: str, dtype: str)` from `--model-arg k=v` pairs.

    `generate` must be a pure function of each request: the image for a request never depends on what
    else is in the batch (padding, batch size, order), so resume and multi-GPU give identical images.
    """

    name: str
    batch_size: int

    def describe(self) -> dict[str, Any]:
        """Name, config and checkpoint sha256 for the manifest; equal descriptions mean equal images."""

    def generate(self, requests: list[ImageRequest]) -> list[Image.Image]: ...
