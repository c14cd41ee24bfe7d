"""Weights recognised by content: which files a Hugging Face folder's loader reads, and their sha256.

A run is official only when its scorer loaded the official files, whatever path or name they came by. The
sha256 of a file in the Hugging Face cache is free: the cache stores each large (LFS) file under its sha256
(the Hub's value; huggingface_hub checks the size on download). Any other file is hashed once and the
result remembered by (path, size, mtime_ns), so a 45 GB model folder is not hashed again on every run.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
from contextlib import closing
from pathlib import Path

from ts_eval.errors import UsageError
from ts_eval.store.files import sha256_file

_SHA256 = re.compile(r"[0-9a-f]{64}")

# transformers' `from_pretrained` order of preference for a folder's weights (safetensors first).
WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)


def hf_blob_sha256(path: Path) -> str | None:
    """The sha256 in the name of a Hugging Face cache blob this path links to (LFS files only)."""
    if not path.is_symlink():
        return None
    target = Path(os.path.realpath(path))
    if target.parent.name == "blobs" and _SHA256.fullmatch(target.name):
        return target.name
    return None


class HashCache:
    """sha256 of local files keyed by (absolute path, size, mtime_ns), kept in one SQLite file."""

    def __init__(self, directory: Path | None = None):
        from ts_eval.cache import default_cache_dir

        self.directory = Path(directory) if directory else default_cache_dir()

    def sha256(self, path: Path) -> str:
        blob = hf_blob_sha256(path)
        if blob:
            return blob
        real = Path(os.path.realpath(path))
        info = real.stat()
        key = (str(real), info.st_size, info.st_mtime_ns)
        self.directory.mkdir(parents=True, exist_ok=True)
        with closing(sqlite3.connect(self.directory / "sha256.sqlite", timeout=60)) as db, db:
            db.execute(
                "CREATE TABLE IF NOT EXISTS files (path TEXT, size INTEGER, mtime_ns INTEGER, sha256 TEXT, "
                "PRIMARY KEY (path, size, mtime_ns))"
            )
            row = db.execute("SELECT sha256 FROM files WHERE path=? AND size=? AND mtime_ns=?", key).fetchone()
            if row:
                return row[0]
            digest = sha256_file(real)
            db.execute("INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?)", (*key, digest))
            return digest


def weight_files(names: set[str] | list[str], read_index) -> list[str]:
    """The weight files transformers loads from a folder holding `names`; `read_index(name)` returns an index's text."""
    names = set(names)
    for candidate in WEIGHT_FILES:
        if candidate in names:
            if candidate.endswith(".index.json"):
                try:
                    shards = sorted(set(json.loads(read_index(candidate))["weight_map"].values()))
                except (ValueError, KeyError, TypeError, AttributeError):
                    raise UsageError(f"{candidate} is not a weight index (no weight_map)") from None
                return [candidate, *shards]
            return [candidate]
    return []


def folder_sha256(folder: Path, files: list[str], cache: HashCache) -> dict[str, str]:
    """sha256 of the named files of a local folder; a missing one is a one-line error naming the folder."""
    out = {}
    for name in files:
        path = folder / name
        if not path.is_file():
            raise UsageError(f"{folder}: {name} is missing (a model folder needs it)")
        out[name] = cache.sha256(path)
    return out
