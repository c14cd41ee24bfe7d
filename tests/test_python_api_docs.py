"""The Python API examples stay true: every ```python block of docs/python-api.md and of the README's "Python API"
section runs, in order, in an empty folder (as a reader would paste them)."""

from __future__ import annotations

import importlib.util
import re

import pytest

from tests.support import ROOT


def _blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)\n```", text, flags=re.S)


def _readme_section() -> str:
    text = (ROOT / "README.md").read_text()
    return text.split("## Python API", 1)[1].split("\n## ", 1)[0]


def _run_blocks(blocks: list[str], folder, monkeypatch) -> int:
    """Execute the blocks in one namespace; a block importing an extra that is not installed is skipped with its
    followers that use what it defined (none here: such blocks come last in a section). Returns blocks run."""
    if importlib.util.find_spec("torch") is None or importlib.util.find_spec("t2v_metrics") is None:
        pytest.skip("the examples score with VQAScore's tiny random model: needs the [genai] extra and t2v-metrics")
    monkeypatch.chdir(folder)
    namespace: dict = {"__name__": "__docs__"}
    ran = 0
    for block in blocks:
        needs = re.findall(r"^\s*(?:from|import) (diffusers)\b", block, flags=re.M)
        if any(importlib.util.find_spec(name) is None for name in needs):
            continue
        exec(compile(block, "<example>", "exec"), namespace)
        ran += 1
    return ran


def test_python_api_page_examples_run(tmp_path, monkeypatch, capsys):
    blocks = _blocks((ROOT / "docs" / "python-api.md").read_text())
    assert len(blocks) >= 7
    ran = _run_blocks(blocks, tmp_path, monkeypatch)
    out = capsys.readouterr().out
    assert ran >= len(blocks) - 1  # at most the diffusers example is skipped, where diffusers is not installed
    assert "unofficial: scorer.model=tiny-random; subset: limit=8" in out
    assert "custom prompts (no official recipe)" in out and "| Colors" in out and "| Counting" in out
    assert "meaningless" in out
    assert (tmp_path / "results" / "my-model" / "summary.json").is_file()


def test_readme_python_api_examples_run(tmp_path, monkeypatch, capsys):
    blocks = _blocks(_readme_section())
    assert len(blocks) >= 2
    assert _run_blocks(blocks, tmp_path, monkeypatch) == len(blocks)
    out = capsys.readouterr().out
    assert "| python " in out or "| my-model " in out
