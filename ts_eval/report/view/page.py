"""The visual report: runs -> cards of prompts with their images, scores, verdicts and GenEval boxes -> HTML.

`render_view` is a pure function of `ViewRun` objects and their thumbnails; `write_view` makes the
thumbnails and writes the page. Text from the runs is escaped as the rater sheets escape it
(`html.escape`), and a fresh nonce in the Content-Security-Policy lets only the page's own script run.
"""

from __future__ import annotations

import hashlib
import html
import os
import posixpath
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from ts_eval.errors import UsageError
from ts_eval.geneval.rules import DetectedObject, kept_by_class
from ts_eval.report import numbers
from ts_eval.report.view.chart import RUN_COLOURS, build_chart
from ts_eval.report.view.run import ViewRun
from ts_eval.report.view.thumbnails import Thumbnail, make_thumbnails
from ts_eval.store import write_atomic

TILE_PX = 136  # CSS width of one image tile: two GenEval cards (4 images each) side by side at 1280 px
WIDE_TILE_PX = 220  # when a card holds one or two images (GenAI-Bench): room for its long prompt
OTHER_DETECTIONS = 5  # per image, besides those the judge counted: the best-scoring others, drawn on demand
BOX_COLOURS = ("#ffd400", "#00e5ff", "#ff4fa3", "#7cff3d", "#ff8a00", "#b388ff", "#ffffff", "#ff5252")


@dataclass(frozen=True)
class Box:
    x: float
    y: float
    w: float
    h: float
    text: str  # class, confidence, colour: the list under the image and the label in the enlarged view
    colour: int  # index into BOX_COLOURS: one per class name, the same on every image
    judged: bool  # the judge counted it (a class the prompt names, kept by its threshold); else drawn on demand


@dataclass(frozen=True)
class Tile:
    sample_index: int
    thumb: Thumbnail | None
    full: str | None  # href of the original image, relative to the page
    value: float | None
    verdict: str | None  # "pass"/"fail" for a 0/1 metric
    text: str
    reason: str | None
    boxes: list[Box]
    width: int
    height: int


@dataclass(frozen=True)
class Cell:
    """One run's images of one prompt."""

    run_index: int
    score: float | None  # mean of the prompt's images (what sorting uses)
    text: str
    tiles: list[Tile]


@dataclass(frozen=True)
class Card:
    order: int
    prompt_id: str
    prompt: str
    tags: tuple[str, ...]
    cells: list[Cell | None]  # one per run; None where a run lacks the prompt


@dataclass(frozen=True)
class RunHeader:
    label: str
    colour: str
    task: str
    split: str | None
    model: str | None
    n_prompts: int
    n_images: int
    verdict: str  # official, or what makes the run unofficial or a subset


def is_binary(run: ViewRun) -> bool:
    """A 0/1 metric (GenEval's `correct`): shown as a verdict per image, a count per prompt."""
    return all(s.value in (0.0, 1.0) for s in run.samples if s.metric == run.metric)


def box_colour(name: str) -> int:
    return int(hashlib.sha256(name.encode("utf-8")).hexdigest(), 16) % len(BOX_COLOURS)


def boxes_for(run: ViewRun, key: tuple[str, int], metadata: dict[str, Any]) -> list[Box]:
    """The image's detections: those the judge counted, then the best few others."""
    found = run.detections.get(key)
    if not found or run.judge is None:
        return []
    named = {c.get("class") for key in ("include", "exclude") for c in metadata.get(key) or [] if isinstance(c, dict)}
    kept = kept_by_class({n: o for n, o in found.items() if n in named}, metadata.get("tag", ""), run.judge)
    judged = {(n, id(o)) for n, objects in kept.items() for o in objects}
    ranked = sorted(((o, n) for n, objects in found.items() for o in objects), key=lambda item: -item[0].score)
    others = [(o, n, False) for o, n in ranked if (n, id(o)) not in judged][:OTHER_DETECTIONS]
    counted = [(o, n, True) for o, n in ranked if (n, id(o)) in judged]
    return [_box(o, n, j) for o, n, j in others[::-1] + counted[::-1]]  # drawn in order: best on top


def _box(obj: DetectedObject, name: str, judged: bool) -> Box:
    x1, y1, x2, y2 = obj.box
    text = f"{name} {obj.score:.2f}" + (f" {obj.color}" if obj.color else "")
    return Box(
        round(x1, 1),
        round(y1, 1),
        round(max(x2 - x1, 1.0), 1),
        round(max(y2 - y1, 1.0), 1),
        text,
        box_colour(name),
        judged,
    )


def _verdict(value: float | None, binary: bool) -> tuple[str | None, str]:
    if value is None:
        return None, "not scored"
    if binary:
        return ("pass", "\u2713 correct") if value == 1.0 else ("fail", "\u2717 wrong")
    return None, numbers.score(value)


def build_cards(runs: list[ViewRun], thumbs: dict[str, Thumbnail], page_dir: Path) -> list[Card]:
    prompts: dict[str, Any] = {}
    for run in runs:
        for prompt in run.prompts:
            prompts.setdefault(prompt.prompt_id, prompt)
    per_run = [_run_cells(index, run, thumbs, page_dir) for index, run in enumerate(runs)]
    cards = []
    for order, (pid, prompt) in enumerate(prompts.items()):
        cards.append(Card(order, pid, prompt.prompt, prompt.tags, [cells.get(pid) for cells in per_run]))
    return cards


