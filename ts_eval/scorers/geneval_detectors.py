"""GenEval's detector backends behind one interface: images in, instances (box, score, label, mask) out.

- `mmdet`: the official detector, mmdetection's Mask2Former Swin-S trained on COCO (geneval_mmdet.py);
- `hf`: transformers' Mask2Former (geneval_hf.py), post-processed the way mmdetection does it;
- `dummy`: `DummyDetector` below, pseudo-random instances seeded by the pixels, for smoke runs and tests.

Labels index GenEval's object_names.txt (COCO's 80 classes in detector order), as in the official code.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np
from PIL import Image

from ts_eval.errors import UsageError

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
        return Instances(boxes=boxes, scores=rng.uniform(0, 1, size=n).astype(np.float32),
                         labels=rng.integers(0, self.n_classes, size=n).astype(np.int64), masks=None)


def build_detector(name: str, options: dict[str, Any], device: str) -> Detector:
    if name == "dummy":
        return DummyDetector()
    if name == "mmdet":
        from ts_eval.scorers.geneval_mmdet import MMDetDetector

        return MMDetDetector(config=options["detector_config"], checkpoint=options["checkpoint"], device=device)
    if name == "hf":
        from ts_eval.scorers.geneval_hf import HFDetector

        return HFDetector(model=options["hf_model"], revision=options["hf_revision"],
                          checkpoint=options["checkpoint"], device=device, resize=options["hf_resize"])
    raise UsageError(f"unknown GenEval detector {name!r}; choose one of: {', '.join(BACKENDS)}")


# -- mmdetection's Mask2Former instance post-processing, for backends that do not have it --------------

def masks_to_boxes(masks) -> Any:
    """Tight boxes of binary masks as mmdetection's `mask2bbox`: [x_min, y_min, x_max + 1, y_max + 1], 0 if empty."""
    import torch

    n, height, width = masks.shape
    boxes = torch.zeros((n, 4), dtype=torch.float32, device=masks.device)
    if n == 0:
        return boxes
    x_any, y_any = masks.any(dim=1), masks.any(dim=2)
    present = x_any.any(dim=1) & y_any.any(dim=1)
    x_first = x_any.float().argmax(dim=1)
    y_first = y_any.float().argmax(dim=1)
    x_last = width - x_any.flip(1).float().argmax(dim=1)
    y_last = height - y_any.flip(1).float().argmax(dim=1)
    found = torch.stack([x_first, y_first, x_last, y_last], dim=1).float()
    boxes[present] = found[present]
    return boxes


def instances_from_queries(class_logits, mask_logits, max_per_image: int = 100) -> Instances:
    """Per-query class logits (Q, C+1) and full-resolution mask logits (Q, H, W) -> instances.

    The same steps as mmdetection's MaskFormerFusionHead.instance_postprocess: top `max_per_image`
    (query, class) pairs by class probability, binary masks at logit > 0, score = class probability x
    mean mask probability inside the mask, boxes from the masks.
    """
    import torch

    n_queries, n_classes = class_logits.shape[0], class_logits.shape[1] - 1
    probs = torch.softmax(class_logits, dim=-1)[:, :-1]
    labels = torch.arange(n_classes, device=class_logits.device).repeat(n_queries)
    scores, top = probs.flatten().topk(min(max_per_image, probs.numel()), sorted=False)
    labels = labels[top]
    logits = mask_logits[top // n_classes]
    binary = (logits > 0).float()
    mask_scores = (logits.sigmoid() * binary).flatten(1).sum(1) / (binary.flatten(1).sum(1) + 1e-6)
    masks = binary.bool()
    return Instances(boxes=masks_to_boxes(masks).cpu().numpy(), scores=(scores * mask_scores).float().cpu().numpy(),
                     labels=labels.cpu().numpy().astype(np.int64), masks=masks.cpu())
