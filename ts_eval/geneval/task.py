"""GenEval: the official prompt metadata and the official summary (`evaluation/summary_scores.py`).

Prompt ids are the zero-padded line index of evaluation_metadata.jsonl ("00000".."00552"), as in the
official output folders; each row is kept verbatim as the prompt's metadata and its `tag` is the prompt's
only tag. Summary (official): a tag's accuracy is the share of its *images* judged correct; `overall` is
the mean of the tag accuracies; `correct_images` is the share of all images correct and `correct_prompts`
the share of prompts with at least one correct image. The 95% CIs resample prompts (all images of a prompt
move together).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ts_eval.errors import UsageError
from ts_eval.geneval.rules import TAGS, check_metadata
from ts_eval.options import DEFAULT_RESAMPLES
from ts_eval.records import Prompt
from ts_eval.stats import bootstrap_ci
from ts_eval.tasks.data import DataFiles

METADATA_FILE = "evaluation_metadata.jsonl"
CLASS_NAMES_FILE = "object_names.txt"


def prompt_id(index: int) -> str:
    return f"{index:05d}"


def read_class_names(path: Path) -> list[str]:
    """The detector's 80 class names, in the detector's label order (line i = label i)."""
    names = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    if len(names) != 80 or not all(names) or len(set(names)) != 80:
        raise UsageError(f"{path}: expected 80 distinct class names, one per line (COCO order)")
    return names


def bundled_class_names(spec) -> list[str]:
    """The class names shipped with the task (sha256-checked), for scorers that map detector labels to names."""
    from ts_eval.tasks.data import resolve_data

    return read_class_names(resolve_data(spec, None, None)[CLASS_NAMES_FILE])


def read_metadata(path: Path, class_names: list[str]) -> list[dict[str, Any]]:
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            raise UsageError(f"{path}: line {number} is not valid JSON") from None
        check_metadata(row, class_names, f"{path}: line {number}")
        if row["tag"] not in TAGS:
            raise UsageError(f"{path}: line {number} has tag {row['tag']!r}; GenEval's tags are {', '.join(TAGS)}")
        rows.append(row)
    if not rows:
        raise UsageError(f"{path}: no prompts; expected one JSON object per line")
    return rows


def load_prompts(files: DataFiles) -> list[Prompt]:
    class_names = read_class_names(files[CLASS_NAMES_FILE])
    rows = read_metadata(files[METADATA_FILE], class_names)
    return [
        Prompt(prompt_id=prompt_id(i), prompt=row["prompt"], tags=(row["tag"],), metadata=row)
        for i, row in enumerate(rows)
    ]


# -- summary -----------------------------------------------------------------------------------------


def image_table(prompts: list[Prompt], samples: pd.DataFrame, metric: str = "correct") -> pd.DataFrame:
    """One row per judged image: prompt_id, tag, correct (0/1)."""
    tags = {p.prompt_id: p.metadata.get("tag", p.tags[0] if p.tags else None) for p in prompts}
    rows = samples[samples["metric"] == metric]
    return pd.DataFrame(
        {
            "prompt_id": rows["prompt_id"].to_numpy(),
            "tag": rows["prompt_id"].map(tags).to_numpy(),
            "correct": rows["value"].astype(float).to_numpy(),
        }
    )


def _group(
    per_prompt: pd.DataFrame, value: str, weight: str | None, resamples: int, seed: int, n: int
) -> dict[str, Any]:
    values = per_prompt[value].to_numpy(dtype=np.float64)
    weights = per_prompt[weight].to_numpy(dtype=np.float64) if weight else None
    mean = float(np.average(values, weights=weights))
    lo, hi = bootstrap_ci(values, weights=weights, resamples=resamples, seed=seed)
    return {"mean": mean, "n": int(n), "ci95": [lo, hi]}


def summarize(
    spec, prompts: list[Prompt], samples: pd.DataFrame, *, resamples: int = DEFAULT_RESAMPLES, seed: int = 0
) -> dict[str, Any]:
    images = image_table(prompts, samples, spec.metric)
    per_prompt = images.groupby("prompt_id", sort=True).agg(
        tag=("tag", "first"),
        accuracy=("correct", "mean"),
        images=("correct", "size"),
        correct=("correct", "sum"),
        any_correct=("correct", "max"),
    )
    groups: dict[str, dict[str, Any]] = {}
    present = [t for t in TAGS if t in set(per_prompt["tag"])]
    for tag in present:
        rows = per_prompt[per_prompt["tag"] == tag]
        # Weighted by images per prompt, the mean of prompt accuracies is exactly the share of images.
        groups[tag] = {
            **_group(rows, "accuracy", "images", resamples, seed, int(rows["images"].sum())),
            "correct": int(rows["correct"].sum()),
        }
    tagged = per_prompt[per_prompt["tag"].isin(present)].copy()
    if present:
        # overall = mean over tags of each tag's image accuracy = the prompt-weighted mean with weight
        # images / (images in the prompt's tag); resampling prompts gives its CI.
        tag_images = tagged.groupby("tag")["images"].transform("sum")
        tagged["overall_weight"] = tagged["images"] / tag_images
        groups["overall"] = _group(tagged, "accuracy", "overall_weight", resamples, seed, int(tagged["images"].sum()))
    groups["correct_images"] = {
        **_group(per_prompt, "accuracy", "images", resamples, seed, int(per_prompt["images"].sum())),
        "correct": int(per_prompt["correct"].sum()),
    }
    groups["correct_prompts"] = {
        **_group(per_prompt, "any_correct", None, resamples, seed, len(per_prompt)),
        "correct": int(per_prompt["any_correct"].sum()),
    }
    return {
        "metric": spec.metric,
        "groups": groups,
        "n_images": int(per_prompt["images"].sum()),
        "n_prompts": len(per_prompt),
    }
