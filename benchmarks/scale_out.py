"""Scale-out: generation throughput of the tiny reference model on 1 process vs N processes (torchrun, CPU).

Each process gets one thread, so N processes use N cores. Throughput is images / the generate stage's
wall time as rank 0 records it in the manifest (process start-up and the model build are excluded; the
barriers and rank 0's merge are included).

    python benchmarks/scale_out.py [--procs 2] [--prompts 150] [--n-samples 2] [--json OUT.json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from ts_eval.store import write_json


def generate(procs: int, out: Path, prompts: int, n_samples: int, window: int) -> dict:
    launcher = (
        [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={procs}", "-m"]
        if procs > 1
        else [sys.executable, "-m"]
    )
    command = [
        *launcher,
        "ts_eval",
        "generate",
        "genai-bench",
        "--variant",
        "527",
        "--limit",
        str(prompts),
        "--n-samples",
        str(n_samples),
        "--model",
        "reference",
        "--model-arg",
        "config=tiny",
        "--model-arg",
        f"window={window}",
        "--device",
        "cpu",
        "--quiet",
        "--out",
        str(out),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    subprocess.run(command, check=True, env=env, stdout=subprocess.DEVNULL)
    timings = json.loads((out / "manifest.json").read_text())["timings"]
    images = timings["generate_items"]
    return {
        "processes": procs,
        "images": images,
        "generate_s": timings["generate_s"],
        "images_per_s": round(images / timings["generate_s"], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--procs", type=int, default=2)
    parser.add_argument("--prompts", type=int, default=150)
    parser.add_argument("--n-samples", type=int, default=2)
    parser.add_argument("--window", type=int, default=2)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        rows = [
            generate(procs, Path(tmp) / f"p{procs}", args.prompts, args.n_samples, args.window)
            for procs in (1, args.procs)
        ]
    speedup = rows[1]["images_per_s"] / rows[0]["images_per_s"]
    print(f"{'processes':>10}{'images':>8}{'generate s':>12}{'images/s':>10}")
    for r in rows:
        print(f"{r['processes']:>10}{r['images']:>8}{r['generate_s']:>12.2f}{r['images_per_s']:>10.2f}")
    print(f"speed-up with {args.procs} processes: {speedup:.2f}x")
    if args.json:
        write_json(args.json, {"rows": rows, "speedup": round(speedup, 3)})


if __name__ == "__main__":
    main()
