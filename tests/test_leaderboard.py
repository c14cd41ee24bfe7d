"""The board: schema and migrations, concurrent adds, show formats, remove, and `--verify` re-scoring."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import multiprocessing
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from ts_eval.cli import main
from ts_eval.errors import UsageError
from ts_eval import run as evaluate_run
from tests.support import summarize_run
from ts_eval.leaderboard import db
from ts_eval.leaderboard.archive import extracted
from ts_eval.leaderboard.submission import write_submission
from ts_eval.leaderboard.validate import Candidate, validate_run
from ts_eval.store import RunDir, read_jsonl, write_jsonl

ROOT = Path(__file__).resolve().parent.parent


def dummy_run(out: Path, **options) -> Path:
    evaluate_run("genai-bench", variant="527", split="hard", model="dummy", scorer="dummy", out=str(out),
                 progress=False, cache=False, **options)
    return out


def cli(capsys, *args) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("runs")
    return {"seed0": dummy_run(base / "seed0"), "seed1": dummy_run(base / "seed1", seed=1)}


@pytest.fixture(scope="module")
def subs(runs, tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("subs")
    return {"seed0": write_submission(runs["seed0"], base / "seed0.zip", include_images=True).path,
            "seed1": write_submission(runs["seed1"], base / "seed1.zip").path}


@pytest.fixture(scope="module")
def candidate(subs) -> Candidate:
    with extracted(subs["seed1"]) as root:
        return validate_run(root, subs["seed1"]).candidate


def show_json(capsys, board: Path, *extra) -> list[dict]:
    code, out, err = cli(capsys, "leaderboard", "show", "--db", board, "--task", "genai-bench", "--split", "hard",
                         "--format", "json", *extra)
    assert code == 0, err
    return json.loads(out)["rows"]


# -- schema ----------------------------------------------------------------------------------------

def test_schema_created_with_version(tmp_path):
    conn = db.connect(tmp_path / "board.sqlite")
    assert db.schema_version(conn) == len(db.MIGRATIONS)
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"schema_version", "boards", "submissions", "group_scores"} <= tables
    assert conn.execute("SELECT COUNT(*) FROM schema_version").fetchone()[0] == 1
    conn.close()
    conn = db.connect(tmp_path / "board.sqlite")  # reopening runs no migration twice
    assert conn.execute("SELECT COUNT(*) FROM schema_version").fetchone()[0] == 1


def test_migration_applies_once_and_keeps_rows(tmp_path, candidate):
    path = tmp_path / "board.sqlite"
    conn = db.connect(path)
    db.add_submission(conn, candidate, name="kept")

    def add_note(c: sqlite3.Connection) -> None:  # a later schema step, as a future release would add one
        c.execute("ALTER TABLE submissions ADD COLUMN note TEXT")

    newer = db.MIGRATIONS + [add_note]
    assert db.migrate(conn, newer) == len(newer)
    assert db.migrate(conn, newer) == len(newer), "a second ALTER would fail: the step ran once"
    assert conn.execute("SELECT name, note FROM submissions").fetchall() == [("kept", None)]
    assert db.schema_version(conn) == len(newer)


def test_failed_migration_rolls_back(tmp_path):
    conn = db.connect(tmp_path / "board.sqlite")

    def broken(c: sqlite3.Connection) -> None:
        c.execute("CREATE TABLE half_done (x INTEGER)")
        raise sqlite3.OperationalError("disk full")

    with pytest.raises(sqlite3.OperationalError):
        db.migrate(conn, db.MIGRATIONS + [broken])
    assert db.schema_version(conn) == len(db.MIGRATIONS)
    assert conn.execute("SELECT name FROM sqlite_master WHERE name = 'half_done'").fetchone() is None


def test_show_needs_no_write_lock(board, candidate, capsys, monkeypatch):
    """While another process holds the write lock, show still reads and a write gives up with one line."""
    monkeypatch.setattr(db, "BUSY_TIMEOUT_S", 0.2)
    writer = sqlite3.connect(board, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")
    try:
        assert len(show_json(capsys, board)) == 2
        with pytest.raises(UsageError, match="locked by another process"):
            db.add_submission(db.connect(board), dataclasses.replace(candidate, content_sha256="new"), name="late")
    finally:
        writer.execute("ROLLBACK")
    assert len(show_json(capsys, board)) == 2


def test_commands_are_registered(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert all(name in out for name in ("submit", "leaderboard", "gate"))


def test_board_from_newer_ts_eval_is_refused(tmp_path, capsys):
    path = tmp_path / "board.sqlite"
    db.connect(path).execute("UPDATE schema_version SET version = 99")
    with pytest.raises(UsageError, match="newer than this ts-eval"):
        db.connect(path)
    code, _, err = cli(capsys, "leaderboard", "show", "--db", path, "--task", "genai-bench", "--split", "hard")
    assert code == 2 and "upgrade ts-eval" in err


def test_not_a_board(tmp_path, capsys):
    (tmp_path / "notes.sqlite").write_text("just some text, not SQLite")
    code, _, err = cli(capsys, "leaderboard", "show", "--db", tmp_path / "notes.sqlite", "--task", "genai-bench")
    assert code == 2 and "is not a ts-eval board" in err
    code, _, err = cli(capsys, "leaderboard", "show", "--db", tmp_path / "missing.sqlite", "--task", "genai-bench")
    assert code == 2 and "no such board" in err and not (tmp_path / "missing.sqlite").exists()


# -- concurrency -----------------------------------------------------------------------------------

def _add_many(path: str, base: Candidate, tag: str, n: int, barrier, results) -> None:
    barrier.wait()  # both processes open the fresh file (and race to create its schema) at once
    conn = db.connect(path)
    accepted = 0
    for i in range(n):
        db.add_submission(conn, dataclasses.replace(base, content_sha256=f"{tag}-{i}"), name=f"{tag}-{i}")
        accepted += 1
    try:  # the same samples from both processes: exactly one may win
        db.add_submission(conn, dataclasses.replace(base, content_sha256="shared"), name=f"shared-{tag}")
        accepted += 1
    except Exception as exc:  # noqa: BLE001 - reported to the parent, which checks the kind
        results.put((tag, type(exc).__name__))
    results.put((tag, accepted))


def test_two_processes_adding_at_once(tmp_path, candidate):
    path = str(tmp_path / "board.sqlite")
    ctx = multiprocessing.get_context("fork")
    barrier, results = ctx.Barrier(2), ctx.Queue()
    n = 25
    procs = [ctx.Process(target=_add_many, args=(path, candidate, tag, n, barrier, results)) for tag in ("a", "b")]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert all(p.exitcode == 0 for p in procs)
    reports = [results.get(timeout=5) for _ in range(3)]
    accepted = sum(r[1] for r in reports if isinstance(r[1], int))
    assert accepted == 2 * n + 1
    assert [r[1] for r in reports if isinstance(r[1], str)] == ["CheckFailed"]
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert conn.execute("SELECT COUNT(*) FROM submissions").fetchone()[0] == 2 * n + 1
    groups = len(candidate.summary["groups"])
    assert conn.execute("SELECT COUNT(*) FROM group_scores").fetchone()[0] == (2 * n + 1) * groups
    assert conn.execute("SELECT COUNT(*) FROM schema_version").fetchone()[0] == 1


def test_two_add_commands_at_once(tmp_path, subs):
    """End to end: two `ts-eval leaderboard add` processes on one new board both land."""
    board = tmp_path / "board.sqlite"
    procs = [subprocess.Popen([sys.executable, "-m", "ts_eval", "leaderboard", "add", str(subs[k]), "--db", str(board)],
                              cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for k in ("seed0", "seed1")]
    outcomes = [p.communicate(timeout=120) + (p.returncode,) for p in procs]
    assert all(code == 0 for _, _, code in outcomes), outcomes
    conn = sqlite3.connect(board)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert sorted(r[0] for r in conn.execute("SELECT id FROM submissions")) == [1, 2]


# -- show ------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def board_template(subs, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("board") / "board.sqlite"
    assert main(["leaderboard", "add", str(subs["seed0"]), "--db", str(path), "--name", "<script>alert(1)</script>"]) == 0
    assert main(["leaderboard", "add", str(subs["seed1"]), "--db", str(path), "--name", "pipe|name"]) == 0
    return path


@pytest.fixture
def board(board_template, tmp_path) -> Path:
    """A board with both runs on it, fresh for each test."""
    return Path(shutil.copy(board_template, tmp_path / "board.sqlite"))


def test_show_ranks_by_overall_score(board, runs, capsys):
    rows = show_json(capsys, board)
    expected = {run: json.loads((runs[run] / "summary.json").read_text())["groups"]["all"]["mean"] for run in runs}
    names = {"seed0": "<script>alert(1)</script>", "seed1": "pipe|name"}
    order = sorted(expected, key=expected.get, reverse=True)
    assert [r["name"] for r in rows] == [names[k] for k in order]
    assert [r["rank"] for r in rows] == [1, 2]
    assert [r["score"] for r in rows] == [expected[k] for k in order]
    assert all(r["date"] and r["ts_eval_version"] and r["model"] == "dummy" for r in rows)


def test_show_markdown_and_csv(board, capsys):
    rows = show_json(capsys, board)
    code, md, _ = cli(capsys, "leaderboard", "show", "--db", board, "--task", "genai-bench", "--split", "hard")
    lines = md.strip().splitlines()
    assert code == 0 and len(lines) == 2 + len(rows)
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    assert "All" in header and "Count" in header and "Attribute" not in header  # hard prompts have no basic skills
    assert all(line.count("|") - line.count("\\|") == len(header) + 1 for line in lines), "a | in a name is escaped"
    assert "pipe\\|name" in md
    code, text, _ = cli(capsys, "leaderboard", "show", "--db", board, "--task", "genai-bench", "--split", "hard",
                        "--format", "csv")
    table = list(csv.DictReader(io.StringIO(text)))
    assert [t["name"] for t in table] == [r["name"] for r in rows]
    assert [float(t["All"]) for t in table] == pytest.approx([r["groups"]["all"] for r in rows], abs=1e-6)


def test_show_html_escapes_and_charts(board, tmp_path, capsys):
    out = tmp_path / "board.html"
    code, _, _ = cli(capsys, "leaderboard", "show", "--db", board, "--task", "genai-bench", "--split", "hard",
                     "--format", "html", "--out", out)
    page = out.read_text()
    assert code == 0 and page.startswith("<!DOCTYPE html>")
    assert "<script>alert(1)</script>" not in page
    assert page.count("&lt;script&gt;alert(1)&lt;/script&gt;") == 2  # table cell and chart label
    assert page.count("<rect") == 2 and "<svg" in page
    assert page.count("<tr>") == 3 and 'addEventListener("click"' in page


def test_show_needs_variant_when_mixed(board, candidate, capsys):
    conn = db.connect(board)
    db.add_submission(conn, dataclasses.replace(candidate, variant="1600", content_sha256="other"), name="big")
    code, _, err = cli(capsys, "leaderboard", "show", "--db", board, "--task", "genai-bench", "--split", "hard")
    assert code == 2 and "variants 1600, 527" in err
    assert [r["name"] for r in show_json(capsys, board, "--variant", "1600")] == ["big"]
    assert len(show_json(capsys, board, "--variant", "527")) == 2


def test_show_empty_and_bad_format(tmp_path, board, capsys):
    code, out, _ = cli(capsys, "leaderboard", "show", "--db", board, "--task", "genai-bench", "--split", "basic",
                       "--format", "json")
    assert code == 0 and json.loads(out) == {"rows": []}
    code, _, err = cli(capsys, "leaderboard", "show", "--db", board, "--task", "genai-bench", "--format", "pdf")
    assert code == 2 and "unknown --format" in err


def test_remove(board, capsys):
    first = show_json(capsys, board)[0]
    code, out, _ = cli(capsys, "leaderboard", "remove", first["id"], "--db", board)
    assert code == 0 and first["name"] in out
    assert [r["id"] for r in show_json(capsys, board)] != [first["id"]]
    assert len(show_json(capsys, board)) == 1
    conn = sqlite3.connect(board)
    assert conn.execute("SELECT COUNT(*) FROM group_scores WHERE submission_id = ?", (first["id"],)).fetchone()[0] == 0
    code, _, err = cli(capsys, "leaderboard", "remove", first["id"], "--db", board)
    assert code == 2 and f"no submission #{first['id']}" in err


# -- verify ----------------------------------------------------------------------------------------

def test_verify_accepts_honest_scores(subs, tmp_path, capsys):
    board = tmp_path / "board.sqlite"
    code, out, err = cli(capsys, "leaderboard", "add", subs["seed0"], "--db", board, "--verify", 5, "--verify-seed", 3)
    assert code == 0, err
    assert "5 images re-scored (seed 3)" in out
    assert show_json(capsys, board)[0]["verified_images"] == 5


def test_verify_catches_consistent_but_invented_scores(runs, tmp_path, capsys):
    """Scores, summary and checksums all agree, so only re-scoring the images can tell."""
    run = tmp_path / "invented"
    shutil.copytree(runs["seed0"], run)
    samples = read_jsonl(run / "samples.jsonl")
    for row in samples:
        row["value"] = round(min(1.0, row["value"] + 0.2), 6)
    write_jsonl(run / "samples.jsonl", samples)
    summarize_run(RunDir(run))
    sub = write_submission(run, tmp_path / "invented.zip", include_images=True).path
    board = tmp_path / "board.sqlite"
    code, _, err = cli(capsys, "leaderboard", "add", sub, "--db", board, "--verify", 3, "--verify-seed", 0)
    assert code == 1 and "re-scored image" in err and "tolerance 0.01" in err
    assert not board.exists()
    assert cli(capsys, "leaderboard", "add", sub, "--db", board)[0] == 0, "without --verify it looks fine"


def test_verify_needs_images(subs, tmp_path, capsys):
    code, _, err = cli(capsys, "leaderboard", "add", subs["seed1"], "--db", tmp_path / "b.sqlite", "--verify", 2)
    assert code == 1 and "--include-images" in err
    assert not (tmp_path / "b.sqlite").exists()
