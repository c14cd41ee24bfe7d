"""The one entry point the CLI and Python users share: prompts -> images -> scores -> summary.

Each stage reads and writes plain files in the run directory, so `generate`, `score` and `report` also run
alone, and a killed run resumes where it stopped.
"""

from __future__ import annotations

import hashlib
import json
import platform
import shutil
import subprocess
import sys
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd
from tqdm.auto import tqdm

import ts_eval
from ts_eval import registry
from ts_eval.cache import ScoreCache, cache_key
from ts_eval.data import resolve_data, sha256_file
from ts_eval.errors import UsageError
from ts_eval.records import ImageRecord, ImageRequest, Prompt, Sample, ScoredImage, ScoreRequest
from ts_eval.seeding import image_seed
from ts_eval.store import DETECTIONS, IMAGES, PROMPTS, SAMPLES, SUMMARY, RunDir, read_jsonl, write_json
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

def _fingerprint(obj: Any) -> str:
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


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _diff(old: Any, new: Any, prefix: str = "") -> str:
    """The first setting that differs, as `key: old -> new`."""
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(set(old) | set(new)):
            if old.get(key) != new.get(key):
                return _diff(old.get(key), new.get(key), f"{prefix}{key}.")
    return f"{prefix.rstrip('.')}: {json.dumps(old, default=str)} -> {json.dumps(new, default=str)}"


def _clear(run: RunDir, names: list[str]) -> None:
    for name in names:
        path = run.file(name)
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)


def default_out(settings: dict[str, Any]) -> Path:
    task = settings["task"]
    name = f"{task['name']}-{task['variant']}-{task['split']}-{settings['generator']['name']}-{_fingerprint(settings)[:8]}"
    return Path("results") / name


def prepare_run(options: RunOptions, generator_description: dict[str, Any]) -> tuple[TaskSpec, list[Prompt], RunDir, dict]:
    """Load the task and prompts, then create (or reopen for resume) the run directory."""
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
    prompt_rows = [p.to_row() for p in prompts]
    if run.exists():
        manifest = run.read_manifest()
        if manifest.get("settings") != settings or run.read_rows(PROMPTS) != prompt_rows:
            if not options.overwrite:
                change = _diff(manifest.get("settings"), settings) if manifest.get("settings") != settings else "prompts"
                raise UsageError(f"{run.path} holds a run made with other settings ({change}); "
                                 "pass --overwrite to replace it or choose another --out")
            _clear(run, ["images", IMAGES, SAMPLES, DETECTIONS, SUMMARY])
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
        "created": manifest.get("created", _now()),
    })
    run.path.mkdir(parents=True, exist_ok=True)
    run.write_rows(PROMPTS, prompt_rows)
    run.write_manifest(manifest)
    return spec, prompts, run, manifest


def _non_defaults(options: RunOptions, spec: TaskSpec) -> dict[str, Any]:
    defaults = RunOptions(task=options.task)
    skip = {"task", "out", "overwrite", "progress", "data", "tasks_dir"}
    found = {k: v for k, v in asdict(options).items() if k not in skip and v != getattr(defaults, k)}
    scorer_name, scorer_args = spec.default_scorer
    if options.scorer not in (None, scorer_name) or (options.scorer == scorer_name and options.scorer_args not in ({}, scorer_args)):
        found["scorer_differs_from_official"] = True
    return found


# -- stages ----------------------------------------------------------------------------------------

def _valid_images(run: RunDir) -> dict[tuple[str, int], ImageRecord]:
    """Images already on disk whose bytes still match the sha256 recorded for them."""
    valid = {}
    for row in run.read_rows(IMAGES):
        record = ImageRecord(**{k: row[k] for k in ("prompt_id", "sample_index", "seed", "path", "sha256")})
        path = run.path / record.path
        if path.is_file() and sha256_file(path) == record.sha256:
            valid[(record.prompt_id, record.sample_index)] = record
    return valid


