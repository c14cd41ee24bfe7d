"""The run directory (format `ts-eval/run@1`): atomic writes, append-only progress files, resume.

Progress rows are appended (and flushed) to `progress/<name>-rank<r>.jsonl` as work finishes, one file
per process, so a killed run loses at most the batch in flight and ranks never write the same file. When
a stage completes, rank 0 merges them into the canonical file in a fixed order and removes them, so a
resumed run, a run on any number of processes and an uninterrupted one end byte-identical.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO, Iterable, Iterator

from PIL import Image

from ts_eval.errors import UsageError

FORMAT = "ts-eval/run@1"

MANIFEST = "manifest.json"
PROMPTS = "prompts.jsonl"
IMAGES = "images.jsonl"
SAMPLES = "samples.jsonl"
DETECTIONS = "detections.jsonl"
SUMMARY = "summary.json"


@contextmanager
def atomic_file(path: Path) -> Iterator[BinaryIO]:
    """A binary handle on a temp file in the target's folder; fsynced and renamed over `path` only when the
    block ends without an error, so readers see the old file or the whole new one, never a part."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_atomic(path: Path, data: bytes) -> None:
    with atomic_file(path) as handle:
        handle.write(data)


def json_line(row: dict[str, Any]) -> str:
    return json.dumps(row, ensure_ascii=False, sort_keys=False, allow_nan=False) + "\n"


def write_json(path: Path, obj: Any) -> None:
    write_atomic(path, (json.dumps(obj, indent=2, ensure_ascii=False, allow_nan=False) + "\n").encode("utf-8"))


def write_jsonl(path: Path, rows: Iterable[dict[str, Any]]) -> None:
    write_atomic(path, "".join(json_line(r) for r in rows).encode("utf-8"))


def read_jsonl(path: Path, *, tolerate_torn_tail: bool = False) -> list[dict[str, Any]]:
    """Read a JSONL file; a half-written last line (killed mid-append) is dropped when tolerated."""
    if not path.exists():
        return []
    rows = []
    lines = path.read_text(encoding="utf-8").split("\n")
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            last = number == len(lines) or (number == len(lines) - 1 and not lines[-1])
            if tolerate_torn_tail and last:
                break
            raise UsageError(f"{path}: line {number} is not valid JSON") from None
    return rows


def png_bytes(image: Image.Image) -> bytes:
    """PNG bytes without timestamps or other metadata, so equal pixels give equal files."""
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="PNG", optimize=False, compress_level=6)
    return buffer.getvalue()


class RunDir:
    """Paths and file operations of one run directory."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def file(self, name: str | Path) -> Path:
        return self.path / name

    def exists(self) -> bool:
        return self.file(MANIFEST).exists()

    def image_relpath(self, prompt_id: str, sample_index: int) -> str:
        return f"images/{prompt_id}/{sample_index:04d}.png"

    # -- whole files ---------------------------------------------------------------------------------
    def read_manifest(self) -> dict[str, Any]:
        path = self.file(MANIFEST)
        if not path.exists():
            raise UsageError(f"{self.path} is not a run directory (no {MANIFEST})")
        try:
            manifest = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError:
            raise UsageError(f"{path}: malformed JSON") from None
        if manifest.get("format") != FORMAT:
            raise UsageError(f"{path}: format {manifest.get('format')!r} is not {FORMAT}")
        return manifest

    def write_manifest(self, manifest: dict[str, Any]) -> None:
        write_json(self.file(MANIFEST), {"format": FORMAT, **{k: v for k, v in manifest.items() if k != "format"}})

    def read_rows(self, name: str) -> list[dict[str, Any]]:
        return read_jsonl(self.file(name), tolerate_torn_tail=True)

    def write_rows(self, name: str, rows: Iterable[dict[str, Any]]) -> None:
        write_jsonl(self.file(name), rows)

    # -- progress ------------------------------------------------------------------------------------
    def progress_file(self, name: str, rank: int) -> Path:
        return self.path / "progress" / f"{Path(name).stem}-rank{rank}.jsonl"

    def read_all_rows(self, name: str) -> list[dict[str, Any]]:
        """The canonical file's rows, then every rank's progress rows (later rows win on conflicts)."""
        rows = self.read_rows(name)
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

    def append_rows(self, name: str | Path, rows: Iterable[dict[str, Any]]) -> None:
        """Append finished work; a torn tail from an earlier kill is cut first so every line stays whole."""
        path = self.file(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        text = "".join(json_line(r) for r in rows)
        if not text:
            return
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

    def save_image(self, image: Image.Image, prompt_id: str, sample_index: int) -> tuple[str, str]:
        """Write one PNG atomically; returns (relative path, sha256)."""
        data = png_bytes(image)
        rel = self.image_relpath(prompt_id, sample_index)
        write_atomic(self.path / rel, data)
        return rel, hashlib.sha256(data).hexdigest()
