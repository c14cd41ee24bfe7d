"""`ts-eval gate`: fail CI when a checkpoint's scores drop, and only when the drop is real.

Per metric and official group, the gate pairs the two runs prompt by prompt (a prompt's score is the mean
over its images) and bootstraps the mean change over the shared prompts. A group fails when it drops by
more than `--max-drop` AND the whole confidence interval of the change lies below zero, so seed noise on
a small subset passes while a real regression does not.

Baseline and current values are the task's official group means (its own `summarize`, as `ts-eval report`
prints them). The bootstrap needs each group as a mean over prompts; a group whose official statistic is
something else (GenEval's tag-averaged `overall`, its `correct_prompts`) is listed as not gated rather
than tested on a number that differs from the one printed.

The baseline may be a bare summary.json with no samples beside it; its group means are then constants
and only the current run's prompts are resampled (an unpaired test, said so in the output). Runs of
different tasks, variants, splits or prompt sets cannot be compared: usage error, exit 2.
"""

from __future__ import annotations

import argparse
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ts_eval.errors import CheckFailed, UsageError
from ts_eval.records import Prompt
from ts_eval.report import numbers
from ts_eval.store import MANIFEST, SAMPLES, SUMMARY

_EPS = 1e-12  # float slack, so a drop exactly equal to --max-drop passes
_SELF_CHECK = 1e-9  # a per-prompt mean must reproduce the task's official group mean to be gated this way


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


# -- loading ---------------------------------------------------------------------------------------

