"""The paper's table layouts from summaries, as markdown, CSV, LaTeX or JSON, labelled so no number is misread.

Every table carries: an `n` row (prompts per group; GenEval counts images, as its official summary does),
each run's verdict (`official`, or `unofficial: <first differing setting>`), and an `All`/`Overall` column
renamed whenever the runs do not cover the whole official prompt set (a split, `--limit`, `--skill`).
"""

from __future__ import annotations

import json
import math
from typing import Any

from ts_eval.errors import UsageError
from ts_eval.tasks import TaskSpec

FORMATS = ("md", "csv", "latex", "json")
STATUS = "status"


def check_format(fmt: str) -> None:
    if fmt not in FORMATS:
        raise UsageError(f"unknown --format {fmt!r}; choose one of: {', '.join(FORMATS)}")


def number(value: float | None, decimals: int = 2) -> str:
    """Two decimals as the paper prints; tiny non-zero values keep two significant digits instead of 0.00."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "--"
    if value != 0 and abs(value) < 0.5 * 10 ** -decimals:
        return f"{value:.2g}"
    return f"{value:.{decimals}f}"


def _selection_note(summary: dict[str, Any]) -> str | None:
    verdict = summary.get("verdict") or {}
    parts = []
    if verdict.get("split"):
        parts.append(f"split {verdict['split']}")
    if verdict.get("subset"):
        parts.append(f"subset {verdict['subset']}")
    return ", ".join(parts) or None


def _overall_groups(spec: TaskSpec) -> set[str]:
    return set((spec.raw.get("groups") or {}).get("overall") or [])


def headers(spec: TaskSpec, summaries: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(header, group) of the task's layout; the overall column says when it is not the whole benchmark."""
    notes = sorted({note for s in summaries if (note := _selection_note(s))})
    out = []
    for header, group in spec.table:
        if group in _overall_groups(spec) and notes:
            header = f"{header} ({'; '.join(notes)})"
        out.append((header, group))
    return out


def status(summary: dict[str, Any]) -> str:
    verdict = summary.get("verdict")
    return verdict.get("label", "unknown") if isinstance(verdict, dict) else "no verdict (older run)"


def render_summaries(spec: TaskSpec, runs: list[tuple[str, dict[str, Any]]], fmt: str, *, ci: bool = True) -> str:
    check_format(fmt)
    if fmt == "json":
        return json.dumps({label: summary for label, summary in runs}, indent=2)
    import pandas as pd

    columns = headers(spec, [s for _, s in runs])
    rows: list[dict[str, Any]] = [{"run": "n", **{h: _n(runs, g) for h, g in columns}, STATUS: ""}]
    for label, summary in runs:
        row: dict[str, Any] = {"run": label}
        for header, group in columns:
            stats = summary["groups"].get(group)
            mean = stats["mean"] if stats else None
            if fmt == "csv":
                row[header] = "" if mean is None else repr(round(mean, 6))
                if ci:
                    row[f"{header} ci95"] = "" if not stats else f"{stats['ci95'][0]:.4f} {stats['ci95'][1]:.4f}"
            elif ci and stats and fmt == "md":
                row[header] = f"{number(mean)} [{number(stats['ci95'][0])}, {number(stats['ci95'][1])}]"
            else:
                row[header] = number(mean)
        row[STATUS] = status(summary)
        rows.append(row)
    table = pd.DataFrame(rows).set_index("run").fillna("")
    if fmt == "md":
        return table.to_markdown(disable_numparse=True)
    if fmt == "csv":
        return table.to_csv()
    return table.to_latex(escape=True)


def _n(runs: list[tuple[str, dict[str, Any]]], group: str) -> str:
    counts = sorted({s["groups"][group]["n"] for _, s in runs if group in s["groups"]})
    return "/".join(str(c) for c in counts) if counts else ""
