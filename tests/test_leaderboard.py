"""The board: schema and migrations, concurrent adds, show formats, remove, and `--verify` re-scoring."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import multiprocessing
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from test_submission import make_official_tasks

from tests.support import summarize_run
from ts_eval import run as evaluate_run
from ts_eval.cli import main
from ts_eval.errors import UsageError
from ts_eval.leaderboard import db
from ts_eval.leaderboard.archive import extracted
from ts_eval.leaderboard.submission import write_submission
from ts_eval.leaderboard.validate import Candidate, validate_run
from ts_eval.store import RunDir, read_jsonl, write_jsonl

ROOT = Path(__file__).resolve().parent.parent


def dummy_run(out: Path, **options) -> Path:
    evaluate_run(
        "genai-bench",
        variant="527",
        split="hard",
        model="dummy",
        scorer="dummy",
        out=str(out),
        progress=False,
        cache=False,
        **options,
    )
    return out


def cli(capsys, *args) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def official_tasks(tmp_path_factory) -> Path:
    """A genai-bench spec whose official recipe is the dummy scorer's: the runs below are official under it."""
    return make_official_tasks(tmp_path_factory.mktemp("official-tasks"))


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("runs")
    return {"seed0": dummy_run(base / "seed0"), "seed1": dummy_run(base / "seed1", seed=1)}


@pytest.fixture(scope="module")
def subs(runs, tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("subs")
    return {
        "seed0": write_submission(runs["seed0"], base / "seed0.zip", include_images=True).path,
        "seed1": write_submission(runs["seed1"], base / "seed1.zip").path,
    }


@pytest.fixture(scope="module")
def candidate(subs, official_tasks) -> Candidate:
    with extracted(subs["seed1"]) as root:
        return validate_run(root, subs["seed1"], tasks_dir=official_tasks).candidate


@pytest.fixture(scope="module")
def show_json(official_tasks):
    def show(capsys, board: Path, *extra) -> list[dict]:
        code, out, err = cli(
            capsys,
            "leaderboard",
            "show",
            "--db",
            board,
            "--task",
            "genai-bench",
            "--split",
            "hard",
            "--format",
            "json",
            "--tasks-dir",
            official_tasks,
            *extra,
        )
        assert code == 0, err
        return json.loads(out)["rows"]

    return show


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


def test_show_needs_no_write_lock(board, candidate, capsys, monkeypatch, show_json):
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


def test_board_from_newer_ts_eval_is_refused(tmp_path, capsys, official_tasks):
    path = tmp_path / "board.sqlite"
    db.connect(path).execute("UPDATE schema_version SET version = 99")
    with pytest.raises(UsageError, match="newer than this ts-eval"):
        db.connect(path)
    code, _, err = cli(
        capsys,
        "leaderboard",
        "show",
        "--tasks-dir",
        official_tasks,
        "--db",
        path,
        "--task",
        "genai-bench",
        "--split",
        "hard",
    )
    assert code == 2 and "upgrade ts-eval" in err


def test_not_a_board(tmp_path, capsys, official_tasks):
    (tmp_path / "notes.sqlite").write_text("just some text, not SQLite")
    code, _, err = cli(
        capsys,
        "leaderboard",
        "show",
        "--tasks-dir",
        official_tasks,
        "--db",
        tmp_path / "notes.sqlite",
        "--task",
        "genai-bench",
    )
    assert code == 2 and "is not a ts-eval board" in err
    code, _, err = cli(
        capsys,
        "leaderboard",
        "show",
        "--tasks-dir",
        official_tasks,
        "--db",
        tmp_path / "missing.sqlite",
        "--task",
        "genai-bench",
    )
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
    except Exception as exc:
        results.put((tag, type(exc).__name__))
    results.put((tag, accepted))


@pytest.mark.reliability
@pytest.mark.e2e
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


@pytest.mark.reliability
@pytest.mark.e2e
def test_two_add_commands_at_once(tmp_path, subs, official_tasks):
    """End to end: two `ts-eval leaderboard add` processes on one new board both land."""
    board = tmp_path / "board.sqlite"
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "ts_eval",
                "leaderboard",
                "add",
                str(subs[k]),
                "--db",
                str(board),
                "--tasks-dir",
                str(official_tasks),
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for k in ("seed0", "seed1")
    ]
    outcomes = [p.communicate(timeout=120) + (p.returncode,) for p in procs]
    assert all(code == 0 for _, _, code in outcomes), outcomes
    conn = sqlite3.connect(board)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert sorted(r[0] for r in conn.execute("SELECT id FROM submissions")) == [1, 2]


