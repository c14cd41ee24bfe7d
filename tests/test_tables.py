"""Tables ready to paste: one number policy everywhere, `--no-ci`, `--label`, clean LaTeX, no empty columns, and
a note whenever random weights or stand-in models make the numbers meaningless."""

from __future__ import annotations

import json
import math

import pytest

from tests.support import cli
from ts_eval.official import random_weights
from ts_eval.pipeline import RunOptions, run
from ts_eval.report import numbers
from ts_eval.report.tables import render_summaries
from ts_eval.tasks import load_task

DUMMY = dict(variant="527", split="hard", limit=12, model="dummy", scorer="dummy", progress=False, view=False)


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tables")
    for seed in (1, 2):
        run(RunOptions(task="genai-bench", seed=seed, out=str(folder / f"R{seed}"), **DUMMY))
    return folder / "R1", folder / "R2"


# -- the policy --------------------------------------------------------------------------------------


def test_scores_have_two_decimals_cis_and_deltas_three_and_tiny_values_two_significant_digits():
    assert [numbers.score(v) for v in (0.5046, 1.0, 0.0, -0.25, 0.004567, 0.00012, 4.0e-06, None, math.nan)] == [
        "0.50",
        "1.00",
        "0.00",
        "-0.25",
        "0.0046",
        "0.00012",
        "4.0e-06",
        "--",
        "--",
    ]
    assert numbers.interval(0.49712, 0.5481) == "[0.497, 0.548]"
    assert numbers.interval(6.2e-06, 1.5e-05) == "[6.2e-06, 1.5e-05]"
    assert [numbers.delta(v) for v in (0.012, -0.0041, 0.0, -1e-15, -0.0004)] == [
        "+0.012",
        "-0.004",
        "+0.000",
        "+0.000",
        "-0.00040",
    ]


def test_every_table_prints_through_the_one_formatter(two_runs, tmp_path, capsys, monkeypatch):
    """run, report, view's chart, the leaderboard and the gate all call ts_eval.report.numbers."""
    monkeypatch.setattr(numbers, "score", lambda value: "<score>")
    monkeypatch.setattr(numbers, "interval", lambda lo, hi: "<ci>")
    monkeypatch.setattr(numbers, "delta", lambda value: "<delta>")
    code, out, _ = cli("report", *two_runs, capsys=capsys)
    assert code == 0 and "<score> <ci>" in out
    code, out, _ = cli(
        "run",
        "genai-bench",
        "--variant",
        "527",
        "--split",
        "hard",
        "--limit",
        "3",
        "--model",
        "dummy",
        "--scorer",
        "dummy",
        "--out",
        tmp_path / "R",
        "--quiet",
        "--no-view",
        capsys=capsys,
    )
    assert code == 0 and "<score> <ci>" in out
    code, out, _ = cli("gate", "--baseline", two_runs[0], "--current", two_runs[1], "--max-drop", "1", capsys=capsys)
    assert code == 0 and "| <score> | <score> | <delta> | [<delta>, <delta>] |" in out

    from ts_eval.leaderboard.show import render
    from ts_eval.report.view.chart import build_chart
    from ts_eval.report.view.run import load_view_run

    chart = build_chart([load_view_run(two_runs[0])])
    assert chart.rows and all(bar.text == "<score> <ci>" for row in chart.rows for bar in row.bars)
    entry = {
        "rank": 1,
        "id": 1,
        "name": "m",
        "model": "dummy",
        "scorer": "dummy",
        "verdict": {"label": "official"},
        "trust": {"label": "self-reported"},
        "groups": {"all": 0.51234},
        "ci95": [0.4, 0.6],
        "score": 0.51234,
        "date": "2026-01-01",
        "ts_eval_version": "0.1.0",
    }
    board = render(load_task("genai-bench"), [entry], "md", title="t")
    assert "| <score> | <ci> |" in board and "0.512" not in board
    assert "0.51234" in render(load_task("genai-bench"), [entry], "csv", title="t")  # CSV keeps full precision


# -- report options ----------------------------------------------------------------------------------


def _md_rows(text: str) -> list[list[str]]:
    return [
        [c.strip() for c in line.strip().strip("|").split("|")] for line in text.splitlines() if line.startswith("|")
    ]


def test_no_ci_and_labels_in_order(two_runs, capsys):
    code, out, _ = cli("report", *two_runs, "--label", "Ours (s=2)", "--label", "Baseline", capsys=capsys)
    assert code == 0
    rows = _md_rows(out)
    assert [r[0] for r in rows[2:]] == ["n", "Ours (s=2)", "Baseline"]
    assert all("[" in cell for cell in rows[3][1:-1])  # CIs by default
    code, out, _ = cli("report", *two_runs, "--no-ci", capsys=capsys)
    rows = _md_rows(out)
    assert code == 0 and all("[" not in cell and len(cell) == 4 for cell in rows[3][1:-1])  # "0.52"
    code, out, _ = cli("report", *two_runs, "--no-ci", "--format", "csv", capsys=capsys)
    assert code == 0 and "ci95" not in out
    code, out, _ = cli("report", *two_runs, "--format", "csv", capsys=capsys)
    header = out.splitlines()[0].split(",")
    assert header[1:4] == ["Count", "Count ci95 lo", "Count ci95 hi"] and header[-1] == "status"


