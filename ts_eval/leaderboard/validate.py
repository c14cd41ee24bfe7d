"""Is an extracted submission a whole, official run of its task? Returns what the board stores.

Checks, in order: the manifest names a known task, variant and split at the version this ts-eval has;
the run is official and not a subset, by the verdict recomputed from its manifest (unless allowed, see
`trust`); `prompts.jsonl` is exactly the official prompt set of that split (or the subset the manifest
declares) at the pinned data revision (loaded and sha256-checked through `resolve_data`); every prompt
has every sample, each in range; the summary equals the one recomputed from the samples; included
images match `images.jsonl`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ts_eval.errors import UsageError
from ts_eval.leaderboard.archive import Rejected, reject
from ts_eval.leaderboard.consistency import (
    RunFiles,
    RunProblem,
    check_samples,
    check_summary,
    n_samples,
    read_run,
    run_metric,
)
from ts_eval.leaderboard.trust import admit, board_verdict, declared_subset
from ts_eval.official import Verdict
from ts_eval.records import Prompt
from ts_eval.store import DETECTIONS, IMAGES, PROMPTS, SAMPLES, RunDir, read_jsonl
from ts_eval.tasks import TaskSpec, load_task
from ts_eval.tasks.data import resolve_data


@dataclass
class Candidate:
    """A validated submission, as the board stores it."""

    task: str
    task_version: int
    variant: str
    split: str
    metric: str
    model: str
    scorer: str
    verdict: Verdict  # recomputed from the manifest with the task's official recipe
    n_samples: int
    n_prompts: int
    summary: dict[str, Any]
    manifest: dict[str, Any]
    content_sha256: str  # of samples.jsonl: the same scores submitted twice are the same entry
    ts_eval_version: str | None
    run_created: str | None
    images: int


@dataclass
class Validated:
    candidate: Candidate
    spec: TaskSpec
    files: RunFiles


def _comparable(row: dict[str, Any]) -> dict[str, Any]:
    """A prompt row as the task defines it; a rewrite fed to the generator is allowed and not compared."""
    try:
        return Prompt.from_row(row).to_row() | {"rewritten_prompt": None}
    except (KeyError, TypeError, AttributeError):
        return {"invalid": row}


def official_prompts(spec: TaskSpec, variant: str, split: str, data: str | None) -> list[Prompt]:
    """The task's prompts for a split at the pinned revision; a missing data file is the board's problem (exit 2)."""
    from ts_eval.prepare import select_prompts

    files = resolve_data(spec, variant, data)
    return select_prompts(spec, spec.module.load_prompts(files), split, None, None)[1]


def check_prompts(archive: Path, rows: list[dict[str, Any]], official: list[Prompt], label: str) -> None:
    submitted: dict[Any, dict[str, Any]] = {}  # keyed by whatever the archive wrote as prompt_id
    for row in rows:
        pid = row.get("prompt_id")
        if pid in submitted:
            raise reject(archive, f"{PROMPTS} lists prompt_id {pid!r} twice")
        submitted[pid] = _comparable(row)
    expected = {p.prompt_id: _comparable(p.to_row()) for p in official}
    extra = [pid for pid in submitted if pid not in expected]
    if extra:
        raise reject(archive, f"{PROMPTS} holds prompt_id {extra[0]!r}, which is not in the official {label} set")
    changed = [pid for pid in submitted if submitted[pid] != expected[pid]]
    if changed:
        raise reject(
            archive, f"prompt {changed[0]!r} differs from the official {label} set ({len(changed)} prompt(s) differ)"
        )
    missing = [pid for pid in expected if pid not in submitted]
    if missing:
        raise reject(
            archive,
            f"missing prompts: {len(missing)} of the {len(expected)} official {label} prompts "
            f"are absent (first: {missing[0]})",
        )


def check_images(archive: Path, files: RunFiles) -> int:
    """Included images must be exactly those images.jsonl lists, with the recorded sha256."""
    folder = files.path / "images"
    present = (
        {p.relative_to(files.path).as_posix() for p in folder.rglob("*") if p.is_file()} if folder.is_dir() else set()
    )
    if not present:
        return 0
    run = RunDir(files.path)
    listed = {}
    for row in files.images:
        try:
            fmt = files.manifest.get("settings", {}).get("image_format", "png")
            listed[run.image_relpath(row["prompt_id"], int(row["sample_index"]), fmt)] = row["sha256"]
        except (KeyError, TypeError, ValueError):
            raise reject(archive, f"{IMAGES} has a row without prompt_id, sample_index and sha256") from None
    unlisted, absent = sorted(present - set(listed)), sorted(set(listed) - present)
    if unlisted:
        raise reject(archive, f"image {unlisted[0]} is not listed in {IMAGES}")
    if absent:
        raise reject(
            archive, f"missing samples: {len(absent)} image(s) listed in {IMAGES} are absent (first: {absent[0]})"
        )
    for rel in sorted(present):
        if hashlib.sha256((files.path / rel).read_bytes()).hexdigest() != listed[rel]:
            raise reject(archive, f"image {rel} does not match its sha256 in {IMAGES}")
    return len(present)


def _model_label(generator: Any) -> str:
    """The generator's name, plus a short checkpoint hash so two checkpoints of one model tell apart."""
    if not isinstance(generator, dict):
        return "unknown"
    checkpoint = generator.get("checkpoint_sha256")
    return str(generator.get("name", "unknown")) + (f"@{str(checkpoint)[:12]}" if checkpoint else "")


