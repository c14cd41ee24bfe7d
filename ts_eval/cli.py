"""Command-line parsing only: every command calls the same functions a Python user would.

Feature commands (sweep, human-eval, leaderboard, ...) register themselves from their own small `cli`
modules, listed in COMMAND_MODULES; those import nothing heavy until their command runs.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import logging
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path

import ts_eval
from ts_eval.errors import CheckFailed, UsageError, disk_full
from ts_eval.logs import configured
from ts_eval.options import RunOptions, key_values, split_pairs

COMMAND_MODULES: list[str] = [
    "ts_eval.leaderboard.cli",
    "ts_eval.gate.cli",
    "ts_eval.human_eval.cli",
    "ts_eval.geneval.cli",
    "ts_eval.sweep.cli",
    "ts_eval.report.view.cli",
]


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (what and how to fix) and exit code 2."""

    def error(self, message: str):
        raise UsageError(f"{message} (see `{self.prog} --help`)")


def add_task_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("task", help="benchmark name (see `ts-eval tasks`)")
    p.add_argument("--variant", help="task variant, e.g. GenAI-Bench 1600 (default) or 527")
    p.add_argument("--split", help="prompt split, e.g. all, basic, advanced, hard")
    p.add_argument("--skill", help="only prompts carrying this skill tag")
    p.add_argument("--data", help="folder holding the task's data files (skips the download)")
    p.add_argument(
        "--prompts",
        metavar="SOURCE",
        help="the prompts task's prompt set: FILE.txt|.csv|.tsv|.jsonl, a "
        "dataset folder, or hf://ORG/NAME[@REVISION][:SPLIT][#COLUMN] (see docs/custom-prompts.md)",
    )
    p.add_argument(
        "--prompt-tags",
        metavar="COL,COL",
        help="the prompts task's tag columns, each value a group "
        "(default: every column besides the prompt and id; '' for none)",
    )
    p.add_argument("--tasks-dir", help="extra folder of task specs (*.yaml)")
    p.add_argument("--limit", type=int, help="only the first N selected prompts")
    p.add_argument("--n-samples", type=int, help="images per prompt (default: the task's official number)")
    p.add_argument(
        "--seed", type=int, default=0, help="run seed; image seeds derive from (task, prompt_id, sample_index, seed)"
    )
    p.add_argument("--prompt-rewrites", help="JSONL of {prompt_id, prompt}: text the generator sees instead")
    p.add_argument(
        "--image-format",
        choices=["png", "jpeg"],
        help="how images are stored and scored (default: the task's official format: GenAI-Bench jpeg, GenEval png)",
    )


class _Pairs(argparse.Action):
    """`--model-args a=1,b=2` (lm-eval's form): each pair joins the list of `--model-arg`, in command-line order."""

    def __call__(self, parser, namespace, values, option_string=None):
        assert isinstance(values, str) and option_string is not None  # an option that takes one value
        setattr(
            namespace, self.dest, [*(getattr(namespace, self.dest, None) or []), *split_pairs(values, option_string)]
        )


def add_model_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default="dummy", help="generator: dummy, folder, reference, ... (see `ts-eval models`)")
    p.add_argument(
        "--model-arg", action="append", metavar="K=V", help="generator option (repeatable; see `ts-eval models`)"
    )
    p.add_argument(
        "--model-args",
        dest="model_arg",
        action=_Pairs,
        metavar="K=V,K=V",
        help="generator options, comma-separated (a comma inside a value: \\,)",
    )


def add_scorer_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--scorer", help="scorer (default: the task's official one; see `ts-eval scorers`)")
    p.add_argument(
        "--scorer-arg", action="append", metavar="K=V", help="scorer option (repeatable; see `ts-eval scorers`)"
    )
    p.add_argument(
        "--scorer-args",
        dest="scorer_arg",
        action=_Pairs,
        metavar="K=V,K=V",
        help="scorer options, comma-separated (a comma inside a value: \\,)",
    )
    p.add_argument("--detector", help="shorthand for --scorer-arg detector=NAME (GenEval: mmdet, hf, dummy)")
    p.add_argument("--batch-size", type=int, default=8, help="scorer batch size")
    p.add_argument("--no-cache", action="store_true", help="ignore the content-addressed score cache")


def add_device_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument(
        "--dtype",
        default="auto",
        help="the generator's dtype: auto (bf16 on GPU, fp32 on CPU), fp32, "
        "bf16, fp16; scorers keep their official dtype unless --scorer-arg dtype=...",
    )


def add_output_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", help="run directory (default: results/<task>-<variant>-<split>-<model>-<hash>)")
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace a run directory made with other settings, or scores made by another scorer",
    )
    p.add_argument(
        "--no-view", action="store_true", help="do not write view.html, the visual report, beside summary.json"
    )


