"""`ts-eval submit` and `leaderboard add` validation: one hand-made archive per rejection reason."""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
import stat
import subprocess
import tempfile
import warnings
import zipfile
from pathlib import Path
from typing import ClassVar

import pytest
import yaml

from tests.support import record_edit, summarize_run
from ts_eval import run as evaluate_run
from ts_eval.cli import main
from ts_eval.errors import UsageError
from ts_eval.leaderboard.archive import checksums_text
from ts_eval.store import RunDir

RUN_FILES = ("manifest.json", "prompts.jsonl", "samples.jsonl", "summary.json", "images.jsonl")


def dummy_run(out: Path, **options) -> Path:
    evaluate_run(
        "genai-bench",
        **{"variant": "527", "split": "hard", **options},
        model="dummy",
        scorer="dummy",
        out=str(out),
        progress=False,
        cache=False,
    )
    return out


@pytest.fixture(scope="module")
def hard_run(tmp_path_factory) -> Path:
    return dummy_run(tmp_path_factory.mktemp("runs") / "hard")


def make_official_tasks(folder: Path, scorer: dict | None = None) -> Path:
    """A copy of the genai-bench spec whose official recipe is what the dummy generator and scorer produce, so a
    dummy run is official under it (the shipped recipe names VQAScore and JPEG, which no test here can run);
    `scorer` replaces the recipe's scorer part."""
    from ts_eval.scorers.dummy import DummyScorer
    from ts_eval.tasks import load_task
    from ts_eval.tasks.spec import bundled_tasks_dir

    spec = load_task("genai-bench")
    raw = yaml.safe_load(spec.path.read_text())
    raw["official"] = {
        "n_samples": 1,
        "image_format": {"one_of": ["png", "jpeg"]},
        "prompt_rewrites": False,
        "scorer": scorer or DummyScorer({}, task=spec).describe(),
    }
    for variant in raw["variants"].values():
        if variant.get("bundled"):
            variant["bundled"] = str(bundled_tasks_dir() / variant["bundled"])
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "genai_bench.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    return folder


@pytest.fixture(scope="module")
def official_tasks(tmp_path_factory) -> Path:
    return make_official_tasks(tmp_path_factory.mktemp("official-tasks"))


def cli(capsys, *args) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def members_of(run: Path) -> dict[str, bytes]:
    return {name: (run / name).read_bytes() for name in RUN_FILES}


def jsonl(rows: list[dict]) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in rows).encode()


def rows(data: bytes) -> list[dict]:
    return [json.loads(line) for line in data.decode().splitlines() if line.strip()]


def resummarized(members: dict[str, bytes]) -> dict[str, bytes]:
    """The same members with their sha256 re-recorded in the manifest and summary.json recomputed where the run
    still has one, as a deliberate forger would do: only the edit under test is wrong."""
    with tempfile.TemporaryDirectory() as tmp:
        for name in ("manifest.json", "prompts.jsonl", "samples.jsonl", "images.jsonl"):
            (Path(tmp) / name).write_bytes(members[name])
        for name in ("prompts.jsonl", "images.jsonl"):
            record_edit(tmp, name)
        try:
            summarize_run(RunDir(tmp))
        except UsageError:
            record_edit(tmp, "samples.jsonl")  # no summary for a run this broken: the board must refuse it
            return {**members, "manifest.json": (Path(tmp) / "manifest.json").read_bytes()}
        return {**members, **{n: (Path(tmp) / n).read_bytes() for n in ("summary.json", "manifest.json")}}


def pack(
    path: Path,
    members: dict[str, bytes],
    *,
    extra: list[tuple[zipfile.ZipInfo, bytes]] = (),
    checksums: dict[str, str] | None = None,
    compression: int = zipfile.ZIP_DEFLATED,
) -> Path:
    """A hand-made submission: members, extra raw entries, and a checksums file (correct unless given)."""
    digests = (
        checksums
        if checksums is not None
        else {**{n: sha(d) for n, d in members.items()}, **{i.filename: sha(d) for i, d in extra}}
    )
    with zipfile.ZipFile(path, "w", compression) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
        for info, data in extra:
            zf.writestr(info, data)
        zf.writestr("checksums", checksums_text(digests))
    return path


def unix_entry(name: str, mode: int) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.create_system = 3
    info.external_attr = mode << 16
    return info


def db_state(db: Path) -> bytes | None:
    return db.read_bytes() if db.exists() else None


# -- submit ------------------------------------------------------------------------------------------


def test_submit_packs_run_files_with_checksums(hard_run, tmp_path, capsys):
    code, out, _ = cli(capsys, "submit", hard_run, "--out", tmp_path / "sub.zip")
    assert code == 0, out
    with zipfile.ZipFile(tmp_path / "sub.zip") as zf:
        names = set(zf.namelist())
        assert names == set(RUN_FILES) | {"checksums"}
        listed = dict(reversed(line.split("  ", 1)) for line in zf.read("checksums").decode().splitlines())
        assert set(listed) == set(RUN_FILES)
        for name in RUN_FILES:
            data = zf.read(name)
            assert data == (hard_run / name).read_bytes()
            assert listed[name] == sha(data)
    cli(capsys, "submit", hard_run, "--out", tmp_path / "again.zip")
    assert (tmp_path / "sub.zip").read_bytes() == (tmp_path / "again.zip").read_bytes(), "packing is reproducible"


