"""CLIPScore's three recipes on tiny random CLIPs, each against a computation made without the scorer."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ts_eval import run
from ts_eval.errors import UsageError
from ts_eval.records import Prompt, ScoreRequest
from ts_eval.store import read_jsonl

open_clip = pytest.importorskip("open_clip")
torch = pytest.importorskip("torch")

from ts_eval.scorers.clipscore import CLIPScorer, hessel_clipscore  # noqa: E402
from ts_eval.scorers.tiny_models import build_tiny_open_clip, build_tiny_openai_clip, build_tiny_transformers_clip  # noqa: E402

PROMPTS = [
    "a red square",
    "a dog and a cat in the snow",
    "three blue birds on a wooden fence, no people",
    "A baker pulling freshly baked bread out of an oven in a bakery.",
    "an empty room",
    "two green apples",
]

pytestmark = pytest.mark.e2e  # real (tiny) backends end to end: outside the inner loop
LONG = " ".join(["a very long prompt about a tall red lighthouse on a rocky coast"] * 12)  # > 77 tokens


@pytest.fixture(scope="session")
def tiny_jit(tmp_path_factory) -> str:
    return build_tiny_openai_clip(tmp_path_factory.mktemp("tiny-openai-clip")).args["pretrained"]


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory) -> str:
    return build_tiny_open_clip(tmp_path_factory.mktemp("tiny-open-clip")).args["model"]


@pytest.fixture(scope="session")
def images(three_image_files) -> list[str]:
    return three_image_files


def values(scorer: CLIPScorer, pairs: list[tuple[str, str]]) -> list[float]:
    requests = [ScoreRequest(Prompt(f"{i:05d}", text), 0, path, f"sha-{i}") for i, (path, text) in enumerate(pairs)]
    out = scorer.score(requests)
    assert [[s.metric for s in o.samples] for o in out] == [["clipscore"]] * len(pairs)
    return [o.samples[0].value for o in out]


def grid(images) -> list[tuple[str, str]]:
    return [(image, text) for image in images for text in PROMPTS + [LONG]]


def openai_features(jit: str, pairs, prefix: str):
    """Features from open_clip's own OpenAI loader, with the preprocessing written out as Hessel's script has it."""
    from torchvision.transforms import CenterCrop, Compose, InterpolationMode, Normalize, Resize, ToTensor

    model = open_clip.load_openai_model(jit, precision="fp32", device="cpu").eval()
    size = model.visual.image_size[0]
    transform = Compose(
        [
            Resize(size, interpolation=InterpolationMode.BICUBIC),
            CenterCrop(size),
            lambda image: image.convert("RGB"),
            ToTensor(),
            Normalize((0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711)),
        ]
    )
    tokenize = open_clip.get_tokenizer("ViT-B-32")
    with torch.no_grad():
        image = model.encode_image(torch.stack([transform(Image.open(p)) for p, _ in pairs]))
        text = model.encode_text(tokenize([prefix + t for _, t in pairs]))
    return image.double().numpy(), text.double().numpy()


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


# -- hessel ---------------------------------------------------------------------------------------------------


def test_hessel_is_2_5_max_cos_with_the_prefix(tiny_jit, images):
    pairs = grid(images)
    image, text = openai_features(tiny_jit, pairs, "A photo depicts ")
    cos = cosine(image, text)
    assert (cos < 0).any() and (cos > 0).any(), "the grid should exercise the clamp at 0"
    scorer = CLIPScorer({"variant": "hessel", "pretrained": tiny_jit}, device="cpu", batch_size=5)
    assert values(scorer, pairs) == pytest.approx(2.5 * np.maximum(cos, 0), abs=1e-5)
    no_prefix = 2.5 * np.maximum(cosine(*openai_features(tiny_jit, pairs, "")), 0)
    assert not np.allclose(values(scorer, pairs), no_prefix, atol=1e-3)


def test_hessel_normalises_in_the_features_dtype_like_numpy_does():
    rng = np.random.default_rng(0)
    images, captions = rng.normal(size=(6, 16)).astype(np.float16), rng.normal(size=(6, 16)).astype(np.float16)
    out = hessel_clipscore(images, captions)
    assert out.dtype == np.float16  # clipscore.py keeps CUDA's float16 features in float16
    exact = 2.5 * np.maximum(cosine(images.astype(np.float64), captions.astype(np.float64)), 0)
    assert np.abs(out - exact).max() < 5e-3 and not np.array_equal(out.astype(np.float64), exact)


# -- t2v-metrics ----------------------------------------------------------------------------------------------


def t2v_metrics_forward():
    """t2v-metrics' own CLIPScoreModel, imported from the installed package without its __init__ files
    (as ts-eval imports CLIP-T5, see t2v_import.py), whose score-family imports need unrelated packages."""
    import importlib.machinery
    import types

    from ts_eval.scorers.t2v_import import _package_root

    try:
        root = _package_root()
    except UsageError as exc:
        pytest.skip(str(exc))
    for name in ("t2v_metrics", "t2v_metrics.models", "t2v_metrics.models.clipscore_models"):
        if name not in sys.modules:
            shell = types.ModuleType(name)
            shell.__path__ = [str(root.joinpath(*name.split(".")[1:]))]
            shell.__spec__ = importlib.machinery.ModuleSpec(name, None, is_package=True)
            shell.__spec__.submodule_search_locations = shell.__path__
            sys.modules[name] = shell
    return importlib.import_module("t2v_metrics.models.clipscore_models.clip_model").CLIPScoreModel


def test_t2v_metrics_is_its_own_forward_the_raw_cosine(tiny_jit, images):
    CLIPScoreModel = t2v_metrics_forward()
    scorer = CLIPScorer({"variant": "t2v-metrics", "pretrained": tiny_jit}, device="cpu", batch_size=4)
    pairs = grid(images)
    ours = values(scorer, pairs)
    # t2v-metrics' forward on the same model and transform; its own loader is not used (see clipscore.py)
    reference = CLIPScoreModel.__new__(CLIPScoreModel)
    clip = scorer.backend._load()
    reference.model, reference.preprocess, reference.tokenizer = clip.model, clip.preprocess, clip.tokenizer
    reference.device = "cpu"
    from t2v_metrics.models.model import image_loader

    reference.image_loader = image_loader
    expected = reference.forward([p for p, _ in pairs], [t for _, t in pairs]).tolist()
    assert ours == pytest.approx(expected, abs=1e-6)
    assert min(ours) < 0  # no clamp, no prefix
    image, text = openai_features(tiny_jit, pairs, "")
    assert ours == pytest.approx(cosine(image, text), abs=1e-5)


# -- torchmetrics ---------------------------------------------------------------------------------------------


def test_torchmetrics_is_max_100_cos_on_transformers_clip(tmp_path_factory, images):
    pytest.importorskip("torchmetrics")
    from transformers import CLIPModel, CLIPProcessor

    folder = build_tiny_transformers_clip(tmp_path_factory.mktemp("tiny-hf-clip")).args["model"]
    scorer = CLIPScorer({"variant": "torchmetrics", "model": folder}, device="cpu", batch_size=3)
    pairs = grid(images)
    model, processor = CLIPModel.from_pretrained(folder).eval(), CLIPProcessor.from_pretrained(folder)
    expected = []
    with torch.no_grad():
        for path, text in pairs:
            pixels = processor(images=Image.open(path).convert("RGB"), return_tensors="pt")["pixel_values"]
            ids = processor(text=[text], return_tensors="pt")["input_ids"][:, :77]
            a, b = model.get_image_features(pixels).double(), model.get_text_features(ids).double()
            expected.append(max(100 * float(torch.cosine_similarity(a, b)), 0.0))
    assert 0 in expected and max(expected) > 0, "the grid should exercise the clamp at 0"
    assert values(scorer, pairs) == pytest.approx(expected, abs=1e-4)


# -- activation: every CLIP built for OpenAI's weights uses QuickGELU ---------------------------------------


def block_activations(model) -> set[type]:
    """The MLP activation of every residual block (open_clip) or encoder layer (transformers)."""
    from open_clip.transformer import ResidualAttentionBlock
    from transformers.models.clip.modeling_clip import CLIPEncoderLayer

    found = set()
    for module in model.modules():
        if isinstance(module, ResidualAttentionBlock):
            found.add(type(module.mlp.gelu))
        elif isinstance(module, CLIPEncoderLayer):
            found.add(type(module.mlp.activation_fn))
    assert found, "no transformer blocks found"
    return found


@pytest.fixture
def tiny_tags(tiny_jit, tmp_path, monkeypatch):
    """open_clip tags pointing at local tiny weights: `openai` (OpenAI's format) and a LAION-style one."""
    from open_clip import pretrained as registry

    from ts_eval.scorers.tiny_models import TINY_OPENAI_CLIP

    config = {k: v for k, v in TINY_OPENAI_CLIP.items() if k != "quick_gelu"}
    for name, extra in (("tiny-test-oc", {}), ("tiny-test-oc-quickgelu", {"quick_gelu": True})):
        (tmp_path / f"{name}.json").write_text(json.dumps({**config, **extra}))
        open_clip.add_model_config(tmp_path / f"{name}.json")
    laion = tmp_path / "laion.bin"
    torch.save(open_clip.create_model("tiny-test-oc").state_dict(), laion)
    for name in ("tiny-test-oc", "tiny-test-oc-quickgelu"):
        monkeypatch.setitem(
            registry._PRETRAINED,
            name,
            {"openai": {"file": tiny_jit, "quick_gelu": True}, "laion2b_test": {"file": str(laion)}},
        )
    monkeypatch.setitem(
        registry._PRETRAINED["ViT-B-32"], "openai", {**registry._PRETRAINED["ViT-B-32"]["openai"], "file": tiny_jit}
    )
    monkeypatch.setitem(
        registry._PRETRAINED["ViT-L-14-336"],
        "openai",
        {**registry._PRETRAINED["ViT-L-14-336"]["openai"], "file": tiny_jit},
    )


def test_every_clip_for_openai_weights_uses_quick_gelu_and_laion_keeps_gelu(
    tiny_tags, tiny_jit, tiny_dir, tmp_path_factory
):
    from open_clip.transformer import QuickGELU

    def built(args):
        scorer = CLIPScorer(args, device="cpu")
        return scorer, scorer.backend._load().model

    for args in (
        {"variant": "hessel"},
        {"variant": "t2v-metrics"},
        {"variant": "hessel", "pretrained": tiny_jit},
        {"variant": "hessel", "model": "tiny-test-oc", "pretrained": "openai"},
        {"variant": "hessel", "model": "tiny-test-oc-quickgelu", "pretrained": "laion2b_test"},
        {"variant": "t2v-metrics", "model": tiny_dir, "quick_gelu": "true"},
    ):
        scorer, model = built(args)
        assert block_activations(model) == {QuickGELU}, args
        assert scorer.describe()["quick_gelu"] is True
    for args in (
        {"variant": "hessel", "model": "tiny-test-oc", "pretrained": "laion2b_test"},
        {"variant": "t2v-metrics", "model": tiny_dir},
    ):
        scorer, model = built(args)
        assert block_activations(model) == {torch.nn.GELU}, args
        assert scorer.describe()["quick_gelu"] is False
    with pytest.raises(UsageError, match="QuickGELU"):
        CLIPScorer({"variant": "hessel", "quick_gelu": "false"}, device="cpu")
    from transformers.activations import QuickGELUActivation

    folder = build_tiny_transformers_clip(tmp_path_factory.mktemp("tiny-hf-act")).args["model"]
    from transformers import CLIPModel

    assert block_activations(CLIPModel.from_pretrained(folder)) == {QuickGELUActivation}


def test_default_models_and_weights_are_the_references(tiny_tags):
    hessel = CLIPScorer({"variant": "hessel"}, device="cpu").describe()
    t2v = CLIPScorer({"variant": "t2v-metrics"}, device="cpu").describe()
    # the weights are named by the sha256 in OpenAI's URL, which open_clip checks on download
    assert (hessel["model"], hessel["pretrained"], hessel["weights_sha256"][:8]) == ("ViT-B-32", "openai", "40d36571")
    assert (t2v["model"], t2v["pretrained"], t2v["weights_sha256"][:8]) == ("ViT-L-14-336", "openai", "3035c92b")
    assert (hessel["prefix"], t2v["prefix"]) == ("A photo depicts ", "")
    assert CLIPScorer({}, device="cpu").describe()["variant"] == "hessel"
    tm = CLIPScorer({"variant": "torchmetrics"}, device="cpu").describe()  # nothing loaded or downloaded
    assert (tm["model"], tm["revision"], tm["formula"]) == ("openai/clip-vit-large-patch14", "main", "max(100*cos,0)")
    assert {d["label"] for d in (hessel, t2v, tm)} == {
        "clipscore (hessel)",
        "clipscore (t2v-metrics)",
        "clipscore (torchmetrics)",
    }


# -- dtype, batching, options -----------------------------------------------------------------------------


def test_dtype_is_the_references_unless_asked(tiny_jit, images):
    pairs = grid(images)[:6]
    fp32 = CLIPScorer({"variant": "t2v-metrics", "pretrained": tiny_jit}, device="cpu")
    bf16 = CLIPScorer({"variant": "t2v-metrics", "pretrained": tiny_jit, "dtype": "bf16"}, device="cpu")
    assert fp32.describe()["precision"] == "fp32" and bf16.describe()["precision"] == "bf16-autocast"
    assert CLIPScorer({"variant": "hessel", "pretrained": tiny_jit}, device="cpu").describe()["precision"] == "fp32"
    low, high = values(bf16, pairs), values(fp32, pairs)
    assert low == pytest.approx(high, abs=0.05) and low != high


def test_batch_equals_single_calls(tiny_jit, images):
    pairs = [(images[i % len(images)], text) for i, text in enumerate(PROMPTS)]
    one = CLIPScorer({"variant": "hessel", "pretrained": tiny_jit}, device="cpu", batch_size=1)
    four = CLIPScorer({"variant": "hessel", "pretrained": tiny_jit}, device="cpu", batch_size=4)
    assert values(four, pairs) == pytest.approx(values(one, pairs), abs=1e-6)


@pytest.mark.parametrize(
    "args, message",
    [
        ({"variant": "pickscore"}, "variant='pickscore'; choose one of: hessel, t2v-metrics, torchmetrics"),
        ({"model": "ViT-Q-99"}, "unknown open_clip model 'ViT-Q-99'"),
        (
            {"model": "ViT-B-32", "pretrained": "imagenet"},
            "pretrained='imagenet' is neither a file nor a tag of ViT-B-32",
        ),
        ({"quick_gelu": "maybe"}, "quick_gelu='maybe'"),
        ({"variant": "torchmetrics", "pretrained": "openai"}, "takes a transformers CLIP as model="),
        ({"variant": "torchmetrics", "model": "/no/such/folder"}, "no such folder"),
        ({"dtype": "fp8"}, "dtype='fp8'; choose one of: auto (official), fp32, fp16, bf16"),
    ],
)
def test_bad_settings_are_one_line_usage_errors(args, message):
    with pytest.raises(UsageError) as caught:
        CLIPScorer(args, device="cpu")
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_local_dir_problems(tiny_dir, tmp_path):
    with pytest.raises(UsageError, match="drop pretrained=openai"):
        CLIPScorer({"model": tiny_dir, "pretrained": "openai"}, device="cpu")
    with pytest.raises(UsageError, match=r"has no open_clip_config\.json"):
        CLIPScorer({"model": f"local-dir:{tmp_path}"}, device="cpu")
    folder = Path(tiny_dir.partition(":")[2])
    (tmp_path / "open_clip_config.json").write_bytes((folder / "open_clip_config.json").read_bytes())
    with pytest.raises(UsageError, match="has no weights"):  # open_clip alone would build a random model
        CLIPScorer({"model": f"local-dir:{tmp_path}"}, device="cpu")


def test_a_file_not_in_openais_format_is_one_line(images, tmp_path):
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
            CLIPScorer({"variant": "hessel"}, device="cpu").backend._load()
        except UsageError as exc:
            print("USAGE:", exc)
    """)
    env = {
        "HF_HUB_OFFLINE": "1",
        "HF_HOME": str(tmp_path / "hf"),
        "PATH": "/usr/bin:/bin",
        "https_proxy": "http://0.0.0.0:9",
        "http_proxy": "http://0.0.0.0:9",
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
        "HOME": str(tmp_path),
    }
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    line = [out for out in done.stdout.splitlines() if out.startswith("USAGE:")]
    assert line, done.stderr[-2000:]
    assert "ViT-B-32 (pretrained=openai)" in line[0] and "--scorer-arg pretrained=" in line[0]
    assert "openaipublic" in line[0]  # where OpenAI's own file lives


def test_end_to_end_genai_bench_reports_clipscore(tiny_jit, genai_527, tmp_path):
    out = tmp_path / "R"
    # --dtype is the generator's: the scorer keeps its reference's fp32
    summary = run(
        "genai-bench",
        variant="527",
        data=str(genai_527),
        split="all",
        limit=3,
        model="dummy",
        scorer="clipscore",
        scorer_args={"variant": "t2v-metrics", "pretrained": tiny_jit},
        device="cpu",
        dtype="bf16",
        batch_size=2,
        out=str(out),
        progress=False,
        resamples=100,
    )
    rows = read_jsonl(out / "samples.jsonl")
    assert [r["prompt_id"] for r in rows] == ["00001", "00002", "00003"]
    assert {r["metric"] for r in rows} == {"clipscore"} and all(-1.0 <= r["value"] <= 1.0 for r in rows)
    assert summary["metric"] == "clipscore"
    assert summary["groups"]["all"]["mean"] == pytest.approx(sum(r["value"] for r in rows) / 3)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["scorer"]["variant"] == "t2v-metrics" and manifest["scorer"]["label"] == "clipscore (t2v-metrics)"
    assert manifest["scorer"]["precision"] == "fp32"
    assert manifest["verdict"]["differences"][0] == "scorer.name=clipscore (official: vqascore)"
