"""CLIPScore through open_clip on a tiny random CLIP saved in open_clip's local-dir layout."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from PIL import Image

from ts_eval.errors import UsageError
from ts_eval import run
from ts_eval.records import Prompt, ScoreRequest
from ts_eval.store import read_jsonl

open_clip = pytest.importorskip("open_clip")
torch = pytest.importorskip("torch")

from ts_eval.scorers.clipscore import CLIPScorer  # noqa: E402
from ts_eval.scorers.tiny_models import build_tiny_open_clip  # noqa: E402

PROMPTS = ["a red square", "a dog and a cat in the snow", "three blue birds on a wooden fence, no people",
           "A baker pulling freshly baked bread out of an oven in a bakery.", "an empty room", "two green apples"]


@pytest.fixture(scope="session")
def tiny_clip(tmp_path_factory) -> str:
    return build_tiny_open_clip(tmp_path_factory.mktemp("tiny-open-clip"))


@pytest.fixture(scope="session")
def images(three_image_files) -> list[str]:
    return three_image_files


@pytest.fixture(scope="module")
def scorer(tiny_clip) -> CLIPScorer:
    return CLIPScorer({"model": tiny_clip}, device="cpu", batch_size=8)


def values(scorer: CLIPScorer, pairs: list[tuple[str, str]]) -> list[float]:
    requests = [ScoreRequest(Prompt(f"{i:05d}", text), 0, path, f"sha-{i}") for i, (path, text) in enumerate(pairs)]
    out = scorer.score(requests)
    assert [[s.metric for s in o.samples] for o in out] == [["clipscore"]] * len(pairs)
    return [o.samples[0].value for o in out]


def cosines(tiny_clip: str, pairs: list[tuple[str, str]], prefix: str) -> list[float]:
    """Cosine of image and text embeddings, straight from open_clip's own model and transforms."""
    model, _, preprocess = open_clip.create_model_and_transforms(tiny_clip)
    tokenizer = open_clip.get_tokenizer(tiny_clip)
    model.eval()
    out = []
    with torch.no_grad():
        for path, text in pairs:
            image = model.encode_image(preprocess(Image.open(path).convert("RGB")).unsqueeze(0))
            caption = model.encode_text(tokenizer([prefix + text]))
            out.append(float(torch.cosine_similarity(image, caption).item()))
    return out


def test_value_is_hessel_clipscore(tiny_clip, scorer, images):
    grid = [(image, text) for image in images for text in PROMPTS]
    cos = cosines(tiny_clip, grid, "A photo depicts ")
    assert any(c < 0 for c in cos) and any(c > 0 for c in cos), "the grid should exercise the clamp at 0"
    assert values(scorer, grid) == pytest.approx([2.5 * max(c, 0.0) for c in cos], abs=1e-5)


def test_depends_on_image_and_text(scorer, images):
    positive = [(image, text) for image in images for text in PROMPTS]
    scores = dict(zip(positive, values(scorer, positive)))
    assert all(0.0 <= v <= 2.5 for v in scores.values())
    for text in PROMPTS:
        nonzero = [scores[(image, text)] for image in images if scores[(image, text)] > 0]
        assert len(set(nonzero)) == len(nonzero)
    for image in images:
        nonzero = [scores[(image, text)] for text in PROMPTS if scores[(image, text)] > 0]
        assert len(nonzero) >= 2 and len(set(nonzero)) == len(nonzero)


def test_batch_equals_single_calls(tiny_clip, scorer, images):
    pairs = [(images[i % len(images)], text) for i, text in enumerate(PROMPTS)]
    alone = [values(scorer, [pair])[0] for pair in pairs]
    assert values(scorer, pairs) == pytest.approx(alone, abs=1e-6)
    chunked = CLIPScorer({"model": tiny_clip}, device="cpu", batch_size=4)
    assert values(chunked, pairs) == pytest.approx(alone, abs=1e-6)


def test_weight_and_prefix_options(tiny_clip, scorer, images):
    pairs = [(image, text) for image in images for text in PROMPTS]
    default = values(scorer, pairs)
    unit = values(CLIPScorer({"model": tiny_clip, "weight": "1.0"}, device="cpu"), pairs)
    assert unit == pytest.approx([v / 2.5 for v in default], abs=1e-6)
    bare = CLIPScorer({"model": tiny_clip, "prefix": ""}, device="cpu")
    assert bare.describe() != scorer.describe()
    assert values(bare, pairs) == pytest.approx([2.5 * max(c, 0.0) for c in cosines(tiny_clip, pairs, "")], abs=1e-5)


def test_cpu_bf16(tiny_clip, scorer, images):
    bf16 = CLIPScorer({"model": tiny_clip}, device="cpu", dtype="bf16")
    assert bf16.describe()["precision"] == "bf16-autocast" and scorer.describe()["precision"] == "fp32"
    pairs = [(image, text) for image in images for text in PROMPTS]
    assert values(bf16, pairs) == pytest.approx(values(scorer, pairs), abs=0.05)