def test_submit_includes_images_on_request(hard_run, tmp_path, capsys):
    code, out, _ = cli(capsys, "submit", hard_run, "--out", tmp_path / "sub.zip", "--include-images")
    assert code == 0
    image_rows = rows((hard_run / "images.jsonl").read_bytes())
    with zipfile.ZipFile(tmp_path / "sub.zip") as zf:
        images = [n for n in zf.namelist() if n.startswith("images/")]
        assert sorted(images) == sorted(r["path"] for r in image_rows)
        assert all(sha(zf.read(r["path"])) == r["sha256"] for r in image_rows[:5])
    assert f"{len(image_rows)} images" in out


def test_submit_refuses_incomplete_run(hard_run, tmp_path, capsys):
    run = tmp_path / "incomplete"
    shutil.copytree(hard_run, run, ignore=shutil.ignore_patterns("images"))
    samples = rows((run / "samples.jsonl").read_bytes())
    (run / "samples.jsonl").write_bytes(jsonl(samples[:-1]))
    record_edit(run)  # as if scoring had stopped short: the file is intact, only incomplete
    code, _, err = cli(capsys, "submit", run, "--out", tmp_path / "sub.zip")
    assert code == 1
    assert len(err.strip().splitlines()) == 1 and "missing samples" in err and samples[-1]["prompt_id"] in err
    assert not (tmp_path / "sub.zip").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["incomplete"], "no temporary file is left behind"


def test_submit_refuses_stale_summary(hard_run, tmp_path, capsys):
    run = tmp_path / "stale"
    shutil.copytree(hard_run, run, ignore=shutil.ignore_patterns("images"))
    samples = rows((run / "samples.jsonl").read_bytes())
    samples[0]["value"] = 1.0 - samples[0]["value"]
    (run / "samples.jsonl").write_bytes(jsonl(samples))
    code, _, err = cli(capsys, "submit", run, "--out", tmp_path / "sub.zip")
    assert code == 1 and "samples.jsonl was changed" in err  # the manifest's record catches an edit
    record_edit(run)
    code, _, err = cli(capsys, "submit", run, "--out", tmp_path / "sub.zip")
    assert code == 1 and "summary.json does not equal" in err  # a deliberate one, the stale summary
    assert not (tmp_path / "sub.zip").exists()


def test_submit_refuses_images_that_do_not_match(hard_run, tmp_path, capsys):
    run = tmp_path / "bad-image"
    shutil.copytree(hard_run, run)
    first = rows((run / "images.jsonl").read_bytes())[0]["path"]
    (run / first).write_bytes(b"not the image that was scored")
    code, _, err = cli(capsys, "submit", run, "--out", tmp_path / "sub.zip", "--include-images")
    assert code == 1 and first in err
    code, _, err = cli(capsys, "submit", run, "--out", tmp_path / "sub.zip")
    assert code == 1 and "does not match its sha256" in err, "a damaged run is refused even without its images"


def test_submit_needs_a_run_directory(tmp_path, capsys):
    code, _, err = cli(capsys, "submit", tmp_path, "--out", tmp_path / "sub.zip")
    assert code == 2 and "not a run directory" in err


# -- official or labelled: the verdict is recomputed from the manifest -----------------------------


def show_rows(capsys, db: Path, tasks: Path, split: str = "hard") -> list[dict]:
    code, out, err = cli(
        capsys,
        "leaderboard",
        "show",
        "--db",
        db,
        "--tasks-dir",
        tasks,
        "--task",
        "genai-bench",
        "--split",
        split,
        "--format",
        "json",
    )
    assert code == 0, err
    return json.loads(out)["rows"]


def test_dummy_scored_run_is_unofficial_rejected_by_default_and_listed_labelled_when_allowed(
    hard_run, tmp_path, capsys, official_tasks
):
    vqascore = make_official_tasks(tmp_path / "vqascore-tasks", scorer={"name": "vqascore", "model": "clip-flant5-xxl"})
    db = tmp_path / "board.sqlite"
    sub = tmp_path / "sub.zip"
    code, out, _ = cli(capsys, "submit", hard_run, "--out", sub, "--tasks-dir", vqascore)
    assert code == 0 and "verdict: unofficial: scorer.name=dummy" in out and "--allow-unofficial" in out
    code, _, err = cli(capsys, "leaderboard", "add", sub, "--db", db, "--tasks-dir", vqascore)
    assert code == 1 and err.count("\n") == 1
    assert "unofficial: scorer.name=dummy; the board lists only official runs" in err and "--allow-unofficial" in err
    assert not db.exists()
    # With the flag it is listed, labelled and unranked, below an official entry even one that scores lower.
    code, out, err = cli(capsys, "leaderboard", "add", sub, "--db", db, "--tasks-dir", vqascore, "--allow-unofficial")
    assert code == 0, err
    assert "unofficial: scorer.name=dummy" in out
    rows = show_rows(capsys, db, vqascore)
    assert [(r["rank"], r["official"], r["verdict"]["label"]) for r in rows] == [
        (None, False, "unofficial: scorer.name=dummy")
    ]
    assert rows[0]["verdict"]["differences"] == [
        "scorer.name=dummy (official: vqascore)",
        "scorer.model=missing (official: clip-flant5-xxl)",
    ]
    for fmt in ("md", "csv", "html"):
        code, text, _ = cli(
            capsys,
            "leaderboard",
            "show",
            "--db",
            db,
            "--tasks-dir",
            vqascore,
            "--task",
            "genai-bench",
            "--split",
            "hard",
            "--format",
            fmt,
        )
        assert code == 0 and "unofficial: scorer.name=dummy" in text and "self-reported" in text