@pytest.mark.parametrize("labels", [["only one"], ["a", "b", "c"], ["a", " "]])
def test_a_label_per_run_or_one_line(two_runs, labels, capsys):
    args = [a for label in labels for a in ("--label", label)]
    code, out, err = cli("report", *two_runs, *args, capsys=capsys)
    assert code == 2 and not out and len(err.strip().splitlines()) == 1 and "--label" in err


def test_latex_has_one_header_line_and_right_aligned_numbers(two_runs, capsys):
    code, out, _ = cli("report", *two_runs, "--format", "latex", capsys=capsys)
    lines = out.strip().splitlines()
    assert code == 0
    head = lines[lines.index("\\toprule") + 1 : lines.index("\\midrule")]
    assert len(head) == 1 and head[0].startswith("run & Count")  # no stray row for the index name
    assert lines[0].startswith("\\begin{tabular}{lr") and lines[0].endswith("l}")
    body = lines[lines.index("\\midrule") + 1 : lines.index("\\bottomrule")]
    assert [line.split(" & ")[0] for line in body] == ["n", "R1", "R2"]
    assert all(cell.strip() for line in body[1:] for cell in line.rstrip("\\ ").split(" & "))  # no empty cell


def test_columns_of_groups_no_run_has_are_left_out(two_runs, capsys):
    code, out, _ = cli("report", two_runs[0], capsys=capsys)
    header = _md_rows(out)[0]
    summary = json.loads((two_runs[0] / "summary.json").read_text())
    spec = load_task("genai-bench")
    shown = {g for h, g in spec.table if h in header or any(c.startswith(h + " (") for c in header)}
    assert code == 0 and shown == set(summary["groups"]) & {g for _, g in spec.table}
    assert "Attribute" not in header or "attribute" in summary["groups"]
    assert all(cell != "--" for row in _md_rows(out)[2:] for cell in row)  # no column of dashes


# -- random weights ----------------------------------------------------------------------------------


def test_random_weights_are_recognised_from_the_descriptions():
    reference_random = {"name": "reference", "config": {"config": "tiny", "init_seed": 0}, "checkpoint_sha256": None}
    reference_trained = {
        "name": "reference",
        "config": {"config": "tiny", "init_seed": None},
        "checkpoint_sha256": "ab" * 32,
    }
    vqa = {"name": "vqascore", "model": "clip-flant5-xxl", "weights": {"model": {"repo": "zhiqiulin/clip-flant5-xxl"}}}
    tiny_vqa = {**vqa, "model": "tiny-random", "random_weights": True}
    geneval = {
        "name": "geneval",
        "detector": {"name": "mmdet", "checkpoint_sha256": "cd" * 32},
        "color_classifier": {"name": "clip", "pretrained": "openai"},
    }
    assert random_weights(reference_trained, vqa) == []
    assert random_weights(reference_random, tiny_vqa) == ["generator reference", "scorer vqascore"]
    assert random_weights({"name": "dummy"}, geneval) == ["generator dummy"]
    assert random_weights(reference_trained, {**geneval, "detector": {"name": "dummy"}}) == ["scorer geneval"]
    assert random_weights(
        reference_trained, {**geneval, "color_classifier": {"name": "clip", "pretrained": "random"}}
    ) == ["scorer geneval"]
    assert random_weights(
        reference_trained, {**geneval, "detector": {"name": "mmdet", "checkpoint_sha256": "random"}}
    ) == ["scorer geneval"]


def test_a_run_of_stand_in_models_says_its_numbers_are_meaningless(two_runs, capsys):
    summary = json.loads((two_runs[0] / "summary.json").read_text())
    assert summary["random_weights"] == ["generator dummy", "scorer dummy"]
    code, out, err = cli("report", two_runs[0], capsys=capsys)
    assert code == 0 and out.strip().endswith("they only show that the pipeline runs.")
    assert "Note: R1 ran with random weights or a stand-in model (generator dummy, scorer dummy)" in out
    code, out, err = cli("report", two_runs[0], "--format", "csv", capsys=capsys)
    assert "Note:" not in out and "meaningless" in err  # CSV stays machine-readable
    code, out, _ = cli("report", two_runs[0], "--format", "latex", capsys=capsys)
    assert out.strip().splitlines()[-1].startswith("% Note: R1 ran with random weights")


def test_real_models_get_no_note():
    spec = load_task("genai-bench")
    summary = {
        "groups": {"all": {"mean": 0.61, "n": 527, "ci95": [0.6, 0.62]}},
        "verdict": {"label": "official"},
        "random_weights": [],
    }
    text = render_summaries(spec, [("ours", summary)], "md")
    assert "Note" not in text and "0.61 [0.600, 0.620]" in text
