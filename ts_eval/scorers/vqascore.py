"""VQAScore (Lin et al., 2024) through t2v-metrics' CLIP-T5: P("Yes" | image, "Does this figure show ...?").

Defaults are the official GenAI-Bench settings: model clip-flant5-xxl, t2v-metrics' own question and
answer templates, and t2v-metrics' own precision. Each batch of (image, prompt) pairs is one call of the
CLIP-T5 wrapper's `forward`, which scores the pairs alone (t2v-metrics' `VQAScore.__call__` would score every
image against every text).

Precision, as t2v-metrics 3.0 runs it (`mm_utils.load_pretrained_model`, `clip_t5_model.CLIPT5Model.forward`):
the whole model (T5, projector, CLIP tower) is cast to bf16 at load (`model.to(device, dtype=torch.bfloat16)`)
and `forward` runs under `torch.autocast('cuda', dtype=torch.bfloat16)`. That is the official `dtype=bf16`.
On the CPU that autocast is inert and t2v-metrics' own call fails on mixed float/bf16 operands, so there
ts-eval keeps the bf16 weights and wraps the call in the CPU's bf16 autocast: the same setting, run on
another device. `dtype=fp32` (weights cast back to float32, no autocast anywhere) is unofficial.

The three parts CLIP-T5 loads (the CLIP-T5 weights, the T5 tokenizer, and the CLIP vision tower its
config.json names) are found before any model is built: in the Hugging Face cache, else downloaded if the
Hub answers, else one line naming the `hf download` command and the flag. `describe()` records each part's
files by sha256, so the official weights are recognised by content whatever path they come from.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import re
from contextlib import nullcontext
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any

from ts_eval import hub
from ts_eval.errors import UsageError
from ts_eval.options import parse_options
from ts_eval.records import Sample, ScoredImage, ScoreRequest
from ts_eval.scorers.t2v_import import clip_t5_module
from ts_eval.weights import WEIGHT_FILES, HashCache, folder_sha256, weight_files

OWNER = "scorer 'vqascore'"
OPTIONS: dict[str, Any] = {
    "model": "clip-flant5-xxl",   # a CLIP-T5 name from t2v-metrics, or tiny-random
    "model_path": "",             # local folder (or hub id) of the CLIP-T5 weights, instead of the model's own
    "tokenizer_path": "",         # local folder (or hub id) of its T5 tokenizer
    "vision_tower_path": "",      # local folder (or hub id) of the CLIP vision tower, instead of config.json's
    "question_template": "",      # empty: t2v-metrics' official template
    "answer_template": "",        # empty: t2v-metrics' official answer
    "dtype": "bf16",              # bf16 (official, see the module docstring) or fp32
    "cache_dir": "",              # Hugging Face cache for downloads; empty: the default one
}
DTYPES = ("bf16", "fp32")
# t2v-metrics 3.0's CLIP_T5_MODELS repos, known here so the parts are found before torch is imported (a
# test checks they equal t2v-metrics' table).
OFFICIAL_PARTS = {
    "clip-flant5-xxl": {"model": "zhiqiulin/clip-flant5-xxl", "tokenizer": "google/flan-t5-xxl"},
    "clip-flant5-xl": {"model": "zhiqiulin/clip-flant5-xl", "tokenizer": "google/flan-t5-xl"},
}
# Size of each official model (from t2v-metrics' authors), for the message shown when weights are missing.
SIZES = {"clip-flant5-xxl": "11B parameters, about 22 GB in bf16",
         "clip-flant5-xl": "3B parameters, about 7 GB in bf16"}
# Hub revisions fetched for the official parts. t2v-metrics loads `main` of each; the two pinned commits are
# the ones public Hugging Face caches of these repos hold. zhiqiulin/clip-flant5-xxl stays at `main`: no
# public source gives its full commit; describe() records the commit actually used.
REVISIONS = {
    "google/flan-t5-xxl": "ae7c9136adc7555eeccc78cdd960dfd60fb346ce",
    "openai/clip-vit-large-patch14-336": "ce19dc912ca5cd21c8a653c79e251e808ccabcd1",
}
# The files of those two repos that CLIP-T5 loads, for the offline `hf download` command (without a list
# it would fetch every weight format they hold, about 90 GB for flan-t5-xxl). The CLIP-T5 repo is fetched whole.
OFFLINE_FILES = {
    "google/flan-t5-xxl": ("spiece.model", "tokenizer_config.json", "special_tokens_map.json", "config.json"),
    "openai/clip-vit-large-patch14-336": ("config.json", "preprocessor_config.json", "pytorch_model.bin"),
}
# What each part's loader reads: AutoTokenizer(use_fast=False) for the T5 tokenizer; CLIPImageProcessor and
# CLIPVisionModel for the tower; the CLIP-T5 class for the model (plus its weight files, see weights.py).
PART_FILES = {
    "model": ("config.json", "generation_config.json"),
    "tokenizer": ("tokenizer_config.json", "special_tokens_map.json", "added_tokens.json", "spiece.model",
                  "config.json"),
    "vision_tower": ("config.json", "preprocessor_config.json"),
}
PART_OPTIONS = {"model": "model_path", "tokenizer": "tokenizer_path", "vision_tower": "vision_tower_path"}
TINY_RANDOM = "tiny-random"  # random weights: exercises the pipeline, its scores mean nothing
_HF_SNAPSHOT = re.compile(r"(models|datasets)--(?P<org>[^/]+?)--(?P<name>[^/]+)/snapshots/(?P<commit>[0-9a-f]{40})$")


@dataclass
class Part:
    """One loaded part: the local folder handed to the loader, its Hub identity if any, its files' sha256."""

    folder: Path
    repo: str | None = None
    revision: str | None = None
    sha256: dict[str, str] = field(default_factory=dict)

    def describe(self) -> dict[str, Any]:
        return {"repo": self.repo, "revision": self.revision, "sha256": dict(sorted(self.sha256.items()))}