def test_a_verdict_or_flag_stored_in_the_manifest_is_never_trusted(hard_run, tmp_path, capsys):
    """A run scored by a tiny random model, whose manifest claims to be official, is labelled by its scorer."""
    tasks = make_official_tasks(tmp_path / "tasks", scorer={"name": "vqascore", "model": "clip-flant5-xxl"})
    members = members_of(hard_run)
    manifest = json.loads(members["manifest.json"])
    manifest["scorer"] = {"name": "vqascore", "model": "tiny-random", "metric": "vqascore"}
    manifest["non_default_settings"] = {"variant": "527", "split": "hard", "scorer_differs_from_official": False}
    manifest["verdict"] = {"official": True, "label": "official", "differences": []}
    archive = pack(tmp_path / "sub.zip", {**members, "manifest.json": json.dumps(manifest).encode()})
    db = tmp_path / "board.sqlite"
    code, _, err = cli(capsys, "leaderboard", "add", archive, "--db", db, "--tasks-dir", tasks)
    assert code == 1 and "unofficial: scorer.model=tiny-random" in err and not db.exists()
    assert cli(capsys, "leaderboard", "add", archive, "--db", db, "--tasks-dir", tasks, "--allow-unofficial")[0] == 0
    [row] = show_rows(capsys, db, tasks)
    assert row["verdict"]["label"] == "unofficial: scorer.model=tiny-random" and row["rank"] is None
    code, md, _ = cli(
        capsys, "leaderboard", "show", "--db", db, "--tasks-dir", tasks, "--task", "genai-bench", "--split", "hard"
    )
    assert "| vqascore | unofficial: scorer.model=tiny-random | self-reported |" in md


@pytest.mark.parametrize("option, label", [(("--limit", 20), "limit=20"), (("--skill", "counting"), "skill=counting")])
def test_subset_runs_refused_by_submit_and_add_unless_allowed(option, label, official_tasks, tmp_path, capsys):
    run = dummy_run(tmp_path / "subset", **{option[0][2:]: option[1]})
    sub = tmp_path / "sub.zip"
    code, out, err = cli(capsys, "submit", run, "--out", sub)
    assert code == 1 and err.count("\n") == 1 and f"is a subset ({label})" in err and "--allow-unofficial" in err
    assert not sub.exists() and out == ""
    code, out, _ = cli(capsys, "submit", run, "--out", sub, "--allow-unofficial", "--tasks-dir", official_tasks)
    assert code == 0 and f"verdict: official; subset: {label}" in out
    db = tmp_path / "board.sqlite"
    assert (
        cli(
            capsys,
            "leaderboard",
            "add",
            pack(tmp_path / "full.zip", members_of(dummy_run(tmp_path / "full"))),
            "--db",
            db,
            "--tasks-dir",
            official_tasks,
        )[0]
        == 0
    )
    before = db_state(db)
    code, _, err = cli(capsys, "leaderboard", "add", sub, "--db", db, "--tasks-dir", official_tasks)
    assert code == 1 and err.count("\n") == 1 and f"official; subset: {label}; the board lists only" in err
    assert db_state(db) == before
    code, _, err = cli(
        capsys, "leaderboard", "add", sub, "--db", db, "--tasks-dir", official_tasks, "--allow-unofficial"
    )
    assert code == 0, err
    rows = show_rows(capsys, db, official_tasks)
    assert [(r["rank"], r["verdict"]["label"]) for r in rows] == [(1, "official"), (None, f"official; subset: {label}")]
    assert rows[1]["verdict"]["subset"] == label and rows[1]["n_prompts"] < rows[0]["n_prompts"]


def test_a_subset_must_hold_exactly_the_prompts_its_selection_picks(tmp_path, capsys, official_tasks):
    """The manifest's limit is checked against the prompts: a subset cannot pose as a whole set, nor the reverse."""
    members = members_of(dummy_run(tmp_path / "subset", limit=20))
    manifest = json.loads(members["manifest.json"])
    manifest["settings"]["task"]["limit"] = None  # claims the whole split, holds 20 prompts
    archive = pack(tmp_path / "a.zip", {**members, "manifest.json": json.dumps(manifest).encode()})
    code, _, err = cli(capsys, "leaderboard", "add", archive, "--db", tmp_path / "db", "--tasks-dir", official_tasks)
    assert code == 1 and "missing prompts: 293 of the 313" in err
    manifest["settings"]["task"]["limit"] = 10  # claims fewer than it holds
    archive = pack(tmp_path / "b.zip", {**members, "manifest.json": json.dumps(manifest).encode()})
    code, _, err = cli(
        capsys,
        "leaderboard",
        "add",
        archive,
        "--db",
        tmp_path / "db",
        "--tasks-dir",
        official_tasks,
        "--allow-unofficial",
    )
    assert code == 1 and "which is not in the official genai-bench 527 hard (limit=10) set" in err
    manifest["settings"]["task"]["limit"] = "20"
    archive = pack(tmp_path / "c.zip", {**members, "manifest.json": json.dumps(manifest).encode()})
    code, _, err = cli(
        capsys,
        "leaderboard",
        "add",
        archive,
        "--db",
        tmp_path / "db",
        "--tasks-dir",
        official_tasks,
        "--allow-unofficial",
    )
    assert code == 1 and err.count("\n") == 1
    assert not (tmp_path / "db").exists()


