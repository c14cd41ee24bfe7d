"""`leaderboard add --verify K|all`: re-score K randomly chosen images of a submission (or all) and compare.

The scorer is rebuilt through the registry from the settings the manifest records, and must describe
itself exactly as the manifest's scorer does, or the comparison would prove nothing.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from tqdm.auto import tqdm

from ts_eval.leaderboard.archive import reject
from ts_eval.leaderboard.validate import Validated
from ts_eval.records import Prompt, ScoreRequest
from ts_eval.store import RunDir


@dataclass(frozen=True)
class VerifyOptions:
    k: int | None  # None: every image
    seed: int
    tolerance: float = 0.01  # VQAScore moves ~1e-3 between GPUs and dtypes; an edited score moves far more
    device: str = "auto"
    dtype: str = "auto"
    batch_size: int = 8


def rebuild_scorer(validated: Validated, options: VerifyOptions, archive):
    from ts_eval.pipeline import build_scorer

    manifest = validated.candidate.manifest
    recorded = manifest.get("scorer_options") or {}  # how the run's scorer was built
    scorer = build_scorer(
        validated.spec,
        recorded.get("name"),
        dict(recorded.get("args") or {}),
        device=options.device,
        batch_size=options.batch_size,
    )
    if scorer.describe() != manifest.get("scorer"):
        raise reject(
            archive,
            f"cannot verify: the scorer recorded in the manifest ({manifest.get('scorer')}) "
            f"cannot be rebuilt from its settings (got {scorer.describe()})",
        )
    return scorer


def verify_scores(validated: Validated, options: VerifyOptions, archive) -> int:
    """Re-score K images (all when K is None); returns how many were checked, or rejects on the first value
    beyond tolerance."""
    files = validated.files
    if validated.candidate.images == 0:
        raise reject(archive, "--verify needs the images; submit with --include-images")
    if options.k is not None and options.k < 1:
        raise reject(archive, f"--verify must be at least 1, got {options.k}")
    rows = sorted(files.images, key=lambda r: (r["prompt_id"], int(r["sample_index"])))
    if options.k is None or options.k >= len(rows):
        chosen = rows
    else:
        chosen = random.Random(options.seed).sample(rows, options.k)
    prompts = {r["prompt_id"]: Prompt.from_row(r) for r in files.prompts}
    run = RunDir(files.path)
    requests = [
        ScoreRequest(
            prompts[r["prompt_id"]],
            int(r["sample_index"]),
            str(files.path / run.image_relpath(r["prompt_id"], int(r["sample_index"]))),
            r["sha256"],
        )
        for r in chosen
    ]
    submitted = {(s["prompt_id"], int(s["sample_index"]), s["metric"]): float(s["value"]) for s in files.samples}
    scorer = rebuild_scorer(validated, options, archive)
    # leave=False: the bar is wiped when it ends, so a rejection prints its one line alone.
    with tqdm(total=len(requests), desc="re-score", unit="img", disable=None, leave=False) as progress:
        for start in range(0, len(requests), max(1, options.batch_size)):
            batch = requests[start : start + options.batch_size]
            progress.update(len(batch))
            for request, scored in zip(batch, scorer.score(batch)):
                for sample in scored.samples:
                    key = (request.prompt.prompt_id, request.sample_index, sample.metric)
                    claimed = submitted.get(key)
                    if claimed is None or abs(claimed - sample.value) > options.tolerance:
                        raise reject(
                            archive,
                            f"re-scored image {key[0]}/{key[1]:04d}: {sample.metric} "
                            f"{sample.value:.6f} vs submitted {claimed} "
                            f"(tolerance {options.tolerance:g})",
                        )
    return len(requests)
