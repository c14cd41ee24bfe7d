"""The paper's win/tie/lose figure: one stacked horizontal bar per aspect (Token-Shuffle Fig. 5)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from ts_eval.human_eval.study import OUTCOMES
from ts_eval.store import write_atomic

COLORS = {"win": "#4e9a6b", "tie": "#b5b5b5", "lose": "#cf5c5c"}


def plot_bars(summary: dict[str, Any], path: str | Path) -> Path:
    # Figure + Agg canvas, not pyplot: no global backend or figure state for a library to leak.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    aspects = list(summary["aspects"])
    fig = Figure(figsize=(8, 1.3 + 0.7 * len(aspects)), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    labels = {"win": f"{summary['a']} wins", "tie": "tie", "lose": f"{summary['b']} wins"}
    for row, aspect in enumerate(reversed(aspects)):
        s = summary["aspects"][aspect]
        start = 0.0
        for o in OUTCOMES:
            width = 100 * (s["share"][o] or 0.0)
            ax.barh(
                row,
                width,
                left=start,
                color=COLORS[o],
                label=labels[o] if row == 0 else None,
                edgecolor="white",
                height=0.6,
            )
            if width >= 6:
                ax.text(start + width / 2, row, f"{width:.1f}%", ha="center", va="center", fontsize=9)
            start += width
    ax.set_yticks(
        range(len(aspects)),
        [f"{a.replace('_', ' ').capitalize()}\n(n={summary['aspects'][a]['n']})" for a in reversed(aspects)],
    )
    ax.set_xlim(0, 100)
    ax.set_xlabel("share of judgements (%)")
    ax.set_title(f"{summary['a']} vs {summary['b']}")
    fig.legend(loc="outside lower center", ncol=3, frameon=False)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=120)
    path = Path(path)
    write_atomic(path, buffer.getvalue())
    return path