def test_a_declared_split_is_a_board_of_its_own(hard_run, tmp_path, capsys, official_tasks):
    db = tmp_path / "board.sqlite"
    whole = dummy_run(tmp_path / "all", split="all")
    for run in (hard_run, whole):
        assert (
            cli(
                capsys,
                "leaderboard",
                "add",
                pack(tmp_path / f"{run.name}.zip", members_of(run)),
                "--db",
                db,
                "--tasks-dir",
                official_tasks,
            )[0]
            == 0
        )
    hard, everything = show_rows(capsys, db, official_tasks, "hard"), show_rows(capsys, db, official_tasks, "all")
    assert [(r["rank"], r["n_prompts"], r["verdict"]["split"]) for r in hard] == [(1, 313, "hard")]
    assert [(r["rank"], r["n_prompts"], r["verdict"]["split"]) for r in everything] == [(1, 527, None)]


# -- acceptance: submit -> add -> show; tampered archives rejected, the board unchanged -------------


def test_submit_add_show_and_rejections(hard_run, tmp_path, capsys, monkeypatch, official_tasks):
    db = tmp_path / "board.sqlite"
    sub = tmp_path / "sub.zip"
    assert cli(capsys, "submit", hard_run, "--out", sub)[0] == 0
    code, out, err = cli(
        capsys, "leaderboard", "add", sub, "--tasks-dir", official_tasks, "--db", db, "--name", "dummy-hard"
    )
    assert code == 0, err
    assert "; official; self-reported: no image was re-scored" in out
    code, out, _ = cli(
        capsys,
        "leaderboard",
        "show",
        "--tasks-dir",
        official_tasks,
        "--db",
        db,
        "--task",
        "genai-bench",
        "--split",
        "hard",
        "--format",
        "json",
    )
    shown = json.loads(out)["rows"]
    summary = json.loads((hard_run / "summary.json").read_text())
    assert len(shown) == 1
    assert shown[0]["name"] == "dummy-hard" and shown[0]["model"] == "dummy" and shown[0]["rank"] == 1
    # `hard` is a declared split, a board of its own: official, not a subset.
    assert shown[0]["verdict"] == {
        "official": True,
        "label": "official",
        "differences": [],
        "subset": None,
        "split": "hard",
    }
    assert shown[0]["trust"]["label"] == "self-reported" and shown[0]["trust"]["images"] == 313
    assert shown[0]["score"] == summary["groups"]["all"]["mean"]
    assert shown[0]["ci95"] == summary["groups"]["all"]["ci95"]
    assert shown[0]["groups"] == {g: s["mean"] for g, s in summary["groups"].items()}

    # One sample value changed: as is, the checksum catches it; with the checksum redone, the summary does.
    members = members_of(hard_run)
    samples = rows(members["samples.jsonl"])
    samples[5]["value"] = round(1.0 - samples[5]["value"], 6)
    before = db_state(db)
    as_is = pack(
        tmp_path / "as-is.zip",
        {**members, "samples.jsonl": jsonl(samples)},
        checksums={n: sha(d) for n, d in members.items()},
    )
    code, _, err = cli(capsys, "leaderboard", "add", as_is, "--tasks-dir", official_tasks, "--db", db)
    assert code == 1 and "checksum mismatch for 'samples.jsonl'" in err
    tampered = pack(tmp_path / "tampered.zip", {**members, "samples.jsonl": jsonl(samples)})
    code, _, err = cli(capsys, "leaderboard", "add", tampered, "--tasks-dir", official_tasks, "--db", db)
    assert code == 1 and "samples.jsonl was changed" in err and len(err.strip().splitlines()) == 1
    manifest = json.loads(members["manifest.json"])
    manifest["files"]["samples.jsonl"] = sha(jsonl(samples))  # a forger redoes the manifest's record too
    forged = pack(
        tmp_path / "forged.zip",
        {**members, "samples.jsonl": jsonl(samples), "manifest.json": json.dumps(manifest).encode()},
    )
    code, _, err = cli(capsys, "leaderboard", "add", forged, "--tasks-dir", official_tasks, "--db", db)
    assert code == 1 and "summary.json does not equal" in err and len(err.strip().splitlines()) == 1
    assert db_state(db) == before

    # A zip-slip member: extraction happens under a temp folder two levels below tmp_path.
    scratch = tmp_path / "a" / "b"
    scratch.mkdir(parents=True)
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    monkeypatch.chdir(scratch)
    slip = pack(tmp_path / "slip.zip", members, extra=[(zipfile.ZipInfo("../../x"), b"escaped")])
    code, _, err = cli(capsys, "leaderboard", "add", slip, "--tasks-dir", official_tasks, "--db", db)
    assert code == 1 and "'..'" in err
    assert not list(tmp_path.rglob("x")) and not Path("/x").exists() and not any(scratch.iterdir())
    assert db_state(db) == before
    assert sqlite3.connect(db).execute("SELECT COUNT(*) FROM submissions").fetchone()[0] == 1


# -- one hand-made archive per rejection reason ------------------------------------------------------


def _edit_samples(members, edit) -> dict[str, bytes]:
    samples = rows(members["samples.jsonl"])
    edit(samples)
    return resummarized({**members, "samples.jsonl": jsonl(samples)})


def _edit_prompts(members, edit, *, drop_samples_of: str | None = None) -> dict[str, bytes]:
    prompts = rows(members["prompts.jsonl"])
    edit(prompts)
    samples = [s for s in rows(members["samples.jsonl"]) if s["prompt_id"] != drop_samples_of]
    return resummarized({**members, "prompts.jsonl": jsonl(prompts), "samples.jsonl": jsonl(samples)})


