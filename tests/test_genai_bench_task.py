"""GenAI-Bench prompts, splits and the official per-skill aggregation."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest

from tests.support import cli, record_edit
from ts_eval import run
from ts_eval.store import read_jsonl, write_jsonl
from ts_eval.tasks import load_task
from ts_eval.tasks.data import resolve_data

OFFICIAL_GROUPS = [
    "attribute",
    "scene",
    "spatial relation",
    "action relation",
    "part relation",
    "basic",
    "counting",
    "comparison",
    "differentiation",
    "negation",
    "universal",
    "advanced",
    "all",
]


def _prompts(split: str, data=None):
    spec = load_task("genai-bench")
    files = resolve_data(spec, "527", data)
    from ts_eval.pipeline import select_prompts

    return select_prompts(spec, spec.module.load_prompts(files), split, None, None)[1]


@pytest.mark.parametrize("split,expected", [("hard", 313), ("advanced", 313), ("basic", 214), ("all", 527)])
def test_split_sizes_of_the_527_set(split, expected, genai_527):
    prompts = _prompts(split, genai_527)
    assert len(prompts) == expected
    skills = json.loads((genai_527 / "genai_skills.json").read_text())
    if split in ("hard", "advanced", "basic"):
        tag = "advanced" if split != "basic" else "basic"
        assert [int(p.prompt_id) for p in prompts] == sorted(skills[tag])


def test_bundled_copy_equals_the_shared_data(genai_527):
    assert [p.to_row() for p in _prompts("all")] == [p.to_row() for p in _prompts("all", genai_527)]


def test_prompt_ids_follow_prompts_txt_lines(genai_527):
    lines = (genai_527 / "prompts.txt").read_text().splitlines()
    prompts = _prompts("all", genai_527)
    assert prompts[0].prompt_id == "00001" and prompts[0].prompt == lines[0]
    assert prompts[-1].prompt_id == "00527" and prompts[-1].prompt == lines[-1]


def _t2v_metrics_aggregation(skills: dict[str, list[int]], values: dict[tuple[str, int], float]) -> dict[str, float]:
    """t2v-metrics' genai_bench/evaluate.py logic, written independently: per-prompt mean over its images,
    per-tag mean over the prompts of the tag, `all` over the union of every tag's prompts."""
    per_prompt: dict[int, list[float]] = {}
    for (prompt_id, _), value in values.items():
        per_prompt.setdefault(int(prompt_id), []).append(value)
    prompt_score = {i: sum(v) / len(v) for i, v in per_prompt.items()}
    out = {tag: float(np.mean([prompt_score[i] for i in ids])) for tag, ids in skills.items()}
    union = sorted({i for ids in skills.values() for i in ids})
    out["all"] = float(np.mean([prompt_score[i] for i in union]))
    return out


@pytest.mark.e2e
def test_report_reproduces_t2v_metrics_aggregation_for_any_values(tmp_path, genai_527, capsys):
    out = tmp_path / "R"
    code, _, _ = cli(
        "run",
        "genai-bench",
        "--variant",
        "527",
        "--data",
        genai_527,
        "--split",
        "all",
        "--model",
        "dummy",
        "--scorer",
        "dummy",
        "--n-samples",
        "2",
        "--out",
        out,
        "--quiet",
        capsys=capsys,
    )
    assert code == 0
    rows = read_jsonl(out / "samples.jsonl")
    assert len(rows) == 527 * 2
    rng = random.Random(7)
    for row in rows:
        row["value"] = rng.uniform(-3, 3)  # any numbers, not only probabilities
    write_jsonl(out / "samples.jsonl", rows)
    record_edit(out)
    code, printed, _ = cli("report", out, "--format", "json", capsys=capsys)
    assert code == 0
    summary = json.loads((out / "summary.json").read_text())
    expected = _t2v_metrics_aggregation(
        json.loads((genai_527 / "genai_skills.json").read_text()),
        {(r["prompt_id"], r["sample_index"]): r["value"] for r in rows},
    )
    assert sorted(summary["groups"]) == sorted(OFFICIAL_GROUPS)
    for group in OFFICIAL_GROUPS:
        assert summary["groups"][group]["mean"] == pytest.approx(expected[group], abs=1e-6)
    assert json.loads(printed)["R"]["groups"]["all"]["mean"] == pytest.approx(expected["all"], abs=1e-6)


def test_group_ci_brackets_the_mean_and_counts_prompts(tmp_path):
    summary = run(
        "genai-bench",
        variant="527",
        split="hard",
        model="dummy",
        scorer="dummy",
        out=str(tmp_path / "R"),
        progress=False,
    )
    groups = summary["groups"]
    assert groups["advanced"]["n"] == 313 and groups["counting"]["n"] == 97
    assert "basic" not in groups  # no basic prompt was run, so the group is absent rather than empty
    for stats in groups.values():
        lo, hi = stats["ci95"]
        assert lo <= stats["mean"] <= hi and hi - lo > 0


def test_skill_option_selects_one_tag(tmp_path):
    summary = run(
        "genai-bench",
        variant="527",
        skill="negation",
        model="dummy",
        scorer="dummy",
        out=str(tmp_path / "R"),
        progress=False,
    )
    prompts = read_jsonl(tmp_path / "R" / "prompts.jsonl")
    assert len(prompts) == 101 and all("negation" in p["tags"] for p in prompts)
    assert summary["groups"]["negation"]["n"] == 101


def test_report_puts_runs_side_by_side(tmp_path, capsys):
    for seed in (1, 2):
        run(
            "genai-bench",
            variant="527",
            split="hard",
            limit=20,
            seed=seed,
            model="dummy",
            scorer="dummy",
            out=str(tmp_path / f"R{seed}"),
            progress=False,
        )
    code, printed, _ = cli("report", tmp_path / "R1", tmp_path / "R2", "--format", "csv", capsys=capsys)
    assert code == 0
    lines = printed.strip().splitlines()
    assert lines[0].split(",")[:3] == ["run", "Count", "Count ci95 lo"] and len(lines) == 4  # header, n, two runs
    assert lines[1].startswith("n,") and lines[2].startswith("R1,") and lines[3].startswith("R2,")
    for fmt, marker in (("md", "| Count "), ("latex", "\\begin{tabular}")):
        code, printed, _ = cli("report", tmp_path / "R1", "--format", fmt, capsys=capsys)
        assert code == 0 and marker in printed
