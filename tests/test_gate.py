"""`ts-eval gate`: passes identical runs and noise, fails real drops, refuses runs that cannot be compared."""

from __future__ import annotations

import json
import shlex
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

from tests.support import summarize_run
from ts_eval import run as evaluate_run
from ts_eval.cli import main
from ts_eval.gate import GateOptions, run_gate
from ts_eval.store import RunDir, read_jsonl, write_jsonl

ROOT = Path(__file__).resolve().parent.parent
BASELINE = ROOT / "results" / "baselines" / "genai-bench-527-hard-32-dummy"


def dummy_run(out: Path, task: str = "genai-bench", **options) -> Path:
    if task == "genai-bench":
        options = {"variant": "527", "split": "hard", **options}
    evaluate_run(task, model="dummy", scorer="dummy", out=str(out), progress=False, cache=False, **options)
    return out


def edited(src: Path, dst: Path, edit) -> Path:
    """A copy of a run (no images) whose sample values went through `edit(values) -> values`, re-summarised."""
    dst.mkdir()
    for name in ("manifest.json", "prompts.jsonl", "images.jsonl"):
        shutil.copy(src / name, dst / name)
    samples = read_jsonl(src / "samples.jsonl")
    values = edit(np.array([row["value"] for row in samples]))
    write_jsonl(dst / "samples.jsonl", [{**row, "value": float(v)} for row, v in zip(samples, values)])
    summarize_run(RunDir(dst))
    return dst


def cli(capsys, *args) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def table_rows(markdown: str) -> dict[str, list[str]]:
    """group -> cells of the gate's markdown table."""
    found = {}
    for line in markdown.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("| ") and len(cells) == 8 and cells[0] != "metric":
            found[cells[1]] = cells
    return found


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> Path:
    return dummy_run(tmp_path_factory.mktemp("gate") / "small", limit=32)


@pytest.fixture(scope="module")
def hard(tmp_path_factory) -> Path:
    return dummy_run(tmp_path_factory.mktemp("gate") / "hard")


# -- acceptance ------------------------------------------------------------------------------------


def test_identical_run_passes(small, capsys):
    code, out, err = cli(capsys, "gate", "--baseline", small, "--current", small)
    assert code == 0, err
    assert "| metric | group | prompts | baseline | current | delta | 95% CI | verdict |" in out
    rows = table_rows(out)
    assert {"counting", "comparison", "differentiation", "advanced", "all"} <= set(rows)
    assert all(cells[-1] == "pass" and cells[5] == "+0.000" for cells in rows.values())


def test_small_drop_passes_large_drop_fails(small, tmp_path, capsys):
    slightly = edited(small, tmp_path / "minus-0.001", lambda v: v - 0.001)
    clearly = edited(small, tmp_path / "minus-0.05", lambda v: v - 0.05)
    code, out, _ = cli(capsys, "gate", "--baseline", small, "--current", slightly, "--max-drop", 0.01)
    assert code == 0
    assert all(cells[5] == "-0.001" and cells[-1] == "pass" for cells in table_rows(out).values())
    code, out, err = cli(capsys, "gate", "--baseline", small, "--current", clearly, "--max-drop", 0.01)
    assert code == 1
    rows = table_rows(out)
    assert all(cells[5] == "-0.050" and cells[-1] == "**FAIL**" for cells in rows.values())
    assert len(err.strip().splitlines()) == 1 and f"gate failed: {len(rows)} group(s)" in err


def test_drop_beyond_tolerance_must_also_be_significant(small, tmp_path):
    """The same -0.02 change: within noise it passes, as a clean shift it fails."""
    rng = np.random.default_rng(7)

    def noisy(values):
        noise = rng.normal(0.0, 0.1, size=len(values))
        return values + (noise - noise.mean()) - 0.02  # mean change exactly -0.02

    options = GateOptions(max_drop=0.01, groups=["all"], resamples=4000, seed=0)
    result, _ = run_gate(small, edited(small, tmp_path / "noisy", noisy), options)
    [row] = result.rows
    assert row.delta == pytest.approx(-0.02)
    assert row.ci[0] < 0 < row.ci[1] and not row.failed and row.verdict == "pass (drop not significant)"
    result, _ = run_gate(small, edited(small, tmp_path / "shift", lambda v: v - 0.02), options)
    assert result.rows[0].failed and result.rows[0].ci[1] < 0


def test_paired_test_sees_what_unpaired_cannot(hard, tmp_path):
    """A small, consistent drop on every prompt is significant only when prompts are paired."""
    current = edited(hard, tmp_path / "minus-0.02", lambda v: v - 0.02)
    paired, _ = run_gate(hard, current, GateOptions(groups=["all"]))
    bare = tmp_path / "bare" / "summary.json"
    bare.parent.mkdir()
    shutil.copy(hard / "summary.json", bare)
    unpaired, text = run_gate(bare, current, GateOptions(groups=["all"]))
    assert paired.paired and paired.rows[0].failed
    assert not unpaired.paired and not unpaired.rows[0].failed and "unpaired" in text
    assert unpaired.rows[0].delta == pytest.approx(paired.rows[0].delta)


