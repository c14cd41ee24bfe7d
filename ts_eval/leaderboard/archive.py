"""Open a submission zip without trusting it: every member is checked before any byte is extracted.

Rejected: absolute names, `..`, backslashes and drive letters (zip-slip); links, devices and other
special files; encrypted or duplicate members; names outside the run-directory layout; more members or
bytes than the limits allow; members that expand far more than real run files do (zip bombs); and any
member whose sha256 differs from the `checksums` file. Extraction goes only into a fresh temporary
folder, written member by member through paths built here (never `extractall`).
"""

from __future__ import annotations

import hashlib
import re
import stat
import tempfile
import zipfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Iterator

from ts_eval.errors import CheckFailed, UsageError
from ts_eval.store import DETECTIONS, IMAGES, MANIFEST, PROMPTS, SAMPLES, SUMMARY

CHECKSUMS = "checksums"
RUN_FILES = (MANIFEST, PROMPTS, SAMPLES, SUMMARY, IMAGES, DETECTIONS)
REQUIRED = (MANIFEST, PROMPTS, SAMPLES, SUMMARY, CHECKSUMS)
_IMAGE_NAME = re.compile(r"images/[A-Za-z0-9_.-]+/[0-9]{4}\.(png|jpg)")
_CHECKSUM_LINE = re.compile(r"([0-9a-f]{64})  (.+)")
_UNIX = 3  # ZipInfo.create_system of archives made on Unix: external_attr then carries st_mode


@dataclass(frozen=True)
class ArchiveLimits:
    """Bounds on what a submission may hold; real runs stay far below them (GenEval with images: ~2.3k members)."""

    max_members: int = 50_000
    max_total_bytes: int = 8 << 30
    max_ratio: float = 100.0  # uncompressed/compressed per member; JSONL compresses ~3-6x, PNG ~1x


class Rejected(CheckFailed):
    """A submission that fails validation: one line, exit code 1, nothing stored."""


def reject(archive: Path, reason: str) -> Rejected:
    return Rejected(f"submission {archive} rejected: {reason}")


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def checksums_text(digests: dict[str, str]) -> str:
    """`sha256sum` format, sorted by name, so `sha256sum -c checksums` works after unzipping."""
    return "".join(f"{digests[name]}  {name}\n" for name in sorted(digests))


def _name_problem(name: str) -> str | None:
    if not name or "\x00" in name or "\\" in name:
        return "has an empty name, a NUL byte or a backslash"
    if name.startswith("/") or re.match(r"[A-Za-z]:", name):
        return "has an absolute path"
    if any(part in ("..", ".", "") for part in name.rstrip("/").split("/")):
        return "has a '..', '.' or empty path component"
    return None


def _type_problem(info: zipfile.ZipInfo) -> str | None:
    if info.flag_bits & 0x1:
        return "is encrypted"
    if info.create_system != _UNIX:
        return None
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        return "is a symbolic link"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) or stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode):
        return "is a device or other special file"
    return None


def _is_dir(info: zipfile.ZipInfo) -> bool:
    return info.filename.endswith("/") or (info.create_system == _UNIX and stat.S_ISDIR(info.external_attr >> 16))


def check_members(archive: Path, infos: list[zipfile.ZipInfo], limits: ArchiveLimits) -> list[zipfile.ZipInfo]:
    """Every member's name, type and declared size; returns the file members (directories dropped)."""
    if len(infos) > limits.max_members:
        raise reject(archive, f"{len(infos)} members exceed the limit of {limits.max_members}")
    seen: set[str] = set()
    files = []
    total = 0
    for info in infos:
        name = info.filename
        problem = _name_problem(name) or _type_problem(info)
        if problem:
            raise reject(archive, f"member {name!r} {problem}")
        if name in seen:
            raise reject(archive, f"member {name!r} appears twice")
        seen.add(name)
        if _is_dir(info):
            if not (name.rstrip("/") == "images" or _IMAGE_NAME.fullmatch(name.rstrip("/") + "/0000.png")):
                raise reject(archive, f"unexpected directory {name!r}")
            continue
        if name not in RUN_FILES and name != CHECKSUMS and not _IMAGE_NAME.fullmatch(name):
            raise reject(archive, f"unexpected member {name!r} (allowed: run files, checksums, images/<id>/NNNN.png|jpg)")
        total += info.file_size
        if total > limits.max_total_bytes:
            raise reject(archive, f"members expand to more than the limit of {limits.max_total_bytes} bytes")
        if info.file_size / max(info.compress_size, 1) > limits.max_ratio:
            raise reject(archive, f"member {name!r} expands {info.file_size / max(info.compress_size, 1):.0f}x "
                                  f"(limit {limits.max_ratio:.0f}x): looks like a zip bomb")
        files.append(info)
    missing = [name for name in REQUIRED if name not in seen]
    if missing:
        raise reject(archive, f"missing member(s): {', '.join(missing)}")
    return files


def parse_checksums(archive: Path, text: str) -> dict[str, str]:
    digests: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        match = _CHECKSUM_LINE.fullmatch(line)
        if not match:
            raise reject(archive, f"{CHECKSUMS} line {number} is not '<sha256>  <name>'")
        digest, name = match.groups()
        if name in digests:
            raise reject(archive, f"{CHECKSUMS} lists {name!r} twice")
        digests[name] = digest
    return digests


def _extract(archive: Path, zf: zipfile.ZipFile, info: zipfile.ZipInfo, root: Path) -> str:
    """Copy one member to root/name (which must stay inside root); returns its sha256."""
    target = (root / PurePosixPath(info.filename)).resolve()
    if not target.is_relative_to(root):
        raise reject(archive, f"member {info.filename!r} would be written outside the extraction folder")
    target.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    # zipfile stops at the declared size and checks the CRC, so a lying header cannot expand further.
    with zf.open(info) as source, open(target, "xb") as sink:
        for chunk in iter(lambda: source.read(1 << 20), b""):
            digest.update(chunk)
            sink.write(chunk)
    return digest.hexdigest()


@contextmanager
def extracted(archive: str | Path, limits: ArchiveLimits = ArchiveLimits()) -> Iterator[Path]:
    """Check and extract a submission into a temporary folder that is removed on exit."""
    archive = Path(archive)
    if not archive.is_file():
        raise UsageError(f"{archive}: no such file")
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as exc:
        raise reject(archive, f"not a readable zip file ({exc})") from None
    with zf, tempfile.TemporaryDirectory(prefix="ts-eval-submission-") as tmp:
        root = Path(tmp).resolve()
        files = check_members(archive, zf.infolist(), limits)
        try:
            digests = {info.filename: _extract(archive, zf, info, root) for info in files}
        except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, EOFError, ValueError) as exc:
            raise reject(archive, f"a member cannot be read ({exc})") from None
        listed = parse_checksums(archive, (root / CHECKSUMS).read_text(encoding="utf-8", errors="replace"))
        members = set(digests) - {CHECKSUMS}
        for name in sorted(members | set(listed)):
            if name not in listed:
                raise reject(archive, f"member {name!r} is not listed in {CHECKSUMS}")
            if name not in members:
                raise reject(archive, f"{CHECKSUMS} lists {name!r}, which the archive lacks")
            if listed[name] != digests[name]:
                raise reject(archive, f"checksum mismatch for {name!r}")
        yield root
