"""`human-eval import-geneval`: GenEval's MTurk answers (annotations_sdv2.csv and the like) -> per-image
human correctness, compared with a GenEval run's automatic `correct` judgement.

Each MTurk row is one rater's answers about one image (counts, colours, relative position of the
prompt's objects). A rater judges an image correct when the answers meet the prompt's GenEval
requirements under the official judge's rules: at least `count` of each included object (5 means
"5 or more"), fewer than an `exclude` count, the required colour among those the rater picked, and the
second object on the required side of the first. The image is correct when a strict majority of its
raters say so; an even split has no verdict and is reported.

What is compared: these CSVs rate the GenEval authors' own images (SD v2's in annotations_sdv2.csv), each
named by its `Input.image_url` (`.../sdv2/00328/samples/00001.png`). A run's `correct` judgement says
something about those ratings only when the run scored the very same images, so `--run` needs
`--images DIR`, the folder holding the rated files (`DIR/00328/samples/00001.png`, the URL's last three
parts): every annotated image the run holds must have the same pixels as the rated file, or the import
is refused. Matching by prompt id and image index alone would set human ratings of one model's images
against the judge's verdicts on another's.
"""

from __future__ import annotations

import csv
import json
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlparse

import numpy as np
from PIL import Image, UnidentifiedImageError
from tqdm.auto import tqdm

from ts_eval.errors import UsageError
from ts_eval.human_eval.agreement import cohen_kappa, krippendorff_alpha
from ts_eval.human_eval.study import Exclusion
from ts_eval.store import IMAGES, PROMPTS, SAMPLES, RunDir, read_jsonl

COLUMNS = (
    "Input.prompt_id",
    "Input.image_id",
    "Input.caption",
    "Answer.task-count-0",
    "Answer.task-count-1",
    "Answer.task-color-0",
    "Answer.task-color-1",
    "Answer.task-position-x",
    "Answer.task-position-y",
)
IMAGE_URL = "Input.image_url"  # which file the raters saw; needed to compare with a run
# The HIT asks "is object 1 left/right of, above/below object 0?"
_POSITION = {"left of": ("x", "left"), "right of": ("x", "right"), "above": ("y", "above"), "below": ("y", "below")}


class Unanswerable(ValueError):
    """The rater's row lacks an answer the prompt needs."""


@dataclass(frozen=True)
class HumanVerdict:
    prompt_id: str
    sample_index: int
    tag: str
    votes: int
    correct_votes: int
    correct: bool | None  # None: the raters split evenly
    image: str | None = None  # the rated file, relative to the annotations' image folder (00328/samples/00001.png)

    def to_row(self) -> dict[str, Any]:
        return asdict(self)


def _count(value: str, label: str) -> int:
    value = value.strip()
    if not value:
        raise Unanswerable(f"no count for {label}")
    try:
        count = float(value)
    except ValueError:
        raise Unanswerable(f"count {value!r} for {label} is not a number") from None
    if count != int(count) or not 0 <= count <= 5:
        raise Unanswerable(f"count {value!r} for {label} is outside 0..5")
    return int(count)


def rater_correct(metadata: dict[str, Any], answers: dict[str, str]) -> bool:
    """One rater's verdict on one image; raises Unanswerable when a needed answer is missing."""
    include = metadata["include"]
    if len(include) > 2:
        raise Unanswerable("the HIT asks about two objects at most")
    counts = []
    for i, req in enumerate(include):
        count = _count(answers.get(f"Answer.task-count-{i}", ""), req["class"])
        counts.append(count)
        if count < req["count"]:
            return False
        if "color" in req:
            picked = {c.strip().lower() for c in answers.get(f"Answer.task-color-{i}", "").split("|") if c.strip()}
            if not picked:
                raise Unanswerable(f"no colour for {req['class']}")
            if req["color"] not in picked:
                return False
        if "position" in req:
            relation, target = req["position"]
            if i != 1 or target != 0 or relation not in _POSITION:
                raise Unanswerable(f"position {relation!r} of object {i} is not one the HIT asks about")
            axis, expected = _POSITION[relation]
            given = answers.get(f"Answer.task-position-{axis}", "").strip().lower()
            if not given:
                raise Unanswerable(f"no position answer for {req['class']}")
            if given != expected:
                return False
    for req in metadata.get("exclude", []):
        index = next((i for i, inc in enumerate(include) if inc["class"] == req["class"]), None)
        if index is None:
            raise Unanswerable(f"the HIT has no count question for excluded class {req['class']}")
        if counts[index] >= req["count"]:
            return False
    return True


