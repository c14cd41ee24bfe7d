"""`ts-eval rescore RUN`: re-judge every image of a GenEval run from its detections.jsonl, with no model.

Detections hold every object the detector returned (with the colour of each object that could pass a
threshold), so the judge's settings may change here too (e.g. `threshold=0.4`) as long as no colour is
needed that was never classified. Everything is checked and judged in memory first; then samples.jsonl
and summary.json are each replaced atomically, so a failed rescore leaves the previous results in place.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from tqdm.auto import tqdm

from ts_eval.errors import UsageError
from ts_eval.geneval.rules import JudgeSettings, MissingColor, check_metadata, judge, objects_from_row
from ts_eval.geneval.scorer import JUDGE_DEFAULTS, judge_settings
from ts_eval.options import parse_options
from ts_eval.records import Prompt, Sample, readable
from ts_eval.store import DETECTIONS, PROMPTS, SAMPLES, RunDir

IMPORTED_SCORER = "geneval-official"


@dataclass(frozen=True)
class DetectionRow:
    prompt_id: str
    sample_index: int
    detections: dict[str, Any]


def judge_rows(
    rows: list[DetectionRow],
    prompts: dict[str, Prompt],
    settings: JudgeSettings,
    image_sha256: dict[tuple[str, int], str],
    where: str,
    progress: bool = True,
) -> list[Sample]:
    samples = []
    for row in tqdm(rows, desc="rescore", unit="img", disable=not progress):
        at = f"{where}: image {row.prompt_id}/{row.sample_index:04d}"
        objects = objects_from_row(row.detections, at, floor=settings.lowest_threshold())
        try:
            verdict = judge(prompts[row.prompt_id].metadata, objects, settings)
        except MissingColor as exc:
            raise UsageError(
                f"{at}: a {exc.class_name} the judge now keeps was never colour-classified (its "
                "score was below the thresholds the run was scored with); re-run `ts-eval score` "
                "with these settings instead"
            ) from None
        samples.append(
            Sample(
                row.prompt_id,
                row.sample_index,
                "correct",
                float(verdict.correct),
                verdict.reason or None,
                image_sha256.get((row.prompt_id, row.sample_index)),
            )
        )
    return samples


def rescore(
    run_path,
    *,
    judge_args: dict[str, str] | None = None,
    resamples: int | None = None,
    tasks_dir: str | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Re-judge a GenEval run from detections.jsonl; returns the new summary (also in summary.json)."""
    from ts_eval.geneval.task import bundled_class_names
    from ts_eval.store.reader import read_run
    from ts_eval.summary import summarize, write_summary

    started = time.perf_counter()
    with RunDir(run_path).lock():
        run = read_run(run_path, need="prompts", tasks_dir=tasks_dir)
        if getattr(run.spec.module, "__name__", None) != "ts_eval.geneval.task":  # a module, or any TaskModule
            raise UsageError(f"{run.path} is a {run.spec.name} run; rescore re-judges GenEval runs only")
        run = read_run(run_path, need="detections", tasks_dir=tasks_dir, spec=run.spec)
        scorer = dict(run.scorer or {})
        if scorer.get("name") == IMPORTED_SCORER:
            raise UsageError(
                f"{run.path} holds imported official results: their detections are already thresholded "
                "and have no colours, so they cannot be re-judged"
            )
        judge_in_run = {**JUDGE_DEFAULTS, **(scorer.get("judge") or {})}
        settings = judge_settings(parse_options(judge_args or {}, JudgeSettings, "rescore", defaults=judge_in_run))
        class_names = bundled_class_names(run.spec)
        for prompt in run.prompts:
            check_metadata(prompt.metadata, class_names, f"{run.path / PROMPTS}: prompt {prompt.prompt_id}")
        rows = [DetectionRow(r["prompt_id"], int(r["sample_index"]), r["detections"]) for r in run.detections or []]
        sha = {(r.prompt_id, r.sample_index): r.sha256 for r in run.images}
        samples = judge_rows(
            rows, {p.prompt_id: p for p in run.prompts}, settings, sha, str(run.path / DETECTIONS), progress
        )
        if scorer:
            scorer["judge"] = settings.to_dict()
        run.dir.write_rows(DETECTIONS, run.detections or [])  # the judged detections, recorded as the input
        prompts = {p.prompt_id: p for p in run.prompts}
        images = {(r.prompt_id, r.sample_index): r for r in run.images}
        run.dir.write_rows(
            SAMPLES,
            [readable(s, prompts[s.prompt_id], images.get((s.prompt_id, s.sample_index))).to_row() for s in samples],
        )
        run.dir.update_manifest(
            lambda m: m.update(
                {
                    "scorer": scorer or m.get("scorer"),
                    "timings": {**(m.get("timings") or {}), "rescore_s": round(time.perf_counter() - started, 3)},
                }
            )
        )
        rescored = read_run(run_path, tasks_dir=tasks_dir, spec=run.spec)
        summary = summarize(rescored, resamples=resamples)
        write_summary(rescored, summary)
        return summary
