"""Before any image: the task, its prompts, the settings, and the run directory they live in.

The settings recorded here decide whether an existing `--out` can be resumed: equal settings resume,
different ones are refused unless `--overwrite`.
"""

from __future__ import annotations

import hashlib
import json
import platform
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import ts_eval
from ts_eval.data import resolve_data, sha256_file
from ts_eval.distributed import World
from ts_eval.errors import UsageError
from ts_eval.records import Prompt
from ts_eval.store import DETECTIONS, IMAGES, PROMPTS, SAMPLES, SUMMARY, RunDir, read_jsonl
from ts_eval.tasks import TaskSpec, load_task


@dataclass
class RunOptions:
    """Everything `ts-eval run` takes; defaults are the official settings of the task."""

    task: str
    variant: str | None = None
    split: str | None = None
    skill: str | None = None
    data: str | None = None
    tasks_dir: str | None = None
    model: str = "dummy"
    model_args: dict[str, str] = field(default_factory=dict)
    scorer: str | None = None
    scorer_args: dict[str, str] = field(default_factory=dict)
    n_samples: int | None = None
    limit: int | None = None
    seed: int = 0
    out: str | None = None
    overwrite: bool = False
    batch_size: int = 8
    device: str = "auto"
    dtype: str = "auto"
    prompt_rewrites: str | None = None
    resamples: int = 1000
    cache: bool = True
    progress: bool = True


# -- prompts ---------------------------------------------------------------------------------------

def select_prompts(spec: TaskSpec, prompts: list[Prompt], split: str | None, skill: str | None,
                   limit: int | None) -> tuple[str, list[Prompt]]:
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
        if not isinstance(row, dict) or not isinstance(row.get("prompt_id"), str) or not isinstance(row.get("prompt"), str):
            raise UsageError(f"{path}: line {number} needs string fields 'prompt_id' and 'prompt'")
        if row["prompt_id"] not in all_ids:
            raise UsageError(f"{path}: line {number} names prompt_id {row['prompt_id']!r}, which the task does not have")
        rewrites[row["prompt_id"]] = row["prompt"]
    rewritten = [Prompt(p.prompt_id, p.prompt, p.tags, p.metadata, rewrites.get(p.prompt_id)) for p in prompts]
    used = sum(p.prompt_id in rewrites for p in prompts)
    return rewritten, {"path": str(path), "sha256": sha256_file(path), "rewritten": used, "of": len(prompts)}


# -- run directory ---------------------------------------------------------------------------------