def _edit_manifest(members, edit) -> dict[str, bytes]:
    manifest = json.loads(members["manifest.json"])
    edit(manifest)
    return {**members, "manifest.json": json.dumps(manifest).encode()}


def _set(row: dict, key: str, value) -> None:
    row[key] = value


def _archive(case: str, members: dict[str, bytes], path: Path) -> Path:
    """Build the archive of one rejection case from an honest run's members."""
    if case == "checksum mismatch":
        samples = rows(members["samples.jsonl"])
        samples[0]["value"] = 0.999
        digests = {n: sha(d) for n, d in members.items()}
        return pack(path, {**members, "samples.jsonl": jsonl(samples)}, checksums=digests)
    if case == "summary not recomputable":
        summary = json.loads(members["summary.json"])
        summary["groups"]["all"]["mean"] += 0.01
        return pack(path, {**members, "summary.json": json.dumps(summary).encode()})
    if case == "prompt text not official":
        return pack(path, _edit_prompts(members, lambda p: _set(p[3], "prompt", p[3]["prompt"] + " (easier)")))
    if case == "prompt tags not official":
        return pack(path, _edit_prompts(members, lambda p: _set(p[3], "tags", ["advanced"])))
    if case == "prompt not in the official set":

        def add(prompts):
            prompts.append({"prompt_id": "99999", "prompt": "an extra prompt", "tags": ["advanced"], "metadata": {}})

        edited = _edit_prompts(members, add)
        samples = rows(edited["samples.jsonl"]) + [
            {"prompt_id": "99999", "sample_index": 0, "metric": "vqascore", "value": 1.0}
        ]
        return pack(path, resummarized({**edited, "samples.jsonl": jsonl(samples)}))
    if case == "missing prompts":
        first = rows(members["prompts.jsonl"])[0]["prompt_id"]
        return pack(path, _edit_prompts(members, lambda p: p.pop(0), drop_samples_of=first))
    if case == "missing samples":
        return pack(path, _edit_samples(members, lambda s: s.pop(7)))
    if case == "value above range":
        return pack(path, _edit_samples(members, lambda s: _set(s[2], "value", 1.5)))
    if case == "value below range":
        return pack(path, _edit_samples(members, lambda s: _set(s[2], "value", -0.25)))
    if case == "value not a number":  # no summary can be computed from it, so none is recomputed
        samples = rows(members["samples.jsonl"])
        samples[2]["value"] = "high"
        return pack(path, {**members, "samples.jsonl": jsonl(samples)})
    if case == "value NaN":
        samples = rows(members["samples.jsonl"])
        samples[2]["value"] = float("nan")
        return pack(path, {**members, "samples.jsonl": jsonl(samples)})
    if case == "sample index out of range":
        return pack(path, _edit_samples(members, lambda s: _set(s[2], "sample_index", 3)))
    if case == "task version":
        return pack(path, _edit_manifest(members, lambda m: _set(m["settings"]["task"], "version", 2)))
    if case == "metric not the board's":  # e.g. CLIPScore on GenAI-Bench: a valid run, not this board's ranking
        return pack(path, _edit_manifest(members, lambda m: _set(m["scorer"], "metric", "clipscore")))
    if case == "unknown task":
        return pack(path, _edit_manifest(members, lambda m: _set(m["settings"]["task"], "name", "no-such-bench")))
    if case == "absolute path":
        return pack(path, members, extra=[(zipfile.ZipInfo("/tmp/evil"), b"x")])
    if case == "dot-dot path":
        return pack(path, members, extra=[(zipfile.ZipInfo("images/../../evil"), b"x")])
    if case == "backslash path":
        return pack(path, members, extra=[(zipfile.ZipInfo("..\\evil"), b"x")])
    if case == "drive letter":
        return pack(path, members, extra=[(zipfile.ZipInfo("C:/evil"), b"x")])
    if case == "symbolic link":
        return pack(
            path,
            {k: v for k, v in members.items() if k != "images.jsonl"},
            extra=[(unix_entry("images.jsonl", stat.S_IFLNK | 0o777), b"/etc/passwd")],
        )
    if case == "device":
        return pack(
            path,
            {k: v for k, v in members.items() if k != "images.jsonl"},
            extra=[(unix_entry("images.jsonl", stat.S_IFCHR | 0o666), b"")],
        )
    if case == "fifo":
        return pack(
            path,
            {k: v for k, v in members.items() if k != "images.jsonl"},
            extra=[(unix_entry("images.jsonl", stat.S_IFIFO | 0o666), b"")],
        )
    if case == "zip bomb":
        return pack(path, {**members, "detections.jsonl": b"\0" * (8 << 20)})
    if case == "unexpected member":
        return pack(path, {**members, "run.sh": b"rm -rf ~"})
    if case == "duplicate member":
        warnings.filterwarnings("ignore", "Duplicate name", UserWarning)  # the duplicate is the point
        return pack(path, members, extra=[(zipfile.ZipInfo("summary.json"), members["summary.json"])])
    if case == "missing member":
        return pack(path, {k: v for k, v in members.items() if k != "samples.jsonl"})
    if case == "unlisted member":
        digests = {n: sha(d) for n, d in members.items() if n != "images.jsonl"}
        return pack(path, members, checksums=digests)
    if case == "listed but absent":
        digests = {**{n: sha(d) for n, d in members.items()}, "detections.jsonl": sha(b"")}
        return pack(path, members, checksums=digests)
    if case == "encrypted member":  # zipfile cannot encrypt: set the flag bit in the central directory
        pack(path, {**members, "detections.jsonl": b"{}\n"})
        data = bytearray(path.read_bytes())
        header = data.index(b"PK\x01\x02")  # first central directory entry
        while data[header + 46 : header + 46 + len(b"detections.jsonl")] != b"detections.jsonl":
            header = data.index(b"PK\x01\x02", header + 4)
        data[header + 8] |= 0x1
        path.write_bytes(bytes(data))
        return path
    if case == "not a zip":
        path.write_bytes(b"PK\x03\x04 but then nothing a zip reader accepts")
        return path
    if case == "image not listed":
        return pack(path, members, extra=[(zipfile.ZipInfo("images/00103/0003.png"), b"\x89PNG")])
    if case == "image absent":  # one listed image included, the other 312 left out
        return pack(path, members, extra=[(zipfile.ZipInfo(rows(members["images.jsonl"])[1]["path"]), b"\x89PNG")])
    if case == "image bytes differ":
        image_row = rows(members["images.jsonl"])[0]
        return pack(
            path,
            {**members, "images.jsonl": jsonl([image_row])},
            extra=[(zipfile.ZipInfo(image_row["path"]), b"\x89PNG not the scored image")],
        )
    raise AssertionError(case)


