"""`ts-eval submit` and `ts-eval leaderboard add|show|remove`: argument parsing only."""

from __future__ import annotations

import argparse
import secrets
import sys
from typing import Literal


def cmd_submit(args: argparse.Namespace) -> int:
    from ts_eval.leaderboard.submission import write_submission

    info = write_submission(
        args.run,
        args.out,
        include_images=args.include_images,
        tasks_dir=args.tasks_dir,
        allow_unofficial=args.allow_unofficial,
    )
    listed = (
        ""
        if info.verdict.official and not info.verdict.subset
        else ("; `leaderboard add` lists it only with --allow-unofficial")
    )
    print(
        f"wrote {info.path} ({info.members} members, {info.images} images, {info.bytes} bytes); "
        f"verdict: {info.verdict.label}{listed}"
    )
    return 0


def _name(name: str) -> str:
    from ts_eval.errors import UsageError

    if not name.strip() or len(name) > 200 or any(ord(c) < 32 for c in name):
        raise UsageError(f"--name {name!r}: give 1-200 printable characters")
    return name


def _verify_count(value: str | None) -> int | Literal["all"] | None:
    """--verify: None (not asked), "all", or a positive number of images."""
    from ts_eval.errors import UsageError

    if value is None:
        return None
    if value == "all":
        return "all"
    try:
        count = int(value)
    except ValueError:
        count = 0
    if count < 1:
        raise UsageError(f"--verify {value!r}: give a number of images (at least 1) or 'all'")
    return count


def _fraction(value: float) -> float:
    from ts_eval.errors import UsageError

    if not 0 < value <= 1:  # also refuses nan
        raise UsageError(f"--forged-fraction {value!r}: give a fraction in (0, 1], e.g. 0.05")
    return value


def cmd_add(args: argparse.Namespace) -> int:
    from ts_eval.leaderboard import db
    from ts_eval.leaderboard.archive import ArchiveLimits, extracted
    from ts_eval.leaderboard.trust import Trust
    from ts_eval.leaderboard.validate import validate_run
    from ts_eval.leaderboard.verify import VerifyOptions, verify_scores

    limits = ArchiveLimits(
        max_members=args.max_members, max_total_bytes=int(args.max_size_mb * (1 << 20)), max_ratio=args.max_ratio
    )
    name = None if args.name is None else _name(args.name)
    verify, forged = _verify_count(args.verify), _fraction(args.forged_fraction)
    # Everything is checked inside the temporary folder before the board is even opened.
    with extracted(args.submission, limits) as root:
        validated = validate_run(
            root, args.submission, data=args.data, tasks_dir=args.tasks_dir, allow_unofficial=args.allow_unofficial
        )
        candidate = validated.candidate
        trust = Trust.self_reported(candidate.n_prompts * candidate.n_samples)
        if verify is not None:
            seed = args.verify_seed if args.verify_seed is not None else secrets.randbits(31)
            options = VerifyOptions(
                k=None if verify == "all" else verify,
                seed=seed,
                tolerance=args.verify_tolerance,
                device=args.device,
                dtype=args.dtype,
            )
            checked = verify_scores(validated, options, args.submission)
            trust = Trust.verified(trust.images, checked, None if verify == "all" else seed, forged)
    conn = db.connect(args.db)
    try:
        entry = db.add_submission(conn, candidate, name=name or _name(candidate.model), trust=trust)
    finally:
        conn.close()
    print(
        f"added #{entry} to {args.db}: {candidate.task} {candidate.variant} {candidate.split}, "
        f"{candidate.n_prompts} prompts; {candidate.verdict.label}; {trust.explain()}"
    )
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ts_eval.errors import UsageError
    from ts_eval.leaderboard import db
    from ts_eval.leaderboard.show import ranked_rows, render
    from ts_eval.store import write_atomic
    from ts_eval.tasks import load_task

    spec = load_task(args.task, args.tasks_dir)
    split, _ = spec.split_tag(args.split)
    conn = db.connect(args.db, create=False)
    try:
        entries = db.submissions(conn, spec.name, split, args.variant)
    finally:
        conn.close()
    variants = sorted({e["variant"] for e in entries})
    if len(variants) > 1:
        raise UsageError(f"the {spec.name} {split} board holds variants {', '.join(variants)}; pass --variant")
    variant = args.variant or (variants[0] if variants else "")
    title = f"{spec.title}: {split} split" + (f", variant {variant}" if variant else "")
    text = render(spec, ranked_rows(spec, entries), args.format, title=title)
    if args.out:
        write_atomic(Path(args.out), (text + "\n").encode("utf-8"))
        print(f"wrote {args.out}", file=sys.stderr)
    else:
        print(text)
    return 0


