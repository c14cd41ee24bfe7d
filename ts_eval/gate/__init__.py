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

The package keeps the parts apart: `sides` reads a run or a bare summary, `compare` tests each group,
`table` renders the markdown CI shows, and `cli` is the `ts-eval gate` command (the only part that prints,
writes the runner's step summary and turns a failure into exit 1).
"""

from __future__ import annotations

from pathlib import Path

from ts_eval.gate.compare import GateOptions, GateResult, GroupResult, compare
from ts_eval.gate.sides import Side, load_side
from ts_eval.gate.table import markdown

__all__ = ["GateOptions", "GateResult", "GroupResult", "Side", "compare", "load_side", "markdown", "run_gate"]


def run_gate(baseline: str | Path, current: str | Path, options: GateOptions) -> tuple[GateResult, str]:
    """Compare and render; the caller decides what a failure does (the CLI exits 1)."""
    base_side, cur_side = load_side(baseline, options.tasks_dir), load_side(current, options.tasks_dir)
    result = compare(base_side, cur_side, options)
    return result, markdown(result, base_side, cur_side, options)
