"""`ts-eval run prompts --prompts SOURCE`: a prompt set of your own from a .txt, .csv/.tsv, .jsonl, a dataset folder
or the Hub, tags as groups, the source's sha256 in the manifest, a label that says there is no official recipe, and
one line for every bad source."""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import time
from pathlib import Path

import pytest

from tests.support import cli
from ts_eval.errors import UsageError
from ts_eval.store.files import read_jsonl, sha256_file
from ts_eval.tasks.prompts import parse_source

LABEL = "custom prompts (no official recipe)"
PROMPTS = [
    "a red cube on top of a blue sphere",
    "three cats sleeping on a sofa",
    'a street sign that says "open"',
    "five apples in a bowl",
]
JSONL = [
    {"id": "color-1", "prompt": PROMPTS[0], "category": "Colors", "challenge": "Basic"},
    {"id": "count-1", "prompt": PROMPTS[1], "category": "Counting", "challenge": "Basic"},
    {"id": "text-1", "prompt": PROMPTS[2], "category": "Text", "challenge": ["Writing", "Fine-grained Detail"]},
    {"id": "count-2", "prompt": PROMPTS[3], "category": "Counting"},
]
needs_datasets = pytest.mark.skipif(importlib.util.find_spec("datasets") is None, reason="needs the [data] extra")


def _run(capsys, source, out, *extra):
    code, printed, err = cli(
        "run",
        "prompts",
        "--prompts",
        source,
        "--scorer",
        "dummy",
        "--out",
        out,
        "--quiet",
        "--no-view",
        *extra,
        capsys=capsys,
    )
    return code, printed, err


def _summary(out: Path) -> dict:
    return json.loads((out / "summary.json").read_text())


def _write_jsonl(path: Path, rows) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_a_text_file_one_prompt_a_line(tmp_path, capsys):
    source = tmp_path / "mine.txt"
    source.write_text("\n".join(PROMPTS) + "\n\n")  # blank lines at the end are not prompts
    code, out, err = _run(capsys, source, tmp_path / "R")
    assert code == 0, err
    prompts = read_jsonl(tmp_path / "R" / "prompts.jsonl")
    assert [(p["prompt_id"], p["prompt"], p["tags"]) for p in prompts] == [
        (f"{i:05d}", text, []) for i, text in enumerate(PROMPTS, start=1)
    ]
    summary = _summary(tmp_path / "R")
    assert list(summary["groups"]) == ["all"] and summary["groups"]["all"]["n"] == 4
    assert summary["verdict"]["label"] == LABEL and not summary["verdict"]["official"]
    manifest = json.loads((tmp_path / "R" / "manifest.json").read_text())
    assert manifest["settings"]["data"]["sha256"] == {"mine.txt": sha256_file(source)}
    assert manifest["data_origin"] == str(source.resolve())
    assert "| All " in out and LABEL in out
    # the same command resumes; an edited file is another prompt set, refused without --overwrite
    assert _run(capsys, source, tmp_path / "R")[0] == 0
    source.write_text("\n".join(PROMPTS[:3]) + "\n")
    code, _, err = _run(capsys, source, tmp_path / "R")
    assert code == 2 and "other settings" in err and "sha256" in err


def test_a_jsonl_file_with_tag_columns(tmp_path, capsys):
    source = _write_jsonl(tmp_path / "mine.jsonl", JSONL)
    code, out, err = _run(capsys, source, tmp_path / "R", "--n-samples", "2")
    assert code == 0, err
    summary = _summary(tmp_path / "R")
    # every tag is a group, column by column, then all; n counts prompts
    assert list(summary["groups"]) == ["Colors", "Counting", "Text", "Basic", "Writing", "Fine-grained Detail", "all"]
    assert {g: s["n"] for g, s in summary["groups"].items()} == {
        "Colors": 1,
        "Counting": 2,
        "Text": 1,
        "Basic": 2,
        "Writing": 1,
        "Fine-grained Detail": 1,
        "all": 4,
    }
    samples = read_jsonl(tmp_path / "R" / "samples.jsonl")
    by_prompt = {}
    for row in samples:
        by_prompt.setdefault(row["prompt_id"], []).append(row["value"])
    counting = [sum(by_prompt[p]) / 2 for p in ("count-1", "count-2")]
    assert summary["groups"]["Counting"]["mean"] == pytest.approx(sum(counting) / 2)
    header = [c.strip() for c in out.splitlines()[0].strip("|").split("|")]
    assert header == ["run", "Colors", "Counting", "Text", "Basic", "Writing", "Fine-grained Detail", "All", "status"]
    data = json.loads((tmp_path / "R" / "manifest.json").read_text())["settings"]["data"]
    assert data["tag_columns"] == ["category", "challenge"] and data["prompt_column"] == "prompt"
    # --prompt-tags keeps the columns named; --skill and --limit select as for any task, labelled a subset
    code, out, _ = _run(capsys, source, tmp_path / "S", "--prompt-tags", "category", "--skill", "Counting")
    assert code == 0 and list(_summary(tmp_path / "S")["groups"]) == ["Counting", "all"]
    assert f"{LABEL}; subset: skill=Counting" in out and "All (subset skill=Counting)" in out


