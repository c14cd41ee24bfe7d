"""Before any image: the task, its prompts, the settings, and the run directory they live in.

The settings recorded here decide whether an existing `--out` can be resumed: equal settings resume,
different ones are refused unless `--overwrite`. The directory is created whole (built beside its place,
then renamed) and locked for the whole run, so a second process or a kill can never leave it half-made.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ts_eval
from ts_eval.distributed import World
from ts_eval.errors import UsageError
from ts_eval.options import RunOptions
from ts_eval.records import Prompt
from ts_eval.store import (
    DETECTIONS,
    FORMAT,
    IMAGE_SUFFIXES,
    IMAGES,
    MANIFEST,
    PROMPTS,
    SAMPLES,
    SUMMARY,
    RunDir,
    RunLock,
    fingerprint,
    json_bytes,
    jsonl_bytes,
    now,
    read_jsonl,
    sha256_bytes,
    sha256_file,
)
from ts_eval.store.files import git_sha
from ts_eval.tasks import TaskSpec, load_task
from ts_eval.tasks.data import resolve_data


@dataclass
class PreparedRun:
    spec: TaskSpec
    prompts: list[Prompt]
    run: RunDir
    manifest: dict[str, Any]
    lock: RunLock | None  # held by rank 0 until the run ends

    @property
    def settings(self) -> dict[str, Any]:
        return self.manifest["settings"]


# -- prompts ---------------------------------------------------------------------------------------


def select_prompts(
    spec: TaskSpec, prompts: list[Prompt], split: str | None, skill: str | None, limit: int | None
) -> tuple[str, list[Prompt]]:
    split, tag = spec.split_tag(split)
    chosen = [p for p in prompts if tag is None or tag in p.tags]
    if skill is not None:
        known = sorted({t for p in prompts for t in p.tags})
        if skill not in known:
            raise UsageError(f"unknown skill '{skill}' for task {spec.name}; choose one of: {', '.join(known)}")
        chosen = [p for p in chosen if skill in p.tags]
    if limit is not None:
        if limit < 1:
            raise UsageError(f"--limit must be at least 1, got {limit}")
        chosen = chosen[:limit]
    return split, chosen


def apply_rewrites(prompts: list[Prompt], path: str | Path, all_ids: set[str]) -> tuple[list[Prompt], dict[str, Any]]:
    """Feed rewritten text to the generator; the scorer keeps judging the original prompt."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"--prompt-rewrites {path}: no such file")
    rewrites: dict[str, str] = {}
    for number, row in enumerate(read_jsonl(path), start=1):
        if (
            not isinstance(row, dict)
            or not isinstance(row.get("prompt_id"), str)
            or not isinstance(row.get("prompt"), str)
        ):
            raise UsageError(f"{path}: line {number} needs string fields 'prompt_id' and 'prompt'")
        if row["prompt_id"] not in all_ids:
            raise UsageError(
                f"{path}: line {number} names prompt_id {row['prompt_id']!r}, which the task does not have"
            )
        if row["prompt_id"] in rewrites:
            raise UsageError(f"{path}: line {number} rewrites prompt {row['prompt_id']} a second time; keep one")
        if not row["prompt"].strip():
            raise UsageError(f"{path}: line {number} rewrites prompt {row['prompt_id']} to blank text")
        rewrites[row["prompt_id"]] = row["prompt"]
    rewritten = [Prompt(p.prompt_id, p.prompt, p.tags, p.metadata, rewrites.get(p.prompt_id)) for p in prompts]
    used = sum(p.prompt_id in rewrites for p in prompts)
    return rewritten, {"path": str(path), "sha256": sha256_file(path), "rewritten": used, "of": len(prompts)}


def image_format(options: RunOptions, spec: TaskSpec) -> str:
    """`--image-format`, else the task's official one (GenAI-Bench: JPEG, GenEval: PNG)."""
    chosen = options.image_format or (spec.recipe or {}).get("image_format") or "png"
    if chosen not in IMAGE_SUFFIXES:
        raise UsageError(f"unknown --image-format {chosen!r}; choose one of: {', '.join(IMAGE_SUFFIXES)}")
    return chosen


# -- run directory ---------------------------------------------------------------------------------


def _diff(old: Any, new: Any, prefix: str = "") -> str:
    """The first setting that differs, as `key: old -> new`."""
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(set(old) | set(new)):
            if old.get(key) != new.get(key):
                return _diff(old.get(key), new.get(key), f"{prefix}{key}.")
    import json

    return f"{prefix.rstrip('.')}: {json.dumps(old, default=str)} -> {json.dumps(new, default=str)}"


def default_out(settings: dict[str, Any]) -> Path:
    task = settings["task"]
    name = (
        f"{task['name']}-{task['variant']}-{task['split']}-{settings['generator']['name']}-{fingerprint(settings)[:8]}"
    )
    return Path("results") / name


