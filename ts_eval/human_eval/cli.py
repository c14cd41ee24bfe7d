"""`ts-eval human-eval ...`: argument parsing only; each command calls the module that does the work."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ts_eval.errors import CheckFailed, UsageError
from ts_eval.options import DEFAULT_RESAMPLES

_ASPECTS = "text_alignment visual_flaws visual_appearance"


def _comma_list(values: list[str]) -> tuple[str, ...]:
    return tuple(v.strip() for value in values for v in value.split(",") if v.strip())


def cmd_export(args: argparse.Namespace) -> int:
    from ts_eval.human_eval.export import ExportOptions, export_study

    options = ExportOptions(
        raters=args.raters,
        per_rater=args.per_rater,
        aspects=_comma_list(args.aspects),
        formats=_comma_list([args.format]),
        seed=args.seed,
        gold=args.gold,
        duplicates=args.duplicates,
        a_name=args.a_name,
        b_name=args.b_name,
        embed_images=args.embed_images,
        overwrite=args.overwrite,
    )
    key = export_study(args.run_a, args.run_b, args.out, options)
    out = Path(args.out)
    print(
        f"{len(key.items)} sheet rows for {len(key.raters)} raters in {out / 'sheets'}; "
        f"answer key (keep it from raters): {out / 'key.json'}"
    )
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from ts_eval.human_eval.study import write_study
    from ts_eval.human_eval.unblind import import_sheets

    study = import_sheets(args.sheets, args.key, min_gold=args.min_gold)
    write_study(args.out, study)
    if args.strict and study.excluded:  # the error alone: the exclusions it counts are listed in study.json
        first = study.excluded[0]
        raise CheckFailed(
            f"{len(study.excluded)} answers excluded (--strict), first {first.source}: {first.reason}; "
            f"all listed in {Path(args.out) / 'study.json'}"
        )
    print(
        f"{len(study.judgements)} answers counted into {args.out}; {len(study.excluded)} excluded"
        + (" (listed in study.json)" if study.excluded else "")
    )
    for exclusion in study.excluded[:10]:
        print(f"  excluded {exclusion.source}: {exclusion.reason}", file=sys.stderr)
    return 0


def cmd_import_likert(args: argparse.Namespace) -> int:
    from ts_eval.human_eval.likert import import_likert
    from ts_eval.human_eval.study import write_study

    study = import_likert(args.file, args.a, args.b, aspect=args.aspect)
    write_study(args.out, study)
    names = ", ".join(e.source for e in study.excluded)
    print(
        f"{len(study.judgements)} prompts compared into {args.out}; {len(study.excluded)} excluded"
        + (f": {names}" if names else "")
    )
    return 0


def cmd_import_geneval(args: argparse.Namespace) -> int:
    from ts_eval.human_eval import geneval_mturk
    from ts_eval.store import write_json, write_jsonl

    verdicts, result = geneval_mturk.import_geneval(args.file, run=args.run, metadata=args.metadata, images=args.images)
    out = Path(args.out)
    write_jsonl(out / "human_correct.jsonl", (v.to_row() for v in verdicts))
    write_json(out / "agreement.json", result)
    print(geneval_mturk.to_json(result) if args.format == "json" else geneval_mturk.render_md(result), end="")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from ts_eval.human_eval.report import render, summarize
    from ts_eval.human_eval.study import read_study

    if args.plot and not args.plot.lower().endswith(".png"):
        raise UsageError(f"--plot writes a PNG; give a file name ending in .png, got {args.plot}")
    summary = summarize(read_study(args.study), resamples=args.resamples, seed=args.seed)
    if args.plot:
        from ts_eval.human_eval.plot import plot_bars

        plot_bars(summary, args.plot)
    print(render(summary, args.format), end="")
    return 0


def register(subparsers) -> None:
    top = subparsers.add_parser(
        "human-eval",
        help="side-by-side human studies of two runs: sheets out, ratings in, win/tie/lose with CIs and agreement",
    )
    sub = top.add_subparsers(dest="human_command", required=True)

    p = sub.add_parser("export", help="rater sheets (HTML, CSV, XLSX) comparing two runs, and a hidden answer key")
    p.add_argument("run_a", help="run directory A (a win means A judged better)")
    p.add_argument("run_b", help="run directory B")
    p.add_argument("--out", required=True, help="study folder: sheets/ for raters, key.json kept back")
    p.add_argument("--raters", type=int, default=3, help="number of rater sheets (default 3)")
    p.add_argument(
        "--per-rater", type=int, help="pairs per rater (default: all); sheets overlap so items get several raters"
    )
    p.add_argument(
        "--aspects", nargs="+", default=[_ASPECTS.replace(" ", ",")], help=f"aspects to judge (default: {_ASPECTS})"
    )
    p.add_argument("--format", default="html,csv,xlsx", help="comma list of html, csv, xlsx (default all)")
    p.add_argument("--seed", type=int, default=0, help="seed of the assignment, order and left/right sides")
    p.add_argument("--gold", type=int, default=0, help="attention-check items per rater (image vs another prompt's)")
    p.add_argument("--duplicates", type=int, default=0, help="repeated items per rater, sides swapped")
    p.add_argument("--a-name", help="name of run A in reports (default: its folder name)")
    p.add_argument("--b-name", help="name of run B in reports (default: its folder name)")
    p.add_argument(
        "--embed-images", action="store_true", help="inline the images in the HTML page (one file per rater)"
    )
    p.add_argument("--overwrite", action="store_true", help="replace a study already in --out (its old key is lost)")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("import", help="filled sheets + key -> validated, un-blinded judgements")
    p.add_argument("sheets", nargs="+", help="filled CSV or XLSX sheets (the HTML page downloads a CSV)")
    p.add_argument("--key", required=True, help="key.json written by export")
    p.add_argument("--out", required=True, help="study folder for study.json and judgements.jsonl")
    p.add_argument("--min-gold", type=float, help="leave out raters whose share of right gold answers is below this")
    p.add_argument("--strict", action="store_true", help="exit 1 when any answer was excluded")
    p.set_defaults(func=cmd_import)

    p = sub.add_parser("import-likert", help="GenAI-Bench 1-5 human ratings -> win/tie/lose of model A vs B")
    p.add_argument("file", help="GenAI-Bench genai_image.json")
    p.add_argument("--a", required=True, help="model A, e.g. DALLE_3")
    p.add_argument("--b", required=True, help="model B, e.g. SDXL_Base")
    p.add_argument("--out", required=True, help="study folder")
    p.add_argument("--aspect", default="text_alignment", help="aspect name of the ratings (default text_alignment)")
    p.set_defaults(func=cmd_import_likert)

    p = sub.add_parser("import-geneval", help="GenEval MTurk annotations -> human correctness vs a run's judge")
    p.add_argument("file", help="GenEval annotations CSV, e.g. annotations_sdv2.csv")
    p.add_argument(
        "--run",
        help="GenEval run directory whose samples.jsonl `correct` is compared; it must have "
        "scored the rated images themselves (see --images)",
    )
    p.add_argument(
        "--images",
        help="folder holding the rated files named in the CSV's Input.image_url "
        "(e.g. DIR/00328/samples/00001.png): each annotated image of --run must equal its rated file",
    )
    p.add_argument("--metadata", help="evaluation_metadata.jsonl (default: the run's prompts.jsonl metadata)")
    p.add_argument("--out", required=True, help="folder for human_correct.jsonl and agreement.json")
    p.add_argument("--format", choices=("md", "json"), default="md")
    p.set_defaults(func=cmd_import_geneval)

    p = sub.add_parser("report", help="win/tie/lose per aspect with bootstrap 95%% CIs and inter-rater agreement")
    p.add_argument("study", help="study folder written by import / import-likert")
    p.add_argument("--format", choices=("json", "md", "csv"), default="md")
    p.add_argument("--plot", help="also write the stacked bar chart to this PNG")
    p.add_argument(
        "--resamples", type=int, default=DEFAULT_RESAMPLES, help=f"bootstrap resamples (default {DEFAULT_RESAMPLES})"
    )
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    p.set_defaults(func=cmd_report)
