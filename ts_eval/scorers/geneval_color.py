"""GenEval's colour classifier: zero-shot CLIP over the 10 colours, on each detected object's crop.

Official recipe (evaluate_images.py with clip_benchmark 1.4.0): open_clip ViT-L-14 with OpenAI weights; the
object's crop is its box cut from the image after everything outside its mask is painted grey (#999); a
class-specific classifier averages the normalised text embeddings of three templates per colour; the
colour with the largest cosine similarity wins. On CUDA the official run uses fp16 autocast (amp).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ts_eval.data import sha256_file
from ts_eval.errors import UsageError, missing_extra
from ts_eval.scorers.geneval import COLORS

TEMPLATES = ("a photo of a {color} {object}", "a photo of a {color}-colored {object}", "a photo of a {color} object")
BACKGROUND = "#999"
RANDOM = "random"


def color_crop(image: Image.Image, box, mask: np.ndarray | None, background: str = BACKGROUND) -> Image.Image:
    """The official crop: paint outside the mask with `background` ('original' keeps the image), cut the box."""
    if mask is not None:
        if tuple(mask.shape) != (image.height, image.width):
            raise ValueError(f"mask of shape {tuple(mask.shape)} for an image of {image.height}x{image.width}")
        blank = image.copy() if background == "original" else Image.new("RGB", image.size, color=background)
        image = Image.composite(image, blank, Image.fromarray(np.asarray(mask, dtype=bool)))
    return image.crop(tuple(float(v) for v in box[:4]))  # PIL rounds the box, as in the official code


def color_prompts(class_name: str, color: str) -> list[str]:
    return [t.format(color=color, object=class_name) for t in TEMPLATES]


class DummyColorClassifier:
    """Not CLIP: the colour whose reference RGB is nearest the crop's mean pixel. Deterministic and free;
    for smoke runs and tests of the crop and bookkeeping, never for scores."""

    name = "dummy"
    REFERENCE = {"red": (255, 0, 0), "orange": (255, 165, 0), "yellow": (255, 255, 0), "green": (0, 128, 0),
                 "blue": (0, 0, 255), "purple": (128, 0, 128), "pink": (255, 192, 203), "brown": (139, 69, 19),
                 "black": (0, 0, 0), "white": (255, 255, 255)}

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "rule": "nearest reference RGB to the mean pixel"}

    def classify(self, crops: list[Image.Image], class_names: list[str]) -> list[str]:
        table = np.array([self.REFERENCE[c] for c in COLORS], dtype=np.float64)
        out = []
        for crop in crops:
            pixels = np.asarray(crop.convert("RGB"), dtype=np.float64).reshape(-1, 3)
            mean = pixels.mean(axis=0) if len(pixels) else np.zeros(3)
            out.append(COLORS[int(np.argmin(((table - mean) ** 2).sum(axis=1)))])
        return out


class CLIPColorClassifier:
    name = "clip"

    def __init__(self, model: str = "ViT-L-14", pretrained: str = "openai", device: str = "auto",
                 dtype: str = "auto", batch_size: int = 32):
        import torch

        from ts_eval.devices import torch_device

        try:
            import open_clip
        except ImportError:
            raise missing_extra("open_clip_torch", "geneval") from None
        self.arch, self.pretrained = model, pretrained
        self.device = torch_device(device)
        # The official run classifies under CUDA fp16 autocast; on CPU it is fp32.
        self.amp = self.device.type == "cuda" and dtype in ("auto", "fp16", "float16")
        self.batch_size = max(1, batch_size)
        try:
            self.model, _, self.transform = open_clip.create_model_and_transforms(
                model, pretrained=None if pretrained == RANDOM else pretrained, device=self.device)
        except Exception as exc:  # hub download failures come in many types; the remedy is the same
            if Path(pretrained).is_file() or "unknown model" in str(exc).lower():
                raise UsageError(f"open_clip cannot build {model!r} with weights {pretrained!r} "
                                 f"({type(exc).__name__}: {str(exc)[:160]})") from None
            raise UsageError(f"cannot load CLIP {model} weights {pretrained!r} ({type(exc).__name__}); when "
                             f"offline, download open_clip's {model} '{pretrained}' checkpoint elsewhere and "
                             "pass --scorer-arg clip_pretrained=PATH") from None
        if pretrained == RANDOM:
            print("ts-eval: warning: CLIP colour classifier with random weights; its colours mean nothing",
                  file=sys.stderr)
        self.weights_sha256 = _weights_sha256(model, pretrained)
        self.model.eval()
        self.tokenizer = open_clip.get_tokenizer(model)
        self._torch = torch
        self._classifiers: dict[str, Any] = {}  # class name -> (embedding dim, 10) text classifier

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "model": self.arch, "pretrained": self.pretrained,
                "weights_sha256": self.weights_sha256, "templates": list(TEMPLATES),
                "precision": "amp-fp16" if self.amp else "fp32"}

    def _autocast(self):
        import contextlib

        if self.amp:
            return self._torch.autocast("cuda", dtype=self._torch.float16)
        return contextlib.nullcontext()

    def _classifier(self, class_name: str):
        torch = self._torch
        if class_name not in self._classifiers:
            columns = []
            with torch.no_grad(), self._autocast():
                for color in COLORS:
                    tokens = self.tokenizer(color_prompts(class_name, color)).to(self.device)
                    embedding = torch.nn.functional.normalize(self.model.encode_text(tokens), dim=-1).mean(dim=0)
                    columns.append(embedding / embedding.norm())
            self._classifiers[class_name] = torch.stack(columns, dim=1)
        return self._classifiers[class_name]

    def classify(self, crops: list[Image.Image], class_names: list[str]) -> list[str]:
        torch = self._torch
        out: list[str] = []
        for start in range(0, len(crops), self.batch_size):
            chunk = crops[start:start + self.batch_size]
            names = class_names[start:start + self.batch_size]
            pixels = torch.stack([self.transform(c) for c in chunk]).to(self.device)
            with torch.no_grad(), self._autocast():
                features = torch.nn.functional.normalize(self.model.encode_image(pixels), dim=-1)
                for feature, name in zip(features, names):
                    logits = 100.0 * feature @ self._classifier(name)
                    out.append(COLORS[int(logits.argmax())])
        return out


def _weights_sha256(model: str, pretrained: str) -> str | None:
    """sha256 of local weights (a file, or the checkpoint in a `local-dir:` folder); None for a hub tag."""
    if model.startswith("local-dir:"):
        files = sorted(Path(model.removeprefix("local-dir:")).glob("open_clip_*model*"))
        return sha256_file(files[0]) if files else None
    return sha256_file(Path(pretrained)) if Path(pretrained).is_file() else None


def build_color_classifier(name: str, options: dict[str, Any], device: str, dtype: str):
    if name == "dummy":
        return DummyColorClassifier()
    if name == "clip":
        return CLIPColorClassifier(model=options["clip_model"], pretrained=options["clip_pretrained"],
                                   device=device, dtype=dtype, batch_size=options["color_batch_size"])
    raise UsageError(f"unknown GenEval colour classifier {name!r}; choose one of: clip, dummy")
