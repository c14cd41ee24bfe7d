"""Geometry of the per-group bar chart (horizontal bars, 95% CI whiskers), drawn as inline SVG by the template."""

from __future__ import annotations

import math
from dataclasses import dataclass

from ts_eval.report import numbers
from ts_eval.report.view.run import ViewRun

RUN_COLOURS = ("#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#b07aa1", "#9c755f", "#edc948")
LABEL_W, PLOT_W, VALUE_W = 150, 420, 150  # columns: group name | bars | "0.63 [0.60, 0.66]"
BAR_H, ROW_GAP, TOP = 14, 10, 24


@dataclass(frozen=True)
class Bar:
    run_index: int
    colour: str
    y: float
    width: float
    ci: tuple[float, float] | None  # whisker ends in px
    text: str  # mean [lo, hi]
    title: str  # tooltip: label, mean, CI, n


@dataclass(frozen=True)
class ChartRow:
    group: str
    y: float  # centre of the row's bars
    bars: list[Bar]
    headline: bool  # the task's all-prompt group


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    plot_x: int
    plot_w: int
    ticks: list[tuple[float, str]]  # (x px, label)
    rows: list[ChartRow]


def axis_max(top: float) -> float:
    """1 for scores in [0, 1]; else the next of 1, 2, 2.5, 5 x 10^k above `top`."""
    if top <= 1:
        return 1.0
    power = 10 ** math.floor(math.log10(top))
    return next(step * power for step in (1, 2, 2.5, 5, 10) if step * power >= top)


def build_chart(runs: list[ViewRun]) -> Chart:
    names: list[str] = []
    for run in runs:
        names += [g.name for g in run.groups if g.name not in names]
    stats = [{g.name: g for g in run.groups} for run in runs]
    top = max([max(g.mean, g.ci95[1] if g.ci95 else 0.0) for s in stats for g in s.values()] + [0.0])
    vmax = axis_max(top)

    def x(value: float) -> float:
        return round(LABEL_W + PLOT_W * min(max(value, 0.0), vmax) / vmax, 1)

    rows, y = [], TOP
    row_h = BAR_H * len(runs) + ROW_GAP
    for name in names:
        bars = []
        for index, (run, found) in enumerate(zip(runs, stats)):
            g = found.get(name)
            if g is None:
                continue
            ci = f" {numbers.interval(*g.ci95)}" if g.ci95 else ""
            bars.append(
                Bar(
                    index,
                    RUN_COLOURS[index % len(RUN_COLOURS)],
                    y + index * BAR_H,
                    x(g.mean) - LABEL_W,
                    (x(g.ci95[0]), x(g.ci95[1])) if g.ci95 else None,
                    f"{numbers.score(g.mean)}{ci}",
                    f"{run.label} - {name}: {numbers.score(g.mean)}{ci.replace('[', '95% CI [')}, n={g.n}",
                )
            )
        rows.append(ChartRow(name, y + BAR_H * len(runs) / 2, bars, name in ("all", "overall")))
        y += row_h
    ticks = [(x(vmax * i / 4), f"{vmax * i / 4:g}") for i in range(5)]
    return Chart(LABEL_W + PLOT_W + VALUE_W, int(y + 8), LABEL_W, PLOT_W, ticks, rows)
