"""GenAI-Bench: prompt files and the official per-skill aggregation of t2v-metrics.

Aggregation (t2v-metrics `genai_bench/evaluate.py`): a prompt's score is the mean over its images; a skill
tag's score is the mean over the prompts carrying that tag; `basic` and `advanced` are tags of the data
file, and `all` is the union of all tagged prompts (untagged prompts of the 1600 set count in no group).
"""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

import numpy as np
import pandas as pd

from ts_eval.errors import UsageError
from ts_eval.options import DEFAULT_RESAMPLES
from ts_eval.records import Prompt
from ts_eval.stats import bootstrap_ci
from ts_eval.tasks.data import DataFiles


def prompt_id(index: int) -> str:
    return f"{index:05d}"


def load_prompts(files: DataFiles) -> list[Prompt]:
    prompts_file = "prompts.txt" if "prompts.txt" in files.paths else "genai_image.json"
    texts = _read_prompts_txt(files) if prompts_file == "prompts.txt" else _read_genai_image_json(files)
    _check_count(files, prompts_file, "all", len(texts))
    tags = _read_skills(files, n_prompts=len(texts))
    prompts = [
        Prompt(prompt_id=prompt_id(i), prompt=text, tags=tuple(tags.get(i, ())))
        for i, text in enumerate(texts, start=1)
    ]
    for tag in files.expected:
        if tag != "all":
            _check_count(files, "genai_skills.json", tag, sum(tag in p.tags for p in prompts))
    return prompts


def _check_count(files: DataFiles, name: str, key: str, found: int) -> None:
    """The variant's official counts (`expected:` in the task spec): a truncated or edited file stops here."""
    wanted = files.expected.get(key)
    if wanted is not None and found != wanted:
        what = "prompts" if key == "all" else f"prompts tagged '{key}'"
        raise UsageError(
            f"{files[name]}: {found} {what}, but GenAI-Bench {files.source.get('variant', '')} has "
            f"{wanted}; use the official file (or pass --data DIR holding it)"
        )


def _read_prompts_txt(files: DataFiles) -> list[str]:
    path = files["prompts.txt"]
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError:
        raise UsageError(f"{path}: not UTF-8 text; expected one prompt per line") from None
    if not lines:
        raise UsageError(f"{path}: empty; expected one prompt per line (line N = prompt id N)")
    blank = [n for n, line in enumerate(lines, start=1) if not line.strip()]
    if blank:
        raise UsageError(f"{path}: line {blank[0]} is blank; every line must hold one prompt (line N = prompt id N)")
    return lines


def _read_genai_image_json(files: DataFiles) -> list[str]:
    path = files["genai_image.json"]
    data = _load_json(path)
    if not isinstance(data, dict) or not data:
        raise UsageError(f"{path}: expected an object keyed by prompt id ('00001': {{'prompt': ...}})")
    try:
        ids = sorted(data, key=int)
        prompts = [data[i]["prompt"] for i in ids]
    except (ValueError, KeyError, TypeError):
        raise UsageError(f"{path}: every entry needs a numeric id and a 'prompt' field") from None
    if [int(i) for i in ids] != list(range(1, len(ids) + 1)):
        raise UsageError(f"{path}: prompt ids must run 1..{len(ids)} without gaps")
    bad = next((i for i, text in zip(ids, prompts) if not isinstance(text, str) or not text.strip()), None)
    if bad is not None:
        raise UsageError(
            f"{path}: prompt {bad} is {'blank' if isinstance(data[bad]['prompt'], str) else 'not text'}; "
            "every prompt must be non-empty text"
        )
    return prompts


def _read_skills(files: DataFiles, n_prompts: int) -> dict[int, list[str]]:
    path = files["genai_skills.json"]
    skills = _load_json(path)
    if not isinstance(skills, dict) or not {"basic", "advanced"} <= set(skills):
        raise UsageError(f"{path}: expected an object mapping skill tags (incl. 'basic', 'advanced') to prompt ids")
    tags: dict[int, list[str]] = defaultdict(list)
    for tag, ids in skills.items():
        if not isinstance(ids, list) or not all(isinstance(i, int) and 1 <= i <= n_prompts for i in ids):
            raise UsageError(f"{path}: tag '{tag}' must list 1-based prompt ids between 1 and {n_prompts}")
        for i in ids:
            tags[i].append(tag)
    return tags


def _load_json(path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: malformed JSON ({exc})") from None


def prompt_scores(samples: pd.DataFrame, metric: str) -> pd.Series:
    """Mean over each prompt's images: prompt_id -> score."""
    rows = samples[samples["metric"] == metric]
    return rows.groupby("prompt_id", sort=True)["value"].mean()


def group_members(prompts: list[Prompt], group: str) -> list[str]:
    if group == "all":
        return [p.prompt_id for p in prompts if p.tags]
    return [p.prompt_id for p in prompts if group in p.tags]


def summarize(
    spec, prompts: list[Prompt], samples: pd.DataFrame, *, resamples: int = DEFAULT_RESAMPLES, seed: int = 0
) -> dict[str, Any]:
    """Per official group: mean over prompts, number of prompts, bootstrap 95% CI over prompts."""
    scores = prompt_scores(samples, spec.metric)
    groups = {}
    for group in spec.groups:
        values = scores.reindex(group_members(prompts, group)).dropna().to_numpy(dtype=np.float64)
        if len(values) == 0:
            continue
        lo, hi = bootstrap_ci(values, resamples=resamples, seed=seed)
        groups[group] = {"mean": float(values.mean()), "n": len(values), "ci95": [lo, hi]}
    return {"metric": spec.metric, "groups": groups}
