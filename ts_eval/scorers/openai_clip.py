"""Build open_clip CLIPs the way the official numbers were made: OpenAI's weights run with QuickGELU.

Up to open_clip 2.26 (GenEval ran 2.20; GenAI-Bench's CLIPScore ran t2v-metrics on an open_clip of early
2024), `pretrained="openai"` went through `load_openai_model`: OpenAI's own checkpoint file, checked against
the sha256 in its URL, built from its state dict with QuickGELU, the activation OpenAI trained with. Since
2.29, open_clip builds the model from its config instead, with plain GELU, and only warns ("QuickGELU
mismatch"); every feature then drifts. Here OpenAI's weights always go through `load_openai_model`, and other
weights get the activation their own config or open_clip tag declares.

Where the weights come from, and which activation they get (`quick_gelu=auto`):
- the `openai` tag: OpenAI's file from its URL (open_clip checks its sha256), QuickGELU;
- another open_clip tag: the tag's `quick_gelu` (laion tags: GELU; `-quickgelu` models: QuickGELU);
- a weights file in OpenAI's format (a TorchScript archive, or a file whose sha256 is one OpenAI published):
  OpenAI weights, QuickGELU; any other file loads into the named model with its config's activation;
- `local-dir:` folders: their `open_clip_config.json`; `hf-hub:` models: the config on the hub.
`quick_gelu=true` forces QuickGELU on weights ts-eval cannot recognise (e.g. a re-saved copy of OpenAI's).
"""

from __future__ import annotations

import json
import pickle
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ts_eval.errors import UsageError, missing_extra
from ts_eval.weights import HashCache

OPENAI = "openai"
RANDOM = "random"  # no weights: speed tests only, built as OpenAI's model would be (QuickGELU)
SCHEMAS = ("hf-hub:", "local-dir:")
QUICK_GELU = ("auto", "true", "false")
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pth", ".pt")


@dataclass(frozen=True)
class CLIPSource:
    """Which CLIP to build and from which weights, decided without loading anything."""

    model: str  # open_clip model name, or `local-dir:`/`hf-hub:` with a folder or hub id
    pretrained: str | None  # open_clip tag, absolute file path, `random`; None with a schema
    openai_format: bool  # loaded by open_clip's `load_openai_model` (OpenAI's own checkpoints)
    quick_gelu: bool | None  # None: as an `hf-hub:` config says
    weights_sha256: str | None  # the weights' content (OpenAI's URLs carry it); None when unknown

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "pretrained": self.pretrained,
            "weights_sha256": self.weights_sha256,
            "quick_gelu": self.quick_gelu,
        }


@dataclass
class LoadedCLIP:
    model: Any
    preprocess: Any  # PIL image -> normalised tensor, the transform the weights were published with
    tokenizer: Any


def import_open_clip(extra: str = "genai"):
    try:
        import open_clip
    except ImportError:
        raise missing_extra("open_clip_torch", extra) from None
    return open_clip


def openai_release_sha256() -> dict[str, str]:
    """sha256 -> model name of each checkpoint OpenAI published (open_clip keeps its URL, which holds the sha256)."""
    open_clip = import_open_clip()
    found = {}
    for name, tag in open_clip.list_pretrained():
        url = open_clip.get_pretrained_url(name, tag) if tag == OPENAI else ""
        if "openaipublic" in url:
            found[url.split("/")[-2]] = name
    return found


def check_dtype(dtype: str, owner: str) -> str:
    """`--scorer-arg dtype=`: auto (the official pipeline's) or one of fp32, fp16, bf16."""
    if dtype not in ("auto", "fp32", "fp16", "bf16"):
        raise UsageError(f"{owner}: dtype={dtype!r}; choose one of: auto (official), fp32, fp16, bf16")
    return dtype


