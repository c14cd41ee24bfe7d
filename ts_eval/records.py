"""Rows of the run directory (format `ts-eval/run@1`, see DESIGN.md), as dataclasses."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any


@dataclass(frozen=True)
class Prompt:
    """One benchmark prompt. `prompt` is what the scorer judges; `generator_prompt` what the model sees."""

    prompt_id: str
    prompt: str
    tags: tuple[str, ...] = ()
    metadata: dict[str, Any] = field(default_factory=dict)
    rewritten: str | None = None

    @property
    def generator_prompt(self) -> str:
        return self.rewritten if self.rewritten is not None else self.prompt

    def to_row(self) -> dict[str, Any]:
        row = {"prompt_id": self.prompt_id, "prompt": self.prompt, "tags": list(self.tags), "metadata": self.metadata}
        if self.rewritten is not None:
            row["rewritten_prompt"] = self.rewritten
        return row

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Prompt:
        return cls(
            prompt_id=row["prompt_id"],
            prompt=row["prompt"],
            tags=tuple(row.get("tags", ())),
            metadata=row.get("metadata", {}),
            rewritten=row.get("rewritten_prompt"),
        )


ImageKey = tuple[str, int]  # (prompt_id, sample_index)


def image_keys(prompts: list[Prompt], n_samples: int) -> list[ImageKey]:
    """Every image of a run in its canonical order (prompt order, then sample index): the order of every
    canonical file, whatever order the work finished in."""
    return [(p.prompt_id, k) for p in prompts for k in range(n_samples)]


@dataclass(frozen=True)
class ImageRequest:
    """What a generator is asked for: one image of one prompt with a fixed seed."""

    prompt_id: str
    prompt: str
    sample_index: int
    seed: int


@dataclass(frozen=True)
class ImageRecord:
    prompt_id: str
    sample_index: int
    seed: int
    path: str  # relative to the run directory
    sha256: str

    def to_row(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ScoreRequest:
    """What a scorer is asked to judge: one image against the original (never rewritten) prompt."""

    prompt: Prompt
    sample_index: int
    image_path: str  # absolute
    image_sha256: str


@dataclass(frozen=True)
class Sample:
    """One score of one image. `prompt` (the judged text) and `path` (the image, relative to the run directory)
    repeat prompts.jsonl and images.jsonl so a row reads on its own; the run store fills them in."""

    prompt_id: str
    sample_index: int
    metric: str
    value: float
    reason: str | None = None
    image_sha256: str | None = None
    prompt: str | None = None
    path: str | None = None

    def to_row(self) -> dict[str, Any]:
        row: dict[str, Any] = {"prompt_id": self.prompt_id, "sample_index": self.sample_index}
        if self.prompt is not None:
            row["prompt"] = self.prompt
        if self.path is not None:
            row["path"] = self.path
        row.update(metric=self.metric, value=self.value)
        if self.reason is not None:
            row["reason"] = self.reason
        if self.image_sha256 is not None:
            row["image_sha256"] = self.image_sha256
        return row

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Sample:
        return cls(
            prompt_id=row["prompt_id"],
            sample_index=int(row["sample_index"]),
            metric=row["metric"],
            value=float(row["value"]),
            reason=row.get("reason"),
            image_sha256=row.get("image_sha256"),
            prompt=row.get("prompt"),
            path=row.get("path"),
        )


def readable(sample: Sample, prompt: Prompt, image: ImageRecord | None) -> Sample:
    """The sample as samples.jsonl stores it: with the judged prompt text and (where the run has images) the
    image path, so each row reads on its own."""
    return replace(sample, prompt=prompt.prompt, path=image.path if image is not None else None)


@dataclass
class ScoredImage:
    """A scorer's answer for one image: its metric rows, and for detector scorers the raw detections."""

    samples: list[Sample]
    detections: dict[str, Any] | None = None