def _run_cells(index: int, run: ViewRun, thumbs: dict[str, Thumbnail], page_dir: Path) -> dict[str, Cell]:
    binary = is_binary(run)
    values = {(s.prompt_id, s.sample_index): s for s in run.samples if s.metric == run.metric}
    images = {(i.prompt_id, i.sample_index): i for i in run.images}
    keys = sorted(set(values) | set(images), key=lambda k: k[1])
    by_prompt: dict[str, list[tuple[str, int]]] = {}
    for key in keys:
        by_prompt.setdefault(key[0], []).append(key)
    root = Path(os.path.relpath(run.root.resolve(), page_dir.resolve())).as_posix()
    cells = {}
    for prompt in run.prompts:
        tiles = []
        for key in by_prompt.get(prompt.prompt_id, []):
            sample, image = values.get(key), images.get(key)
            thumb = thumbs.get(image.sha256) if image and image.sha256 else None
            value = sample.value if sample else None
            verdict, text = _verdict(value, binary)
            size = (thumb.width, thumb.height) if thumb else (1, 1)
            full = quote(posixpath.normpath(posixpath.join(root, image.path))) if image and thumb else None
            tiles.append(
                Tile(
                    key[1],
                    thumb,
                    full,
                    value,
                    verdict,
                    text,
                    sample.reason if sample else None,
                    boxes_for(run, key, prompt.metadata) if thumb else [],
                    *size,
                )
            )
        scored = [t.value for t in tiles if t.value is not None]
        score = sum(scored) / len(scored) if scored else None
        if score is None:
            text = "not scored"
        elif binary:
            text = f"{int(sum(scored))}/{len(scored)} correct"
        else:
            text = f"mean {numbers.score(score)}" if len(scored) > 1 else numbers.score(score)
        cells[prompt.prompt_id] = Cell(index, score, text, tiles)
    return cells


def _headers(runs: list[ViewRun]) -> list[RunHeader]:
    out = []
    for index, run in enumerate(runs):
        out.append(
            RunHeader(
                run.label,
                RUN_COLOURS[index % len(RUN_COLOURS)],
                run.task,
                run.split,
                run.model,
                len(run.prompts),
                len(run.images),
                run.verdict,
            )
        )
    return out


def _escape(value: Any):
    """Text in every {{ value }} goes through html.escape, as on the rater sheets (numbers need no escaping,
    and autoescape passes markup the template built)."""
    from markupsafe import Markup

    if value is None:
        return ""
    if isinstance(value, (Markup, int, float)):
        return value
    return Markup(html.escape(str(value)))


def render_view(runs: list[ViewRun], thumbs: dict[str, Thumbnail], page_dir: Path, *, nonce: str | None = None) -> str:
    """The page for `runs` (side by side when several). `thumbs` maps image sha256 -> thumbnail."""
    import jinja2

    if not runs:
        raise UsageError("ts-eval view needs at least one run directory")
    tasks = sorted({run.task for run in runs})
    if len(tasks) > 1:
        raise UsageError(f"runs of different tasks cannot share a view: {', '.join(tasks)}")
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("ts_eval.report", "templates"),
        autoescape=True,
        finalize=_escape,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )
    cards = build_cards(runs, thumbs, page_dir)
    tags = sorted({t for card in cards for t in card.tags})
    tiles_per_card = sum(
        max((len(c.tiles) for card in cards if (c := card.cells[i])), default=1) for i in range(len(runs))
    )
    tile_px = WIDE_TILE_PX if tiles_per_card <= 2 else TILE_PX
    return env.get_template("view.html.j2").render(
        title=f"{tasks[0]}: " + " vs ".join(run.label for run in runs),
        runs=_headers(runs),
        chart=build_chart(runs),
        cards=cards,
        tags=tags,
        nonce=nonce or secrets.token_urlsafe(18),
        card_px=tiles_per_card * (tile_px + 8) + 18,
        tile_px=tile_px,
        box_colours=BOX_COLOURS,
        has_boxes=any(run.detections for run in runs),
        metric=runs[0].metric,
    )


def thumbnail_sources(runs: list[ViewRun]) -> dict[str, Path]:
    """sha256 -> image file of every image in `runs`."""
    return {image.sha256: run.root / image.path for run in runs for image in run.images if image.sha256}


def write_view(runs: list[ViewRun], out: str | Path, *, embed: bool = False, progress: bool = True) -> Path:
    """Write the report to `out` and its thumbnails to `<out stem>-thumbs/` beside it; returns `out`."""
    out = Path(out)
    if out.is_dir():
        raise UsageError(f"--out {out} is a folder; give a file name such as {out / 'report.html'}")
    page_dir = out.parent if str(out.parent) else Path(".")
    thumbs = make_thumbnails(
        thumbnail_sources(runs), page_dir / f"{out.stem}-thumbs", page_dir, embed=embed, progress=progress
    )
    write_atomic(out, render_view(runs, thumbs, page_dir).encode("utf-8"))
    return out
