"""Harness overhead: a fresh 1,600-prompt GenAI-Bench run with the dummy model and scorer, then a cached rerun.

Overhead is everything outside generator.generate() and scorer.score(): prompt loading, seeding, PNG
encoding + hashing, atomic writes, progress files, resume checks, cache lookups, summary with bootstrap CIs.
The script times the model calls separately and prints the per-image overhead, to be set against a real
scorer's per-image cost (CLIP-FlanT5-XXL takes tens of milliseconds per image on a GPU).

    python benchmarks/harness_overhead.py [--prompts 1600] [--json OUT.json]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from ts_eval import run
from ts_eval.generators.dummy import DummyGenerator
from ts_eval.scorers.dummy import DummyScorer
from ts_eval.store import write_json

SKILLS = [
    "attribute",
    "scene",
    "spatial relation",
    "action relation",
    "part relation",
    "counting",
    "comparison",
    "differentiation",
    "negation",
    "universal",
]


OFFICIAL_1600 = {"basic": 722, "advanced": 871}  # the counts ts-eval checks when it loads the 1600 set


def synthetic_genai_bench(folder: Path, n_prompts: int = 1600) -> None:
    """A data folder in the 1600 set's file format (genai_image.json + genai_skills.json), with its official
    counts: 722 basic, 871 advanced, 7 untagged (skills spread over them for the per-skill groups)."""
    if n_prompts != 1600:
        raise SystemExit("the synthetic 1600 set must have 1600 prompts: ts-eval checks the official counts")
    folder.mkdir(parents=True, exist_ok=True)
    images = {
        f"{i:05d}": {"id": f"{i:05d}", "prompt": f"prompt number {i} with a red cube left of a blue ball"}
        for i in range(1, n_prompts + 1)
    }
    skills: dict[str, list[int]] = {"basic": [], "advanced": []}
    for i in range(1, n_prompts + 1):
        if i <= OFFICIAL_1600["basic"]:
            skills["basic"].append(i)
        elif i <= OFFICIAL_1600["basic"] + OFFICIAL_1600["advanced"]:
            skills["advanced"].append(i)
        else:
            continue
        skills.setdefault(SKILLS[i % len(SKILLS)], []).append(i)
    (folder / "genai_image.json").write_text(json.dumps(images))
    (folder / "genai_skills.json").write_text(json.dumps(skills))


class Timed:
    """Accumulates seconds spent inside one method of a class."""

    def __init__(self, cls, method: str):
        self.seconds = 0.0
        original = getattr(cls, method)

        def wrapper(obj, *args, **kwargs):
            start = time.perf_counter()
            try:
                return original(obj, *args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - start

        setattr(cls, method, wrapper)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=1600, help="1600 (the official count is checked on load)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    generate_time = Timed(DummyGenerator, "generate")
    score_time = Timed(DummyScorer, "score")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        data, out = Path(tmp) / "data", Path(tmp) / "run"
        synthetic_genai_bench(data, args.prompts)
        options = dict(
            variant="1600",
            data=str(data),
            split="all",
            model="dummy",
            scorer="dummy",
            out=str(out),
            progress=False,
            view=False,
        )
        import os

        os.environ["TS_EVAL_CACHE_DIR"] = str(Path(tmp) / "cache")
        for label in ("fresh", "cached rerun"):
            before_gen, before_score = generate_time.seconds, score_time.seconds
            start = time.perf_counter()
            run("genai-bench", **options)
            wall = time.perf_counter() - start
            model = (generate_time.seconds - before_gen) + (score_time.seconds - before_score)
            rows.append(
                {
                    "run": label,
                    "images": args.prompts,
                    "wall_s": round(wall, 3),
                    "model_s": round(model, 3),
                    "overhead_s": round(wall - model, 3),
                    "overhead_ms_per_image": round(1000 * (wall - model) / args.prompts, 3),
                }
            )

    header = f"{'run':<14}{'images':>8}{'wall s':>10}{'model s':>10}{'overhead s':>12}{'ms/img':>9}"
    print(header)
    for r in rows:
        print(
            f"{r['run']:<14}{r['images']:>8}{r['wall_s']:>10.2f}{r['model_s']:>10.2f}{r['overhead_s']:>12.2f}"
            f"{r['overhead_ms_per_image']:>9.2f}"
        )
    if args.json:
        write_json(args.json, {"rows": rows})


if __name__ == "__main__":
    main()