CASES = {
    "checksum mismatch": "checksum mismatch for 'samples.jsonl'",
    "summary not recomputable": "summary.json does not equal the summary recomputed",
    "prompt text not official": "differs from the official genai-bench 527 hard set",
    "prompt tags not official": "differs from the official",
    "prompt not in the official set": "'99999', which is not in the official",
    "missing prompts": "missing prompts: 1 of the 313",
    "missing samples": "missing samples",
    "value above range": "out of range [0, 1]",
    "value below range": "out of range [0, 1]",
    "value not a number": "is not a finite number",
    "value NaN": "value nan is not a finite number",
    "sample index out of range": "sample_index 3 out of range",
    "task version": "version 2 is not version 1",
    "unknown task": "unknown task 'no-such-bench'",
    "metric not the board's": "scored with metric 'clipscore'; the genai-bench board ranks 'vqascore'",
    "absolute path": "absolute path",
    "dot-dot path": "'..'",
    "backslash path": "backslash",
    "drive letter": "absolute path",
    "symbolic link": "symbolic link",
    "device": "device",
    "fifo": "special file",
    "zip bomb": "zip bomb",
    "unexpected member": "unexpected member 'run.sh'",
    "duplicate member": "appears twice",
    "missing member": "missing member(s): samples.jsonl",
    "unlisted member": "'images.jsonl' is not listed in checksums",
    "listed but absent": "lists 'detections.jsonl', which the archive lacks",
    "encrypted member": "encrypted",
    "not a zip": "not a readable zip file",
    "image not listed": "not listed in images.jsonl",
    "image absent": "missing samples: 312 image(s) listed in images.jsonl are absent",
    "image bytes differ": "does not match its sha256 in images.jsonl",
}


@pytest.fixture(scope="module")
def honest_members(hard_run) -> dict[str, bytes]:
    return members_of(hard_run)


@pytest.mark.parametrize("case", sorted(CASES))
def test_add_rejects(case, honest_members, tmp_path, capsys, monkeypatch, official_tasks):
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))  # every extraction lands (and must vanish) here
    archive = _archive(case, honest_members, tmp_path / "sub.zip")
    db = tmp_path / "board.sqlite"
    code, _, err = cli(capsys, "leaderboard", "add", archive, "--tasks-dir", official_tasks, "--db", db)
    assert code == 1, err
    assert err.startswith("ts-eval: error: submission") and len(err.strip().splitlines()) == 1
    assert CASES[case] in err, err
    assert not db.exists(), "a rejected submission never opens the board"
    assert not any(scratch.iterdir()), "the extraction folder is removed"
    assert {p.name for p in tmp_path.iterdir()} == {"scratch", "sub.zip"}


def test_honest_archive_passes_the_same_checks(honest_members, tmp_path, capsys, official_tasks):
    """The hand-made packer itself is not what the cases above reject."""
    archive = pack(tmp_path / "sub.zip", honest_members)
    assert (
        cli(capsys, "leaderboard", "add", archive, "--tasks-dir", official_tasks, "--db", tmp_path / "board.sqlite")[0]
        == 0
    )


def test_member_and_size_limits(honest_members, tmp_path, capsys, official_tasks):
    archive = pack(tmp_path / "sub.zip", honest_members)
    total = sum(len(d) for d in honest_members.values())
    code, _, err = cli(
        capsys,
        "leaderboard",
        "add",
        archive,
        "--tasks-dir",
        official_tasks,
        "--db",
        tmp_path / "db",
        "--max-members",
        5,
    )
    assert code == 1 and "6 members exceed the limit of 5" in err
    code, _, err = cli(
        capsys,
        "leaderboard",
        "add",
        archive,
        "--tasks-dir",
        official_tasks,
        "--db",
        tmp_path / "db",
        "--max-size-mb",
        (total - 1000) / (1 << 20),
    )
    assert code == 1 and "more than the limit" in err
    assert not (tmp_path / "db").exists()


