"""Command-line parsing only: every command calls the same functions a Python user would.

Feature commands (sweep, human-eval, leaderboard, ...) register themselves from their own small `cli`
modules, listed in COMMAND_MODULES; those import nothing heavy until their command runs.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path
from typing import Sequence

import ts_eval
from ts_eval.distributed import rank_prefix
from ts_eval.errors import CheckFailed, UsageError

COMMAND_MODULES: list[str] = ["ts_eval.leaderboard.cli", "ts_eval.gate", "ts_eval.human_eval.cli", "ts_eval.tasks.geneval_cli", "ts_eval.sweep.cli", "ts_eval.report.view.cli"]


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (what and how to fix) and exit code 2."""

    def error(self, message: str):  # noqa: D401 - argparse API
        raise UsageError(f"{message} (see `{self.prog} --help`)")


def key_values(pairs: Sequence[str] | None, flag: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"{flag} expects key=value, got {pair!r}")
        out[key.strip().replace("-", "_")] = value
    return out


def add_task_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("task", help="benchmark name (see `ts-eval tasks`)")
    p.add_argument("--variant", help="task variant, e.g. GenAI-Bench 1600 (default) or 527")
    p.add_argument("--split", help="prompt split, e.g. all, basic, advanced, hard")
    p.add_argument("--skill", help="only prompts carrying this skill tag")
    p.add_argument("--data", help="folder holding the task's data files (skips the download)")
    p.add_argument("--tasks-dir", help="extra folder of task specs (*.yaml)")
    p.add_argument("--limit", type=int, help="only the first N selected prompts")
    p.add_argument("--n-samples", type=int, help="images per prompt (default: the task's official number)")
    p.add_argument("--seed", type=int, default=0, help="run seed; image seeds derive from (task, prompt_id, sample_index, seed)")
    p.add_argument("--prompt-rewrites", help="JSONL of {prompt_id, prompt}: text the generator sees instead")


def add_model_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default="dummy", help="generator: dummy, folder, reference, ...")
    p.add_argument("--model-arg", action="append", metavar="K=V", help="generator option (repeatable)")


