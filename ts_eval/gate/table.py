"""The gate's result as the markdown table CI prints and appends to the runner's step summary."""

from __future__ import annotations

from ts_eval.gate.compare import GateOptions, GateResult
from ts_eval.gate.sides import Side
from ts_eval.report import numbers


def _signed(value: float) -> str:
    return numbers.delta(value)  # ts-eval's one number policy: three decimals, no "-0.000" for float dust


def _label(side: Side) -> str:
    """The side's verdict (official, or the first setting that makes it unofficial), as every table shows it."""
    verdict = side.summary.get("verdict")
    return verdict["label"] if isinstance(verdict, dict) and "label" in verdict else "no verdict recorded"


def markdown(result: GateResult, baseline: Side, current: Side, options: GateOptions) -> str:
    level = f"{options.confidence:.0%}"
    how = (
        "paired bootstrap over shared prompts"
        if result.paired
        else "bootstrap of the current run against the baseline summary's means (no baseline samples: unpaired)"
    )
    lines = [
        (
            f"### ts-eval gate: {result.task} {result.variant or ''} {result.split} — "
            f"{'FAIL' if result.failed else 'pass'}"
        ).replace("  ", " "),
        "",
        (
            f"Baseline `{baseline.path}` ({_label(baseline)}), current `{current.path}` ({_label(current)}). "
            f"A group fails when it drops by more than "
            f"{options.max_drop:g} and the {level} CI of the change lies below 0 ({how}, {options.resamples} resamples, "
            f"seed {options.seed})."
        ),
        "",
        f"| metric | group | prompts | baseline | current | delta | {level} CI | verdict |",
        "|---|---|---:|---:|---:|---:|---|---|",
    ]
    for r in result.rows:
        lines.append(
            f"| {r.metric} | {r.group} | {r.n} | {numbers.score(r.baseline)} | {numbers.score(r.current)} | {_signed(r.delta)} | "
            f"[{_signed(r.ci[0])}, {_signed(r.ci[1])}] | {'**FAIL**' if r.failed else r.verdict} |"
        )
    if result.skipped:
        lines += ["", f"Not gated (official statistic is not a mean over prompts): {', '.join(result.skipped)}."]
    return "\n".join(lines)