def test_stored_png_is_not_a_bomb(hard_run, tmp_path, capsys, official_tasks):
    """Real archives pass the ratio check: PNGs are stored, JSONL deflates ~3-6x."""
    sub = tmp_path / "sub.zip"
    assert cli(capsys, "submit", hard_run, "--out", sub, "--include-images")[0] == 0
    with zipfile.ZipFile(sub) as zf:
        worst = max(i.file_size / max(i.compress_size, 1) for i in zf.infolist())
    assert worst < 20
    assert (
        cli(capsys, "leaderboard", "add", sub, "--tasks-dir", official_tasks, "--db", tmp_path / "board.sqlite")[0] == 0
    )


def test_board_version_differs_from_submission(honest_members, tmp_path, capsys, official_tasks):
    """A board pinned to another task version refuses the submission and stays as it was."""
    db = tmp_path / "board.sqlite"
    honest = pack(tmp_path / "a.zip", honest_members)
    assert cli(capsys, "leaderboard", "add", honest, "--tasks-dir", official_tasks, "--db", db)[0] == 0
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE boards SET task_version = 7")
    other = _edit_samples(honest_members, lambda s: _set(s[0], "value", 0.5))  # different scores, not a duplicate
    before = db_state(db)
    code, _, err = cli(
        capsys, "leaderboard", "add", pack(tmp_path / "b.zip", other), "--tasks-dir", official_tasks, "--db", db
    )
    assert code == 1 and "is not the board's version 7" in err
    assert db_state(db) == before


@pytest.mark.skipif(shutil.which("sha256sum") is None, reason="sha256sum not installed")
def test_checksums_file_is_sha256sum_format(hard_run, tmp_path, capsys):
    sub = tmp_path / "sub.zip"
    assert cli(capsys, "submit", hard_run, "--out", sub, "--include-images")[0] == 0
    unpacked = tmp_path / "unpacked"
    zipfile.ZipFile(sub).extractall(unpacked)  # our own archive, written a moment ago
    check = subprocess.run(["sha256sum", "--check", "--quiet", "checksums"], cwd=unpacked, capture_output=True)
    assert check.returncode == 0, check.stdout + check.stderr


# -- hostile archives: what reaches the disk before the rejection ------------------------------------


class MeasuredTemporaryDirectory(tempfile.TemporaryDirectory):
    """Records how many bytes the extraction folder holds when it is removed: everything written to it."""

    written: ClassVar[list[int]] = []

    def cleanup(self):
        if Path(self.name).name.startswith("ts-eval-submission-"):
            MeasuredTemporaryDirectory.written.append(
                sum(p.stat().st_size for p in Path(self.name).rglob("*") if p.is_file() and not p.is_symlink())
            )
        super().cleanup()


def patch_sizes(
    path: Path, names: str | set[str], *, compressed: int | None = None, uncompressed: int | None = None
) -> Path:
    """Make the central directory lie about members' sizes (zipfile reads sizes from there)."""
    names = {names} if isinstance(names, str) else names
    data = bytearray(path.read_bytes())
    offset = data.find(b"PK\x01\x02")
    while offset >= 0:
        length = int.from_bytes(data[offset + 28 : offset + 30], "little")
        if data[offset + 46 : offset + 46 + length].decode() in names:
            if compressed is not None:
                data[offset + 20 : offset + 24] = compressed.to_bytes(4, "little")
            if uncompressed is not None:
                data[offset + 24 : offset + 28] = uncompressed.to_bytes(4, "little")
        offset = data.find(b"PK\x01\x02", offset + 46 + length)
    path.write_bytes(bytes(data))
    return path


def noise(n: int, seed: int = 0) -> bytes:
    import random

    return random.Random(seed).randbytes(n)


