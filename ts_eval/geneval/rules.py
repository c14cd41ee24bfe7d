"""GenEval's decision rules: a pure function of (metadata, detections) -> correct + reason.

No model runs here, so `ts-eval rescore` re-judges a whole run from detections.jsonl in seconds. The rules
follow the official `evaluation/evaluate_images.py` (github djghosh13/geneval):

- per class, objects are ranked by score, kept when score > 0.3 (0.9 for the `counting` tag), and capped at
  the 16 best; overlapping boxes are all kept (the official `max_overlap` is 1.0, which disables its greedy
  suppression; any other value suppresses after the cap, with the official +1-pixel IoU);
- an `include` clause needs `count` objects of its class; colour and position are checked on the `count`
  best of them; a position target is the group an earlier clause matched;
- an `exclude` clause fails when `count` or more objects of its class are kept.

The official code compares scores and computes positions in float32 (the detector's numpy dtype); so do we.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from ts_eval.errors import UsageError
from ts_eval.options import option

COLORS = ("red", "orange", "yellow", "green", "blue", "purple", "pink", "brown", "black", "white")
RELATIONS = ("left of", "right of", "above", "below")
TAGS = ("single_object", "two_object", "counting", "colors", "position", "color_attr")


@dataclass(frozen=True)
class JudgeSettings:
    """The official evaluate_images.py `--options` and their defaults."""

    threshold: float = option(0.3, "an object counts when its detector score is above this")
    counting_threshold: float = option(0.9, "the same, for prompts of the counting tag")
    max_objects: int = option(16, "the best objects kept per class")
    max_overlap: float = option(1.0, "IoU above which a weaker box is dropped (1: keep overlapping boxes, official)")
    position_threshold: float = option(0.1, "position rules: centre offsets shrink by this times the summed box sizes")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def confidence_threshold(self, tag: str) -> float:
        return self.counting_threshold if tag == "counting" else self.threshold

    def lowest_threshold(self) -> float:
        return min(self.threshold, self.counting_threshold)


@dataclass(frozen=True)
class DetectedObject:
    box: tuple[float, float, float, float]  # x1, y1, x2, y2 in pixels
    score: float  # rounded to float32 on creation: the official scores are float32 arrays
    color: str | None = None

    def __post_init__(self):
        object.__setattr__(self, "score", float(np.float32(self.score)))


@dataclass(frozen=True)
class Verdict:
    correct: bool
    reason: str  # "" when correct; clauses that failed, one per line, in the official wording


def f32(value: float) -> float:
    """`value` rounded to float32 (as a Python float, so comparisons with DetectedObject.score are exact)."""
    return float(np.float32(value))


# -- which detections count --------------------------------------------------------------------------


def box_iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    """IoU with the official inclusive-pixel areas (width = x2 - x1 + 1), in float32 like the official boxes."""

    def area(x1, y1, x2, y2):
        return max(x2 - x1 + 1, 0) * max(y2 - y1 + 1, 0)

    fa, fb = [np.float32(v) for v in a[:4]], [np.float32(v) for v in b[:4]]
    inter = area(max(fa[0], fb[0]), max(fa[1], fb[1]), min(fa[2], fb[2]), min(fa[3], fb[3]))
    union = area(*fa) + area(*fb) - inter
    return float(inter / union) if union else 0.0


def rank_by_score(objects: Iterable[DetectedObject]) -> list[DetectedObject]:
    """Best first; the sort is stable, so a list already in the detector's official order stays as it is."""
    return sorted(objects, key=lambda o: -o.score)


def kept_objects(objects: list[DetectedObject], threshold: float, settings: JudgeSettings) -> list[DetectedObject]:
    """One class's objects after the score threshold, the cap and (if enabled) overlap suppression."""
    cut = f32(threshold)
    ranked = [o for o in rank_by_score(objects) if o.score > cut][: settings.max_objects]
    if settings.max_overlap == 1:
        return ranked
    kept: list[DetectedObject] = []
    limit = f32(settings.max_overlap)
    while ranked:
        best = ranked.pop(0)
        kept.append(best)
        ranked = [o for o in ranked if box_iou(best.box, o.box) < limit]
    return kept


def kept_by_class(
    detections: Mapping[str, list[DetectedObject]], tag: str, settings: JudgeSettings
) -> dict[str, list[DetectedObject]]:
    threshold = settings.confidence_threshold(tag)
    kept = {name: kept_objects(objects, threshold, settings) for name, objects in detections.items() if objects}
    return {name: objects for name, objects in kept.items() if objects}