def test_bare_summary_baseline_fails_a_large_drop(hard, tmp_path, capsys):
    bare = tmp_path / "bare" / "summary.json"
    bare.parent.mkdir()
    shutil.copy(hard / "summary.json", bare)
    assert cli(capsys, "gate", "--baseline", bare, "--current", hard)[0] == 0
    code, out, _ = cli(
        capsys, "gate", "--baseline", bare, "--current", edited(hard, tmp_path / "low", lambda v: v - 0.05)
    )
    assert code == 1 and table_rows(out)["all"][-1] == "**FAIL**"


def test_summary_inside_a_run_is_paired(small, capsys):
    code, out, _ = cli(capsys, "gate", "--baseline", small / "summary.json", "--current", small)
    assert code == 0 and "paired bootstrap over shared prompts" in out


# -- mismatches and options ------------------------------------------------------------------------


def test_mismatched_runs_are_a_usage_error(small, tmp_path, capsys):
    basic = dummy_run(tmp_path / "basic", split="basic", limit=32)
    fewer = dummy_run(tmp_path / "fewer", limit=16)
    geneval = dummy_run(tmp_path / "geneval", task="geneval", limit=8)
    incomplete = tmp_path / "incomplete"
    shutil.copytree(small, incomplete, ignore=shutil.ignore_patterns("images"))
    write_jsonl(incomplete / "samples.jsonl", read_jsonl(incomplete / "samples.jsonl")[:-1])
    for current, reason in [
        (basic, "split"),
        (fewer, "prompt sets differ"),
        (geneval, "task"),
        (incomplete, "samples.jsonl was changed"),
    ]:
        code, out, err = cli(capsys, "gate", "--baseline", small, "--current", current)
        assert code == 2 and reason in err and len(err.strip().splitlines()) == 1, (current, err)
        assert out == ""


def test_option_errors(small, capsys):
    for extra, reason in [
        (["--groups", "colors"], "unknown group 'colors'"),
        (["--metric", "clipscore"], "--metric 'clipscore' is not scored"),
        (["--confidence", "1.5"], "--confidence must be between 0 and 1"),
        (["--max-drop", "-1"], "--max-drop must be non-negative"),
    ]:
        code, _, err = cli(capsys, "gate", "--baseline", small, "--current", small, *extra)
        assert code == 2 and reason in err
    code, _, err = cli(capsys, "gate", "--baseline", small / "nothing", "--current", small)
    assert code == 2 and "no such run directory" in err


def test_groups_filter(small, capsys):
    code, out, _ = cli(capsys, "gate", "--baseline", small, "--current", small, "--groups", "all", "counting")
    assert code == 0 and sorted(table_rows(out)) == ["all", "counting"]


def test_step_summary_is_appended(small, tmp_path, capsys, monkeypatch):
    summary = tmp_path / "step-summary.md"
    summary.write_text("earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    code, out, _ = cli(
        capsys, "gate", "--baseline", small, "--current", edited(small, tmp_path / "low", lambda v: v - 0.05)
    )
    assert code == 1
    text = summary.read_text()
    assert text.startswith("earlier step\n") and out.strip() in text and "— FAIL" in text


# -- the committed baseline ------------------------------------------------------------------------


def test_committed_baseline_is_reproduced_by_the_ci_subset(tmp_path, capsys):
    """What examples/ci-gate.yml runs: the dummy subset gates clean against results/baselines/."""
    manifest = json.loads((BASELINE / "manifest.json").read_text())
    assert manifest["settings"]["task"]["limit"] == 32 and manifest["settings"]["task"]["split"] == "hard"
    recomputed = summarize_run(RunDir(shutil.copytree(BASELINE, tmp_path / "copy")))
    assert recomputed == json.loads((BASELINE / "summary.json").read_text()), "the committed summary is current"
    current = dummy_run(tmp_path / "current", limit=32)
    result, _ = run_gate(BASELINE, current, GateOptions())
    assert not result.failed and all(row.delta == 0.0 for row in result.rows)
    assert cli(capsys, "gate", "--baseline", BASELINE / "summary.json", "--current", current)[0] == 0


def test_example_workflow_commands_pass(tmp_path, capsys):
    """The two ts-eval steps of examples/ci-gate.yml, run as written (output folder moved to tmp)."""
    workflow = yaml.safe_load((ROOT / "examples" / "ci-gate.yml").read_text())
    commands = [step["run"] for step in workflow["jobs"]["gate"]["steps"] if "ts-eval" in step.get("run", "")]
    assert [c.split()[1] for c in commands] == ["run", "gate"]
    for command in commands:
        args = shlex.split(command.replace("results/ci-current", str(tmp_path / "ci-current")))[1:]
        args = [str(ROOT / a) if a.startswith("results/baselines/") else a for a in args]
        code, _, err = cli(capsys, *args)
        assert code == 0, (command, err)
