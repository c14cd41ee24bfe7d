"""No wrong number with exit 0: locked run directories, whole creation, and readers that refuse a damaged run."""

from __future__ import annotations

import csv
import io
import json
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import ROOT, cli, record_edit
from ts_eval.errors import UsageError
from ts_eval.store import RunDir, RunLock, read_jsonl, write_jsonl

RUN = [
    "genai-bench",
    "--variant",
    "527",
    "--split",
    "hard",
    "--limit",
    "6",
    "--model",
    "dummy",
    "--scorer",
    "dummy",
    "--quiet",
]


def make_run(out: Path, *extra: str) -> Path:
    assert cli("run", *RUN, "--out", out, *extra)[0] == 0
    return out


@pytest.fixture(scope="module")
def clean(tmp_path_factory) -> Path:
    return make_run(tmp_path_factory.mktemp("clean") / "R")


def copy(run: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(run, tmp_path / run.name))


def one_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("ts-eval: error: "), err
    return err[0]


# -- the lock ----------------------------------------------------------------------------------------


def _holder(path: Path) -> subprocess.Popen:
    """Another process holding the run's lock until killed."""
    code = (
        "import sys, time; from ts_eval.store import RunLock; RunLock(sys.argv[1]).acquire(); "
        "print('held', flush=True); time.sleep(600)"
    )
    process = subprocess.Popen([sys.executable, "-c", code, str(path)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "held"
    return process


def test_a_second_writer_gets_one_line_naming_the_holder(clean, tmp_path, capsys):
    run = copy(clean, tmp_path)
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file() and p.name != ".lock"}
    holder = _holder(run)
    try:
        for command in (["run", *RUN, "--out", run], ["score", run, "--scorer", "dummy", "--quiet"], ["report", run]):
            capsys.readouterr()
            assert cli(*command)[0] == 2
            line = one_line(capsys)
            assert "being written by another ts-eval process" in line and f"pid {holder.pid}" in line
    finally:
        holder.kill()
        holder.wait()
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file() and p.name != ".lock"} == before
    # The holder died: its lock is free again (the kernel dropped it), the same command now works.
    assert cli("report", run)[0] == 0


def test_lock_is_exclusive_within_a_process_too(tmp_path):
    tmp_path.joinpath("R").mkdir()
    with RunLock(tmp_path / "R"), pytest.raises(UsageError, match="another ts-eval process"):
        RunLock(tmp_path / "R").acquire()
    RunLock(tmp_path / "R").acquire().release()


# -- creation --------------------------------------------------------------------------------------


def test_a_kill_during_creation_leaves_no_half_made_directory(tmp_path, monkeypatch, capsys):
    import ts_eval.store.rundir as rundir

    written = []
    original = rundir.write_atomic

    def dies_after_prompts(path, data):
        original(path, data)
        written.append(path.name)
        if path.name == "prompts.jsonl":
            raise KeyboardInterrupt  # stands for a kill between prompts.jsonl and manifest.json

    monkeypatch.setattr(rundir, "write_atomic", dies_after_prompts)
    assert cli("run", *RUN, "--out", tmp_path / "R") == (130, "", "")
    assert written == ["prompts.jsonl"] and not (tmp_path / "R").exists()
    monkeypatch.setattr(rundir, "write_atomic", original)
    (tmp_path / ".R.creating-abandoned").mkdir()  # as a SIGKILL would leave it
    make_run(tmp_path / "R")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["R"]


