"""The real GenEval backends (mmdet, hf Mask2Former, open_clip) on tiny random models built from configs.

The weights are random, so only the code paths are tested: file loading, preprocessing, batching, forward,
post-processing, colour crops and the scorer's bookkeeping. The official weights cannot be downloaded here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ts_eval.cli import main
from ts_eval.errors import UsageError
from ts_eval.geneval.rules import COLORS
from ts_eval.store import read_jsonl

pytestmark = pytest.mark.e2e  # real (tiny) backends end to end: outside the inner loop

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("open_clip")
pytest.importorskip("scipy")  # transformers' Mask2Former loss needs it


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> dict[str, dict[str, str]]:
    from ts_eval.geneval.tiny import tiny_clip, tiny_hf

    root = tmp_path_factory.mktemp("tiny-geneval")
    models = {"hf": tiny_hf(root / "hf").args, "clip": tiny_clip(root / "clip").args}
    try:
        import mmdet  # noqa: F401

        from ts_eval.geneval.tiny import tiny_mmdet

        models["mmdet"] = tiny_mmdet(root / "mmdet").args
    except ImportError:
        pass
    return models


def need_mmdet(tiny):
    if "mmdet" not in tiny:
        pytest.skip("mmdet is not installed (pip install 'ts-eval[geneval]', see README)")


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> list[str]:
    rng = np.random.default_rng(0)
    folder = tmp_path_factory.mktemp("images")
    paths = []
    for i in range(3):
        path = folder / f"{i}.png"
        Image.fromarray(rng.integers(0, 256, (64, 80, 3), dtype=np.uint8)).save(path)
        paths.append(str(path))
    return paths


def load(paths):
    return [Image.open(p).convert("RGB") for p in paths]


def check_instances(found, image):
    from ts_eval.geneval.hf_backend import masks_to_boxes

    assert len(found) == 100  # Mask2Former's max_per_image
    assert found.boxes.shape == (100, 4) and found.boxes.dtype == np.float32
    assert found.scores.dtype == np.float32 and ((found.scores >= 0) & (found.scores <= 1)).all()
    assert ((found.labels >= 0) & (found.labels < 80)).all()
    assert tuple(found.masks.shape) == (100, image.height, image.width)
    assert np.array_equal(found.boxes, masks_to_boxes(torch.as_tensor(found.masks)).numpy())


# -- mmdet ----------------------------------------------------------------------------------------------------


def test_mmdet_detects_a_batch_from_files(tiny, images):
    need_mmdet(tiny)
    from ts_eval.geneval.mmdet_backend import MMDetDetector

    detector = MMDetDetector(
        config=tiny["mmdet"]["detector_config"], checkpoint=tiny["mmdet"]["checkpoint"], device="cpu"
    )
    batch = detector.detect(load(images), images)
    assert len(batch) == 3
    for found, image in zip(batch, load(images)):
        check_instances(found, image)
    alone = detector.detect(load(images[1:2]), images[1:2])[0]
    assert np.array_equal(alone.scores, batch[1].scores)  # one image per forward: a call's batch changes nothing
    assert torch.equal(alone.masks, batch[1].masks)
    described = detector.describe()
    assert described["checkpoint_sha256"] != "random" and described["checkpoint_layout"] == "mmdet3"
    assert (described["precision"], described["preprocess"]["pipeline"], described["preprocess"]["batch"]) == (
        "fp32",
        "mmdet2",
        1,
    )


def test_mmdet_network_sees_the_mmdet2_preprocessing(tiny, images, tmp_path):
    need_mmdet(tiny)
    from ts_eval.geneval.mmdet_backend import MMDetDetector
    from ts_eval.geneval.preprocess import normalize, pad_to_multiple, resize

    detector = MMDetDetector(
        config=tiny["mmdet"]["detector_config"], checkpoint=tiny["mmdet"]["checkpoint"], device="cpu"
    )
    seen = []
    detector.model.backbone.register_forward_pre_hook(lambda module, args: seen.append(args[0].clone()))
    wide = tmp_path / "wide.png"
    Image.fromarray(np.random.default_rng(5).integers(0, 256, (30, 70, 3), dtype=np.uint8)).save(wide)
    found = detector.detect(load([str(wide)]), [str(wide)])[0]
    bgr = np.asarray(Image.open(wide))[..., ::-1]
    # tiny config test scale (96, 64): 70x30 -> factor min(96/70, 64/30) = 1.371 -> 96x41, padded to 96x64
    expected = normalize(pad_to_multiple(resize(np.ascontiguousarray(bgr), (96, 41)))).transpose(2, 0, 1)
    assert len(seen) == 1 and tuple(seen[0].shape) == (1, 3, 64, 96)
    assert np.array_equal(seen[0][0].numpy(), expected)
    assert tuple(found.masks.shape[1:]) == (30, 70)  # back at the file's size


def test_mmdet_loads_mmdet2_key_names(tiny, images, tmp_path):
    """A checkpoint saved with mmdet 2.x's layer names (the v2.0 file's layout) gives the same detections."""
    need_mmdet(tiny)
    import re

    from ts_eval.geneval.mmdet_backend import MMDetDetector

    def to_mmdet2(key: str) -> str:  # the 2.x names, written out by hand
        key = re.sub(r"(pixel_decoder\.encoder\.layers\.\d+)\.self_attn\.", r"\1.attentions.0.", key)
        key = re.sub(r"(transformer_decoder\.layers\.\d+)\.cross_attn\.", r"\1.attentions.0.", key)
        key = re.sub(r"(transformer_decoder\.layers\.\d+)\.self_attn\.", r"\1.attentions.1.", key)
        return re.sub(r"(layers\.\d+)\.ffn\.", r"\1.ffns.0.", key)

    state = torch.load(tiny["mmdet"]["checkpoint"], weights_only=False)["state_dict"]
    old = {to_mmdet2(k): v for k, v in state.items()}
    assert sum(k != to_mmdet2(k) for k in state) > 10
    v2 = tmp_path / "v2.pth"
    torch.save({"state_dict": old, "meta": {}}, v2)
    config = tiny["mmdet"]["detector_config"]
    three = MMDetDetector(config=config, checkpoint=tiny["mmdet"]["checkpoint"], device="cpu")
    two = MMDetDetector(config=config, checkpoint=str(v2), device="cpu")
    assert two.describe()["checkpoint_layout"] == "mmdet2"
    for a, b in zip(three.detect(load(images), images), two.detect(load(images), images)):
        assert np.array_equal(a.scores, b.scores) and np.array_equal(a.boxes, b.boxes)
    broken = tmp_path / "broken.pth"
    torch.save({"state_dict": {k.replace("ffn.", "mlp."): v for k, v in state.items()}}, broken)
    with pytest.raises(UsageError, match="does not fit mmdet config"):
        MMDetDetector(config=config, checkpoint=str(broken), device="cpu")


def test_mmdet_checkpoint_errors(tiny, tmp_path):
    need_mmdet(tiny)
    from ts_eval.geneval.mmdet_backend import MMDetDetector

    with pytest.raises(UsageError, match="no such file"):
        MMDetDetector(config=tiny["mmdet"]["detector_config"], checkpoint=str(tmp_path / "none.pth"), device="cpu")
    partial = tmp_path / "partial.pth"
    state = torch.load(tiny["mmdet"]["checkpoint"], weights_only=False)["state_dict"]
    torch.save({"state_dict": dict(list(state.items())[:5])}, partial)
    with pytest.raises(UsageError, match="does not fit mmdet config"):
        MMDetDetector(config=tiny["mmdet"]["detector_config"], checkpoint=str(partial), device="cpu")
    with pytest.raises(UsageError, match="has no known checkpoint"):
        MMDetDetector(config=tiny["mmdet"]["detector_config"], checkpoint="", device="cpu")
    with pytest.raises(UsageError, match="not found"):
        MMDetDetector(config="mask2former_nonexistent", checkpoint="random", device="cpu")


def test_official_checkpoint_download_failure_is_one_line(tmp_path, monkeypatch):
    pytest.importorskip("mmdet")
    import torch.hub

    from ts_eval.geneval import mmdet_backend as geneval_mmdet

    monkeypatch.setenv("TS_EVAL_CACHE_DIR", str(tmp_path))

    def offline(url, dst, hash_prefix=None, progress=True):
        Path(dst).write_bytes(b"half a file")
        raise OSError("Name or service not known")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    with pytest.raises(UsageError) as error:
        geneval_mmdet.official_checkpoint(progress=False)
    assert geneval_mmdet.OFFICIAL_CHECKPOINT_URL in str(error.value) and "checkpoint=PATH" in str(error.value)
    assert "\n" not in str(error.value)
    assert not any((tmp_path / "weights").iterdir())  # no half-written checkpoint left behind


def test_official_checkpoint_is_the_pinned_revisions_file_or_a_cached_v3(tmp_path, monkeypatch):
    pytest.importorskip("mmdet")
    import torch.hub

    from ts_eval.geneval import mmdet_backend as geneval_mmdet

    monkeypatch.setenv("TS_EVAL_CACHE_DIR", str(tmp_path))
    fetched = []

    def download(url, dst, hash_prefix=None, progress=True):
        fetched.append((url, hash_prefix))
        Path(dst).write_bytes(b"weights")

    monkeypatch.setattr(torch.hub, "download_url_to_file", download)
    path = geneval_mmdet.official_checkpoint(progress=False)
    assert fetched == [(geneval_mmdet.OFFICIAL_CHECKPOINT_URL, "743b7d99")] and path.name.endswith("-743b7d99.pth")
    assert "/v2.0/" in geneval_mmdet.OFFICIAL_CHECKPOINT_URL  # what download_models.sh fetches at the pinned revision
    path.unlink()
    v3 = tmp_path / "weights" / Path(geneval_mmdet.V3_CHECKPOINT_URL).name
    v3.write_bytes(b"weights")
    assert geneval_mmdet.official_checkpoint(progress=False) == v3 and len(fetched) == 1  # no second download


# -- hf -------------------------------------------------------------------------------------------------------


def test_hf_detects_a_batch_of_mixed_sizes(tiny, images, tmp_path):
    from ts_eval.geneval.hf_backend import HFDetector

    detector = HFDetector(model=tiny["hf"]["hf_model"], device="cpu")
    tall = tmp_path / "tall.png"
    Image.fromarray(np.full((90, 40, 3), 128, np.uint8)).save(tall)
    paths = [images[0], str(tall)]
    for found, image in zip(detector.detect(load(paths), paths), load(paths)):
        check_instances(found, image)
    assert detector.describe()["size"] == {"shortest_edge": 800, "longest_edge": 1333}  # mmdetection's test scale
    own = HFDetector(model=tiny["hf"]["hf_model"], device="cpu", resize="processor")
    assert own.describe()["size"] == {"shortest_edge": 64, "longest_edge": 96}
    with pytest.raises(UsageError, match="hf_resize"):
        HFDetector(model=tiny["hf"]["hf_model"], device="cpu", resize="big")


def test_hf_post_processing_equals_mmdetection(tiny):
    pytest.importorskip("mmdet")
    from mmdet.models.seg_heads.panoptic_fusion_heads import MaskFormerFusionHead
    from mmdet.structures.mask import mask2bbox

    from ts_eval.geneval.hf_backend import instances_from_queries, masks_to_boxes

    generator = torch.Generator().manual_seed(0)
    class_logits = torch.randn(12, 81, generator=generator) * 3
    mask_logits = torch.randn(12, 40, 56, generator=generator) * 2
    mask_logits[3] = -5  # an empty mask: its box is all zeros
    head = MaskFormerFusionHead(num_things_classes=80, num_stuff_classes=0, test_cfg={"max_per_image": 100})
    expected = head.instance_postprocess(class_logits, mask_logits)
    ours = instances_from_queries(class_logits, mask_logits, max_per_image=100)
    np.testing.assert_allclose(ours.scores, expected.scores.numpy(), rtol=1e-6)
    assert np.array_equal(ours.labels, expected.labels.numpy())
    assert torch.equal(ours.masks, expected.masks)
    assert np.array_equal(ours.boxes, expected.bboxes.numpy())
    masks = torch.rand(20, 30, 25, generator=generator) > 0.97
    masks[0] = False
    assert torch.equal(masks_to_boxes(masks), mask2bbox(masks))


def test_hf_offline_and_clip_offline_are_one_line(tmp_path):
    code = (
        "from ts_eval.errors import UsageError\n"
        "from ts_eval.geneval.hf_backend import HFDetector\n"
        "from ts_eval.geneval.color import CLIPColorClassifier\n"
        "for build in (lambda: HFDetector(device='cpu'), lambda: CLIPColorClassifier(device='cpu')):\n"
        "    try:\n        build()\n    except UsageError as exc:\n        print('ERR', exc)\n"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf"), "TS_EVAL_CACHE_DIR": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300).stdout
    lines = [line for line in out.splitlines() if line.startswith("ERR")]
    assert len(lines) == 2, out
    assert "cannot load Mask2Former 'facebook/mask2former-swin-small-coco-instance'" in lines[0]
    assert "hf_model=DIR" in lines[0]
    assert "cannot load CLIP ViT-L-14 weights 'openai'" in lines[1] and "clip_pretrained=PATH" in lines[1]


# -- colour classifier ------------------------------------------------------------------------------------------


def test_clip_colors_are_batch_independent(tiny):
    from ts_eval.geneval.color import CLIPColorClassifier

    rng = np.random.default_rng(1)
    crops = [Image.fromarray(rng.integers(0, 256, (20 + i, 30, 3), dtype=np.uint8)) for i in range(7)]
    names = ["car", "dog", "car", "apple", "dog", "car", "bench"]
    one = CLIPColorClassifier(pretrained=tiny["clip"]["clip_pretrained"], device="cpu")
    many = CLIPColorClassifier(pretrained=tiny["clip"]["clip_pretrained"], device="cpu", batch_size=32)
    colors = many.classify(crops, names)
    assert colors == one.classify(crops, names) and set(colors) <= set(COLORS)
    assert sorted(many._classifiers) == ["apple", "bench", "car", "dog"]  # one text classifier per class
    assert tuple(many._classifiers["car"].shape) == (32, 10)
    assert one.describe()["batch_size"] == 1 and many.describe()["batch_size"] == 32


def test_clip_colors_follow_clip_benchmark(tiny):
    """The colour of each crop against clip_benchmark 1.4.0's zero-shot steps, written out on open_clip's
    own OpenAI loader: logits = 100 * normalize(image) @ classifier, argmax over the 10 colours."""
    import open_clip

    from ts_eval.geneval.color import CLIPColorClassifier, color_prompts

    path = tiny["clip"]["clip_pretrained"]
    model = open_clip.load_openai_model(path, precision="fp32", device="cpu").eval()
    transform = open_clip.image_transform(model.visual.image_size, is_train=False)
    tokenizer = open_clip.get_tokenizer("ViT-L-14")
    rng = np.random.default_rng(2)
    crops = [Image.fromarray(rng.integers(0, 256, (24, 16 + 3 * i, 3), dtype=np.uint8)) for i in range(12)]
    names = ["car", "dog", "fire hydrant"] * 4
    expected = []
    with torch.no_grad():
        for crop, name in zip(crops, names):
            columns = []
            for color in COLORS:
                text = torch.nn.functional.normalize(model.encode_text(tokenizer(color_prompts(name, color))), dim=-1)
                columns.append(text.mean(0) / text.mean(0).norm())
            image = torch.nn.functional.normalize(model.encode_image(transform(crop)[None]), dim=-1)
            expected.append((100.0 * image @ torch.stack(columns, 1))[0])
    expected = torch.stack(expected)
    classifier = CLIPColorClassifier(pretrained=path, device="cpu")
    torch.testing.assert_close(classifier.logits(crops, names), expected, rtol=0, atol=1e-4)
    assert classifier.classify(crops, names) == [COLORS[i] for i in expected.argmax(1).tolist()]
    assert expected.std(0).max() > 1e-3, "the crops should give different logits"
    described = classifier.describe()
    assert (described["quick_gelu"], described["precision"], described["pretrained"]) == (True, "cpu:fp32", path)


def test_every_geneval_clip_for_openai_weights_uses_quick_gelu(tiny, monkeypatch, tmp_path):
    from open_clip import pretrained as registry
    from open_clip.transformer import QuickGELU, ResidualAttentionBlock

    from ts_eval.geneval.color import CLIPColorClassifier

    # the default, clip_pretrained=openai: OpenAI's file (here the tiny one in its place) through OpenAI's loader
    monkeypatch.setitem(
        registry._PRETRAINED["ViT-L-14"],
        "openai",
        {**registry._PRETRAINED["ViT-L-14"]["openai"], "file": tiny["clip"]["clip_pretrained"]},
    )
    for classifier in (
        CLIPColorClassifier(device="cpu"),
        CLIPColorClassifier(pretrained=tiny["clip"]["clip_pretrained"], device="cpu"),
    ):
        blocks = [m for m in classifier.clip.model.modules() if isinstance(m, ResidualAttentionBlock)]
        assert len(blocks) == 4 and all(isinstance(b.mlp.gelu, QuickGELU) for b in blocks)
        assert classifier.describe()["quick_gelu"] is True
    assert CLIPColorClassifier(device="cpu").describe()["weights_sha256"].startswith("b8cca3fd")  # OpenAI's URL
    # a CLIP from a folder whose config has no quick_gelu keeps GELU, and says so
    from ts_eval.scorers.tiny_models import build_tiny_open_clip

    laion = CLIPColorClassifier(model=build_tiny_open_clip(tmp_path / "laion").args["model"], device="cpu")
    blocks = [m for m in laion.clip.model.modules() if isinstance(m, ResidualAttentionBlock)]
    assert blocks and all(isinstance(b.mlp.gelu, torch.nn.GELU) for b in blocks)
    assert laion.describe()["quick_gelu"] is False


def test_clip_color_dtype_is_fp32_on_cpu_unless_asked(tiny):
    from ts_eval.geneval.color import CLIPColorClassifier

    path = tiny["clip"]["clip_pretrained"]
    assert CLIPColorClassifier(pretrained=path, device="cpu").describe()["precision"] == "cpu:fp32"
    assert (
        CLIPColorClassifier(pretrained=path, device="cpu", dtype="bf16").describe()["precision"] == "cpu:bf16-autocast"
    )
    with pytest.raises(UsageError, match="dtype='half'"):
        CLIPColorClassifier(pretrained=path, device="cpu", dtype="half")


# -- end to end ---------------------------------------------------------------------------------------------------


def _end_to_end(tmp_path, scorer_args: dict[str, str]) -> Path:
    out = tmp_path / "R"
    args = [
        "run",
        "geneval",
        "--model",
        "dummy",
        "--limit",
        "3",
        "--n-samples",
        "2",
        "--out",
        str(out),
        "--quiet",
        "--no-cache",
        "--device",
        "cpu",
        "--batch-size",
        "3",
    ]
    for key, value in scorer_args.items():
        args += ["--scorer-arg", f"{key}={value}"]
    assert main(args) == 0
    return out


def _check_run(out: Path):
    detections = read_jsonl(out / "detections.jsonl")
    assert len(detections) == 6
    for row in detections:
        objects = [o for v in row["detections"].values() for o in v]
        assert len(objects) == 100  # every instance, before any threshold
        for items in row["detections"].values():
            colored = [o["color"] for o in items if o["color"] is not None]
            assert len(colored) == min(16, len(items)) and set(colored) <= set(COLORS)
    before = (out / "samples.jsonl").read_bytes()
    assert main(["rescore", str(out), "--quiet"]) == 0
    assert (out / "samples.jsonl").read_bytes() == before
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["scorer"]["judge"]["threshold"] == 0.0


def test_end_to_end_with_mmdet_and_clip(tiny, tmp_path):
    need_mmdet(tiny)
    # threshold 0 lets every random-weight instance through, so colour crops run on real masks.
    _check_run(_end_to_end(tmp_path, {**tiny["mmdet"], **tiny["clip"], "threshold": "0"}))


def test_end_to_end_with_hf_and_clip(tiny, tmp_path):
    _check_run(_end_to_end(tmp_path, {**tiny["hf"], **tiny["clip"], "threshold": "0"}))


def test_mmdet_without_compiled_mmcv_is_one_line():
    pytest.importorskip("mmdet")
    code = (
        "import sys\nsys.modules['mmcv._ext'] = None  # an mmcv without compiled ops, e.g. mmcv-lite\n"
        "from ts_eval.errors import UsageError\nfrom ts_eval.geneval.mmdet_backend import resolve_config\n"
        "try:\n    resolve_config('')\nexcept UsageError as exc:\n    print('ERR', exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300).stdout
    assert out.startswith("ERR the mmdet detector needs mmdetection 3.3 with a compiled mmcv 2.1"), out
    assert "--detector hf" in out and len(out.strip().splitlines()) == 1
