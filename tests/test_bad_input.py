"""Bad input: one line on stderr, exit code 2, nothing overwritten."""

from __future__ import annotations

import json
import shutil

import pytest
from PIL import Image

from tests.support import cli


def _one_line_error(capsys, code: int, *needles: str) -> str:
    err = capsys.readouterr().err
    assert code == 2, err
    errors = [line for line in err.splitlines() if "error" in line]
    assert len(errors) == 1 and errors[0].startswith("ts-eval: error: "), err  # warnings may precede it
    for needle in needles:
        assert needle in errors[0], err
    return errors[0]


@pytest.mark.parametrize(
    "args,needles",
    [
        (["run", "genai-benchh"], ["unknown task 'genai-benchh'", "genai-bench"]),
        (["run", "genai-bench", "--variant", "527", "--split", "hardest"], ["unknown split 'hardest'", "hard"]),
        (["run", "genai-bench", "--variant", "999"], ["unknown variant '999'", "527"]),
        (["run", "genai-bench", "--variant", "527", "--skill", "juggling"], ["unknown skill 'juggling'", "negation"]),
        (
            ["run", "genai-bench", "--variant", "527", "--model", "dalle9"],
            ["unknown model 'dalle9'", "dummy", "folder"],
        ),
        (["run", "genai-bench", "--variant", "527", "--scorer", "vibes"], ["unknown scorer 'vibes'", "vqascore"]),
        (["run", "genai-bench", "--variant", "527", "--model-arg", "oops"], ["--model-arg expects key=value"]),
        (
            ["run", "genai-bench", "--variant", "527", "--model-arg", "colour=red"],
            ["unknown argument(s) for model 'dummy'"],
        ),
        (["run", "genai-bench", "--variant", "527", "--model-arg", "resolution=big"], ["resolution='big'"]),
        (["run", "genai-bench", "--variant", "527", "--limit", "0"], ["--limit"]),
        (
            ["run", "genai-bench", "--variant", "527", "--scorer", "dummy", "--batch-size", "0"],
            ["--batch-size must be at least 1"],
        ),
        (["run", "genai-bench", "--bogus-flag"], ["unrecognized arguments"]),
        (["report", "/nonexistent/run"], ["not a run directory"]),
    ],
)
def test_usage_errors_are_one_line_with_the_valid_choices(args, needles, capsys, tmp_path):
    _one_line_error(capsys, cli(*args, "--out", tmp_path / "R")[0] if args[0] == "run" else cli(*args)[0], *needles)


def _copy_data(genai_527, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(genai_527, data)
    return data


@pytest.mark.parametrize(
    "name,content,needle",
    [
        ("prompts.txt", "first prompt\n\nthird prompt\n", "line 2 is blank"),
        ("prompts.txt", "", "empty"),
        ("genai_skills.json", "{not json", "malformed JSON"),
        ("genai_skills.json", json.dumps({"basic": [1], "advanced": [99999]}), "between 1 and"),
        ("genai_skills.json", json.dumps({"counting": [1]}), "'basic', 'advanced'"),
    ],
)
def test_malformed_data_files(name, content, needle, genai_527, tmp_path, capsys):
    data = _copy_data(genai_527, tmp_path)
    (data / name).write_text(content)
    # with the pinned sha256 the checksum already rejects it; the format checks guard files of unpinned variants
    spec_dir = tmp_path / "tasks"
    spec_dir.mkdir()
    from ts_eval.tasks.spec import bundled_tasks_dir

    text = (bundled_tasks_dir() / "genai_bench.yaml").read_text()
    for sha in (
        "62de129d00c6a9b3d9e7605f9a82f8827b5dba6c72caa67f5c739a1370736e5b",
        "f68a544fb8929d031e15be68df8320455202cac1b08246864abd12add2122b7b",
    ):
        text = text.replace(sha, "null")
    (spec_dir / "genai_bench.yaml").write_text(text)
    code = cli(
        "run",
        "genai-bench",
        "--variant",
        "527",
        "--data",
        data,
        "--tasks-dir",
        spec_dir,
        "--out",
        tmp_path / "R",
        "--quiet",
    )[0]
    _one_line_error(capsys, code, needle, str(data / name))
    assert not (tmp_path / "R").exists()


def test_checksum_mismatch_names_the_file(genai_527, tmp_path, capsys):
    data = _copy_data(genai_527, tmp_path)
    with open(data / "prompts.txt", "a") as handle:
        handle.write("\nan extra prompt")
    code = cli("run", "genai-bench", "--variant", "527", "--data", data, "--out", tmp_path / "R")[0]
    _one_line_error(capsys, code, "sha256", "prompts.txt", "does not match")


def test_missing_data_file_says_where_to_get_it(genai_527, tmp_path, capsys):
    data = _copy_data(genai_527, tmp_path)
    (data / "genai_skills.json").unlink()
    code = cli("run", "genai-bench", "--variant", "527", "--data", data, "--out", tmp_path / "R")[0]
    _one_line_error(capsys, code, "genai_skills.json", "zhiqiulin/GenAI-Bench-527", "--data")


def test_offline_download_failure_is_one_actionable_line(tmp_path, capsys, monkeypatch):
    constants = pytest.importorskip("huggingface_hub.constants")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)  # read at import time from the env, so patch it
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "empty-hf-cache"))
    code = cli("run", "genai-bench", "--variant", "1600", "--out", tmp_path / "R")[0]
    _one_line_error(capsys, code, "BaiqiL/GenAI-Bench-1600", "--data")