class VQAScorer:
    name = "vqascore"
    metrics = ("vqascore",)

    def __init__(self, args: dict[str, str], *, task=None, device: str = "auto", batch_size: int = 8):
        opts = parse_options(args, OPTIONS, OWNER)
        self.batch_size = batch_size
        if opts["dtype"] not in DTYPES:
            raise UsageError(f"{OWNER}: dtype={opts['dtype']} is not supported; t2v-metrics runs CLIP-T5 in bf16 "
                             f"(the official setting) and fp32 is offered for comparison: use dtype=bf16 or fp32")
        self.dtype = opts["dtype"]
        self.model = opts["model"]
        self._cache_dir = os.path.expanduser(opts["cache_dir"]) or None
        self._hashes = HashCache()
        if self.model == TINY_RANDOM:
            # Offline smoke runs: a tiny random CLIP-T5 built from a config, scored through the real code path.
            from ts_eval.cache import default_cache_dir
            from ts_eval.scorers.tiny_models import build_tiny_clip_t5

            built = build_tiny_clip_t5(default_cache_dir() / "tiny-models" / "clip-t5")
            opts.update({k: opts[k] or v for k, v in built.items()})
        # The parts are found before torch and t2v-metrics are imported (seconds): offline, the one-line
        # answer comes at once.
        repos = OFFICIAL_PARTS.get("clip-flant5-xxl" if self.model == TINY_RANDOM else self.model, {})
        size = SIZES.get(self.model, "")
        self.parts: dict[str, Part] = {}
        if opts["model_path"] or repos:
            self.parts["model"] = self._part("model", opts["model_path"] or repos["model"], size)
        if opts["tokenizer_path"] or repos:
            self.parts["tokenizer"] = self._part("tokenizer", opts["tokenizer_path"] or repos["tokenizer"])

        from ts_eval.devices import torch_device

        self.device = torch_device(device)
        self.autocast = self.device.type if self.dtype == "bf16" else None  # which device's bf16 autocast
        clip_t5 = clip_t5_module()  # imports t2v-metrics' CLIP-T5, or says in one line how to install it
        models = clip_t5.CLIP_T5_MODELS
        name = "clip-flant5-xxl" if self.model == TINY_RANDOM else self.model
        if name not in models:
            raise UsageError(f"{OWNER}: unknown model {self.model!r}; choose one of: {', '.join([*models, TINY_RANDOM])}")
        entry = self._entry = models[name]
        if "model" not in self.parts:  # a CLIP-T5 name ts-eval does not know
            self.parts["model"] = self._part("model", entry["model"]["path"], size)
        if "tokenizer" not in self.parts:
            self.parts["tokenizer"] = self._part("tokenizer", entry["tokenizer"]["path"])
        tower = opts["vision_tower_path"] or _vision_tower_of(self.parts["model"].folder)
        self.parts["vision_tower"] = self._part("vision_tower", tower)
        self.conversation = entry["model"]["conversation"]
        self.image_aspect_ratio = entry["model"].get("image_aspect_ratio", "pad")
        self.question_template = opts["question_template"] or clip_t5.default_question_template
        self.answer_template = opts["answer_template"] or clip_t5.default_answer_template
        _check_template("question_template", self.question_template, needs_prompt=True)
        _check_template("answer_template", self.answer_template, needs_prompt=False)
        self._wrapper = None  # loaded on the first batch: a fully cached run never loads the 11B model

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "version": "2", "metric": self.metrics[0], "t2v_metrics": version("t2v-metrics"),
                "model": self.model, "weights": {k: part.describe() for k, part in self.parts.items()},
                "conversation": self.conversation, "image_aspect_ratio": self.image_aspect_ratio,
                "question_template": self.question_template, "answer_template": self.answer_template,
                "dtype": self.dtype, "autocast": self.autocast, "device": self.device.type}

    def score(self, requests: list[ScoreRequest]) -> list[ScoredImage]:
        values: list[float] = []
        for start in range(0, len(requests), self.batch_size):
            values.extend(self._score_pairs(requests[start:start + self.batch_size]))
        metric = self.metrics[0]
        return [ScoredImage([Sample(r.prompt.prompt_id, r.sample_index, metric, v, image_sha256=r.image_sha256)])
                for r, v in zip(requests, values)]

    # -- finding the parts ---------------------------------------------------------------------------

    def _part(self, kind: str, source: str, size: str = "") -> Part:
        """A local folder as it is, or a Hub id fetched into (or found in) the Hugging Face cache."""
        source = os.path.expanduser(source)
        if os.path.isdir(source):
            folder = Path(source).resolve()
            names = {p.name for p in folder.iterdir() if p.is_file()}
            files = [n for n in PART_FILES[kind] if n in names]
            files += weight_files(names, lambda n: (folder / n).read_text()) if kind != "tokenizer" else []
            if not _complete(kind, names):
                raise UsageError(f"{OWNER}: {folder} is not a {kind.replace('_', ' ')} folder (it lacks "
                                 f"{'spiece.model' if kind == 'tokenizer' else 'config.json or the weights'}); point "
                                 f"--scorer-arg {PART_OPTIONS[kind]} at a Hugging Face folder holding them")
            match = _HF_SNAPSHOT.search(folder.as_posix())
            repo = f"{match['org']}/{match['name']}" if match else None
            return Part(folder, repo, match["commit"] if match else None,
                        folder_sha256(folder, files, self._hashes))
        if source.startswith(("/", ".", "~")) or source.count("/") != 1:
            raise UsageError(f"{OWNER}: {kind.replace('_', ' ')} {source} does not exist; give a local folder or "
                             "a Hugging Face id (org/name)")
        repo = hub.HubRepo(source, REVISIONS.get(source, "main"), flag=f"--scorer-arg {PART_OPTIONS[kind]}=DIR")
        what = f"{OWNER} ({self.model} {kind.replace('_', ' ')}{', ' + size if size else ''})"
        listed = set(hub.list_files(repo, self._cache_dir, what, enough=lambda names: _complete(kind, names),
                                    known=OFFLINE_FILES.get(source, ())))
        if not _complete(kind, listed):
            raise UsageError(f"{OWNER}: {repo.repo} (revision {repo.revision}) is not a {kind.replace('_', ' ')} "
                             f"repository: it lacks {'spiece.model' if kind == 'tokenizer' else 'config.json or weights'}")
        wanted = [n for n in PART_FILES[kind] if n in listed]
        if kind != "tokenizer":  # an index names its shards: fetch it first
            wanted += weight_files(listed, lambda n: hub.fetch(repo, [n], cache_dir=self._cache_dir,
                                                               what=what)[n].read_text())
        paths = hub.fetch(repo, wanted, cache_dir=self._cache_dir, what=what)
        folder = next(iter(paths.values())).parent
        return Part(folder, repo.repo, folder.name, {n: self._hashes.sha256(p) for n, p in paths.items()})

    # -- scoring -------------------------------------------------------------------------------------

    def _score_pairs(self, requests: list[ScoreRequest]) -> list[float]:
        import torch

        wrapper = self._load()
        images = [r.image_path for r in requests]
        texts = [r.prompt.prompt for r in requests]
        templates = {"question_template": self.question_template, "answer_template": self.answer_template}
        if self.dtype == "fp32":
            # t2v-metrics' own CUDA bf16 autocast decorator would cast the matmuls back to bf16: call the
            # undecorated forward, gradient-free.
            with torch.no_grad():
                probabilities = inspect.unwrap(type(wrapper).forward)(wrapper, images, texts, **templates)
        else:
            # On CUDA, forward's own autocast is the official one; elsewhere it is inert, so the same bf16
            # autocast runs on this device.
            autocast = (nullcontext() if self.device.type == "cuda"
                        else torch.autocast(self.device.type, dtype=torch.bfloat16))
            with autocast:
                probabilities = wrapper.forward(images, texts, **templates)
        return [float(p) for p in probabilities.float().cpu()]

    def _load(self):
        if self._wrapper is not None:
            return self._wrapper
        clip_t5 = clip_t5_module()
        hub.quiet_third_party_logs()
        # A private entry carries the resolved local folders, so t2v-metrics' official entries stay untouched
        # and nothing below reaches the network.
        model_folder = _with_vision_tower(self.parts["model"].folder, self.parts["vision_tower"].folder)
        key = f"{self.model}@ts-eval:{model_folder}"
        clip_t5.CLIP_T5_MODELS[key] = {
            "tokenizer": {**self._entry["tokenizer"], "path": str(self.parts["tokenizer"].folder)},
            "model": {**self._entry["model"], "path": str(model_folder)}}
        try:
            wrapper = clip_t5.CLIPT5Model(key, device=str(self.device), cache_dir=str(model_folder))
        except (OSError, ValueError, KeyError) as exc:
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise UsageError(f"{OWNER}: could not load {self.model} from {self.parts['model'].folder} (tokenizer "
                             f"{self.parts['tokenizer'].folder}, vision tower {self.parts['vision_tower'].folder}): "
                             f"{reason}") from None
        finally:
            del clip_t5.CLIP_T5_MODELS[key]
        if self.dtype == "fp32":
            wrapper.model.float()  # t2v-metrics casts to bf16 at load
        self._wrapper = wrapper
        return wrapper


