"""Content hashes of a run's files, remembered between reads (a GenEval run holds 2,212 images)."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from ts_eval.cache import default_cache_dir
from ts_eval.store.files import sha256_file


def verified_sha256(paths: list[Path]) -> dict[Path, str]:
    """sha256 of each file, remembered by (path, size, mtime, inode) so a run's thousands of images are hashed
    once, not on every read; a file changed in any ordinary way (written, copied, touched) is hashed again."""
    stats = {p: os.stat(p) for p in paths}
    keys = {p: f"{os.path.realpath(p)}\x1f{s.st_size}\x1f{s.st_mtime_ns}\x1f{s.st_ino}" for p, s in stats.items()}
    try:
        default_cache_dir().mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(default_cache_dir() / "file-hashes.sqlite", timeout=60)
        db.execute("CREATE TABLE IF NOT EXISTS hashes (key TEXT PRIMARY KEY, sha256 TEXT NOT NULL)")
    except (OSError, sqlite3.Error):
        db = None  # an unwritable cache only costs time
    known: dict[str, str] = {}
    if db is not None:
        wanted = list(keys.values())
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            known.update(
                db.execute(
                    f"SELECT key, sha256 FROM hashes WHERE key IN ({','.join('?' * len(chunk))})", chunk
                ).fetchall()
            )
    out = {p: known.get(k) or sha256_file(p) for p, k in keys.items()}
    if db is not None:
        try:
            with db:
                db.executemany(
                    "INSERT OR REPLACE INTO hashes (key, sha256) VALUES (?, ?)",
                    [(keys[p], out[p]) for p in paths if keys[p] not in known],
                )
        except sqlite3.Error:
            pass
        db.close()
    return out
