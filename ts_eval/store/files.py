"""Files the run store writes and reads: atomic replacement, JSON lines, content hashes, image encoding."""

from __future__ import annotations

import hashlib
import io
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

from ts_eval.errors import UsageError

# Image encodings a run can store. JPEG is what GenAI-Bench's official generate.py saves (PIL's defaults).
IMAGE_SUFFIXES = {"png": ".png", "jpeg": ".jpg"}

_umask_lock = threading.Lock()
_umask: int | None = None


def _file_mode() -> int:
    """0o666 less the process umask: the mode `open()` would give, which mkstemp's 0600 does not."""
    global _umask
    with _umask_lock:
        if _umask is None:
            _umask = os.umask(0o022)
            os.umask(_umask)
        return 0o666 & ~_umask


@contextmanager
def atomic_file(path: Path) -> Iterator[BinaryIO]:
    """A binary handle on a temp file in the target's folder; fsynced and renamed over `path` only when the
    block ends without an error, so readers see the old file or the whole new one, never a part."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, _file_mode())
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


def json_bytes(obj: Any) -> bytes:
    return (json.dumps(obj, indent=2, ensure_ascii=False, allow_nan=False) + "\n").encode("utf-8")


def jsonl_bytes(rows: Iterable[dict[str, Any]]) -> bytes:
    return "".join(json_line(r) for r in rows).encode("utf-8")


def write_json(path: Path, obj: Any) -> None:
    write_atomic(path, json_bytes(obj))


def write_jsonl(path: Path, rows: Iterable[dict[str, Any]]) -> None:
    write_atomic(path, jsonl_bytes(rows))


def read_jsonl(path: Path, *, tolerate_torn_tail: bool = False) -> list[dict[str, Any]]:
    """Read a JSONL file; a half-written last line (killed mid-append) is dropped when tolerated."""
    if not path.exists():
        return []
    rows = []
    try:
        lines = path.read_text(encoding="utf-8").split("\n")
    except UnicodeDecodeError:
        raise UsageError(f"{path}: not UTF-8 text") from None
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


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def fingerprint(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


def encode_image(image, image_format: str) -> bytes:
    """The bytes a run stores for an image: PNG without timestamps or other metadata (equal pixels, equal
    files), or JPEG exactly as PIL saves it by default (quality 75), as GenAI-Bench's generate.py does."""
    buffer = io.BytesIO()
    rgb = image.convert("RGB")
    if image_format == "png":
        rgb.save(buffer, format="PNG", optimize=False, compress_level=6)
    elif image_format == "jpeg":
        rgb.save(buffer, format="JPEG")
    else:
        raise UsageError(f"unknown image format {image_format!r}; choose one of: {', '.join(IMAGE_SUFFIXES)}")
    return buffer.getvalue()


def png_bytes(image) -> bytes:
    return encode_image(image, "png")


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def environment() -> dict[str, Any]:
    env: dict[str, Any] = {"python": platform.python_version(), "platform": platform.platform()}
    torch = sys.modules.get("torch")  # recorded when a backend loaded it; never imported just to report it
    if torch is not None:
        env["torch"] = torch.__version__
        env["cuda"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return env


def git_sha(package_file: str) -> str | None:
    root = Path(package_file).resolve().parent.parent
    if not (root / ".git").exists():
        return None
    try:
        out = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None
