"""samples.jsonl rows read on their own: each carries the judged prompt text and the image path, the same for
fresh, cached and resumed scores, and every reader checks them against prompts.jsonl and images.jsonl."""

from __future__ import annotations

import json

import pytest

from tests.support import cli, record_edit
from ts_eval.errors import UsageError
from ts_eval.scorers.dummy import DummyScorer
from ts_eval.store.files import read_jsonl
from ts_eval.store.reader import RunDamaged, read_run

RUN = (
    "run",
    "genai-bench",
    "--variant",
    "527",
    "--split",
    "hard",
    "--limit",
    "3",
    "--n-samples",
    "2",
    "--model",
    "dummy",
    "--scorer",
    "dummy",
    "--quiet",
    "--no-view",
)


def _rows(path, name):
    return read_jsonl(path / name)


def test_each_row_carries_the_judged_prompt_and_its_image_path(tmp_path):
    rewrites = tmp_path / "rewrites.jsonl"
    assert cli(*RUN, "--out", tmp_path / "plain")[0] == 0
    prompts = {p["prompt_id"]: p["prompt"] for p in _rows(tmp_path / "plain", "prompts.jsonl")}
    rewrites.write_text(json.dumps({"prompt_id": next(iter(prompts)), "prompt": "REWRITTEN text"}) + "\n")
    assert cli(*RUN, "--prompt-rewrites", rewrites, "--out", tmp_path / "R")[0] == 0
    images = {(r["prompt_id"], r["sample_index"]): r["path"] for r in _rows(tmp_path / "R", "images.jsonl")}
    samples = _rows(tmp_path / "R", "samples.jsonl")
    assert len(samples) == 6
    for row in samples:
        assert row["prompt"] == prompts[row["prompt_id"]]  # the original text the scorer judged, not the rewrite
        assert row["path"] == images[(row["prompt_id"], row["sample_index"])]
        assert (tmp_path / "R" / row["path"]).is_file()
        assert list(row)[:4] == ["prompt_id", "sample_index", "prompt", "path"]
        assert {"metric", "value", "image_sha256"} <= set(row)  # the fields rows always had


def test_cached_scores_give_the_same_rows(tmp_path, monkeypatch):
    assert cli(*RUN, "--out", tmp_path / "fresh")[0] == 0

    def no_model(self, requests):
        raise AssertionError("every score should come from the cache")

    monkeypatch.setattr(DummyScorer, "score", no_model)
    assert cli(*RUN, "--out", tmp_path / "cached")[0] == 0
    fresh, cached = (tmp_path / "fresh" / "samples.jsonl"), (tmp_path / "cached" / "samples.jsonl")
    assert cached.read_bytes() == fresh.read_bytes()
    assert "prompt" in _rows(tmp_path / "cached", "samples.jsonl")[0]


def _edit_first_row(run, change) -> None:
    path = run / "samples.jsonl"
    rows = read_jsonl(path)
    change(rows[0])
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    record_edit(run)


@pytest.mark.parametrize(
    "change, problem",
    [
        (lambda row: row.update(prompt=row["prompt"] + " (edited)"), "another text than prompts.jsonl"),
        (lambda row: row.update(path="images/99999/0000.png"), "the path 'images/99999/0000.png'"),
    ],
)
def test_readers_refuse_rows_whose_prompt_or_path_disagree(tmp_path, change, problem, capsys):
    run = tmp_path / "R"
    assert cli(*RUN, "--out", run, capsys=capsys)[0] == 0
    _edit_first_row(run, change)
    with pytest.raises(RunDamaged, match=problem):
        read_run(run)
    code, _, err = cli("report", run, capsys=capsys)
    assert code == 2 and problem in err and len(err.strip().splitlines()) == 1


def test_rows_of_older_runs_without_the_readable_fields_still_read(tmp_path):
    run = tmp_path / "R"
    assert cli(*RUN, "--out", run)[0] == 0

    def strip(row):
        del row["prompt"], row["path"]

    _edit_first_row(run, strip)
    loaded = read_run(run)
    assert loaded.samples[0].prompt is None and loaded.samples[1].prompt is not None
    # but the samples file may not be changed behind the manifest's back
    (run / "samples.jsonl").write_text((run / "samples.jsonl").read_text().replace('"value": ', '"value":  '))
    with pytest.raises(UsageError):
        read_run(run)
