"""`ts-eval sweep`: argument parsing only; the work is in `ts_eval.sweep.runner`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ts_eval.errors import CheckFailed, UsageError


def _ints(flag: str):
    def parse(text: str) -> tuple[int, ...]:
        try:
            values = tuple(int(v) for v in text.split(",") if v.strip())
        except ValueError:
            raise argparse.ArgumentTypeError(f"{flag} expects comma-separated integers, got {text!r}") from None
        if not values:
            raise argparse.ArgumentTypeError(f"{flag} needs at least one value")
        return values

    return parse


def _on_off(text: str) -> bool:
    if text not in ("on", "off"):
        raise argparse.ArgumentTypeError(f"--cfg expects on or off, got {text!r}")
    return text == "on"


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "sweep", help="inference and training FLOPs, and latency, of the reference generator per shuffle window"
    )
    p.add_argument("--config", default="paper-2.7b", help="tiny, small, paper-2.7b or a config JSON")
    p.add_argument("--windows", type=_ints("--windows"), default=(1, 2, 4), help="shuffle windows, e.g. 1,2,4")
    p.add_argument("--resolutions", type=_ints("--resolutions"), default=(1024, 2048), help="pixels, e.g. 1024,2048")
    p.add_argument("--batch-sizes", type=_ints("--batch-sizes"), default=(1,), help="e.g. 1,8")
    p.add_argument(
        "--train-windows",
        type=_ints("--train-windows"),
        default=(1, 2, 4, 8),
        help="windows of the training-FLOPs table (the paper's Fig. 4: 1,2,4,8)",
    )
    p.add_argument("--cfg", type=_on_off, default=True, help="on (default): cond + uncond rows; off")
    p.add_argument("--flops-only", action="store_true", help="count FLOPs on the meta device, time nothing")
    p.add_argument(
        "--compile",
        action="store_true",
        help="torch.compile the decode step (CUDA graphs on GPU); compile time is reported apart",
    )
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (latency runs there)")
    p.add_argument("--dtype", default="auto", help="auto (bf16 on GPU, fp32 on CPU), fp32, bf16")
    p.add_argument("--repeats", type=int, default=3, help="timed runs per row (median); one warm-up run first")
    p.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch CPU threads (default 1: CPU timings are only stable single-threaded on a shared machine)",
    )
    p.add_argument("--text-tokens", type=int, default=64, help="prompt length in tokens, <bos> included")
    p.add_argument("--json", help="also write the results as JSON here (the table is printed either way)")
    p.add_argument("--markdown", help="output Markdown table")
    p.add_argument("--plot", help="folder for the figures")
    p.set_defaults(func=cmd_sweep)


def cmd_sweep(args: argparse.Namespace) -> int:
    from ts_eval.registry import require

    require("sweep")  # one line naming the extra on a core install
    from ts_eval.sweep.runner import SweepOptions, check_agreement, markdown, run_sweep, write_outputs

    for flag, path in (("--json", args.json), ("--markdown", args.markdown)):
        if path and Path(path).is_dir():
            raise UsageError(f"{flag} {path} is a folder; give a file name")
    if args.threads < 1:
        raise UsageError(f"--threads must be at least 1, got {args.threads}")
    if not args.flops_only:
        import torch

        torch.set_num_threads(args.threads)
    options = SweepOptions(
        config=args.config,
        windows=args.windows,
        resolutions=args.resolutions,
        batch_sizes=args.batch_sizes,
        train_windows=args.train_windows,
        cfg=args.cfg,
        flops_only=args.flops_only,
        compile=args.compile,
        device=args.device,
        dtype=args.dtype,
        repeats=args.repeats,
        text_tokens=args.text_tokens,
        progress=not args.quiet,
    )
    result = run_sweep(options)
    write_outputs(
        result,
        Path(args.json) if args.json else None,
        Path(args.markdown) if args.markdown else None,
        Path(args.plot) if args.plot else None,
    )
    print(markdown(result))
    disagreements = check_agreement(result)
    if disagreements:
        raise CheckFailed(f"counted and analytic FLOPs differ by more than 2%: {disagreements[0]}")
    if args.json:
        print(f"wrote {args.json}", file=sys.stderr)
    return 0
