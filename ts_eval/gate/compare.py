"""The gate's test: per metric and group, bootstrap the mean change over shared prompts and decide pass or fail."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from ts_eval.errors import UsageError
from ts_eval.gate.sides import Side

_EPS = 1e-12  # float slack, so a drop exactly equal to --max-drop passes
_SELF_CHECK = 1e-9  # a per-prompt mean must reproduce the task's official group mean to be gated this way


@dataclass
class GateOptions:
    max_drop: float = 0.01
    metric: str = "all"
    groups: list[str] | None = None
    confidence: float = 0.95
    resamples: int = 10_000
    seed: int = 0
    tasks_dir: str | None = None


@dataclass
class GroupResult:
    metric: str
    group: str
    n: int
    baseline: float
    current: float
    delta: float
    ci: tuple[float, float]
    failed: bool
    verdict: str


@dataclass
class GateResult:
    task: str
    variant: str | None
    split: str
    paired: bool
    rows: list[GroupResult]
    skipped: list[str]  # metric/group whose official statistic is not a mean over prompts

    @property
    def failed(self) -> list[GroupResult]:
        return [r for r in self.rows if r.failed]


def _check_same_board(baseline: Side, current: Side) -> None:
    for field in ("task", "variant", "split"):
        b, c = getattr(baseline, field), getattr(current, field)
        if b is not None and c is not None and b != c:
            raise UsageError(
                f"baseline {field} {b!r} differs from current {field} {c!r}; "
                "compare runs of the same task, variant and split"
            )
    if baseline.prompts is not None and current.prompts is not None:
        b = {p.prompt_id: p.prompt for p in baseline.prompts}
        c = {p.prompt_id: p.prompt for p in current.prompts}
        if b != c:
            only_b, only_c = sorted(set(b) - set(c)), sorted(set(c) - set(b))
            detail = (
                f"{len(only_b)} only in baseline, {len(only_c)} only in current"
                if only_b or only_c
                else f"prompt {next(k for k in b if b[k] != c[k])} has different text"
            )
            raise UsageError(f"baseline and current prompt sets differ ({detail}); gate runs of the same subset")


def _metrics(baseline: Side, current: Side, wanted: str, task_metric: str) -> list[str]:
    have_c = set(current.scores or {})
    have_b = set(baseline.scores) if baseline.scores is not None else {baseline.summary.get("metric", task_metric)}
    shared = sorted(have_b & have_c)
    if wanted != "all":
        if wanted not in shared:
            raise UsageError(f"--metric {wanted!r} is not scored in both runs; shared: {', '.join(shared) or 'none'}")
        return [wanted]
    if not shared:
        raise UsageError("baseline and current share no metric")
    return shared


def _verdict(delta: float, ci: tuple[float, float], max_drop: float) -> tuple[bool, str]:
    if -delta <= max_drop + _EPS:
        return False, "pass"
    if ci[1] < 0:
        return True, "FAIL"
    return False, "pass (drop not significant)"


def _official_groups(side: Side, metric: str) -> dict[str, dict[str, Any]]:
    """The side's official group means when its summary aggregates `metric`, else none."""
    return side.summary["groups"] if side.summary.get("metric", metric) == metric else {}


def _matches(values, official: dict[str, Any]) -> bool:
    return abs(float(values.mean()) - float(official["mean"])) <= _SELF_CHECK


def compare(baseline: Side, current: Side, options: GateOptions) -> GateResult:
    import numpy as np

    from ts_eval.stats import paired_bootstrap
    from ts_eval.tasks import load_task

    current_scores, current_prompts, baseline_scores = current.scores, current.prompts, baseline.scores
    if current_scores is None or current_prompts is None:
        raise UsageError(f"--current {current.path}: give a run directory (the gate needs its per-prompt scores)")
    if not 0 < options.confidence < 1:
        raise UsageError(f"--confidence must be between 0 and 1, got {options.confidence}")
    if not math.isfinite(options.max_drop) or options.max_drop < 0:
        raise UsageError(f"--max-drop must be non-negative (a number), got {options.max_drop}")
    if options.resamples < 1:
        raise UsageError(f"--resamples must be at least 1, got {options.resamples}")
    _check_same_board(baseline, current)
    spec = load_task(current.task, options.tasks_dir)
    unknown = [g for g in options.groups or [] if g not in spec.groups]
    if unknown:
        raise UsageError(f"unknown group {unknown[0]!r} for {spec.name}; choose from: {', '.join(spec.groups)}")
    paired = baseline_scores is not None
    rows, skipped = [], []
    for metric in _metrics(baseline, current, options.metric, spec.metric):
        cur_scores = current_scores[metric]
        base_scores = baseline_scores[metric] if baseline_scores is not None else None
        if base_scores is not None and set(base_scores) != set(cur_scores):
            raise UsageError(
                f"{metric}: baseline scores {len(base_scores)} prompts, current {len(cur_scores)}; "
                "the prompt sets differ (is one run incomplete?)"
            )
        # The summarised metric has official group statistics; the gate tests them where they are per-prompt means.
        cur_official, base_official = _official_groups(current, metric), _official_groups(baseline, metric)
        official = bool(cur_official) and bool(base_official)
        # A task whose groups are its prompts' tags (the prompts task) gates each tag group too.
        task_groups = [h for _, h in spec.layout(list(current.summary.get("groups") or {}))] + spec.groups
        groups = [g for g in dict.fromkeys(task_groups) if not official or (g in cur_official and g in base_official)]
        for group in [g for g in groups if options.groups is None or g in options.groups]:
            members = [pid for pid in spec.group_members(current_prompts, group) if pid in cur_scores]
            if not members:
                continue
            c = np.array([cur_scores[pid] for pid in members])
            if official and not _matches(c, cur_official[group]):
                skipped.append(f"{metric}/{group}")
                continue
            if base_scores is not None:  # paired
                b = np.array([base_scores[pid] for pid in members])
            elif not official:
                continue  # a bare summary holds only its own metric
            else:
                stats, current_n = base_official[group], cur_official[group]["n"]
                if stats["n"] != current_n:  # n as the task counts it (prompts, or images for GenEval)
                    raise UsageError(
                        f"group {group!r}: baseline summary has n={stats['n']}, current run "
                        f"n={current_n}; the prompt sets differ"
                    )
                b = np.full(len(members), float(stats["mean"]))
            if official and not _matches(b, base_official[group]):
                skipped.append(f"{metric}/{group}")
                continue
            result = paired_bootstrap(
                b, c, resamples=options.resamples, seed=options.seed, confidence=options.confidence
            )
            ci = (result["ci95"][0], result["ci95"][1])
            failed, verdict = _verdict(result["delta"], ci, options.max_drop)
            rows.append(
                GroupResult(
                    metric, group, len(members), float(b.mean()), float(c.mean()), result["delta"], ci, failed, verdict
                )
            )
    if not rows:
        raise UsageError("no group has prompts in both runs; check --groups and --metric")
    return GateResult(spec.name, current.variant, current.split, paired, rows, skipped)