def test_folder_model_with_missing_or_corrupt_image(tmp_path, capsys):
    images = tmp_path / "images"
    images.mkdir()
    ids = ["00001", "00002", "00003"]
    for pid in ids:
        Image.new("RGB", (16, 16), (200, 10, 10)).save(images / f"{pid}.png")
    (images / "00002.png").write_bytes(b"\x89PNG truncated")
    code = cli(
        "run",
        "genai-bench",
        "--variant",
        "527",
        "--limit",
        "3",
        "--model",
        "folder",
        "--model-arg",
        f"path={images}",
        "--model-arg",
        "batch_size=1",
        "--scorer",
        "dummy",
        "--out",
        tmp_path / "R",
        "--quiet",
    )[0]
    _one_line_error(capsys, code, "00002.png", "not a readable image")
    assert (tmp_path / "R" / "images" / "00001" / "0000.jpg").exists()  # work done before the bad file is kept
    (images / "00003.png").unlink()
    Image.new("RGB", (16, 16)).save(images / "00002.png")
    code = cli(
        "run",
        "genai-bench",
        "--variant",
        "527",
        "--limit",
        "3",
        "--model",
        "folder",
        "--model-arg",
        f"path={images}",
        "--model-arg",
        "batch_size=1",
        "--scorer",
        "dummy",
        "--out",
        tmp_path / "R",
        "--quiet",
    )[0]
    _one_line_error(capsys, code, "no image for prompt 00003")


def test_rewrite_file_naming_unknown_prompt(tmp_path, capsys):
    rewrites = tmp_path / "rw.jsonl"
    rewrites.write_text(json.dumps({"prompt_id": "99999", "prompt": "x"}) + "\n")
    code = cli("run", "genai-bench", "--variant", "527", "--prompt-rewrites", rewrites, "--out", tmp_path / "R")[0]
    _one_line_error(capsys, code, "99999", "rw.jsonl")
    rewrites.write_text("{broken\n")
    code = cli("run", "genai-bench", "--variant", "527", "--prompt-rewrites", rewrites, "--out", tmp_path / "R")[0]
    _one_line_error(capsys, code, "rw.jsonl", "line 1")


# -- issue-14 cases: each used to end in a traceback or a silent change -----------------------------------


def _snapshot(folder):
    """Every file of a run but its lock (which names its latest holder)."""
    return (
        {p: p.read_bytes() for p in folder.rglob("*") if p.is_file() and p.name != ".lock"} if folder.exists() else {}
    )


