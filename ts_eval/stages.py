"""The two expensive stages: make the missing images, score the unscored ones.

Both follow one pattern, on one process or many under torchrun: read what the run already has (canonical
file + every rank's progress file; images are checked against their sha256), agree on the work left
(barrier), take this rank's stride of it, append results to this rank's progress file, then rank 0 merges
everything into the canonical file in a fixed order.
"""

from __future__ import annotations

import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from tqdm.auto import tqdm

from ts_eval.cache import ScoreCache, cache_key
from ts_eval.data import sha256_file
from ts_eval.distributed import World
from ts_eval.errors import UsageError
from ts_eval.prepare import clear, environment, fingerprint, now
from ts_eval.records import ImageKey as Key
from ts_eval.records import ImageRecord, ImageRequest, Prompt, Sample, ScoredImage, ScoreRequest, image_keys
from ts_eval.seeding import image_seed
from ts_eval.store import DETECTIONS, IMAGES, SAMPLES, SUMMARY, RunDir
from ts_eval.tasks import TaskSpec

def _key(row: dict[str, Any]) -> Key:
    return row["prompt_id"], int(row["sample_index"])


def valid_images(run: RunDir) -> dict[Key, ImageRecord]:
    """Images on disk whose bytes still match the sha256 recorded for them (any rank, any earlier run)."""
    valid: dict[Key, ImageRecord] = {}
    for row in run.read_all_rows(IMAGES):
        record = ImageRecord(**{k: row[k] for k in ("prompt_id", "sample_index", "seed", "path", "sha256")})
        if _key(row) in valid and valid[_key(row)].sha256 == record.sha256:
            continue
        path = run.path / record.path
        if path.is_file() and sha256_file(path) == record.sha256:
            valid[_key(row)] = record
    return valid


