"""GenEval speed: detector backends and the colour classifier (images/s), and `rescore` of 553 x 4 images.

Models are random-initialised (tiny, and the real sizes: Mask2Former Swin-S, 68.7 M parameters; CLIP
ViT-L-14, 428 M), so the numbers are the real architectures' cost, not their accuracy. Warm-up calls are
excluded; each figure is the median of `--repeats` timed calls; CUDA is synchronised around each call.

    python benchmarks/geneval_speed.py                      # CPU, tiny + real size, writes JSON
    python benchmarks/geneval_speed.py --device cuda --sizes real --batch-size 8

The mmdet detector runs one image per forward (the official batching; `--batch-size` is images per call);
the colour classifier is timed at one crop per forward (official) and at `--color-batch` crops.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import statistics
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

import numpy as np
from PIL import Image


def sync(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()


def timed(fn, repeats: int, device: str) -> float:
    """Median seconds of `repeats` calls after one warm-up call."""
    fn()
    sync(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def make_images(folder: Path, n: int, resolution: int) -> tuple[list[Image.Image], list[str]]:
    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        path = folder / f"{i}.png"
        Image.fromarray(rng.integers(0, 256, (resolution, resolution, 3), dtype=np.uint8)).save(path)
        paths.append(str(path))
    return [Image.open(p).convert("RGB") for p in paths], paths


def real_hf_folder(folder: Path) -> str:
    """Config-only folder of transformers' Mask2Former with the Swin-S backbone (weights random at load)."""
    from transformers import Mask2FormerConfig, Mask2FormerImageProcessor, SwinConfig

    swin = SwinConfig(
        embed_dim=96,
        depths=[2, 2, 18, 2],
        num_heads=[3, 6, 12, 24],
        window_size=7,
        out_features=["stage1", "stage2", "stage3", "stage4"],
    )
    Mask2FormerConfig(backbone_config=swin, num_labels=80, num_queries=100).save_pretrained(folder)
    Mask2FormerImageProcessor().save_pretrained(folder)
    return str(folder)


def detectors(size: str, root: Path, device: str):
    from ts_eval.geneval.hf_backend import HFDetector
    from ts_eval.geneval.tiny import tiny_hf

    if size == "tiny":
        yield "hf", lambda: HFDetector(model=tiny_hf(root / "hf").args["hf_model"], device=device, resize="processor")
    else:
        yield "hf", lambda: HFDetector(model=real_hf_folder(root / "hf-real"), checkpoint="random", device=device)
    try:
        import mmdet  # noqa: F401
    except ImportError:
        print("mmdet not installed: skipping the mmdet backend", file=sys.stderr)
        return
    from ts_eval.geneval.mmdet_backend import MMDetDetector
    from ts_eval.geneval.tiny import tiny_mmdet

    if size == "tiny":
        args = tiny_mmdet(root / "mmdet").args
        yield (
            "mmdet",
            lambda: MMDetDetector(config=args["detector_config"], checkpoint=args["checkpoint"], device=device),
        )
    else:
        yield "mmdet", lambda: MMDetDetector(config="", checkpoint="random", device=device)


def color_classifier(size: str, root: Path, device: str, batch_size: int):
    from ts_eval.geneval.color import CLIPColorClassifier
    from ts_eval.geneval.tiny import tiny_clip

    if size == "tiny":
        return CLIPColorClassifier(
            pretrained=tiny_clip(root / "clip").args["clip_pretrained"], device=device, batch_size=batch_size
        )
    return CLIPColorClassifier(model="ViT-L-14", pretrained="random", device=device, batch_size=batch_size)


def bench_models(args, root: Path) -> list[dict]:
    results = []
    images, paths = make_images(root, args.batch_size, args.resolution)
    crops = [img.crop((i * 7, i * 5, i * 7 + 120, i * 5 + 90)) for i, img in enumerate(images * 4)][: args.crops]
    names = [random.Random(i).choice(["car", "dog", "apple", "bench"]) for i in range(len(crops))]
    for size in args.sizes:
        for name, build in detectors(size, root, args.device):
            detector = build()
            seconds = timed(partial(detector.detect, images, paths), args.repeats, args.device)
            results.append(
                {
                    "component": f"detector {name}",
                    "size": size,
                    "batch": len(images),
                    "seconds_per_batch": seconds,
                    "images_per_s": len(images) / seconds,
                }
            )
            print(f"  detector {name} ({size}): {len(images) / seconds:.2f} img/s", file=sys.stderr)
            del detector
        for batch in sorted({1, args.color_batch}):
            clip = color_classifier(size, root, args.device, batch)
            for n in names:
                clip._classifier(n)  # text classifiers are built once per class and cached; time the crops
            seconds = timed(partial(clip.classify, crops, names), args.repeats, args.device)
            label = f"colour classifier clip, {batch} crop(s)/forward" + (" (official)" if batch == 1 else "")
            results.append(
                {
                    "component": label,
                    "size": size,
                    "batch": len(crops),
                    "precision": clip.describe()["precision"],
                    "seconds_per_batch": seconds,
                    "images_per_s": len(crops) / seconds,
                }
            )
            print(f"  {label} ({size}): {len(crops) / seconds:.2f} crops/s", file=sys.stderr)
            del clip
    return results


