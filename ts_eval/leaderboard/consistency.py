"""Is a run directory whole and honest with itself? Every prompt scored, values in range, summary recomputable.

`submit` runs these checks on the user's run before packing it, and `leaderboard add` runs them again on
the extracted archive; each problem is one line (a `RunProblem`) that the caller words as a refusal.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeGuard

from ts_eval.errors import UsageError
from ts_eval.store import IMAGES, MANIFEST, PROMPTS, SAMPLES, SUMMARY, RunDir, read_jsonl
from ts_eval.tasks import TaskSpec

SUMMARY_TOLERANCE = 1e-9  # the same code recomputes the same floats; anything larger is an edit


class RunProblem(Exception):
    """One reason a run directory cannot be submitted as it is."""


@dataclass
class RunFiles:
    path: Path
    manifest: dict[str, Any]
    prompts: list[dict[str, Any]]
    samples: list[dict[str, Any]]
    images: list[dict[str, Any]]


def read_run(path: Path) -> RunFiles:
    run = RunDir(path)
    try:
        manifest = run.read_manifest()
        prompts, samples, images = (read_jsonl(run.file(n)) for n in (PROMPTS, SAMPLES, IMAGES))
    except UsageError as exc:
        raise RunProblem(str(exc)) from None
    for name, rows in ((PROMPTS, prompts), (SAMPLES, samples), (IMAGES, images)):
        if not all(isinstance(r, dict) for r in rows):
            raise RunProblem(f"{name} holds a line that is not a JSON object")
    return RunFiles(path, manifest, prompts, samples, images)


def n_samples(files: RunFiles) -> int:
    value = files.manifest.get("settings", {}).get("n_samples")
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise RunProblem(f"{MANIFEST} has no valid settings.n_samples")
    return value


def value_range(spec: TaskSpec) -> tuple[float, float]:
    """The task's metric range: `value_range: [lo, hi]` in its spec, else [0, 1] (VQAScore, GenEval `correct`)."""
    return spec.value_range


def _is_number(value: Any) -> TypeGuard[float]:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_samples(files: RunFiles, spec: TaskSpec) -> None:
    """One row per (prompt, image, metric), the summarised metric among them, every value finite.

    Values of the task's own metric must also lie in its range; other scorers' metrics have their own scales.
    """
    prompt_ids: list[Any] = [r.get("prompt_id") for r in files.prompts]  # as the file holds them, checked below
    if len(set(prompt_ids)) != len(prompt_ids):
        raise RunProblem(f"{PROMPTS} lists a prompt_id twice")
    known = set(prompt_ids)
    per_image = n_samples(files)
    lo, hi = value_range(spec)
    metrics: dict[tuple[str, int], list[str]] = {}
    for number, row in enumerate(files.samples, start=1):
        pid, index, metric, value = (row.get(k) for k in ("prompt_id", "sample_index", "metric", "value"))
        if (
            not isinstance(pid, str)
            or not isinstance(metric, str)
            or not isinstance(index, int)
            or isinstance(index, bool)
        ):
            raise RunProblem(f"{SAMPLES} line {number} needs prompt_id (string), sample_index (int), metric (string)")
        if pid not in known:
            raise RunProblem(f"{SAMPLES} line {number} scores prompt_id {pid!r}, which is not in {PROMPTS}")
        if not 0 <= index < per_image:
            raise RunProblem(f"{SAMPLES} line {number}: sample_index {index} out of range 0..{per_image - 1}")
        if not _is_number(value) or not math.isfinite(value):
            raise RunProblem(f"{SAMPLES} line {number}: value {value!r} is not a finite number")
        if metric == spec.metric and not lo <= value <= hi:
            raise RunProblem(f"{SAMPLES} line {number}: {metric} {value!r} out of range [{lo:g}, {hi:g}]")
        metrics.setdefault((pid, index), []).append(metric)
    for key, names in metrics.items():
        if len(set(names)) != len(names):
            raise RunProblem(f"{SAMPLES} scores prompt {key[0]} image {key[1]} twice with the same metric")
    # Every image carries every metric the scorer emits (at least the one the summary aggregates).
    wanted = tuple(sorted({m for names in metrics.values() for m in names} | {run_metric(files.manifest, spec)}))
    missing = [
        (pid, k) for pid in prompt_ids for k in range(per_image) if tuple(sorted(metrics.get((pid, k), ()))) != wanted
    ]
    if missing:
        pid, k = missing[0]
        raise RunProblem(
            f"missing samples: prompt {pid} image {k} lacks {', '.join(wanted)} "
            f"({len(missing)} of {len(prompt_ids) * per_image} images incomplete)"
        )


def run_metric(manifest: dict[str, Any], spec: TaskSpec) -> str:
    """The metric a run's summary aggregates: its scorer's (as `summarize_run` picks it), else the task's."""
    return (manifest.get("scorer") or {}).get("metric") or spec.metric


def recompute_summary(run_path: Path, *, resamples: int | None = None, tasks_dir: str | None = None) -> dict[str, Any]:
    """summary.json as `ts-eval report` would write it, computed without touching the run.

    `resamples=None` uses the run's own setting; 0 gives point estimates only (CIs collapse to the mean).
    """
    from ts_eval.store.reader import read_run as read_validated  # pandas: only when a command checks a run
    from ts_eval.summary import summarize

    return summarize(read_validated(run_path, tasks_dir=tasks_dir), resamples=resamples)


def _first_difference(submitted: Any, recomputed: Any, where: str) -> str | None:
    if isinstance(recomputed, dict):
        if not isinstance(submitted, dict) or set(submitted) != set(recomputed):
            return where or "top level"
        for key in recomputed:
            found = _first_difference(submitted[key], recomputed[key], f"{where}.{key}" if where else key)
            if found:
                return found
        return None
    if isinstance(recomputed, list):
        if not isinstance(submitted, list) or len(submitted) != len(recomputed):
            return where
        return next(
            (
                d
                for d in (
                    _first_difference(a, b, f"{where}[{i}]") for i, (a, b) in enumerate(zip(submitted, recomputed))
                )
                if d
            ),
            None,
        )
    if _is_number(recomputed) and _is_number(submitted):
        both_nan = math.isnan(recomputed) and math.isnan(submitted)
        return None if both_nan or math.isclose(submitted, recomputed, rel_tol=0, abs_tol=SUMMARY_TOLERANCE) else where
    return None if submitted == recomputed else where


def check_summary(files: RunFiles, tasks_dir: str | None = None) -> dict[str, Any]:
    """The submitted summary.json must equal the one recomputed from samples.jsonl; returns it."""
    path = files.path / SUMMARY
    if not path.is_file():
        raise RunProblem(f"no {SUMMARY}; run `ts-eval report {files.path}` first")
    try:
        submitted = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise RunProblem(f"{SUMMARY} is not valid JSON") from None
    try:
        recomputed = recompute_summary(files.path, tasks_dir=tasks_dir)
    except UsageError as exc:
        raise RunProblem(str(exc)) from None
    # The verdict and the random-weights note are the board's own judgement (recomputed from the manifest), not
    # numbers the run reports: only the numbers must agree (and summaries written before the note still do).
    judged = ("verdict", "random_weights")
    where = _first_difference(
        {k: v for k, v in submitted.items() if k not in judged} if isinstance(submitted, dict) else submitted,
        {k: v for k, v in recomputed.items() if k not in judged},
        "",
    )
    if where:
        raise RunProblem(
            f"{SUMMARY} does not equal the summary recomputed from {SAMPLES} (first difference at {where})"
        )
    return recomputed