def load_selected_prompts(options: RunOptions, spec: TaskSpec) -> tuple[dict[str, Any], list[Prompt], dict]:
    """The task settings, the chosen prompts (rewritten where asked) and the data source they came from."""
    variant, _ = spec.variant(options.variant)
    if spec.user_prompts:  # the `prompts` task: the user's own prompt set
        if options.data is not None:
            raise UsageError(f"--data is for a benchmark's own files; the {spec.name} task reads --prompts SOURCE")
        data, all_prompts = spec.load_source(options.prompts, options.prompt_tags)
    else:
        if options.prompts is not None or options.prompt_tags is not None:
            raise UsageError(
                f"--prompts and --prompt-tags are for the prompts task (`ts-eval run prompts --prompts "
                f"SOURCE`); {spec.name} has its own prompt set"
            )
        data = resolve_data(spec, variant, options.data)
        all_prompts = spec.module.load_prompts(data)
    split, prompts = select_prompts(spec, all_prompts, options.split, options.skill, options.limit)
    if not prompts:
        raise UsageError(f"no prompts selected for {spec.name} split={split} skill={options.skill}")
    rewrites = None
    if options.prompt_rewrites:
        prompts, rewrites = apply_rewrites(prompts, options.prompt_rewrites, {p.prompt_id for p in all_prompts})
    task = {
        "name": spec.name,
        "version": spec.version,
        "spec_sha256": spec.sha256,
        "variant": variant,
        "split": split,
        "skill": options.skill,
        "limit": options.limit,
    }
    source = {
        "data": {k: v for k, v in data.source.items() if k != "origin"},
        "data_origin": data.origin,
        "prompt_rewrites": rewrites,
    }
    return task, prompts, source


def prepare_run(
    options: RunOptions,
    generator_description: dict[str, Any],
    world: World = World(),
    spec: TaskSpec | None = None,
    *,
    generator_options: dict[str, Any] | None = None,
) -> PreparedRun:
    """Load the task and prompts, then create (or reopen for resume) the run directory, locked.

    Every rank loads the same prompts; only rank 0 checks, locks and writes the directory, the others wait.
    """
    if options.task is None:
        raise UsageError("a task is needed to make images (e.g. `ts-eval run genai-bench`)")
    spec = spec or load_task(options.task, options.tasks_dir)
    task, prompts, source = load_selected_prompts(options, spec)
    settings = {
        "task": task,
        "data": source["data"],
        "generator": generator_description,
        "n_samples": options.n_samples if options.n_samples is not None else spec.default_n_samples,
        "image_format": image_format(options, spec),
        "seed": options.seed,
        "prompt_rewrites": source["prompt_rewrites"],
    }
    run = RunDir(options.out or default_out(settings))
    if not world.is_main:
        world.barrier()
        return PreparedRun(spec, prompts, run, run.read_manifest(), None)
    prompt_rows = [p.to_row() for p in prompts]
    manifest = {
        "settings": settings,
        "seeds": "sha256(task, prompt_id, sample_index, seed)[:8] & (2**63-1)",
        "data_origin": source["data_origin"],
        "ts_eval": {"version": ts_eval.__version__, "git_sha": git_sha(ts_eval.__file__)},
    }
    if generator_options is not None:  # every option value the model ran with (its identity is `generator`)
        manifest["generator_options"] = generator_options
    if options.resamples is not None:
        manifest["summary_settings"] = {"resamples": options.resamples, "seed": 0}
    lock = _open_or_create(run, options, manifest, prompt_rows)
    world.barrier()
    return PreparedRun(spec, prompts, run, run.read_manifest(), lock)


def _open_or_create(run: RunDir, options: RunOptions, manifest: dict[str, Any], prompt_rows: list[dict]) -> RunLock:
    if run.path.is_file():
        raise UsageError(f"--out {run.path} is a file; name a directory for the run")
    if not run.path.exists() or (run.path.is_dir() and not any(run.path.iterdir())):
        prompts = jsonl_bytes(prompt_rows)
        created = {**manifest, "files": {PROMPTS: sha256_bytes(prompts)}, "created": now()}
        lock = run.create({PROMPTS: prompts, MANIFEST: json_bytes({"format": FORMAT, **created})})
        if lock is not None:
            return lock
    if not run.exists():
        raise UsageError(f"{run.path} exists and is not a run directory; choose another --out")
    lock = run.lock().acquire()
    try:
        run.remove_temporaries()
        old = run.read_manifest()
        if old.get("settings") == manifest["settings"] and run.read_rows(PROMPTS) == prompt_rows:
            run.update_manifest(lambda m: m.update(manifest))  # resume: keep files, scorer and timings
            return lock
        if not options.overwrite:
            change = (
                _diff(old.get("settings"), manifest["settings"])
                if old.get("settings") != manifest["settings"]
                else "prompts"
            )
            raise UsageError(
                f"{run.path} holds a run made with other settings ({change}); "
                "pass --overwrite to replace it or choose another --out"
            )
        run.clear(["images", "progress", IMAGES, SAMPLES, DETECTIONS, SUMMARY])
        run.write_manifest({**manifest, "created": now()})
        run.write_rows(PROMPTS, prompt_rows)
    except BaseException:
        lock.release()
        raise
    return lock