def _prompt_scores(rows: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    sums: dict[str, dict[str, list[float]]] = {}
    for row in rows:
        entry = sums.setdefault(row["metric"], {}).setdefault(row["prompt_id"], [0.0, 0])
        entry[0] += float(row["value"])
        entry[1] += 1
    return {metric: {pid: total / count for pid, (total, count) in by_prompt.items()}
            for metric, by_prompt in sums.items()}


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


# -- comparing -------------------------------------------------------------------------------------

def _check_same_board(baseline: Side, current: Side) -> None:
    for field in ("task", "variant", "split"):
        b, c = getattr(baseline, field), getattr(current, field)
        if b is not None and c is not None and b != c:
            raise UsageError(f"baseline {field} {b!r} differs from current {field} {c!r}; "
                             "compare runs of the same task, variant and split")
    if baseline.prompts is not None and current.prompts is not None:
        b = {p.prompt_id: p.prompt for p in baseline.prompts}
        c = {p.prompt_id: p.prompt for p in current.prompts}
        if b != c:
            only_b, only_c = sorted(set(b) - set(c)), sorted(set(c) - set(b))
            detail = (f"{len(only_b)} only in baseline, {len(only_c)} only in current" if only_b or only_c
                      else f"prompt {next(k for k in b if b[k] != c[k])} has different text")
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

    if current.scores is None:
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
    paired = baseline.scores is not None
    rows, skipped = [], []
    for metric in _metrics(baseline, current, options.metric, spec.metric):
        cur_scores = current.scores[metric]
        base_scores = baseline.scores[metric] if paired else None
        if base_scores is not None and set(base_scores) != set(cur_scores):
            raise UsageError(f"{metric}: baseline scores {len(base_scores)} prompts, current {len(cur_scores)}; "
                             "the prompt sets differ (is one run incomplete?)")
        # The summarised metric has official group statistics; the gate tests them where they are per-prompt means.
        cur_official, base_official = _official_groups(current, metric), _official_groups(baseline, metric)
        official = bool(cur_official) and bool(base_official)
        # A task whose groups are its prompts' tags (the prompts task) gates each tag group too.
        task_groups = [h for _, h in spec.layout(list(current.summary.get("groups") or {}))] + spec.groups
        groups = [g for g in dict.fromkeys(task_groups) if not official or (g in cur_official and g in base_official)]
        for group in [g for g in groups if options.groups is None or g in options.groups]:
            members = [pid for pid in spec.group_members(current.prompts, group) if pid in cur_scores]
            if not members:
                continue
            c = np.array([cur_scores[pid] for pid in members])
            if official and not _matches(c, cur_official[group]):
                skipped.append(f"{metric}/{group}")
                continue
            if paired:
                b = np.array([base_scores[pid] for pid in members])
            elif not official:
                continue  # a bare summary holds only its own metric
            else:
                stats, current_n = base_official[group], cur_official[group]["n"]
                if stats["n"] != current_n:  # n as the task counts it (prompts, or images for GenEval)
                    raise UsageError(f"group {group!r}: baseline summary has n={stats['n']}, current run "
                                     f"n={current_n}; the prompt sets differ")
                b = np.full(len(members), float(stats["mean"]))
            if official and not _matches(b, base_official[group]):
                skipped.append(f"{metric}/{group}")
                continue
            result = paired_bootstrap(b, c, resamples=options.resamples, seed=options.seed,
                                      confidence=options.confidence)
            ci = (result["ci95"][0], result["ci95"][1])
            failed, verdict = _verdict(result["delta"], ci, options.max_drop)
            rows.append(GroupResult(metric, group, len(members), float(b.mean()), float(c.mean()),
                                    result["delta"], ci, failed, verdict))
    if not rows:
        raise UsageError("no group has prompts in both runs; check --groups and --metric")
    return GateResult(spec.name, current.variant, current.split, paired, rows, skipped)


# -- output ----------------------------------------------------------------------------------------

def _signed(value: float) -> str:
    return numbers.delta(value)  # ts-eval's one number policy: three decimals, no "-0.000" for float dust


def _label(side: Side) -> str:
    """The side's verdict (official, or the first setting that makes it unofficial), as every table shows it."""
    verdict = side.summary.get("verdict")
    return verdict["label"] if isinstance(verdict, dict) and "label" in verdict else "no verdict recorded"


def markdown(result: GateResult, baseline: Side, current: Side, options: GateOptions) -> str:
    level = f"{options.confidence:.0%}"
    how = ("paired bootstrap over shared prompts" if result.paired
           else "bootstrap of the current run against the baseline summary's means (no baseline samples: unpaired)")
    lines = [
        f"### ts-eval gate: {result.task} {result.variant or ''} {result.split} — "
        f"{'FAIL' if result.failed else 'pass'}".replace("  ", " "),
        "",
        f"Baseline `{baseline.path}` ({_label(baseline)}), current `{current.path}` ({_label(current)}). "
        f"A group fails when it drops by more than "
        f"{options.max_drop:g} and the {level} CI of the change lies below 0 ({how}, {options.resamples} resamples, "
        f"seed {options.seed}).",
        "",
        f"| metric | group | prompts | baseline | current | delta | {level} CI | verdict |",
        "|---|---|---:|---:|---:|---:|---|---|",
    ]
    for r in result.rows:
        lines.append(f"| {r.metric} | {r.group} | {r.n} | {numbers.score(r.baseline)} | {numbers.score(r.current)} | {_signed(r.delta)} | "
                     f"[{_signed(r.ci[0])}, {_signed(r.ci[1])}] | {'**FAIL**' if r.failed else r.verdict} |")
    if result.skipped:
        lines += ["", f"Not gated (official statistic is not a mean over prompts): {', '.join(result.skipped)}."]
    return "\n".join(lines)


def run_gate(baseline: str | Path, current: str | Path, options: GateOptions) -> tuple[GateResult, str]:
    """Compare and render; the caller decides what a failure does (the CLI exits 1)."""
    base_side, cur_side = load_side(baseline, options.tasks_dir), load_side(current, options.tasks_dir)
    result = compare(base_side, cur_side, options)
    return result, markdown(result, base_side, cur_side, options)


def cmd_gate(args: argparse.Namespace) -> int:
    options = GateOptions(max_drop=args.max_drop, metric=args.metric, groups=args.groups, confidence=args.confidence,
                          resamples=args.resamples, seed=args.seed, tasks_dir=args.tasks_dir)
    result, table = run_gate(args.baseline, args.current, options)
    print(table)
    step_summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if step_summary:
        with open(step_summary, "a", encoding="utf-8") as handle:  # the runner's file: append, never replace
            handle.write(table + "\n\n")
    if result.failed:
        worst = ", ".join(f"{r.metric}/{r.group} {_signed(r.delta)} [{_signed(r.ci[0])}, {_signed(r.ci[1])}]"
                          for r in result.failed)
        raise CheckFailed(f"gate failed: {len(result.failed)} group(s) dropped more than {options.max_drop:g} "
                          f"significantly: {worst}")
    return 0


def register(sub) -> None:
    p = sub.add_parser("gate", help="fail (exit 1) when the current run's scores drop significantly below a baseline")
    p.add_argument("--baseline", required=True, help="baseline run directory or summary.json")
    p.add_argument("--current", required=True, help="current run directory")
    p.add_argument("--max-drop", type=float, default=0.01, help="tolerated drop per group (default 0.01)")
    p.add_argument("--metric", default="all", help="metric to gate on, or all (default)")
    p.add_argument("--groups", nargs="+", metavar="GROUP", help="only these groups (default: every official group)")
    p.add_argument("--confidence", type=float, default=0.95, help="confidence level of the bootstrap CI")
    p.add_argument("--resamples", type=int, default=10_000, help="bootstrap resamples")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    p.add_argument("--tasks-dir", help="extra folder of task specs (*.yaml)")
    p.set_defaults(func=cmd_gate)
