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
from ts_eval.options import parse_options
from ts_eval.records import Prompt, Sample, image_keys
from ts_eval.scorers.geneval import JudgeSettings, MissingColor, check_metadata, judge, objects_from_row
from ts_eval.scorers.geneval_scorer import JUDGE_DEFAULTS, judge_settings
from ts_eval.store import DETECTIONS, IMAGES, PROMPTS, SAMPLES, RunDir, read_jsonl
from ts_eval.tasks import load_task

IMPORTED_SCORER = "geneval-official"


@dataclass(frozen=True)
class DetectionRow:
    prompt_id: str
    sample_index: int
    detections: dict[str, Any]


def read_detections(run: RunDir, prompts: list[Prompt], n_samples: int) -> list[DetectionRow]:
    """detections.jsonl, checked to cover exactly this run's images (one row each)."""
    path = run.file(DETECTIONS)
    if not path.exists():
        raise UsageError(f"{path} is missing; score the run first (`ts-eval score {run.path}`)")
    known = {p.prompt_id for p in prompts}
    rows: dict[tuple[str, int], DetectionRow] = {}
    for number, row in enumerate(read_jsonl(path), start=1):
        where = f"{path}: line {number}"
        if not isinstance(row, dict) or not isinstance(row.get("prompt_id"), str) \
                or not isinstance(row.get("sample_index"), int) or "detections" not in row:
            raise UsageError(f"{where} needs 'prompt_id' (string), 'sample_index' (integer) and 'detections'")
        key = (row["prompt_id"], row["sample_index"])
        if key[0] not in known:
            raise UsageError(f"{where} names prompt_id {key[0]!r}, which {run.path} does not have; "
                             "these detections belong to another run")
        if not 0 <= key[1] < n_samples:
            raise UsageError(f"{where} names sample_index {key[1]}, but the run has {n_samples} images per prompt; "
                             "these detections belong to another run")
        if key in rows:
            raise UsageError(f"{where} repeats image {key[0]}/{key[1]:04d}; keep one row per image")
        rows[key] = DetectionRow(key[0], key[1], row["detections"])
    keys = image_keys(prompts, n_samples)
    missing = [key for key in keys if key not in rows]
    if missing:
        pid, k = missing[0]
        raise UsageError(f"{path} has no detections for image {pid}/{k:04d} ({len(missing)} images in all); "
                         f"these detections belong to another run, or run `ts-eval score {run.path}` to finish it")
    return [rows[key] for key in keys]


def judge_rows(rows: list[DetectionRow], prompts: dict[str, Prompt], settings: JudgeSettings,
               image_sha256: dict[tuple[str, int], str], where: str, progress: bool = True) -> list[Sample]:
    samples = []
    for row in tqdm(rows, desc="rescore", unit="img", disable=not progress):
        at = f"{where}: image {row.prompt_id}/{row.sample_index:04d}"
        objects = objects_from_row(row.detections, at, floor=settings.lowest_threshold())
        try:
            verdict = judge(prompts[row.prompt_id].metadata, objects, settings)
        except MissingColor as exc:
            raise UsageError(f"{at}: a {exc.class_name} the judge now keeps was never colour-classified (its "
                             "score was below the thresholds the run was scored with); re-run `ts-eval score` "
                             "with these settings instead") from None
        samples.append(Sample(row.prompt_id, row.sample_index, "correct", float(verdict.correct),
                              verdict.reason or None, image_sha256.get((row.prompt_id, row.sample_index))))
    return samples


def rescore(run_path, *, judge_args: dict[str, str] | None = None, resamples: int = 1000,
            tasks_dir: str | None = None, progress: bool = True) -> dict[str, Any]:
    """Re-judge a GenEval run from detections.jsonl; returns the new summary (also in summary.json)."""
    from ts_eval.evaluate import summarize_run
    from ts_eval.tasks.geneval import bundled_class_names

    started = time.perf_counter()
    run = RunDir(run_path)
    manifest = run.read_manifest()
    settings_in_run = manifest.get("settings", {})
    spec = load_task(settings_in_run.get("task", {}).get("name", "?"), tasks_dir)
    if spec.module.__name__ != "ts_eval.tasks.geneval":
        raise UsageError(f"{run.path} is a {spec.name} run; rescore re-judges GenEval runs only")
    scorer = manifest.get("scorer") or {}
    if scorer.get("name") == IMPORTED_SCORER:
        raise UsageError(f"{run.path} holds imported official results: their detections are already thresholded "
                         "and have no colours, so they cannot be re-judged")
    judge_in_run = {**JUDGE_DEFAULTS, **(scorer.get("judge") or {})}
    options = parse_options(judge_args or {}, judge_in_run, "rescore")
    settings = judge_settings(options)

    prompts = [Prompt.from_row(r) for r in read_jsonl(run.file(PROMPTS))]
    class_names = bundled_class_names(spec)
    for prompt in prompts:
        check_metadata(prompt.metadata, class_names, f"{run.file(PROMPTS)}: prompt {prompt.prompt_id}")
    rows = read_detections(run, prompts, int(settings_in_run["n_samples"]))
    sha = {(r["prompt_id"], int(r["sample_index"])): r["sha256"] for r in run.read_rows(IMAGES)}
    samples = judge_rows(rows, {p.prompt_id: p for p in prompts}, settings, sha, str(run.file(DETECTIONS)),
                         progress)

    run.write_rows(SAMPLES, [s.to_row() for s in samples])
    if scorer:
        scorer["judge"] = settings.to_dict()
        manifest["scorer"] = scorer
    changed = {k: v for k, v in settings.to_dict().items() if JUDGE_DEFAULTS[k] != v}
    non_default = manifest.setdefault("non_default_settings", {})
    non_default.pop("judge", None)
    if changed:
        non_default["judge"] = changed
    manifest.setdefault("timings", {})["rescore_s"] = round(time.perf_counter() - started, 3)
    run.write_manifest(manifest)
    return summarize_run(run, resamples=resamples, tasks_dir=tasks_dir)
