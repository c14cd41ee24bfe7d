"""A deterministic stand-in generator for smoke runs and tests: it draws nothing from the prompt.

Each image is a smooth colour field plus noise derived from the seed alone, so equal seeds give equal
PNG bytes and runs are reproducible without any model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from ts_eval.errors import UsageError
from ts_eval.options import option, parse_options
from ts_eval.records import ImageRequest


@dataclass(frozen=True)
class DummyOptions:
    """Seeded colour fields, no model: for smoke runs and tests (its numbers mean nothing)."""

    resolution: int = option(64, "side of each square image in pixels")
    batch_size: int = option(64, "images per generate() call (changes nothing in the images)")


class DummyGenerator:
    name = "dummy"
    batch_invariant = True  # each image is a function of its own request
    Options = DummyOptions

    def __init__(self, args: dict[str, str], device: str = "cpu", dtype: str = "fp32"):
        self.options = parse_options(args, DummyOptions, "model 'dummy'")
        self.resolution = self.options.resolution
        self.batch_size = self.options.batch_size
        for key in ("resolution", "batch_size"):
            if getattr(self.options, key) < 1:
                raise UsageError(f"model 'dummy': {key} must be at least 1, got {getattr(self.options, key)}")

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "config": {"resolution": self.resolution}, "checkpoint_sha256": None}

    def generate(self, requests: list[ImageRequest]) -> list[Image.Image]:
        return [self._image(r.seed) for r in requests]

    def _image(self, seed: int) -> Image.Image:
        rng = np.random.default_rng(seed)
        size = self.resolution
        base = rng.integers(0, 256, size=(2, 2, 3)).astype(np.float32)
        ramp = np.linspace(0.0, 1.0, size, dtype=np.float32)
        top = base[0, 0] * (1 - ramp[:, None]) + base[0, 1] * ramp[:, None]
        bottom = base[1, 0] * (1 - ramp[:, None]) + base[1, 1] * ramp[:, None]
        field = top[None, :, :] * (1 - ramp[:, None, None]) + bottom[None, :, :] * ramp[:, None, None]
        noise = rng.normal(0.0, 8.0, size=field.shape)
        return Image.fromarray(np.clip(field + noise, 0, 255).astype(np.uint8), "RGB")
