"""GenEval's official recipe recognises the official setup by content: tiny random weights whose sha256 a copied
task YAML pins are official with every other setting at its default; a dummy detector or a GELU CLIP is not."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from ts_eval.official import verdict
from ts_eval.pipeline import build_scorer
from ts_eval.tasks import load_task
from ts_eval.tasks.data import sha256_file

torch = pytest.importorskip("torch")
open_clip = pytest.importorskip("open_clip")
pytest.importorskip("mmdet")

ROOT = Path(__file__).resolve().parent.parent
RUN = {
    "task": {"name": "geneval", "variant": "official", "split": "all", "skill": None, "limit": None},
    "n_samples": 4,
    "image_format": "png",
    "prompt_rewrites": None,
}

pytestmark = pytest.mark.e2e  # real (tiny) backends end to end: outside the inner loop


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> dict[str, str]:
    from ts_eval.geneval.tiny import tiny_clip, tiny_mmdet
    from ts_eval.scorers.tiny_models import TINY_OPENAI_CLIP

    root = tmp_path_factory.mktemp("official-tiny")
    detector = tiny_mmdet(root / "mmdet", scale=(1333, 800)).args  # the official test scale; nothing is run here
    clip = tiny_clip(root / "clip").args["clip_pretrained"]
    # the same tiny CLIP as a plain state dict: open_clip cannot tell it is OpenAI's, so `auto` gives GELU
    config = {k: v for k, v in TINY_OPENAI_CLIP.items() if k != "quick_gelu"}
    (root / "tiny-official-clip.json").write_text(json.dumps(config))
    open_clip.add_model_config(root / "tiny-official-clip.json")
    state = root / "clip-state.bin"
    torch.save(open_clip.load_openai_model(clip, precision="fp32", device="cpu").state_dict(), state)
    return {**detector, "clip_pretrained": clip, "clip_state": str(state)}


@pytest.fixture(scope="module")
def tasks_dir(weights, tmp_path_factory) -> str:
    """The shipped tasks with GenEval's recipe pointing at the tiny weights' sha256."""
    folder = tmp_path_factory.mktemp("tasks") / "tasks"
    shutil.copytree(ROOT / "tasks", folder)
    spec = yaml.safe_load((folder / "geneval.yaml").read_text())
    scorer = spec["official"]["scorer"]
    scorer["detector"]["checkpoint_sha256"] = {"sha256_prefix": [sha256_file(Path(weights["checkpoint"]))[:8]]}
    scorer["color_classifier"]["weights_sha256"] = {
        "one_of": [sha256_file(Path(weights["clip_pretrained"])), sha256_file(Path(weights["clip_state"]))]
    }
    (folder / "geneval.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    return str(folder)


def judged(tasks_dir: str, args: dict[str, str]):
    spec = load_task("geneval", tasks_dir)
    scorer = build_scorer(spec, None, args, device="cpu", batch_size=8)
    return verdict(spec.recipe, RUN, scorer.describe(), default_split=spec.default_split)


def tiny_args(weights) -> dict[str, str]:
    return {
        "detector_config": weights["detector_config"],
        "checkpoint": weights["checkpoint"],
        "clip_pretrained": weights["clip_pretrained"],
    }


def test_default_settings_with_the_pinned_weights_are_official(weights, tasks_dir):
    found = judged(tasks_dir, tiny_args(weights))
    assert found.official, found.differences
    assert found.label == "official"


def test_the_shipped_recipe_pins_the_real_files_not_these(weights):
    found = judged(str(ROOT / "tasks"), tiny_args(weights))
    assert found.differences[0].startswith("scorer.detector.checkpoint_sha256=")
    assert "(official: 743b7d99... or c9d0c4f2...)" in found.differences[0]
    assert any(
        d.startswith("scorer.color_classifier.weights_sha256=") and "b8cca3fd41ae0c99" in d for d in found.differences
    )


def test_dummy_detector_is_unofficial_and_named(weights, tasks_dir):
    found = judged(tasks_dir, {**tiny_args(weights), "detector": "dummy"})
    assert not found.official
    assert found.label == "unofficial: scorer.detector.name=dummy"


def test_a_gelu_clip_is_unofficial_and_named(weights, tasks_dir):
    gelu = {**tiny_args(weights), "clip_model": "tiny-official-clip", "clip_pretrained": weights["clip_state"]}
    found = judged(tasks_dir, gelu)
    assert found.differences == ("scorer.color_classifier.quick_gelu=false (official: true)",)
    assert judged(tasks_dir, {**gelu, "clip_quick_gelu": "true"}).official  # the same weights, QuickGELU


@pytest.mark.parametrize(
    "setting, value, difference",
    [
        ("color_batch_size", "8", "scorer.color_classifier.batch_size=8 (official: 1)"),
        ("dtype", "bf16", "scorer.color_classifier.precision=cpu:bf16-autocast"),
        ("threshold", "0.5", "scorer.judge.threshold=0.5 (official: 0.3)"),
    ],
)
def test_other_settings_that_change_numbers_are_named(weights, tasks_dir, setting, value, difference):
    found = judged(tasks_dir, {**tiny_args(weights), setting: value})
    assert not found.official and found.first_difference.startswith(difference)


def test_another_test_scale_is_unofficial(weights, tasks_dir, tmp_path):
    from ts_eval.geneval.tiny import tiny_mmdet

    small = tiny_mmdet(tmp_path / "small").args  # same weights (same seed), test scale (96, 64)
    found = judged(tasks_dir, {**tiny_args(weights), "detector_config": small["detector_config"]})
    assert found.first_difference == "scorer.detector.preprocess.scale=[96, 64] (official: [1333, 800])"
