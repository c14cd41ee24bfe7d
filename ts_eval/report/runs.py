"""`ts-eval report RUN [RUN ...]`: validated runs, recomputed summaries, one table of comparable runs.

Runs share a table only when their numbers mean the same thing: same task, variant, split, prompt set,
metric and scorer settings. `--allow-mixed` puts others side by side with each row saying what differs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ts_eval.errors import UsageError
from ts_eval.report.tables import check_format, render_summaries
from ts_eval.store.reader import Run, read_run
from ts_eval.summary import summarize, write_summary
from ts_eval.tasks import TaskSpec


def _identity(run: Run) -> dict[str, Any]:
    """What must be equal for two runs' numbers to share a column."""
    task = run.settings["task"]
    return {
        "variant": task["variant"],
        "split": task["split"],
        "metric": run.metric,
        "prompts": [(p.prompt_id, p.prompt) for p in run.prompts],
        "n_samples": run.n_samples,
        "scorer": run.scorer,
    }


def _describe(key: str, run: Run) -> str:
    if key == "prompts":
        return f"{len(run.prompts)} prompts"
    if key == "scorer":
        return f"scorer {(run.scorer or {}).get('name', '?')}"
    return f"{key} {_identity(run)[key]}"


def mixed_labels(runs: list[Run], allow_mixed: bool, names: list[str] | None = None) -> list[str]:
    """Each run's row label (`names`, else the run directory's name); runs that differ are refused, or (allowed)
    labelled with what differs."""
    tasks = sorted({run.spec.name for run in runs})
    if len(tasks) > 1:
        raise UsageError(f"runs of different tasks cannot share a table: {', '.join(tasks)}")
    labels = list(names) if names else [run.path.name for run in runs]
    first = _identity(runs[0])
    differing = [key for key in first if any(_identity(run)[key] != first[key] for run in runs[1:])]
    if not differing:
        return labels
    if not allow_mixed:
        other = next(run for run in runs[1:] if any(_identity(run)[k] != first[k] for k in differing))
        key = differing[0]
        raise UsageError(
            f"{runs[0].path.name} and {other.path.name} are not comparable ({_describe(key, runs[0])} vs "
            f"{_describe(key, other)}); report them apart, or pass --allow-mixed to label each row"
        )
    return [f"{label} ({', '.join(_describe(k, run) for k in differing)})" for label, run in zip(labels, runs)]


def check_labels(labels: list[str] | None, n_runs: int) -> None:
    if labels is None:
        return
    if len(labels) != n_runs:
        raise UsageError(f"{len(labels)} --label for {n_runs} run(s); give one --label per run, in the runs' order")
    blank = [i for i, label in enumerate(labels, start=1) if not label.strip()]
    if blank:
        raise UsageError(f"--label number {blank[0]} is blank; name each run")


def report_rows(
    paths: list[str],
    *,
    fmt: str = "md",
    resamples: int | None = None,
    tasks_dir: str | None = None,
    allow_mixed: bool = False,
    labels: list[str] | None = None,
) -> tuple[TaskSpec, list[tuple[str, dict]]]:
    """Validate the runs, recompute and record their summaries; (task, [(row label, summary)])."""
    check_format(fmt)  # before any summary is rewritten
    if resamples is not None and resamples < 1:
        raise UsageError(f"--resamples must be at least 1, got {resamples}")
    check_labels(labels, len(paths))
    runs = [read_run(Path(p), tasks_dir=tasks_dir) for p in paths]
    rows = []
    for label, run in zip(mixed_labels(runs, allow_mixed, labels), runs):
        summary = summarize(run, resamples=resamples)
        with run.dir.lock():
            write_summary(run, summary)
        rows.append((label, summary))
    return runs[0].spec, rows


def report(
    paths: list[str],
    *,
    fmt: str = "md",
    resamples: int | None = None,
    tasks_dir: str | None = None,
    allow_mixed: bool = False,
    labels: list[str] | None = None,
    ci: bool = True,
) -> str:
    """The table `ts-eval report` prints (`labels`: one row name per run, in order; `ci`: 95% CIs beside means)."""
    spec, rows = report_rows(
        paths, fmt=fmt, resamples=resamples, tasks_dir=tasks_dir, allow_mixed=allow_mixed, labels=labels
    )
    return render_summaries(spec, rows, fmt, ci=ci)
