"""The two expensive stages: make the missing images, score the unscored ones.

Both follow one pattern, on one process or many under torchrun: read what the run already has (canonical
file + every rank's progress file; images are checked against their sha256), agree on the work left
(barrier), take this rank's stride of it, append results to this rank's progress file, then rank 0 merges
everything into the canonical file in a fixed order.
"""

from __future__ import annotations

import errno
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from tqdm.auto import tqdm

from ts_eval.cache import ScoreCache, cache_key
from ts_eval.distributed import World
from ts_eval.errors import UsageError, disk_full
from ts_eval.generators.base import Generator
from ts_eval.prepare import PreparedRun
from ts_eval.records import ImageKey as Key
from ts_eval.records import ImageRecord, ImageRequest, Sample, ScoredImage, ScoreRequest, image_keys, readable
from ts_eval.scorers.base import Scorer
from ts_eval.seeding import image_seed
from ts_eval.store import DETECTIONS, IMAGES, SAMPLES, SUMMARY, RunDir, environment, fingerprint, now
from ts_eval.store.hashes import verified_sha256


def _key(row: dict[str, Any]) -> Key:
    return row["prompt_id"], int(row["sample_index"])


def _image_record(row: dict[str, Any]) -> ImageRecord | None:
    try:
        return ImageRecord(
            row["prompt_id"], int(row["sample_index"]), int(row["seed"]), str(row["path"]), str(row["sha256"])
        )
    except (KeyError, TypeError, ValueError):
        return None