class _GlobalBar:
    """Rank 0's progress bar, counting every rank's finished items from their progress files."""

    def __init__(self, run: RunDir, name: str, world: World, total: int, initial: int, desc: str, enabled: bool):
        self.run, self.name, self.world = run, name, world
        self.initial = initial
        self.bar = tqdm(total=total, initial=initial, desc=desc, unit="img", disable=not (enabled and world.is_main))

    def update(self, own: int, items_per_row: int = 1) -> None:
        if self.bar.disable:
            return
        if self.world.size == 1:
            self.bar.update(own)
            return
        rows = sum(path.read_bytes().count(b"\n") for path in (self.run.path / "progress").glob(
            f"{self.name.split('.')[0]}-rank*.jsonl"))
        self.bar.n = min(self.bar.total, self.initial + rows // items_per_row)
        self.bar.refresh()

    def close(self) -> None:
        self.bar.close()


def generate_images(run: RunDir, spec: TaskSpec, prompts: list[Prompt], generator, n_samples: int, seed: int, *,
                    world: World = World(), progress: bool = True) -> list[ImageRecord]:
    """Make every missing image; existing ones whose sha256 matches are kept.

    PNG encoding and hashing of one batch run in threads while the model makes the next batch (zlib
    releases the GIL), so the accelerator is not left waiting on the disk.
    """
    done = valid_images(run)
    by_id = {p.prompt_id: p for p in prompts}
    todo = [ImageRequest(pid, by_id[pid].generator_prompt, k, image_seed(spec.name, pid, k, seed))
            for pid, k in image_keys(prompts, n_samples) if (pid, k) not in done]
    world.barrier()  # every rank has read the same state before anyone writes
    mine = world.shard(todo)
    started = time.perf_counter()
    total = len(prompts) * n_samples
    bar = _GlobalBar(run, IMAGES, world, total, total - len(todo), "generate", progress)
    batch = max(1, int(getattr(generator, "batch_size", 1)))

    def finish(pending: list[tuple[ImageRequest, Future]]) -> None:
        records = [ImageRecord(r.prompt_id, r.sample_index, r.seed, *f.result()) for r, f in pending]
        run.append_progress(IMAGES, world.rank, [record.to_row() for record in records])
        bar.update(len(records))

    with ThreadPoolExecutor(max_workers=2) as pool:
        pending: list[tuple[ImageRequest, Future]] = []
        try:
            for start in range(0, len(mine), batch):
                requests = mine[start:start + batch]
                images = generator.generate(requests)
                if len(images) != len(requests):
                    raise RuntimeError(f"generator {generator.name} returned {len(images)} images for "
                                       f"{len(requests)} requests")
                finish(pending)
                pending = [(r, pool.submit(run.save_image, image, r.prompt_id, r.sample_index))
                           for r, image in zip(requests, images)]
        finally:  # a failing batch still records the images made before it
            finish(pending)
    bar.close()
    world.barrier()
    if world.is_main:
        records = _complete(run, valid_images(run), image_keys(prompts, n_samples), "image")
        run.finalize_rows(IMAGES, [r.to_row() for r in records])  # canonical order: resumed == uninterrupted
        record_timing(run, "generate", time.perf_counter() - started, len(todo), world)
    world.barrier()
    return [ImageRecord(**row) for row in run.read_rows(IMAGES)]


def _complete(run: RunDir, found: dict[Key, Any], keys: list[Key], what: str) -> list:
    """Rank 0's check that every rank delivered its share, in the canonical order of `keys`."""
    missing = [k for k in keys if k not in found]
    if missing:
        raise UsageError(f"{run.path}: {len(missing)} {what}(s) missing after the stage, first "
                         f"{missing[0][0]}/{missing[0][1]:04d}; re-run the same command to finish")
    return [found[k] for k in keys]


def record_timing(run: RunDir, stage: str, seconds: float, items: int, world: World = World()) -> None:
    manifest = run.read_manifest()
    timings = manifest.setdefault("timings", {})
    timings[f"{stage}_s"] = round(seconds, 3)
    timings[f"{stage}_items"] = items
    timings[f"{stage}_processes"] = world.size
    manifest["environment"] = environment()
    manifest["updated"] = now()
    run.write_manifest(manifest)


def scored_rows(run: RunDir, records: list[ImageRecord], metrics: tuple[str, ...]) -> dict[Key, list[dict]]:
    """Sample rows already written for the current bytes of each image, with every metric present."""
    current = {(r.prompt_id, r.sample_index): r.sha256 for r in records}
    grouped: dict[Key, dict[str, dict]] = {}
    for row in run.read_all_rows(SAMPLES):
        key = _key(row)
        if current.get(key) is not None and row.get("image_sha256") == current[key]:
            grouped.setdefault(key, {})[row["metric"]] = row
    return {k: [v[m] for m in sorted(v)] for k, v in grouped.items() if sorted(v) == sorted(metrics)}


def score_images(run: RunDir, spec: TaskSpec, prompts: list[Prompt], records: list[ImageRecord], scorer, *,
                 world: World = World(), use_cache: bool = True, progress: bool = True) -> None:
    """Score every image that has no rows yet for its current bytes; reuse the content cache."""
    description = scorer.describe()
    if world.is_main:
        manifest = run.read_manifest()
        if manifest.get("scorer") not in (None, description):
            clear(run, [SAMPLES, DETECTIONS, SUMMARY, "progress/samples-rank*", "progress/detections-rank*"])
        manifest["scorer"] = description
        run.write_manifest(manifest)
    world.barrier()

    by_id = {p.prompt_id: p for p in prompts}
    done = scored_rows(run, records, scorer.metrics)
    todo = [r for r in records if (r.prompt_id, r.sample_index) not in done]
    world.barrier()
    mine = world.shard(todo)
    scorer_key = fingerprint(description)
    cache = ScoreCache() if use_cache and mine else None
    started = time.perf_counter()
    bar = _GlobalBar(run, SAMPLES, world, len(records), len(records) - len(todo), "score", progress)
    step = max(1, int(scorer.batch_size))
    for start in range(0, len(mine), step):
        batch = mine[start:start + step]
        requests = [ScoreRequest(by_id[r.prompt_id], r.sample_index, str(run.path / r.path), r.sha256) for r in batch]
        results = _score_batch(scorer, requests, cache, scorer_key)
        sample_rows, detection_rows = [], []
        for request, scored in zip(requests, results):
            rows = [s.to_row() for s in scored.samples]
            if sorted(r["metric"] for r in rows) != sorted(scorer.metrics):
                raise RuntimeError(f"scorer {scorer.name} returned metrics {[r['metric'] for r in rows]}, "
                                   f"expected {list(scorer.metrics)}")
            sample_rows.extend(rows)
            if scored.detections is not None:
                detection_rows.append({"prompt_id": request.prompt.prompt_id, "sample_index": request.sample_index,
                                       "detections": scored.detections})
        if detection_rows:  # detections first: a sample row implies its detections are on disk
            run.append_progress(DETECTIONS, world.rank, detection_rows)
        run.append_progress(SAMPLES, world.rank, sample_rows)
        bar.update(len(batch), items_per_row=len(scorer.metrics))
    bar.close()
    if cache:
        cache.close()
    world.barrier()
    if world.is_main:
        keys = [(r.prompt_id, r.sample_index) for r in records]
        done = _complete(run, scored_rows(run, records, scorer.metrics), keys, "score")
        run.finalize_rows(SAMPLES, [row for rows in done for row in rows])
        detections = {_key(r): r for r in run.read_all_rows(DETECTIONS)}
        if detections:
            run.finalize_rows(DETECTIONS, [detections[(r.prompt_id, r.sample_index)] for r in records
                                           if (r.prompt_id, r.sample_index) in detections])
        record_timing(run, "score", time.perf_counter() - started, len(todo), world)
    world.barrier()


def _score_batch(scorer, requests: list[ScoreRequest], cache: ScoreCache | None, scorer_key: str) -> list[ScoredImage]:
    """Answer from the content cache where possible; the scorer sees only the rest, as one batch."""
    keys = [cache_key(scorer_key, q.image_sha256, q.prompt.prompt, q.prompt.metadata) for q in requests]
    cached = cache.get_many(keys) if cache else {}
    missing = [i for i, k in enumerate(keys) if k not in cached]
    fresh = dict(zip(missing, scorer.score([requests[i] for i in missing]) if missing else []))
    if cache and fresh:
        cache.put_many({keys[i]: _to_cache(scored) for i, scored in fresh.items()})
    return [fresh[i] if i in fresh else _from_cache(cached[keys[i]], requests[i]) for i in range(len(requests))]


def _to_cache(scored: ScoredImage) -> dict[str, Any]:
    return {"samples": [{"metric": s.metric, "value": s.value, "reason": s.reason} for s in scored.samples],
            "detections": scored.detections}


def _from_cache(value: dict[str, Any], request: ScoreRequest) -> ScoredImage:
    samples = [Sample(request.prompt.prompt_id, request.sample_index, s["metric"], s["value"], s.get("reason"),
                      request.image_sha256) for s in value["samples"]]
    return ScoredImage(samples, value.get("detections"))
