"""`human-eval export`: pair two runs' images, deal them out to raters, write sheets and the answer key.

Randomness (which items each rater gets, row order, left/right, gold and repeat items) comes from one
generator seeded by `--seed`, so the same runs and options give the same sheets and key (the HTML page
differs only in its random script nonce). The study id hashes the options and the image checksums:
sheets of one study never validate against another's key.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from ts_eval.errors import UsageError
from ts_eval.human_eval import html_page
from ts_eval.human_eval import sheets as sheet_files
from ts_eval.human_eval.key import KEY_FILE, SHEETS_DIR, AnswerKey, KeyItem, write_key
from ts_eval.human_eval.sheets import SheetRow
from ts_eval.human_eval.study import ASPECTS
from ts_eval.records import Prompt
from ts_eval.store import PROMPTS, write_atomic

FORMATS = ("html", "csv", "xlsx")
GOLD_ASPECT = "text_alignment"  # a decoy image of another prompt is only clearly worse on alignment
_ASPECT_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")


@dataclass(frozen=True)
class PairedImage:
    """The two runs' images of one (prompt, sample index)."""

    prompt_id: str
    sample_index: int
    prompt: str
    image_a: Path
    image_b: Path
    sha256_a: str
    sha256_b: str


@dataclass
class ExportOptions:
    raters: int = 3
    per_rater: int | None = None  # None: every rater sees every pair
    aspects: tuple[str, ...] = ASPECTS
    formats: tuple[str, ...] = FORMATS
    seed: int = 0
    gold: int = 0  # attention-check items per rater
    duplicates: int = 0  # repeated items (sides swapped) per rater
    a_name: str | None = None
    b_name: str | None = None
    embed_images: bool = False
    overwrite: bool = False


@dataclass(frozen=True)
class _Planned:
    key: KeyItem
    prompt: str
    left: Path
    right: Path


def _run_images(path: str | Path) -> tuple[dict[tuple[str, int], tuple[Path, str]], dict[str, Prompt], str | None]:
    """A run's images (each present with its recorded bytes: the reader refuses a damaged run) and prompts."""
    from ts_eval.store.reader import read_run

    run = read_run(path, need="images")
    images = {(r.prompt_id, r.sample_index): (run.path / r.path, r.sha256) for r in run.images}
    if not images:
        raise UsageError(f"{run.path} has no images (imported results carry none); export needs generated images")
    return images, {p.prompt_id: p for p in run.prompts}, run.spec.name


def pair_runs(run_a: str | Path, run_b: str | Path) -> tuple[list[PairedImage], int]:
    """Images of the same prompt and sample index in both runs; returns them and how many had no partner."""
    images_a, prompts_a, task_a = _run_images(run_a)
    images_b, prompts_b, task_b = _run_images(run_b)
    if task_a and task_b and task_a != task_b:
        raise UsageError(f"{run_a} is a {task_a} run and {run_b} a {task_b} run; compare runs of one task")
    pairs = []
    for prompt_id, sample_index in sorted(images_a.keys() & images_b.keys()):
        prompt_a, prompt_b = prompts_a.get(prompt_id), prompts_b.get(prompt_id)
        if prompt_a is None or prompt_b is None:
            raise UsageError(
                f"prompt {prompt_id} has images but no row in {PROMPTS} of {run_a if prompt_a is None else run_b}"
            )
        if prompt_a.prompt != prompt_b.prompt:
            raise UsageError(f"prompt {prompt_id} differs between {run_a} and {run_b}; compare runs of one prompt set")
        (path_a, sha_a), (path_b, sha_b) = images_a[(prompt_id, sample_index)], images_b[(prompt_id, sample_index)]
        pairs.append(PairedImage(prompt_id, sample_index, prompt_a.prompt, path_a, path_b, sha_a, sha_b))
    if not pairs:
        raise UsageError(f"{run_a} and {run_b} share no (prompt, sample index); nothing to compare")
    unpaired = len(images_a) + len(images_b) - 2 * len(pairs)
    return pairs, unpaired


