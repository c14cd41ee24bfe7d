"""GenEval's official file layouts, both ways, and a side-by-side check of two runs.

- export: a run's images in the layout the official `evaluate_images.py` reads
  (`OUT/<prompt_id>/metadata.jsonl` holding the metadata row, `OUT/<prompt_id>/samples/<k:04d>.png`);
  the same layout is read back by `--model folder --model-arg path=OUT`.
- import: the official `results.jsonl` (one row per image: filename, tag, prompt, correct, reason,
  metadata, details) as a run directory, so `ts-eval report OURS IMPORTED` prints both side by side.
- compare: per-tag agreement of two GenEval runs on the images they share.
"""

from __future__ import annotations

import json
import shutil
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
from tqdm.auto import tqdm

from ts_eval.errors import UsageError
from ts_eval.geneval.rescore import IMPORTED_SCORER
from ts_eval.records import Sample, readable
from ts_eval.store import DETECTIONS, PROMPTS, SAMPLES, RunDir, read_jsonl, write_atomic
from ts_eval.store.files import sha256_file
from ts_eval.tasks import load_task
from ts_eval.tasks.data import resolve_data

if TYPE_CHECKING:
    from ts_eval.store.reader import Need

GENERATOR_NAME = "official-results"


def _geneval_run(path, tasks_dir: str | None, need: Need = "scores"):
    from ts_eval.store.reader import read_run

    run = read_run(path, need=need, tasks_dir=tasks_dir)
    if getattr(run.spec.module, "__name__", None) != "ts_eval.geneval.task":  # a module, or any TaskModule
        raise UsageError(f"{run.path} is a {run.spec.name} run, not a GenEval run")
    return run


def _fresh_folder(path: Path, overwrite: bool, what: str) -> None:
    if path.exists() and any(path.iterdir()):
        if not overwrite:
            raise UsageError(f"{path} exists and is not empty; choose another {what} or pass --overwrite")
        shutil.rmtree(path)


# -- export ------------------------------------------------------------------------------------------


def export_official(
    run_path, outdir, *, overwrite: bool = False, tasks_dir: str | None = None, progress: bool = True
) -> int:
    """Write the run's images and metadata in the official layout; returns the number of images."""
    run = _geneval_run(run_path, tasks_dir, need="images")  # every image present with its recorded bytes
    images = {(r.prompt_id, r.sample_index): r for r in run.images}
    wanted = [(p, k) for p in run.prompts for k in range(run.n_samples)]
    out = Path(outdir)
    _fresh_folder(out, overwrite, "output folder")
    for p in run.prompts:
        write_atomic(out / p.prompt_id / "metadata.jsonl", (json.dumps(p.metadata) + "\n").encode("utf-8"))
    for p, k in tqdm(wanted, desc="export", unit="img", disable=not progress):
        source = run.path / images[(p.prompt_id, k)].path
        write_atomic(out / p.prompt_id / "samples" / f"{k:04d}.png", source.read_bytes())
    return len(wanted)


# -- import ------------------------------------------------------------------------------------------


def _canonical(metadata: dict[str, Any]) -> str:
    return json.dumps(metadata, sort_keys=True)


def _image_key(filename: str, where: str) -> tuple[str, int]:
    """`.../<prompt folder>/samples/<k>.png` -> (prompt folder, k)."""
    path = Path(filename)
    if not path.stem.isdigit():
        raise UsageError(f"{where}: filename {filename!r} is not .../<prompt>/samples/<number>.png")
    return path.parent.parent.name, int(path.stem)


def _detections_from_details(details: Any, where: str) -> dict[str, list[dict[str, Any]]]:
    """Official `details` (class -> [[x1, y1, x2, y2, score], ...], after its thresholds) -> our format."""
    if isinstance(details, str):
        details = json.loads(details)
    out = {}
    for name, boxes in (details or {}).items():
        try:
            out[name] = [{"box": [float(v) for v in b[:4]], "score": float(b[4]), "color": None} for b in boxes]
        except (TypeError, ValueError, IndexError):
            raise UsageError(f"{where}: details of {name!r} must be lists of [x1, y1, x2, y2, score]") from None
    return out


