"""Score images a user already has: no model runs, each request is looked up on disk.

Accepted layouts under `--model-arg path=DIR` (first match wins, per image):
  DIR/images/<prompt_id>/<k:04d>.png|jpg     a ts-eval run directory
  DIR/<prompt_id>/samples/<k:04d>.png        GenEval's official output layout
  DIR/<prompt_id>/<k>.png|jpg|jpeg           one folder per prompt (k plain or zero-padded to 4)
  DIR/<prompt_id>.png|jpg|jpeg               one image per prompt (sample 0 only)
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image, UnidentifiedImageError

from ts_eval.errors import UsageError
from ts_eval.options import option, parse_options
from ts_eval.records import ImageRequest

SUFFIXES = (".png", ".jpg", ".jpeg")


def candidates(root: Path, prompt_id: str, k: int) -> list[Path]:
    paths = [root / "images" / prompt_id / f"{k:04d}{s}" for s in SUFFIXES]  # a run directory, PNG or JPEG
    paths += [root / prompt_id / "samples" / f"{k:04d}.png"]
    for name in (f"{k:04d}", str(k)):
        paths += [root / prompt_id / f"{name}{s}" for s in SUFFIXES]
    if k == 0:
        paths += [root / f"{prompt_id}{s}" for s in SUFFIXES]
    return paths


def find_image(root: Path, prompt_id: str, k: int) -> Path:
    for path in candidates(root, prompt_id, k):
        if path.is_file():
            return path
    raise UsageError(
        f"no image for prompt {prompt_id} sample {k} under {root} (looked for e.g. "
        f"{prompt_id}/{k:04d}.png and {prompt_id}.png)"
    )


def load_image(path: Path) -> Image.Image:
    """One still RGB image: 16-bit images scaled to 8 bits (not clipped to white), animations and
    decompression bombs refused."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                frames = getattr(image, "n_frames", 1)  # only multi-frame formats have it
                if frames > 1:
                    raise UsageError(f"{path}: holds {frames} frames (an animation?); give one still image")
                image.load()
                return _to_rgb(image)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise UsageError(
            f"{path}: too many pixels for an image to score (over {Image.MAX_IMAGE_PIXELS:,}); "
            "is it a decompression bomb? replace or remove it"
        ) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise UsageError(f"{path}: not a readable image ({type(exc).__name__}); replace or remove it") from None


def _to_rgb(image: Image.Image) -> Image.Image:
    if image.mode in ("I", "F") or image.mode.startswith("I;16"):
        # 16-bit (or 32-bit) grey: PIL's convert() clips to 0..255, turning most of the image white.
        import numpy as np

        values = np.asarray(image, dtype=np.float64)
        top = 65535.0 if image.mode != "F" else max(float(values.max()), 1.0)
        grey = np.clip(np.rint(values / top * 255.0), 0, 255).astype(np.uint8)
        return Image.fromarray(grey, mode="L").convert("RGB")
    return image.convert("RGB")


@dataclass(frozen=True)
class FolderOptions:
    """Images you already have, looked up per prompt and sample (a run directory, GenEval's layout, ...)."""

    path: str = option("", "the folder holding the images (required)")
    batch_size: int = option(32, "images read per batch")


class FolderGenerator:
    name = "folder"
    batch_invariant = True  # each image is a function of its own request
    Options = FolderOptions

    def __init__(self, args: dict[str, str], device: str = "cpu", dtype: str = "auto"):
        self.options = parse_options(args, FolderOptions, "model 'folder'")
        if not self.options.path:
            raise UsageError("model 'folder' needs --model-arg path=DIR (the folder holding the images)")
        self.root = Path(self.options.path).resolve()
        if not self.root.is_dir():
            raise UsageError(f"model 'folder': {self.root} is not a directory")
        self.batch_size = self.options.batch_size

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "config": {"path": str(self.root)}, "checkpoint_sha256": None}

    def generate(self, requests: list[ImageRequest]) -> list[Image.Image]:
        return [load_image(find_image(self.root, r.prompt_id, r.sample_index)) for r in requests]