def valid_images(run: RunDir, settings: dict[str, Any], keys: list[Key]) -> dict[Key, ImageRecord]:
    """Images a resume may keep: listed (canonical file or any rank's progress), made with this run's seed, in
    this run's format, with bytes on disk that still match their recorded sha256. Anything else is made again."""
    expected = set(keys)
    task, seed, fmt = settings["task"]["name"], settings["seed"], settings.get("image_format", "png")
    candidates: dict[Key, ImageRecord] = {}
    for row in run.read_rows(IMAGES) + run.progress_rows(IMAGES):
        record = _image_record(row) if isinstance(row, dict) else None
        if record is None:
            continue
        key = (record.prompt_id, record.sample_index)
        if (
            key in expected
            and record.seed == image_seed(task, *key, seed)
            and record.path == run.image_relpath(*key, fmt)
            and (run.path / record.path).is_file()
        ):
            candidates[key] = record  # later rows (a re-made image) replace earlier ones
    actual = verified_sha256([run.path / r.path for r in candidates.values()])
    return {k: r for k, r in candidates.items() if actual[run.path / r.path] == r.sha256}


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
        rows = sum(
            path.read_bytes().count(b"\n")
            for path in (self.run.path / "progress").glob(f"{self.name.split('.')[0]}-rank*.jsonl")
        )
        self.bar.n = min(self.bar.total, self.initial + rows // items_per_row)
        self.bar.refresh()

    def close(self) -> None:
        self.bar.close()


def generate_images(
    prepared: PreparedRun, generator: Generator, *, world: World = World(), progress: bool = True
) -> list[ImageRecord]:
    """Make every missing image; existing ones whose seed and sha256 match are kept.

    Batches are a fixed partition of the run's canonical order by the generator's batch size, and a batch
    with a missing image is made whole again: an image's batch companions (which GPU kernels can round
    with) are the same on a resume and on any number of processes. A generator that declares
    `batch_invariant` (its images never depend on their companions) only makes the missing images. Encoding and hashing of one batch run
    in threads while the model makes the next batch (zlib releases the GIL), so the accelerator is not left
    waiting on the disk. Each image's row is appended as soon as its file is written, so a kill loses at
    most the images still in memory.
    """
    run, settings, spec = prepared.run, prepared.settings, prepared.spec
    keys = image_keys(prepared.prompts, settings["n_samples"])
    done = valid_images(run, settings, keys)
    by_id = {p.prompt_id: p for p in prepared.prompts}
    requests = [
        ImageRequest(pid, by_id[pid].generator_prompt, k, image_seed(spec.name, pid, k, settings["seed"]))
        for pid, k in keys
    ]
    size = max(1, int(getattr(generator, "batch_size", 1)))
    if getattr(generator, "batch_invariant", False):  # its images never depend on their companions
        requests = [r for r in requests if (r.prompt_id, r.sample_index) not in done]
    batches = [requests[start : start + size] for start in range(0, len(requests), size)]
    missing = len(keys) - len(done)
    world.barrier()  # every rank has read the same state before anyone writes
    mine = world.shard([b for b in batches if any((r.prompt_id, r.sample_index) not in done for r in b)])
    started = time.perf_counter()
    bar = _GlobalBar(run, IMAGES, world, len(keys), len(done), "generate", progress)
    image_format = settings["image_format"]

    saved = {"images": 0, "bytes": 0}

    def save(request: ImageRequest, image) -> None:
        rel, sha = run.save_image(image, request.prompt_id, request.sample_index, image_format)
        record = ImageRecord(request.prompt_id, request.sample_index, request.seed, rel, sha)
        run.append_progress(IMAGES, world.rank, [record.to_row()])
        saved["images"] += 1
        saved["bytes"] += (run.path / rel).stat().st_size

    def finish(pending: list[Future]) -> None:
        try:
            for future in pending:
                future.result()
        except OSError as exc:
            if exc.errno != errno.ENOSPC:
                raise
            left = sum(len(b) for b in mine) - saved["images"]
            raise disk_full(run.path, left * saved["bytes"] // max(saved["images"], 1) or None) from None
        bar.update(len(pending))

    with ThreadPoolExecutor(max_workers=2) as pool:
        pending: list[Future] = []
        try:
            for batch in mine:
                images = generator.generate(batch)
                if len(images) != len(batch):
                    raise RuntimeError(
                        f"generator {generator.name} returned {len(images)} images for {len(batch)} requests"
                    )
                finish(pending)
                pending = [
                    pool.submit(save, r, image)
                    for r, image in zip(batch, images)
                    if (r.prompt_id, r.sample_index) not in done
                ]
        finally:  # a failing batch still records the images made before it; an error starts on its own line
            try:
                finish(pending)
            finally:
                bar.close()
    world.barrier()
    if world.is_main:
        records = _complete(run, valid_images(run, settings, keys), keys, "image")
        run.finalize_rows(IMAGES, [r.to_row() for r in records])  # canonical order: resumed == uninterrupted
        record_timing(run, "generate", time.perf_counter() - started, missing, world)
    world.barrier()
    return [ImageRecord(**row) for row in run.read_rows(IMAGES)]


def _complete(run: RunDir, found: dict[Key, Any], keys: list[Key], what: str) -> list:
    """Rank 0's check that every rank delivered its share, in the canonical order of `keys`."""
    missing = [k for k in keys if k not in found]
    if missing:
        raise UsageError(
            f"{run.path}: {len(missing)} {what}(s) missing after the stage, first "
            f"{missing[0][0]}/{missing[0][1]:04d}; re-run the same command to finish"
        )
    return [found[k] for k in keys]


def record_timing(run: RunDir, stage: str, seconds: float, items: int, world: World = World()) -> None:
    def change(manifest: dict[str, Any]) -> None:
        timings = manifest.setdefault("timings", {})
        timings[f"{stage}_s"] = round(seconds, 3)
        timings[f"{stage}_items"] = items
        timings[f"{stage}_processes"] = world.size
        manifest["environment"] = environment()
        manifest["updated"] = now()

    run.update_manifest(change)


def scored_rows(
    run: RunDir, records: list[ImageRecord], metrics: tuple[str, ...], with_detections: bool
) -> tuple[dict[Key, list[dict]], dict[Key, dict]]:
    """Scores a resume may keep: a row per metric for the image's current bytes (and its detections where the
    scorer writes them), from the canonical files only while their recorded sha256 holds, then from progress
    files in append order (a later row for the same image supersedes an earlier one, as after a kill between
    the detections and the samples of one batch)."""
    current = {(r.prompt_id, r.sample_index): r.sha256 for r in records}
    sample_rows = (run.read_rows(SAMPLES) if run.intact(SAMPLES) else []) + run.progress_rows(SAMPLES)
    detection_rows = (run.read_rows(DETECTIONS) if run.intact(DETECTIONS) else []) + run.progress_rows(DETECTIONS)
    grouped: dict[Key, dict[str, dict]] = {}
    for row in sample_rows:
        key = _key(row)
        if current.get(key) is not None and row.get("image_sha256") == current[key] and row.get("metric") in metrics:
            grouped.setdefault(key, {})[row["metric"]] = row
    detections = {_key(row): row for row in detection_rows}
    kept = {
        key: [by_metric[m] for m in sorted(by_metric)]
        for key, by_metric in grouped.items()
        if len(by_metric) == len(metrics) and (not with_detections or key in detections)
    }
    return kept, {k: detections[k] for k in kept if with_detections}


def score_images(
    prepared: PreparedRun,
    records: list[ImageRecord],
    scorer: Scorer,
    *,
    world: World = World(),
    use_cache: bool = True,
    progress: bool = True,
    overwrite: bool = False,
    scorer_options: dict[str, Any] | None = None,
) -> None:
    """Score every image that has no rows yet for its current bytes; reuse the content cache.

    A run holds one score set: scores from another scorer (or other scorer settings) are replaced only
    with `--overwrite`, never silently.
    """
    run, prompts = prepared.run, prepared.prompts
    description = scorer.describe()
    with_detections = bool(getattr(scorer, "writes_detections", False))
    if world.is_main:
        recorded = run.read_manifest().get("scorer")
        if recorded not in (None, description):
            if not overwrite:
                raise UsageError(
                    f"{run.path} is already scored with {_scorer_name(recorded)} "
                    f"({_first_change(recorded, description)}); pass --overwrite to replace those "
                    "scores, or score a copy of the run"
                )
            run.clear([SAMPLES, DETECTIONS, SUMMARY, "progress/samples-rank*", "progress/detections-rank*"])
        run.update_manifest(
            lambda m: m.update(
                {
                    "scorer": description,
                    "metrics": list(scorer.metrics),
                    "scorer_options": scorer_options or {"name": scorer.name},
                }
            )
        )
    world.barrier()

    by_id = {p.prompt_id: p for p in prompts}
    done, _ = scored_rows(run, records, scorer.metrics, with_detections)
    todo = [r for r in records if (r.prompt_id, r.sample_index) not in done]
    world.barrier()
    mine = world.shard(todo)
    scorer_key = fingerprint(description)
    cache = ScoreCache() if use_cache and mine else None
    started = time.perf_counter()
    bar = _GlobalBar(run, SAMPLES, world, len(records), len(records) - len(todo), "score", progress)
    step = max(1, int(scorer.batch_size))
    try:
        _score_share(run, mine, by_id, scorer, cache, scorer_key, step, world, bar)
    finally:
        bar.close()
        if cache:
            cache.close()
    world.barrier()
    if world.is_main:
        keys = [(r.prompt_id, r.sample_index) for r in records]
        rows, detections = scored_rows(run, records, scorer.metrics, with_detections)
        done = _complete(run, rows, keys, "score")
        if with_detections:
            run.finalize_rows(DETECTIONS, [detections[k] for k in keys])
        by_key = {(r.prompt_id, r.sample_index): r for r in records}
        # Rows read on their own (prompt text, image path), filled in here for fresh, cached and resumed scores alike.
        run.finalize_rows(
            SAMPLES,
            [
                readable(Sample.from_row(row), by_id[key[0]], by_key[key]).to_row()
                for key, rows in zip(keys, done)
                for row in rows
            ],
        )
        record_timing(run, "score", time.perf_counter() - started, len(todo), world)
    world.barrier()


def _score_share(
    run: RunDir,
    mine: list[ImageRecord],
    by_id: dict,
    scorer: Scorer,
    cache: ScoreCache | None,
    scorer_key: str,
    step: int,
    world: World,
    bar: _GlobalBar,
) -> None:
    """This rank's share of the images, batch by batch; rows appended to its progress files as they come."""
    for start in range(0, len(mine), step):
        batch = mine[start : start + step]
        requests = [ScoreRequest(by_id[r.prompt_id], r.sample_index, str(run.path / r.path), r.sha256) for r in batch]
        results = score_with_cache(scorer, requests, cache, scorer_key)
        sample_rows, detection_rows = [], []
        for request, scored in zip(requests, results):
            rows = [s.to_row() for s in scored.samples]
            if sorted(r["metric"] for r in rows) != sorted(scorer.metrics):
                raise RuntimeError(
                    f"scorer {scorer.name} returned metrics {[r['metric'] for r in rows]}, "
                    f"expected {list(scorer.metrics)}"
                )
            sample_rows.extend(rows)
            if scored.detections is not None:
                detection_rows.append(
                    {
                        "prompt_id": request.prompt.prompt_id,
                        "sample_index": request.sample_index,
                        "detections": scored.detections,
                    }
                )
        if detection_rows:  # detections first: a sample row implies its detections are on disk
            run.append_progress(DETECTIONS, world.rank, detection_rows)
        run.append_progress(SAMPLES, world.rank, sample_rows)
        bar.update(len(batch), items_per_row=len(scorer.metrics))


def _scorer_name(description: dict[str, Any]) -> str:
    return str(description.get("name", "another scorer")) if isinstance(description, dict) else "another scorer"


def _first_change(old: Any, new: Any, path: str = "") -> str:
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(set(old) | set(new), key=str):
            if old.get(key) != new.get(key):
                return _first_change(old.get(key), new.get(key), f"{path}{key}.")
    return f"{path.rstrip('.') or 'scorer'}: {old!r} -> {new!r}"[:160]


def score_with_cache(
    scorer: Scorer, requests: list[ScoreRequest], cache: ScoreCache | None, scorer_key: str
) -> list[ScoredImage]:
    """Answer from the content cache where possible; the scorer sees only the rest, as one batch."""
    keys = [cache_key(scorer_key, q.image_sha256, q.prompt.prompt, q.prompt.metadata) for q in requests]
    cached = cache.get_many(keys) if cache else {}
    missing = [i for i, k in enumerate(keys) if k not in cached]
    fresh = dict(zip(missing, scorer.score([requests[i] for i in missing]) if missing else []))
    if cache and fresh:
        cache.put_many({keys[i]: _to_cache(scored) for i, scored in fresh.items()})
    return [fresh[i] if i in fresh else _from_cache(cached[keys[i]], requests[i]) for i in range(len(requests))]


def _to_cache(scored: ScoredImage) -> dict[str, Any]:
    return {
        "samples": [{"metric": s.metric, "value": s.value, "reason": s.reason} for s in scored.samples],
        "detections": scored.detections,
    }


def _from_cache(value: dict[str, Any], request: ScoreRequest) -> ScoredImage:
    samples = [
        Sample(
            request.prompt.prompt_id,
            request.sample_index,
            s["metric"],
            s["value"],
            s.get("reason"),
            request.image_sha256,
        )
        for s in value["samples"]
    ]
    return ScoredImage(samples, value.get("detections"))
