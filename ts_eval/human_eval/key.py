"""The answer key of a side-by-side study (format `ts-eval/human-key@1`): which run each sheet row shows
on which side. It is written next to, never inside, the `sheets/` folder handed to raters."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ts_eval.errors import UsageError
from ts_eval.store import write_json

KEY_FORMAT = "ts-eval/human-key@1"
KEY_FILE = "key.json"
SHEETS_DIR = "sheets"
SIDES = ("left", "tie", "right")  # what a rater answers per aspect
KINDS = ("pair", "gold", "repeat")


@dataclass(frozen=True)
class KeyItem:
    """One sheet row.

    pair:   `left` is the run ("a" or "b") shown on the left.
    repeat: a second showing of `repeat_of` on the same sheet with the sides swapped (self-consistency).
    gold:   an attention check: the prompt's own image from run `left` beside the image of another prompt
            (`decoy`); `expected` is the side an attentive rater prefers on the gold aspect.
    """

    item_id: str
    rater: str
    prompt_id: str
    sample_index: int
    left: str
    kind: str = "pair"
    repeat_of: str | None = None
    expected: str | None = None
    decoy: dict[str, Any] | None = None

    def to_row(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


@dataclass
class AnswerKey:
    study_id: str
    a: str
    b: str
    runs: dict[str, str]
    aspects: list[str]
    raters: list[str]
    seed: int
    items: dict[str, KeyItem] = field(default_factory=dict)
    gold_aspect: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "format": KEY_FORMAT,
            "study_id": self.study_id,
            "a": self.a,
            "b": self.b,
            "runs": self.runs,
            "aspects": self.aspects,
            "raters": self.raters,
            "seed": self.seed,
            "gold_aspect": self.gold_aspect,
            "items": [item.to_row() for item in self.items.values()],
        }


def write_key(path: Path, key: AnswerKey) -> None:
    write_json(path, key.to_json())


def read_key(path: str | Path) -> AnswerKey:
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"answer key {path} not found; pass the key.json written by `ts-eval human-eval export`")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise UsageError(f"{path}: not a JSON answer key (malformed JSON)") from None
    if not isinstance(data, dict) or data.get("format") != KEY_FORMAT:
        raise UsageError(
            f"{path}: not a {KEY_FORMAT} answer key; pass the key.json written by `ts-eval human-eval export`"
        )
    try:
        items = [KeyItem(**row) for row in data["items"]]
        key = AnswerKey(
            study_id=data["study_id"],
            a=data["a"],
            b=data["b"],
            runs=data["runs"],
            aspects=list(data["aspects"]),
            raters=list(data["raters"]),
            seed=int(data["seed"]),
            items={item.item_id: item for item in items},
            gold_aspect=data.get("gold_aspect"),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise UsageError(f"{path}: answer key is incomplete ({exc})") from None
    if len(key.items) != len(items) or any(i.kind not in KINDS for i in items):
        raise UsageError(f"{path}: answer key has duplicate item ids or unknown item kinds")
    return key
