"""`human-eval import`: filled sheets + answer key -> validated, un-blinded judgements.

A sheet that cannot be read, lacks columns, or belongs to another study stops the import (usage error,
nothing written). Row-level problems (unknown item ids, rows on the wrong sheet, duplicates, empty or
out-of-range answers) are excluded from the counts and listed in study.json, never counted.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from ts_eval.errors import UsageError
from ts_eval.human_eval.key import SIDES, AnswerKey, KeyItem, read_key
from ts_eval.human_eval.sheets import read_sheet
from ts_eval.human_eval.study import Exclusion, Judgement, Study

# The sheet asks "which side is better"; the key says which run was on the left.
_OUTCOME = {("a", "left"): "win", ("a", "right"): "lose", ("b", "left"): "lose", ("b", "right"): "win"}


def outcome(left_run: str, answer: str) -> str:
    return "tie" if answer == "tie" else _OUTCOME[(left_run, answer)]


@dataclass(frozen=True)
class _Row:
    source: str
    item: KeyItem
    answers: dict[str, str | None]  # aspect -> left/tie/right, None when empty or invalid


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _read_rows(paths: list[Path], key: AnswerKey, key_path: Path, excluded: list[Exclusion]) -> list[_Row]:
    tables = [read_sheet(path, key.aspects) for path in paths]  # every sheet is checked before any row is used
    for table in tables:
        studies = {cells.get("study", "").strip() for _, cells in table.rows} - {""}
        foreign = studies - {key.study_id}
        if foreign:
            raise UsageError(
                f"{table.path} belongs to study {sorted(foreign)[0]}, but {key_path} is the key of "
                f"study {key.study_id}; use the key.json exported with these sheets"
            )
    rows = []
    for table in tables:
        for number, cells in table.rows:
            source = f"{table.path.name}:{number}"
            item_id, rater = cells["item_id"].strip(), cells["rater"].strip()
            if not cells["study"].strip():
                excluded.append(Exclusion(source, "row has no study id", item_id or None, rater or None))
                continue
            item = key.items.get(item_id)
            if item is None:
                excluded.append(
                    Exclusion(source, f"unknown item id {item_id!r} (not in the key)", item_id or None, rater or None)
                )
                continue
            if rater != item.rater:
                excluded.append(
                    Exclusion(
                        source,
                        f"item {item_id} is on {item.rater}'s sheet, this row says {rater!r}",
                        item_id,
                        rater or None,
                    )
                )
                continue
            answers: dict[str, str | None] = {}
            for aspect in key.aspects:
                value = cells[aspect].strip().lower()
                if value not in SIDES:
                    reason = (
                        "no answer"
                        if not value
                        else f"answer {cells[aspect].strip()!r} is not one of {', '.join(SIDES)}"
                    )
                    excluded.append(Exclusion(source, reason, item_id, rater, aspect))
                    value = None
                answers[aspect] = value
            rows.append(_Row(source, item, answers))
    return rows


def _drop_duplicates(rows: list[_Row], excluded: list[Exclusion]) -> dict[str, _Row]:
    """One answer per item: identical copies keep the first; copies that disagree are all excluded."""
    by_item: dict[str, list[_Row]] = defaultdict(list)
    for row in rows:
        by_item[row.item.item_id].append(row)
    kept = {}
    for item_id, copies in by_item.items():
        first = copies[0]
        if len(copies) == 1:
            kept[item_id] = first
        elif all(c.answers == first.answers for c in copies):
            kept[item_id] = first
            for copy in copies[1:]:
                excluded.append(
                    Exclusion(copy.source, f"duplicate of {first.source} (same answers)", item_id, first.item.rater)
                )
        else:
            where = ", ".join(c.source for c in copies)
            for copy in copies:
                excluded.append(
                    Exclusion(
                        copy.source,
                        f"item answered {len(copies)} times with different answers ({where})",
                        item_id,
                        first.item.rater,
                    )
                )
    return kept


def _checks(key: AnswerKey, kept: dict[str, _Row]) -> dict[str, dict]:
    raters: dict[str, dict] = {
        r: {"pairs": 0, "answered": 0, "gold": {"n": 0, "correct": 0}, "repeats": {"n": 0, "consistent": 0}}
        for r in key.raters
    }
    for item in key.items.values():
        stats = raters[item.rater]
        row = kept.get(item.item_id)
        if item.kind == "pair":
            stats["pairs"] += 1
            stats["answered"] += row is not None
        elif (
            item.kind == "gold" and row is not None and key.gold_aspect is not None and row.answers.get(key.gold_aspect)
        ):
            stats["gold"]["n"] += 1
            stats["gold"]["correct"] += row.answers[key.gold_aspect] == item.expected
        elif item.kind == "repeat" and row is not None and item.repeat_of in kept:
            original = kept[item.repeat_of]
            original_item = key.items[item.repeat_of]
            for aspect in key.aspects:
                first, again = original.answers[aspect], row.answers[aspect]
                if first and again:
                    stats["repeats"]["n"] += 1
                    stats["repeats"]["consistent"] += outcome(original_item.left, first) == outcome(item.left, again)
    return raters


def import_sheets(sheets: list[str | Path], key_path: str | Path, *, min_gold: float | None = None) -> Study:
    key_path = Path(key_path)
    key = read_key(key_path)
    paths = [Path(s) for s in sheets]
    if not paths:
        raise UsageError("give at least one filled sheet")
    if min_gold is not None and not 0.0 <= min_gold <= 1.0:
        raise UsageError(f"--min-gold is a share between 0 and 1, got {min_gold}")
    excluded: list[Exclusion] = []
    kept = _drop_duplicates(_read_rows(paths, key, key_path, excluded), excluded)
    checks = _checks(key, kept)

    dropped_raters = set()
    if min_gold is not None:
        for rater, stats in checks.items():
            gold = stats["gold"]
            if gold["n"] and gold["correct"] / gold["n"] < min_gold:
                dropped_raters.add(rater)
                excluded.append(
                    Exclusion(
                        rater,
                        f"rater failed attention checks: {gold['correct']}/{gold['n']} "
                        f"gold items right, below --min-gold {min_gold}",
                        rater=rater,
                    )
                )

    judgements = []
    for row in kept.values():
        if row.item.kind != "pair" or row.item.rater in dropped_raters:
            continue  # gold and repeat items check raters; counting them would weight some pairs twice
        for aspect in key.aspects:
            answer = row.answers[aspect]
            if answer is not None:
                judgements.append(
                    Judgement(
                        row.item.prompt_id,
                        row.item.sample_index,
                        row.item.item_id,
                        row.item.rater,
                        aspect,
                        outcome(row.item.left, answer),
                    )
                )
    judgements.sort(key=lambda j: (j.prompt_id, j.sample_index, j.rater, key.aspects.index(j.aspect)))
    source = {
        "kind": "sheets",
        "study_id": key.study_id,
        "key": str(key_path),
        "runs": key.runs,
        "sheets": [{"path": str(p), "sha256": _sha256(p)} for p in paths],
        "min_gold": min_gold,
    }
    return Study(
        a=key.a,
        b=key.b,
        aspects=list(key.aspects),
        source=source,
        judgements=judgements,
        excluded=excluded,
        checks={"raters": checks},
    )
