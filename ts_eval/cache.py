"""A content-addressed score cache shared by all runs: (scorer settings, image bytes, prompt) -> result.

Scoring is the expensive half of an evaluation (an 11B VQA model, a detector); re-scoring the same image
for the same prompt with the same scorer settings is never needed, whichever run directory it sits in.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from pathlib import Path
from typing import Any


def default_cache_dir() -> Path:
    return Path(os.environ.get("TS_EVAL_CACHE_DIR") or Path.home() / ".cache" / "ts-eval")


def cache_key(scorer_fingerprint: str, image_sha256: str, prompt: str, metadata: dict[str, Any]) -> str:
    blob = json.dumps([scorer_fingerprint, image_sha256, prompt, metadata], sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class ScoreCache:
    def __init__(self, directory: Path | None = None):
        directory = Path(directory) if directory else default_cache_dir()
        directory.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(directory / "scores.sqlite", timeout=60)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS scores (key TEXT PRIMARY KEY, value TEXT NOT NULL)")

    def get_many(self, keys: list[str]) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for start in range(0, len(keys), 500):  # SQLite's bound-parameter limit
            chunk = keys[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for key, value in self._db.execute(f"SELECT key, value FROM scores WHERE key IN ({marks})", chunk):
                found[key] = json.loads(value)
        return found

    def put_many(self, items: dict[str, Any]) -> None:
        with self._db:
            self._db.executemany(
                "INSERT OR REPLACE INTO scores (key, value) VALUES (?, ?)",
                [(k, json.dumps(v, ensure_ascii=False)) for k, v in items.items()],
            )

    def close(self) -> None:
        self._db.close()
