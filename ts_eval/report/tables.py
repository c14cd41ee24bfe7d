"""The paper's table layouts from summary.json files, as markdown, CSV, LaTeX or JSON."""

from __future__ import annotations

import json
from typing import Any

import pandas as pd

from ts_eval.errors import UsageError
from ts_eval.tasks import TaskSpec

FORMATS = ("md", "csv", "latex", "json")


def summary_table(spec: TaskSpec, summaries: list[tuple[str, dict[str, Any]]], *, with_ci: bool = False) -> pd.DataFrame:
    """One row per run, one column per header of the task's table layout (rounded as the paper prints)."""
    rows = []
    for label, summary in summaries:
        row: dict[str, Any] = {"run": label}
        for header, group in spec.table:
            stats = summary["groups"].get(group)
            row[header] = round(stats["mean"], 2) if stats else None
            if with_ci and stats:
                row[f"{header} CI"] = f"[{stats['ci95'][0]:.2f}, {stats['ci95'][1]:.2f}]"
        rows.append(row)
    return pd.DataFrame(rows).set_index("run")


def render(spec: TaskSpec, summaries: list[tuple[str, dict[str, Any]]], fmt: str) -> str:
    if fmt not in FORMATS:
        raise UsageError(f"unknown --format {fmt!r}; choose one of: {', '.join(FORMATS)}")
    if fmt == "json":
        return json.dumps({label: summary for label, summary in summaries}, indent=2)
    table = summary_table(spec, summaries)
    if fmt == "md":
        return table.to_markdown(floatfmt=".2f")
    if fmt == "csv":
        return table.to_csv(float_format="%.2f")
    return table.to_latex(float_format="%.2f", na_rep="--")