def add_scorer_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--scorer", help="scorer (default: the task's official one)")
    p.add_argument("--scorer-arg", action="append", metavar="K=V", help="scorer option (repeatable)")
    p.add_argument("--detector", help="shorthand for --scorer-arg detector=NAME (GenEval: mmdet, hf, dummy)")
    p.add_argument("--batch-size", type=int, default=8, help="scorer batch size")
    p.add_argument("--no-cache", action="store_true", help="ignore the content-addressed score cache")


def add_device_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--dtype", default="auto", help="auto (bf16 on GPU, fp32 on CPU), fp32, bf16, fp16")


def add_output_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", help="run directory (default: results/<task>-<variant>-<split>-<model>-<hash>)")
    p.add_argument("--overwrite", action="store_true", help="replace a run directory made with other settings")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def scorer_args(args: argparse.Namespace) -> dict[str, str]:
    found = key_values(getattr(args, "scorer_arg", None), "--scorer-arg")
    if getattr(args, "detector", None):
        found["detector"] = args.detector
    return found


def _run_options(args: argparse.Namespace):
    from ts_eval.evaluate import RunOptions

    return RunOptions(
        task=args.task, variant=args.variant, split=args.split, skill=args.skill, data=args.data,
        tasks_dir=args.tasks_dir, model=args.model, model_args=key_values(args.model_arg, "--model-arg"),
        scorer=getattr(args, "scorer", None), scorer_args=scorer_args(args),
        n_samples=args.n_samples, limit=args.limit, seed=args.seed, out=args.out, overwrite=args.overwrite,
        batch_size=getattr(args, "batch_size", 8), device=args.device, dtype=args.dtype,
        prompt_rewrites=args.prompt_rewrites, cache=not getattr(args, "no_cache", False), progress=not args.quiet,
    )


def cmd_run(args: argparse.Namespace) -> int:
    from ts_eval.evaluate import run
    from ts_eval.report.tables import render
    from ts_eval.tasks import load_task

    options = _run_options(args)
    summary = run(**{k: v for k, v in vars(options).items() if k != "task"}, task=options.task)
    if not summary:  # a torchrun rank other than 0: rank 0 prints the table
        return 0
    spec = load_task(summary["task"], args.tasks_dir)
    print(render(spec, [(summary["model"], summary)], args.format))
    print(f"run directory: {summary['run_dir']}", file=sys.stderr)
    return 0


def cmd_generate(args: argparse.Namespace) -> int:
    from ts_eval.evaluate import generate

    _, _, run_dir, records = generate(_run_options(args))
    print(f"{len(records)} images in {run_dir.path}", file=sys.stderr)
    return 0


def cmd_score(args: argparse.Namespace) -> int:
    from ts_eval.evaluate import score

    run_dir = score(args.run, scorer=args.scorer, scorer_args=scorer_args(args),
                    batch_size=args.batch_size, device=args.device, dtype=args.dtype, cache=not args.no_cache,
                    progress=not args.quiet, tasks_dir=args.tasks_dir)
    print(f"scored {run_dir.path}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from ts_eval.evaluate import summarize_run
    from ts_eval.report.tables import render
    from ts_eval.tasks import load_task

    summaries = [(Path(run).name, summarize_run(_run_dir(run), resamples=args.resamples, tasks_dir=args.tasks_dir))
                 for run in args.runs]
    tasks = {s["task"] for _, s in summaries}
    if len(tasks) > 1:
        raise UsageError(f"runs of different tasks cannot share a table: {', '.join(sorted(tasks))}")
    print(render(load_task(tasks.pop(), args.tasks_dir), summaries, args.format))
    return 0


def _run_dir(path: str):
    from ts_eval.store import RunDir

    return RunDir(path)


def cmd_tasks(args: argparse.Namespace) -> int:
    from ts_eval.tasks import available_tasks, load_task

    for name in available_tasks(args.tasks_dir):
        spec = load_task(name, args.tasks_dir)
        print(f"{name}\tv{spec.version}\tvariants: {', '.join(spec.variants)}\tsplits: {', '.join(spec.splits)}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="ts-eval", description="Evaluate autoregressive text-to-image models "
                     "(Token-Shuffle line of work) on GenAI-Bench, GenEval and more.")
    parser.add_argument("--version", action="version", version=f"ts-eval {ts_eval.__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("run", help="generate, score and print the table (e.g. `ts-eval run genai-bench --split hard`)")
    add_task_options(p); add_model_options(p); add_scorer_options(p); add_device_options(p); add_output_options(p)
    p.add_argument("--format", default="md", help="table format: md, csv, latex, json")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("generate", help="only make the images of a run")
    add_task_options(p); add_model_options(p); add_device_options(p); add_output_options(p)
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("score", help="score the images of an existing run directory")
    p.add_argument("run")
    p.add_argument("--tasks-dir")
    add_scorer_options(p); add_device_options(p)
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_score)

    p = sub.add_parser("report", help="recompute summary.json from samples.jsonl and print tables")
    p.add_argument("runs", nargs="+", help="run directories (several: side by side)")
    p.add_argument("--format", default="md", help="md, csv, latex, json")
    p.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples for the 95%% CIs")
    p.add_argument("--tasks-dir")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("tasks", help="list the available benchmarks")
    p.add_argument("--tasks-dir")
    p.set_defaults(func=cmd_tasks)

    for module in COMMAND_MODULES:
        importlib.import_module(module).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        return int(args.func(args) or 0)
    except (UsageError, CheckFailed) as exc:
        print(f"{rank_prefix()}ts-eval: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"{rank_prefix()}ts-eval: interrupted; re-run the same command to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
