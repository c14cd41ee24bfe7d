"""What the visual report reads from a run directory, as plain dataclasses.

All reading happens in `load_view_run`; everything after it (thumbnails, cards, HTML) is a function of the
`ViewRun` objects, so another reader can supply them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ts_eval.errors import UsageError
from ts_eval.geneval.rules import DetectedObject, JudgeSettings, objects_from_row
from ts_eval.records import ImageKey
from ts_eval.store import DETECTIONS


@dataclass(frozen=True)
class GroupStat:
    name: str
    mean: float
    n: int
    ci95: tuple[float, float] | None


@dataclass(frozen=True)
class ViewPrompt:
    prompt_id: str
    prompt: str
    tags: tuple[str, ...] = ()
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ViewImage:
    prompt_id: str
    sample_index: int
    path: str  # relative to the run directory
    sha256: str | None


@dataclass(frozen=True)
class ViewSample:
    prompt_id: str
    sample_index: int
    metric: str
    value: float
    reason: str | None = None


@dataclass
class ViewRun:
    task: str
    label: str
    root: Path  # the run directory; image paths are relative to it
    metric: str  # the task's headline metric, shown on every image
    groups: list[GroupStat]
    prompts: list[ViewPrompt]
    images: list[ViewImage]
    samples: list[ViewSample]
    detections: dict[ImageKey, dict[str, list[DetectedObject]]] = field(default_factory=dict)
    judge: JudgeSettings | None = None  # GenEval: the settings the images were judged with
    split: str | None = None
    model: str | None = None
    verdict: str = ""  # `official`, or `unofficial: <first differing setting>` (ts_eval.official)


def load_view_run(path: str | Path, label: str | None = None, tasks_dir: str | None = None) -> ViewRun:
    """Read one run directory for the report through the validating reader: a damaged run is refused."""
    from ts_eval.store.reader import read_run
    from ts_eval.summary import summarize

    folder = Path(path)
    if not folder.is_dir():
        raise UsageError(f"{folder} is not a run directory (no such folder)")
    run = read_run(folder, tasks_dir=tasks_dir)
    summary = summarize(run)
    groups = [
        GroupStat(name, float(g["mean"]), int(g["n"]), (float(g["ci95"][0]), float(g["ci95"][1])))
        for name, g in summary["groups"].items()
    ]
    detections = {
        (row["prompt_id"], int(row["sample_index"])): objects_from_row(
            row["detections"], f"{run.path / DETECTIONS}: image {row['prompt_id']}"
        )
        for row in run.detections or []
    }
    scorer = run.scorer or {}
    try:
        judge = JudgeSettings(**scorer["judge"]) if isinstance(scorer.get("judge"), dict) else JudgeSettings()
    except TypeError:  # settings of another scorer version: the official defaults are the best guess
        judge = JudgeSettings()
    return ViewRun(
        task=run.spec.name,
        label=label or run.path.resolve().name,
        root=run.path,
        metric=run.metric,
        groups=groups,
        prompts=[ViewPrompt(p.prompt_id, p.prompt, p.tags, p.metadata) for p in run.prompts],
        images=[ViewImage(r.prompt_id, r.sample_index, r.path, r.sha256) for r in run.images],
        samples=[ViewSample(s.prompt_id, s.sample_index, s.metric, s.value, s.reason) for s in run.samples],
        detections=detections,
        judge=judge if detections else None,
        split=summary.get("split"),
        model=summary.get("model"),
        verdict=summary["verdict"]["label"],
    )