def scorer_args(args: argparse.Namespace) -> dict[str, str]:
    found = key_values(getattr(args, "scorer_arg", None), "--scorer-arg")
    if getattr(args, "detector", None):
        found["detector"] = args.detector
    return found


def _run_options(args: argparse.Namespace, **given) -> RunOptions:
    """The namespace of any run-like command as RunOptions (options a command lacks keep their defaults)."""
    fields = {
        "task": "task",
        "variant": "variant",
        "split": "split",
        "skill": "skill",
        "data": "data",
        "tasks_dir": "tasks_dir",
        "model": "model",
        "scorer": "scorer",
        "n_samples": "n_samples",
        "limit": "limit",
        "seed": "seed",
        "image_format": "image_format",
        "out": "out",
        "overwrite": "overwrite",
        "batch_size": "batch_size",
        "device": "device",
        "dtype": "dtype",
        "prompt_rewrites": "prompt_rewrites",
        "prompts": "prompts",
    }
    values = {name: getattr(args, attr) for name, attr in fields.items() if getattr(args, attr, None) is not None}
    if getattr(args, "prompt_tags", None) is not None:
        values["prompt_tags"] = [c.strip() for c in args.prompt_tags.split(",") if c.strip()]
    values["model_args"] = key_values(getattr(args, "model_arg", None), "--model-arg")
    values["scorer_args"] = scorer_args(args)
    values["cache"] = not getattr(args, "no_cache", False)
    values["view"] = not getattr(args, "no_view", False)
    values["progress"] = not getattr(args, "quiet", False)
    return RunOptions(**{**values, **given})


def cmd_run(args: argparse.Namespace) -> int:
    from ts_eval.pipeline import run
    from ts_eval.report.tables import check_format
    from ts_eval.tasks import load_task

    check_format(args.format)  # before hours of work, not after
    if args.label is not None and not args.label.strip():
        raise UsageError("--label is blank; name the run's row")
    summary = run(_run_options(args))
    if not summary:  # a torchrun rank other than 0: rank 0 prints the table
        return 0
    spec = load_task(summary["task"], args.tasks_dir)
    print_table(spec, [(args.label or summary["model"], summary)], args.format, ci=not args.no_ci)
    print(f"run directory: {summary['run_dir']}", file=sys.stderr)  # output of the command, shown with -q too
    return 0


def print_table(spec, rows, fmt: str, *, ci: bool) -> None:
    """The table on stdout; markdown and LaTeX carry their caveats, other formats get them on stderr."""
    from ts_eval.report.tables import caveats, render_summaries

    print(render_summaries(spec, rows, fmt, ci=ci))
    if fmt in ("csv", "json"):
        for line in caveats(rows):
            print(f"ts-eval: {line}", file=sys.stderr)


def cmd_generate(args: argparse.Namespace) -> int:
    from ts_eval.pipeline import generate

    prepared, records = generate(_run_options(args))
    print(f"{len(records)} images in {prepared.run.path}", file=sys.stderr)
    return 0