# -- relations ---------------------------------------------------------------------------------------


def relative_position(a: tuple[float, ...], b: tuple[float, ...], margin: float = 0.1) -> set[str]:
    """Where box `a` lies relative to box `b`.

    The centre offset shrinks by `margin` times the summed box sizes on each axis (so touching or
    overlapping objects are not "left of" each other); a relation holds when the shrunk offset, divided by
    the unshrunk distance, exceeds 0.5 on its axis. Computed in float32 like the official code.
    """
    boxes = np.array([a[:4], b[:4]], dtype=np.float32).reshape(2, 2, 2)
    centre_a, centre_b = boxes.mean(axis=-2)
    size_a, size_b = np.abs(np.diff(boxes, axis=-2))[..., 0, :]
    offset = centre_a - centre_b
    shrunk = np.maximum(np.abs(offset) - np.float32(margin) * (size_a + size_b), 0) * np.sign(offset)
    if np.all(np.abs(shrunk) < np.float32(1e-3)):
        return set()
    dx, dy = shrunk / np.linalg.norm(offset)
    found = set()
    if dx < -0.5:
        found.add("left of")
    if dx > 0.5:
        found.add("right of")
    if dy < -0.5:
        found.add("above")
    if dy > 0.5:
        found.add("below")
    return found


def _in_order(relations: set[str]) -> list[str]:
    # The official reason text joins a Python set (order varies with the hash seed); ours is fixed.
    return [r for r in RELATIONS if r in relations]


# -- the judge ---------------------------------------------------------------------------------------


def judge(
    metadata: Mapping[str, Any],
    detections: Mapping[str, list[DetectedObject]],
    settings: JudgeSettings = JudgeSettings(),
) -> Verdict:
    """Is this image correct for its prompt? `detections` holds every detection, before any threshold."""
    objects = kept_by_class(detections, metadata["tag"], settings)
    reasons: list[str] = []
    matched_groups: list[list[DetectedObject] | None] = []
    for clause in metadata.get("include", []):
        name, count = clause["class"], clause["count"]
        found = objects.get(name, [])[:count]
        matched = len(found) >= count
        if not matched:
            reasons.append(f"expected {name}>={count}, found {len(found)}")
        else:
            if "color" in clause:
                matched = _check_color(clause, found, reasons)
            if "position" in clause and matched:
                matched = _check_position(clause, found, matched_groups, settings, reasons)
        matched_groups.append(found if matched else None)
    for clause in metadata.get("exclude", []):
        name, count = clause["class"], clause["count"]
        if len(objects.get(name, [])) >= count:
            reasons.append(f"expected {name}<{count}, found {len(objects[name])}")
    return Verdict(correct=not reasons, reason="\n".join(reasons))


def _check_color(clause: Mapping[str, Any], found: list[DetectedObject], reasons: list[str]) -> bool:
    name, count, wanted = clause["class"], clause["count"], clause["color"]
    colors = [o.color for o in found]
    if any(c is None for c in colors):
        raise MissingColor(name)
    if colors.count(wanted) >= count:
        return True
    seen = ", ".join(f"{colors.count(c)} {c}" for c in COLORS if c in colors)
    reasons.append(f"expected {wanted} {name}>={count}, found {colors.count(wanted)} {wanted}; and {seen}")
    return False


def _check_position(
    clause: Mapping[str, Any],
    found: list[DetectedObject],
    matched_groups: list[list[DetectedObject] | None],
    settings: JudgeSettings,
    reasons: list[str],
) -> bool:
    name = clause["class"]
    relation, target_index = clause["position"]
    targets = matched_groups[target_index]
    if targets is None:
        reasons.append(f"no target for {name} to be {relation}")
        return False
    for obj in found:
        for target in targets:
            actual = relative_position(obj.box, target.box, settings.position_threshold)
            if relation not in actual:
                reasons.append(f"expected {name} {relation} target, found {' and '.join(_in_order(actual))} target")
                return False
    return True


class MissingColor(Exception):
    """A colour check reached an object whose colour was never classified (see GenEvalScorer)."""

    def __init__(self, class_name: str):
        super().__init__(class_name)
        self.class_name = class_name


# -- reading and checking rows -----------------------------------------------------------------------


