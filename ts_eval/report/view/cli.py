"""`ts-eval view RUN [RUN ...] --out report.html`: argument parsing only."""

from __future__ import annotations

import argparse
import sys


def register(subparsers) -> None:
    p = subparsers.add_parser("view", help="an offline HTML page of one run's images and scores, or runs side by side")
    p.add_argument("runs", nargs="+", metavar="RUN", help="run directories (several: side by side on the same prompts)")
    p.add_argument("--out", default="view.html", help="HTML file to write; thumbnails go to <name>-thumbs/ beside it")
    p.add_argument(
        "--label",
        action="append",
        metavar="NAME",
        help="name of each run on the page, in order (repeatable; default: the run directory's name)",
    )
    p.add_argument("--embed", action="store_true", help="put the thumbnails inside the HTML (one file to send)")
    p.set_defaults(func=cmd_view)


def cmd_view(args: argparse.Namespace) -> int:
    from ts_eval.errors import UsageError
    from ts_eval.report.view.page import write_view
    from ts_eval.report.view.run import load_view_run

    labels = args.label or []
    if len(labels) > len(args.runs):
        raise UsageError(f"{len(labels)} --label values for {len(args.runs)} runs; give at most one per run")
    runs = [load_view_run(path, labels[i] if i < len(labels) else None) for i, path in enumerate(args.runs)]
    out = write_view(runs, args.out, embed=args.embed, progress=not args.quiet)
    print(f"wrote {out}", file=sys.stderr)
    return 0
