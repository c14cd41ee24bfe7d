"""What the visual report reads from a run directory, as plain dataclasses.

All reading happens in `load_view_run`; everything after it (thumbnails, cards, HTML) is a function of the
`ViewRun` objects, so another reader can supply them.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ts_eval.errors import UsageError
from ts_eval.records import ImageKey
from ts_eval.scorers.geneval import DetectedObject, JudgeSettings, objects_from_row
from ts_eval.store import DETECTIONS, IMAGES, PROMPTS, SAMPLES, SUMMARY, RunDir

@dataclass(frozen=True)
class GroupStat:
    name: str
    mean: float
    n: int
    ci95: tuple[float, float] | None


@dataclass(frozen=True)
class ViewPrompt:
    prompt_id: str
    prompt: str
    tags: tuple[str, ...] = ()
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ViewImage:
    prompt_id: str
    sample_index: int
    path: str  # relative to the run directory
    sha256: str | None


@dataclass(frozen=True)
class ViewSample:
    prompt_id: str
    sample_index: int
    metric: str
    value: float
    reason: str | None = None


@dataclass
class ViewRun:
    task: str
    label: str
    root: Path  # the run directory; image paths are relative to it
    metric: str  # the task's headline metric, shown on every image
    groups: list[GroupStat]
    prompts: list[ViewPrompt]
    images: list[ViewImage]
    samples: list[ViewSample]
    detections: dict[ImageKey, dict[str, list[DetectedObject]]] = field(default_factory=dict)
    judge: JudgeSettings | None = None  # GenEval: the settings the images were judged with
    split: str | None = None
    model: str | None = None
    non_default: dict[str, Any] = field(default_factory=dict)


def load_view_run(path: str | Path, label: str | None = None) -> ViewRun:
    """Read one run directory for the report; bad input is a one-line UsageError."""
    run = RunDir(path)
    if not run.path.is_dir():
        raise UsageError(f"{run.path} is not a run directory (no such folder)")
    manifest = run.read_manifest()
    samples = [_sample(row, run.file(SAMPLES), n) for n, row in enumerate(run.read_rows(SAMPLES), start=1)]
    if not samples:
        raise UsageError(f"{run.path} has no scores ({SAMPLES} is missing or empty); run `ts-eval score {run.path}`")
    summary_path = run.file(SUMMARY)
    try:
        summary = json.loads(summary_path.read_text(encoding="utf-8"))
        groups = [GroupStat(name, float(g["mean"]), int(g["n"]),
                            (float(g["ci95"][0]), float(g["ci95"][1])) if g.get("ci95") else None)
                  for name, g in summary["groups"].items()]
    except FileNotFoundError:
        raise UsageError(f"{summary_path} is missing; run `ts-eval report {run.path}` to write it") from None
    except OSError as exc:
        raise UsageError(f"{summary_path}: cannot be read ({exc.strerror})") from None
    except (json.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError, IndexError):
        raise UsageError(f"{summary_path}: not a ts-eval summary (needs groups with mean, n and ci95)") from None
    try:
        prompts = [ViewPrompt(str(r["prompt_id"]), str(r["prompt"]), tuple(map(str, r.get("tags") or ())),
                              r.get("metadata") or {}) for r in run.read_rows(PROMPTS)]
        images = [ViewImage(str(r["prompt_id"]), int(r["sample_index"]), str(r["path"]),
                            r.get("sha256") or _file_sha256(run.file(str(r["path"]))))
                  for r in run.read_rows(IMAGES)]
    except (KeyError, TypeError, ValueError):
        raise UsageError(f"{run.path}: {PROMPTS} or {IMAGES} rows lack prompt_id/prompt or path fields") from None
    detections = {}
    for number, row in enumerate(run.read_rows(DETECTIONS), start=1):
        key = (str(row.get("prompt_id")), row.get("sample_index"))
        detections[key] = objects_from_row(row.get("detections"), f"{run.file(DETECTIONS)}: line {number}")
    scorer = manifest.get("scorer") or {}
    try:
        judge = JudgeSettings(**scorer["judge"]) if isinstance(scorer.get("judge"), dict) else JudgeSettings()
    except TypeError:  # settings of another scorer version: the official defaults are the best guess
        judge = JudgeSettings()
    return ViewRun(
        task=str(summary.get("task") or manifest.get("settings", {}).get("task", {}).get("name", "")),
        label=label or run.path.resolve().name,
        root=run.path,
        metric=summary.get("metric") or samples[0].metric,
        groups=groups, prompts=prompts, images=images, samples=samples, detections=detections,
        judge=judge if detections else None,
        split=summary.get("split"), model=summary.get("model"),
        non_default=manifest.get("non_default_settings") or {},
    )


def _file_sha256(path: Path) -> str | None:
    """Thumbnails are cached by sha256; an images.jsonl row without one gets it from the file (None: no file)."""
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None


def _sample(row: dict[str, Any], path: Path, number: int) -> ViewSample:
    try:
        return ViewSample(str(row["prompt_id"]), int(row["sample_index"]), str(row["metric"]), float(row["value"]),
                          row.get("reason") or None)
    except (KeyError, TypeError, ValueError):
        raise UsageError(f"{path}: line {number} needs prompt_id, sample_index, metric and a numeric value") from None
