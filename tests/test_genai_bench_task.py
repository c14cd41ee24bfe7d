"""GenAI-Bench prompts, splits and the official per-skill aggregation."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest

from ts_eval.data import resolve_data
from ts_eval.evaluate import run
from ts_eval.store import read_jsonl, write_jsonl
from ts_eval.tasks import load_task

from helpers import ROOT, cli

OFFICIAL_GROUPS = ["attribute", "scene", "spatial relation", "action relation", "part relation", "basic",
                   "counting", "comparison", "differentiation", "negation", "universal", "advanced", "all"]


def _prompts(split: str, data=None):
    spec = load_task("genai-bench")
    files = resolve_data(spec, "527", data)
    from ts_eval.evaluate import select_prompts

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


def test_report_reproduces_t2v_metrics_aggregation_for_any_values(tmp_path, genai_527, capsys):
    out = tmp_path / "R"
    code, _, _ = cli("run", "genai-bench", "--variant", "527", "--data", genai_527, "--split", "all", "--model", "dummy",
                     "--scorer", "dummy", "--n-samples", "2", "--out", out, "--quiet", capsys=capsys)
    assert code == 0
    rows = read_jsonl(out / "samples.jsonl")
    assert len(rows) == 527 * 2
    rng = random.Random(7)
    for row in rows:
        row["value"] = rng.uniform(-3, 3)  # any numbers, not only probabilities
    write_jsonl(out / "samples.jsonl", rows)
    code, printed, _ = cli("report", out, "--format", "json", capsys=capsys)
    assert code == 0
    summary = json.loads((out / "summary.json").read_text())
    expected = _t2v_metrics_aggregation(json.loads((genai_527 / "genai_skills.json").read_text()),
                                        {(r["prompt_id"], r["sample_index"]): r["value"] for r in rows})
    assert sorted(summary["groups"]) == sorted(OFFICIAL_GROUPS)
    for group in OFFICIAL_GROUPS:
        assert summary["groups"][group]["mean"] == pytest.approx(expected[group], abs=1e-6)
    assert json.loads(printed)["R"]["groups"]["all"]["mean"] == pytest.approx(expected["all"], abs=1e-6)


def test_group_ci_brackets_the_mean_and_counts_prompts(tmp_path):
    summary = run("genai-bench", variant="527", split="hard", model="dummy", scorer="dummy", out=str(tmp_path / "R"),
                  progress=False)
    groups = summary["groups"]
    assert groups["advanced"]["n"] == 313 and groups["counting"]["n"] == 97
    assert "basic" not in groups  # no basic prompt was run, so the group is absent rather than empty
    for stats in groups.values():
        lo, hi = stats["ci95"]
        assert lo <= stats["mean"] <= hi and hi - lo > 0


def test_skill_option_selects_one_tag(tmp_path):
    summary = run("genai-bench", variant="527", skill="negation", model="dummy", scorer="dummy",
                  out=str(tmp_path / "R"), progress=False)
    prompts = read_jsonl(tmp_path / "R" / "prompts.jsonl")
    assert len(prompts) == 101 and all("negation" in p["tags"] for p in prompts)
    assert summary["groups"]["negation"]["n"] == 101


def test_report_puts_runs_side_by_side(tmp_path, capsys):
    for seed in (1, 2):
        run("genai-bench", variant="527", split="hard", limit=20, seed=seed, model="dummy", scorer="dummy",
            out=str(tmp_path / f"R{seed}"), progress=False)
    code, printed, _ = cli("report", tmp_path / "R1", tmp_path / "R2", "--format", "csv", capsys=capsys)
    assert code == 0
    lines = printed.strip().splitlines()
    assert lines[0].split(",")[:3] == ["run", "Attribute", "Scene"] and len(lines) == 3
    for fmt, marker in (("md", "|   Count |"), ("latex", "\\begin{tabular}")):
        code, printed, _ = cli("report", tmp_path / "R1", "--format", fmt, capsys=capsys)
        assert code == 0 and marker in printed


# -- the official counts of each variant (`expected:` in the task spec) -----------------------------

def _write_1600(folder, *, n_prompts: int = 1600, n_basic: int = 722, n_advanced: int = 871):
    """GenAI-Bench-1600's two files in the official format (genai_image.json keyed by prompt id; skills -> ids).
    As in the official set, a few prompts carry neither tag (722 + 871 < 1600)."""
    folder.mkdir()
    images = {f"{i:05d}": {"id": f"{i:05d}", "prompt": f"prompt number {i}", "models": {}}
              for i in range(1, n_prompts + 1)}
    (folder / "genai_image.json").write_text(json.dumps(images))
    skills = {"basic": list(range(1, n_basic + 1)), "advanced": list(range(723, 723 + n_advanced)),
              "counting": [723, 724]}
    (folder / "genai_skills.json").write_text(json.dumps(skills))
    return folder


def test_the_1600_files_with_the_official_counts_load(tmp_path):
    spec = load_task("genai-bench")
    prompts = spec.module.load_prompts(resolve_data(spec, "1600", _write_1600(tmp_path / "d")))
    assert len(prompts) == 1600
    assert sum("basic" in p.tags for p in prompts) == 722 and sum("advanced" in p.tags for p in prompts) == 871


@pytest.mark.parametrize("change, message", [
    ({"n_prompts": 1599}, "genai_image.json: 1599 prompts, but GenAI-Bench 1600 has 1600"),
    ({"n_basic": 721}, "genai_skills.json: 721 prompts tagged 'basic', but GenAI-Bench 1600 has 722"),
    ({"n_advanced": 870}, "genai_skills.json: 870 prompts tagged 'advanced', but GenAI-Bench 1600 has 871"),
])
def test_a_truncated_1600_file_is_one_line_naming_it(tmp_path, capsys, change, message):
    data = _write_1600(tmp_path / "d", **change)
    code, _, err = cli("run", "genai-bench", "--data", data, "--scorer", "dummy", "--out", tmp_path / "R",
                       capsys=capsys)
    error = [line for line in err.splitlines() if "error" in line]
    assert code == 2 and len(error) == 1 and message in error[0] and str(data) in error[0]
    assert not (tmp_path / "R").exists()


def test_a_truncated_527_copy_is_stopped_by_its_counts_too(tmp_path, genai_527, capsys):
    import yaml

    tasks = tmp_path / "tasks"  # a spec without the 527 checksums, so only the counts can catch the cut
    tasks.mkdir()
    raw = yaml.safe_load((ROOT / "tasks" / "genai_bench.yaml").read_text())
    for entry in raw["variants"]["527"]["files"].values():
        entry["sha256"] = None
    (tasks / "genai_bench.yaml").write_text(yaml.safe_dump(raw))
    data = tmp_path / "d"
    data.mkdir()
    (data / "genai_skills.json").write_text((genai_527 / "genai_skills.json").read_text())
    lines = (genai_527 / "prompts.txt").read_text().splitlines()
    (data / "prompts.txt").write_text("\n".join(lines[:-1]) + "\n")
    code, _, err = cli("run", "genai-bench", "--variant", "527", "--data", data, "--tasks-dir", tasks, "--scorer",
                       "dummy", "--out", tmp_path / "R", capsys=capsys)
    assert code == 2 and f"{data / 'prompts.txt'}: 526 prompts, but GenAI-Bench 527 has 527" in err
