"""GenEval's official layouts: export a run, read it back with `--model folder`, import results.jsonl, compare."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from ts_eval.cli import main
from ts_eval.geneval.rules import JudgeSettings, f32, kept_by_class, objects_from_row
from ts_eval.store import read_jsonl

pytestmark = pytest.mark.e2e  # real (tiny) backends end to end: outside the inner loop


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    """All 553 prompts (every tag), 2 images each; the tests only read it."""
    out = tmp_path_factory.mktemp("geneval") / "R"
    assert (
        main(
            [
                "run",
                "geneval",
                "--model",
                "dummy",
                "--detector",
                "dummy",
                "--n-samples",
                "2",
                "--out",
                str(out),
                "--quiet",
                "--no-cache",
                "--no-view",
            ]
        )
        == 0
    )
    return out


def _one_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("ts-eval: error: "), err
    return err[0]


def test_export_writes_the_official_layout(run, tmp_path):
    out = tmp_path / "official"
    assert main(["geneval", "export", str(run), str(out), "--quiet"]) == 0
    prompts = read_jsonl(run / "prompts.jsonl")
    assert sorted(p.name for p in out.iterdir()) == [p["prompt_id"] for p in prompts]
    for prompt in prompts:
        folder = out / prompt["prompt_id"]
        with open(folder / "metadata.jsonl") as handle:
            assert json.load(handle) == prompt["metadata"]  # the official script reads it with json.load
        assert sorted(p.name for p in (folder / "samples").iterdir()) == ["0000.png", "0001.png"]
        for k in range(2):
            ours = run / "images" / prompt["prompt_id"] / f"{k:04d}.png"
            assert (folder / "samples" / f"{k:04d}.png").read_bytes() == ours.read_bytes()


def test_exported_folder_scores_the_same_with_the_folder_model(run, tmp_path):
    out = tmp_path / "official"
    assert main(["geneval", "export", str(run), str(out), "--quiet"]) == 0
    again = tmp_path / "again"
    assert (
        main(
            [
                "run",
                "geneval",
                "--model",
                "folder",
                "--model-arg",
                f"path={out}",
                "--detector",
                "dummy",
                "--n-samples",
                "2",
                "--out",
                str(again),
                "--quiet",
                "--no-cache",
            ]
        )
        == 0
    )
    assert [r["sha256"] for r in read_jsonl(again / "images.jsonl")] == [
        r["sha256"] for r in read_jsonl(run / "images.jsonl")
    ]
    assert (again / "detections.jsonl").read_bytes() == (run / "detections.jsonl").read_bytes()
    assert (again / "samples.jsonl").read_bytes() == (run / "samples.jsonl").read_bytes()


def test_export_never_overwrites_without_asking(run, tmp_path, capsys):
    out = tmp_path / "official"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    capsys.readouterr()
    assert main(["geneval", "export", str(run), str(out), "--quiet"]) == 2
    assert "--overwrite" in _one_line(capsys)
    assert (out / "keep.txt").read_text() == "mine"


def official_results(run: Path, image_root: str = "/data/geneval_out") -> pd.DataFrame:
    """What the official evaluate_images.py would write for this run's detections (same judge, pandas format)."""
    prompts = {p["prompt_id"]: p for p in read_jsonl(run / "prompts.jsonl")}
    samples = {(s["prompt_id"], s["sample_index"]): s for s in read_jsonl(run / "samples.jsonl")}
    rows = []
    for row in read_jsonl(run / "detections.jsonl"):
        prompt = prompts[row["prompt_id"]]
        kept = kept_by_class(objects_from_row(row["detections"], "x"), prompt["metadata"]["tag"], JudgeSettings())
        sample = samples[(row["prompt_id"], row["sample_index"])]
        rows.append(
            {
                "filename": f"{image_root}/{row['prompt_id']}/samples/{row['sample_index']:04d}.png",
                "tag": prompt["metadata"]["tag"],
                "prompt": prompt["prompt"],
                "correct": bool(sample["value"]),
                "reason": sample.get("reason", ""),
                "metadata": json.dumps(prompt["metadata"]),
                "details": json.dumps({k: [[*o.box, float(f32(o.score))] for o in v] for k, v in kept.items()}),
            }
        )
    return pd.DataFrame(rows)


def test_import_official_results_and_compare_side_by_side(run, tmp_path, capsys):
    results = tmp_path / "results.jsonl"
    with open(results, "w") as handle:
        official_results(run).to_json(handle, orient="records", lines=True)  # as the official script writes it
    imported = tmp_path / "imported"
    assert main(["geneval", "import", str(results), "--out", str(imported)]) == 0
    ours = json.loads((run / "summary.json").read_text())["groups"]
    theirs = json.loads((imported / "summary.json").read_text())["groups"]
    assert {k: v["mean"] for k, v in theirs.items()} == {k: v["mean"] for k, v in ours.items()}
    detections = read_jsonl(imported / "detections.jsonl")
    assert len(detections) == 1106 and all(
        o["color"] is None for r in detections for v in r["detections"].values() for o in v
    )
    capsys.readouterr()
    assert main(["report", str(run), str(imported)]) == 2  # another scorer: not comparable unless asked
    assert "not comparable" in capsys.readouterr().err
    assert main(["report", str(run), str(imported), "--allow-mixed"]) == 0
    table = capsys.readouterr().out
    assert "| R " in table and "| imported " in table and "nan" not in table
    assert main(["geneval", "compare", str(run), str(imported)]) == 0
    out = capsys.readouterr().out
    assert "| all " in out and "images judged differently" not in out


def test_compare_lists_disagreements(run, tmp_path, capsys):
    frame = official_results(run)
    frame.loc[0, "correct"] = not frame.loc[0, "correct"]
    frame.loc[0, "reason"] = "flipped by hand"
    results = tmp_path / "results.jsonl"
    with open(results, "w") as handle:
        frame.to_json(handle, orient="records", lines=True)
    assert main(["geneval", "import", str(results), "--out", str(tmp_path / "imported")]) == 0
    capsys.readouterr()
    assert main(["geneval", "compare", str(run), str(tmp_path / "imported")]) == 0
    out = capsys.readouterr().out
    assert "1 images judged differently" in out and "flipped by hand" in out


def test_import_rejects_results_of_another_prompt_set(run, tmp_path, capsys):
    frame = official_results(run)
    metadata = json.loads(frame.loc[3, "metadata"])
    metadata["prompt"] = "a photo of a spaceship"
    frame.loc[3, "metadata"] = json.dumps(metadata)
    results = tmp_path / "results.jsonl"
    with open(results, "w") as handle:
        frame.to_json(handle, orient="records", lines=True)
    capsys.readouterr()
    assert main(["geneval", "import", str(results), "--out", str(tmp_path / "imported")]) == 2
    assert "another prompt set" in _one_line(capsys)
    assert not (tmp_path / "imported").exists()


def test_imported_runs_cannot_be_rescored(run, tmp_path, capsys):
    results = tmp_path / "results.jsonl"
    with open(results, "w") as handle:
        official_results(run).to_json(handle, orient="records", lines=True)
    assert main(["geneval", "import", str(results), "--out", str(tmp_path / "imported")]) == 0
    capsys.readouterr()
    assert main(["rescore", str(tmp_path / "imported"), "--quiet"]) == 2
    assert "imported official results" in _one_line(capsys)