@pytest.mark.parametrize("missing", ["default_variant", "groups", "table"])
def test_task_yaml_missing_a_key_is_one_line(missing, tmp_path, capsys):
    import yaml

    from tests.support import ROOT

    raw = yaml.safe_load((ROOT / "tasks" / "genai_bench.yaml").read_text())
    raw.pop(missing)
    raw["name"] = "broken"
    (tmp_path / "broken.yaml").write_text(yaml.safe_dump(raw))
    code = cli("run", "broken", "--tasks-dir", tmp_path, "--out", tmp_path / "R")[0]
    _one_line_error(capsys, code, "broken.yaml", missing)


@pytest.mark.parametrize(
    "args,needle",
    [
        (["report", "@run", "--resamples", "0"], "--resamples must be at least 1"),
        (["report", "@run", "--resamples", "-5"], "--resamples must be at least 1"),
        (["report", "@run", "--format", "xml"], "unknown --format 'xml'"),
        (["gate", "--baseline", "@run", "--current", "@run", "--resamples", "0"], "--resamples must be at least 1"),
        (["gate", "--baseline", "@run", "--current", "@run", "--max-drop", "nan"], "--max-drop must be non-negative"),
    ],
)
def test_bad_numbers_and_formats_change_nothing(args, needle, tmp_path, capsys):
    run = tmp_path / "R"
    assert (
        cli("run", "genai-bench", "--variant", "527", "--limit", "3", "--scorer", "dummy", "--out", run, "--quiet")[0]
        == 0
    )
    before = _snapshot(run)
    capsys.readouterr()
    code = cli(*[str(run) if a == "@run" else a for a in args])[0]
    _one_line_error(capsys, code, needle)
    assert _snapshot(run) == before  # summary.json included: a bad format fails before anything is rewritten


@pytest.mark.parametrize(
    "model_args,needle",
    [
        (["--model", "dummy", "--model-arg", "resolution=0"], "resolution must be at least 1"),
        (["--model", "reference", "--model-arg", "config=tiny", "--model-arg", "resolution=0"], "resolution 0"),
        (["--model", "reference", "--model-arg", "config=tiny", "--model-arg", "cfg=nan"], "cfg='nan'"),
    ],
)
def test_impossible_model_settings_are_refused_not_replaced(model_args, needle, tmp_path, capsys):
    pytest.importorskip("torch") if "reference" in model_args else None
    code = cli(
        "run",
        "genai-bench",
        "--variant",
        "527",
        "--limit",
        "1",
        "--scorer",
        "dummy",
        *model_args,
        "--out",
        tmp_path / "R",
    )[0]
    _one_line_error(capsys, code, needle)
    assert not (tmp_path / "R").exists()


def test_run_format_is_checked_before_any_work(tmp_path, capsys):
    code = cli(
        "run",
        "genai-bench",
        "--variant",
        "527",
        "--limit",
        "3",
        "--scorer",
        "dummy",
        "--format",
        "xml",
        "--out",
        tmp_path / "R",
    )[0]
    _one_line_error(capsys, code, "unknown --format 'xml'")
    assert not (tmp_path / "R").exists()


@pytest.mark.parametrize("prompt,needle", [("   ", "is blank"), (7, "is not text")])
def test_blank_or_non_text_prompts_in_data(prompt, needle, tmp_path, capsys):
    """A 1600-format data folder with the official counts, one prompt broken."""
    import sys

    from tests.support import ROOT

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from harness_overhead import synthetic_genai_bench

    data = tmp_path / "data"
    synthetic_genai_bench(data)
    images = json.loads((data / "genai_image.json").read_text())
    images["00002"]["prompt"] = prompt
    (data / "genai_image.json").write_text(json.dumps(images))
    code = cli("run", "genai-bench", "--data", data, "--scorer", "dummy", "--out", tmp_path / "R")[0]
    _one_line_error(capsys, code, "genai_image.json", "prompt 00002", needle)