def test_a_tsv_file_names_its_prompt_column(tmp_path, capsys):
    source = tmp_path / "parti.tsv"
    source.write_text(
        "Prompt\tCategory\tChallenge\nan owl in a tuxedo\tAnimals\tImagination\n"
        "a bowl of soup\tFood & Beverage\tBasic\n"
    )
    code, _, err = _run(capsys, f"{source}#Prompt", tmp_path / "R")
    assert code == 0, err
    assert list(_summary(tmp_path / "R")["groups"]) == ["Animals", "Food & Beverage", "Imagination", "Basic", "all"]


@needs_datasets
def test_a_dataset_saved_to_disk_runs_offline(tmp_path, capsys, monkeypatch):
    import datasets

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    splits = datasets.DatasetDict(
        {
            "train": datasets.Dataset.from_dict({"Prompt": PROMPTS[:3], "Category": ["Colors", "Counting", "Text"]}),
            "test": datasets.Dataset.from_dict({"Prompt": PROMPTS[3:], "Category": ["Counting"]}),
        }
    )
    splits.save_to_disk(tmp_path / "parti")
    code, _, err = _run(capsys, f"{tmp_path / 'parti'}:train#Prompt", tmp_path / "R")
    assert code == 0, err
    prompts = read_jsonl(tmp_path / "R" / "prompts.jsonl")
    assert [p["prompt"] for p in prompts] == PROMPTS[:3] and [p["tags"] for p in prompts] == [
        ["Colors"],
        ["Counting"],
        ["Text"],
    ]
    data = json.loads((tmp_path / "R" / "manifest.json").read_text())["settings"]["data"]
    assert data["dataset_folder"] == "parti" and data["split"] == "train"
    assert data["fingerprint"] == datasets.load_from_disk(tmp_path / "parti")["train"]._fingerprint
    assert len(data["prompts_sha256"]) == 64
    # the record names the content, not the place: a moved copy resumes the same run
    shutil.copytree(tmp_path / "parti", tmp_path / "moved" / "parti")
    assert _run(capsys, f"{tmp_path / 'moved' / 'parti'}:train#Prompt", tmp_path / "R")[0] == 0
    code, _, err = _run(capsys, f"{tmp_path / 'parti'}#Prompt", tmp_path / "S")
    assert code == 2 and "splits train, test" in err and f"{tmp_path / 'parti'}:train#Prompt" in err


@needs_datasets
def test_a_hub_dataset_is_loaded_at_its_revision_and_recorded(tmp_path, capsys, monkeypatch):
    import datasets

    calls = []
    local = datasets.DatasetDict({"test": datasets.Dataset.from_dict({"text": PROMPTS})})

    def load_dataset(name, revision=None, **kwargs):
        calls.append((name, revision))
        return local

    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    monkeypatch.setattr("ts_eval.hub.unreachable_reason", lambda: None)
    code, _, err = _run(capsys, "hf://someone/my-prompts@abc123:test#text", tmp_path / "R")
    assert code == 0, err
    assert calls == [("someone/my-prompts", "abc123")]
    data = json.loads((tmp_path / "R" / "manifest.json").read_text())["settings"]["data"]
    assert (data["hf_dataset"], data["revision"], data["split"], data["prompt_column"]) == (
        "someone/my-prompts",
        "abc123",
        "test",
        "text",
    )


@needs_datasets
def test_an_unreachable_hub_is_one_line_at_once(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "empty-cache"))
    started = time.monotonic()
    code, _, err = _run(capsys, "hf://nobody/no-such-prompts@v1:test#Prompt", tmp_path / "R")
    assert time.monotonic() - started < 20
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "hf download nobody/no-such-prompts --repo-type dataset --revision v1 --local-dir DIR" in err
    assert "--prompts DIR:test#Prompt" in err and not (tmp_path / "R").exists()


