"""`ts-eval gate`: the command around the gate's logic (prints the table, appends it to the CI step summary, exit 1 on a failure)."""

from __future__ import annotations

import argparse
import os

from ts_eval.errors import CheckFailed


def cmd_gate(args: argparse.Namespace) -> int:
    from ts_eval.gate import GateOptions, run_gate  # imported when the command runs: `ts-eval --help` stays fast
    from ts_eval.report.numbers import delta

    options = GateOptions(
        max_drop=args.max_drop,
        metric=args.metric,
        groups=args.groups,
        confidence=args.confidence,
        resamples=args.resamples,
        seed=args.seed,
        tasks_dir=args.tasks_dir,
    )
    result, table = run_gate(args.baseline, args.current, options)
    print(table)
    step_summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if step_summary:
        with open(step_summary, "a", encoding="utf-8") as handle:  # the runner's file: append, never replace
            handle.write(table + "\n\n")
    if result.failed:
        worst = ", ".join(
            f"{r.metric}/{r.group} {delta(r.delta)} [{delta(r.ci[0])}, {delta(r.ci[1])}]" for r in result.failed
        )
        raise CheckFailed(
            f"gate failed: {len(result.failed)} group(s) dropped more than {options.max_drop:g} significantly: {worst}"
        )
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
