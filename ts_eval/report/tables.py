"""The paper's table layouts from summaries, as markdown, CSV, LaTeX or JSON, labelled so no number is misread.

Every table carries: an `n` row (prompts per group; GenEval counts images, as its official summary does),
each run's verdict (`official`, or `unofficial: <first differing setting>`), and an `All`/`Overall` column
renamed whenever the runs do not cover the whole official prompt set (a split, `--limit`, `--skill`). Columns
of groups no run has (the basic skills of a `hard` split) are left out. Numbers follow one policy
(`ts_eval.report.numbers`): scores with two decimals, CIs with three, tiny values with two significant digits;
CSV and JSON keep full precision. A run whose models have random weights (or are stand-ins) gets a note under
the table saying its numbers are meaningless.
"""

from __future__ import annotations

import json
from typing import Any

from ts_eval.errors import UsageError
from ts_eval.report import numbers
from ts_eval.tasks import TaskSpec

FORMATS = ("md", "csv", "latex", "json")
STATUS = "status"
RUN = "run"


def check_format(fmt: str) -> None:
    if fmt not in FORMATS:
        raise UsageError(f"unknown --format {fmt!r}; choose one of: {', '.join(FORMATS)}")


def _selection_note(summary: dict[str, Any]) -> str | None:
    verdict = summary.get("verdict") or {}
    parts = []
    if verdict.get("split"):
        parts.append(f"split {verdict['split']}")
    if verdict.get("subset"):
        parts.append(f"subset {verdict['subset']}")
    return ", ".join(parts) or None


def _overall_groups(spec: TaskSpec) -> set[str]:
    return set(spec.overall)


def headers(spec: TaskSpec, summaries: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(header, group) of the task's layout for groups some run has; the overall column says when it is not the
    whole benchmark."""
    notes = sorted({note for s in summaries if (note := _selection_note(s))})
    held = [group for s in summaries for group in s["groups"]]
    layout = spec.layout(held)
    out = []
    for header, group in [(h, g) for h, g in layout if g in held] or layout:
        if group in _overall_groups(spec) and notes:
            header = f"{header} ({'; '.join(notes)})"
        out.append((header, group))
    return out


def status(summary: dict[str, Any]) -> str:
    verdict = summary.get("verdict")
    return verdict.get("label", "unknown") if isinstance(verdict, dict) else "no verdict (older run)"


def caveats(runs: list[tuple[str, dict[str, Any]]]) -> list[str]:
    """One line per run whose generator or scorer has random weights or is a stand-in (summary `random_weights`)."""
    lines = []
    for label, summary in runs:
        parts = summary.get("random_weights") or []
        if parts:
            lines.append(
                f"Note: {label} ran with random weights or a stand-in model ({', '.join(parts)}): its numbers "
                "are meaningless; they only show that the pipeline runs."
            )
    return lines


def _cell(stats: dict[str, Any] | None, ci: bool) -> str:
    if not stats:
        return numbers.MISSING
    text = numbers.score(stats["mean"])
    return f"{text} {numbers.interval(*stats['ci95'])}" if ci and stats.get("ci95") else text


def _exact(value: float | None) -> str:
    return "" if value is None else repr(float(value))


def render_summaries(
    spec: TaskSpec, runs: list[tuple[str, dict[str, Any]]], fmt: str, *, ci: bool = True, notes: bool = True
) -> str:
    """One row per (label, summary) under an `n` row; `ci` puts each group's 95% CI beside its mean. With `notes`,
    markdown and LaTeX end with the caveats (a LaTeX comment), so a pasted table keeps them."""
    check_format(fmt)
    if fmt == "json":
        return json.dumps(dict(runs), indent=2)
    import pandas as pd

    columns = headers(spec, [s for _, s in runs])
    rows: list[dict[str, Any]] = [{RUN: "n", **{h: _n(runs, g) for h, g in columns}, STATUS: ""}]
    for label, summary in runs:
        row: dict[str, Any] = {RUN: label}
        for header, group in columns:
            stats = summary["groups"].get(group)
            if fmt == "csv":
                row[header] = _exact(stats["mean"] if stats else None)
                if ci:
                    lo, hi = stats["ci95"] if stats else (None, None)
                    row[f"{header} ci95 lo"], row[f"{header} ci95 hi"] = _exact(lo), _exact(hi)
            else:
                row[header] = _cell(stats, ci)
        row[STATUS] = status(summary)
        rows.append(row)
    order = (
        [RUN]
        + [
            name
            for header, _ in columns
            for name in ([header, f"{header} ci95 lo", f"{header} ci95 hi"] if fmt == "csv" and ci else [header])
        ]
        + [STATUS]
    )
    table = pd.DataFrame(rows, columns=order).fillna("")
    if fmt == "csv":
        return table.to_csv(index=False)
    if fmt == "md":
        text = table.to_markdown(index=False, disable_numparse=True)
        lines = caveats(runs) if notes else []
        return "\n\n".join([text, *lines])
    # LaTeX: one header line (no stray row for the index name), numbers right-aligned, the notes as comments.
    text = table.to_latex(index=False, escape=True, column_format="l" + "r" * len(columns) + "l")
    lines = [f"% {line}" for line in caveats(runs)] if notes else []
    return "\n".join([text.rstrip("\n"), *lines]) + "\n"


def _n(runs: list[tuple[str, dict[str, Any]]], group: str) -> str:
    counts = sorted({s["groups"][group]["n"] for _, s in runs if group in s["groups"]})
    return "/".join(str(c) for c in counts) if counts else ""
