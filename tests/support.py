"""Helpers shared by tests (imported as `from tests.support import ...`; fixtures live in conftest.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from ts_eval.cli import main

ROOT = Path(__file__).resolve().parent.parent
BUNDLED_GENAI_527 = ROOT / "tasks" / "data" / "genai-bench-527"


def cli(*args: str, capsys=None) -> tuple[int, str, str]:
    """Run `ts-eval ARGS` in-process; returns (exit code, stdout, stderr) when capsys is given."""
    code = main([str(a) for a in args])
    if capsys is None:
        return code, "", ""
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def cli_process(*args: str, env: dict | None = None, **kwargs) -> subprocess.Popen:
    """Start `python -m ts_eval ARGS` as its own process (for kill/resume and import-isolation tests)."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.Popen(
        [sys.executable, "-m", "ts_eval", *map(str, args)],
        cwd=ROOT,
        env=full_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,
    )


def shared_data_dir() -> Path | None:
    """$TS_EVAL_SHARED_DATA, else ../shared/data next to the checkout."""
    env = os.environ.get("TS_EVAL_SHARED_DATA")
    candidate = Path(env) if env else ROOT.parent / "shared" / "data"
    return candidate if candidate.is_dir() else None


def summarize_run(run_dir) -> dict[str, Any]:
    """What a deliberate forger does after editing samples.jsonl: re-record its sha256 in the manifest, then
    recompute and write summary.json. (An accidental edit is caught by the recorded sha256.)"""
    from ts_eval.store import SAMPLES, RunDir, sha256_file
    from ts_eval.store.reader import read_run
    from ts_eval.summary import summarize, write_summary

    run_dir = RunDir(getattr(run_dir, "path", run_dir))
    if run_dir.file(SAMPLES).is_file():
        digest = sha256_file(run_dir.file(SAMPLES))
        run_dir.update_manifest(lambda m: m.setdefault("files", {}).__setitem__(SAMPLES, digest))
    run = read_run(run_dir.path)
    summary = summarize(run)
    write_summary(run, summary)
    return summary


def record_edit(run_path, name: str = "samples.jsonl") -> None:
    """Re-record a hand-edited canonical file's sha256 in the manifest, as a deliberate editor would; without
    this, every reader refuses the run as damaged."""
    from ts_eval.store import RunDir, sha256_file

    run_dir = RunDir(run_path)
    digest = sha256_file(run_dir.file(name))
    run_dir.update_manifest(lambda m: m.setdefault("files", {}).__setitem__(name, digest))
