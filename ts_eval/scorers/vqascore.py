"""VQAScore (Lin et al., 2024) through t2v-metrics' CLIP-T5: P("Yes" | image, "Does this figure show ...?").

Defaults are the official GenAI-Bench settings: model clip-flant5-xxl, t2v-metrics' own question and
answer templates. Each batch of (image, prompt) pairs is one call of the CLIP-T5 wrapper's `forward`, which
scores the pairs alone (t2v-metrics' `VQAScore.__call__` would score every image against every text).
"""

from __future__ import annotations

import os
from contextlib import nullcontext
from importlib.metadata import version
from typing import Any

from ts_eval.devices import torch_device, torch_dtype
from ts_eval.errors import UsageError
from ts_eval.options import parse_options
from ts_eval.records import Sample, ScoredImage, ScoreRequest
from ts_eval.scorers import local_weights
from ts_eval.scorers.t2v_import import clip_t5_models

OWNER = "scorer 'vqascore'"
OPTIONS: dict[str, Any] = {
    "model": "clip-flant5-xxl",   # a CLIP-T5 name from t2v-metrics
    "model_path": "",             # local folder (or hub id) of the CLIP-T5 weights, instead of the model's own
    "tokenizer_path": "",         # local folder (or hub id) of its T5 tokenizer
    "question_template": "",      # empty: t2v-metrics' official template
    "answer_template": "",        # empty: t2v-metrics' official answer
    "cache_dir": "",              # where t2v-metrics downloads the CLIP-T5 weights; empty: the Hugging Face cache
}
# Size of each official model (GPU memory to load it in bf16, from t2v-metrics' authors), for the message
# shown when weights are missing.
SIZES = {"clip-flant5-xxl": "11B parameters, about 22 GB in bf16",
         "clip-flant5-xl": "3B parameters, about 7 GB in bf16"}


TINY_RANDOM = "tiny-random"  # random weights: exercises the pipeline, its scores mean nothing


