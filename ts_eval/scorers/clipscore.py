"""CLIPScore (Hessel et al., 2021) through open_clip: w * max(cos(image, "A photo depicts " + prompt), 0).

Hessel et al. use w = 2.5, the text prefix "A photo depicts" and OpenAI's ViT-B/32; our default backbone is
OpenAI's ViT-L/14, the CLIPScore baseline of the VQAScore / GenAI-Bench papers (`--scorer-arg model=ViT-B-32`
gives Hessel's). The metric is written as `clipscore`, never under the task's own metric name.
"""

from __future__ import annotations

import os
import pickle
from contextlib import nullcontext
from importlib.metadata import version
from typing import Any

from ts_eval.devices import torch_device, torch_dtype
from ts_eval.errors import UsageError, missing_extra
from ts_eval.options import parse_options
from ts_eval.records import Sample, ScoredImage, ScoreRequest
from ts_eval.scorers import local_weights

OWNER = "scorer 'clipscore'"
OPTIONS: dict[str, Any] = {
    "model": "ViT-L-14",          # an open_clip model name, hf-hub:ORG/REPO or local-dir:DIR
    "pretrained": "openai",       # weights of a named model: an open_clip tag or a checkpoint file
    "weight": 2.5,                # w of Hessel et al.
    "prefix": "A photo depicts",  # put before each prompt, as Hessel et al. do; empty for none
    "cache_dir": "",              # where open_clip downloads weights; empty: its default (the Hugging Face cache)
}
SCHEMAS = ("hf-hub:", "local-dir:")


def _open_clip():
    try:
        import open_clip
    except ImportError:
        raise missing_extra("open_clip", "genai") from None
    return open_clip


class CLIPScorer:
    name = "clipscore"
    metrics = ("clipscore",)

    def __init__(self, args: dict[str, str], *, task=None, device: str = "auto", dtype: str = "auto",
                 batch_size: int = 8):
        opts = parse_options(args, OPTIONS, OWNER)
        self.batch_size = batch_size
        self.device = torch_device(device)
        self.dtype = torch_dtype(dtype, self.device)
        self.weight = opts["weight"]
        if self.weight <= 0:
            raise UsageError(f"{OWNER}: weight must be positive, got {self.weight}")
        prefix = opts["prefix"]
        self.prefix = prefix + " " if prefix and not prefix.endswith(" ") else prefix
        self.cache_dir = opts["cache_dir"] or None
        self.model, self.pretrained = _check_model(opts["model"], opts["pretrained"], "pretrained" in args)
        self._loaded = None  # (model, preprocess, tokenizer), loaded on the first batch

    def describe(self) -> dict[str, Any]:
        weights = self.model.partition(":")[2] if self.model.startswith("local-dir:") else self.pretrained or ""
        return {"name": self.name, "version": "1", "metric": self.metrics[0], "open_clip": version("open_clip_torch"),
                "model": self.model, "pretrained": self.pretrained, "weights_stamp": local_weights.stamp(weights),
                "weight": self.weight, "prefix": self.prefix, "precision": self._precision(),
                "device": self.device.type}

    def _precision(self) -> str:
        short = {"float32": "fp32", "bfloat16": "bf16", "float16": "fp16"}[str(self.dtype).removeprefix("torch.")]
        return short if short == "fp32" else f"{short}-autocast"  # weights stay fp32; matmuls run in `short`

    def score(self, requests: list[ScoreRequest]) -> list[ScoredImage]:
        values: list[float] = []
        for start in range(0, len(requests), self.batch_size):
            values.extend(self._score_pairs(requests[start:start + self.batch_size]))
        metric = self.metrics[0]
        return [ScoredImage([Sample(r.prompt.prompt_id, r.sample_index, metric, v, image_sha256=r.image_sha256)])
                for r, v in zip(requests, values)]

    def _score_pairs(self, requests: list[ScoreRequest]) -> list[float]:
        import torch
        from PIL import Image

        model, preprocess, tokenizer = self._load()
        images = []
        for request in requests:
            with Image.open(request.image_path) as image:
                images.append(preprocess(image.convert("RGB")))
        pixels = torch.stack(images).to(self.device)
        tokens = tokenizer([self.prefix + r.prompt.prompt for r in requests]).to(self.device)
        low_precision = self.dtype != torch.float32
        autocast = torch.autocast(self.device.type, dtype=self.dtype) if low_precision else nullcontext()
        with torch.no_grad(), autocast:
            image_features = model.encode_image(pixels)
            text_features = model.encode_text(tokens)
        image_features = torch.nn.functional.normalize(image_features.float(), dim=-1)
        text_features = torch.nn.functional.normalize(text_features.float(), dim=-1)
        cosine = (image_features * text_features).sum(dim=-1)
        return [float(v) for v in (self.weight * cosine.clamp(min=0)).cpu()]

    def _load(self):
        if self._loaded is not None:
            return self._loaded
        open_clip = _open_clip()
        try:
            model, _, preprocess = open_clip.create_model_and_transforms(
                self.model, pretrained=self.pretrained, device=self.device, cache_dir=self.cache_dir)
        except (OSError, RuntimeError, ValueError, pickle.UnpicklingError) as exc:
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise UsageError(f"{OWNER}: could not load open_clip {self.model} (pretrained={self.pretrained}): "
                             f"{reason} -- connect to the internet once to download it, or pass --scorer-arg "
                             "pretrained=/path/to/checkpoint (or model=local-dir:DIR with open_clip_config.json "
                             "and the weights)") from None
        model.eval()
        self._loaded = (model, preprocess, open_clip.get_tokenizer(self.model, cache_dir=self.cache_dir))
        return self._loaded


def _check_model(model: str, pretrained: str, pretrained_given: bool) -> tuple[str, str | None]:
    """Validate the model and weights choice without loading anything; returns (model, pretrained)."""
    open_clip = _open_clip()
    if model.startswith(SCHEMAS):
        if pretrained_given:
            raise UsageError(f"{OWNER}: model={model} brings its own weights; drop pretrained={pretrained}")
        if model.startswith("local-dir:"):
            folder = os.path.abspath(os.path.expanduser(model.partition(":")[2]))
            if not os.path.isfile(os.path.join(folder, "open_clip_config.json")):
                raise UsageError(f"{OWNER}: model={model}: {folder} has no open_clip_config.json")
            # open_clip would quietly build a random model from a folder without weights
            if not any(name.endswith((".safetensors", ".bin", ".pth")) for name in os.listdir(folder)):
                raise UsageError(f"{OWNER}: model={model}: {folder} has no weights (*.safetensors, *.bin, *.pth)")
            model = f"local-dir:{folder}"
        return model, None
    name = model.replace("/", "-")  # open_clip accepts "ViT-L/14" for "ViT-L-14"
    if name not in open_clip.list_models():
        raise UsageError(f"{OWNER}: unknown open_clip model {model!r}; use a name from open_clip.list_models() "
                         "(e.g. ViT-L-14, ViT-B-32), hf-hub:ORG/REPO or local-dir:DIR")
    tags = open_clip.list_pretrained_tags_by_model(name)
    path = os.path.expanduser(pretrained)
    if os.path.isfile(path):
        return name, os.path.abspath(path)
    if pretrained not in tags:
        known = ", ".join(tags) if tags else "none"
        raise UsageError(f"{OWNER}: pretrained={pretrained!r} is neither a file nor a tag of {name} "
                         f"(tags: {known})")
    return name, pretrained