# -- show ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def board_template(subs, tmp_path_factory, official_tasks) -> Path:
    path = tmp_path_factory.mktemp("board") / "board.sqlite"
    add = ["leaderboard", "add", "--tasks-dir", str(official_tasks), "--db", str(path)]
    assert main([*add, str(subs["seed0"]), "--name", "<script>alert(1)</script>"]) == 0
    assert main([*add, str(subs["seed1"]), "--name", "pipe|name"]) == 0
    return path


@pytest.fixture
def board(board_template, tmp_path) -> Path:
    """A board with both runs on it, fresh for each test."""
    return Path(shutil.copy(board_template, tmp_path / "board.sqlite"))


def test_show_ranks_by_overall_score(board, runs, capsys, show_json):
    rows = show_json(capsys, board)
    expected = {run: json.loads((runs[run] / "summary.json").read_text())["groups"]["all"]["mean"] for run in runs}
    names = {"seed0": "<script>alert(1)</script>", "seed1": "pipe|name"}
    order = sorted(expected, key=expected.get, reverse=True)
    assert [r["name"] for r in rows] == [names[k] for k in order]
    assert [r["rank"] for r in rows] == [1, 2]
    assert [r["score"] for r in rows] == [expected[k] for k in order]
    assert all(r["date"] and r["ts_eval_version"] and r["model"] == "dummy" for r in rows)


def test_show_markdown_and_csv(board, capsys, official_tasks, show_json):
    rows = show_json(capsys, board)
    code, md, _ = cli(
        capsys,
        "leaderboard",
        "show",
        "--tasks-dir",
        official_tasks,
        "--db",
        board,
        "--task",
        "genai-bench",
        "--split",
        "hard",
    )
    lines = md.strip().splitlines()
    assert code == 0 and len(lines) == 2 + len(rows)
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    assert "All" in header and "Count" in header and "Attribute" not in header  # hard prompts have no basic skills
    assert all(line.count("|") - line.count("\\|") == len(header) + 1 for line in lines), "a | in a name is escaped"
    assert "pipe\\|name" in md
    code, text, _ = cli(
        capsys,
        "leaderboard",
        "show",
        "--tasks-dir",
        official_tasks,
        "--db",
        board,
        "--task",
        "genai-bench",
        "--split",
        "hard",
        "--format",
        "csv",
    )
    table = list(csv.DictReader(io.StringIO(text)))
    assert [t["name"] for t in table] == [r["name"] for r in rows]
    assert [float(t["All"]) for t in table] == pytest.approx([r["groups"]["all"] for r in rows], abs=1e-6)


def test_show_html_escapes_and_charts(board, tmp_path, capsys, official_tasks):
    out = tmp_path / "board.html"
    code, _, _ = cli(
        capsys,
        "leaderboard",
        "show",
        "--tasks-dir",
        official_tasks,
        "--db",
        board,
        "--task",
        "genai-bench",
        "--split",
        "hard",
        "--format",
        "html",
        "--out",
        out,
    )
    page = out.read_text()
    assert code == 0 and page.startswith("<!DOCTYPE html>")
    assert "<script>alert(1)</script>" not in page
    assert page.count("&lt;script&gt;alert(1)&lt;/script&gt;") == 2  # table cell and chart label
    assert page.count("<rect") == 2 and "<svg" in page
    assert page.count("<tr>") == 3 and 'addEventListener("click"' in page


