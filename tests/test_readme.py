"""The README's two commands stay true: the quick-start run works, and CI runs the README's test command."""

from __future__ import annotations

import importlib.util
import re
import shlex

import pytest

from tests.support import ROOT, cli


def _quick_start_blocks() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```bash\n(.*?)\n```", section, flags=re.S)


def test_ci_runs_the_readme_test_command():
    test_command = _quick_start_blocks()[1].strip()
    ci_lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert test_command in ci_lines


def test_quick_start_run_works_on_a_few_prompts(tmp_path, capsys):
    if importlib.util.find_spec("t2v_metrics") is None or importlib.util.find_spec("torch") is None:
        pytest.skip("the quick start needs the [genai] extra and t2v-metrics")
    install_and_run = _quick_start_blocks()[0]
    run_command = install_and_run.split("&&")[-1].strip()
    args = shlex.split(run_command)
    assert args[:3] == ["ts-eval", "run", "genai-bench"]
    code, out, _ = cli(*args[1:], "--limit", "2", "--out", tmp_path / "R", "--quiet", capsys=capsys)
    assert code == 0
    assert "Hard overall" in out and "| reference |" in out
    # Random weights give scores near zero: they print with two significant digits, not as a wall of 0.00, and
    # the output says the numbers are meaningless.
    row = next(line for line in out.splitlines() if line.startswith("| reference |"))
    assert "0.00 " not in row and "0.000" not in row
    assert "random weights" in out and "(generator reference, scorer vqascore)" in out and "meaningless" in out
