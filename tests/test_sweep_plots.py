"""The sweep's figures stay readable with one or two points: no legend over the data, no text over other text;
and `ts-eval sweep` without --json prints its table."""

from __future__ import annotations

import pytest

pytest.importorskip("torch")
matplotlib = pytest.importorskip("matplotlib")

from ts_eval.cli import main  # noqa: E402
from ts_eval.sweep import plots  # noqa: E402
from ts_eval.sweep.runner import SweepOptions, run_sweep  # noqa: E402


def _texts(fig, renderer):
    """Every piece of text the figure draws, with its box on the canvas."""
    found = []
    if fig._suptitle is not None:
        found.append(fig._suptitle)
    for ax in fig.axes:
        found += [ax.title, *ax.texts]
        for axis in (ax.xaxis, ax.yaxis):
            if axis.get_visible():  # a twin axes hides the axis it shares
                found.append(axis.label)
                found += [label for tick in axis._update_ticks() for label in (tick.label1, tick.label2)]  # drawn ones
    for legend in fig.legends + [ax.get_legend() for ax in fig.axes if ax.get_legend()]:
        found += legend.get_texts()
    return [(t.get_text(), t.get_window_extent(renderer)) for t in found if t.get_visible() and t.get_text().strip()]


def _problems(fig) -> list[str]:
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    problems = []
    panels = [ax.get_window_extent(renderer) for ax in fig.axes]
    for legend in fig.legends + [ax.get_legend() for ax in fig.axes if ax.get_legend()]:
        if any(legend.get_window_extent(renderer).overlaps(panel) for panel in panels):
            problems.append("a legend lies over a panel")
    texts = _texts(fig, renderer)
    for i, (a, box_a) in enumerate(texts):
        for b, box_b in texts[i + 1 :]:
            shrunk = box_a.expanded(0.98, 0.9)  # touching is fine, overlapping is not
            if shrunk.overlaps(box_b):
                problems.append(f"{a!r} overlaps {b!r}")
    return problems


@pytest.fixture
def figures(monkeypatch):
    """The figures as drawn, kept open instead of written."""
    drawn = {}
    monkeypatch.setattr(plots, "_save", lambda fig, path: drawn.__setitem__(path.name, fig))
    yield drawn
    for fig in drawn.values():
        plots.plt.close(fig)


@pytest.mark.parametrize(
    "windows, resolutions, timed",
    [
        ((1,), (128,), False),
        ((1, 2), (128,), False),
        ((1,), (128,), True),
        ((1, 2), (128, 256), True),
    ],
    ids=["one-point", "two-windows", "one-point-timed", "two-by-two-timed"],
)
def test_figures_with_one_or_two_points_are_readable(windows, resolutions, timed, figures, tmp_path):
    result = run_sweep(
        SweepOptions(
            config="tiny",
            windows=windows,
            resolutions=resolutions,
            train_windows=windows,
            flops_only=not timed,
            device="cpu",
            dtype="fp32",
            repeats=1,
            text_tokens=8,
            progress=False,
        )
    )
    plots.plot_sweep(result, tmp_path)
    assert set(figures) == {"inference.png", "training.png"} | ({"time_breakdown.png"} if timed else set())
    for name, fig in figures.items():
        assert _problems(fig) == [], name
    inference = figures["inference.png"]
    lines = [line for ax in inference.axes for line in ax.get_lines()]
    assert all(line.get_marker() not in (None, "None", "") for line in lines)  # a lone point still shows


def test_sweep_without_json_prints_its_table(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["sweep", "--config", "tiny", "--windows", "1,2", "--resolutions", "128", "--flops-only", "-q"]) == 0
    out = capsys.readouterr().out
    assert "## Inference" in out and "| 2 | 128 |" in out
    assert list(tmp_path.iterdir()) == []  # nothing written
