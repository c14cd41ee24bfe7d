"""GenEval commands: `ts-eval rescore RUN` and `ts-eval geneval export|import|compare`.

Only argument parsing here; the work is in rescore.py and interop.py.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ts_eval.options import DEFAULT_RESAMPLES


def cmd_rescore(args: argparse.Namespace) -> int:
    from ts_eval.geneval.rescore import rescore
    from ts_eval.options import key_values
    from ts_eval.report.tables import render_summaries as render
    from ts_eval.tasks import load_task

    summary = rescore(
        args.run,
        judge_args=key_values(args.judge_arg, "--judge-arg"),
        resamples=args.resamples,
        tasks_dir=args.tasks_dir,
        progress=not args.quiet,
    )
    print(render(load_task(summary["task"], args.tasks_dir), [(Path(args.run).name, summary)], args.format))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from ts_eval.geneval.interop import export_official

    count = export_official(
        args.run, args.outdir, overwrite=args.overwrite, tasks_dir=args.tasks_dir, progress=not args.quiet
    )
    print(
        f"{count} images in GenEval's layout under {args.outdir}; score them with the official "
        f"`python evaluation/evaluate_images.py {args.outdir} --outfile results.jsonl --model-path DETECTOR_DIR`"
    )
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from ts_eval.geneval.interop import import_official
    from ts_eval.report.tables import render_summaries as render
    from ts_eval.tasks import load_task

    summary = import_official(
        args.results, args.out, data=args.data, overwrite=args.overwrite, tasks_dir=args.tasks_dir
    )
    print(render(load_task("geneval", args.tasks_dir), [(Path(args.out).name, summary)], "md"))
    print(f"run directory: {args.out}; compare with `ts-eval report YOUR_RUN {args.out}`", file=sys.stderr)
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from ts_eval.geneval.interop import compare_runs

    per_tag, differ = compare_runs(args.first, args.second, tasks_dir=args.tasks_dir)
    print(per_tag.to_markdown(floatfmt=".4f"))
    if len(differ):
        print(
            f"\n{len(differ)} images judged differently (first {min(args.show, len(differ))}; a = {args.first}, "
            f"b = {args.second}):"
        )
        print(differ.head(args.show).to_markdown(index=False))
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser("rescore", help="re-judge a GenEval run from detections.jsonl (no model, seconds)")
    p.add_argument("run", help="GenEval run directory")
    p.add_argument(
        "--judge-arg",
        action="append",
        metavar="K=V",
        help="judge setting: threshold, counting_threshold, max_objects, max_overlap, position_threshold",
    )
    p.add_argument("--resamples", type=int, default=DEFAULT_RESAMPLES, help="bootstrap resamples for the 95%% CIs")
    p.add_argument("--format", default="md", help="table format: md, csv, latex, json")
    p.add_argument("--tasks-dir")
    p.set_defaults(func=cmd_rescore)

    p = subparsers.add_parser("geneval", help="GenEval interop: official output layout and results.jsonl")
    sub = p.add_subparsers(dest="geneval_command", required=True)
    q = sub.add_parser("export", help="write a run's images in the layout the official evaluate_images.py reads")
    q.add_argument("run")
    q.add_argument("outdir")
    q.add_argument("--overwrite", action="store_true", help="replace a non-empty output folder")
    q.add_argument("--tasks-dir")
    q.set_defaults(func=cmd_export)

    q = sub.add_parser("import", help="turn an official results.jsonl into a run directory (for side by side)")
    q.add_argument("results", help="results.jsonl written by the official evaluate_images.py")
    q.add_argument("--out", required=True, help="run directory to create")
    q.add_argument("--data", help="folder holding evaluation_metadata.jsonl (default: the bundled copy)")
    q.add_argument("--overwrite", action="store_true")
    q.add_argument("--tasks-dir")
    q.set_defaults(func=cmd_import)

    q = sub.add_parser("compare", help="per-tag agreement of two GenEval runs, and the images they judge differently")
    q.add_argument("first")
    q.add_argument("second")
    q.add_argument("--show", type=int, default=20, help="how many differing images to list")
    q.add_argument("--tasks-dir")
    q.set_defaults(func=cmd_compare)
