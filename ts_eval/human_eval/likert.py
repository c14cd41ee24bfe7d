"""`human-eval import-likert`: GenAI-Bench's human ratings (per prompt, per model, three 1-5 alignment
ratings) -> pairwise judgements of model A against model B.

Per prompt the two models' mean ratings decide: A's mean higher = win, equal = tie, lower = lose, on
the aspect `text_alignment`. Only the two compared models' ratings are read: a prompt is excluded (and
named) when A's or B's ratings hold a value outside 1..5 (the published file has two typos, DALLE_3's 41 on
00232 and DeepFloyd_I_XL_v1's 33 on 00253), while a typo in a third model's ratings changes nothing here.
Prompt ids are the file's keys ("00001".., as in a run), not its `id` fields, which drop the leading
zeros from prompt 292 on.
"""

from __future__ import annotations

import hashlib
import json
from fractions import Fraction
from pathlib import Path
from typing import Any

from ts_eval.errors import UsageError
from ts_eval.human_eval.agreement import krippendorff_alpha
from ts_eval.human_eval.study import Exclusion, Judgement, Study

LIKERT = range(1, 6)


def _valid(rating: Any) -> bool:
    return isinstance(rating, int) and not isinstance(rating, bool) and rating in LIKERT


def load_ratings(path: str | Path) -> dict[str, dict[str, list]]:
    """prompt id -> model -> ratings, with the file's shape checked."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"ratings file {path} not found (GenAI-Bench's genai_image.json)")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise UsageError(f"{path}: malformed JSON") from None
    if not isinstance(data, dict) or not data:
        raise UsageError(f"{path}: expected GenAI-Bench's genai_image.json (an object keyed by prompt id)")
    ratings = {}
    for prompt_id, record in data.items():
        models = record.get("models") if isinstance(record, dict) else None
        if not isinstance(models, dict) or not all(isinstance(r, list) for r in models.values()):
            raise UsageError(
                f"{path}: prompt {prompt_id} has no 'models' object of rating lists; "
                "is this GenAI-Bench's genai_image.json?"
            )
        ratings[str(prompt_id)] = models
    return ratings


def compare(ratings_a: list[int], ratings_b: list[int]) -> str:
    mean_a, mean_b = Fraction(sum(ratings_a), len(ratings_a)), Fraction(sum(ratings_b), len(ratings_b))
    return "win" if mean_a > mean_b else "tie" if mean_a == mean_b else "lose"


def import_likert(path: str | Path, a: str, b: str, aspect: str = "text_alignment") -> Study:
    path = Path(path)
    ratings = load_ratings(path)
    known = sorted({m for models in ratings.values() for m in models})
    for name in (a, b):
        if name not in known:
            raise UsageError(f"model {name!r} is not in {path}; choose from: {', '.join(known)}")
    if a == b:
        raise UsageError("--a and --b name the same model")
    judgements, excluded = [], []
    alpha_values: dict[tuple[str, str], dict[int, int]] = {}
    for prompt_id in sorted(ratings):
        models = ratings[prompt_id]
        bad = [(model, r) for model in (a, b) for r in models.get(model) or () if not _valid(r)]
        if bad:
            model, rating = bad[0]
            excluded.append(
                Exclusion(prompt_id, f"rating {rating!r} outside 1..5 ({model}: {models[model]}); prompt left out")
            )
            continue
        missing = [m for m in (a, b) if not models.get(m)]
        if missing:
            excluded.append(Exclusion(prompt_id, f"no ratings for {', '.join(missing)}"))
            continue
        judgements.append(Judgement(prompt_id, 0, prompt_id, "mean", aspect, compare(models[a], models[b])))
        for model in (a, b):
            # The file does not say who gave which rating; alpha needs only the ratings of each image.
            alpha_values[(prompt_id, model)] = dict(enumerate(models[model]))
    agreement = krippendorff_alpha(alpha_values, "ordinal")
    agreement["on"] = f"the 1-5 ratings of {a}'s and {b}'s images"
    source = {
        "kind": "likert",
        "file": str(path),
        "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        "prompts": len(ratings),
        "rule": "mean of the ratings per image; higher mean wins, equal ties",
    }
    return Study(
        a=a,
        b=b,
        aspects=[aspect],
        source=source,
        judgements=judgements,
        excluded=excluded,
        agreement={aspect: agreement},
    )
