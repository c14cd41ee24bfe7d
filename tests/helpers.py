"""Small helpers shared by tests: run the CLI in-process or as a subprocess."""

from __future__ import annotations

import hashlib
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


# What the Hub stores in LFS; the Hugging Face cache names those blobs by sha256, other files by git sha1.
LFS_FILES = {"pytorch_model.bin", "model.safetensors", "spiece.model"}


def add_to_hf_cache(cache: Path, repo: str, revision: str, folder: Path, *, ref: str | None = None,
                    repo_type: str = "model") -> Path:
    """Lay out the files of `folder` as huggingface_hub's cache does (blobs, snapshot links, refs)."""
    root = cache / f"{repo_type}s--{repo.replace('/', '--')}"
    (root / "blobs").mkdir(parents=True, exist_ok=True)
    snapshot = root / "snapshots" / revision
    snapshot.mkdir(parents=True, exist_ok=True)
    for file in sorted(folder.iterdir()):
        data = file.read_bytes()
        blob = (hashlib.sha256(data).hexdigest() if file.name in LFS_FILES
                else hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest())
        (root / "blobs" / blob).write_bytes(data)
        (snapshot / file.name).symlink_to(Path("..", "..", "blobs", blob))
    if ref:
        (root / "refs").mkdir(exist_ok=True)
        (root / "refs" / ref).write_text(revision)
    return snapshot
