"""What a reader's checks cost: validating a complete run directory before any number comes out of it.

Builds two complete runs with the dummy model and scorer at realistic image sizes - a GenAI-Bench-1600-shaped
run (1,600 JPEG images at 1024 px; the data is synthetic with the official counts) and GenEval (553 prompts x 4
PNG images at 512 px) - then times `read_run` (manifest, recorded sha256 of canonical files, every row once,
seeds, image bytes, scores for those bytes) cold (image hashes not yet cached) and warm, `summarize` with and
without the bootstrap, and the lock. Prints a table and writes JSON.

    python benchmarks/validate_speed.py [--json OUT.json] [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness_overhead import synthetic_genai_bench

from ts_eval import run
from ts_eval.store import RunLock, write_json
from ts_eval.store.reader import read_run
from ts_eval.summary import summarize


def timed(call, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure(label: str, path: Path, cache: Path, repeats: int) -> dict:
    for stale in cache.glob("file-hashes.sqlite*"):
        stale.unlink()
    start = time.perf_counter()
    loaded = read_run(path)
    cold = time.perf_counter() - start
    lock = RunLock(path)
    return {
        "run": label,
        "images": len(loaded.images),
        "read_run cold s": round(cold, 3),
        "read_run warm s": round(timed(lambda: read_run(path), repeats), 3),
        "read_run no images s": round(timed(lambda: read_run(path, need="prompts"), repeats), 3),
        "summarize 0 resamples s": round(timed(lambda: summarize(loaded, resamples=0), repeats), 3),
        "summarize 1000 resamples s": round(timed(lambda: summarize(loaded, resamples=1000), repeats), 3),
        "lock ms": round(1000 * timed(lambda: (lock.acquire(), lock.release()), repeats), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        os.environ["TS_EVAL_CACHE_DIR"] = str(tmp / "cache")
        synthetic_genai_bench(tmp / "data")
        run(
            "genai-bench",
            variant="1600",
            data=str(tmp / "data"),
            model="dummy",
            model_args={"resolution": "1024"},
            scorer="dummy",
            out=str(tmp / "genai"),
            progress=False,
            view=False,
        )
        rows.append(measure("GenAI-Bench-1600 x1 (JPEG 1024 px)", tmp / "genai", tmp / "cache", args.repeats))
        run(
            "geneval",
            model="dummy",
            model_args={"resolution": "512"},
            scorer_args={"detector": "dummy"},
            out=str(tmp / "geneval"),
            progress=False,
            view=False,
        )
        rows.append(measure("GenEval 553x4 (PNG 512 px)", tmp / "geneval", tmp / "cache", args.repeats))
    columns = list(rows[0])
    widths = [max(len(c), *(len(str(r[c])) for r in rows)) for c in columns]
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths)))
    for r in rows:
        print("  ".join(str(r[c]).ljust(w) for c, w in zip(columns, widths)))
    if args.json:
        write_json(args.json, {"rows": rows})


if __name__ == "__main__":
    main()