def is_torchscript(path: str) -> bool:
    """OpenAI released its CLIPs as TorchScript archives: a zip holding `constants.pkl` and `code/`."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return any(name.endswith("/constants.pkl") for name in archive.namelist())


def resolve_clip(model: str, pretrained: str | None, quick_gelu: str = "auto", *, owner: str) -> CLIPSource:
    """Check a model/weights choice and decide how it loads; one-line UsageErrors, no download."""
    open_clip = import_open_clip()
    if quick_gelu not in QUICK_GELU:
        raise UsageError(f"{owner}: quick_gelu={quick_gelu!r}; choose one of: {', '.join(QUICK_GELU)}")
    force = {"auto": None, "true": True, "false": False}[quick_gelu]
    if model.startswith(SCHEMAS):
        if pretrained:
            raise UsageError(f"{owner}: model={model} brings its own weights; drop pretrained={pretrained}")
        if model.startswith("hf-hub:"):
            return CLIPSource(model, None, False, force, None)
        folder = Path(model.partition(":")[2]).expanduser().resolve()
        config = folder / "open_clip_config.json"
        if not config.is_file():
            raise UsageError(f"{owner}: model={model}: {folder} has no open_clip_config.json")
        # open_clip would quietly build a random model from a folder without weights
        weights = sorted(p for p in folder.iterdir() if p.suffix in WEIGHT_SUFFIXES)
        if not weights:
            raise UsageError(f"{owner}: model={model}: {folder} has no weights (*.safetensors, *.bin, *.pth)")
        declared = bool(json.loads(config.read_text())["model_cfg"].get("quick_gelu", False))
        return CLIPSource(
            f"local-dir:{folder}", None, False, declared if force is None else force, HashCache().sha256(weights[0])
        )
    name = model.replace("/", "-")  # open_clip accepts "ViT-L/14" for "ViT-L-14"
    if name not in open_clip.list_models():
        raise UsageError(
            f"{owner}: unknown open_clip model {model!r}; use a name from open_clip.list_models() "
            "(e.g. ViT-L-14, ViT-B-32), hf-hub:ORG/REPO or local-dir:DIR"
        )
    declared = bool((open_clip.get_model_config(name) or {}).get("quick_gelu", False))  # listed: has a config
    if pretrained == RANDOM:
        return CLIPSource(name, RANDOM, False, force is not False, None)
    tag = open_clip.get_pretrained_cfg(name, pretrained) if pretrained else {}
    if tag:
        if pretrained == OPENAI:
            _refuse_gelu(force, owner, "OpenAI's weights")
            url = open_clip.get_pretrained_url(name, OPENAI)
            return CLIPSource(name, OPENAI, True, True, url.split("/")[-2] if "openaipublic" in url else None)
        tagged = bool(tag.get("quick_gelu", False)) or declared
        return CLIPSource(name, pretrained, False, tagged if force is None else force, None)
    path = Path(pretrained or "").expanduser()
    if not path.is_file():
        tags = ", ".join(open_clip.list_pretrained_tags_by_model(name)) or "none"
        raise UsageError(f"{owner}: pretrained={pretrained!r} is neither a file nor a tag of {name} (tags: {tags})")
    digest = HashCache().sha256(path)  # hashed once per (path, size, mtime)
    if is_torchscript(str(path)) or digest in openai_release_sha256():
        _refuse_gelu(force, owner, f"{path} (OpenAI's weights)")
        return CLIPSource(name, str(path.resolve()), True, True, digest)
    return CLIPSource(name, str(path.resolve()), False, declared if force is None else force, digest)


def _refuse_gelu(force: bool | None, owner: str, what: str) -> None:
    if force is False:
        raise UsageError(
            f"{owner}: quick_gelu=false with {what}; OpenAI trained them with QuickGELU and they load only with it"
        )


def load_clip(
    source: CLIPSource, *, device, precision: str = "fp32", cache_dir: str | None = None, owner: str
) -> LoadedCLIP:
    """Build the CLIP `source` names. `precision` is open_clip's: `fp32` (autocast, if any, is the caller's),
    or `fp16`/`bf16` for a half-precision model like the one OpenAI's `clip.load` gives on CUDA."""
    open_clip = import_open_clip()
    if source.openai_format:
        path = source.pretrained
        assert path is not None  # an OpenAI-format source always names its weights
        if path == OPENAI:  # OpenAI's own file from its URL, as open_clip <= 2.26 fetched it
            tag = open_clip.get_pretrained_cfg(source.model, OPENAI)
            path = open_clip.download_pretrained(tag, prefer_hf_hub=False, cache_dir=cache_dir)
        try:
            with warnings.catch_warnings():  # torch.jit.load's deprecation notice, about OpenAI's file format
                warnings.simplefilter("ignore", FutureWarning)
                # the architecture comes from the state dict, with QuickGELU, as in OpenAI's own loader
                model = open_clip.load_openai_model(path, precision=precision, device=device, cache_dir=cache_dir)
        except (RuntimeError, KeyError, pickle.UnpicklingError) as exc:
            raise UsageError(
                f"{owner}: {path} is not a CLIP checkpoint in OpenAI's format "
                f"({type(exc).__name__}: {str(exc).strip()[:120]})"
            ) from None
        # open_clip's visual towers set image_size to an int or an (h, w) pair; its annotation is looser
        preprocess = open_clip.image_transform(
            model.visual.image_size,  # pyright: ignore[reportArgumentType]
            is_train=False,
        )
    else:
        pretrained = None if source.pretrained == RANDOM else source.pretrained
        model, _, preprocess = open_clip.create_model_and_transforms(
            source.model,
            pretrained=pretrained,
            device=device,
            precision=precision,
            cache_dir=cache_dir,
            force_quick_gelu=bool(source.quick_gelu),
        )
    built = uses_quick_gelu(model)
    if source.quick_gelu is not None and built != source.quick_gelu:
        raise RuntimeError(f"{owner}: built {source.model} with quick_gelu={built}, expected {source.quick_gelu}")
    return LoadedCLIP(model.eval(), preprocess, open_clip.get_tokenizer(source.model, cache_dir=cache_dir))


def activations(model) -> list[str]:
    """The activation class of each transformer block's MLP (open_clip's `mlp.gelu`), block by block."""
    return [
        type(module.mlp.gelu).__name__
        for module in model.modules()
        if hasattr(module, "mlp") and hasattr(module.mlp, "gelu")
    ]


def uses_quick_gelu(model) -> bool:
    found = set(activations(model))
    if len(found) != 1:
        raise RuntimeError(f"CLIP with mixed or no MLP activations: {sorted(found)}")
    return found == {"QuickGELU"}


def weights_file_hint(model: str) -> str:
    """Where OpenAI's checkpoint of `model` lives, for error messages."""
    open_clip = import_open_clip()
    return open_clip.get_pretrained_url(model.replace("/", "-"), OPENAI) or "(OpenAI released no such model)"
