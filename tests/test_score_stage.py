"""Scoring as its own stage, the content-addressed score cache, and prompt rewrites."""

from __future__ import annotations

import json

import pytest

from tests.support import cli
from ts_eval import run
from ts_eval.errors import UsageError
from ts_eval.options import RunOptions
from ts_eval.pipeline import score
from ts_eval.scorers.dummy import DummyScorer
from ts_eval.store import read_jsonl


def _count_scored(monkeypatch) -> list[int]:
    calls: list[int] = []
    original = DummyScorer.score
    monkeypatch.setattr(DummyScorer, "score", lambda self, reqs: calls.append(len(reqs)) or original(self, reqs))
    return calls


def test_scores_are_cached_by_content_across_run_directories(tmp_path, monkeypatch):
    calls = _count_scored(monkeypatch)
    first = run(
        "genai-bench",
        variant="527",
        split="hard",
        limit=6,
        model="dummy",
        scorer="dummy",
        out=str(tmp_path / "A"),
        progress=False,
    )
    assert sum(calls) == 6
    second = run(
        "genai-bench",
        variant="527",
        split="hard",
        limit=6,
        model="dummy",
        scorer="dummy",
        out=str(tmp_path / "B"),
        progress=False,
    )
    assert sum(calls) == 6  # same images, same prompts, same scorer settings: nothing scored again
    assert first["groups"] == second["groups"]
    assert (tmp_path / "A" / "samples.jsonl").read_bytes() == (tmp_path / "B" / "samples.jsonl").read_bytes()
    run(
        "genai-bench",
        variant="527",
        split="hard",
        limit=6,
        model="dummy",
        scorer="dummy",
        cache=False,
        out=str(tmp_path / "C"),
        progress=False,
    )
    assert sum(calls) == 12


def test_generate_then_score_then_report_as_separate_stages(tmp_path, capsys):
    out = tmp_path / "R"
    assert cli("generate", "genai-bench", "--variant", "527", "--limit", "4", "--out", out, "--quiet")[0] == 0
    assert not (out / "samples.jsonl").exists()
    assert cli("score", out, "--scorer", "dummy", "--quiet")[0] == 0
    assert len(read_jsonl(out / "samples.jsonl")) == 4
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["scorer"]["name"] == "dummy"
    capsys.readouterr()
    assert cli("report", out, "--format", "json")[0] == 0
    assert json.loads(capsys.readouterr().out)["R"]["task"] == "genai-bench"


def test_another_scorer_replaces_every_score_only_when_asked(tmp_path):
    out = tmp_path / "R"
    run("genai-bench", variant="527", limit=3, model="dummy", scorer="dummy", out=str(out), progress=False)
    before = read_jsonl(out / "samples.jsonl")
    binary = RunOptions(out=str(out), scorer="dummy", scorer_args={"binary": "true"}, progress=False)
    with pytest.raises(UsageError, match=r"already scored with dummy .*binary"):
        score(binary)
    assert read_jsonl(out / "samples.jsonl") == before
    binary.overwrite = True
    score(binary)
    after = read_jsonl(out / "samples.jsonl")
    assert len(after) == len(before) == 3
    assert {r["value"] for r in after} <= {0.0, 1.0} and before != after


def test_rewrites_reach_the_generator_and_the_scorer_judges_the_original(tmp_path, monkeypatch):
    rewrites = tmp_path / "rewrites.jsonl"
    rewrites.write_text(json.dumps({"prompt_id": "00002", "prompt": "A long, detailed rewritten caption."}) + "\n")
    seen_by_generator, seen_by_scorer = [], []
    from ts_eval.generators.dummy import DummyGenerator

    gen, scr = DummyGenerator.generate, DummyScorer.score
    monkeypatch.setattr(
        DummyGenerator,
        "generate",
        lambda self, reqs: seen_by_generator.extend(r.prompt for r in reqs) or gen(self, reqs),
    )
    monkeypatch.setattr(
        DummyScorer, "score", lambda self, reqs: seen_by_scorer.extend(r.prompt.prompt for r in reqs) or scr(self, reqs)
    )
    run(
        "genai-bench",
        variant="527",
        limit=3,
        model="dummy",
        scorer="dummy",
        prompt_rewrites=str(rewrites),
        out=str(tmp_path / "R"),
        progress=False,
    )
    prompts = read_jsonl(tmp_path / "R" / "prompts.jsonl")
    assert seen_by_generator[1] == "A long, detailed rewritten caption."
    assert seen_by_scorer[1] == prompts[1]["prompt"] != seen_by_generator[1]
    assert prompts[1]["rewritten_prompt"] == seen_by_generator[1] and "rewritten_prompt" not in prompts[0]
    manifest = json.loads((tmp_path / "R" / "manifest.json").read_text())
    assert manifest["settings"]["prompt_rewrites"]["rewritten"] == 1
