"""GenEval's detector backends behind one interface: images in, instances (box, score, label, mask) out.

- `mmdet`: the official detector, mmdetection's Mask2Former Swin-S trained on COCO (mmdet_backend.py);
- `hf`: transformers' Mask2Former (hf_backend.py), post-processed the way mmdetection does it;
- `dummy`: `DummyDetector` below, pseudo-random instances seeded by the pixels, for smoke runs and tests.

Labels index GenEval's object_names.txt (COCO's 80 classes in detector order), as in the official code.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np
from PIL import Image

BACKENDS = ("mmdet", "hf", "dummy")


@dataclass
class Instances:
    """One image's detections, in the detector's own order (not sorted)."""

    boxes: np.ndarray  # (N, 4) float32, x1 y1 x2 y2 in pixels of the input image
    scores: np.ndarray  # (N,) float32
    labels: np.ndarray  # (N,) int64, line index into object_names.txt
    masks: Any = None  # (N, H, W) bool array or CPU tensor; None for a detector without masks

    def __len__(self) -> int:
        return len(self.scores)

    def mask(self, index: int) -> np.ndarray | None:
        if self.masks is None:
            return None
        mask = self.masks[index]
        return mask.numpy() if hasattr(mask, "numpy") else np.asarray(mask)

    def ranked_by_class(self, n_classes: int) -> dict[int, list[int]]:
        """Instance indices per label, best first, in the official order (`np.argsort(scores)[::-1]`)."""
        out = {}
        for label in range(n_classes):
            members = np.flatnonzero(self.labels == label)
            if len(members):
                out[label] = members[np.argsort(self.scores[members])[::-1]].tolist()
        return out


@runtime_checkable
class Detector(Protocol):
    name: str

    def describe(self) -> dict[str, Any]: ...

    def detect(self, images: list[Image.Image], paths: list[str]) -> list[Instances]: ...


class DummyDetector:
    """Not a detector: 0-6 instances of random classes, boxes and scores, seeded by the image's pixels.

    Deterministic (equal pixels, equal instances) and free, so the whole GenEval pipeline, the
    detections.jsonl contract and `ts-eval rescore` can be exercised without any model. Its scores say
    nothing about an image.
    """

    name = "dummy"

    def __init__(self, n_classes: int = 80, max_instances: int = 6):
        self.n_classes = n_classes
        self.max_instances = max_instances

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "max_instances": self.max_instances}

    def detect(self, images: list[Image.Image], paths: list[str]) -> list[Instances]:
        return [self._instances(image) for image in images]

    def _instances(self, image: Image.Image) -> Instances:
        pixels = np.asarray(image.convert("RGB"))
        digest = hashlib.sha256(pixels.tobytes() + str(pixels.shape).encode()).digest()
        rng = np.random.default_rng(int.from_bytes(digest[:8], "big"))
        n = int(rng.integers(0, self.max_instances + 1))
        height, width = pixels.shape[:2]
        x = np.sort(rng.uniform(0, width, size=(n, 2)), axis=1)
        y = np.sort(rng.uniform(0, height, size=(n, 2)), axis=1)
        boxes = np.round(np.stack([x[:, 0], y[:, 0], x[:, 1] + 1, y[:, 1] + 1], axis=1)).astype(np.float32)
        return Instances(
            boxes=boxes,
            scores=rng.uniform(0, 1, size=n).astype(np.float32),
            labels=rng.integers(0, self.n_classes, size=n).astype(np.int64),
            masks=None,
        )
