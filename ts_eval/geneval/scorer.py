"""The `geneval` scorer: detector -> colour of each candidate object -> the official judge.

Per batch of images: one detector forward, one batched colour classification of every object that could
pass the judge's thresholds (score above the lower of the two thresholds, within the 16 best of its class),
then the pure judge. Every detection the detector returned is kept, with its colour or null, for
detections.jsonl, so `ts-eval rescore` can re-judge without any model.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ts_eval.errors import UsageError
from ts_eval.geneval.color import BACKGROUND, CLIPColorClassifier, DummyColorClassifier, color_crop
from ts_eval.geneval.detectors import BACKENDS, Detector, DummyDetector, Instances
from ts_eval.geneval.rules import DetectedObject, JudgeSettings, judge
from ts_eval.options import option, parse_options
from ts_eval.records import Sample, ScoredImage, ScoreRequest

JUDGE_DEFAULTS = JudgeSettings().to_dict()


@dataclass(frozen=True)
class GenEvalOptions(JudgeSettings):
    """GenEval's official scorer: Mask2Former detections, CLIP colours, the official judge's rules."""

    detector: str = option("mmdet", f"{', '.join(BACKENDS)} (mmdet: the official one)")
    detector_config: str = option("", "mmdet: config name or file ('' = the official Swin-S config)")
    checkpoint: str = option("", "detector weights file ('' = the official one); 'random': speed tests")
    hf_model: str = option("", "hf: model id or folder ('' = facebook/mask2former-swin-small-coco-instance)")
    hf_revision: str = option("main", "hf: the Hub revision of hf_model")
    hf_resize: str = option("mmdet", "hf: mmdet (the official 800/1333 test scale) or processor (the model's own)")
    color_classifier: str = option("auto", "clip or dummy (auto: dummy with the dummy detector, else clip)")
    clip_model: str = option("ViT-L-14", "colour CLIP: an open_clip name, or local-dir:FOLDER")
    clip_pretrained: str = option("openai", "colour CLIP: open_clip tag or weights file; 'random': speed tests")
    clip_quick_gelu: str = option("auto", "auto (QuickGELU for OpenAI's weights, official), true or false")
    color_batch_size: int = option(1, "crops per CLIP forward (1: the official batching, see color.py)")
    dtype: str = option("auto", "colour classifier: auto (fp16 autocast on CUDA, fp32 on CPU: official), fp32, ...")
    bgcolor: str = option(BACKGROUND, "colour outside the object's mask ('original' keeps the image)")


def judge_settings(options: JudgeSettings) -> JudgeSettings:
    """The judge's part of the options (a scorer's or `rescore --judge-arg`'s), checked."""
    settings = JudgeSettings(**{f.name: getattr(options, f.name) for f in fields(JudgeSettings)})
    if not (0 <= settings.threshold <= 1 and 0 <= settings.counting_threshold <= 1):
        raise UsageError("GenEval thresholds must lie in [0, 1]")
    if settings.max_objects < 1:
        raise UsageError("GenEval max_objects must be at least 1")
    if not 0 < settings.max_overlap <= 1:
        raise UsageError("GenEval max_overlap must lie in (0, 1]; 1 keeps overlapping boxes (official)")
    return settings


def open_image(path: str) -> Image.Image:
    try:
        with Image.open(path) as image:
            image.load()
            return ImageOps.exif_transpose(image).convert("RGB")
    except FileNotFoundError:
        raise UsageError(f"{path}: image is missing; re-run `ts-eval generate` with the same settings") from None
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise UsageError(
            f"{path}: not a readable image ({type(exc).__name__}); replace or remove it and re-run `ts-eval generate`"
        ) from None


def build_detector(name: str, options: GenEvalOptions, device: str) -> Detector:
    if name == "dummy":
        return DummyDetector()
    if name == "mmdet":
        from ts_eval.geneval.mmdet_backend import MMDetDetector

        return MMDetDetector(config=options.detector_config, checkpoint=options.checkpoint, device=device)
    if name == "hf":
        from ts_eval.geneval.hf_backend import HFDetector

        return HFDetector(
            model=options.hf_model,
            revision=options.hf_revision,
            checkpoint=options.checkpoint,
            device=device,
            resize=options.hf_resize,
        )
    raise UsageError(f"unknown GenEval detector {name!r}; choose one of: {', '.join(BACKENDS)}")


