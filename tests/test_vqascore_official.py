"""Official VQAScore weights are recognised by content: describe() + the task's recipe give the verdict.

The official 45 GB CLIP-FlanT5-XXL cannot be downloaded here. A tiny random CLIP-T5 stands in: its parts are
laid out as the Hugging Face cache lays out the official repos (blobs named by sha256, snapshots at the
pinned revisions), or given as a plain local folder, and the recipe's checksums are pointed at the tiny files.
"""

from __future__ import annotations

import copy
import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

if importlib.util.find_spec("t2v_metrics") is None:
    pytest.skip("t2v-metrics is not installed (see README: the [genai] extra)", allow_module_level=True)

from tests.hf_cache import add_to_hf_cache
from ts_eval.official import verdict
from ts_eval.pipeline import build_scorer
from ts_eval.scorers.clip_t5_parts import REVISIONS
from ts_eval.scorers.tiny_models import build_tiny_clip_t5
from ts_eval.scorers.vqascore import VQAScorer
from ts_eval.tasks import load_task

ROOT = Path(__file__).resolve().parent.parent
TOWER = "openai/clip-vit-large-patch14-336"
SETTINGS = {
    "task": {"name": "genai-bench", "variant": "527", "split": "hard", "skill": None, "limit": None},
    "n_samples": 1,
    "image_format": "jpeg",
    "prompt_rewrites": None,
}

pytestmark = pytest.mark.e2e  # real (tiny) backends end to end: outside the inner loop


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> dict[str, Path]:
    """A tiny CLIP-T5 whose config.json names the official vision tower by its Hub id, as the real one does."""
    root = tmp_path_factory.mktemp("tiny")
    paths = build_tiny_clip_t5(root / "built").args
    model = root / "model"
    shutil.copytree(paths["model_path"], model)
    config = json.loads((model / "config.json").read_text())
    (model / "config.json").write_text(json.dumps({**config, "mm_vision_tower": TOWER}, indent=2))
    return {"model": model, "tokenizer": Path(paths["tokenizer_path"]), "vision_tower": root / "built" / "vision"}


@pytest.fixture(scope="module")
def hf_cache(tiny, tmp_path_factory) -> Path:
    """The tiny parts under the official repo names: tokenizer and tower at ts-eval's pinned revisions."""
    cache = tmp_path_factory.mktemp("hf-cache")
    add_to_hf_cache(cache, "google/flan-t5-xxl", REVISIONS["google/flan-t5-xxl"], tiny["tokenizer"])
    add_to_hf_cache(cache, TOWER, REVISIONS[TOWER], tiny["vision_tower"])
    add_to_hf_cache(cache, "zhiqiulin/clip-flant5-xxl", "1" * 40, tiny["model"], ref="main")
    return cache