def cmd_remove(args: argparse.Namespace) -> int:
    from ts_eval.leaderboard import db

    conn = db.connect(args.db, create=False)
    try:
        name = db.remove_submission(conn, args.id)
    finally:
        conn.close()
    print(f"removed #{args.id} ({name}) from {args.db}")
    return 0


def register(sub) -> None:
    p = sub.add_parser("submit", help="pack a finished run as a leaderboard submission zip (with checksums)")
    p.add_argument("run", help="run directory")
    p.add_argument("--out", required=True, help="zip file to write")
    p.add_argument("--include-images", action="store_true", help="add the images (needed for `add --verify`)")
    p.add_argument(
        "--allow-unofficial",
        action="store_true",
        help="pack a --limit/--skill run too (a board lists it only with `add --allow-unofficial`)",
    )
    p.add_argument("--tasks-dir", help="extra folder of task specs (*.yaml)")
    p.set_defaults(func=cmd_submit)

    board = sub.add_parser("leaderboard", help="validate, store and show leaderboard submissions (SQLite)")
    actions = board.add_subparsers(dest="action", required=True, parser_class=type(board))

    p = actions.add_parser("add", help="validate a submission zip and add it to the board")
    p.add_argument("submission", help="zip written by `ts-eval submit`")
    p.add_argument("--db", required=True, help="board file (created when missing)")
    p.add_argument("--name", help="entry name (default: the generator's name)")
    p.add_argument(
        "--allow-unofficial",
        action="store_true",
        help="list unofficial and subset runs too, unranked and labelled with their verdict",
    )
    p.add_argument(
        "--verify",
        metavar="K|all",
        help="re-score K random images (or all) with the recorded scorer; the entry is then 'verified'",
    )
    p.add_argument(
        "--forged-fraction",
        type=float,
        default=0.05,
        help="for --verify K: report and record the chance of catching this fraction of forged images (default 0.05)",
    )
    p.add_argument("--verify-seed", type=int, help="seed choosing the images (default: random, printed)")
    p.add_argument("--verify-tolerance", type=float, default=0.01, help="largest accepted score difference")
    p.add_argument("--device", default="auto", help="device for --verify")
    p.add_argument("--dtype", default="auto", help="dtype for --verify")
    p.add_argument("--data", help="folder holding the task's official data files (skips the download)")
    p.add_argument("--tasks-dir", help="extra folder of task specs (*.yaml)")
    p.add_argument("--max-members", type=int, default=50_000, help="largest number of archive members")
    p.add_argument("--max-size-mb", type=float, default=8192, help="largest total uncompressed size")
    p.add_argument("--max-ratio", type=float, default=100.0, help="largest compression ratio of one member")
    p.set_defaults(func=cmd_add)

    p = actions.add_parser("show", help="print a board: ranked entries with per-group means and CIs")
    p.add_argument("--db", required=True)
    p.add_argument("--task", required=True)
    p.add_argument("--split", help="default: the task's default split")
    p.add_argument("--variant", help="needed when the board holds several variants of the task")
    p.add_argument("--format", default="md", help="md, csv, json or html")
    p.add_argument("--out", help="write to this file instead of printing")
    p.add_argument("--tasks-dir")
    p.set_defaults(func=cmd_show)

    p = actions.add_parser("remove", help="delete an entry (maintainers)")
    p.add_argument("id", type=int, help="entry id, as `show` prints it")
    p.add_argument("--db", required=True)
    p.set_defaults(func=cmd_remove)
