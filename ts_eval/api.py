"""The Python API: `evaluate` a model on a task, or `score` images you hold against prompts.

    import ts_eval
    results = ts_eval.evaluate("genai-bench", model=my_function, split="hard")
    print(results.table())
    values = ts_eval.score(images, prompts, scorer="vqascore")

`evaluate` builds the same `RunOptions` as `ts-eval run` and calls the same `ts_eval.pipeline.run`: one run store,
resume, lock, manifest and verdict for both. `score` needs no run directory: the images go to a temporary folder
in the encoding a run would store, then through the scorer in batches and the shared content cache.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from dataclasses import fields
from pathlib import Path
from typing import Any

from ts_eval.errors import UsageError
from ts_eval.logs import python_api
from ts_eval.options import DEFAULT_BATCH_SIZE, RunOptions
from ts_eval.results import Results

_OWN = {"task", "model", "model_args", "scorer", "scorer_args"}  # the arguments evaluate takes by name


def _text_args(args: dict[str, Any] | None, what: str) -> dict[str, str]:
    """`{"steps": 2, "safety_checker": False}` -> the `k=v` strings the CLI would pass."""
    if args is None:
        return {}
    if not isinstance(args, dict):
        raise UsageError(f"{what} must be a dict of option -> value, got {type(args).__name__}")
    return {str(k).replace("-", "_"): (str(v).lower() if isinstance(v, bool) else str(v)) for k, v in args.items()}


def _generator_option(model: Any, model_args: dict[str, str], model_name: str | None) -> tuple[Any, dict[str, str]]:
    """(RunOptions.model, RunOptions.model_args) for what the caller passed as `model`."""
    from ts_eval import registry

    if isinstance(model, str) and model in registry.plugins("model"):
        if model_name is not None:
            raise UsageError(f"model_name names an in-memory model; the registered model '{model}' has its own")
        return model, model_args
    if isinstance(model, (str, Path)):
        folder = Path(model).expanduser()
        if not folder.is_dir():
            raise UsageError(
                f"model {str(model)!r} is neither a registered model ({', '.join(sorted(registry.plugins('model')))}) "
                "nor a folder of images"
            )
        if model_name is not None or model_args:
            raise UsageError("a folder of images takes no model_name or model_args")
        return "folder", {"path": str(folder)}
    from ts_eval.generators.in_memory import CallableGenerator, CallableOptions, PipelineGenerator, is_pipeline
    from ts_eval.options import option_infos, parse_options

    if is_pipeline(model):
        return PipelineGenerator(model, model_args, model_name=model_name), {}
    if callable(model):
        valid = [info.name for info in option_infos(CallableOptions)]
        unknown = sorted(set(model_args) - set(valid))
        if unknown:
            raise UsageError(f"a function model takes only model_args {', '.join(valid)}, not {', '.join(unknown)}")
        options = parse_options(model_args, CallableOptions, "a function model")
        return CallableGenerator(model, model_name=model_name, batch_size=options.batch_size), {}
    raise UsageError(
        f"model must be a registered name, a folder, a diffusers pipeline or a function "
        f"(prompts, seeds) -> images; got {type(model).__name__}"
    )


@python_api
def run(task: str, **options: Any) -> dict[str, Any]:
    """Generate, score and summarise one benchmark with a registered model: the function behind `ts-eval run`.

    `options` are the fields of `ts_eval.options.RunOptions` (model, model_args, scorer, limit, out, ...); returns
    the summary dict (also in the run's summary.json).
    """
    from ts_eval.pipeline import run as run_pipeline

    return run_pipeline(RunOptions(task=task, **options))


@python_api
def evaluate(
    task: str,
    model: Any = "dummy",
    scorer: str | None = None,
    *,
    model_args: dict[str, Any] | None = None,
    scorer_args: dict[str, Any] | None = None,
    model_name: str | None = None,
    **options: Any,
) -> Results | None:
    """Generate, score and summarise `task` as `ts-eval run` does; returns the run's `Results`.

    model: a registered name (`"reference"`, `"diffusers"`, ... with `model_args` as `--model-arg`), a folder of
        images (a `pathlib.Path`, or a path string that is not a registered name), a diffusers pipeline object
        (`model_args`: steps, guidance, negative_prompt, resolution, batch_size), or a function
        `(prompts: list[str], seeds: list[int]) -> list[PIL.Image]` (`model_args`: batch_size).
        An in-memory model must make each image from its own (prompt, seed) alone, and be renamed (`model_name`)
        or given another `out` whenever it changes in a way its description cannot show (see
        `ts_eval.generators.in_memory`); `model_name` names it in the manifest and tables.
    scorer: a registered scorer name (default: the task's official one), with `scorer_args` as `--scorer-arg`.
    options: any other `RunOptions` field - variant, split, skill, limit, n_samples, seed, prompts, prompt_tags, data,
        image_format, out, overwrite, batch_size, device, dtype, prompt_rewrites, resamples, cache, view, progress,
        tasks_dir.

    Under torchrun every rank calls it; rank 0 gets the Results, the other ranks None.
    """
    from ts_eval.pipeline import run

    valid = {f.name for f in fields(RunOptions)} - _OWN
    unknown = sorted(set(options) - valid)
    if unknown:
        raise UsageError(f"unknown option(s) {', '.join(unknown)}; valid: {', '.join(sorted(valid))}")
    generator, generator_args = _generator_option(model, _text_args(model_args, "model_args"), model_name)
    summary = run(
        RunOptions(
            task=task,
            model=generator,
            model_args=generator_args,
            scorer=scorer,
            scorer_args=_text_args(scorer_args, "scorer_args"),
            **options,
        )
    )
    if not summary:  # a torchrun rank other than 0
        return None
    summary = dict(summary)
    run_dir = Path(summary.pop("run_dir")).resolve()
    return Results(run_dir, summary, options.get("tasks_dir"))


def _image(item: Any, index: int):
    """One still RGB image from a PIL image or a path, or one line naming the item."""
    from PIL import Image

    from ts_eval.generators.folder import _to_rgb, load_image

    if isinstance(item, (str, Path)):
        return load_image(Path(item))
    if not isinstance(item, Image.Image):
        raise UsageError(f"score: image {index} is a {type(item).__name__}; give PIL images or image file paths")
    frames = getattr(item, "n_frames", 1)  # only multi-frame formats have it
    if frames > 1:
        raise UsageError(f"score: image {index} holds {frames} frames (an animation?); give one still image")
    if item.width < 1 or item.height < 1:
        raise UsageError(f"score: image {index} is empty ({item.width}x{item.height})")
    return _to_rgb(item)


@python_api
def score(
    images: Sequence[Any],
    prompts: Sequence[str],
    scorer: str = "vqascore",
    *,
    scorer_args: dict[str, Any] | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    device: str = "auto",
    cache: bool = True,
    progress: bool = True,
    image_format: str = "png",
    task: str = "prompts",
    tasks_dir: str | None = None,
) -> list[float]:
    """One score per (image, prompt) pair, in order: `images` are PIL images or file paths.

    The scorer is built as for a run of `task` (default `prompts`: VQAScore with the official GenAI-Bench
    settings, or `scorer="clipscore"`, `"dummy"`, ... with `scorer_args`). Each image is scored as a run stores
    it (`image_format` png, or jpeg as GenAI-Bench's official generator saves it), so a run over the same images
    gives the same numbers and shares the content cache (`cache=False` skips it).
    """
    from tqdm.auto import tqdm

    from ts_eval import registry
    from ts_eval.cache import ScoreCache
    from ts_eval.pipeline import build_scorer
    from ts_eval.records import Prompt, ScoreRequest
    from ts_eval.stages import score_with_cache
    from ts_eval.store import IMAGE_SUFFIXES, fingerprint
    from ts_eval.store.files import encode_image, sha256_bytes
    from ts_eval.tasks import load_task

    if isinstance(images, (str, bytes)) or isinstance(prompts, (str, bytes)):
        raise UsageError("score: give a list of images and a list of prompts (one prompt per image)")
    images, prompts = list(images), list(prompts)
    if len(images) != len(prompts):
        raise UsageError(f"score: {len(images)} images but {len(prompts)} prompts; give one prompt per image")
    for i, prompt in enumerate(prompts):
        if not isinstance(prompt, str):
            raise UsageError(f"score: prompt {i} is {prompt!r} ({type(prompt).__name__}), not text")
        if not prompt.strip():
            raise UsageError(f"score: prompt {i} is blank")
    if image_format not in IMAGE_SUFFIXES:
        raise UsageError(f"score: unknown image_format {image_format!r}; choose one of: {', '.join(IMAGE_SUFFIXES)}")
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise UsageError(f"score: batch_size must be at least 1, got {batch_size!r}")
    spec = load_task(task, tasks_dir)
    args = _text_args(scorer_args, "scorer_args")
    if getattr(registry.scorer_class(scorer, args), "writes_detections", False):  # GenEval's detector and judge
        raise UsageError(
            f"score: {scorer} judges each image against its benchmark metadata; run "
            f"ts_eval.evaluate('{scorer}', model=...) instead"
        )
    built = build_scorer(spec, scorer, args, device=device, batch_size=batch_size)
    if not images:
        return []
    metric = built.describe().get("metric") or built.metrics[0]
    with tempfile.TemporaryDirectory(prefix="ts-eval-score-") as folder:
        requests = []
        for i, (item, prompt) in enumerate(
            tqdm(list(zip(images, prompts)), desc="encode", unit="img", disable=not progress)
        ):
            data = encode_image(_image(item, i), image_format)
            path = Path(folder) / f"{i:06d}{IMAGE_SUFFIXES[image_format]}"
            path.write_bytes(data)
            requests.append(ScoreRequest(Prompt(f"{i:06d}", prompt), 0, str(path), sha256_bytes(data)))
        store = ScoreCache() if cache else None
        key = fingerprint(built.describe())
        values: list[float] = []
        try:
            with tqdm(total=len(requests), desc="score", unit="img", disable=not progress) as bar:
                for start in range(0, len(requests), batch_size):
                    for scored in score_with_cache(built, requests[start : start + batch_size], store, key):
                        values.append(next(s.value for s in scored.samples if s.metric == metric))
                        bar.update(1)
        finally:
            if store:
                store.close()
    return values
