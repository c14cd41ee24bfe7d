"""`human-eval report`: per aspect win/tie/lose counts and shares, bootstrap 95% CIs over prompts, and
inter-rater agreement, as JSON, Markdown or CSV."""

from __future__ import annotations

import csv
import io
import json
from collections import defaultdict
from typing import Any

import numpy as np

from ts_eval.human_eval.agreement import krippendorff_alpha
from ts_eval.human_eval.study import OUTCOMES, Study
from ts_eval.options import DEFAULT_RESAMPLES
from ts_eval.stats import bootstrap_ci

_SCORE = {"win": 1, "tie": 0, "lose": -1}  # ordinal: a tie sits between a win and a loss


def _aspect_summary(study: Study, aspect: str, resamples: int, seed: int) -> dict[str, Any]:
    rows = [j for j in study.judgements if j.aspect == aspect]
    counts = {o: sum(j.outcome == o for j in rows) for o in OUTCOMES}
    n = len(rows)
    per_prompt: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(OUTCOMES, 0))
    for j in rows:
        per_prompt[j.prompt_id][j.outcome] += 1
    votes = np.array([sum(c.values()) for c in per_prompt.values()], dtype=float)
    summary: dict[str, Any] = {**counts, "n": n, "prompts": len(per_prompt), "share": {}, "ci95": {}}
    for o in OUTCOMES:
        share = np.array([c[o] for c in per_prompt.values()], dtype=float) / votes if n else np.array([])
        # Prompts are resampled whole, each weighted by its votes: the CI of the pooled share.
        summary["share"][o] = round(counts[o] / n, 4) if n else None
        summary["ci95"][o] = (
            [round(v, 4) for v in bootstrap_ci(share, weights=votes if n else None, resamples=resamples, seed=seed)]
            if n
            else None
        )
    if study.agreement and aspect in study.agreement:
        summary["agreement"] = study.agreement[aspect]
    else:
        by_unit: dict[tuple[str, int], dict[str, int]] = defaultdict(dict)
        for j in rows:
            by_unit[(j.prompt_id, j.sample_index)][j.rater] = _SCORE[j.outcome]
        summary["agreement"] = krippendorff_alpha(by_unit, "ordinal")
    return summary


def summarize(study: Study, *, resamples: int = DEFAULT_RESAMPLES, seed: int = 0) -> dict[str, Any]:
    return {
        "a": study.a,
        "b": study.b,
        "aspects": {aspect: _aspect_summary(study, aspect, resamples, seed) for aspect in study.aspects},
        "excluded": [e.to_row() for e in study.excluded],
        "checks": study.checks,
        "source": study.source,
    }


def _pct(share: float | None, ci: list[float] | None) -> str:
    if share is None or ci is None:  # both are None together (no votes)
        return "-"
    return f"{100 * share:.1f}% [{100 * ci[0]:.1f}, {100 * ci[1]:.1f}]"


def render_md(summary: dict[str, Any]) -> str:
    lines = [
        f"**{summary['a']}** (A) vs **{summary['b']}** (B): win = A judged better",
        "",
        "| aspect | win | tie | lose | n | prompts | win % [95% CI] | tie % [95% CI] | lose % [95% CI] | agreement |",
        "|---|---:|---:|---:|---:|---:|---|---|---|---|",
    ]
    for aspect, s in summary["aspects"].items():
        agreement = s["agreement"]
        alpha = "-" if agreement.get("value") is None else f"α={agreement['value']:.3f} ({agreement['level']})"
        lines.append(
            f"| {aspect} | {s['win']} | {s['tie']} | {s['lose']} | {s['n']} | {s['prompts']} | "
            + " | ".join(_pct(s["share"][o], s["ci95"][o]) for o in OUTCOMES)
            + f" | {alpha} |"
        )
    excluded = summary["excluded"]
    lines += ["", f"Excluded: {len(excluded)}"]
    lines += [f"- {e['source']}: {e['reason']}" for e in excluded[:50]]
    if len(excluded) > 50:
        lines.append(f"- ... {len(excluded) - 50} more in study.json")
    for rater, c in sorted(summary.get("checks", {}).get("raters", {}).items()):
        gold, repeats = c["gold"], c["repeats"]
        lines.append(
            f"- {rater}: {c['answered']}/{c['pairs']} items returned; gold {gold['correct']}/{gold['n']}; "
            f"repeats consistent {repeats['consistent']}/{repeats['n']}"
        )
    return "\n".join(lines) + "\n"


def render_csv(summary: dict[str, Any]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["aspect", "outcome", "count", "n", "share", "ci95_lo", "ci95_hi", "alpha"])
    for aspect, s in summary["aspects"].items():
        for o in OUTCOMES:
            ci = s["ci95"][o] or [None, None]
            writer.writerow([aspect, o, s[o], s["n"], s["share"][o], ci[0], ci[1], s["agreement"].get("value")])
    return buffer.getvalue()


def render(summary: dict[str, Any], fmt: str) -> str:
    if fmt == "json":
        return json.dumps(summary, indent=2, ensure_ascii=False) + "\n"
    if fmt == "md":
        return render_md(summary)
    return render_csv(summary)
