"""The study folder every import writes and `report` reads (format `ts-eval/human-study@1`).

study.json        {"format", "a", "b", "aspects", "source", "excluded", "checks", "agreement"?}
judgements.jsonl  one row per counted answer: prompt_id, sample_index, item_id, rater, aspect,
                  outcome ("win" | "tie" | "lose", always from A's side)
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ts_eval.errors import UsageError
from ts_eval.store import read_jsonl, write_json, write_jsonl

FORMAT = "ts-eval/human-study@1"
STUDY = "study.json"
JUDGEMENTS = "judgements.jsonl"

# The paper's three aspects (Token-Shuffle Fig. 5); a study may use any subset or its own names.
ASPECTS = ("text_alignment", "visual_flaws", "visual_appearance")
OUTCOMES = ("win", "tie", "lose")


@dataclass(frozen=True)
class Judgement:
    """One counted answer, already un-blinded: `outcome` says how A fared against B."""

    prompt_id: str
    sample_index: int
    item_id: str
    rater: str
    aspect: str
    outcome: str

    def to_row(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Judgement:
        return cls(
            prompt_id=str(row["prompt_id"]),
            sample_index=int(row["sample_index"]),
            item_id=str(row["item_id"]),
            rater=str(row["rater"]),
            aspect=str(row["aspect"]),
            outcome=str(row["outcome"]),
        )


@dataclass(frozen=True)
class Exclusion:
    """An input left out of the counts, and why (shown to the user, stored in study.json)."""

    source: str  # file and row, e.g. "rater-01.csv:7", or a prompt id
    reason: str
    item_id: str | None = None
    rater: str | None = None
    aspect: str | None = None

    def to_row(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


@dataclass
class Study:
    a: str
    b: str
    aspects: list[str]
    source: dict[str, Any]
    judgements: list[Judgement]
    excluded: list[Exclusion] = field(default_factory=list)
    checks: dict[str, Any] = field(default_factory=dict)
    agreement: dict[str, Any] | None = None  # set by imports that hold the raw ratings (likert)


def write_study(folder: str | Path, study: Study) -> Path:
    """Each file is replaced atomically; callers validate everything before calling this."""
    folder = Path(folder)
    meta: dict[str, Any] = {
        "format": FORMAT,
        "a": study.a,
        "b": study.b,
        "aspects": study.aspects,
        "source": study.source,
        "excluded": [e.to_row() for e in study.excluded],
        "checks": study.checks,
    }
    if study.agreement is not None:
        meta["agreement"] = study.agreement
    write_jsonl(folder / JUDGEMENTS, (j.to_row() for j in study.judgements))
    write_json(folder / STUDY, meta)
    return folder


def read_study(folder: str | Path) -> Study:
    folder = Path(folder)
    path = folder / STUDY
    if not path.is_file():
        raise UsageError(
            f"{folder} is not a human-eval study folder (no {STUDY}); "
            "make one with `ts-eval human-eval import` or `import-likert`"
        )
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise UsageError(f"{path}: malformed JSON") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise UsageError(f"{path}: not a {FORMAT} file")
    try:
        judgements = [Judgement.from_row(r) for r in read_jsonl(folder / JUDGEMENTS)]
        excluded = [Exclusion(**e) for e in meta.get("excluded", [])]
        return Study(
            a=meta["a"],
            b=meta["b"],
            aspects=list(meta["aspects"]),
            source=meta.get("source", {}),
            judgements=judgements,
            excluded=excluded,
            checks=meta.get("checks", {}),
            agreement=meta.get("agreement"),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise UsageError(f"{folder}: study files are incomplete ({exc})") from None