def check_options(options: ExportOptions, n_pairs: int) -> None:
    if options.raters < 1:
        raise UsageError(f"--raters must be at least 1, got {options.raters}")
    if options.per_rater is not None and not 1 <= options.per_rater <= n_pairs:
        raise UsageError(f"--per-rater must be between 1 and the {n_pairs} paired images, got {options.per_rater}")
    per_rater = options.per_rater or n_pairs
    if not options.aspects:
        raise UsageError("--aspects needs at least one aspect")
    for aspect in options.aspects:
        if not _ASPECT_NAME.match(aspect):
            raise UsageError(f"aspect {aspect!r} must be a lowercase name such as text_alignment")
    if len(set(options.aspects)) != len(options.aspects):
        raise UsageError("--aspects lists an aspect twice")
    unknown = [f for f in options.formats if f not in FORMATS]
    if unknown or not options.formats:
        raise UsageError(f"--format takes a comma list of {', '.join(FORMATS)}; got {','.join(options.formats)}")
    if options.gold < 0 or options.duplicates < 0:
        raise UsageError("--gold and --duplicates cannot be negative")
    if options.duplicates > per_rater:
        raise UsageError(f"--duplicates {options.duplicates} exceeds the {per_rater} items per rater")
    if options.gold and GOLD_ASPECT not in options.aspects:
        raise UsageError(f"--gold items check {GOLD_ASPECT}; add it to --aspects or drop --gold")


def study_id(pairs: list[PairedImage], options: ExportOptions) -> str:
    fingerprint = {
        "seed": options.seed,
        "raters": options.raters,
        "per_rater": options.per_rater,
        "aspects": list(options.aspects),
        "gold": options.gold,
        "duplicates": options.duplicates,
        "pairs": [[p.prompt_id, p.sample_index, p.sha256_a, p.sha256_b] for p in pairs],
    }
    # A leading letter keeps spreadsheets from reading an id as a number.
    return "s" + hashlib.sha256(json.dumps(fingerprint, sort_keys=True).encode()).hexdigest()[:12]


def rater_names(count: int) -> list[str]:
    width = max(2, len(str(count)))
    return [f"rater-{i:0{width}d}" for i in range(1, count + 1)]


def plan(pairs: list[PairedImage], options: ExportOptions, study: str) -> dict[str, list[_Planned]]:
    """Deal pairs to raters: a seeded permutation read in overlapping windows, so every pair is seen by
    about raters * per_rater / pairs raters and any two raters share items (needed for agreement)."""
    rng = np.random.default_rng(options.seed)
    n = len(pairs)
    per_rater = options.per_rater or n
    order = rng.permutation(n)
    sheets: dict[str, list[_Planned]] = {}
    for r, rater in enumerate(rater_names(options.raters)):
        chosen = [pairs[order[(r * per_rater + j) % n]] for j in range(per_rater)]
        entries: list[tuple[str, PairedImage, dict]] = [
            ("pair", p, {"left": "a" if rng.random() < 0.5 else "b"}) for p in chosen
        ]
        for index in rng.choice(len(chosen), size=options.duplicates, replace=False):
            entries.append(("repeat", chosen[index], {"of": int(index)}))
        for _ in range(options.gold):
            match = pairs[int(rng.integers(n))]
            decoys = [p for p in pairs if p.prompt_id != match.prompt_id]
            if not decoys:
                raise UsageError("--gold items need images of at least two prompts")
            entries.append(
                (
                    "gold",
                    match,
                    {
                        "decoy": decoys[int(rng.integers(len(decoys)))],
                        "run": "a" if rng.random() < 0.5 else "b",
                        "side": "left" if rng.random() < 0.5 else "right",
                    },
                )
            )
        order_on_sheet = rng.permutation(len(entries))
        # Ids hash the position on the sheet, so they say nothing about the prompt or the run.
        ids = {
            int(entry): "i" + hashlib.sha256(f"{study}:{rater}:{position}".encode()).hexdigest()[:10]
            for position, entry in enumerate(order_on_sheet)
        }
        planned = []
        for entry in order_on_sheet:
            kind, pair, extra = entries[int(entry)]
            item_id = ids[int(entry)]
            if kind == "gold":
                run = extra["run"]
                own = pair.image_a if run == "a" else pair.image_b
                other = extra["decoy"].image_a if run == "a" else extra["decoy"].image_b
                key = KeyItem(
                    item_id,
                    rater,
                    pair.prompt_id,
                    pair.sample_index,
                    run,
                    kind="gold",
                    expected=extra["side"],
                    decoy={"prompt_id": extra["decoy"].prompt_id, "sample_index": extra["decoy"].sample_index},
                )
                left_path, right_path = (own, other) if extra["side"] == "left" else (other, own)
            else:
                if kind == "pair":
                    left, repeat_of = extra["left"], None
                else:  # the repeat shows the sides the other way round
                    left = "b" if entries[extra["of"]][2]["left"] == "a" else "a"
                    repeat_of = ids[extra["of"]]
                key = KeyItem(item_id, rater, pair.prompt_id, pair.sample_index, left, kind=kind, repeat_of=repeat_of)
                left_path, right_path = (pair.image_a, pair.image_b) if left == "a" else (pair.image_b, pair.image_a)
            planned.append(_Planned(key, pair.prompt, left_path, right_path))
        sheets[rater] = planned
    return sheets