def test_out_that_is_a_file_or_a_foreign_folder_is_refused(tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    (tmp_path / "folder").mkdir()
    (tmp_path / "folder" / "notes.txt").write_text("mine")
    for out, reason in ((tmp_path / "file", "is a file"), (tmp_path / "folder", "not a run directory")):
        capsys.readouterr()
        assert cli("run", *RUN, "--out", out, "--overwrite")[0] == 2
        assert reason in one_line(capsys)
    assert (tmp_path / "folder" / "notes.txt").read_text() == "mine"


def test_resume_removes_temporaries_and_keeps_images_whose_bytes_are_recorded(clean, tmp_path):
    run = copy(clean, tmp_path)
    (run / ".samples.jsonl.abc.tmp").write_text("half")
    (run / "images" / "00103" / ".0000.jpg.xyz.tmp").write_bytes(b"half")
    before = (run / "images.jsonl").read_bytes()
    make_run(run)
    assert not list(run.rglob("*.tmp"))
    assert (run / "images.jsonl").read_bytes() == before


def test_resume_remakes_an_image_recorded_with_another_seed(clean, tmp_path):
    """A row whose seed is not the one the run's seed gives (e.g. mixed in by a race) is never kept."""
    run = copy(clean, tmp_path)
    rows = read_jsonl(run / "images.jsonl")
    forged = dict(rows[0], seed=rows[0]["seed"] + 1)
    run_dir = RunDir(run)
    run_dir.append_progress("images.jsonl", 0, [forged])
    make_run(run)
    assert read_jsonl(run / "images.jsonl")[0] == rows[0]


# -- every reader refuses a damaged run ------------------------------------------------------------


def _dup_samples(run):
    rows = read_jsonl(run / "samples.jsonl")
    write_jsonl(run / "samples.jsonl", rows + rows[:3])


def _drop_half(run):
    rows = read_jsonl(run / "samples.jsonl")
    write_jsonl(run / "samples.jsonl", rows[: len(rows) // 2])


def _extra_index(run):
    rows = read_jsonl(run / "samples.jsonl")
    write_jsonl(run / "samples.jsonl", rows + [dict(rows[0], sample_index=1)])


def _edit_value(run):
    rows = read_jsonl(run / "samples.jsonl")
    rows[0]["value"] = 0.999
    write_jsonl(run / "samples.jsonl", rows)


def _metric_in_manifest(run):
    RunDir(run).update_manifest(lambda m: m.update(metrics=["clipscore"]))


def _image_bytes(run):
    path = run / read_jsonl(run / "images.jsonl")[0]["path"]
    path.write_bytes(path.read_bytes()[:-10] + b"0123456789")


def _image_swap(run):
    rows = read_jsonl(run / "images.jsonl")
    first, second = (run / rows[0]["path"], run / rows[1]["path"])
    a, b = first.read_bytes(), second.read_bytes()
    first.write_bytes(b)
    second.write_bytes(a)


def _image_rows_forged(run):
    """A consistent edit of images.jsonl (sha256 re-recorded): the scores were made for other bytes."""
    rows = read_jsonl(run / "images.jsonl")
    rows[0]["sha256"], rows[1]["sha256"] = rows[1]["sha256"], rows[0]["sha256"]
    write_jsonl(run / "images.jsonl", rows)
    record_edit(run, "images.jsonl")


def _prompts_edited(run):
    rows = read_jsonl(run / "prompts.jsonl")
    rows[0]["prompt"] += " (easier)"
    write_jsonl(run / "prompts.jsonl", rows)


def _manifest_garbage(run):
    (run / "manifest.json").write_text("{not json")


DAMAGE = {
    "duplicated rows": (_dup_samples, "samples.jsonl was changed"),
    "half the rows deleted": (_drop_half, "samples.jsonl was changed"),
    "extra sample_index": (_extra_index, "samples.jsonl was changed"),
    "edited score": (_edit_value, "samples.jsonl was changed"),
    "metric changed in the manifest": (_metric_in_manifest, "has metric 'vqascore'"),
    "image bytes edited": (_image_bytes, "does not match its sha256"),
    "images swapped": (_image_swap, "does not match its sha256"),
    "image rows forged": (_image_rows_forged, "does not match its sha256"),
    "prompts edited": (_prompts_edited, "prompts.jsonl was changed"),
    "manifest unreadable": (_manifest_garbage, "malformed JSON"),
}
READERS = {
    "report": lambda run: ["report", run],
    "gate": lambda run: ["gate", "--baseline", run, "--current", run],
    "submit": lambda run: ["submit", run, "--out", run.parent / "sub.zip", "--allow-unofficial"],
    "score": lambda run: ["score", run, "--scorer", "dummy", "--quiet"],
}


@pytest.mark.parametrize("damage", DAMAGE)
@pytest.mark.parametrize("reader", READERS)
def test_every_reader_refuses_a_damaged_run(clean, tmp_path, capsys, damage, reader):
    edit, reason = DAMAGE[damage]
    if reader == "score" and damage in (
        "duplicated rows",
        "half the rows deleted",
        "extra sample_index",
        "edited score",
        "metric changed in the manifest",
        "image rows forged",
    ):
        pytest.skip("score repairs damaged scores (tested below)")
    run = copy(clean, tmp_path)
    edit(run)
    summary = (run / "summary.json").read_bytes()
    capsys.readouterr()
    code = cli(*READERS[reader](run))[0]
    line = one_line(capsys)
    assert code in (1, 2) and reason in line, line
    assert (run / "summary.json").read_bytes() == summary
    assert not (run.parent / "sub.zip").exists()


@pytest.mark.parametrize("damage", ["duplicated rows", "half the rows deleted", "extra sample_index", "edited score"])
def test_score_rebuilds_damaged_scores_from_the_images(clean, tmp_path, damage):
    run = copy(clean, tmp_path)
    DAMAGE[damage][0](run)
    assert cli("score", run, "--scorer", "dummy", "--quiet")[0] == 0
    assert (run / "samples.jsonl").read_bytes() == (clean / "samples.jsonl").read_bytes()
    assert (
        json.loads((run / "summary.json").read_text())["groups"]
        == json.loads((clean / "summary.json").read_text())["groups"]
    )


def test_a_resume_never_keeps_an_edited_score(clean, tmp_path):
    run = copy(clean, tmp_path)
    _edit_value(run)
    make_run(run)
    assert (run / "samples.jsonl").read_bytes() == (clean / "samples.jsonl").read_bytes()


def test_every_run_writes_its_visual_report(clean):
    page = (clean / "view.html").read_text()
    assert "unofficial: scorer.name=dummy; subset: limit=6" in page
    assert len(list((clean / "view-thumbs").glob("*.jpg"))) == 6


def test_report_tables_carry_n_and_the_verdict(clean, capsys):
    capsys.readouterr()
    assert cli("report", clean, "--format", "csv")[0] == 0
    header, n_row, run_row = list(csv.reader(io.StringIO(capsys.readouterr().out.strip())))
    assert n_row[0] == "n" and n_row[header.index("Hard overall")] == "6"
    assert run_row[header.index("status")] == "unofficial: scorer.name=dummy; subset: limit=6"
    assert "All (split hard, subset limit=6)" in header and "All" not in header


def test_kill_mid_batch_keeps_every_image_already_written(tmp_path):
    """Each image's row is appended when its file is written, not when its whole batch is done."""
    module = tmp_path / "killer.py"
    module.write_text(
        "import os, signal\nfrom PIL import Image\ncalls = []\n"
        "def make(prompts, seeds):\n"
        "    calls.append(1)\n"
        "    if len(calls) == 2:\n"
        "        import time; time.sleep(1.0); os.kill(os.getpid(), signal.SIGKILL)\n"
        "    return [Image.new('RGB', (8, 8), (s % 256, 0, 0)) for s in seeds]\n"
    )
    out = tmp_path / "R"
    args = [
        sys.executable,
        "-m",
        "ts_eval",
        "generate",
        "genai-bench",
        "--variant",
        "527",
        "--limit",
        "8",
        "--model",
        "python",
        "--model-arg",
        f"entry={module}:make",
        "--model-arg",
        "batch_size=4",
        "--out",
        str(out),
        "--quiet",
    ]
    done = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == -signal.SIGKILL
    rows = [r for p in (out / "progress").glob("images-rank*.jsonl") for r in read_jsonl(p)]
    assert len(rows) == 4 and len(list((out / "images").rglob("*.jpg"))) == 4


def test_an_image_keeps_its_batch_companions_on_resume(tmp_path):
    """A generator whose images depend on the whole batch (as GPU kernels can make them): batches are a fixed
    partition of the run's order, so remade images equal the ones an uninterrupted run made."""
    module = tmp_path / "companions.py"
    module.write_text(
        "from PIL import Image\n"
        "def make(prompts, seeds):\n"
        "    mix = sum(seeds) % 251\n"
        "    return [Image.new('RGB', (8, 8), (s % 256, mix, len(prompts))) for s in seeds]\n"
    )
    args = [
        "run",
        "genai-bench",
        "--variant",
        "527",
        "--limit",
        "10",
        "--model",
        "python",
        "--model-arg",
        f"entry={module}:make",
        "--model-arg",
        "batch_size=4",
        "--scorer",
        "dummy",
        "--quiet",
        "--no-view",
    ]
    clean, resumed = tmp_path / "clean", tmp_path / "resumed"
    assert cli(*args, "--out", clean)[0] == 0
    shutil.copytree(clean, resumed)
    rows = read_jsonl(resumed / "images.jsonl")
    for row in (rows[1], rows[6], rows[9]):  # lost images in three different batches
        (resumed / row["path"]).unlink()
    assert cli(*args, "--out", resumed)[0] == 0
    for name in ("images.jsonl", "samples.jsonl"):
        assert (resumed / name).read_bytes() == (clean / name).read_bytes()
