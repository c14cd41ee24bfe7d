"""`ts-eval submit`: pack a finished run directory as a zip with a sha256 for every member.

The run files sit at the archive root, images (optional) under `images/`, and `checksums` lists each
member in `sha256sum` format. Members carry a fixed timestamp, so the same run packs to the same bytes.
"""

from __future__ import annotations

import hashlib
import zipfile
from dataclasses import dataclass
from pathlib import Path

from ts_eval.errors import CheckFailed, UsageError
from ts_eval.leaderboard.archive import CHECKSUMS, checksums_text
from ts_eval.leaderboard.consistency import RunFiles, RunProblem, check_samples, check_summary, read_run
from ts_eval.leaderboard.trust import board_verdict
from ts_eval.official import Verdict
from ts_eval.store import DETECTIONS, IMAGES, MANIFEST, PROMPTS, SAMPLES, SUMMARY, RunDir, atomic_file
from ts_eval.tasks import load_task

_EPOCH = (1980, 1, 1, 0, 0, 0)  # the earliest zip timestamp: reproducible archives
_FILE_MODE = 0o100644 << 16  # regular file, rw-r--r--


@dataclass(frozen=True)
class SubmissionInfo:
    path: Path
    members: int
    images: int
    bytes: int
    verdict: Verdict


def _image_members(files: RunFiles) -> list[str]:
    """Every image the run lists, each present with the bytes images.jsonl recorded."""
    if not files.images:
        raise CheckFailed(f"run {files.path} has no {IMAGES}; --include-images needs the generated images")
    names = []
    for row in files.images:
        fmt = files.manifest.get("settings", {}).get("image_format", "png")
        rel = RunDir(files.path).image_relpath(row["prompt_id"], int(row["sample_index"]), fmt)
        path = files.path / rel
        if not path.is_file() or hashlib.sha256(path.read_bytes()).hexdigest() != row.get("sha256"):
            raise CheckFailed(f"run {files.path}: image {rel} is missing or does not match its sha256 in {IMAGES}")
        names.append(rel)
    return names


def _add(zf: zipfile.ZipFile, name: str, data: bytes, digests: dict[str, str]) -> None:
    info = zipfile.ZipInfo(name, date_time=_EPOCH)
    info.create_system = 3  # Unix, so the mode bits below mean what they say
    info.external_attr = _FILE_MODE
    # PNG is already compressed; deflating it again costs time and saves nothing.
    info.compress_type = zipfile.ZIP_STORED if name.endswith((".png", ".jpg")) else zipfile.ZIP_DEFLATED
    zf.writestr(info, data)
    digests[name] = hashlib.sha256(data).hexdigest()


def _task_name(files: RunFiles) -> str:
    settings = files.manifest.get("settings")
    task = settings.get("task") if isinstance(settings, dict) else None
    if not isinstance(task, dict) or not isinstance(task.get("name"), str):
        raise RunProblem(f"{MANIFEST} lacks settings.task.name")
    return task["name"]


def write_submission(
    run_path: str | Path,
    out: str | Path,
    *,
    include_images: bool = False,
    tasks_dir: str | None = None,
    allow_unofficial: bool = False,
) -> SubmissionInfo:
    """Check that the run is a whole prompt set (unless allowed), complete and its summary current, then write
    the zip atomically. A `--limit`/`--skill` run is refused up front: a board would reject the zip."""
    run_path, out = Path(run_path), Path(out)
    if not RunDir(run_path).exists():
        raise UsageError(f"{run_path} is not a run directory (no {MANIFEST})")
    if out.is_dir():
        raise UsageError(f"--out {out} is a directory; name the zip file to write")
    try:
        files = read_run(run_path)
        spec = load_task(_task_name(files), tasks_dir)
        verdict = board_verdict(spec, files.manifest)
        if verdict.subset and not allow_unofficial:
            raise CheckFailed(
                f"run {run_path} is a subset ({verdict.subset}); a board ranks whole prompt sets and "
                "would reject it: run without --limit/--skill, or pass --allow-unofficial to pack it "
                "for a board that lists subsets labelled"
            )
        check_summary(files, tasks_dir)  # reads the run through the validating reader first
        check_samples(files, spec)
    except RunProblem as exc:
        raise CheckFailed(f"run {run_path} cannot be submitted: {exc}") from None
    names = [MANIFEST, PROMPTS, SAMPLES, SUMMARY] + [n for n in (IMAGES, DETECTIONS) if (run_path / n).is_file()]
    images = _image_members(files) if include_images else []

    with atomic_file(out) as handle:
        digests: dict[str, str] = {}
        with zipfile.ZipFile(handle, "w") as zf:
            for name in names + images:
                _add(zf, name, (run_path / name).read_bytes(), digests)
            _add(zf, CHECKSUMS, checksums_text(digests).encode("ascii"), {})
    return SubmissionInfo(out, len(names) + len(images) + 1, len(images), out.stat().st_size, verdict)