def build_color_classifier(name: str, options: GenEvalOptions, device: str):
    if name == "dummy":
        return DummyColorClassifier()
    if name == "clip":
        return CLIPColorClassifier(
            model=options.clip_model,
            pretrained=options.clip_pretrained,
            quick_gelu=options.clip_quick_gelu,
            device=device,
            dtype=options.dtype,
            batch_size=options.color_batch_size,
        )
    raise UsageError(f"unknown GenEval colour classifier {name!r}; choose one of: clip, dummy")


class GenEvalScorer:
    name = "geneval"
    metrics = ("correct",)
    writes_detections = True  # detections.jsonl: every object found, for `ts-eval rescore`
    Options = GenEvalOptions

    def __init__(self, args: dict[str, str], *, task, device: str = "auto", batch_size: int = 8):
        from ts_eval.geneval.task import bundled_class_names

        self.options = opts = parse_options(args, GenEvalOptions, "scorer 'geneval'")
        if opts.detector not in BACKENDS:
            raise UsageError(f"unknown GenEval detector {opts.detector!r}; choose one of: {', '.join(BACKENDS)}")
        self.settings = judge_settings(opts)
        self.background = opts.bgcolor
        self.class_names = bundled_class_names(task)
        self.batch_size = max(1, batch_size)
        color = opts.color_classifier
        if color == "auto":
            color = "dummy" if opts.detector == "dummy" else "clip"
        self.detector = build_detector(opts.detector, opts, device)
        self.colors = build_color_classifier(color, opts, device)

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": "2",
            "detector": self.detector.describe(),
            "color_classifier": self.colors.describe(),
            "bgcolor": self.background,
            "judge": self.settings.to_dict(),
            "class_names_sha256": hashlib.sha256("\n".join(self.class_names).encode()).hexdigest(),
        }

    def score(self, requests: list[ScoreRequest]) -> list[ScoredImage]:
        images = [open_image(r.image_path) for r in requests]
        found = self.detector.detect(images, [r.image_path for r in requests])
        if len(found) != len(requests):
            raise RuntimeError(
                f"detector {self.detector.name} returned {len(found)} results for {len(requests)} images"
            )
        ranked = [instances.ranked_by_class(len(self.class_names)) for instances in found]
        colors = self._colors(images, found, ranked)
        out = []
        for i, request in enumerate(requests):
            detections = self._detections(found[i], ranked[i], colors, i)
            objects = {
                name: [DetectedObject(tuple(d["box"]), d["score"], d["color"]) for d in items]
                for name, items in detections.items()
            }
            verdict = judge(request.prompt.metadata, objects, self.settings)
            sample = Sample(
                request.prompt.prompt_id,
                request.sample_index,
                "correct",
                float(verdict.correct),
                verdict.reason or None,
                request.image_sha256,
            )
            out.append(ScoredImage([sample], detections))
        return out

    def _colors(
        self, images: list[Image.Image], found: list[Instances], ranked: list[dict[int, list[int]]]
    ) -> dict[tuple[int, int], str]:
        """Colour of every object that can pass a threshold, classified in one batch across images."""
        floor = np.float32(self.settings.lowest_threshold())
        jobs: list[tuple[int, int, str]] = []
        for i, (instances, by_label) in enumerate(zip(found, ranked)):
            for label, order in by_label.items():
                above = [j for j in order if instances.scores[j] > floor][: self.settings.max_objects]
                jobs += [(i, j, self.class_names[label]) for j in above]
        if not jobs:
            return {}
        crops = [color_crop(images[i], found[i].boxes[j], found[i].mask(j), self.background) for i, j, _ in jobs]
        names = self.colors.classify(crops, [name for _, _, name in jobs])
        return {(i, j): color for (i, j, _), color in zip(jobs, names)}

    def _detections(
        self, instances: Instances, by_label: dict[int, list[int]], colors: dict[tuple[int, int], str], image_index: int
    ) -> dict[str, list[dict[str, Any]]]:
        """detections.jsonl's `detections`: class name -> objects best first, every detection kept."""
        return {
            self.class_names[label]: [
                {
                    "box": [short_float(v) for v in instances.boxes[j]],
                    "score": short_float(instances.scores[j]),
                    "color": colors.get((image_index, j)),
                }
                for j in order
            ]
            for label, order in by_label.items()
        }


def short_float(value: np.float32) -> float:
    """The shortest decimal that rounds back to the same float32 (0.5481913, not 0.5481913089752197): the
    judge reads scores as float32, like the official arrays, so nothing is lost and the file is a third smaller."""
    return float(str(np.float32(value)))
