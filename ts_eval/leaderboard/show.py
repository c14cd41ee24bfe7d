"""Render one board (task, variant, split) as markdown, CSV, JSON or a static HTML page.

Official entries of the whole prompt set are ranked by the task's overall group (GenAI-Bench `all`);
entries listed with `--allow-unofficial` (unofficial or subset runs) and entries whose verdict was never
recomputed (added before the board recorded verdicts) follow them unranked. Every format carries each
entry's `verdict` label and its `trust` (self-reported or verified, and how; docs/leaderboard.md). The
columns follow the task's paper table. Everything a submitter chose (name, model, scorer) is escaped in
every format that can break.
"""

from __future__ import annotations

import csv
import html
import io
import json
from typing import Any

from ts_eval.errors import UsageError
from ts_eval.leaderboard.trust import Trust
from ts_eval.official import Verdict
from ts_eval.report import numbers
from ts_eval.tasks import TaskSpec

FORMATS = ("md", "csv", "json", "html")
NOT_RECORDED = "not recorded (added before verdicts)"
UNRANKED = "-"


def rank_group(spec: TaskSpec) -> str:
    return spec.overall[0] if spec.overall else spec.table[-1][1]


def _verdict(entry: dict[str, Any]) -> Verdict | None:
    return Verdict.from_dict(entry["verdict"]) if entry.get("verdict") else None


def is_ranked(entry: dict[str, Any]) -> bool:
    """Only an official run of the whole prompt set earns a rank."""
    found = _verdict(entry)
    return found is not None and found.official and not found.subset


def ranked_rows(spec: TaskSpec, entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Board entries (from db.submissions) as rows: ranked entries first, then the unranked (rank None),
    each part by score; a missing rank group sorts last."""
    group = rank_group(spec)

    def score(entry: dict[str, Any]) -> float:
        stats = entry["groups"].get(group)
        return stats["mean"] if stats else float("-inf")

    ordered = sorted(entries, key=lambda e: (not is_ranked(e), -score(e), e["id"]))
    rows = []
    rank = 0
    for entry in ordered:
        stats = entry["groups"].get(group) or {"mean": None, "ci95": [None, None]}
        found, trust = _verdict(entry), Trust.from_entry(entry)
        rank += is_ranked(entry)
        rows.append(
            {
                "rank": rank if is_ranked(entry) else None,
                "id": entry["id"],
                "name": entry["name"],
                "model": entry["model"],
                "scorer": entry["scorer"],
                "official": bool(found and found.official),
                "verdict": found.to_dict() if found else {"label": NOT_RECORDED},
                "trust": trust.to_dict(),
                "task": entry["task"],
                "task_version": entry["task_version"],
                "variant": entry["variant"],
                "split": entry["split"],
                "metric": entry["metric"],
                "rank_group": group,
                "score": stats["mean"],
                "ci95": stats["ci95"],
                "groups": {g: entry["groups"][g]["mean"] for g in spec.groups if g in entry["groups"]},
                "n_prompts": entry["n_prompts"],
                "n_samples": entry["n_samples"],
                "date": entry["submitted"],
                "ts_eval_version": entry["ts_eval_version"],
                "verified_images": entry["verified_images"],
            }
        )
    return rows


def _columns(spec: TaskSpec, rows: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(header, group) of the paper table, less groups no entry has (a `hard` board has no basic skills)."""
    return [
        (header, group)
        for header, group in spec.table
        if group in spec.groups and (not rows or any(group in r["groups"] for r in rows))
    ]


def _number(value: float | None, exact: bool) -> str:
    """CSV keeps full precision; what a person reads follows ts-eval's one policy (ts_eval.report.numbers)."""
    if value is None:
        return ""
    return repr(float(value)) if exact else numbers.score(value)


def _ci(row: dict[str, Any], exact: bool) -> str:
    lo, hi = row["ci95"]
    if lo is None:
        return ""
    return f"[{float(lo)!r}, {float(hi)!r}]" if exact else numbers.interval(lo, hi)


def _table(spec: TaskSpec, rows: list[dict[str, Any]], exact: bool = False) -> tuple[list[str], list[list[str]]]:
    columns = _columns(spec, rows)
    headers = [
        "#",
        "id",
        "name",
        "model",
        "scorer",
        "verdict",
        "trust",
        *[h for h, _ in columns],
        "95% CI",
        "date",
        "ts-eval",
    ]
    body = [
        [
            UNRANKED if r["rank"] is None else str(r["rank"]),
            str(r["id"]),
            r["name"],
            r["model"],
            r["scorer"],
            r["verdict"]["label"],
            r["trust"]["label"],
            *[_number(r["groups"].get(g), exact) for _, g in columns],
            _ci(r, exact),
            r["date"][:10],
            r["ts_eval_version"] or "",
        ]
        for r in rows
    ]
    return headers, body


def _markdown(spec: TaskSpec, rows: list[dict[str, Any]]) -> str:
    headers, body = _table(spec, rows)

    def cell(text: str) -> str:  # a `|` or newline in a name would split the row
        return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in body]
    return "\n".join(lines)