def _task_settings(archive: Path, manifest: dict[str, Any]) -> dict[str, Any]:
    task = manifest.get("settings", {}).get("task") if isinstance(manifest.get("settings"), dict) else None
    if not isinstance(task, dict) or not all(
        isinstance(task.get(k), (str, int)) for k in ("name", "version", "variant", "split")
    ):
        raise reject(archive, "manifest.json lacks settings.task (name, version, variant, split)")
    return task


def validate_run(
    root: Path, archive: Path, *, data: str | None = None, tasks_dir: str | None = None, allow_unofficial: bool = False
) -> Validated:
    """All checks on an extracted submission; raises `Rejected` with the first reason found."""
    try:
        files = read_run(root)
    except RunProblem as exc:
        raise reject(archive, str(exc)) from None
    task = _task_settings(archive, files.manifest)
    try:
        spec = load_task(str(task["name"]), tasks_dir)
        variant, _ = spec.variant(task["variant"])
        split, _ = spec.split_tag(task["split"])
    except UsageError as exc:
        raise reject(archive, str(exc)) from None
    if task["version"] != spec.version:
        raise reject(
            archive,
            f"task {spec.name} version {task['version']} is not version {spec.version}, the one this board evaluates",
        )
    metric = run_metric(files.manifest, spec)
    if metric != spec.metric:
        raise reject(archive, f"scored with metric {metric!r}; the {spec.name} board ranks {spec.metric!r}")
    found = board_verdict(spec, files.manifest)
    admit(archive, found, allow_unofficial)
    official = official_prompts(spec, variant, split, data)
    skill, limit = declared_subset(archive, task)
    if skill is not None or limit is not None:  # an allowed subset: exactly the prompts `--skill`/`--limit` pick
        from ts_eval.prepare import select_prompts

        try:
            official = select_prompts(spec, official, split, skill, limit)[1]
        except UsageError as exc:
            raise reject(archive, str(exc)) from None
    check_prompts(
        archive,
        files.prompts,
        official,
        f"{spec.name} {variant} {split}" + (f" ({found.subset})" if found.subset else ""),
    )
    images = check_images(archive, files)  # the archive's own images first: the most specific message
    try:
        check_samples(files, spec)
        summary = check_summary(files, tasks_dir)
        read_jsonl(root / DETECTIONS)  # where present it must at least parse
    except (RunProblem, UsageError) as exc:
        raise reject(archive, str(exc)) from None

    manifest = files.manifest
    scorer = manifest.get("scorer")
    scorer = scorer if isinstance(scorer, dict) else {}
    candidate = Candidate(
        task=spec.name,
        task_version=spec.version,
        variant=variant,
        split=split,
        metric=spec.metric,
        model=_model_label(manifest["settings"].get("generator")),
        scorer=str(scorer.get("name", "unknown")),
        verdict=found,
        n_samples=n_samples(files),
        n_prompts=len(files.prompts),
        summary=summary,
        manifest=manifest,
        content_sha256=hashlib.sha256((root / SAMPLES).read_bytes()).hexdigest(),
        ts_eval_version=(manifest.get("ts_eval") or {}).get("version"),
        run_created=manifest.get("created"),
        images=images,
    )
    return Validated(candidate, spec, files)


__all__ = ["Candidate", "Rejected", "Validated", "validate_run"]
