"""Open a submission zip without trusting it: names and types are checked before any byte is extracted,
and sizes and checksums while the bytes stream.

Rejected before extraction: absolute names, `..`, backslashes and drive letters (zip-slip); links,
devices and other special files; encrypted or duplicate members; names outside the run-directory
layout; more members than the limit; a member whose declared compressed size is larger than the room
its data has in the file (a lying header, or entries that overlap); members missing from, or absent
but listed in, the `checksums` file.

Header sizes are never trusted: each member streams in chunks and its real bytes are counted against
the limits (its own expansion ratio over its real compressed bytes, and the total) before a chunk is
written, so extraction stops at the first excess; its sha256 is computed on the way and compared as
soon as the member ends, so a mismatch stops extraction there. Extraction goes only into a fresh
temporary folder, written member by member through paths built here (never `extractall`).
"""

from __future__ import annotations

import hashlib
import re
import stat
import struct
import tempfile
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from ts_eval.errors import CheckFailed, UsageError
from ts_eval.store import DETECTIONS, IMAGES, MANIFEST, PROMPTS, SAMPLES, SUMMARY

CHECKSUMS = "checksums"
RUN_FILES = (MANIFEST, PROMPTS, SAMPLES, SUMMARY, IMAGES, DETECTIONS)
REQUIRED = (MANIFEST, PROMPTS, SAMPLES, SUMMARY, CHECKSUMS)
_IMAGE_NAME = re.compile(r"images/[A-Za-z0-9_.-]+/[0-9]{4}\.(png|jpg)")
_CHECKSUM_LINE = re.compile(r"([0-9a-f]{64})  (.+)")
_UNIX = 3  # ZipInfo.create_system of archives made on Unix: external_attr then carries st_mode
CHUNK = 1 << 20  # bytes read, counted and written at a time
_LOCAL_HEADER = struct.Struct("<4s22xHH")  # signature, then (after 22 bytes) name and extra-field lengths
_CHECKSUM_LINE_MAX = 512  # a checksums line: 64 hex digits, two spaces, a member name (run names are short)


@dataclass(frozen=True)
class ArchiveLimits:
    """Bounds on what a submission may hold; real runs stay far below them (GenEval with images: ~2.3k members)."""

    max_members: int = 50_000
    max_total_bytes: int = 8 << 30
    max_ratio: float = 100.0  # uncompressed/compressed per member; JSONL compresses ~3-6x, PNG ~1x

    @property
    def max_checksums_bytes(self) -> int:
        return _CHECKSUM_LINE_MAX * (self.max_members + 1)


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
    """Every member's name and type; returns the file members (directories dropped). Declared sizes that break
    a limit reject the archive early; sizes within the limits prove nothing and are counted again while streaming."""
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
            raise reject(
                archive, f"unexpected member {name!r} (allowed: run files, checksums, images/<id>/NNNN.png|jpg)"
            )
        total += info.file_size
        if total > limits.max_total_bytes:
            raise reject(archive, f"members expand to more than the limit of {limits.max_total_bytes} bytes")
        if info.file_size / max(info.compress_size, 1) > limits.max_ratio:
            raise reject(
                archive,
                f"member {name!r} expands {info.file_size / max(info.compress_size, 1):.0f}x "
                f"(limit {limits.max_ratio:.0f}x): looks like a zip bomb",
            )
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


def check_layout(archive: Path, zf: zipfile.ZipFile, infos: list[zipfile.ZipInfo]) -> None:
    """Each member's declared compressed size must fit between its data's start (after its local header) and
    the next member's header (or the central directory): a header claiming more is a lie, or two entries
    share bytes. zipfile reads at most the declared compressed size, so after this check the declared size
    bounds the real compressed bytes of each member."""
    size = archive.stat().st_size
    ordered = sorted(infos, key=lambda i: i.header_offset)
    ends = [i.header_offset for i in ordered[1:]] + [min(getattr(zf, "start_dir", size), size)]
    with open(archive, "rb") as handle:
        for info, end in zip(ordered, ends):
            handle.seek(info.header_offset)
            header = handle.read(_LOCAL_HEADER.size)
            if len(header) < _LOCAL_HEADER.size:
                raise reject(archive, f"member {info.filename!r} has no local header")
            signature, name_length, extra_length = _LOCAL_HEADER.unpack(header)
            if signature != b"PK\x03\x04":
                raise reject(archive, f"member {info.filename!r} has no local header")
            room = end - (info.header_offset + _LOCAL_HEADER.size + name_length + extra_length)
            if info.compress_size > room:
                raise reject(
                    archive,
                    f"member {info.filename!r} declares {info.compress_size} compressed bytes, "
                    f"but its data has room for {max(room, 0)}: a lying header or overlapping "
                    "entries",
                )


