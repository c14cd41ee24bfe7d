"""GenEval's colour classifier: zero-shot CLIP over the 10 colours, on each detected object's crop.

Official recipe (evaluate_images.py with open_clip 2.20 and clip_benchmark 1.4.0): open_clip ViT-L-14 with
OpenAI's weights, loaded with QuickGELU (see openai_clip.py); the
object's crop is its box cut from the image after everything outside its mask is painted grey (#999); a
class-specific classifier averages the normalised text embeddings of three templates per colour; the
colour with the largest cosine similarity wins. On CUDA the official run uses fp16 autocast (amp).
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

import numpy as np
from PIL import Image

from ts_eval.devices import torch_dtype
from ts_eval.errors import UsageError
from ts_eval.geneval.rules import COLORS
from ts_eval.scorers.openai_clip import OPENAI, RANDOM, SCHEMAS, check_dtype, load_clip, resolve_clip, weights_file_hint

log = logging.getLogger(__name__)
TEMPLATES = ("a photo of a {color} {object}", "a photo of a {color}-colored {object}", "a photo of a {color} object")
BACKGROUND = "#999"
OWNER = "scorer 'geneval' (colour classifier)"


def color_crop(image: Image.Image, box, mask: np.ndarray | None, background: str = BACKGROUND) -> Image.Image:
    """The official crop: paint outside the mask with `background` ('original' keeps the image), cut the box."""
    if mask is not None:
        if tuple(mask.shape) != (image.height, image.width):
            raise ValueError(f"mask of shape {tuple(mask.shape)} for an image of {image.height}x{image.width}")
        blank = image.copy() if background == "original" else Image.new("RGB", image.size, color=background)
        image = Image.composite(image, blank, Image.fromarray(np.asarray(mask, dtype=bool)))
    x0, y0, x1, y1 = (float(v) for v in box[:4])
    return image.crop((x0, y0, x1, y1))  # PIL rounds the box, as in the official code


def color_prompts(class_name: str, color: str) -> list[str]:
    return [t.format(color=color, object=class_name) for t in TEMPLATES]


class DummyColorClassifier:
    """Not CLIP: the colour whose reference RGB is nearest the crop's mean pixel. Deterministic and free;
    for smoke runs and tests of the crop and bookkeeping, never for scores."""

    name = "dummy"
    REFERENCE: ClassVar[dict[str, tuple[int, int, int]]] = {
        "red": (255, 0, 0),
        "orange": (255, 165, 0),
        "yellow": (255, 255, 0),
        "green": (0, 128, 0),
        "blue": (0, 0, 255),
        "purple": (128, 0, 128),
        "pink": (255, 192, 203),
        "brown": (139, 69, 19),
        "black": (0, 0, 0),
        "white": (255, 255, 255),
    }

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
    """The official zero-shot colour classifier, step for step as clip_benchmark 1.4.0 runs it.

    `batch_size` crops of one class go through CLIP together. The official code classifies the `count`
    best objects of a class in one batch, and every colour clause of GenEval's prompts has count 1: one
    crop per forward (the default) is the official batching; larger batches are faster and may differ in
    the last bits of a feature.
    """

    name = "clip"

    def __init__(
        self,
        model: str = "ViT-L-14",
        pretrained: str | None = OPENAI,
        quick_gelu: str = "auto",
        device: str = "auto",
        dtype: str = "auto",
        batch_size: int = 1,
    ):
        import torch

        from ts_eval.devices import torch_device

        self.device = torch_device(device)
        self.autocast_dtype = _autocast_dtype(dtype, self.device.type)
        self.batch_size = max(1, batch_size)
        if model.startswith(SCHEMAS) and pretrained == OPENAI:
            pretrained = None  # the folder or hub model brings its own weights
        self.source = resolve_clip(model, pretrained, quick_gelu, owner=OWNER)
        try:
            self.clip = load_clip(self.source, device=self.device, owner=OWNER)
        except UsageError:
            raise
        except Exception as exc:  # download failures come in many types; the remedy is the same
            raise UsageError(
                f"cannot load CLIP {model} weights {pretrained!r} ({type(exc).__name__}); when "
                f"offline, download {weights_file_hint(model)} elsewhere and pass --scorer-arg "
                "clip_pretrained=PATH"
            ) from None
        if pretrained == RANDOM:
            log.warning("CLIP colour classifier with random weights; its colours mean nothing")
        self._torch = torch
        self._classifiers: dict[str, Any] = {}  # class name -> (embedding dim, 10) text classifier

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            **self.source.to_dict(),
            "templates": list(TEMPLATES),
            "precision": self.precision,
            "batch_size": self.batch_size,
        }

    @property
    def precision(self) -> str:
        """`device:dtype`: the official code autocasts to fp16 on CUDA only, so the same code on a CPU is fp32."""
        if self.autocast_dtype is None:
            return f"{self.device.type}:fp32"
        short = {"float16": "fp16", "bfloat16": "bf16"}[str(self.autocast_dtype).removeprefix("torch.")]
        return f"{self.device.type}:{short}-autocast"

    def _autocast(self):
        import contextlib

        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return self._torch.autocast(self.device.type, dtype=self.autocast_dtype)

    def _classifier(self, class_name: str):
        """clip_benchmark's `zero_shot_classifier`: per colour, the normalised mean of the normalised template
        embeddings, under the same autocast and with the same in-place division."""
        torch = self._torch
        if class_name not in self._classifiers:
            columns = []
            with torch.no_grad(), self._autocast():
                for color in COLORS:
                    tokens = self.clip.tokenizer(color_prompts(class_name, color)).to(self.device)
                    embedding = torch.nn.functional.normalize(self.clip.model.encode_text(tokens), dim=-1).mean(dim=0)
                    embedding /= embedding.norm()
                    columns.append(embedding)
                self._classifiers[class_name] = torch.stack(columns, dim=1).to(self.device)
        return self._classifiers[class_name]

    def classify(self, crops: list[Image.Image], class_names: list[str]) -> list[str]:
        return [COLORS[i] for i in self.logits(crops, class_names).argmax(1).tolist()]

    def logits(self, crops: list[Image.Image], class_names: list[str]):
        """clip_benchmark's `run_classification`, on batches of crops that share a class name: (n, 10) float32
        logits, 100 * cosine of each crop with each colour, in the classifier's precision."""
        torch = self._torch
        out = torch.zeros(len(crops), len(COLORS))
        for name in dict.fromkeys(class_names):
            members = [i for i, n in enumerate(class_names) if n == name]
            classifier = self._classifier(name)
            for start in range(0, len(members), self.batch_size):
                chunk = members[start : start + self.batch_size]
                pixels = torch.stack([self.clip.preprocess(crops[i]) for i in chunk]).to(self.device)
                with torch.no_grad(), self._autocast():
                    features = torch.nn.functional.normalize(self.clip.model.encode_image(pixels), dim=-1)
                    logits = 100.0 * features @ classifier
                out[chunk] = logits.float().cpu()
        return out


def _autocast_dtype(dtype: str, device_type: str):
    """The official run classifies under CUDA fp16 autocast (clip_benchmark's `amp=True`); on a CPU, where
    that autocast does nothing, in fp32. `auto` is that; fp32/fp16/bf16 choose another."""
    import torch

    if check_dtype(dtype, OWNER) == "auto":
        return torch.float16 if device_type == "cuda" else None
    chosen = torch_dtype(dtype, device_type)
    return None if chosen == torch.float32 else chosen