def _prepare_out(out: Path, overwrite: bool) -> None:
    existing = [p for p in (out / KEY_FILE, out / SHEETS_DIR) if p.exists()]
    if existing and not overwrite:
        raise UsageError(
            f"{out} already holds a study ({existing[0].name}); sheets sent out need that key: "
            "choose another --out, or pass --overwrite"
        )
    if overwrite:
        shutil.rmtree(out / SHEETS_DIR, ignore_errors=True)
        (out / KEY_FILE).unlink(missing_ok=True)


def export_study(run_a: str | Path, run_b: str | Path, out: str | Path, options: ExportOptions) -> AnswerKey:
    out = Path(out)
    pairs, unpaired = pair_runs(run_a, run_b)
    check_options(options, len(pairs))
    study = study_id(pairs, options)
    planned = plan(pairs, options, study)
    _prepare_out(out, options.overwrite)

    sheets_dir = out / SHEETS_DIR
    key = AnswerKey(
        study_id=study,
        a=options.a_name or Path(run_a).resolve().name,
        b=options.b_name or Path(run_b).resolve().name,
        runs={"a": str(Path(run_a).resolve()), "b": str(Path(run_b).resolve())},
        aspects=list(options.aspects),
        raters=list(planned),
        seed=options.seed,
        gold_aspect=GOLD_ASPECT if options.gold else None,
    )
    progress = tqdm(total=sum(map(len, planned.values())), desc="sheet rows", disable=None)
    for rater, entries in planned.items():
        rows = []
        for number, entry in enumerate(entries, start=1):
            progress.update()
            item_id = entry.key.item_id
            # Copies under opaque names: a file name must not tell a rater which run an image came from.
            names = []
            for side, source in (("left", entry.left), ("right", entry.right)):
                name = f"images/{item_id}-{side}{source.suffix.lower()}"
                write_atomic(sheets_dir / name, source.read_bytes())
                names.append(name)
            rows.append(SheetRow(number, item_id, entry.prompt, names[0], names[1]))
            key.items[item_id] = entry.key
        if "html" in options.formats:
            page = html_page.render(study, rater, list(options.aspects), rows, sheets_dir, options.embed_images)
            write_atomic(sheets_dir / f"{rater}.html", page.encode("utf-8"))
        if "csv" in options.formats:
            sheet_files.write_csv(sheets_dir / f"{rater}.csv", study, rater, list(options.aspects), rows)
        if "xlsx" in options.formats:
            sheet_files.write_xlsx(sheets_dir / f"{rater}.xlsx", study, rater, list(options.aspects), rows, sheets_dir)
    progress.close()
    # The key last: a folder with a key always has complete sheets.
    write_key(out / KEY_FILE, key)
    if unpaired:
        print(f"{unpaired} images had no partner in the other run and were left out", file=sys.stderr)
    return key