def generate_images(run: RunDir, spec: TaskSpec, prompts: list[Prompt], generator, n_samples: int, seed: int,
                    *, progress: bool = True) -> list[ImageRecord]:
    """Make every missing image; existing ones whose sha256 matches are kept.

    PNG encoding and hashing of one batch run in threads while the model makes the next batch (zlib
    releases the GIL), so the accelerator is not left waiting on the disk.
    """
    done = _valid_images(run)
    todo = [ImageRequest(p.prompt_id, p.generator_prompt, k, image_seed(spec.name, p.prompt_id, k, seed))
            for p in prompts for k in range(n_samples) if (p.prompt_id, k) not in done]
    started = time.perf_counter()
    bar = tqdm(total=len(prompts) * n_samples, initial=len(prompts) * n_samples - len(todo), desc="generate",
               unit="img", disable=not progress)
    batch = max(1, int(getattr(generator, "batch_size", 1)))

    def finish(pending: list[tuple[ImageRequest, Future]]) -> None:
        records = [ImageRecord(r.prompt_id, r.sample_index, r.seed, *f.result()) for r, f in pending]
        run.append_rows(IMAGES, [record.to_row() for record in records])
        done.update({(record.prompt_id, record.sample_index): record for record in records})
        bar.update(len(records))

    with ThreadPoolExecutor(max_workers=2) as pool:
        pending: list[tuple[ImageRequest, Future]] = []
        try:
            for start in range(0, len(todo), batch):
                requests = todo[start:start + batch]
                images = generator.generate(requests)
                if len(images) != len(requests):
                    raise RuntimeError(f"generator {generator.name} returned {len(images)} images for {len(requests)} requests")
                finish(pending)
                pending = [(r, pool.submit(run.save_image, image, r.prompt_id, r.sample_index))
                           for r, image in zip(requests, images)]
        finally:  # a failing batch still records the images made before it
            finish(pending)
    bar.close()
    records = [done[(p.prompt_id, k)] for p in prompts for k in range(n_samples)]
    run.write_rows(IMAGES, [r.to_row() for r in records])  # canonical order: resumed == uninterrupted
    _record_timing(run, "generate", time.perf_counter() - started, len(todo))
    return records


def _record_timing(run: RunDir, stage: str, seconds: float, items: int) -> None:
    manifest = run.read_manifest()
    timings = manifest.setdefault("timings", {})
    timings[f"{stage}_s"] = round(seconds, 3)
    timings[f"{stage}_items"] = items
    manifest["environment"] = environment()
    manifest["updated"] = _now()
    run.write_manifest(manifest)


def build_generator(options: RunOptions):
    cls = registry.generator_class(options.model)
    return cls(dict(options.model_args), device=options.device, dtype=options.dtype)


def build_scorer(spec: TaskSpec, name: str | None, args: dict[str, str], *, device: str, dtype: str, batch_size: int):
    default_name, default_args = spec.default_scorer
    if name is None:
        name, args = default_name, {**default_args, **args}
    cls = registry.scorer_class(name)
    return cls(dict(args), task=spec, device=device, dtype=dtype, batch_size=batch_size)


def _scored_rows(run: RunDir, records: list[ImageRecord], metrics: tuple[str, ...]) -> dict[tuple[str, int], list[dict]]:
    """Sample rows already written for the current bytes of each image, with every metric present."""
    current = {(r.prompt_id, r.sample_index): r.sha256 for r in records}
    grouped: dict[tuple[str, int], list[dict]] = {}
    for row in run.read_rows(SAMPLES):
        key = (row["prompt_id"], int(row["sample_index"]))
        if current.get(key) is not None and row.get("image_sha256") == current[key]:
            grouped.setdefault(key, []).append(row)
    return {k: v for k, v in grouped.items() if sorted(r["metric"] for r in v) == sorted(metrics)}


def score_images(run: RunDir, spec: TaskSpec, prompts: list[Prompt], records: list[ImageRecord], scorer, *,
                 use_cache: bool = True, progress: bool = True) -> None:
    """Score every image that has no rows yet for its current bytes; reuse the content cache."""
    manifest = run.read_manifest()
    description = scorer.describe()
    if manifest.get("scorer") not in (None, description):
        _clear(run, [SAMPLES, DETECTIONS, SUMMARY])  # a different scorer invalidates every score
    manifest["scorer"] = description
    run.write_manifest(manifest)

    by_id = {p.prompt_id: p for p in prompts}
    done = _scored_rows(run, records, scorer.metrics)
    detections = {(r["prompt_id"], int(r["sample_index"])): r for r in run.read_rows(DETECTIONS)}
    todo = [r for r in records if (r.prompt_id, r.sample_index) not in done]
    fingerprint = _fingerprint(description)
    cache = ScoreCache() if use_cache and todo else None
    started = time.perf_counter()
    bar = tqdm(total=len(records), initial=len(records) - len(todo), desc="score", unit="img", disable=not progress)
    for start in range(0, len(todo), max(1, scorer.batch_size)):
        batch = todo[start:start + scorer.batch_size]
        requests = [ScoreRequest(by_id[r.prompt_id], r.sample_index, str(run.path / r.path), r.sha256) for r in batch]
        keys = [cache_key(fingerprint, q.image_sha256, q.prompt.prompt, q.prompt.metadata) for q in requests]
        cached = cache.get_many(keys) if cache else {}
        missing = [i for i, k in enumerate(keys) if k not in cached]
        fresh = scorer.score([requests[i] for i in missing]) if missing else []
        results: dict[int, ScoredImage] = dict(zip(missing, fresh))
        if cache and fresh:
            cache.put_many({keys[i]: _to_cache(results[i]) for i in missing})
        for i, key in enumerate(keys):
            if i not in results:
                results[i] = _from_cache(cached[key], requests[i])
        sample_rows, detection_rows = [], []
        for i, request in enumerate(requests):
            scored = results[i]
            rows = [s.to_row() for s in scored.samples]
            if sorted(r["metric"] for r in rows) != sorted(scorer.metrics):
                raise RuntimeError(f"scorer {scorer.name} returned metrics {[r['metric'] for r in rows]}, "
                                   f"expected {list(scorer.metrics)}")
            done[(request.prompt.prompt_id, request.sample_index)] = rows
            sample_rows.extend(rows)
            if scored.detections is not None:
                row = {"prompt_id": request.prompt.prompt_id, "sample_index": request.sample_index,
                       "detections": scored.detections}
                detections[(request.prompt.prompt_id, request.sample_index)] = row
                detection_rows.append(row)
        run.append_rows(SAMPLES, sample_rows)
        if detection_rows:
            run.append_rows(DETECTIONS, detection_rows)
        bar.update(len(batch))
    bar.close()
    if cache:
        cache.close()
    keys = [(r.prompt_id, r.sample_index) for r in records]
    run.write_rows(SAMPLES, [row for k in keys for row in sorted(done[k], key=lambda r: r["metric"])])
    if detections:
        run.write_rows(DETECTIONS, [detections[k] for k in keys if k in detections])
    _record_timing(run, "score", time.perf_counter() - started, len(todo))


