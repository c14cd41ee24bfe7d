"""Scorer throughput: images per second of `vqascore` and `clipscore` per batch size.

By default both run on tiny random models of the real architectures (built offline, see
ts_eval/scorers/tiny_models.py), so the numbers measure the code path (image decoding and preprocessing,
tokenization, padding, forward, post-processing), not the real models. `--real` uses each scorer's
default weights instead (clip-flant5-xxl; each CLIPScore variant's OpenAI CLIP: a download, and a GPU for the
former). CLIPScore is timed per variant (`--clip-variants`); `--dtype` is passed as `--scorer-arg dtype=`.
Each batch size scores the same images `--repeats` times after one warm-up batch; the median is reported.

    python benchmarks/scorer_speed.py [--batch-sizes 1,4,16] [--images 32] [--device cpu] [--json OUT.json]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image
from tabulate import tabulate

from ts_eval.records import Prompt, ScoreRequest
from ts_eval.registry import scorer_class
from ts_eval.store import write_json

PROMPTS = Path(__file__).resolve().parent.parent / "tasks" / "data" / "genai-bench-527" / "prompts.txt"


def make_requests(folder: Path, n_images: int, resolution: int) -> list[ScoreRequest]:
    """Random-noise PNGs at a generator's resolution, paired with GenAI-Bench prompts."""
    rng = np.random.default_rng(0)
    prompts = PROMPTS.read_text(encoding="utf-8").splitlines()
    requests = []
    for i in range(n_images):
        path = folder / f"{i:05d}.png"
        Image.fromarray(rng.integers(0, 256, (resolution, resolution, 3), dtype=np.uint8)).save(path)
        requests.append(ScoreRequest(Prompt(f"{i + 1:05d}", prompts[i % len(prompts)]), 0, str(path), f"{i}"))
    return requests


def scorer_args(name: str, models: Path, real: bool) -> dict[str, str]:
    """`name` is a scorer, or `clipscore:VARIANT`."""
    name, _, variant = name.partition(":")
    if name == "clipscore":
        base = {"variant": variant or "hessel"}
        if real:
            return base
        from ts_eval.scorers.tiny_models import build_tiny_openai_clip, build_tiny_transformers_clip

        if base["variant"] == "torchmetrics":
            return {**base, **build_tiny_transformers_clip(models / "transformers-clip").args}
        return {**base, **build_tiny_openai_clip(models / "openai-clip").args}
    if real:
        return {}
    from ts_eval.scorers.tiny_models import build_tiny_clip_t5

    return build_tiny_clip_t5(models / "clip-t5").args


def time_scorer(
    name: str,
    args: dict[str, str],
    requests: list[ScoreRequest],
    batch_size: int,
    *,
    device: str,
    dtype: str,
    repeats: int,
) -> dict:
    # scorers run in their official precision unless `--scorer-arg dtype=` (here --dtype) says otherwise
    args = {**args, "dtype": dtype} if dtype != "auto" else args
    scorer = scorer_class(name.partition(":")[0])(args, task=None, device=device, batch_size=batch_size)
    scorer.score(requests[:batch_size])  # warm-up: loads the model, first kernels
    seconds = []
    for _ in range(repeats):
        _sync(scorer.describe()["device"])
        start = time.perf_counter()
        scorer.score(requests)
        _sync(scorer.describe()["device"])
        seconds.append(time.perf_counter() - start)
    median = statistics.median(seconds)
    return {
        "scorer": name,
        "batch_size": batch_size,
        "images": len(requests),
        "seconds_median": round(median, 4),
        "images_per_s": round(len(requests) / median, 2),
        "precision": scorer.describe().get("dtype") or scorer.describe().get("precision"),
    }


def _sync(device_type: str) -> None:
    if device_type == "cuda":
        import torch

        torch.cuda.synchronize()


def conditions(device: str) -> dict:
    import torch

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "load_avg_1m_at_start": round(os.getloadavg()[0], 2),
        "device": device,
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scorers", default="vqascore,clipscore")
    parser.add_argument("--clip-variants", default="hessel,t2v-metrics,torchmetrics")
    parser.add_argument("--batch-sizes", default="1,4,16")
    parser.add_argument("--images", type=int, default=32)
    parser.add_argument("--resolution", type=int, default=256, help="side of the test images (pixels)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="auto", help="auto: each scorer's official precision")
    parser.add_argument("--real", action="store_true", help="the scorers' default weights instead of tiny models")
    parser.add_argument("--json", default="results/benchmarks/scorer_speed.json")
    args = parser.parse_args()

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        requests = make_requests(Path(tmp), args.images, args.resolution)
        env = conditions(args.device)
        names = [
            n
            for scorer in args.scorers.split(",")
            for n in ([f"clipscore:{v}" for v in args.clip_variants.split(",")] if scorer == "clipscore" else [scorer])
        ]
        for name in names:
            for batch_size in [int(b) for b in args.batch_sizes.split(",")]:
                rows.append(
                    time_scorer(
                        name,
                        scorer_args(name, Path(tmp) / "models", args.real),
                        requests,
                        batch_size,
                        device=args.device,
                        dtype=args.dtype,
                        repeats=args.repeats,
                    )
                )
                print(f"{name} batch {batch_size}: {rows[-1]['images_per_s']} images/s", flush=True)
    print(tabulate(rows, headers="keys", tablefmt="github"))
    models = "default weights" if args.real else "tiny random models"
    print(f"{models}; {args.images} images of {args.resolution}px; {env}")
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_json(out, {"models": models, "resolution": args.resolution, "conditions": env, "results": rows})
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