class VQAScorer:
    name = "vqascore"
    metrics = ("vqascore",)

    def __init__(self, args: dict[str, str], *, task=None, device: str = "auto", dtype: str = "auto",
                 batch_size: int = 8):
        opts = parse_options(args, OPTIONS, OWNER)
        self.batch_size = batch_size
        self.device = torch_device(device)
        self.precision = _precision(self.device.type, dtype)
        models = clip_t5_models()  # imports t2v-metrics, or says in one line how to install it
        from t2v_metrics.models.vqascore_models import clip_t5_model

        if opts["model"] == TINY_RANDOM:
            # Offline smoke runs: a tiny random CLIP-T5 built from a config, scored through the real code path.
            from ts_eval.cache import default_cache_dir
            from ts_eval.scorers.tiny_models import build_tiny_clip_t5

            opts.update(build_tiny_clip_t5(default_cache_dir() / "tiny-models" / "clip-t5"))
            entry = models["clip-flant5-xxl"]
        elif opts["model"] not in models:
            raise UsageError(f"{OWNER}: unknown model {opts['model']!r}; choose one of: "
                             f"{', '.join([*models, TINY_RANDOM])}")
        else:
            entry = models[opts["model"]]
        self.model = opts["model"]
        for key in ("model_path", "tokenizer_path"):
            opts[key] = os.path.expanduser(opts[key])
            if opts[key].startswith(("/", ".")) and not local_weights.is_local(opts[key]):
                raise UsageError(f"{OWNER}: {key}={opts[key]} does not exist; give a local folder or a Hugging Face id")
            if local_weights.is_local(opts[key]):
                opts[key] = os.path.abspath(opts[key])
        self.model_path = opts["model_path"] or entry["model"]["path"]
        self.tokenizer_path = opts["tokenizer_path"] or entry["tokenizer"]["path"]
        self.conversation = entry["model"]["conversation"]
        self.question_template = opts["question_template"] or clip_t5_model.default_question_template
        self.answer_template = opts["answer_template"] or clip_t5_model.default_answer_template
        _check_template("question_template", self.question_template, needs_prompt=True)
        _check_template("answer_template", self.answer_template, needs_prompt=False)
        self.cache_dir = opts["cache_dir"] or None
        self._entry = {"tokenizer": {**entry["tokenizer"], "path": self.tokenizer_path},
                       "model": {**entry["model"], "path": self.model_path}}
        self._wrapper = None  # loaded on the first batch: a fully cached run never loads the 11B model

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "version": "1", "metric": self.metrics[0], "t2v_metrics": version("t2v-metrics"),
                "model": self.model, "model_path": self.model_path, "tokenizer_path": self.tokenizer_path,
                "weights_stamp": local_weights.stamp(self.model_path),
                "tokenizer_stamp": local_weights.stamp(self.tokenizer_path), "conversation": self.conversation,
                "question_template": self.question_template, "answer_template": self.answer_template,
                "precision": self.precision, "device": self.device.type}

    def score(self, requests: list[ScoreRequest]) -> list[ScoredImage]:
        values: list[float] = []
        for start in range(0, len(requests), self.batch_size):
            values.extend(self._score_pairs(requests[start:start + self.batch_size]))
        metric = self.metrics[0]
        return [ScoredImage([Sample(r.prompt.prompt_id, r.sample_index, metric, v, image_sha256=r.image_sha256)])
                for r, v in zip(requests, values)]

    def _score_pairs(self, requests: list[ScoreRequest]) -> list[float]:
        import torch

        wrapper = self._load()
        # On the CPU, t2v-metrics' own bf16 autocast (CUDA only) is off: bf16 needs a CPU autocast here, and
        # fp32 ran `.float()` on the weights at load.
        cpu_bf16 = self.precision == "bf16-autocast-cpu"
        autocast = torch.autocast("cpu", dtype=torch.bfloat16) if cpu_bf16 else nullcontext()
        with autocast:
            probabilities = wrapper.forward([r.image_path for r in requests], [r.prompt.prompt for r in requests],
                                            question_template=self.question_template,
                                            answer_template=self.answer_template)
        return [float(p) for p in probabilities.float().cpu()]

    def _load(self):
        if self._wrapper is not None:
            return self._wrapper
        from huggingface_hub.constants import HF_HUB_CACHE
        from t2v_metrics.models.vqascore_models.clip_t5_model import CLIP_T5_MODELS, CLIPT5Model

        # A private entry carries the chosen paths, so t2v-metrics' official entries stay untouched.
        key = f"{self.model}@ts-eval:{self.model_path}|{self.tokenizer_path}"
        CLIP_T5_MODELS[key] = self._entry
        try:
            wrapper = CLIPT5Model(key, device=str(self.device), cache_dir=self.cache_dir or HF_HUB_CACHE)
        except (OSError, ValueError) as exc:
            raise UsageError(self._missing_weights(exc)) from None
        finally:
            del CLIP_T5_MODELS[key]
        if self.precision == "fp32":
            wrapper.model.float()  # t2v-metrics loads in bf16; CPU fp32 runs without any autocast
        self._wrapper = wrapper
        return wrapper

    def _missing_weights(self, exc: Exception) -> str:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        size = SIZES.get(self.model, "")
        return (f"{OWNER}: could not load {self.model} (weights {self.model_path}, tokenizer {self.tokenizer_path}"
                f"{', ' + size if size else ''}): {reason} -- connect to the Hugging Face Hub once to download them, "
                "or download them yourself and pass --scorer-arg model_path=DIR --scorer-arg tokenizer_path=DIR "
                "(the model's config.json names its CLIP vision tower, openai/clip-vit-large-patch14-336: "
                "have it in the Hugging Face cache or point mm_vision_tower at a local copy)")


def _precision(device_type: str, dtype: str) -> str:
    """How CLIP-T5 runs: t2v-metrics itself only knows bf16 under a CUDA autocast."""
    import torch

    chosen = torch_dtype(dtype, device_type)
    if device_type == "cuda":
        if chosen != torch.bfloat16:
            raise UsageError(f"{OWNER}: t2v-metrics runs CLIP-T5 in bf16 on CUDA (its forward is wrapped in a bf16 "
                             f"autocast); use --dtype auto or bf16, not {dtype}")
        return "bf16-autocast-cuda"
    if chosen == torch.float32:
        return "fp32"
    if chosen == torch.bfloat16:
        return "bf16-autocast-cpu"
    raise UsageError(f"{OWNER}: on {device_type} use --dtype fp32 (default) or bf16, not {dtype}")


def _check_template(key: str, template: str, *, needs_prompt: bool) -> None:
    try:
        template.format("prompt")
    except (IndexError, KeyError, ValueError):
        raise UsageError(f"{OWNER}: {key}={template!r} is not a format string with at most one '{{}}' "
                         "(write other braces as '{{' and '}}')") from None
    if needs_prompt and "{}" not in template:
        raise UsageError(f"{OWNER}: {key}={template!r} must contain '{{}}' where the prompt goes")
