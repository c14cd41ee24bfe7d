"""The run directory: resume after SIGKILL, canonical files, settings guard, torn progress lines."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import pytest

from tests.support import cli, cli_process
from ts_eval import run
from ts_eval.errors import UsageError
from ts_eval.store import RunDir, read_jsonl

RUN_ARGS = [
    "run",
    "genai-bench",
    "--variant",
    "527",
    "--split",
    "all",
    "--model",
    "dummy",
    "--model-arg",
    "batch_size=1",
    "--model-arg",
    "resolution=96",
    "--scorer",
    "dummy",
    "--n-samples",
    "2",
    "--quiet",
    "--batch-size",
    "4",
]


def _files(folder: Path) -> dict[str, bytes]:
    wanted = ["images.jsonl", "samples.jsonl", "prompts.jsonl", "summary.json"]
    files = {name: (folder / name).read_bytes() for name in wanted}
    files.update({str(p.relative_to(folder)): p.read_bytes() for p in sorted((folder / "images").rglob("*.png"))})
    return files


@pytest.mark.reliability
@pytest.mark.e2e
def test_sigkill_midway_then_same_command_equals_uninterrupted_run(tmp_path):
    reference = tmp_path / "uninterrupted"
    assert cli_process(*RUN_ARGS, "--out", reference).wait(timeout=300) == 0

    killed = tmp_path / "killed"
    process = cli_process(*RUN_ARGS, "--out", killed)
    deadline = time.time() + 120
    progress = killed / "progress" / "images-rank0.jsonl"
    while time.time() < deadline and process.poll() is None:
        if progress.exists() and progress.read_text().count("\n") >= 200:
            break
        time.sleep(0.01)
    assert process.poll() is None, "run finished before it could be killed"
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not (killed / "summary.json").exists()
    done_before = len(read_jsonl(progress, tolerate_torn_tail=True))
    assert 0 < done_before < 527 * 2

    assert cli_process(*RUN_ARGS, "--out", killed).wait(timeout=300) == 0
    assert _files(killed) == _files(reference)
    manifest = json.loads((killed / "manifest.json").read_text())
    assert manifest["timings"]["generate_items"] == 527 * 2 - done_before  # only the missing images were made


def test_rerun_recomputes_nothing_and_repairs_a_tampered_image(tmp_path, monkeypatch):
    out = tmp_path / "R"
    run(
        "genai-bench", variant="527", split="hard", limit=5, model="dummy", scorer="dummy", out=str(out), progress=False
    )
    before = _files(out)
    image = out / read_jsonl(out / "images.jsonl")[2]["path"]
    image.write_bytes(b"not a png")  # damaged on disk: its sha256 no longer matches

    calls = []
    from ts_eval.generators.dummy import DummyGenerator

    original = DummyGenerator.generate
    monkeypatch.setattr(DummyGenerator, "generate", lambda self, reqs: calls.append(len(reqs)) or original(self, reqs))
    run(
        "genai-bench", variant="527", split="hard", limit=5, model="dummy", scorer="dummy", out=str(out), progress=False
    )
    assert calls == [1]  # only the damaged image was made again
    assert _files(out) == before


def test_other_settings_refuse_the_out_dir_unless_overwrite(tmp_path, capsys):
    out = tmp_path / "R"
    run(
        "genai-bench", variant="527", split="hard", limit=3, model="dummy", scorer="dummy", out=str(out), progress=False
    )
    before = _files(out)
    code = cli(
        "run",
        "genai-bench",
        "--variant",
        "527",
        "--split",
        "hard",
        "--limit",
        "3",
        "--seed",
        "9",
        "--scorer",
        "dummy",
        "--out",
        out,
        "--quiet",
    )[0]
    err = capsys.readouterr().err
    assert code == 2 and "seed: 0 -> 9" in err and "--overwrite" in err and err.count("\n") == 1
    assert _files(out) == before
    code = cli(
        "run",
        "genai-bench",
        "--variant",
        "527",
        "--split",
        "hard",
        "--limit",
        "3",
        "--seed",
        "9",
        "--scorer",
        "dummy",
        "--out",
        out,
        "--quiet",
        "--overwrite",
    )[0]
    assert code == 0 and _files(out)["images.jsonl"] != before["images.jsonl"]


def test_out_dir_that_is_not_a_run_is_never_touched(tmp_path):
    out = tmp_path / "precious"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    with pytest.raises(UsageError, match="not a run directory"):
        run("genai-bench", variant="527", limit=2, model="dummy", scorer="dummy", out=str(out), progress=False)
    assert [p.name for p in out.iterdir()] == ["notes.txt"]


def test_torn_progress_line_is_dropped_and_appending_continues(tmp_path):
    store = RunDir(tmp_path)
    store.append_rows("x.jsonl", [{"a": 1}, {"a": 2}])
    with open(tmp_path / "x.jsonl", "a") as handle:
        handle.write('{"a": 3, "b"')  # killed mid-write
    assert store.read_rows("x.jsonl") == [{"a": 1}, {"a": 2}]
    store.append_rows("x.jsonl", [{"a": 4}])
    assert read_jsonl(tmp_path / "x.jsonl") == [{"a": 1}, {"a": 2}, {"a": 4}]


def test_seeds_depend_on_prompt_sample_and_seed_only(tmp_path):
    run(
        "genai-bench",
        variant="527",
        split="hard",
        limit=4,
        n_samples=2,
        model="dummy",
        scorer="dummy",
        out=str(tmp_path / "A"),
        progress=False,
    )
    run(
        "genai-bench",
        variant="527",
        split="hard",
        limit=2,
        n_samples=2,
        model="dummy",
        scorer="dummy",
        out=str(tmp_path / "B"),
        progress=False,
        model_args={"batch_size": "3"},
    )
    a = {(r["prompt_id"], r["sample_index"]): r for r in read_jsonl(tmp_path / "A" / "images.jsonl")}
    b = read_jsonl(tmp_path / "B" / "images.jsonl")
    assert all(a[(r["prompt_id"], r["sample_index"])]["sha256"] == r["sha256"] for r in b)
    assert len({r["seed"] for r in a.values()}) == 8
    run(
        "genai-bench",
        variant="527",
        split="hard",
        limit=2,
        n_samples=2,
        seed=1,
        model="dummy",
        scorer="dummy",
        out=str(tmp_path / "C"),
        progress=False,
    )
    c = read_jsonl(tmp_path / "C" / "images.jsonl")
    assert not {r["sha256"] for r in c} & {r["sha256"] for r in b}


def test_manifest_names_the_settings_that_differ_from_the_official_recipe(tmp_path):
    run(
        "genai-bench",
        variant="527",
        split="hard",
        limit=2,
        n_samples=1,
        model="dummy",
        scorer="dummy",
        out=str(tmp_path / "R"),
        progress=False,
    )
    verdict = json.loads((tmp_path / "R" / "manifest.json").read_text())["verdict"]
    assert not verdict["official"] and verdict["differences"][0] == "scorer.name=dummy (official: vqascore)"
    assert verdict["subset"] == "limit=2" and verdict["split"] == "hard"
