"""Score images a user already has: no model runs, each request is looked up on disk.

Accepted layouts under `--model-arg path=DIR` (first match wins, per image):
  DIR/images/<prompt_id>/<k:04d>.png         a ts-eval run directory
  DIR/<prompt_id>/samples/<k:04d>.png        GenEval's official output layout
  DIR/<prompt_id>/<k>.png|jpg|jpeg           one folder per prompt (k plain or zero-padded to 4)
  DIR/<prompt_id>.png|jpg|jpeg               one image per prompt (sample 0 only)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PIL import Image, UnidentifiedImageError

from ts_eval.errors import UsageError
from ts_eval.options import parse_options
from ts_eval.records import ImageRequest

SUFFIXES = (".png", ".jpg", ".jpeg")


def candidates(root: Path, prompt_id: str, k: int) -> list[Path]:
    paths = [root / "images" / prompt_id / f"{k:04d}.png", root / prompt_id / "samples" / f"{k:04d}.png"]
    for name in (f"{k:04d}", str(k)):
        paths += [root / prompt_id / f"{name}{s}" for s in SUFFIXES]
    if k == 0:
        paths += [root / f"{prompt_id}{s}" for s in SUFFIXES]
    return paths


def find_image(root: Path, prompt_id: str, k: int) -> Path:
    for path in candidates(root, prompt_id, k):
        if path.is_file():
            return path
    raise UsageError(f"no image for prompt {prompt_id} sample {k} under {root} (looked for e.g. "
                     f"{prompt_id}/{k:04d}.png and {prompt_id}.png)")


def load_image(path: Path) -> Image.Image:
    try:
        with Image.open(path) as image:
            image.load()
            return image.convert("RGB")
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise UsageError(f"{path}: not a readable image ({type(exc).__name__}); replace or remove it") from None


class FolderGenerator:
    name = "folder"

    def __init__(self, args: dict[str, str], device: str = "cpu", dtype: str = "auto"):
        opts = parse_options(args, {"path": "", "batch_size": 32}, "model 'folder'")
        if not opts["path"]:
            raise UsageError("model 'folder' needs --model-arg path=DIR (the folder holding the images)")
        self.root = Path(opts["path"]).resolve()
        if not self.root.is_dir():
            raise UsageError(f"model 'folder': {self.root} is not a directory")
        self.batch_size = opts["batch_size"]

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "config": {"path": str(self.root)}, "checkpoint_sha256": None}

    def generate(self, requests: list[ImageRequest]) -> list[Image.Image]:
        return [load_image(find_image(self.root, r.prompt_id, r.sample_index)) for r in requests]