def _bad_sources(tmp_path: Path) -> dict[str, tuple[str, str]]:
    """name -> (SOURCE, what the one-line error must say)"""
    (tmp_path / "empty.txt").write_text("")
    (tmp_path / "blank.txt").write_text("a cat\n   \na dog\n")
    _write_jsonl(tmp_path / "number.jsonl", [{"prompt": "a cat"}, {"prompt": 3}])
    _write_jsonl(tmp_path / "twice.jsonl", [{"id": "a", "prompt": "x"}, {"id": "a", "prompt": "y"}])
    _write_jsonl(tmp_path / "column.jsonl", [{"text": "a cat"}])
    _write_jsonl(tmp_path / "path.jsonl", [{"id": "../up", "prompt": "a cat"}])
    _write_jsonl(tmp_path / "all.jsonl", [{"prompt": "a cat", "group": "all"}])
    _write_jsonl(tmp_path / "tagnum.jsonl", [{"prompt": "a cat", "level": 3}])
    (tmp_path / "extra.csv").write_text("prompt,tag\na cat,x,y\n")
    (tmp_path / "notes.pdf").write_text("x")
    return {
        "empty file": (str(tmp_path / "empty.txt"), "holds no prompts"),
        "blank prompt": (str(tmp_path / "blank.txt"), "line 2: the prompt is blank"),
        "non-string prompt": (str(tmp_path / "number.jsonl"), "line 2: the prompt is 3 (int), not text"),
        "duplicate ids": (str(tmp_path / "twice.jsonl"), "line 2 repeats id 'a' of line 1"),
        "missing column": (str(tmp_path / "column.jsonl"), "no column 'prompt' (columns: text)"),
        "wrong column named": (f"{tmp_path / 'column.jsonl'}#Text", "no column 'Text'"),
        "unsafe id": (str(tmp_path / "path.jsonl"), "'../up' is not a usable id"),
        "tag named all": (str(tmp_path / "all.jsonl"), "'all' cannot be a tag"),
        "numeric tag": (str(tmp_path / "tagnum.jsonl"), "tag column 'level' holds 3 (int)"),
        "ragged csv": (str(tmp_path / "extra.csv"), "line 2 has more fields than the header"),
        "unknown file kind": (str(tmp_path / "notes.pdf"), "unknown kind of file"),
        "no such file": (str(tmp_path / "missing.txt"), "no such file or folder"),
        "column of a txt": (f"{tmp_path / 'blank.txt'}#Prompt", "a .txt file has one prompt a line"),
        "bad hub name": ("hf://just-a-name", "expected hf://ORG/NAME"),
    }


@pytest.mark.parametrize(
    "case",
    [
        "empty file",
        "blank prompt",
        "non-string prompt",
        "duplicate ids",
        "missing column",
        "wrong column named",
        "unsafe id",
        "tag named all",
        "numeric tag",
        "ragged csv",
        "unknown file kind",
        "no such file",
        "column of a txt",
        "bad hub name",
    ],
)
def test_bad_sources_are_one_line(tmp_path, capsys, case):
    source, message = _bad_sources(tmp_path)[case]
    code, out, err = _run(capsys, source, tmp_path / "R")
    assert code == 2 and not out and len(err.strip().splitlines()) == 1, err
    assert message in err and not (tmp_path / "R").exists()


@needs_datasets
def test_unknown_split_of_a_dataset_folder(tmp_path, capsys):
    import datasets

    datasets.DatasetDict({"train": datasets.Dataset.from_dict({"prompt": PROMPTS})}).save_to_disk(tmp_path / "d")
    code, _, err = _run(capsys, f"{tmp_path / 'd'}:validation", tmp_path / "R")
    assert code == 2 and "unknown split 'validation'; choose one of: train" in err


@pytest.mark.parametrize(
    "args, message",
    [
        (["run", "prompts", "--scorer", "dummy"], "the prompts task needs --prompts SOURCE"),
        (["run", "genai-bench", "--variant", "527", "--prompts", "x.txt"], "--prompts and --prompt-tags are for"),
        (["run", "prompts", "--prompts", "PROMPTS", "--data", "."], "--data is for a benchmark's own files"),
        (["run", "prompts", "--prompts", "PROMPTS", "--prompt-tags", "nope"], "has no tag column 'nope'"),
    ],
)
def test_options_that_do_not_fit_the_task(tmp_path, capsys, args, message):
    source = _write_jsonl(tmp_path / "p.jsonl", JSONL)
    args = [str(source) if a == "PROMPTS" else a for a in args]
    code, _, err = cli(*args, "--out", tmp_path / "R", "--quiet", capsys=capsys)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1