def test_show_needs_variant_when_mixed(board, candidate, capsys, official_tasks, show_json):
    conn = db.connect(board)
    db.add_submission(conn, dataclasses.replace(candidate, variant="1600", content_sha256="other"), name="big")
    code, _, err = cli(
        capsys,
        "leaderboard",
        "show",
        "--tasks-dir",
        official_tasks,
        "--db",
        board,
        "--task",
        "genai-bench",
        "--split",
        "hard",
    )
    assert code == 2 and "variants 1600, 527" in err
    assert [r["name"] for r in show_json(capsys, board, "--variant", "1600")] == ["big"]
    assert len(show_json(capsys, board, "--variant", "527")) == 2


def test_show_empty_and_bad_format(tmp_path, board, capsys, official_tasks):
    code, out, _ = cli(
        capsys,
        "leaderboard",
        "show",
        "--tasks-dir",
        official_tasks,
        "--db",
        board,
        "--task",
        "genai-bench",
        "--split",
        "basic",
        "--format",
        "json",
    )
    assert code == 0 and json.loads(out) == {"rows": []}
    code, _, err = cli(
        capsys,
        "leaderboard",
        "show",
        "--tasks-dir",
        official_tasks,
        "--db",
        board,
        "--task",
        "genai-bench",
        "--format",
        "pdf",
    )
    assert code == 2 and "unknown --format" in err


def test_remove(board, capsys, show_json):
    first = show_json(capsys, board)[0]
    code, out, _ = cli(capsys, "leaderboard", "remove", first["id"], "--db", board)
    assert code == 0 and first["name"] in out
    assert [r["id"] for r in show_json(capsys, board)] != [first["id"]]
    assert len(show_json(capsys, board)) == 1
    conn = sqlite3.connect(board)
    assert conn.execute("SELECT COUNT(*) FROM group_scores WHERE submission_id = ?", (first["id"],)).fetchone()[0] == 0
    code, _, err = cli(capsys, "leaderboard", "remove", first["id"], "--db", board)
    assert code == 2 and f"no submission #{first['id']}" in err


# -- verify and the trust model ------------------------------------------------------------------------


def hypergeometric_catch(images: int, checked: int, fraction: float) -> float:
    """P(at least one of ceil(f*N) forged images among K drawn without replacement), by the product formula."""
    forged = math.ceil(fraction * images)
    miss = 1.0
    for i in range(checked):
        miss *= (images - forged - i) / (images - i)
    return 1.0 - miss


def test_verify_k_records_and_prints_the_chance_of_catching_a_forgery(
    subs, tmp_path, capsys, official_tasks, show_json
):
    board = tmp_path / "board.sqlite"
    code, out, err = cli(
        capsys,
        "leaderboard",
        "add",
        subs["seed0"],
        "--tasks-dir",
        official_tasks,
        "--db",
        board,
        "--verify",
        5,
        "--verify-seed",
        3,
    )
    assert code == 0, err
    p = hypergeometric_catch(313, 5, 0.05)
    assert round(p, 3) == 0.232  # 16 of 313 images forged, 5 drawn
    assert "verified on a sample: 5 of 313 images re-scored (seed 3)" in out
    assert f"5% of its images forged is caught with probability {p:.3f} (passes with {1 - p:.3f})" in out
    assert "--verify 53 would catch it with probability 0.95" in out
    assert hypergeometric_catch(313, 52, 0.05) < 0.95 <= hypergeometric_catch(313, 53, 0.05)
    [row] = show_json(capsys, board)
    assert row["verified_images"] == 5
    assert row["trust"] == {
        "level": "verified",
        "images": 313,
        "rescored": 5,
        "seed": 3,
        "forged_fraction": 0.05,
        "detection_probability": pytest.approx(p, abs=1e-12),
        "label": "verified: 5 of 313 images re-scored, P(catch 5% forged) = 0.23",
    }
    other = tmp_path / "other.sqlite"  # the fraction the probability is stated for is the maintainer's choice
    code, out, _ = cli(
        capsys,
        "leaderboard",
        "add",
        subs["seed0"],
        "--tasks-dir",
        official_tasks,
        "--db",
        other,
        "--verify",
        5,
        "--verify-seed",
        3,
        "--forged-fraction",
        0.2,
    )
    p20 = hypergeometric_catch(313, 5, 0.2)  # 63 of 313 forged
    assert code == 0 and f"20% of its images forged is caught with probability {p20:.3f}" in out
    assert show_json(capsys, other)[0]["trust"]["label"].endswith("P(catch 20% forged) = 0.68")