@pytest.fixture
def offline_cache(hf_cache, monkeypatch) -> Path:
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(hf_cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # any network call would be a bug: fail instead
    return hf_cache


def recipe_for(tiny: dict[str, Path], *, model_by: str = "sha256") -> dict:
    """The task's own recipe with its checksums pointed at the tiny files (computed here, from the files)."""
    recipe = copy.deepcopy(load_task("genai-bench").recipe)
    weights = recipe["scorer"]["weights"]
    if model_by == "sha256":
        weights["model"] = {"sha256": {n: sha256(tiny["model"] / n) for n in ("config.json", "pytorch_model.bin")}}
    weights["tokenizer"]["sha256"] = {"spiece.model": sha256(tiny["tokenizer"] / "spiece.model")}
    weights["vision_tower"]["sha256"] = {"model.safetensors": sha256(tiny["vision_tower"] / "model.safetensors")}
    return recipe


def judge(recipe: dict, described: dict):
    return verdict(recipe, SETTINGS, described, default_split="all")


def test_the_task_recipe_pins_the_official_files_found_on_the_hub():
    scorer = load_task("genai-bench").recipe["scorer"]
    assert scorer["dtype"] == "bf16" and scorer["model"] == "clip-flant5-xxl" and scorer["t2v_metrics"] == "3.0"
    assert scorer["weights"]["vision_tower"]["sha256"] == {
        "pytorch_model.bin": "c6032c2e0caae3dc2d4fba35535fa6307dbb49df59c7e182b1bc4b3329b81801"
    }
    assert scorer["weights"]["tokenizer"]["sha256"] == {
        "spiece.model": "d60acb128cf7b7f2536e8f38a5b18a05535c9e14c7a355904270e15b0945ea86"
    }
    assert scorer["weights"]["model"] == {"repo": "zhiqiulin/clip-flant5-xxl"}


def test_default_settings_find_every_part_in_the_hf_cache_and_pass_the_verdict(tiny, offline_cache):
    described = VQAScorer({}, device="cpu").describe()  # no argument at all: the official repos, offline
    weights = described["weights"]
    assert weights["model"]["repo"] == "zhiqiulin/clip-flant5-xxl" and weights["model"]["revision"] == "1" * 40
    assert weights["tokenizer"]["revision"] == REVISIONS["google/flan-t5-xxl"]
    assert weights["vision_tower"]["repo"] == TOWER
    # the sha256 of a cached LFS file is its blob name; it equals the file's content hash
    assert weights["model"]["sha256"]["pytorch_model.bin"] == sha256(tiny["model"] / "pytorch_model.bin")
    assert weights["model"]["sha256"]["config.json"] == sha256(tiny["model"] / "config.json")
    assert judge(recipe_for(tiny, model_by="repo"), described).official
    # the task's own recipe holds the real checksums: the tiny tokenizer is named as the first difference
    found = judge(load_task("genai-bench").recipe, described)
    assert not found.official
    assert found.first_difference.startswith(
        "scorer.weights.tokenizer.sha256.spiece.model=" + sha256(tiny["tokenizer"] / "spiece.model")
    )


def test_a_local_model_folder_is_recognised_by_content_not_by_path(tiny, offline_cache, tmp_path):
    moved = tmp_path / "renamed-anything"
    shutil.copytree(tiny["model"], moved)
    described = VQAScorer({"model_path": str(moved)}, device="cpu").describe()
    assert described["weights"]["model"]["repo"] is None
    assert judge(recipe_for(tiny), described).official
    found = judge(recipe_for(tiny, model_by="repo"), described)  # pinned by repository, a plain folder is not it
    assert found.differences == ("scorer.weights.model.repo=null (official: zhiqiulin/clip-flant5-xxl)",)
    other = tmp_path / "other"
    shutil.copytree(tiny["model"], other)
    (other / "pytorch_model.bin").write_bytes((other / "pytorch_model.bin").read_bytes() + b"\0")
    changed = judge(recipe_for(tiny), VQAScorer({"model_path": str(other)}, device="cpu").describe())
    assert changed.first_difference.startswith("scorer.weights.model.sha256.pytorch_model.bin=")


@pytest.mark.parametrize(
    "args, difference",
    [
        ({"model": "tiny-random"}, "scorer.model=tiny-random (official: clip-flant5-xxl)"),
        ({"dtype": "fp32"}, "scorer.dtype=fp32 (official: bf16)"),
        ({"question_template": 'Is "{}" shown?'}, 'scorer.question_template=Is "{}" shown?'),
    ],
)
def test_a_changed_setting_is_unofficial_and_named(tiny, offline_cache, args, difference):
    found = judge(recipe_for(tiny), VQAScorer({"model_path": str(tiny["model"]), **args}, device="cpu").describe())
    assert not found.official and found.first_difference.startswith(difference)


def test_passing_scorer_vqascore_explicitly_gives_the_same_description(tiny, offline_cache):
    spec = load_task("genai-bench")
    args = {"model_path": str(tiny["model"])}
    implicit = build_scorer(spec, None, dict(args), device="cpu", batch_size=2)
    explicit = build_scorer(spec, "vqascore", dict(args), device="cpu", batch_size=2)
    assert implicit.describe() == explicit.describe()


def test_cli_run_with_a_tiny_model_under_the_pinned_checksums_is_official(tiny, hf_cache, genai_527, tmp_path):
    tasks = tmp_path / "tasks"  # the task spec, its recipe's checksums pointed at the tiny files
    tasks.mkdir()
    raw = yaml.safe_load((ROOT / "tasks" / "genai_bench.yaml").read_text())
    raw["official"] = recipe_for(tiny)
    raw["variants"]["527"].pop("bundled")
    (tasks / "genai_bench.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    out = tmp_path / "run"
    env = {
        **os.environ,
        "HF_HUB_CACHE": str(hf_cache),
        "HF_HUB_OFFLINE": "1",
        "OMP_NUM_THREADS": "1",
        "TS_EVAL_CACHE_DIR": str(tmp_path / "cache"),
    }
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "ts_eval",
            "run",
            "genai-bench",
            "--variant",
            "527",
            "--split",
            "hard",
            "--limit",
            "3",
            "--tasks-dir",
            str(tasks),
            "--data",
            str(genai_527),
            "--device",
            "cpu",
            "--scorer-arg",
            f"model_path={tiny['model']}",
            "--out",
            str(out),
            "--quiet",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    manifest = json.loads((out / "manifest.json").read_text())
    spec = load_task("genai-bench", tasks)
    scorer_recipe = {"scorer": spec.recipe["scorer"]}  # the generator side (image format) is another change's
    assert verdict(scorer_recipe, manifest["settings"], manifest["scorer"], default_split="all").official
    assert manifest["scorer"]["weights"]["vision_tower"]["repo"] == TOWER  # config.json's Hub id, found offline
    assert manifest["settings"]["task"]["split"] == "hard"
    rows = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    assert len(rows) == 3 and all(0.0 < row["value"] < 1.0 for row in rows)


def test_cached_parts_load_and_score_without_touching_the_network(tiny, hf_cache, monkeypatch, three_image_files):
    import socket

    import huggingface_hub.constants

    from ts_eval.records import Prompt, ScoreRequest

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(hf_cache))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)  # not told to stay offline: it must not need to

    def no_network(*args, **kwargs):
        raise AssertionError(f"network call {args!r}")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    scorer = VQAScorer({}, device="cpu")  # every part from the cache; the tower through config.json's Hub id
    out = scorer.score([ScoreRequest(Prompt("00001", "a red square"), 0, three_image_files[0], "x")])
    assert 0.0 < out[0].samples[0].value < 1.0