def load_metadata(path: str | Path) -> dict[str, dict[str, Any]]:
    """GenEval's evaluation_metadata.jsonl: prompt id "00000".. = line index."""
    rows = read_jsonl(Path(path)) if Path(path).is_file() else None
    if rows is None:
        raise UsageError(f"GenEval metadata {path} not found (evaluation_metadata.jsonl)")
    return {f"{i:05d}": row for i, row in enumerate(rows)}


def run_metadata(run: RunDir) -> dict[str, dict[str, Any]]:
    from ts_eval.store.reader import read_run

    prompts = read_run(run.path, need="prompts").prompts
    metadata = {p.prompt_id: p.metadata for p in prompts if isinstance(p.metadata, dict) and "include" in p.metadata}
    if not metadata:
        raise UsageError(
            f"{run.path} is not a GenEval run ({PROMPTS} has no GenEval metadata); "
            "pass --metadata evaluation_metadata.jsonl"
        )
    return metadata


def read_mturk(path: str | Path, *, need_image_url: bool = False) -> list[tuple[int, dict[str, str]]]:
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"MTurk annotations {path} not found")
    try:
        with open(path, encoding="utf-8-sig", newline="") as handle:
            reader = csv.DictReader(handle)
            wanted = COLUMNS + ((IMAGE_URL,) if need_image_url else ())
            missing = [c for c in wanted if c not in (reader.fieldnames or [])]
            if missing:
                raise UsageError(f"{path}: not GenEval's MTurk annotations, missing column(s) {', '.join(missing)}")
            return [
                (n, {k: (v or "") for k, v in row.items() if k is not None}) for n, row in enumerate(reader, start=2)
            ]
    except (UnicodeDecodeError, csv.Error) as exc:
        raise UsageError(f"{path}: malformed CSV ({type(exc).__name__})") from None


def rated_file(url: str) -> str | None:
    """`.../images/sdv2/00328/samples/00001.png` -> `00328/samples/00001.png`; None when there is no such path."""
    parts = PurePosixPath(urlparse(url.strip()).path).parts
    tail = parts[-3:]
    if len(tail) < 3 or any(part in ("", ".", "..") for part in tail):
        return None
    return "/".join(tail)


