"""Figures like the paper's Fig. 4: FLOPs and latency against resolution per window (log scale), and a
stacked bar of where the time goes (prefill, decode, VQ decode)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from ts_eval.store import write_atomic  # noqa: E402


def _save(fig, path: Path) -> None:
    import io

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=120, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    write_atomic(path, buffer.getvalue())


def plot_sweep(result: dict[str, Any], folder: Path) -> list[Path]:
    """Write `efficiency.png` (always) and `time_breakdown.png` (when latency was measured)."""
    folder = Path(folder)
    rows = result["rows"]
    batch = min(r["batch_size"] for r in rows)
    rows = [r for r in rows if r["batch_size"] == batch]
    windows = sorted({r["window"] for r in rows})
    timed = all("latency_s" in r for r in rows)
    panels = 2 if timed else 1
    fig, axes = plt.subplots(1, panels, figsize=(5.5 * panels, 4), squeeze=False)
    series = [("flops_counted", "TFLOPs per image", 1e12)] + ([("latency_s", "seconds per image", 1.0)] if timed else [])
    for ax, (key, label, unit) in zip(axes[0], series):
        for window in windows:
            points = sorted((r["resolution"], r[key] / unit) for r in rows if r["window"] == window)
            ax.plot([p[0] for p in points], [p[1] for p in points], marker="o",
                    label="no shuffle (s=1)" if window == 1 else f"Token-Shuffle s={window}")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xticks(sorted({r["resolution"] for r in rows}), [str(x) for x in sorted({r["resolution"] for r in rows})])
        ax.set_xlabel("resolution (px)")
        ax.set_ylabel(label)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    fig.suptitle(f"{result['config']} · {result['device']} · batch {batch} · CFG {'on' if rows[0]['cfg'] else 'off'}")
    written = [folder / "efficiency.png"]
    _save(fig, written[0])
    if timed:
        fig, ax = plt.subplots(figsize=(max(5.0, 0.9 * len(rows) + 2), 4))
        labels = [f"s={r['window']}\n{r['resolution']}" for r in rows]
        prefill = [r["prefill_s"] for r in rows]
        decode = [r["batch_latency_s"] - r["prefill_s"] - r["vq_decode_s"] for r in rows]
        vq = [r["vq_decode_s"] for r in rows]
        ax.bar(labels, prefill, label="prefill")
        ax.bar(labels, decode, bottom=prefill, label="decode steps")
        ax.bar(labels, vq, bottom=[p + d for p, d in zip(prefill, decode)], label="VQ decode")
        ax.set_ylabel(f"seconds per batch of {batch}")
        ax.legend()
        ax.set_title(f"{result['config']} · {result['device']}")
        written.append(folder / "time_breakdown.png")
        _save(fig, written[1])
    return written
