"""The run directory (format `ts-eval/run@1`): canonical files, append-only progress files, images.

Progress rows are appended (and flushed) to `progress/<name>-rank<r>.jsonl` as work finishes, one file per
process, so a killed run loses at most the image in flight and ranks never write the same file. When a
stage completes, rank 0 merges them into the canonical file in a fixed order, records its sha256 in the
manifest (`files`), and removes them: a resumed run, a run on any number of processes and an uninterrupted
one end byte-identical, and a reader can tell a canonical file that was edited or damaged afterwards.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import threading
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from ts_eval.errors import UsageError
from ts_eval.store.files import (
    IMAGE_SUFFIXES,
    encode_image,
    json_bytes,
    json_line,
    jsonl_bytes,
    read_jsonl,
    sha256_bytes,
    write_atomic,
)
from ts_eval.store.lock import LOCK, RunLock

FORMAT = "ts-eval/run@1"

MANIFEST = "manifest.json"
PROMPTS = "prompts.jsonl"
IMAGES = "images.jsonl"
SAMPLES = "samples.jsonl"
DETECTIONS = "detections.jsonl"
SUMMARY = "summary.json"
CANONICAL = (PROMPTS, IMAGES, SAMPLES, DETECTIONS)  # their sha256 live in the manifest's `files`


class RunDir:
    """Paths and file operations of one run directory."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._append_lock = threading.Lock()

    def file(self, name: str | Path) -> Path:
        return self.path / name

    def exists(self) -> bool:
        return self.file(MANIFEST).exists()

    def image_relpath(self, prompt_id: str, sample_index: int, image_format: str = "png") -> str:
        return f"images/{prompt_id}/{sample_index:04d}{IMAGE_SUFFIXES[image_format]}"

    # -- the manifest --------------------------------------------------------------------------------
    def read_manifest(self) -> dict[str, Any]:
        path = self.file(MANIFEST)
        if not path.exists():
            raise UsageError(f"{self.path} is not a run directory (no {MANIFEST})")
        try:
            manifest = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise UsageError(f"{path}: malformed JSON; the run is damaged") from None
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
            found = manifest.get("format") if isinstance(manifest, dict) else None
            raise UsageError(f"{path}: format {found!r} is not {FORMAT}")
        return manifest

    def write_manifest(self, manifest: dict[str, Any]) -> None:
        write_atomic(
            self.file(MANIFEST), json_bytes({"format": FORMAT, **{k: v for k, v in manifest.items() if k != "format"}})
        )

    def update_manifest(self, change: Callable[[dict[str, Any]], object]) -> dict[str, Any]:
        """Read, change in place, write back; only the run's lock holder calls this."""
        manifest = self.read_manifest()
        change(manifest)
        self.write_manifest(manifest)
        return manifest

    # -- canonical files -----------------------------------------------------------------------------
    def read_rows(self, name: str) -> list[dict[str, Any]]:
        return read_jsonl(self.file(name), tolerate_torn_tail=True)

    def write_rows(self, name: str, rows: Iterable[dict[str, Any]]) -> None:
        """Replace a canonical file and record its sha256 in the manifest (file first: a kill in between
        leaves a mismatch the readers report and the stage rebuilds)."""
        data = jsonl_bytes(rows)
        write_atomic(self.file(name), data)
        if name in CANONICAL:
            self.update_manifest(lambda m: m.setdefault("files", {}).__setitem__(name, sha256_bytes(data)))

    def recorded_sha256(self, name: str) -> str | None:
        files = self.read_manifest().get("files")
        return files.get(name) if isinstance(files, dict) else None

    def intact(self, name: str) -> bool:
        """Does the canonical file still hold the bytes its stage wrote? (False when it was never finalised.)"""
        recorded, path = self.recorded_sha256(name), self.file(name)
        return recorded is not None and path.is_file() and sha256_bytes(path.read_bytes()) == recorded

    # -- progress ------------------------------------------------------------------------------------
    def progress_file(self, name: str, rank: int) -> Path:
        return self.path / "progress" / f"{Path(name).stem}-rank{rank}.jsonl"

    def progress_rows(self, name: str) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        for path in sorted((self.path / "progress").glob(f"{Path(name).stem}-rank*.jsonl")):
            rows.extend(read_jsonl(path, tolerate_torn_tail=True))
        return rows

    def append_progress(self, name: str, rank: int, rows: Iterable[dict[str, Any]]) -> None:
        self.append_rows(self.progress_file(name, rank).relative_to(self.path), rows)

    def finalize_rows(self, name: str, rows: Iterable[dict[str, Any]]) -> None:
        """Write the canonical file, then drop the progress files it now contains."""
        self.write_rows(name, rows)
        for path in (self.path / "progress").glob(f"{Path(name).stem}-rank*.jsonl"):
            path.unlink()
        with contextlib.suppress(OSError):
            (self.path / "progress").rmdir()  # only when empty: other stages' progress stays

    def append_rows(self, name: str | Path, rows: Iterable[dict[str, Any]]) -> None:
        """Append finished work; a torn tail from an earlier kill is cut first so every line stays whole."""
        path = self.file(name)
        text = "".join(json_line(r) for r in rows)
        if not text:
            return
        with self._append_lock:  # image writer threads append one row each
            path.parent.mkdir(parents=True, exist_ok=True)
            if path.exists() and path.stat().st_size:
                with open(path, "rb+") as handle:
                    handle.seek(-1, os.SEEK_END)
                    if handle.read(1) != b"\n":
                        data = path.read_bytes()
                        handle.seek(0)
                        handle.truncate(data.rfind(b"\n") + 1)
            with open(path, "a", encoding="utf-8") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())

    # -- images --------------------------------------------------------------------------------------
    def save_image(self, image, prompt_id: str, sample_index: int, image_format: str = "png") -> tuple[str, str]:
        """Write one image atomically in the run's format; returns (relative path, sha256)."""
        data = encode_image(image, image_format)
        rel = self.image_relpath(prompt_id, sample_index, image_format)
        write_atomic(self.path / rel, data)
        return rel, sha256_bytes(data)

    # -- housekeeping --------------------------------------------------------------------------------
    def clear(self, patterns: list[str]) -> None:
        """Remove the named files/folders (glob patterns) and forget their recorded sha256."""
        removed = []
        for pattern in patterns:
            for path in self.path.glob(pattern):
                removed.append(path.name)
                if path.is_dir():
                    shutil.rmtree(path)
                else:
                    path.unlink(missing_ok=True)
        forget = [name for name in CANONICAL if name in removed]
        if forget and self.exists():
            self.update_manifest(lambda m: [m.get("files", {}).pop(name, None) for name in forget])

    def remove_temporaries(self) -> int:
        """Delete the `.*.tmp` files a killed atomic write leaves behind; only the lock holder calls this."""
        found = list(self.path.rglob(".*.tmp"))
        for path in found:
            path.unlink(missing_ok=True)
        return len(found)

    def lock(self) -> RunLock:
        return RunLock(self.path)

    def create(self, files: dict[str, bytes]) -> RunLock | None:
        """Make the directory whole or not at all: build it beside its final place, then rename.

        The new directory's lock is taken before the rename, so it is held from the first moment the
        directory is visible. Returns None when `self.path` appeared meanwhile (another process made it).
        """
        parent = self.path.parent
        parent.mkdir(parents=True, exist_ok=True)
        _remove_abandoned_builds(parent, self.path.name)
        build = parent / f".{self.path.name}.creating-{uuid.uuid4().hex[:12]}"
        build.mkdir()
        held = RunLock(build).acquire()
        try:
            for name, data in files.items():
                write_atomic(build / name, data)
            os.rename(build, self.path)  # replaces an empty directory; fails on a non-empty one
        except OSError as exc:
            held.release()
            shutil.rmtree(build, ignore_errors=True)
            if self.path.is_dir() and any(self.path.iterdir()):
                return None  # another process made it first: the caller opens it as an existing run
            raise exc
        except BaseException:
            held.release()
            shutil.rmtree(build, ignore_errors=True)
            raise
        held.path = self.path / LOCK
        return held


def _remove_abandoned_builds(parent: Path, name: str) -> None:
    """Half-built directories of killed runs (their lock is free) are removed; live ones are left alone."""
    for build in parent.glob(f".{name}.creating-*"):
        try:
            with RunLock(build):
                pass
        except UsageError:
            continue
        shutil.rmtree(build, ignore_errors=True)