def fingerprint(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


def _git_sha() -> str | None:
    root = Path(ts_eval.__file__).resolve().parent.parent
    if not (root / ".git").exists():
        return None
    try:
        out = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def environment() -> dict[str, Any]:
    env: dict[str, Any] = {"python": platform.python_version(), "platform": platform.platform()}
    torch = sys.modules.get("torch")  # recorded when a backend loaded it; never imported just to report it
    if torch is not None:
        env["torch"] = torch.__version__
        env["cuda"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return env


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _diff(old: Any, new: Any, prefix: str = "") -> str:
    """The first setting that differs, as `key: old -> new`."""
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(set(old) | set(new)):
            if old.get(key) != new.get(key):
                return _diff(old.get(key), new.get(key), f"{prefix}{key}.")
    return f"{prefix.rstrip('.')}: {json.dumps(old, default=str)} -> {json.dumps(new, default=str)}"


def clear(run: RunDir, patterns: list[str]) -> None:
    """Remove the named files/folders (glob patterns) of a run directory."""
    for pattern in patterns:
        for path in run.path.glob(pattern):
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink(missing_ok=True)


def default_out(settings: dict[str, Any]) -> Path:
    task = settings["task"]
    name = f"{task['name']}-{task['variant']}-{task['split']}-{settings['generator']['name']}-{fingerprint(settings)[:8]}"
    return Path("results") / name


def prepare_run(options: RunOptions, generator_description: dict[str, Any],
                world: World = World()) -> tuple[TaskSpec, list[Prompt], RunDir, dict]:
    """Load the task and prompts, then create (or reopen for resume) the run directory.

    Every rank loads the same prompts; only rank 0 checks and writes the directory, the others wait.
    """
    spec = load_task(options.task, options.tasks_dir)
    variant, _ = spec.variant(options.variant)
    data = resolve_data(spec, variant, options.data)
    all_prompts = spec.module.load_prompts(data)
    split, prompts = select_prompts(spec, all_prompts, options.split, options.skill, options.limit)
    if not prompts:
        raise UsageError(f"no prompts selected for {spec.name} split={split} skill={options.skill}")
    rewrites = None
    if options.prompt_rewrites:
        prompts, rewrites = apply_rewrites(prompts, options.prompt_rewrites, {p.prompt_id for p in all_prompts})
    n_samples = options.n_samples if options.n_samples is not None else spec.default_n_samples
    if n_samples < 1:
        raise UsageError(f"--n-samples must be at least 1, got {n_samples}")

    settings = {
        "task": {"name": spec.name, "version": spec.version, "spec_sha256": spec.sha256, "variant": variant,
                 "split": split, "skill": options.skill, "limit": options.limit},
        "data": {k: v for k, v in data.source.items() if k != "origin"},
        "generator": generator_description,
        "n_samples": n_samples,
        "seed": options.seed,
        "prompt_rewrites": rewrites,
    }
    run = RunDir(options.out or default_out(settings))
    if not world.is_main:
        world.barrier()
        return spec, prompts, run, run.read_manifest()
    prompt_rows = [p.to_row() for p in prompts]
    if run.exists():
        manifest = run.read_manifest()
        if manifest.get("settings") != settings or run.read_rows(PROMPTS) != prompt_rows:
            if not options.overwrite:
                change = _diff(manifest.get("settings"), settings) if manifest.get("settings") != settings else "prompts"
                raise UsageError(f"{run.path} holds a run made with other settings ({change}); "
                                 "pass --overwrite to replace it or choose another --out")
            clear(run, ["images", "progress", IMAGES, SAMPLES, DETECTIONS, SUMMARY])
            manifest = {}
    elif run.path.exists() and any(run.path.iterdir()) and not options.overwrite:
        raise UsageError(f"{run.path} exists and is not a run directory; choose another --out")
    else:
        manifest = {}
    manifest.update({
        "settings": settings,
        "seeds": "sha256(task, prompt_id, sample_index, seed)[:8] & (2**63-1)",
        "data_origin": data.origin,
        "non_default_settings": _non_defaults(options, spec),
        "ts_eval": {"version": ts_eval.__version__, "git_sha": _git_sha()},
        "created": manifest.get("created", now()),
    })
    run.path.mkdir(parents=True, exist_ok=True)
    run.write_rows(PROMPTS, prompt_rows)
    run.write_manifest(manifest)
    world.barrier()
    return spec, prompts, run, manifest


def _non_defaults(options: RunOptions, spec: TaskSpec) -> dict[str, Any]:
    """Every option that differs from the official setting (the task's own defaults count as official)."""
    official = {**asdict(RunOptions(task=options.task)), "n_samples": spec.default_n_samples,
                "variant": str(spec.raw["default_variant"]), "split": spec.raw.get("default_split", "all")}
    skip = {"task", "out", "overwrite", "progress", "data", "tasks_dir"}
    found = {k: v for k, v in asdict(options).items()
             if k not in skip and v is not None and v != official[k] and not (k == "variant" and str(v) == official[k])}
    scorer_name, scorer_args = spec.default_scorer
    if options.scorer not in (None, scorer_name) or (options.scorer == scorer_name and options.scorer_args not in ({}, scorer_args)):
        found["scorer_differs_from_official"] = True
    return found