def test_duplicate_prompt_rewrites(tmp_path, capsys):
    rewrites = tmp_path / "r.jsonl"
    rewrites.write_text('{"prompt_id": "00001", "prompt": "a"}\n{"prompt_id": "00001", "prompt": "b"}\n')
    code = cli(
        "run",
        "genai-bench",
        "--variant",
        "527",
        "--limit",
        "2",
        "--scorer",
        "dummy",
        "--prompt-rewrites",
        rewrites,
        "--out",
        tmp_path / "R",
    )[0]
    _one_line_error(capsys, code, "r.jsonl", "line 2", "a second time")


def _png_claiming(size: tuple[int, int], path) -> None:
    """A tiny PNG whose header claims `size` (a decompression bomb as the opener sees it)."""
    import struct
    import zlib

    Image.new("L", (4, 4)).save(path)
    data = bytearray(path.read_bytes())
    start = data.index(b"IHDR")
    data[start + 4 : start + 12] = struct.pack(">II", *size)
    data[start + 17 : start + 21] = struct.pack(">I", zlib.crc32(bytes(data[start : start + 17])))
    path.write_bytes(bytes(data))


def test_folder_images_bomb_16_bit_and_animation(tmp_path, capsys):
    import numpy as np

    images = tmp_path / "images"
    images.mkdir()
    _png_claiming((20000, 20000), images / "00001.png")
    code = cli(
        "run",
        "genai-bench",
        "--variant",
        "527",
        "--limit",
        "1",
        "--model",
        "folder",
        "--model-arg",
        f"path={images}",
        "--scorer",
        "dummy",
        "--out",
        tmp_path / "R",
    )[0]
    _one_line_error(capsys, code, "00001.png", "decompression bomb")

    frames = [Image.new("RGB", (8, 8), c) for c in ((255, 0, 0), (0, 0, 255))]
    frames[0].save(images / "00001.png", format="GIF", save_all=True, append_images=frames[1:])  # read by content
    code = cli(
        "run",
        "genai-bench",
        "--variant",
        "527",
        "--limit",
        "1",
        "--model",
        "folder",
        "--model-arg",
        f"path={images}",
        "--scorer",
        "dummy",
        "--out",
        tmp_path / "R",
    )[0]
    _one_line_error(capsys, code, "00001.png", "2 frames")

    (images / "00001.png").unlink()
    grey = (np.arange(16 * 16).reshape(16, 16) * 200).astype(np.uint16)  # up to 51,000 of 65,535
    Image.fromarray(grey).save(images / "00001.png")
    assert (
        cli(
            "run",
            "genai-bench",
            "--variant",
            "527",
            "--limit",
            "1",
            "--model",
            "folder",
            "--model-arg",
            f"path={images}",
            "--scorer",
            "dummy",
            "--image-format",
            "png",
            "--out",
            tmp_path / "G",
            "--quiet",
        )[0]
        == 0
    )
    stored = np.asarray(Image.open(tmp_path / "G" / "images" / "00001" / "0000.png"))[..., 0]
    assert stored.max() == round(grey.max() / 257) and stored.min() == 0  # scaled to 8 bits, not clipped white


@pytest.mark.parametrize("stage", ["generate", "score"])
def test_disk_full_is_one_line_naming_the_folder(stage, tmp_path, capsys, monkeypatch):
    import errno

    import ts_eval.store.rundir as rundir

    out = tmp_path / "R"
    if stage == "score":
        assert cli("generate", "genai-bench", "--variant", "527", "--limit", "3", "--out", out, "--quiet")[0] == 0
    original = rundir.write_atomic
    calls = []

    def full(path, data):
        calls.append(path)
        if stage == "score" or "images" in path.parts:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        original(path, data)

    monkeypatch.setattr(rundir, "write_atomic", full)
    monkeypatch.setattr("ts_eval.store.files.write_atomic", full)
    before = _snapshot(out)
    args = (
        ["run", "genai-bench", "--variant", "527", "--limit", "3", "--scorer", "dummy", "--out", out, "--quiet"]
        if stage == "generate"
        else ["score", out, "--scorer", "dummy", "--quiet"]
    )
    code = cli(*args)[0]
    line = _one_line_error(capsys, code, "no space left on the device holding", str(out))
    assert "MB free" in line
    if stage == "score":
        assert _snapshot(out) == before