def text_noise(n: int) -> bytes:
    """Compresses about 2x: honest-looking, far below the ratio limit."""
    return noise(n // 2).hex().encode()[:n]


MIB = 1 << 20


def _hostile(case: str, members: dict[str, bytes], path: Path) -> tuple[Path, list[str], int | None]:
    """(archive, extra `add` options, a tighter bound on bytes written than the general one, or None)."""
    if case == "lying compressed size":
        # 512 MiB of zeros deflate to ~0.5 MB; the header claims 512 MiB compressed (ratio 1). Members follow it,
        # so a reader trusting the header finds bytes to read and decompresses it all.
        bomb, size = zipfile.ZipInfo("detections.jsonl"), 512 * MIB
        bomb.compress_type = zipfile.ZIP_DEFLATED
        after = [(zipfile.ZipInfo(f"images/00103/{k:04d}.png"), noise(MIB, k)) for k in range(2)]
        digest = hashlib.sha256()
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
            with zf.open(bomb, "w", force_zip64=False) as sink:
                for _ in range(size // MIB):
                    sink.write(bytes(MIB))
                    digest.update(bytes(MIB))
            for info, data in after:
                zf.writestr(info, data)
            for name, data in members.items():
                zf.writestr(name, data)
            zf.writestr(
                "checksums",
                checksums_text(
                    {
                        **{n: sha(d) for n, d in members.items()},
                        **{i.filename: sha(d) for i, d in after},
                        "detections.jsonl": digest.hexdigest(),
                    }
                ),
            )
        return patch_sizes(path, "detections.jsonl", compressed=size), [], 0
    if case == "lying uncompressed size":
        pack(path, {**members, "detections.jsonl": b"{}\n" * MIB})
        return patch_sizes(path, "detections.jsonl", uncompressed=1000), [], None
    if case == "checksum wrong on the first of many honest members":
        bad = text_noise(8 * MIB)
        extra = [(zipfile.ZipInfo("detections.jsonl"), bad)]
        extra += [(zipfile.ZipInfo(f"images/00103/{k:04d}.png"), noise(MIB, k)) for k in range(20)]
        digests = {**{n: sha(d) for n, d in members.items()}, **{i.filename: sha(d) for i, d in extra}}
        digests["detections.jsonl"] = sha(b"something else")
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
            for info, data in extra:  # the bad member first: nothing after it may be written
                zf.writestr(info, data)
            for name, data in members.items():
                zf.writestr(name, data)
            zf.writestr("checksums", checksums_text(digests))
        return path, [], 8 * MIB
    if case == "member not in checksums":
        unlisted = [(zipfile.ZipInfo(f"images/00103/{k:04d}.png"), noise(MIB, k)) for k in range(20)]
        return pack(path, members, extra=unlisted, checksums={n: sha(d) for n, d in members.items()}), [], 0
    if case == "many small members":
        extra = [(zipfile.ZipInfo(f"images/{k:05d}/0000.png"), noise(1024, k)) for k in range(3000)]
        return pack(path, members, extra=extra), ["--max-size-mb", 1], None
    if case == "many small members with lying sizes":
        extra = [(zipfile.ZipInfo(f"images/{k:05d}/0000.png"), noise(1024, k)) for k in range(3000)]
        pack(path, members, extra=extra)
        return patch_sizes(path, {i.filename for i, _ in extra}, uncompressed=10), ["--max-size-mb", 1], None
    if case == "one huge member":
        return (
            pack(path, members, extra=[(zipfile.ZipInfo("images/00103/0000.png"), noise(3 * MIB))]),
            ["--max-size-mb", 1],
            None,
        )
    if case == "nested path":
        return pack(path, members, extra=[(zipfile.ZipInfo("images/00103/deeper/0000.png"), b"x")]), [], 0
    if case in ("symbolic link", "duplicate member", "dot-dot path", "zip bomb"):
        return _archive(case, members, path), [], None
    raise AssertionError(case)


HOSTILE = [
    "lying compressed size",
    "lying uncompressed size",
    "checksum wrong on the first of many honest members",
    "member not in checksums",
    "many small members",
    "many small members with lying sizes",
    "one huge member",
    "nested path",
    "symbolic link",
    "duplicate member",
    "dot-dot path",
    "zip bomb",
]


@pytest.mark.reliability
@pytest.mark.e2e
@pytest.mark.parametrize("case", HOSTILE)
def test_hostile_archive_writes_at_most_the_limit(case, honest_members, tmp_path, capsys, monkeypatch, official_tasks):
    """Whatever the headers say, at most the limit (plus one chunk) reaches the disk, and the board is unchanged."""
    from ts_eval.leaderboard.archive import CHUNK, ArchiveLimits

    db = tmp_path / "board.sqlite"
    honest = pack(tmp_path / "honest.zip", honest_members)
    assert cli(capsys, "leaderboard", "add", honest, "--tasks-dir", official_tasks, "--db", db)[0] == 0
    before = db_state(db)
    archive, options, tight = _hostile(case, honest_members, tmp_path / "hostile.zip")
    monkeypatch.setattr(MeasuredTemporaryDirectory, "written", [])
    monkeypatch.setattr(tempfile, "TemporaryDirectory", MeasuredTemporaryDirectory)
    code, _, err = cli(capsys, "leaderboard", "add", archive, "--tasks-dir", official_tasks, "--db", db, *options)
    assert code == 1 and err.startswith("ts-eval: error: submission") and err.count("\n") == 1, err
    assert db_state(db) == before
    [written] = MeasuredTemporaryDirectory.written
    max_total = int(float(options[1]) * MIB) if options else ArchiveLimits().max_total_bytes
    bound = min(max_total, int(ArchiveLimits().max_ratio * archive.stat().st_size))
    assert written <= bound + CHUNK, f"{written} bytes written, limit {bound}"
    if tight is not None:  # nothing past the offending member: checksums first, then it alone
        assert written <= tight + 64 * 1024, f"{written} bytes written before the rejection"


@pytest.mark.reliability
@pytest.mark.e2e
def test_streaming_counts_stop_a_bomb_even_past_the_layout_check(
    honest_members, tmp_path, capsys, monkeypatch, official_tasks
):
    """The second line of defence alone: with the header check switched off, real bytes are still counted
    against ratio x compressed size, and extraction stops within one chunk of it."""
    from ts_eval.leaderboard import archive as archive_module

    archive, _, _ = _hostile("lying compressed size", honest_members, tmp_path / "hostile.zip")
    monkeypatch.setattr(archive_module, "check_layout", lambda *args: None)
    monkeypatch.setattr(MeasuredTemporaryDirectory, "written", [])
    monkeypatch.setattr(tempfile, "TemporaryDirectory", MeasuredTemporaryDirectory)
    code, _, err = cli(
        capsys, "leaderboard", "add", archive, "--tasks-dir", official_tasks, "--db", tmp_path / "board.sqlite"
    )
    assert code == 1 and "'detections.jsonl' expands beyond 100x" in err and "zip bomb" in err, err
    [written] = MeasuredTemporaryDirectory.written
    with zipfile.ZipFile(archive) as zf:
        claimed = zf.getinfo("detections.jsonl").compress_size  # the lie: 512 MiB
        others = sum(i.file_size for i in zf.infolist() if i.filename != "detections.jsonl")
    assert claimed == 512 * MIB
    # zipfile reads at most what it finds before EOF, so the bound is the ratio times the real archive.
    assert written <= others + archive_module.CHUNK + 100 * archive.stat().st_size
    assert not (tmp_path / "board.sqlite").exists()