def objects_from_row(row: Mapping[str, Any], where: str, floor: float | None = None) -> dict[str, list[DetectedObject]]:
    """detections.jsonl's `detections` field -> objects; a malformed entry is a one-line usage error.

    With `floor`, only objects scoring above it (in float32) are returned: at or below the lower of the two
    thresholds an object can never count, and skipping them keeps a rescore of 100 detections per image fast.
    """
    if not isinstance(row, Mapping):
        raise UsageError(f"{where}: 'detections' must map class names to lists of objects")
    names: list[str] = []
    items: list[Any] = []
    for name, objects in row.items():
        if not isinstance(objects, list):
            raise UsageError(f"{where}: detections of {name!r} must be a list")
        names += [name] * len(objects)
        items += objects
    try:  # one vectorised check per image; the slow path below only names the culprit
        boxes = np.asarray([item["box"] for item in items], dtype=np.float64).reshape(-1, 4)
        scores = np.asarray([item["score"] for item in items], dtype=np.float32)
        colors = [item.get("color") for item in items]
        valid = (
            boxes.shape == (len(items), 4)
            and scores.shape == (len(items),)
            and bool(np.isfinite(boxes).all())
            and bool(np.isfinite(scores).all())
            and set(colors) <= _COLOR_VALUES
        )
    except (KeyError, TypeError, ValueError, AttributeError):
        valid = False
    if not valid:
        _explain_bad_object(row, where)
    keep = scores > np.float32(floor) if floor is not None else np.ones(len(items), dtype=bool)
    out: dict[str, list[DetectedObject]] = {}
    for index in np.flatnonzero(keep).tolist():
        out.setdefault(names[index], []).append(
            DetectedObject(tuple(boxes[index].tolist()), float(scores[index]), colors[index])
        )
    return out


_COLOR_VALUES = {*COLORS, None}


def _explain_bad_object(row: Mapping[str, Any], where: str) -> None:
    for name, items in row.items():
        for number, item in enumerate(items):
            try:
                box = [float(v) for v in item["box"]]
                score = float(item["score"])
                color = item.get("color")
            except (KeyError, TypeError, ValueError, AttributeError):
                raise UsageError(
                    f"{where}: object {number} of {name!r} needs 'box' [x1, y1, x2, y2] and 'score'"
                ) from None
            if len(box) != 4 or not all(math.isfinite(v) for v in (*box, score)):
                raise UsageError(f"{where}: object {number} of {name!r} needs a box of 4 finite numbers and a score")
            if color not in _COLOR_VALUES:
                raise UsageError(
                    f"{where}: object {number} of {name!r} has colour {color!r}; use one of {', '.join(COLORS)} or null"
                )
    raise UsageError(f"{where}: malformed detections")


def check_metadata(metadata: Any, class_names: Iterable[str], where: str) -> None:
    """A GenEval metadata row the judge can evaluate, or a one-line usage error saying what is wrong."""
    names = set(class_names)
    if (
        not isinstance(metadata, dict)
        or not isinstance(metadata.get("tag"), str)
        or not isinstance(metadata.get("prompt"), str)
    ):
        raise UsageError(f"{where}: expected a JSON object with string fields 'tag' and 'prompt'")
    includes = metadata.get("include", [])
    for kind in ("include", "exclude"):
        clauses = metadata.get(kind, [])
        if not isinstance(clauses, list):
            raise UsageError(f"{where}: '{kind}' must be a list of clauses")
        for number, clause in enumerate(clauses):
            if (
                not isinstance(clause, dict)
                or not isinstance(clause.get("class"), str)
                or not isinstance(clause.get("count"), int)
                or clause["count"] < 1
            ):
                raise UsageError(f"{where}: {kind} clause {number} needs 'class' (a name) and 'count' (>= 1)")
            if clause["class"] not in names:
                raise UsageError(
                    f"{where}: unknown class {clause['class']!r}; GenEval's detector knows only the "
                    "80 classes of object_names.txt"
                )
            if "color" in clause and clause["color"] not in COLORS:
                raise UsageError(f"{where}: unknown colour {clause['color']!r}; use one of {', '.join(COLORS)}")
            if "position" in clause:
                position = clause["position"]
                if kind != "include" or not (
                    isinstance(position, list)
                    and len(position) == 2
                    and position[0] in RELATIONS
                    and isinstance(position[1], int)
                    and 0 <= position[1] < number
                ):
                    raise UsageError(
                        f"{where}: {kind} clause {number} has position {position!r}; expected "
                        f"[one of {', '.join(RELATIONS)}, index of an earlier include clause]"
                    )
    if not includes:
        raise UsageError(f"{where}: no 'include' clause; every GenEval prompt asks for at least one object")