def _to_cache(scored: ScoredImage) -> dict[str, Any]:
    return {"samples": [{"metric": s.metric, "value": s.value, "reason": s.reason} for s in scored.samples],
            "detections": scored.detections}


def _from_cache(value: dict[str, Any], request: ScoreRequest) -> ScoredImage:
    samples = [Sample(request.prompt.prompt_id, request.sample_index, s["metric"], s["value"], s.get("reason"),
                      request.image_sha256) for s in value["samples"]]
    return ScoredImage(samples, value.get("detections"))


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

def generate(options: RunOptions) -> tuple[TaskSpec, list[Prompt], RunDir, list[ImageRecord]]:
    generator = build_generator(options)
    spec, prompts, run, manifest = prepare_run(options, generator.describe())
    n_samples = manifest["settings"]["n_samples"]
    records = generate_images(run, spec, prompts, generator, n_samples, options.seed, progress=options.progress)
    return spec, prompts, run, records


def score(run_path: str | Path, *, scorer: str | None = None, scorer_args: dict[str, str] | None = None,
          batch_size: int = 8, device: str = "auto", dtype: str = "auto", cache: bool = True,
          progress: bool = True, tasks_dir: str | None = None) -> RunDir:
    """Score an existing run directory (its images.jsonl) with the task's scorer or another one."""
    run = RunDir(run_path)
    manifest = run.read_manifest()
    spec = load_task(manifest["settings"]["task"]["name"], tasks_dir)
    prompts = [Prompt.from_row(r) for r in read_jsonl(run.file(PROMPTS))]
    records = [ImageRecord(**r) for r in _image_rows_checked(run, prompts, manifest["settings"]["n_samples"])]
    scorer_obj = build_scorer(spec, scorer, scorer_args or {}, device=device, dtype=dtype, batch_size=batch_size)
    score_images(run, spec, prompts, records, scorer_obj, use_cache=cache, progress=progress)
    return run


def _image_rows_checked(run: RunDir, prompts: list[Prompt], n_samples: int) -> list[dict[str, Any]]:
    valid = _valid_images(run)
    missing = [(p.prompt_id, k) for p in prompts for k in range(n_samples) if (p.prompt_id, k) not in valid]
    if missing:
        pid, k = missing[0]
        raise UsageError(f"{run.path}: image {pid}/{k:04d} is missing or does not match its sha256 "
                         f"({len(missing)} in all); run `ts-eval generate` with the same settings to finish it")
    return [asdict(valid[(p.prompt_id, k)]) for p in prompts for k in range(n_samples)]


def run(task: str, **kwargs) -> dict[str, Any]:
    """Generate, score and summarise; returns the summary (also written to summary.json)."""
    options = RunOptions(task=task, **kwargs)
    registry.scorer_class(options.scorer or load_task(task, options.tasks_dir).default_scorer[0])  # fail before generating
    spec, prompts, run_dir, records = generate(options)  # the generator is freed before the scorer loads
    scorer = build_scorer(spec, options.scorer, options.scorer_args, device=options.device, dtype=options.dtype,
                          batch_size=options.batch_size)
    score_images(run_dir, spec, prompts, records, scorer, use_cache=options.cache, progress=options.progress)
    summary = summarize_run(run_dir, resamples=options.resamples, tasks_dir=options.tasks_dir)
    summary["run_dir"] = str(run_dir.path)
    return summary