def _csv(spec: TaskSpec, rows: list[dict[str, Any]]) -> str:
    headers, body = _table(spec, rows, exact=True)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(headers)
    writer.writerows(body)
    return buffer.getvalue().rstrip("\n")


def _bar_chart(rows: list[dict[str, Any]], metric: str) -> str:
    """Inline SVG: one bar per entry with its CI as a whisker; scale 0..1 (or the largest value above 1)."""
    bar, gap, label_w, width = 22, 8, 220, 420
    top = max([1.0] + [r["ci95"][1] or 0.0 for r in rows] + [r["score"] or 0.0 for r in rows])
    height = len(rows) * (bar + gap) + 30
    x = lambda v: label_w + width * max(v, 0.0) / top  # noqa: E731 - the chart's one scale
    parts = [
        (
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{label_w + width + 60}" height="{height}" '
            f'role="img" aria-label="{html.escape(metric)} per submission">'
        )
    ]
    for i, r in enumerate(rows):
        y = 10 + i * (bar + gap)
        score = r["score"] or 0.0
        parts.append(
            f'<text x="{label_w - 6}" y="{y + bar * 0.7:.1f}" text-anchor="end" font-size="12">'
            f"{html.escape(UNRANKED if r['rank'] is None else str(r['rank']))}. {html.escape(r['name'])}</text>"
        )
        parts.append(f'<rect x="{label_w}" y="{y}" width="{x(score) - label_w:.1f}" height="{bar}" fill="#4c78a8"/>')
        if r["ci95"][0] is not None:
            lo, hi = x(r["ci95"][0]), x(r["ci95"][1])
            parts.append(f'<line x1="{lo:.1f}" x2="{hi:.1f}" y1="{y + bar / 2}" y2="{y + bar / 2}" stroke="#222"/>')
        parts.append(
            f'<text x="{x(score) + 4:.1f}" y="{y + bar * 0.7:.1f}" font-size="11">{numbers.score(score)}</text>'
        )
    parts.append("</svg>")
    return "\n".join(parts)


_SORT_SCRIPT = """
document.querySelectorAll("th").forEach((th, col) => th.addEventListener("click", () => {
  const body = th.closest("table").tBodies[0];
  const asc = th.dataset.order !== "asc";
  th.dataset.order = asc ? "asc" : "desc";
  const key = (tr) => { const t = tr.cells[col].dataset.sort ?? tr.cells[col].textContent;
                        const n = parseFloat(t); return isNaN(n) ? t.toLowerCase() : n; };
  [...body.rows].sort((a, b) => { const x = key(a), y = key(b);
    return (x < y ? -1 : x > y ? 1 : 0) * (asc ? 1 : -1); }).forEach((tr) => body.appendChild(tr));
}));
"""


def _html(spec: TaskSpec, rows: list[dict[str, Any]], title: str) -> str:
    headers, body = _table(spec, rows)
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    trs = "\n".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in body)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right}}th{{cursor:pointer;background:#eee}}
td:nth-child(n+3):nth-child(-n+7){{text-align:left}}</style></head>
<body><h1>{html.escape(title)}</h1>
<p>Official runs of the whole prompt set are ranked by {html.escape(rank_group(spec))} ({html.escape(spec.metric)});
entries marked {UNRANKED} are unofficial or subsets, listed with their verdict. Scores are self-reported unless the
trust column says they were verified by re-scoring the images. Click a column header to sort.</p>
<table><thead><tr>{head}</tr></thead><tbody>
{trs}
</tbody></table>
<h2>{html.escape(rank_group(spec))}</h2>
{_bar_chart(rows, spec.metric)}
<script>{_SORT_SCRIPT}</script>
</body></html>
"""


def render(spec: TaskSpec, rows: list[dict[str, Any]], fmt: str, *, title: str) -> str:
    if fmt not in FORMATS:
        raise UsageError(f"unknown --format {fmt!r}; choose one of: {', '.join(FORMATS)}")
    if fmt == "json":
        return json.dumps({"rows": rows}, indent=2, ensure_ascii=False)
    if fmt == "csv":
        return _csv(spec, rows)
    if fmt == "html":
        return _html(spec, rows, title)
    return _markdown(spec, rows)
