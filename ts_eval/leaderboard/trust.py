"""What a board entry can be trusted for: is the run official, and did anyone but its submitter check the scores?

The verdict is recomputed here from the submitted manifest with the task's official recipe
(`ts_eval.official.verdict`); a verdict or flag stored in the manifest is never read. By default the
board takes only official runs of a whole prompt set (a declared split such as GenAI-Bench `hard` is a
board of its own, not a subset); `--allow-unofficial` lists the others with their label.

Scores are self-reported: a submitter can edit `samples.jsonl` and rebuild the summary and checksums,
and nothing inside the archive can tell. Only re-scoring the images with the recorded scorer can. An
entry is `verified` when the maintainer re-scored all its images (`--verify all`), or K of them drawn
at random; a sample catches a submission whose fraction f of images carry forged scores with the
probability given by the hypergeometric distribution (drawing K of N images without replacement,
ceil(f*N) of them forged, at least one drawn), which the entry records beside K and f.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ts_eval.leaderboard.archive import reject
from ts_eval.official import Verdict, verdict
from ts_eval.tasks import TaskSpec

SELF_REPORTED = "self-reported"
VERIFIED = "verified"
DEFAULT_FORGED_FRACTION = 0.05  # the smallest forgery a sampled check is sized for (printed with each entry)


def board_verdict(spec: TaskSpec, manifest: dict[str, Any]) -> Verdict:
    """The run's verdict, recomputed from its recorded settings and scorer description."""
    settings, scorer = manifest.get("settings"), manifest.get("scorer")
    settings = settings if isinstance(settings, dict) else {}
    scorer = scorer if isinstance(scorer, dict) else None
    return verdict(spec.recipe, settings, scorer, default_split=spec.default_split, without_recipe=spec.without_recipe)


def declared_subset(archive: Path, task: dict[str, Any]) -> tuple[str | None, int | None]:
    """The manifest's `--skill` and `--limit` (each None when absent), checked for type."""
    skill, limit = task.get("skill"), task.get("limit")
    if skill is not None and not isinstance(skill, str):
        raise reject(archive, f"manifest.json settings.task.skill {skill!r} is not a skill name")
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 1):
        raise reject(archive, f"manifest.json settings.task.limit {limit!r} is not a positive number")
    return skill, limit


def admit(archive: Path, found: Verdict, allow_unofficial: bool) -> None:
    """Official runs of a whole prompt set only, unless the maintainer allows labelled entries."""
    if allow_unofficial or (found.official and not found.subset):
        return
    raise reject(
        archive,
        f"{found.label}; the board lists only official runs of a whole prompt set "
        "(--allow-unofficial lists it with this label)",
    )


def detection_probability(images: int, checked: int, forged_fraction: float) -> float:
    """P(a random draw of `checked` of `images` images, without replacement, includes at least one of the
    ceil(forged_fraction * images) forged ones): 1 - C(N - F, K) / C(N, K)."""
    if images < 1 or checked < 1:
        return 0.0
    forged = max(1, math.ceil(forged_fraction * images - 1e-9))  # at least one image is forged
    if checked > images - forged:
        return 1.0
    return 1.0 - math.comb(images - forged, checked) / math.comb(images, checked)


def images_needed(probability: float, images: int, forged_fraction: float) -> int:
    """The smallest K whose detection probability reaches `probability` (all images at most)."""
    low, high = 1, max(images, 1)
    while low < high:
        middle = (low + high) // 2
        if detection_probability(images, middle, forged_fraction) >= probability:
            high = middle
        else:
            low = middle + 1
    return low


@dataclass(frozen=True)
class Trust:
    """How far a board entry's scores were checked; `images` is every image the scores rest on."""

    level: str  # SELF_REPORTED or VERIFIED
    images: int
    rescored: int = 0
    seed: int | None = None
    forged_fraction: float | None = None
    detection_probability: float | None = None

    @classmethod
    def self_reported(cls, images: int) -> Trust:
        return cls(SELF_REPORTED, images)

    @classmethod
    def verified(cls, images: int, rescored: int, seed: int | None, forged_fraction: float) -> Trust:
        return cls(
            VERIFIED, images, rescored, seed, forged_fraction, detection_probability(images, rescored, forged_fraction)
        )

    @property
    def all_images(self) -> bool:
        return self.level == VERIFIED and self.rescored >= self.images

    @property
    def label(self) -> str:
        """The board's `trust` column."""
        if self.level == SELF_REPORTED:
            return SELF_REPORTED
        if self.all_images:
            return f"verified: all {self.images} images re-scored"
        text = f"verified: {self.rescored} of {self.images} images re-scored"
        if self.forged_fraction is None or self.detection_probability is None:
            return text  # an entry added before the probability was recorded
        return f"{text}, P(catch {_percent(self.forged_fraction)} forged) = {self.detection_probability:.2f}"

    def explain(self) -> str:
        """One sentence for the maintainer after `add --verify K`."""
        if self.level == SELF_REPORTED:
            return "self-reported: no image was re-scored (--verify K or --verify all)"
        if self.all_images:
            return f"verified: all {self.images} images re-scored and within tolerance"
        f = self.forged_fraction or DEFAULT_FORGED_FRACTION
        assert self.detection_probability is not None  # recorded with every sampled verification
        needed = images_needed(0.95, self.images, f)
        return (
            f"verified on a sample: {self.rescored} of {self.images} images re-scored (seed {self.seed}); a "
            f"submission with {_percent(f)} of its images forged is caught with probability "
            f"{self.detection_probability:.3f} (passes with {1 - self.detection_probability:.3f}); "
            f"--verify {needed} would catch it with probability 0.95, --verify all always"
        )

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "label": self.label}

    @classmethod
    def from_entry(cls, entry: dict[str, Any]) -> Trust:
        """From a board row (db.submissions)."""
        images = int(entry["n_prompts"]) * int(entry["n_samples"])
        rescored = int(entry.get("verified_images") or 0)
        if rescored == 0:
            return cls.self_reported(images)
        return cls(
            VERIFIED,
            images,
            rescored,
            entry.get("verify_seed"),
            entry.get("forged_fraction"),
            entry.get("detection_probability"),
        )


def _percent(fraction: float) -> str:
    return f"{100 * fraction:g}%"