def test_describe_names_the_defaults_and_tracks_local_weights(tiny_clip, scorer, tmp_path):
    described = scorer.describe()
    assert described["metric"] == "clipscore" and described["weight"] == 2.5
    assert described["prefix"] == "A photo depicts " and described["pretrained"] is None
    assert described["weights_stamp"]
    assert CLIPScorer({"model": tiny_clip}, device="cpu").describe() == described
    default = CLIPScorer({}, device="cpu").describe()  # validated without loading or downloading anything
    assert (default["model"], default["pretrained"], default["weights_stamp"]) == ("ViT-L-14", "openai", None)


def test_a_checkpoint_file_as_pretrained(tiny_clip, images, tmp_path):
    # a built-in architecture with weights from a local file: the offline route for a downloaded checkpoint
    open_clip.add_model_config(_config_file(tiny_clip, tmp_path))
    weights = str(_folder(tiny_clip) / "open_clip_pytorch_model.bin")
    scorer = CLIPScorer({"model": "tiny-test-clip", "pretrained": weights}, device="cpu")
    from_dir = CLIPScorer({"model": tiny_clip}, device="cpu")
    pairs = [(images[0], PROMPTS[0]), (images[1], PROMPTS[1])]
    assert values(scorer, pairs) == pytest.approx(values(from_dir, pairs), abs=1e-6)
    assert scorer.describe()["weights_stamp"] == CLIPScorer({"model": "tiny-test-clip", "pretrained": weights},
                                                            device="cpu").describe()["weights_stamp"]


def _config_file(tiny_clip: str, tmp_path) -> str:
    config = json.loads(_folder(tiny_clip).joinpath("open_clip_config.json").read_text())["model_cfg"]
    path = tmp_path / "tiny-test-clip.json"
    path.write_text(json.dumps(config))
    return str(path)


def _folder(tiny_clip: str) -> Path:
    return Path(tiny_clip.partition(":")[2])


@pytest.mark.parametrize("args, message", [
    ({"model": "ViT-Q-99"}, "unknown open_clip model 'ViT-Q-99'"),
    ({"model": "ViT-B-32", "pretrained": "imagenet"}, "pretrained='imagenet' is neither a file nor a tag of ViT-B-32"),
    ({"weight": "0"}, "weight must be positive"),
    ({"weight": "heavy"}, "weight='heavy' is not a valid float"),
])
def test_bad_settings_are_one_line_usage_errors(args, message):
    with pytest.raises(UsageError) as caught:
        CLIPScorer(args, device="cpu")
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_local_dir_problems(tiny_clip, tmp_path):
    with pytest.raises(UsageError, match="drop pretrained=openai"):
        CLIPScorer({"model": tiny_clip, "pretrained": "openai"}, device="cpu")
    with pytest.raises(UsageError, match="has no open_clip_config.json"):
        CLIPScorer({"model": f"local-dir:{tmp_path}"}, device="cpu")
    (tmp_path / "open_clip_config.json").write_bytes((_folder(tiny_clip) / "open_clip_config.json").read_bytes())
    with pytest.raises(UsageError, match="has no weights"):  # open_clip alone would build a random model
        CLIPScorer({"model": f"local-dir:{tmp_path}"}, device="cpu")


def test_unreadable_checkpoint_is_one_line(images, tmp_path):
    broken = tmp_path / "broken.bin"
    broken.write_bytes(b"not a checkpoint")
    scorer = CLIPScorer({"model": "ViT-B-32", "pretrained": str(broken)}, device="cpu")
    with pytest.raises(UsageError) as caught:
        values(scorer, [(images[0], PROMPTS[0])])
    assert "could not load open_clip ViT-B-32" in str(caught.value) and "\n" not in str(caught.value)


def test_offline_download_gives_one_line(tmp_path):
    code = textwrap.dedent("""
        from ts_eval.errors import UsageError
        from ts_eval.scorers.clipscore import CLIPScorer
        try:
            CLIPScorer({"model": "ViT-B-32"}, device="cpu")._load()
        except UsageError as exc:
            print("USAGE:", exc)
    """)
    env = {"HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf"), "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    line = [l for l in done.stdout.splitlines() if l.startswith("USAGE:")]
    assert line, done.stderr[-2000:]
    assert "ViT-B-32 (pretrained=openai)" in line[0] and "--scorer-arg pretrained=" in line[0]


def test_end_to_end_genai_bench_reports_clipscore(tiny_clip, genai_527, tmp_path):
    out = tmp_path / "R"
    summary = run("genai-bench", variant="527", data=str(genai_527), split="all", limit=3, model="dummy",
                  scorer="clipscore", scorer_args={"model": tiny_clip}, device="cpu", batch_size=2, out=str(out),
                  progress=False, resamples=100)
    rows = read_jsonl(out / "samples.jsonl")
    assert [r["prompt_id"] for r in rows] == ["00001", "00002", "00003"]
    assert {r["metric"] for r in rows} == {"clipscore"} and all(0.0 <= r["value"] <= 2.5 for r in rows)
    assert summary["metric"] == "clipscore"
    assert summary["groups"]["all"]["n"] == 3
    assert summary["groups"]["all"]["mean"] == pytest.approx(sum(r["value"] for r in rows) / 3)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["verdict"]["differences"][0] == "scorer.name=clipscore (official: vqascore)"