def human_correctness(
    path: str | Path, metadata: dict[str, dict[str, Any]], *, need_image_url: bool = False
) -> tuple[list[HumanVerdict], list[Exclusion], dict[str, Any]]:
    path = Path(path)
    excluded: list[Exclusion] = []
    votes: dict[tuple[str, int], list[int]] = defaultdict(list)
    files: dict[tuple[str, int], str | None] = {}
    matched = 0
    rows = read_mturk(path, need_image_url=need_image_url)
    for number, row in rows:
        source = f"{path.name}:{number}"
        try:
            prompt_id, sample_index = f"{int(row['Input.prompt_id']):05d}", int(row["Input.image_id"])
        except ValueError:
            excluded.append(Exclusion(source, "prompt or image id is not a number"))
            continue
        meta = metadata.get(prompt_id)
        if meta is None:
            excluded.append(Exclusion(source, f"prompt {prompt_id} is not in the metadata"))
            continue
        if row["Input.caption"].strip() and row["Input.caption"].strip() != meta.get("prompt", "").strip():
            excluded.append(Exclusion(source, f"caption differs from prompt {prompt_id} of the metadata"))
            continue
        matched += 1
        image = rated_file(row[IMAGE_URL]) if row.get(IMAGE_URL, "").strip() else None
        if files.setdefault((prompt_id, sample_index), image) != image:
            raise UsageError(
                f"{source}: prompt {prompt_id} image {sample_index} is {image}, but an earlier row "
                f"names {files[(prompt_id, sample_index)]}; one image per (prompt, image id)"
            )
        try:
            votes[(prompt_id, sample_index)].append(int(rater_correct(meta, row)))
        except Unanswerable as exc:
            excluded.append(Exclusion(source, str(exc)))
    if rows and not matched:
        raise UsageError(f"{path}: no row matches the GenEval metadata (wrong --metadata or run?)")
    verdicts = []
    for (prompt_id, sample_index), v in sorted(votes.items()):
        yes = sum(v)
        verdict = True if 2 * yes > len(v) else False if 2 * yes < len(v) else None
        verdicts.append(
            HumanVerdict(
                prompt_id,
                sample_index,
                metadata[prompt_id].get("tag", ""),
                len(v),
                yes,
                verdict,
                files.get((prompt_id, sample_index)),
            )
        )
    alpha = krippendorff_alpha({key: dict(enumerate(v)) for key, v in votes.items()}, "nominal")
    alpha["on"] = "each rater's correct/incorrect verdict per image"
    decided = [v for v in verdicts if v.correct is not None]
    human = {
        "rows": len(rows),
        "images": len(verdicts),
        "decided": len(decided),
        "correct": sum(v.correct for v in decided),
        "correct_share": round(sum(v.correct for v in decided) / len(decided), 4) if decided else None,
        "split_votes": len(verdicts) - len(decided),
        "rater_agreement": alpha,
    }
    return verdicts, excluded, human


def _pixels(path: Path) -> np.ndarray:
    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"))
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise UsageError(f"{path}: not a readable image ({type(exc).__name__})") from None


def check_run_holds_rated_images(
    verdicts: list[HumanVerdict], run: RunDir, images: str | Path | None, source: Path
) -> int:
    """Refuse unless every annotated image the run holds is the rated file, pixel for pixel; returns how many
    were checked. Pixels, not bytes: a run re-encodes the PNGs it is given."""
    if images is None:
        example = next((v.image for v in verdicts if v.image), "00000/samples/00000.png")
        raise UsageError(
            f"{source} rates the GenEval authors' own images (e.g. {example}), not {run.path}'s; "
            "give --images DIR holding those files to check the run scored the same images, "
            "or drop --run to see the human verdicts alone"
        )
    folder = Path(images)
    if not folder.is_dir():
        raise UsageError(f"--images {folder} is not a directory")
    from ts_eval.store.reader import read_run

    held = {(r.prompt_id, r.sample_index): run.path / r.path for r in read_run(run.path, need="images").images}
    shared = [v for v in verdicts if (v.prompt_id, v.sample_index) in held]
    if not shared:
        raise UsageError(
            f"{run.path} holds none of the {len(verdicts)} annotated images (no {IMAGES} row with "
            "their prompt id and image index)"
        )
    for verdict in tqdm(shared, desc="rated images", unit="img", disable=None):
        name = f"prompt {verdict.prompt_id} image {verdict.sample_index}"
        if verdict.image is None:
            raise UsageError(f"{source}: {name} has no usable {IMAGE_URL}; cannot tell which file was rated")
        rated, ours = folder / verdict.image, held[(verdict.prompt_id, verdict.sample_index)]
        if not rated.is_file():
            raise UsageError(f"rated image {rated} not found; --images must hold the files named in {source}")
        a, b = _pixels(rated), _pixels(ours)
        if a.shape != b.shape or not np.array_equal(a, b):
            raise UsageError(
                f"{run.path}'s {name} is not the rated image {verdict.image} (pixels differ): "
                "the annotations say nothing about this run's images"
            )
    return len(shared)