def synthetic_detections(prompt_ids: list[str], n_samples: int, per_image: int, seed: int = 0) -> list[dict]:
    """Mask2Former-like volume: `per_image` detections per image, mostly low scores, colours above 0.3."""
    from ts_eval.geneval.rules import COLORS
    from ts_eval.geneval.scorer import short_float

    names = [
        line.strip()
        for line in (Path(__file__).resolve().parent.parent / "tasks" / "data" / "geneval" / "object_names.txt")
        .read_text()
        .splitlines()
    ]
    rng = np.random.default_rng(seed)
    table = []
    for pid in prompt_ids:
        for k in range(n_samples):
            scores = np.sort(rng.beta(0.3, 3.0, per_image).astype(np.float32))[::-1]
            labels = rng.integers(0, 80, per_image)
            xy = rng.uniform(0, 400, (per_image, 2))
            detections: dict[str, list] = {}
            for s, label, (x, y) in zip(scores, labels, xy):
                detections.setdefault(names[label], []).append(
                    {
                        "box": [float(round(x)), float(round(y)), float(round(x) + 100), float(round(y) + 80)],
                        "score": short_float(s),
                        "color": COLORS[int(rng.integers(0, 10))] if s > np.float32(0.3) else None,
                    }
                )
            table.append({"prompt_id": pid, "sample_index": k, "detections": detections})
    return table


def bench_rescore(args, root: Path) -> dict:
    import subprocess

    from ts_eval.cli import main
    from ts_eval.geneval.rescore import rescore
    from ts_eval.store import read_jsonl, write_jsonl

    run = root / "rescore-run"
    assert (
        main(["run", "geneval", "--model", "dummy", "--detector", "dummy", "--out", str(run), "--quiet", "--no-cache"])
        == 0
    )
    prompt_ids = [r["prompt_id"] for r in read_jsonl(run / "prompts.jsonl")]
    write_jsonl(run / "detections.jsonl", synthetic_detections(prompt_ids, 4, args.detections_per_image))
    size_mb = (run / "detections.jsonl").stat().st_size / 1e6
    seconds = timed(lambda: rescore(run, progress=False), args.repeats, "cpu")
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "ts_eval", "rescore", str(run), "--quiet"], check=True, stdout=subprocess.DEVNULL
    )
    cli_seconds = time.perf_counter() - start
    print(f"  rescore 553x4: {seconds:.2f} s in process, {cli_seconds:.2f} s as a command", file=sys.stderr)
    return {
        "component": "rescore 553x4",
        "size": f"{args.detections_per_image} detections/image, {size_mb:.1f} MB",
        "batch": 2212,
        "seconds_per_batch": seconds,
        "images_per_s": 2212 / seconds,
        "command_seconds": cli_seconds,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--sizes", default="tiny,real", help="comma list of tiny, real")
    parser.add_argument("--batch-size", type=int, default=4, help="images per detector call")
    parser.add_argument("--crops", type=int, default=16, help="crops per colour-classifier call")
    parser.add_argument("--color-batch", type=int, default=16, help="crops per CLIP forward, besides the official 1")
    parser.add_argument("--resolution", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (1 gives steadier numbers)")
    parser.add_argument("--detections-per-image", type=int, default=100, help="rescore input volume (Mask2Former: 100)")
    parser.add_argument("--skip-rescore", action="store_true")
    parser.add_argument("--out", default="reports/geneval_speed.json")
    args = parser.parse_args()
    args.sizes = [s for s in args.sizes.split(",") if s]

    import torch

    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        results = bench_models(args, root)
        if not args.skip_rescore:
            results.append(bench_rescore(args, root))
    device_name = torch.cuda.get_device_name(0) if args.device.startswith("cuda") else platform.processor() or "cpu"
    report = {
        "device": args.device,
        "device_name": device_name,
        "threads": args.threads,
        "resolution": args.resolution,
        "torch": torch.__version__,
        "results": results,
    }
    print("| component | size | batch | s/batch | items/s |\n|---|---|---:|---:|---:|")
    for r in results:
        print(
            f"| {r['component']} | {r['size']} | {r['batch']} | {r['seconds_per_batch']:.3f} | {r['images_per_s']:.2f} |"
        )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
