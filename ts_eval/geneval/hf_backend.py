"""Mask2Former from transformers as a GenEval detector (no mmcv build needed).

transformers' own `post_process_instance_segmentation` rescales masks through a fixed 384x384 grid and
drops instances below a score threshold; GenEval needs every instance at full resolution, so the raw
query outputs are post-processed here the way mmdetection does it (`instances_from_queries`). The default
weights (`facebook/mask2former-swin-small-coco-instance`) are Meta's Swin-S COCO model, a different
training run from the official mmdetection checkpoint: numbers are close to, not equal to, official ones.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image

from ts_eval import hub
from ts_eval.errors import UsageError, missing_extra
from ts_eval.geneval.detectors import Instances

DEFAULT_MODEL = "facebook/mask2former-swin-small-coco-instance"
RANDOM = "random"
# The official detector's test scale (mmdetection: Resize scale=(1333, 800), keep_ratio), used unless
# `resize='processor'` asks for whatever the model's saved image processor does.
MMDET_SIZE = {"shortest_edge": 800, "longest_edge": 1333}


class HFDetector:
    name = "hf"

    def __init__(
        self,
        model: str = "",
        revision: str = "main",
        checkpoint: str = "",
        device: str = "auto",
        max_per_image: int = 100,
        resize: str = "mmdet",
    ):
        import torch

        from ts_eval.devices import torch_device

        try:
            from transformers import Mask2FormerForUniversalSegmentation, Mask2FormerImageProcessor
        except ImportError:
            raise missing_extra("transformers", "geneval") from None
        hub.quiet_third_party_logs()  # transformers sets up its own log handler on import
        self.model_id = model or DEFAULT_MODEL
        self.revision = revision
        self.random = checkpoint == RANDOM
        self.device = torch_device(device)
        self.max_per_image = max_per_image
        try:
            if self.random:  # speed tests only: the architecture of `model`, untrained
                from transformers import AutoConfig

                config = AutoConfig.from_pretrained(self.model_id, revision=revision)
                self.model = Mask2FormerForUniversalSegmentation(config)
            else:
                self.model = Mask2FormerForUniversalSegmentation.from_pretrained(self.model_id, revision=revision)
            self.processor = Mask2FormerImageProcessor.from_pretrained(self.model_id, revision=revision)
        except (OSError, ValueError) as exc:
            raise UsageError(
                f"cannot load Mask2Former {self.model_id!r} ({type(exc).__name__}); when offline, "
                f"download it elsewhere (huggingface-cli download {self.model_id}) and pass "
                "--scorer-arg hf_model=DIR"
            ) from None
        if resize not in ("mmdet", "processor"):
            raise UsageError(f"hf_resize={resize!r}: use 'mmdet' (800/1333, the official scale) or 'processor'")
        self.resize = resize
        if resize == "mmdet":
            self.processor.size = dict(MMDET_SIZE)
        if self.model.config.num_labels != 80:
            raise UsageError(
                f"Mask2Former {self.model_id!r} has {self.model.config.num_labels} classes; GenEval "
                "needs a COCO instance model (80 classes in COCO order)"
            )
        # transformers types `to` as the model's own __call__-bound method; it takes a device
        self.model.to(self.device).eval()  # pyright: ignore[reportArgumentType]
        self._torch = torch

    def describe(self) -> dict[str, Any]:
        commit = getattr(self.model.config, "_commit_hash", None)
        return {
            "name": self.name,
            "model": self.model_id,
            "revision": self.revision,
            "commit": commit,
            "weights": RANDOM if self.random else "pretrained",
            "max_per_image": self.max_per_image,
            "size": dict(self.processor.size),
        }

    def detect(self, images: list[Image.Image], paths: list[str]) -> list[Instances]:
        torch = self._torch
        if not images:
            return []
        inputs = self.processor(images=images, return_tensors="pt")
        pixel_values = inputs["pixel_values"].to(self.device)
        pixel_mask = inputs["pixel_mask"].to(self.device)
        with torch.no_grad():
            outputs = self.model(pixel_values=pixel_values, pixel_mask=pixel_mask)
        padded = pixel_values.shape[-2:]
        out = []
        for i, image in enumerate(images):
            # Undo the preprocessing as mmdetection does: logits up to the padded input, cut the padding,
            # then resize to the original image.
            height = int(pixel_mask[i].any(dim=1).sum())
            width = int(pixel_mask[i].any(dim=0).sum())
            logits = torch.nn.functional.interpolate(
                outputs.masks_queries_logits[i : i + 1].float(), size=padded, mode="bilinear", align_corners=False
            )[0, :, :height, :width]
            logits = torch.nn.functional.interpolate(
                logits[None], size=(image.height, image.width), mode="bilinear", align_corners=False
            )[0]
            out.append(instances_from_queries(outputs.class_queries_logits[i].float(), logits, self.max_per_image))
        return out


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
    return Instances(
        boxes=masks_to_boxes(masks).cpu().numpy(),
        scores=(scores * mask_scores).float().cpu().numpy(),
        labels=labels.cpu().numpy().astype(np.int64),
        masks=masks.cpu(),
    )
