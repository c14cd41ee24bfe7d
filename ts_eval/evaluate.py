"""The one entry point the CLI and Python users share: prompts -> images -> scores -> summary.

Each stage reads and writes plain files in the run directory, so `generate`, `score` and `report` also run
alone, a killed run resumes where it stopped, and the same commands run unchanged under torchrun.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd

from ts_eval import registry
from ts_eval.distributed import World, current_world, finish_world
from ts_eval.errors import UsageError
from ts_eval.prepare import RunOptions, prepare_run, select_prompts
from ts_eval.records import ImageRecord, Prompt, image_keys
from ts_eval.stages import generate_images, score_images, valid_images
from ts_eval.store import PROMPTS, SAMPLES, SUMMARY, RunDir, read_jsonl, write_json
from ts_eval.tasks import TaskSpec, load_task

__all__ = ["RunOptions", "run", "generate", "score", "summarize_run", "select_prompts"]


def build_generator(options: RunOptions):
    cls = registry.generator_class(options.model)
    return cls(dict(options.model_args), device=options.device, dtype=options.dtype)


def build_scorer(spec: TaskSpec, name: str | None, args: dict[str, str], *, device: str, dtype: str, batch_size: int):
    default_name, default_args = spec.default_scorer
    if name is None:
        name, args = default_name, {**default_args, **args}
    cls = registry.scorer_class(name, args)
    if batch_size < 1:  # checked here once for every scorer
        raise UsageError(f"--batch-size must be at least 1, got {batch_size}")
    return cls(dict(args), task=spec, device=device, batch_size=batch_size)


# -- summary ---------------------------------------------------------------------------------------

def load_samples(run: RunDir) -> pd.DataFrame:
    return pd.DataFrame(read_jsonl(run.file(SAMPLES)), columns=["prompt_id", "sample_index", "metric", "value"])


def summarize_run(run: RunDir, *, resamples: int = 1000, tasks_dir: str | None = None) -> dict[str, Any]:
    """Recompute summary.json from prompts.jsonl and samples.jsonl alone."""
    manifest = run.read_manifest()
    settings = manifest["settings"]
    spec = load_task(settings["task"]["name"], tasks_dir)
    prompts = [Prompt.from_row(r) for r in read_jsonl(run.file(PROMPTS))]
    samples = load_samples(run)
    if samples.empty:
        raise UsageError(f"{run.file(SAMPLES)} holds no scores; run `ts-eval score {run.path}` first")
    unknown = sorted(set(samples["prompt_id"]) - {p.prompt_id for p in prompts})
    if unknown:
        raise UsageError(f"{run.file(SAMPLES)} scores prompt_id {unknown[0]!r}, which is not in {PROMPTS}")
    # Aggregate the metric the run's scorer wrote: the task's own for its official scorer, another one
    # (e.g. `clipscore` on GenAI-Bench) for a scorer chosen with --scorer.
    metric = (manifest.get("scorer") or {}).get("metric") or spec.metric
    if metric != spec.metric:
        spec = replace(spec, raw={**spec.raw, "metric": metric})
    body = spec.module.summarize(spec, prompts, samples, resamples=resamples, seed=0)
    summary = {"task": spec.name, "split": settings["task"]["split"], "variant": settings["task"]["variant"],
               "model": settings["generator"]["name"], **body}
    write_json(run.file(SUMMARY), summary)
    return summary


# -- the whole flow --------------------------------------------------------------------------------

def _generate(options: RunOptions, world: World, *, with_scorer: bool = False
              ) -> tuple[TaskSpec, list[Prompt], RunDir, list[ImageRecord], Any]:
    generator = build_generator(options)
    spec, prompts, run_dir, manifest = prepare_run(options, generator.describe(), world)
    # The scorer is built once the task, data, prompt selection and generator settings are known good (a typo
    # is named as such), and before any image: its options are checked and its weights found, or named in one
    # line, before hours of generation. Its model loads on the first batch, after the generator is freed.
    scorer = (build_scorer(spec, options.scorer, options.scorer_args, device=options.device,
                           dtype=options.dtype, batch_size=options.batch_size) if with_scorer else None)
    n_samples = manifest["settings"]["n_samples"]
    records = generate_images(run_dir, spec, prompts, generator, n_samples, options.seed, world=world,
                              progress=options.progress)
    return spec, prompts, run_dir, records, scorer


def generate(options: RunOptions) -> tuple[TaskSpec, list[Prompt], RunDir, list[ImageRecord]]:
    """Make the images of a run (on this process or this torchrun rank's share)."""
    world = current_world(options.device)
    try:
        return _generate(options, world)[:4]
    finally:
        finish_world(world)


def score(run_path: str | Path, *, scorer: str | None = None, scorer_args: dict[str, str] | None = None,
          batch_size: int = 8, device: str = "auto", dtype: str = "auto", cache: bool = True,
          progress: bool = True, tasks_dir: str | None = None) -> RunDir:
    """Score an existing run directory (its images.jsonl) with the task's scorer or another one."""
    run_dir = RunDir(run_path)
    manifest = run_dir.read_manifest()
    spec = load_task(manifest["settings"]["task"]["name"], tasks_dir)
    prompts = [Prompt.from_row(r) for r in read_jsonl(run_dir.file(PROMPTS))]
    records = _images_checked(run_dir, prompts, manifest["settings"]["n_samples"])
    scorer_obj = build_scorer(spec, scorer, scorer_args or {}, device=device, dtype=dtype, batch_size=batch_size)
    world = current_world(device)
    try:
        score_images(run_dir, spec, prompts, records, scorer_obj, world=world, use_cache=cache, progress=progress)
        if world.is_main:
            summarize_run(run_dir, tasks_dir=tasks_dir)
    finally:
        finish_world(world)
    return run_dir


def _images_checked(run_dir: RunDir, prompts: list[Prompt], n_samples: int) -> list[ImageRecord]:
    valid = valid_images(run_dir)
    keys = image_keys(prompts, n_samples)
    missing = [key for key in keys if key not in valid]
    if missing:
        pid, k = missing[0]
        raise UsageError(f"{run_dir.path}: image {pid}/{k:04d} is missing or does not match its sha256 "
                         f"({len(missing)} in all); run `ts-eval generate` with the same settings to finish it")
    return [valid[key] for key in keys]


def run(task: str, **kwargs) -> dict[str, Any]:
    """Generate, score and summarise; returns the summary (also written to summary.json).

    Under torchrun every rank calls this; rank 0 returns the summary, the others return {}.
    """
    options = RunOptions(task=task, **kwargs)
    world = current_world(options.device)
    try:
        spec, prompts, run_dir, records, scorer = _generate(options, world, with_scorer=True)
        score_images(run_dir, spec, prompts, records, scorer, world=world, use_cache=options.cache,
                     progress=options.progress)
        if not world.is_main:
            return {}
        summary = summarize_run(run_dir, resamples=options.resamples, tasks_dir=options.tasks_dir)
        return {**summary, "run_dir": str(run_dir.path)}
    finally:
        finish_world(world)