def import_official(
    results_path,
    out,
    *,
    data: str | None = None,
    overwrite: bool = False,
    tasks_dir: str | None = None,
    resamples: int | None = None,
) -> dict[str, Any]:
    """Turn an official results.jsonl into a run directory; returns its summary."""
    from ts_eval.store.reader import read_run
    from ts_eval.summary import summarize, write_summary

    results_path = Path(results_path)
    if not results_path.is_file():
        raise UsageError(f"{results_path}: no such file (expected the official evaluate_images.py results.jsonl)")
    spec = load_task("geneval", tasks_dir)
    files = resolve_data(spec, None, data)
    prompts = spec.module.load_prompts(files)
    by_metadata = {_canonical(p.metadata): p for p in prompts}

    samples: dict[tuple[str, int], Sample] = {}
    detections: dict[tuple[str, int], dict[str, Any]] = {}
    for number, row in enumerate(read_jsonl(results_path), start=1):
        where = f"{results_path}: line {number}"
        try:
            metadata = json.loads(row["metadata"]) if isinstance(row["metadata"], str) else row["metadata"]
            filename, correct = str(row["filename"]), row["correct"]
        except (KeyError, TypeError, json.JSONDecodeError):
            raise UsageError(
                f"{where} needs 'filename', 'correct' and 'metadata' as evaluate_images.py writes them"
            ) from None
        prompt = by_metadata.get(_canonical(metadata)) if isinstance(metadata, dict) else None
        if prompt is None:
            raise UsageError(
                f"{where}: prompt {metadata.get('prompt') if isinstance(metadata, dict) else metadata!r} "
                f"is not one of GenEval's {len(prompts)} prompts; these results come from another prompt set"
            )
        _, k = _image_key(filename, where)
        key = (prompt.prompt_id, k)
        if key in samples:
            raise UsageError(f"{where} repeats image {key[0]}/{k:04d}")
        samples[key] = Sample(prompt.prompt_id, k, "correct", float(bool(correct)), row.get("reason") or None)
        detections[key] = _detections_from_details(row.get("details"), where)
    if not samples:
        raise UsageError(f"{results_path}: no results")

    order = sorted(samples)
    chosen = [p for p in prompts if any(key[0] == p.prompt_id for key in samples)]
    run = RunDir(out)
    _fresh_folder(run.path, overwrite, "--out")
    run.path.mkdir(parents=True, exist_ok=True)
    results_sha = sha256_file(results_path)
    counts = defaultdict(int)
    for pid, _ in order:
        counts[pid] += 1
    run.write_manifest(
        {
            "settings": {
                "task": {
                    "name": spec.name,
                    "version": spec.version,
                    "spec_sha256": spec.sha256,
                    "variant": spec.variant(None)[0],
                    "split": "all",
                    "skill": None,
                    "limit": None,
                },
                "data": {k: v for k, v in files.source.items() if k != "origin"},
                "generator": {
                    "name": GENERATOR_NAME,
                    "config": {"results": str(results_path.resolve())},
                    "checkpoint_sha256": None,
                },
                "n_samples": max(counts.values()),
                "seed": None,
                "prompt_rewrites": None,
            },
            "scorer": {"name": IMPORTED_SCORER, "results_sha256": results_sha},
            "imported": {"from": str(results_path.resolve()), "sha256": results_sha, "images": len(order)},
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
        }
    )
    run.write_rows(PROMPTS, [p.to_row() for p in chosen])
    by_id = {p.prompt_id: p for p in chosen}
    run.write_rows(SAMPLES, [readable(samples[key], by_id[key[0]], None).to_row() for key in order])  # no images
    run.write_rows(
        DETECTIONS, [{"prompt_id": pid, "sample_index": k, "detections": detections[(pid, k)]} for pid, k in order]
    )
    imported = read_run(run.path, tasks_dir=tasks_dir, spec=spec)
    summary = summarize(imported, resamples=resamples)
    write_summary(imported, summary)
    return summary


# -- compare -----------------------------------------------------------------------------------------


def compare_runs(first, second, *, tasks_dir: str | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per-tag agreement on shared images, and the images judged differently (with both reasons)."""
    tables = []
    for path in (first, second):
        run = _geneval_run(path, tasks_dir)
        tags = {p.prompt_id: p.metadata["tag"] for p in run.prompts}
        rows = [s for s in run.samples if s.metric == "correct"]
        frame = pd.DataFrame(
            {
                "prompt_id": [s.prompt_id for s in rows],
                "sample_index": [s.sample_index for s in rows],
                "correct": [bool(s.value) for s in rows],
                "reason": [s.reason or "" for s in rows],
            }
        )
        frame["tag"] = frame["prompt_id"].map(tags)
        tables.append(frame)
    both = tables[0].merge(tables[1], on=["prompt_id", "sample_index", "tag"], suffixes=("_a", "_b"))
    if both.empty:
        raise UsageError(f"{first} and {second} share no images")
    both["agree"] = both["correct_a"] == both["correct_b"]
    per_tag = both.groupby("tag", sort=False).agg(
        images=("agree", "size"),
        agree=("agree", "mean"),
        correct_a=("correct_a", "mean"),
        correct_b=("correct_b", "mean"),
    )
    per_tag.loc["all"] = [len(both), both["agree"].mean(), both["correct_a"].mean(), both["correct_b"].mean()]
    per_tag["images"] = per_tag["images"].astype(int)
    differ = both.loc[
        ~both["agree"], ["prompt_id", "sample_index", "tag", "correct_a", "reason_a", "correct_b", "reason_b"]
    ]
    return per_tag, differ.reset_index(drop=True)