def test_verify_all_rescored_every_image(subs, tmp_path, capsys, official_tasks, show_json):
    board = tmp_path / "board.sqlite"
    code, out, err = cli(
        capsys, "leaderboard", "add", subs["seed0"], "--tasks-dir", official_tasks, "--db", board, "--verify", "all"
    )
    assert code == 0, err
    assert "verified: all 313 images re-scored and within tolerance" in out
    [row] = show_json(capsys, board)
    assert row["trust"]["label"] == "verified: all 313 images re-scored"
    assert (row["trust"]["rescored"], row["trust"]["detection_probability"]) == (313, 1.0)


def _forged_run(runs, tmp_path: Path, rows_forged: int) -> Path:
    """seed0 with `rows_forged` scores raised, summary and checksums rebuilt: consistent, and false."""
    run = tmp_path / "forged"
    shutil.copytree(runs["seed0"], run)
    samples = read_jsonl(run / "samples.jsonl")
    for row in samples[:: len(samples) // rows_forged][:rows_forged]:
        row["value"] = round(min(1.0, row["value"] + 0.4), 6) if row["value"] < 0.6 else round(row["value"] - 0.4, 6)
    write_jsonl(run / "samples.jsonl", samples)
    summarize_run(RunDir(run))
    return run


def test_verify_all_catches_a_single_forged_score_that_a_sample_misses(runs, tmp_path, capsys, official_tasks):
    run = _forged_run(runs, tmp_path, 1)
    sub = write_submission(run, tmp_path / "forged.zip", include_images=True).path
    board = tmp_path / "board.sqlite"
    code, _, err = cli(
        capsys, "leaderboard", "add", sub, "--tasks-dir", official_tasks, "--db", board, "--verify", "all"
    )
    assert code == 1 and "re-scored image" in err and err.count("\n") == 1 and not board.exists()
    code, out, _ = cli(
        capsys,
        "leaderboard",
        "add",
        sub,
        "--tasks-dir",
        official_tasks,
        "--db",
        board,
        "--verify",
        3,
        "--verify-seed",
        0,
    )
    assert code == 0 and "3 of 313 images re-scored" in out, "a sample of 3 misses one forged image in 313"


@pytest.mark.reliability
@pytest.mark.e2e
def test_the_printed_probability_is_the_rate_at_which_sampled_checks_catch_forgeries(runs, tmp_path, official_tasks):
    """Forge 5% of the scores (16 of 313) and run --verify 8 with 1000 seeds: the share of seeds that catch it
    matches the hypergeometric probability the board prints (within 3 standard errors)."""
    from ts_eval.leaderboard.archive import Rejected
    from ts_eval.leaderboard.trust import detection_probability
    from ts_eval.leaderboard.verify import VerifyOptions, verify_scores

    run = _forged_run(runs, tmp_path, 16)
    sub = write_submission(run, tmp_path / "forged.zip", include_images=True).path
    p = detection_probability(313, 8, 0.05)
    assert p == pytest.approx(hypergeometric_catch(313, 8, 0.05), abs=1e-12)
    stats = pytest.importorskip("scipy.stats", reason="scipy cross-checks the formula")
    assert p == pytest.approx(stats.hypergeom(313, 16, 8).sf(0), abs=1e-12)
    caught, trials = 0, 1000
    with extracted(sub) as root:
        validated = validate_run(root, sub, tasks_dir=official_tasks)
        for seed in range(trials):
            try:
                verify_scores(validated, VerifyOptions(k=8, seed=seed), sub)
            except Rejected:
                caught += 1
    standard_error = math.sqrt(p * (1 - p) / trials)
    assert abs(caught / trials - p) < 3 * standard_error, (caught, trials, p)
    assert 0.25 < p < 0.45  # far from sure: why a sampled entry says how far


@pytest.mark.parametrize(
    "option",
    [
        ("--verify", "0"),
        ("--verify", "some"),
        ("--verify", "-3"),
        ("--forged-fraction", "0"),
        ("--forged-fraction", "1.5"),
        ("--forged-fraction", "nan"),
    ],
)
def test_verify_options_are_checked_before_the_archive_is_opened(option, subs, tmp_path, capsys, official_tasks):
    code, _, err = cli(
        capsys,
        "leaderboard",
        "add",
        subs["seed0"],
        "--tasks-dir",
        official_tasks,
        "--db",
        tmp_path / "board.sqlite",
        *option,
    )
    assert code == 2 and err.count("\n") == 1 and option[0] in err and not (tmp_path / "board.sqlite").exists()


def test_every_format_shows_verdict_and_trust(subs, tmp_path, capsys, official_tasks):
    board = tmp_path / "board.sqlite"
    assert (
        cli(
            capsys,
            "leaderboard",
            "add",
            subs["seed0"],
            "--tasks-dir",
            official_tasks,
            "--db",
            board,
            "--verify",
            4,
            "--verify-seed",
            1,
        )[0]
        == 0
    )
    unofficial = make_official_tasks(tmp_path / "other", scorer={"name": "vqascore"})
    assert (
        cli(
            capsys, "leaderboard", "add", subs["seed1"], "--tasks-dir", unofficial, "--db", board, "--allow-unofficial"
        )[0]
        == 0
    )
    verified = "verified: 4 of 313 images re-scored, P(catch 5% forged) = 0.19"
    show = [
        "leaderboard",
        "show",
        "--tasks-dir",
        official_tasks,
        "--db",
        board,
        "--task",
        "genai-bench",
        "--split",
        "hard",
    ]
    rows = json.loads(cli(capsys, *show, "--format", "json")[1])["rows"]
    assert [(r["rank"], r["verdict"]["label"], r["trust"]["label"]) for r in rows] == [
        (1, "official", verified),
        (None, "unofficial: scorer.name=dummy", "self-reported"),
    ]
    table = list(csv.DictReader(io.StringIO(cli(capsys, *show, "--format", "csv")[1])))
    assert [(t["#"], t["verdict"], t["trust"]) for t in table] == [
        ("1", "official", verified),
        ("-", "unofficial: scorer.name=dummy", "self-reported"),
    ]
    md = cli(capsys, *show)[1].splitlines()
    assert [c.strip() for c in md[0].strip("|").split("|")][:7] == [
        "#",
        "id",
        "name",
        "model",
        "scorer",
        "verdict",
        "trust",
    ]
    assert (
        f"| dummy | official | {verified} |" in md[2] and "| unofficial: scorer.name=dummy | self-reported |" in md[3]
    )
    page = cli(capsys, *show, "--format", "html")[1]
    assert "<th>verdict</th><th>trust</th>" in page
    assert f"<td>official</td><td>{verified}</td>" in page
    assert "<td>unofficial: scorer.name=dummy</td><td>self-reported</td>" in page


def test_entries_from_a_board_without_verdicts_stay_listed_unranked(candidate, tmp_path, capsys, show_json):
    """A board made before verdicts were recorded: its rows survive the migration, shown as not recorded."""
    path = tmp_path / "board.sqlite"
    old = db.connect(path, migrations=db.MIGRATIONS[:1])
    old.execute("INSERT INTO boards (task, task_version) VALUES ('genai-bench', 1)")
    old.execute(
        "INSERT INTO submissions (name, task, task_version, variant, split, metric, model, scorer, "
        "official_scorer, n_samples, n_prompts, summary, manifest, content_sha256, submitted, verified_images,"
        " verify_seed) VALUES ('old', 'genai-bench', 1, '527', 'hard', 'vqascore', 'dummy', 'dummy', 1, 1, "
        "313, '{}', '{}', 'x', '2026-01-01', 3, 9)"
    )
    old.close()
    conn = db.connect(path)
    assert db.schema_version(conn) == len(db.MIGRATIONS) == 2
    db.add_submission(conn, candidate, name="new")
    rows = show_json(capsys, path)
    assert [(r["name"], r["rank"], r["verdict"]["label"], r["trust"]["label"]) for r in rows] == [
        ("new", 1, "official", "self-reported"),
        ("old", None, "not recorded (added before verdicts)", "verified: 3 of 313 images re-scored"),
    ]


def test_verify_catches_consistent_but_invented_scores(runs, tmp_path, capsys, official_tasks):
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
    code, _, err = cli(
        capsys,
        "leaderboard",
        "add",
        sub,
        "--tasks-dir",
        official_tasks,
        "--db",
        board,
        "--verify",
        3,
        "--verify-seed",
        0,
    )
    assert code == 1 and "re-scored image" in err and "tolerance 0.01" in err
    assert not board.exists()
    assert cli(capsys, "leaderboard", "add", sub, "--tasks-dir", official_tasks, "--db", board)[0] == 0, (
        "without --verify it looks fine"
    )


def test_verify_needs_images(subs, tmp_path, capsys, official_tasks):
    code, _, err = cli(
        capsys,
        "leaderboard",
        "add",
        subs["seed1"],
        "--tasks-dir",
        official_tasks,
        "--db",
        tmp_path / "b.sqlite",
        "--verify",
        2,
    )
    assert code == 1 and "--include-images" in err
    assert not (tmp_path / "b.sqlite").exists()


def test_a_warning_before_a_rejection_is_not_printed(subs, tmp_path, capsys, monkeypatch, official_tasks):
    """A library warning raised on the way to a one-line error is noise: the error is printed alone; when the
    command succeeds, the warning still reaches the user."""
    import warnings

    from ts_eval.leaderboard import validate

    real = validate.validate_run

    def warns_then_validates(*args, **kwargs):
        warnings.warn("a library complains on the way", UserWarning, stacklevel=2)
        return real(*args, **kwargs)

    monkeypatch.setattr(validate, "validate_run", warns_then_validates)
    board = tmp_path / "board.sqlite"
    with warnings.catch_warnings(record=True) as escaped:  # what would reach stderr
        warnings.simplefilter("always")
        code, _, err = cli(capsys, "leaderboard", "add", subs["seed0"], "--db", board)  # unofficial: rejected
    assert code == 1 and err.count("\n") == 1 and err.startswith("ts-eval: error:"), err
    assert [str(w.message) for w in escaped] == []
    with pytest.warns(UserWarning, match="a library complains on the way"):
        code, _, err = cli(capsys, "leaderboard", "add", subs["seed0"], "--db", board, "--tasks-dir", official_tasks)
    assert code == 0, err


def test_docs_table_matches_the_detection_probability():
    """docs/leaderboard.md's table of sampled-check strength is what the code computes."""
    from ts_eval.leaderboard.trust import detection_probability, images_needed

    text = (ROOT / "docs" / "leaderboard.md").read_text()
    rows = [line for line in text.splitlines() if line.startswith("| ") and "%" in line.split("|")[2]]
    assert len(rows) == 6
    for line in rows:
        cells = [c.strip() for c in line.strip("|").split("|")]
        images, fraction = int(cells[0].split()[0]), float(cells[1].rstrip("%")) / 100
        for k, shown in zip((8, 32, 100), cells[2:5]):
            assert float(shown) == pytest.approx(detection_probability(images, k, fraction), abs=0.006), line
        assert int(cells[5]) == images_needed(0.95, images, fraction)