def compare_with_run(verdicts: list[HumanVerdict], run: RunDir) -> dict[str, Any]:
    from ts_eval.store.reader import read_run

    automatic = {
        (s.prompt_id, s.sample_index): round(s.value) for s in read_run(run.path).samples if s.metric == "correct"
    }
    if not automatic:
        raise UsageError(f"{run.path} has no GenEval `correct` samples in {SAMPLES}; score it first")
    both = [
        (v, int(v.correct), automatic[(v.prompt_id, v.sample_index)])
        for v in verdicts
        if v.correct is not None and (v.prompt_id, v.sample_index) in automatic
    ]
    if not both:
        raise UsageError(f"{run.path} judged none of the annotated images (prompt ids and sample indices differ)")
    human, auto = [h for _, h, _ in both], [a for _, _, a in both]
    cells = Counter(zip(human, auto))
    by_tag: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for v, h, a in both:
        by_tag[v.tag].append((h, a))
    kappa = cohen_kappa(human, auto)
    return {
        "run": str(run.path),
        "images": len(both),
        "agreement": round(sum(h == a for h, a in zip(human, auto)) / len(both), 4),
        "cohen_kappa": None if kappa is None else round(kappa, 4),
        "confusion": {
            "both_correct": cells[(1, 1)],
            "human_only": cells[(1, 0)],
            "automatic_only": cells[(0, 1)],
            "both_incorrect": cells[(0, 0)],
        },
        "human_correct_share": round(sum(human) / len(both), 4),
        "automatic_correct_share": round(sum(auto) / len(both), 4),
        "by_tag": {
            tag: {"images": len(pairs), "agreement": round(sum(h == a for h, a in pairs) / len(pairs), 4)}
            for tag, pairs in sorted(by_tag.items())
        },
        "not_judged_by_run": sum(
            v.correct is not None and (v.prompt_id, v.sample_index) not in automatic for v in verdicts
        ),
    }


def render_md(result: dict[str, Any]) -> str:
    human = result["human"]
    alpha = human["rater_agreement"]["value"]
    lines = [
        (
            f"Human judgements of the images {result['source']} names (its Input.image_url): "
            f"{human['rows']} answers on {human['images']} images; "
            f"{human['correct']}/{human['decided']} images correct by majority "
            f"({human['split_votes']} split evenly); raters' Krippendorff alpha "
            f"{'-' if alpha is None else f'{alpha:.3f}'}; {len(result['excluded'])} answers excluded"
        )
    ]
    comparison = result.get("comparison")
    if comparison:
        kappa = comparison["cohen_kappa"]
        lines += [
            "",
            (
                f"Against {comparison['run']} on the rated images it holds ({comparison['same_pixels']} "
                f"checked pixel-identical): {comparison['images']} images, agreement "
                f"{100 * comparison['agreement']:.1f}%, Cohen's kappa {'-' if kappa is None else f'{kappa:.3f}'}"
            ),
            "",
            "| tag | images | agreement |",
            "|---|---:|---:|",
        ]
        lines += [f"| {tag} | {t['images']} | {100 * t['agreement']:.1f}% |" for tag, t in comparison["by_tag"].items()]
    return "\n".join(lines) + "\n"


def import_geneval(
    path: str | Path,
    *,
    run: str | Path | None = None,
    metadata: str | Path | None = None,
    images: str | Path | None = None,
) -> tuple[list[HumanVerdict], dict[str, Any]]:
    if run is None and metadata is None:
        raise UsageError("give --run (a GenEval run to compare with) or --metadata evaluation_metadata.jsonl")
    if images is not None and run is None:
        raise UsageError("--images checks a --run against the rated files; give --run too")
    run_dir = RunDir(run) if run is not None else None
    if metadata is not None:
        meta = load_metadata(metadata)
    else:
        assert run_dir is not None  # one of the two was required above
        meta = run_metadata(run_dir)
    verdicts, excluded, human = human_correctness(path, meta, need_image_url=run_dir is not None)
    result: dict[str, Any] = {
        "source": str(path),
        "rated": "the images named in the file's Input.image_url",
        "human": human,
        "excluded": [e.to_row() for e in excluded],
    }
    if run_dir is not None:
        same = check_run_holds_rated_images(verdicts, run_dir, images, Path(path))
        result["comparison"] = {**compare_with_run(verdicts, run_dir), "same_pixels": same}
    return verdicts, result


def to_json(result: dict[str, Any]) -> str:
    return json.dumps(result, indent=2, ensure_ascii=False) + "\n"