def test_the_default_scorer_is_the_official_vqascore_and_clipscore_is_offered():
    from ts_eval.pipeline import scorer_choice
    from ts_eval.tasks import load_task

    spec = load_task("prompts")
    assert scorer_choice(spec, None, {}) == {"name": "vqascore", "args": {"model": "clip-flant5-xxl"}}
    genai = load_task("genai-bench")
    official = {k: genai.recipe["scorer"][k] for k in ("name", "model")}
    assert {"name": spec.default_scorer[0], **spec.default_scorer[1]} == official
    with pytest.raises(UsageError, match="no such file"):
        parse_source("nothing-here.txt")


def test_scored_with_clipscore_end_to_end(tmp_path, capsys):
    pytest.importorskip("open_clip")
    from ts_eval.scorers.tiny_models import build_tiny_open_clip

    model = build_tiny_open_clip(tmp_path / "clip").args["model"]
    source = _write_jsonl(tmp_path / "p.jsonl", JSONL)
    code, _, err = cli(
        "run",
        "prompts",
        "--prompts",
        source,
        "--scorer",
        "clipscore",
        "--scorer-arg",
        f"model={model}",
        "--device",
        "cpu",
        "--out",
        tmp_path / "R",
        "--quiet",
        "--no-view",
        capsys=capsys,
    )
    assert code == 0, err
    summary = _summary(tmp_path / "R")
    assert summary["metric"] == "clipscore" and summary["groups"]["all"]["n"] == 4
    assert {r["metric"] for r in read_jsonl(tmp_path / "R" / "samples.jsonl")} == {"clipscore"}


def test_scored_with_vqascore_end_to_end(tmp_path, capsys):
    if importlib.util.find_spec("t2v_metrics") is None or importlib.util.find_spec("torch") is None:
        pytest.skip("VQAScore needs the [genai] extra and t2v-metrics")
    source = tmp_path / "mine.txt"
    source.write_text("\n".join(PROMPTS[:2]) + "\n")
    code, _, err = cli(
        "run",
        "prompts",
        "--prompts",
        source,
        "--scorer-arg",
        "model=tiny-random",
        "--device",
        "cpu",
        "--out",
        tmp_path / "R",
        "--quiet",
        "--no-view",
        capsys=capsys,
    )
    assert code == 0, err
    summary = _summary(tmp_path / "R")
    assert summary["metric"] == "vqascore" and summary["random_weights"] == ["generator dummy", "scorer vqascore"]
    assert all(0 < r["value"] < 1 for r in read_jsonl(tmp_path / "R" / "samples.jsonl"))


def test_the_gate_gates_each_tag_group(tmp_path, capsys):
    source = _write_jsonl(tmp_path / "p.jsonl", JSONL)
    for seed in ("1", "2"):
        assert _run(capsys, source, tmp_path / f"R{seed}", "--seed", seed)[0] == 0
    code, out, _ = cli(
        "gate", "--baseline", tmp_path / "R1", "--current", tmp_path / "R2", "--max-drop", "1", capsys=capsys
    )
    groups = [line.split("|")[2].strip() for line in out.splitlines() if line.startswith("| vqascore |")]
    assert code == 0 and groups == ["Colors", "Counting", "Text", "Basic", "Writing", "Fine-grained Detail", "all"]


def test_the_documented_examples_give_the_documented_groups(tmp_path, capsys):
    from tests.support import ROOT

    text = (ROOT / "docs" / "custom-prompts.md").read_text()
    blocks = dict(re.findall(r"```(csv|tsv|jsonl)\n(.*?)\n```", text, flags=re.S))
    (tmp_path / "drawbench_style.csv").write_text(blocks["csv"] + "\n")
    (tmp_path / "parti_style.tsv").write_text(blocks["tsv"] + "\n")
    (tmp_path / "mine.jsonl").write_text(blocks["jsonl"] + "\n")
    expected = {
        ("drawbench_style.csv#Prompts",): ["Colors", "Counting", "Text", "all"],
        ("parti_style.tsv#Prompt", "--prompt-tags", "Category,Challenge"): [
            "Animals",
            "Food & Beverage",
            "Artifacts",
            "Outdoor Scenes",
            "Imagination",
            "Fine-grained Detail",
            "Quantity",
            "Basic",
            "all",
        ],
        ("mine.jsonl",): ["spatial", "color", "counting", "all"],
    }
    for n, ((source, *extra), groups) in enumerate(expected.items()):
        code, _, err = _run(capsys, f"{tmp_path / source}", tmp_path / f"R{n}", *extra)
        assert code == 0, err
        assert list(_summary(tmp_path / f"R{n}")["groups"]) == groups