class _CountedReads:
    """The archive file as zipfile reads it, counting the bytes read: a member's real compressed bytes are what
    was read while it streamed, whatever its header declares."""

    def __init__(self, path: Path):
        self._handle = open(path, "rb")  # noqa: SIM115 - held open across reads, closed by close()
        self.count = 0

    def read(self, n: int = -1) -> bytes:
        data = self._handle.read(n)
        self.count += len(data)
        return data

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._handle.seek(offset, whence)

    def tell(self) -> int:
        return self._handle.tell()

    def seekable(self) -> bool:
        return True

    def close(self) -> None:
        self._handle.close()


class _Budget:
    """Real bytes extracted so far, against the total limit."""

    def __init__(self, archive: Path, limits: ArchiveLimits):
        self.archive, self.limits, self.used = archive, limits, 0

    def take(self, n: int) -> None:
        if self.used + n > self.limits.max_total_bytes:
            raise reject(self.archive, f"members expand to more than the limit of {self.limits.max_total_bytes} bytes")
        self.used += n


def _chunks(
    archive: Path,
    zf: zipfile.ZipFile,
    reads: _CountedReads,
    info: zipfile.ZipInfo,
    limits: ArchiveLimits,
    budget: _Budget,
    cap: int | None = None,
) -> Iterator[bytes]:
    """A member's real bytes, chunk by chunk; each chunk is counted against the limits before the caller sees it:
    its expansion over the compressed bytes actually read, the total, and `cap` where given."""
    produced, start = 0, reads.count
    with zf.open(info) as source:
        while chunk := source.read(CHUNK):
            produced += len(chunk)
            if cap is not None and produced > cap:
                raise reject(archive, f"member {info.filename!r} is longer than {cap} bytes")
            compressed = reads.count - start
            if produced > limits.max_ratio * max(compressed, 1):
                raise reject(
                    archive,
                    f"member {info.filename!r} expands beyond {limits.max_ratio:.0f}x the "
                    f"{compressed} compressed bytes read: looks like a zip bomb",
                )
            budget.take(len(chunk))
            yield chunk


def _extract(
    archive: Path,
    zf: zipfile.ZipFile,
    reads: _CountedReads,
    info: zipfile.ZipInfo,
    root: Path,
    limits: ArchiveLimits,
    budget: _Budget,
    expected: str,
) -> None:
    """Stream one member to root/name (which must stay inside root), counting and hashing as it goes."""
    target = (root / PurePosixPath(info.filename)).resolve()
    if not target.is_relative_to(root):
        raise reject(archive, f"member {info.filename!r} would be written outside the extraction folder")
    target.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    with open(target, "xb") as sink:
        for chunk in _chunks(archive, zf, reads, info, limits, budget):
            digest.update(chunk)
            sink.write(chunk)
    if digest.hexdigest() != expected:
        raise reject(archive, f"checksum mismatch for {info.filename!r}")


@contextmanager
def extracted(archive: str | Path, limits: ArchiveLimits = ArchiveLimits()) -> Iterator[Path]:
    """Check and extract a submission into a temporary folder that is removed on exit."""
    archive = Path(archive)
    if not archive.is_file():
        raise UsageError(f"{archive}: no such file")
    reads = _CountedReads(archive)
    try:
        zf = zipfile.ZipFile(reads)  # type: ignore[arg-type]  # a file object: read, seek, tell
    except (zipfile.BadZipFile, OSError) as exc:
        reads.close()
        raise reject(archive, f"not a readable zip file ({exc})") from None
    # closing(reads): zipfile does not close a file object it was given.
    with closing(reads), zf, tempfile.TemporaryDirectory(prefix="ts-eval-submission-") as tmp:
        root = Path(tmp).resolve()
        files = check_members(archive, zf.infolist(), limits)
        check_layout(archive, zf, zf.infolist())
        budget = _Budget(archive, limits)
        by_name = {info.filename: info for info in files}
        try:
            text = b"".join(
                _chunks(archive, zf, reads, by_name[CHECKSUMS], limits, budget, cap=limits.max_checksums_bytes)
            )
            listed = parse_checksums(archive, text.decode("utf-8", errors="replace"))
            members = set(by_name) - {CHECKSUMS}
            for name in sorted(members | set(listed)):  # every member accounted for before a byte is written
                if name not in listed:
                    raise reject(archive, f"member {name!r} is not listed in {CHECKSUMS}")
                if name not in members:
                    raise reject(archive, f"{CHECKSUMS} lists {name!r}, which the archive lacks")
            (root / CHECKSUMS).write_bytes(text)
            for info in files:
                if info.filename != CHECKSUMS:
                    _extract(archive, zf, reads, info, root, limits, budget, listed[info.filename])
        except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, EOFError, ValueError, zlib.error) as exc:
            raise reject(archive, f"a member cannot be read ({exc})") from None
        yield root
