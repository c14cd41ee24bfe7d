"""The board: one SQLite file, schema created and migrated by the code, one transaction per change.

Every write runs inside `BEGIN IMMEDIATE`, which takes SQLite's write lock up front, so two processes
adding at once queue behind each other (up to `BUSY_TIMEOUT_S`) instead of interleaving; a failure
anywhere inside rolls the whole change back, so a rejected submission leaves the file as it was.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ts_eval.errors import CheckFailed, UsageError
from ts_eval.leaderboard.trust import Trust
from ts_eval.leaderboard.validate import Candidate

BUSY_TIMEOUT_S = 60.0

_V1 = """
CREATE TABLE boards (
    task TEXT PRIMARY KEY,
    task_version INTEGER NOT NULL          -- pinned by the first accepted submission of the task
);
CREATE TABLE submissions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    task TEXT NOT NULL REFERENCES boards(task),
    task_version INTEGER NOT NULL,
    variant TEXT NOT NULL,
    split TEXT NOT NULL,
    metric TEXT NOT NULL,
    model TEXT NOT NULL,
    scorer TEXT NOT NULL,
    official_scorer INTEGER NOT NULL,      -- from v2: the recomputed verdict's `official` (see `verdict`)
    n_samples INTEGER NOT NULL,
    n_prompts INTEGER NOT NULL,
    summary TEXT NOT NULL,                 -- summary.json, recomputed and checked
    manifest TEXT NOT NULL,                -- manifest.json as submitted, for audits
    content_sha256 TEXT NOT NULL,          -- sha256 of samples.jsonl
    ts_eval_version TEXT,
    run_created TEXT,
    submitted TEXT NOT NULL,
    verified_images INTEGER NOT NULL DEFAULT 0,
    verify_seed INTEGER,
    UNIQUE (task, variant, split, content_sha256)
);
CREATE TABLE group_scores (
    submission_id INTEGER NOT NULL REFERENCES submissions(id) ON DELETE CASCADE,
    grp TEXT NOT NULL,
    mean REAL NOT NULL,
    n INTEGER NOT NULL,
    ci_lo REAL,
    ci_hi REAL,
    PRIMARY KEY (submission_id, grp)
);
CREATE INDEX submissions_board ON submissions (task, variant, split);
"""

Migration = Callable[[sqlite3.Connection], None]


def _create_v1(conn: sqlite3.Connection) -> None:
    for statement in _V1.split(";"):
        if statement.strip():
            conn.execute(statement)


def _trust_and_verdict_v2(conn: sqlite3.Connection) -> None:
    """The trust model: each entry's verdict (recomputed at `add`) and what a sampled --verify proves.
    Rows added before have NULL here: their verdict was never recomputed, so the board leaves them unranked."""
    conn.execute("ALTER TABLE submissions ADD COLUMN verdict TEXT")  # Verdict.to_dict() as JSON
    conn.execute("ALTER TABLE submissions ADD COLUMN forged_fraction REAL")  # f the detection probability is for
    conn.execute("ALTER TABLE submissions ADD COLUMN detection_probability REAL")  # of catching f with the K re-scored


# Migration i takes the schema from version i to i + 1; append, never edit, once released.
MIGRATIONS: list[Migration] = [_create_v1, _trust_and_verdict_v2]


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    try:
        conn.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as exc:
        if "locked" not in str(exc):
            raise
        raise UsageError(f"the board is locked by another process (waited {BUSY_TIMEOUT_S:g} s); try again") from None
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def schema_version(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT version FROM schema_version").fetchone()
    return int(row[0]) if row else 0


def _current(conn: sqlite3.Connection) -> int:
    exists = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'").fetchone()
    return schema_version(conn) if exists else 0


def migrate(conn: sqlite3.Connection, migrations: list[Migration] = MIGRATIONS) -> int:
    """Bring the schema to the newest version in one transaction; returns that version."""
    if _current(conn) == len(migrations):
        return len(migrations)  # up to date: no write lock, so `show` works on a read-only board
    with transaction(conn):  # re-read under the lock: another process may have migrated meanwhile
        conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        current = schema_version(conn)
        if current > len(migrations):
            raise UsageError(
                f"the board's schema is version {current}, newer than this ts-eval knows "
                f"({len(migrations)}); upgrade ts-eval"
            )
        for step in migrations[current:]:
            step(conn)
        if current == 0:
            conn.execute("INSERT INTO schema_version (version) VALUES (?)", (len(migrations),))
        elif current < len(migrations):
            conn.execute("UPDATE schema_version SET version = ?", (len(migrations),))
    return len(migrations)


def connect(path: str | Path, *, create: bool = True, migrations: list[Migration] = MIGRATIONS) -> sqlite3.Connection:
    """Open (and when `create`, create or migrate) a board file."""
    path = Path(path)
    if not create and not path.is_file():
        raise UsageError(f"--db {path}: no such board; `ts-eval leaderboard add` creates one")
    if path.is_dir():
        raise UsageError(f"--db {path} is a directory; name the board's .sqlite file")
    if create:
        path.parent.mkdir(parents=True, exist_ok=True)
    try:
        # isolation_level=None: this module issues BEGIN/COMMIT itself, so a transaction is exactly one change.
        conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        conn.execute("PRAGMA foreign_keys = ON")
        migrate(conn, migrations)
    except sqlite3.DatabaseError as exc:
        raise UsageError(f"--db {path} is not a ts-eval board ({exc})") from None
    return conn


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def add_submission(conn: sqlite3.Connection, candidate: Candidate, *, name: str, trust: Trust | None = None) -> int:
    """Store one validated submission (self-reported unless `trust` says what was re-scored); returns its id.
    Raises CheckFailed (nothing stored) on a conflict."""
    trust = trust or Trust.self_reported(candidate.n_prompts * candidate.n_samples)
    with transaction(conn):
        row = conn.execute("SELECT task_version FROM boards WHERE task = ?", (candidate.task,)).fetchone()
        if row is None:
            conn.execute(
                "INSERT INTO boards (task, task_version) VALUES (?, ?)", (candidate.task, candidate.task_version)
            )
        elif row[0] != candidate.task_version:
            raise CheckFailed(
                f"submission rejected: task {candidate.task} version {candidate.task_version} "
                f"is not the board's version {row[0]}"
            )
        same = conn.execute(
            "SELECT id FROM submissions WHERE task = ? AND variant = ? AND split = ? AND content_sha256 = ?",
            (candidate.task, candidate.variant, candidate.split, candidate.content_sha256),
        ).fetchone()
        if same is not None:
            raise CheckFailed(f"submission rejected: the same samples are already on the board as #{same[0]}")
        fields = asdict(candidate)
        cursor = conn.execute(
            "INSERT INTO submissions (name, task, task_version, variant, split, metric, model, scorer, official_scorer,"
            " n_samples, n_prompts, summary, manifest, content_sha256, ts_eval_version, run_created, submitted,"
            " verified_images, verify_seed, verdict, forged_fraction, detection_probability)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                name,
                fields["task"],
                fields["task_version"],
                fields["variant"],
                fields["split"],
                fields["metric"],
                fields["model"],
                fields["scorer"],
                int(candidate.verdict.official),
                fields["n_samples"],
                fields["n_prompts"],
                json.dumps(fields["summary"]),
                json.dumps(fields["manifest"]),
                fields["content_sha256"],
                fields["ts_eval_version"],
                fields["run_created"],
                _now(),
                trust.rescored,
                trust.seed,
                json.dumps(candidate.verdict.to_dict()),
                trust.forged_fraction,
                trust.detection_probability,
            ),
        )
        assert cursor.lastrowid is not None  # set by the INSERT just executed
        submission_id = int(cursor.lastrowid)
        conn.executemany(
            "INSERT INTO group_scores (submission_id, grp, mean, n, ci_lo, ci_hi) VALUES (?, ?, ?, ?, ?, ?)",
            [
                (submission_id, group, stats["mean"], stats["n"], *stats.get("ci95", [None, None]))
                for group, stats in candidate.summary["groups"].items()
            ],
        )
    return submission_id


def remove_submission(conn: sqlite3.Connection, submission_id: int) -> str:
    """Delete one entry (and its group scores); returns its name."""
    with transaction(conn):
        row = conn.execute("SELECT name FROM submissions WHERE id = ?", (submission_id,)).fetchone()
        if row is None:
            raise UsageError(f"no submission #{submission_id} on this board")
        conn.execute("DELETE FROM submissions WHERE id = ?", (submission_id,))
    return str(row[0])


def submissions(conn: sqlite3.Connection, task: str, split: str, variant: str | None = None) -> list[dict[str, Any]]:
    """Every entry of one board (task, split[, variant]) with its group scores, in insertion order."""
    query = "SELECT * FROM submissions WHERE task = ? AND split = ?" + (" AND variant = ?" if variant else "")
    params = (task, split, variant) if variant else (task, split)
    conn.row_factory = sqlite3.Row
    try:
        rows = [dict(r) for r in conn.execute(query + " ORDER BY id", params)]
        for row in rows:
            row["verdict"] = json.loads(row["verdict"]) if row["verdict"] else None  # None: added before v2
            row["groups"] = {
                g["grp"]: {"mean": g["mean"], "n": g["n"], "ci95": [g["ci_lo"], g["ci_hi"]]}
                for g in conn.execute("SELECT * FROM group_scores WHERE submission_id = ?", (row["id"],))
            }
    finally:
        conn.row_factory = None
    return rows


def count(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT COUNT(*) FROM submissions").fetchone()[0])
