"""CLIPScore in the three recipes papers report, each computed exactly as its reference computes it.

| variant        | reference                                   | CLIP (weights)                        | text                         | value            |
|----------------|---------------------------------------------|---------------------------------------|------------------------------|------------------|
| `hessel`       | Hessel et al. 2021, jmhessel/clipscore      | ViT-B/32 (OpenAI)                     | "A photo depicts " + prompt  | 2.5 * max(cos, 0)|
| `t2v-metrics`  | t2v_metrics.CLIPScore, as GenAI-Bench's     | ViT-L/14 at 336 px (OpenAI),          | prompt                       | cos              |
|                | tables ran it (`openai:ViT-L-14-336`)       |                                       |                              |                  |
| `torchmetrics` | torchmetrics' CLIPScore (transformers CLIP) | openai/clip-vit-large-patch14         | prompt                       | max(100 * cos, 0)|

The metric is always written as `clipscore`; `describe()` names the variant and a `label` for tables, so a
table says which one it shows. OpenAI's weights run with QuickGELU (see openai_clip.py). Official dtypes:
Hessel's script runs OpenAI's half-precision model on CUDA (`clip.load` keeps fp16 there) and fp32 on a CPU;
t2v-metrics and torchmetrics run fp32. `--scorer-arg dtype=` picks another.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np

from ts_eval import hub
from ts_eval.devices import torch_device, torch_dtype
from ts_eval.errors import UsageError, missing_extra
from ts_eval.options import option, parse_options
from ts_eval.records import Sample, ScoredImage, ScoreRequest
from ts_eval.scorers.openai_clip import OPENAI, check_dtype, load_clip, resolve_clip, weights_file_hint
from ts_eval.weights import HashCache, folder_sha256, weight_files

OWNER = "scorer 'clipscore'"


@dataclass(frozen=True)
class Variant:
    name: str
    reference: str
    model: str  # the reference's CLIP
    prefix: str  # put before each prompt
    formula: str


VARIANTS = {
    "hessel": Variant(
        "hessel",
        "Hessel et al. 2021 (jmhessel/clipscore, clipscore.py)",
        "ViT-B-32",
        "A photo depicts ",
        "2.5*max(cos,0)",
    ),
    "t2v-metrics": Variant(
        "t2v-metrics", "t2v_metrics 3.0 CLIPScore (GenAI-Bench tables: openai:ViT-L-14-336)", "ViT-L-14-336", "", "cos"
    ),
    "torchmetrics": Variant(
        "torchmetrics",
        "torchmetrics 1.x CLIPScore (transformers CLIPModel)",
        "openai/clip-vit-large-patch14",
        "",
        "max(100*cos,0)",
    ),
}


@dataclass(frozen=True)
class CLIPScoreOptions:
    """CLIPScore as Hessel et al., t2v-metrics or torchmetrics compute it (the variant names the recipe)."""

    variant: str = option("hessel", "the recipe (see docs/clipscore.md)", choices=tuple(VARIANTS))
    model: str = option(
        "",
        "the CLIP ('' = the variant's): an open_clip name or local-dir:DIR; torchmetrics: a "
        "transformers CLIP id or folder",
    )
    pretrained: str = option("", "open_clip variants: a tag or weights file ('' = openai); 'random': speed tests")
    revision: str = option("main", "torchmetrics: the Hub revision of model")
    quick_gelu: str = option("auto", "open_clip variants: auto (QuickGELU for OpenAI's weights), true or false")
    dtype: str = option("auto", "auto (the recipe's own: fp16 for hessel on CUDA, else fp32), fp32, fp16, bf16")
    cache_dir: str = option("", "where weights are downloaded ('' = the library's default)")


class CLIPScorer:
    name = "clipscore"
    metrics = ("clipscore",)
    Options = CLIPScoreOptions

    def __init__(self, args: dict[str, str], *, task=None, device: str = "auto", batch_size: int = 8):
        self.options = opts = parse_options(args, CLIPScoreOptions, OWNER)
        self.variant = VARIANTS[opts.variant]
        check_dtype(opts.dtype, OWNER)
        self.batch_size = batch_size
        self.device = torch_device(device)
        self.cache_dir = opts.cache_dir or None
        model = opts.model or self.variant.model
        if self.variant.name == "torchmetrics":
            if opts.pretrained or opts.quick_gelu != "auto":
                raise UsageError(
                    f"{OWNER}: variant=torchmetrics takes a transformers CLIP as model=; pretrained= and "
                    "quick_gelu= are for the open_clip variants (its config sets the activation)"
                )
            self.backend = _TransformersCLIP(model, opts.revision, self.device, opts.dtype, self.cache_dir)
        else:
            pretrained = opts.pretrained or (None if model.startswith(("local-dir:", "hf-hub:")) else OPENAI)
            source = resolve_clip(model, pretrained, opts.quick_gelu, owner=OWNER)
            self.backend = _OpenCLIP(source, self.variant, self.device, opts.dtype, self.cache_dir)

    @property
    def label(self) -> str:
        return f"clipscore ({self.variant.name})"

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": "2",
            "metric": self.metrics[0],
            "variant": self.variant.name,
            "label": self.label,
            "reference": self.variant.reference,
            "prefix": self.variant.prefix,
            "formula": self.variant.formula,
            **self.backend.describe(),
            "device": self.device.type,
        }

    def score(self, requests: list[ScoreRequest]) -> list[ScoredImage]:
        values: list[float] = []
        for start in range(0, len(requests), self.batch_size):
            chunk = requests[start : start + self.batch_size]
            values.extend(
                self.backend.score(
                    [r.image_path for r in chunk], [self.variant.prefix + r.prompt.prompt for r in chunk]
                )
            )
        metric = self.metrics[0]
        return [
            ScoredImage([Sample(r.prompt.prompt_id, r.sample_index, metric, v, image_sha256=r.image_sha256)])
            for r, v in zip(requests, values)
        ]


def _open_image(path: str):
    from PIL import Image

    return Image.open(path)


class _OpenCLIP:
    """The `hessel` and `t2v-metrics` recipes, on open_clip."""

    def __init__(self, source, variant: Variant, device, dtype: str, cache_dir: str | None):
        import torch

        self.source, self.variant, self.device, self.cache_dir = source, variant, device, cache_dir
        self.hessel = variant.name == "hessel"
        chosen = torch_dtype("fp32" if dtype == "auto" else dtype, device.type)
        if self.hessel and dtype == "auto" and device.type == "cuda":
            chosen = torch.float16  # clip.load keeps OpenAI's half-precision model on CUDA
        if chosen != torch.float32 and self.hessel and not source.openai_format:
            raise UsageError(f"{OWNER}: variant=hessel runs a half-precision model only with OpenAI's weights")
        self.dtype = chosen
        self._loaded = None

    def describe(self) -> dict[str, Any]:
        short = {"float32": "fp32", "float16": "fp16", "bfloat16": "bf16"}[str(self.dtype).removeprefix("torch.")]
        precision = short if short == "fp32" or self.hessel else f"{short}-autocast"
        return {"open_clip": version("open_clip_torch"), **self.source.to_dict(), "precision": precision}

    def _load(self):
        if self._loaded is None:
            import torch

            # Hessel's half precision is the model's own (OpenAI's fp16 CLIP); the others autocast
            precision = (
                {torch.float16: "fp16", torch.bfloat16: "bf16"}.get(self.dtype, "fp32") if self.hessel else "fp32"
            )
            try:
                self._loaded = load_clip(
                    self.source, device=self.device, precision=precision, cache_dir=self.cache_dir, owner=OWNER
                )
            except UsageError:
                raise
            except Exception as exc:  # download failures come in many types; the remedy is the same
                reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                raise UsageError(
                    f"{OWNER}: could not load open_clip {self.source.model} (pretrained="
                    f"{self.source.pretrained}): {reason[:160]} -- connect to the internet once to "
                    f"download it, or download {weights_file_hint(self.source.model)} elsewhere and "
                    "pass --scorer-arg pretrained=/path/to/checkpoint"
                ) from None
        return self._loaded

    def score(self, paths: list[str], texts: list[str]) -> list[float]:
        import torch

        clip = self._load()
        if self.hessel:  # clipscore.py: Image.open, the transform converts to RGB after the crop
            pixels = torch.stack([clip.preprocess(_open_image(p)) for p in paths]).to(self.device)
        else:  # t2v_metrics' image_loader
            pixels = torch.stack([clip.preprocess(_open_image(p).convert("RGB")) for p in paths]).to(self.device)
        tokens = clip.tokenizer(texts).to(self.device)  # truncates to 77 tokens keeping the end token
        if self.hessel:
            with torch.no_grad():
                images = clip.model.encode_image(pixels.to(self.dtype)).cpu().numpy()
                captions = clip.model.encode_text(tokens).cpu().numpy()
            return [float(v) for v in hessel_clipscore(images, captions)]
        autocast = torch.autocast(self.device.type, dtype=self.dtype) if self.dtype != torch.float32 else nullcontext()
        with torch.no_grad(), autocast:  # t2v_metrics' CLIPScoreModel.forward, step for step
            image_features = clip.model.encode_image(pixels)
            image_features /= image_features.norm(dim=-1, keepdim=True)
            text_features = clip.model.encode_text(tokens)
            text_features /= text_features.norm(dim=-1, keepdim=True)
            cosine = (image_features * text_features).sum(dim=-1)
        return [float(v) for v in cosine.float().cpu()]


def hessel_clipscore(images: np.ndarray, captions: np.ndarray, w: float = 2.5) -> np.ndarray:
    """clipscore.py's `get_clip_score` with numpy >= 1.21: numpy normalisation in the features' own dtype
    (float16 on CUDA), then w * max(cos, 0)."""
    images = images / np.sqrt(np.sum(images**2, axis=1, keepdims=True))
    captions = captions / np.sqrt(np.sum(captions**2, axis=1, keepdims=True))
    return w * np.clip(np.sum(images * captions, axis=1), 0, None)


class _TransformersCLIP:
    """The `torchmetrics` recipe: torchmetrics' own `clip_score` on a transformers CLIPModel and CLIPProcessor."""

    def __init__(self, model: str, revision: str, device, dtype: str, cache_dir: str | None):
        import torch

        self.model_id, self.revision, self.device, self.cache_dir = model, revision, device, cache_dir
        self.dtype = torch_dtype("fp32" if dtype == "auto" else dtype, device.type)
        folder = Path(model).expanduser()
        self.local = folder.is_dir()
        if self.local:
            files = weight_files([p.name for p in folder.iterdir()], lambda name: (folder / name).read_text())
            if not files or not (folder / "config.json").is_file():
                raise UsageError(
                    f"{OWNER}: model={model}: {folder} is not a saved transformers CLIP (config.json and model weights)"
                )
            # the files transformers loads: one sha256, or one per shard
            found = folder_sha256(folder, [f for f in files if not f.endswith(".index.json")], HashCache())
            self.weights_sha256 = next(iter(found.values())) if len(found) == 1 else found
        elif model.startswith(("/", ".")):
            raise UsageError(f"{OWNER}: model={model}: no such folder")
        else:
            self.weights_sha256 = None  # a hub id: identified by its revision
        self._torch = torch
        self._loaded = None

    def describe(self) -> dict[str, Any]:
        short = {"float32": "fp32", "float16": "fp16", "bfloat16": "bf16"}[str(self.dtype).removeprefix("torch.")]
        return {
            "torchmetrics": _version("torchmetrics"),
            "transformers": _version("transformers"),
            "model": str(Path(self.model_id).resolve()) if self.local else self.model_id,
            "revision": None if self.local else self.revision,
            "weights_sha256": self.weights_sha256,
            "quick_gelu": True,
            "precision": short if short == "fp32" else f"{short}-autocast",
        }

    def _load(self):
        if self._loaded is None:
            try:
                from torchmetrics.functional.multimodal import clip_score
                from transformers import CLIPModel, CLIPProcessor
            except ImportError as exc:
                raise missing_extra(exc.name or "torchmetrics", "genai") from None
            hub.quiet_third_party_logs()  # transformers sets up its own log handler on import
            kwargs = {} if self.local else {"revision": self.revision, "cache_dir": self.cache_dir}
            try:
                model = CLIPModel.from_pretrained(self.model_id, **kwargs).to(self.device).eval()
                processor = CLIPProcessor.from_pretrained(self.model_id, **kwargs)
            except (OSError, ValueError) as exc:
                raise UsageError(
                    f"{OWNER}: could not load transformers CLIP {self.model_id!r} "
                    f"({type(exc).__name__}); when offline, download it elsewhere and pass "
                    "--scorer-arg model=DIR"
                ) from None
            acts = {model.config.text_config.hidden_act, model.config.vision_config.hidden_act}
            if "openai" in self.model_id and acts != {"quick_gelu"}:
                raise UsageError(f"{OWNER}: {self.model_id} is configured with {sorted(acts)}, not OpenAI's quick_gelu")
            self._loaded = (clip_score, model, processor)
        return self._loaded

    def score(self, paths: list[str], texts: list[str]) -> list[float]:
        torch = self._torch
        clip_score, model, processor = self._load()
        autocast = torch.autocast(self.device.type, dtype=self.dtype) if self.dtype != torch.float32 else nullcontext()
        out = []
        for path, text in zip(paths, texts):
            # torchmetrics takes uint8 (C, H, W) tensors; one pair per call, since it averages a batch
            pixels = torch.from_numpy(np.asarray(_open_image(path).convert("RGB")).copy()).permute(2, 0, 1)
            with torch.no_grad(), autocast:
                value = clip_score(pixels.to(self.device), text, model_name_or_path=lambda: (model, processor))
            out.append(float(value))
        return out


def _version(package: str) -> str | None:
    try:
        return version(package)
    except PackageNotFoundError:
        return None
