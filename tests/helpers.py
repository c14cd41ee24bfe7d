"""Small helpers shared by tests: run the CLI in-process or as a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from ts_eval.cli import main

ROOT = Path(__file__).resolve().parent.parent


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
    return subprocess.Popen([sys.executable, "-m", "ts_eval", *map(str, args)], cwd=ROOT, env=full_env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)
