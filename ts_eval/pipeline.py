"""The one entry point the CLI and Python users share: prompts -> images -> scores -> summary.

Each stage reads and writes plain files in the run directory, so `generate`, `score` and `report` also run
alone, a killed run resumes where it stopped, and the same commands run unchanged under torchrun. All three
take one `RunOptions`; the run directory is locked by rank 0 for as long as a stage writes it.

The Python API (`ts_eval.api`: `ts_eval.evaluate`, `ts_eval.run`) builds the same `RunOptions` and calls `run`.
"""

from __future__ import annotations

from typing import Any

from ts_eval import registry
from ts_eval.distributed import World, current_world, finish_world
from ts_eval.errors import UsageError
from ts_eval.generators.base import Generator
from ts_eval.options import RunOptions, option_values
from ts_eval.prepare import PreparedRun, prepare_run, select_prompts
from ts_eval.records import ImageRecord
from ts_eval.scorers.base import Scorer
from ts_eval.stages import generate_images, score_images
from ts_eval.store import RunDir
from ts_eval.store.reader import Run, read_run
from ts_eval.summary import summarize, write_summary
from ts_eval.tasks import TaskSpec, load_task

__all__ = ["RunOptions", "build_scorer", "generate", "run", "score", "select_prompts"]


def build_generator(options: RunOptions) -> Generator:
    """The registered generator `options.model` names, or the in-memory one `ts_eval.evaluate` already wrapped."""
    if not isinstance(options.model, str):
        if options.model_args:
            raise UsageError(
                "model_args configure a registered model by name; an in-memory model's adapter takes "
                "them when it is built (ts_eval.evaluate does this)"
            )
        return options.model
    cls = registry.generator_class(options.model)
    return cls(dict(options.model_args), device=options.device, dtype=options.dtype)


def scorer_choice(spec: TaskSpec, name: str | None, args: dict[str, str]) -> dict[str, Any]:
    """The scorer a run uses: the task's official one unless named; naming the official one explicitly gives the
    same scorer (its official arguments apply under yours)."""
    default_name, default_args = spec.default_scorer
    if name is None or name == default_name:
        return {"name": default_name, "args": {**default_args, **args}}
    return {"name": name, "args": dict(args)}


def build_scorer(spec: TaskSpec, name: str | None, args: dict[str, str], *, device: str, batch_size: int) -> Scorer:
    choice = scorer_choice(spec, name, args)
    cls = registry.scorer_class(choice["name"], choice["args"])
    if batch_size < 1:  # checked here once for every scorer
        raise UsageError(f"--batch-size must be at least 1, got {batch_size}")
    return cls(dict(choice["args"]), task=spec, device=device, batch_size=batch_size)


def scorer_record(spec: TaskSpec, options: RunOptions, scorer: Scorer) -> dict[str, Any]:
    """The manifest's `scorer_options`: how to build the scorer again (name and `k=v` args: leaderboard
    verification) and every effective option value."""
    return {**scorer_choice(spec, options.scorer, options.scorer_args), "settings": option_values(scorer.options)}


def generator_record(options: RunOptions, generator: Generator) -> dict[str, Any]:
    """The manifest's `generator_options`: the model's name, its `k=v` args and every effective option value."""
    name = options.model if isinstance(options.model, str) else generator.name
    return {"name": name, "args": dict(options.model_args), "settings": option_values(generator.options)}


def _release(prepared: PreparedRun | None) -> None:
    if prepared is not None and prepared.lock is not None:
        prepared.lock.release()


def _start(options: RunOptions, world: World, spec: TaskSpec | None = None) -> tuple[Generator, PreparedRun]:
    """The generator, and the run directory prepared for it (locked by rank 0 until `_release`)."""
    generator = build_generator(options)
    prepared = prepare_run(
        options, generator.describe(), world, spec, generator_options=generator_record(options, generator)
    )
    return generator, prepared


def generate(options: RunOptions) -> tuple[PreparedRun, list[ImageRecord]]:
    """Make the images of a run (on this process or this torchrun rank's share)."""
    world = current_world(options.device)
    prepared = None
    try:
        generator, prepared = _start(options, world)
        return prepared, generate_images(prepared, generator, world=world, progress=options.progress)
    finally:
        _release(prepared)
        finish_world(world)


VIEW = "view.html"


def _summarize_and_write(path, options: RunOptions, spec: TaskSpec) -> dict[str, Any]:
    """summary.json, and view.html beside it (the visual report of the run)."""
    run = read_run(path, tasks_dir=options.tasks_dir, spec=spec)
    summary = summarize(run, resamples=options.resamples)
    write_summary(run, summary)
    if options.view:
        from ts_eval.report.view import load_view_run, write_view

        write_view([load_view_run(run.path, tasks_dir=options.tasks_dir)], run.path / VIEW, progress=options.progress)
    return summary


def score(options: RunOptions) -> Run:
    """Score an existing run directory (`options.out`) with the task's scorer or another one."""
    if not options.out:
        raise UsageError("score needs the run directory to score")
    run_dir = RunDir(options.out)
    world = current_world(options.device)
    lock = run_dir.lock().acquire() if world.is_main and run_dir.exists() else None
    try:
        images = read_run(run_dir.path, need="images", tasks_dir=options.tasks_dir)
        scorer = build_scorer(
            images.spec, options.scorer, options.scorer_args, device=options.device, batch_size=options.batch_size
        )
        prepared = PreparedRun(images.spec, images.prompts, run_dir, images.manifest, lock)
        score_images(
            prepared,
            images.images,
            scorer,
            world=world,
            use_cache=options.cache,
            progress=options.progress,
            overwrite=options.overwrite,
            scorer_options=scorer_record(images.spec, options, scorer),
        )
        if world.is_main:
            _summarize_and_write(run_dir.path, options, images.spec)
        return read_run(run_dir.path, tasks_dir=options.tasks_dir, spec=images.spec)
    finally:
        if lock:
            lock.release()
        finish_world(world)


def run(options: RunOptions) -> dict[str, Any]:
    """Generate, score and summarise; returns the summary (also written to summary.json).

    Under torchrun every rank calls this; rank 0 returns the summary, the others return {}.
    """
    if options.task is None:
        raise UsageError("run needs a task (see `ts-eval tasks`)")
    spec = load_task(options.task, options.tasks_dir)
    world = current_world(options.device)
    prepared = None
    try:
        generator, prepared = _start(options, world, spec)
        # The scorer is built once the task, data, prompt selection and generator settings are known good (a
        # typo is named as such), and before any image: its options are checked and its weights found, or
        # named in one line, before hours of generation. Its model loads on the first batch.
        scorer = build_scorer(
            prepared.spec, options.scorer, options.scorer_args, device=options.device, batch_size=options.batch_size
        )
        records = generate_images(prepared, generator, world=world, progress=options.progress)
        score_images(
            prepared,
            records,
            scorer,
            world=world,
            use_cache=options.cache,
            progress=options.progress,
            overwrite=options.overwrite,
            scorer_options=scorer_record(spec, options, scorer),
        )
        if not world.is_main:
            return {}
        summary = _summarize_and_write(prepared.run.path, options, spec)
        return {**summary, "run_dir": str(prepared.run.path)}
    finally:
        _release(prepared)
        finish_world(world)