def _complete(kind: str, names: set[str]) -> bool:
    """Does a folder (or a cached snapshot) hold what the part's loader needs?"""
    if kind == "tokenizer":
        return "spiece.model" in names
    return "config.json" in names and any(n in names for n in WEIGHT_FILES)


def _vision_tower_of(model_folder: Path) -> str:
    """The CLIP vision tower a CLIP-T5 config.json names (`mm_vision_tower`), as t2v-metrics reads it."""
    try:
        config = json.loads((model_folder / "config.json").read_text())
        return str(config["mm_vision_tower"])
    except (OSError, ValueError, KeyError, TypeError):
        raise UsageError(f"{OWNER}: {model_folder}/config.json names no mm_vision_tower; is it a CLIP-T5 model?") from None


def _with_vision_tower(model_folder: Path, tower: Path) -> Path:
    """The model folder, or a copy of it made of links whose config.json names the local tower folder.

    t2v-metrics builds the tower from config.json's `mm_vision_tower`; a Hub id there would make transformers
    look it up online. Every other file is the original (a symbolic link), so the weights are the same bytes.
    """
    config = json.loads((model_folder / "config.json").read_text())
    if os.path.realpath(str(config.get("mm_vision_tower"))) == str(tower):
        return model_folder
    from ts_eval.cache import default_cache_dir

    config["mm_vision_tower"] = str(tower)
    text = json.dumps(config, indent=2, sort_keys=True)
    name = hashlib.sha256(f"{model_folder}\x1f{text}".encode()).hexdigest()[:16]
    overlay = default_cache_dir() / "clip-t5-folders" / name
    if not (overlay / "config.json").is_file():
        partial = overlay.with_name(name + f".partial-{os.getpid()}")
        partial.mkdir(parents=True, exist_ok=True)
        for item in model_folder.iterdir():
            if item.name != "config.json":
                (partial / item.name).symlink_to(item.resolve())
        (partial / "config.json").write_text(text)
        try:
            partial.rename(overlay)
        except OSError:  # another process made it first
            pass
    return overlay


def _check_template(key: str, template: str, *, needs_prompt: bool) -> None:
    try:
        template.format("prompt")
    except (IndexError, KeyError, ValueError):
        raise UsageError(f"{OWNER}: {key}={template!r} is not a format string with at most one '{{}}' "
                         "(write other braces as '{{' and '}}')") from None
    if needs_prompt and "{}" not in template:
        raise UsageError(f"{OWNER}: {key}={template!r} must contain '{{}}' where the prompt goes")
