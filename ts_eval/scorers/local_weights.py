"""A cheap identity for weights on local disk, for a scorer's `describe()`.

The score cache is keyed by `describe()`; with a local path alone, a checkpoint replaced at the same path
would reuse stale scores. Hashing tens of GB on each run is too slow, so file names, sizes and mtimes stand in.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path


def is_local(path: str) -> bool:
    return bool(path) and os.path.exists(path)


def stamp(path: str) -> str | None:
    """sha256 over (relative name, size, mtime) of every file under `path`; None for a hub id."""
    if not is_local(path):
        return None
    root = Path(path)
    files = sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else [root]
    digest = hashlib.sha256()
    for file in files:
        info = file.stat()
        name = file.relative_to(root).as_posix() if root.is_dir() else file.name
        digest.update(f"{name}\x1f{info.st_size}\x1f{info.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]