def cmd_score(args: argparse.Namespace) -> int:
    from ts_eval.pipeline import score

    run = score(_run_options(args, out=args.run))
    print(f"scored {run.path}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from ts_eval.report.runs import report_rows

    spec, rows = report_rows(
        args.runs,
        fmt=args.format,
        resamples=args.resamples,
        tasks_dir=args.tasks_dir,
        allow_mixed=args.allow_mixed,
        labels=args.label,
    )
    print_table(spec, rows, args.format, ci=not args.no_ci)
    return 0


def cmd_tasks(args: argparse.Namespace) -> int:
    from ts_eval.tasks import available_tasks, load_task

    for name in available_tasks(args.tasks_dir):
        spec = load_task(name, args.tasks_dir)
        print(f"{name}\tv{spec.version}\tvariants: {', '.join(spec.variants)}\tsplits: {', '.join(spec.splits)}")
    return 0


def cmd_plugins(args: argparse.Namespace) -> int:
    import json

    from ts_eval.plugins import entries, render

    listed = entries(args.kind, args.names or None)
    print(
        json.dumps([e.to_dict() for e in listed], indent=2) if args.json else render(listed),
        end="\n" if args.json else "",
    )
    return 0


def add_verbosity_options(p: argparse.ArgumentParser, *, top: bool = False) -> None:
    """`-v`/`-q`, before the command (`ts-eval -q run ...`) or after it (`ts-eval run ... -q`)."""
    prefix = "global_" if top else ""
    p.add_argument(
        "-v",
        "--verbose",
        dest=f"{prefix}verbose",
        action="count",
        default=0,
        help="more detail: debug lines, third-party messages in full (-vv: their debug lines too)",
    )
    p.add_argument(
        "-q",
        "--quiet",
        dest=f"{prefix}quiet",
        action="store_true",
        help="no progress bars and no warnings; an error is still printed",
    )


def _leaves(parser: argparse.ArgumentParser):
    """The parsers that run a command (subcommands of subcommands included)."""
    groups = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not groups:
        yield parser
    for group in groups:
        for child in dict.fromkeys(group.choices.values()):  # aliases map to the same parser
            yield from _leaves(child)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="ts-eval",
        description="Evaluate autoregressive text-to-image models "
        "(Token-Shuffle line of work) on GenAI-Bench, GenEval and more.",
    )
    parser.add_argument("--version", action="version", version=f"ts-eval {ts_eval.__version__}")
    add_verbosity_options(parser, top=True)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("run", help="generate, score and print the table (e.g. `ts-eval run genai-bench --split hard`)")
    add_task_options(p)
    add_model_options(p)
    add_scorer_options(p)
    add_device_options(p)
    add_output_options(p)
    p.add_argument("--format", default="md", help="table format: md, csv, latex, json")
    p.add_argument("--no-ci", action="store_true", help="print means without their 95%% CIs")
    p.add_argument("--label", help="the run's row name in the table (default: the model's name)")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("generate", help="only make the images of a run")
    add_task_options(p)
    add_model_options(p)
    add_device_options(p)
    add_output_options(p)
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("score", help="score the images of an existing run directory")
    p.add_argument("run")
    p.add_argument("--tasks-dir")
    add_scorer_options(p)
    add_device_options(p)
    p.add_argument("--overwrite", action="store_true", help="replace scores made by another scorer")
    p.set_defaults(func=cmd_score)

    p = sub.add_parser("report", help="recompute summary.json from samples.jsonl and print tables")
    p.add_argument("runs", nargs="+", help="run directories (several: side by side)")
    p.add_argument("--format", default="md", help="md, csv, latex, json")
    p.add_argument(
        "--resamples",
        type=int,
        help="bootstrap resamples for the 95%% CIs (default: the run's own, "
        "1000 unless it was made with another number); recorded in the run",
    )
    p.add_argument(
        "--allow-mixed",
        action="store_true",
        help="put runs of different metrics, scorers or prompt sets side by side, each labelled",
    )
    p.add_argument("--no-ci", action="store_true", help="print means without their 95%% CIs")
    p.add_argument(
        "--label",
        action="append",
        metavar="NAME",
        help="row name of each run, in the runs' order (repeat once per run; default: the directory name)",
    )
    p.add_argument("--tasks-dir")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("tasks", help="list the available benchmarks")
    p.add_argument("--tasks-dir")
    p.set_defaults(func=cmd_tasks)

    for kind, command in (("model", "models"), ("scorer", "scorers")):
        p = sub.add_parser(
            command, help=f"list the {command} with their options, defaults and meaning, and the extra each needs"
        )
        p.add_argument("names", nargs="*", metavar="NAME", help=f"only these {command}")
        p.add_argument("--json", action="store_true", help="as JSON")
        p.set_defaults(func=cmd_plugins, kind=kind)

    for module in COMMAND_MODULES:
        importlib.import_module(module).register(sub)
    for leaf in _leaves(parser):
        if leaf is not parser:
            add_verbosity_options(leaf)
    return parser


def _run_command(args: argparse.Namespace) -> int:
    """Python warnings raised during a command are shown after it succeeds (one line each, none with -q) and
    dropped when it fails: before a one-line error they are noise, and the error is what the user must read."""
    with warnings.catch_warnings(record=True) as caught:  # the active filters still decide what is caught
        code = int(args.func(args) or 0)
    for warning in [] if args.quiet else caught:
        warnings.showwarning(warning.message, warning.category, warning.filename, warning.lineno)
    return code


def _failed(exc: UsageError | CheckFailed | KeyboardInterrupt | OSError, log: logging.Logger) -> int:
    """The one line a failed command prints (never a traceback), and its exit code."""
    if isinstance(exc, (UsageError, CheckFailed)):
        log.error("%s", exc)
        return exc.exit_code
    if isinstance(exc, KeyboardInterrupt):
        log.error("interrupted; re-run the same command to resume", extra={"bare": True})
        return 130
    # a disk or file problem outside any check: still one line
    if exc.errno == errno.ENOSPC:
        log.error("%s", disk_full(Path(exc.filename).parent if exc.filename else Path.cwd()))
        return 2
    where = f" ({exc.filename})" if exc.filename else ""
    log.error("%s%s", exc.strerror or exc, where)
    return 2


def main(argv: Sequence[str] | None = None) -> int:
    with configured() as log:  # until the command's own -v/-q are read
        try:
            args = build_parser().parse_args(argv)
        except (UsageError, CheckFailed) as exc:
            return _failed(exc, log)
    args.verbose += args.global_verbose
    args.quiet = args.quiet or args.global_quiet
    with configured(args.verbose, args.quiet) as log:
        try:
            return _run_command(args)
        except (UsageError, CheckFailed, KeyboardInterrupt, OSError) as exc:
            return _failed(exc, log)


if __name__ == "__main__":
    raise SystemExit(main())
