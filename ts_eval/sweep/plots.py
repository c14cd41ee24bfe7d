"""Figures: `inference.png` (inference FLOPs per image and, when timed, latency against resolution per window,
log scale), `training.png` (like the paper's Fig. 4: token number and training FLOPs per window, one panel
per resolution) and `time_breakdown.png` (where the time goes: prefill, decode, VQ decode)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib as mpl

mpl.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.ticker import NullLocator

from ts_eval.store import write_atomic


def _save(fig, path: Path) -> None:
    import io

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=120, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    write_atomic(path, buffer.getvalue())


def _label(window: int) -> str:
    return "no shuffle (s=1)" if window == 1 else f"Token-Shuffle s={window}"


def plot_inference(result: dict[str, Any], path: Path) -> None:
    rows = result["rows"]
    batch = min(r["batch_size"] for r in rows)
    rows = [r for r in rows if r["batch_size"] == batch]
    windows = sorted({r["window"] for r in rows})
    timed = all("latency_s" in r for r in rows)
    panels = 2 if timed else 1
    # Constrained layout keeps tick labels, axis labels and the title apart; the legend sits below the panels,
    # never over the data, however few points there are.
    fig, axes = plt.subplots(1, panels, figsize=(5.5 * panels, 4.6), squeeze=False, layout="constrained")
    series = [("flops_counted", "inference TFLOPs per image", 1e12)]
    series += [("latency_s", "seconds per image", 1.0)] if timed else []
    resolutions = sorted({r["resolution"] for r in rows})
    for ax, (key, label, unit) in zip(axes[0], series):
        for window in windows:
            points = sorted(
                (r["resolution"], r[key] / unit, r["flops_end_to_end"] / unit) for r in rows if r["window"] == window
            )
            line = ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=_label(window))[0]
            if key == "flops_counted":  # end-to-end (+ VQ decode), dashed with hollow markers in the same colour
                ax.plot(
                    [p[0] for p in points],
                    [p[2] for p in points],
                    ls="--",
                    marker="o",
                    mfc="none",
                    color=line.get_color(),
                    alpha=0.7,
                    label="+ VQ decode (dashed, hollow)" if window == windows[-1] else None,
                )
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xticks(resolutions, [str(x) for x in resolutions])
        ax.xaxis.set_minor_locator(NullLocator())  # minor x ticks would fall between resolutions, unlabelled
        if len(resolutions) == 1:  # one resolution: some room either side, not a point squeezed by autoscale
            ax.set_xlim(resolutions[0] / 1.6, resolutions[0] * 1.6)
        ax.set_xlabel("resolution (px)")
        ax.set_ylabel(label)
        ax.grid(True, which="both", alpha=0.3)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=min(len(labels), 3), frameon=False)
    where = "" if timed else " (FLOPs only)"
    fig.suptitle(
        f"Inference (KV-cache sampling){where} · {result['config']} · batch {batch} · "
        f"CFG {'on' if rows[0]['cfg'] else 'off'}" + (f"\n{result['device']}" if timed else "")
    )
    _save(fig, path)


def plot_training(result: dict[str, Any], path: Path) -> None:
    """Fig. 4's layout: per resolution, bars of token number (thousands) and training FLOPs (T) per window."""
    rows = result["training_rows"]
    resolutions = sorted({r["resolution"] for r in rows})
    fig, axes = plt.subplots(
        1, len(resolutions), figsize=(6 * len(resolutions), 4.2), squeeze=False, layout="constrained"
    )
    for ax, resolution in zip(axes[0], resolutions):
        cells = sorted((r for r in rows if r["resolution"] == resolution), key=lambda r: r["window"])
        x = list(range(len(cells)))
        tokens = [r["image_positions"] / 1e3 for r in cells]
        flops = [r["train_flops_counted"] / 1e12 for r in cells]
        ax.bar([i - 0.2 for i in x], tokens, width=0.4, color="tab:blue", label="token number (K)")
        ax.set_ylabel("token number (K)", color="tab:blue")
        twin = ax.twinx()
        twin.bar([i + 0.2 for i in x], flops, width=0.4, color="tab:orange", label="training FLOPs (T)")
        twin.set_ylabel("training FLOPs per sample (T)", color="tab:orange")
        ax.set_xticks(x, ["baseline" if r["window"] == 1 else f"s={r['window']}" for r in cells])
        for i, (t, f) in enumerate(zip(tokens, flops)):
            ax.annotate(f"{t:.3g}", (i - 0.2, t), ha="center", va="bottom", fontsize=8)
            twin.annotate(f"{f:.3g}", (i + 0.2, f), ha="center", va="bottom", fontsize=8)
        ax.set_title(f"{resolution}×{resolution}")
        for axis in (ax, twin):  # room above the tallest bar for its label
            axis.set_ylim(0, axis.get_ylim()[1] * 1.12)
    fig.suptitle(f"Training (forward + backward, one sample) · {result['config']}")
    _save(fig, path)


def plot_time_breakdown(result: dict[str, Any], path: Path) -> None:
    rows = result["rows"]
    batch = min(r["batch_size"] for r in rows)
    rows = [r for r in rows if r["batch_size"] == batch]
    fig, ax = plt.subplots(figsize=(max(5.0, 0.9 * len(rows) + 2), 4.4), layout="constrained")
    labels = [f"s={r['window']}\n{r['resolution']}" for r in rows]
    vq = [r["vq_decode_s"] for r in rows]
    # On CPU each image runs alone: prefill and step medians are per image, so scale the batch's share.
    prefill = [
        r["batch_latency_s"]
        - r["vq_decode_s"]
        - (r["image_positions"] - 1) * r["decode_step_s"] * (batch if result["settings"].get("batch_invariant") else 1)
        for r in rows
    ]
    decode = [r["batch_latency_s"] - p - v for r, p, v in zip(rows, prefill, vq)]
    ax.bar(labels, prefill, label="prefill (+ overhead)")
    ax.bar(labels, decode, bottom=prefill, label="decode steps")
    ax.bar(labels, vq, bottom=[p + d for p, d in zip(prefill, decode)], label="VQ decode")
    ax.set_ylabel(f"seconds per batch of {batch}")
    fig.legend(loc="outside lower center", ncol=3, frameon=False)  # below the bars, never over them
    ax.set_title(f"{result['config']} · {result['device']}")
    _save(fig, path)


def plot_sweep(result: dict[str, Any], folder: Path) -> list[Path]:
    """Write `inference.png`, `training.png` (when training rows exist) and `time_breakdown.png` (when timed)."""
    folder = Path(folder)
    written = [folder / "inference.png"]
    plot_inference(result, written[-1])
    if result.get("training_rows"):
        written.append(folder / "training.png")
        plot_training(result, written[-1])
    if all("latency_s" in r for r in result["rows"]):
        written.append(folder / "time_breakdown.png")
        plot_time_breakdown(result, written[-1])
    return written
