"""One side of a gate comparison: a run directory's per-prompt scores, or a bare summary.json's group means."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ts_eval.errors import UsageError
from ts_eval.records import Prompt
from ts_eval.store import MANIFEST, SAMPLES, SUMMARY


@dataclass
class Side:
    """What one side of the comparison provides: a run's per-prompt scores, or a bare summary's means."""

    path: str
    task: str
    variant: str | None
    split: str
    prompts: list[Prompt] | None  # None for a bare summary.json
    scores: dict[str, dict[str, float]] | None  # metric -> prompt_id -> mean over the prompt's images
    summary: dict[str, Any]  # a bare summary.json, or a run's summary recomputed from its samples


def _prompt_scores(rows: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    sums: dict[str, dict[str, list[float]]] = {}
    for row in rows:
        entry = sums.setdefault(row["metric"], {}).setdefault(row["prompt_id"], [0.0, 0])
        entry[0] += float(row["value"])
        entry[1] += 1
    return {
        metric: {pid: total / count for pid, (total, count) in by_prompt.items()} for metric, by_prompt in sums.items()
    }


def _load_run(path: Path, tasks_dir: str | None) -> Side:
    from ts_eval.store.reader import read_run
    from ts_eval.summary import summarize

    run = read_run(path, tasks_dir=tasks_dir)  # validated: each image scored once, for the bytes it has
    task = run.settings["task"]
    scores = _prompt_scores([{"metric": s.metric, "prompt_id": s.prompt_id, "value": s.value} for s in run.samples])
    summary = summarize(run, resamples=0)  # what `ts-eval report` prints, without CIs
    return Side(str(path), task["name"], task.get("variant"), task["split"], run.prompts, scores, summary)


def load_side(path: str | Path, tasks_dir: str | None = None) -> Side:
    """A run directory, a summary.json inside one (its run is used), or a bare summary.json."""
    path = Path(path)
    if path.is_dir():
        if not (path / MANIFEST).is_file():
            raise UsageError(f"{path} is not a run directory (no {MANIFEST})")
        return _load_run(path, tasks_dir)
    if not path.is_file():
        raise UsageError(f"{path}: no such run directory or summary.json")
    if (path.parent / MANIFEST).is_file() and (path.parent / SAMPLES).is_file():
        return _load_run(path.parent, tasks_dir)
    try:
        summary = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise UsageError(f"{path}: not a JSON summary") from None
    if not isinstance(summary, dict) or not {"task", "split", "groups"} <= set(summary):
        raise UsageError(f"{path}: a summary needs task, split and groups (ts-eval/run@1 {SUMMARY})")
    return Side(str(path), summary["task"], summary.get("variant"), summary["split"], None, None, summary)
