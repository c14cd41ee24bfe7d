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
config.json names) are found before torch is imported (clip_t5_parts.py), and `describe()` records each
part's files by sha256, so the official weights are recognised by content whatever path they come from.
"""

from __future__ import annotations

import inspect
import os
from contextlib import nullcontext
from dataclasses import dataclass, replace
from importlib.metadata import version
from typing import Any

from ts_eval import hub
from ts_eval.errors import UsageError
from ts_eval.options import option, parse_options
from ts_eval.records import Sample, ScoredImage, ScoreRequest
from ts_eval.scorers.clip_t5_parts import OFFICIAL_PARTS, Part, find_part, vision_tower_of, with_vision_tower
from ts_eval.scorers.t2v_import import clip_t5_module
from ts_eval.weights import HashCache

OWNER = "scorer 'vqascore'"
DTYPES = ("bf16", "fp32")
TINY_RANDOM = "tiny-random"  # random weights: exercises the pipeline, its scores mean nothing


@dataclass(frozen=True)
class VQAScoreOptions:
    """VQAScore through t2v-metrics' CLIP-T5: P("Yes" | image, question); GenAI-Bench's official scorer."""

    model: str = option("clip-flant5-xxl", f"a CLIP-T5 name from t2v-metrics, or {TINY_RANDOM} (random weights)")
    model_path: str = option("", "local folder (or Hub id) of the CLIP-T5 weights, instead of the model's own")
    tokenizer_path: str = option("", "local folder (or Hub id) of its T5 tokenizer")
    vision_tower_path: str = option("", "local folder (or Hub id) of the CLIP vision tower, instead of config.json's")
    question_template: str = option("", "question with {} for the prompt ('' = t2v-metrics' official one)")
    answer_template: str = option("", "the answer scored ('' = t2v-metrics' official 'Yes')")
    dtype: str = option("bf16", "bf16 (official) or fp32")
    cache_dir: str = option("", "Hugging Face cache for downloads ('' = the default one)")


# Size of each official model (from t2v-metrics' authors), for the message shown when weights are missing.
SIZES = {
    "clip-flant5-xxl": "11B parameters, about 22 GB in bf16",
    "clip-flant5-xl": "3B parameters, about 7 GB in bf16",
}


class VQAScorer:
    name = "vqascore"
    metrics = ("vqascore",)
    Options = VQAScoreOptions

    def __init__(self, args: dict[str, str], *, task=None, device: str = "auto", batch_size: int = 8):
        opts = parse_options(args, VQAScoreOptions, OWNER)
        self.batch_size = batch_size
        if opts.dtype not in DTYPES:
            raise UsageError(
                f"{OWNER}: dtype={opts.dtype} is not supported; t2v-metrics runs CLIP-T5 in bf16 "
                f"(the official setting) and fp32 is offered for comparison: use dtype=bf16 or fp32"
            )
        self.dtype = opts.dtype
        self.model = opts.model
        self._cache_dir = os.path.expanduser(opts.cache_dir) or None
        self._hashes = HashCache()
        if self.model == TINY_RANDOM:
            # Offline smoke runs: a tiny random CLIP-T5 built from a config, scored through the real code path.
            from ts_eval.cache import default_cache_dir
            from ts_eval.scorers.tiny_models import build_tiny_clip_t5

            built = build_tiny_clip_t5(default_cache_dir() / "tiny-models" / "clip-t5").args
            opts = replace(opts, **{k: getattr(opts, k) or v for k, v in built.items()})
        # The parts are found before torch and t2v-metrics are imported (seconds): offline, the one-line
        # answer comes at once.
        repos = OFFICIAL_PARTS.get("clip-flant5-xxl" if self.model == TINY_RANDOM else self.model, {})
        self.parts: dict[str, Part] = {}
        self.options = opts  # as run (tiny-random: with its built parts)
        if opts.model_path or repos:
            self.parts["model"] = self._part("model", opts.model_path or repos["model"])
        if opts.tokenizer_path or repos:
            self.parts["tokenizer"] = self._part("tokenizer", opts.tokenizer_path or repos["tokenizer"])

        from ts_eval.devices import torch_device

        self.device = torch_device(device)
        self.autocast = self.device.type if self.dtype == "bf16" else None  # which device's bf16 autocast
        clip_t5 = clip_t5_module()  # imports t2v-metrics' CLIP-T5, or says in one line how to install it
        models = clip_t5.CLIP_T5_MODELS
        name = "clip-flant5-xxl" if self.model == TINY_RANDOM else self.model
        if name not in models:
            raise UsageError(
                f"{OWNER}: unknown model {self.model!r}; choose one of: {', '.join([*models, TINY_RANDOM])}"
            )
        entry = self._entry = models[name]
        if "model" not in self.parts:  # a CLIP-T5 name ts-eval does not know
            self.parts["model"] = self._part("model", entry["model"]["path"])
        if "tokenizer" not in self.parts:
            self.parts["tokenizer"] = self._part("tokenizer", entry["tokenizer"]["path"])
        tower = opts.vision_tower_path or vision_tower_of(self.parts["model"].folder, OWNER)
        self.parts["vision_tower"] = self._part("vision_tower", tower)
        self.conversation = entry["model"]["conversation"]
        self.image_aspect_ratio = entry["model"].get("image_aspect_ratio", "pad")
        self.question_template = opts.question_template or clip_t5.default_question_template
        self.answer_template = opts.answer_template or clip_t5.default_answer_template
        _check_template("question_template", self.question_template, needs_prompt=True)
        _check_template("answer_template", self.answer_template, needs_prompt=False)
        self._wrapper = None  # loaded on the first batch: a fully cached run never loads the 11B model

    def describe(self) -> dict[str, Any]:
        described = {
            "name": self.name,
            "version": "2",
            "metric": self.metrics[0],
            "t2v_metrics": version("t2v-metrics"),
            "model": self.model,
            "weights": {k: part.describe() for k, part in self.parts.items()},
            "conversation": self.conversation,
            "image_aspect_ratio": self.image_aspect_ratio,
            "question_template": self.question_template,
            "answer_template": self.answer_template,
            "dtype": self.dtype,
            "autocast": self.autocast,
            "device": self.device.type,
        }
        if self.model == TINY_RANDOM:
            described["random_weights"] = True  # every table then says its numbers are meaningless
        return described

    def score(self, requests: list[ScoreRequest]) -> list[ScoredImage]:
        values: list[float] = []
        for start in range(0, len(requests), self.batch_size):
            values.extend(self._score_pairs(requests[start : start + self.batch_size]))
        metric = self.metrics[0]
        return [
            ScoredImage([Sample(r.prompt.prompt_id, r.sample_index, metric, v, image_sha256=r.image_sha256)])
            for r, v in zip(requests, values)
        ]

    def _part(self, kind: str, source: str) -> Part:
        size = SIZES.get(self.model, "") if kind == "model" else ""
        what = f"{OWNER} ({self.model} {kind.replace('_', ' ')}{', ' + size if size else ''})"
        return find_part(kind, source, owner=OWNER, what=what, hashes=self._hashes, cache_dir=self._cache_dir)

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
            autocast = (
                nullcontext() if self.device.type == "cuda" else torch.autocast(self.device.type, dtype=torch.bfloat16)
            )
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
        from ts_eval.cache import default_cache_dir

        model_folder = with_vision_tower(
            self.parts["model"].folder, self.parts["vision_tower"].folder, default_cache_dir() / "clip-t5-folders"
        )
        key = f"{self.model}@ts-eval:{model_folder}"
        clip_t5.CLIP_T5_MODELS[key] = {
            "tokenizer": {**self._entry["tokenizer"], "path": str(self.parts["tokenizer"].folder)},
            "model": {**self._entry["model"], "path": str(model_folder)},
        }
        try:
            wrapper = clip_t5.CLIPT5Model(key, device=str(self.device), cache_dir=str(model_folder))
        except (OSError, ValueError, KeyError) as exc:
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise UsageError(
                f"{OWNER}: could not load {self.model} from {self.parts['model'].folder} (tokenizer "
                f"{self.parts['tokenizer'].folder}, vision tower {self.parts['vision_tower'].folder}): "
                f"{reason}"
            ) from None
        finally:
            del clip_t5.CLIP_T5_MODELS[key]
        if self.dtype == "fp32":
            wrapper.model.float()  # t2v-metrics casts to bf16 at load
        self._wrapper = wrapper
        return wrapper


def _check_template(key: str, template: str, *, needs_prompt: bool) -> None:
    try:
        template.format("prompt")
    except (IndexError, KeyError, ValueError):
        raise UsageError(
            f"{OWNER}: {key}={template!r} is not a format string with at most one '{{}}' "
            "(write other braces as '{{' and '}}')"
        ) from None
    if needs_prompt and "{}" not in template:
        raise UsageError(f"{OWNER}: {key}={template!r} must contain '{{}}' where the prompt goes")
