"""`--model janus` on a tiny random Janus saved in transformers' layout, offline."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
if not hasattr(transformers, "JanusForConditionalGeneration"):
    pytest.skip(f"transformers {transformers.__version__} has no Janus (needs >= 4.52)", allow_module_level=True)

from ts_eval.cli import main  # noqa: E402
from ts_eval.errors import UsageError  # noqa: E402
from ts_eval.generators.janus import JanusGenerator  # noqa: E402
from ts_eval.generators.tiny_models import build_tiny_janus  # noqa: E402
from ts_eval.records import ImageRequest  # noqa: E402

pytestmark = pytest.mark.e2e  # real (tiny) backends end to end: outside the inner loop

# Mixed lengths, so batches are left-padded.
PROMPTS = ["a red apple", "two dogs running in the snow at night, seen from very far away", "x", "an empty room"]


@pytest.fixture(scope="module")
def tiny_janus(tmp_path_factory) -> str:
    return build_tiny_janus(tmp_path_factory.mktemp("tiny-janus")).args["path"]


@pytest.fixture(scope="module")
def janus(tiny_janus) -> JanusGenerator:
    return JanusGenerator({"path": tiny_janus}, device="cpu")


def _requests(seed: int = 100) -> list[ImageRequest]:
    return [ImageRequest(f"{i:05d}", p, 0, seed + i) for i, p in enumerate(PROMPTS)]


def _run(genai_527: Path, out: Path, path: str, *extra: str) -> int:
    return main(
        [
            "run",
            "genai-bench",
            "--variant",
            "527",
            "--data",
            str(genai_527),
            "--model",
            "janus",
            "--model-arg",
            f"path={path}",
            *extra,
            "--scorer",
            "dummy",
            "--limit",
            "4",
            "--device",
            "cpu",
            "--out",
            str(out),
            "--quiet",
        ]
    )


def _pngs(run: Path) -> dict[str, bytes]:
    return {str(p.relative_to(run)): p.read_bytes() for p in sorted((run / "images").rglob("*.*"))}


def test_full_run_directory_is_deterministic_per_seed(tiny_janus, genai_527, tmp_path):
    assert _run(genai_527, tmp_path / "a", tiny_janus) == 0
    assert _run(genai_527, tmp_path / "b", tiny_janus, "--model-arg", "batch_size=3") == 0
    assert _run(genai_527, tmp_path / "c", tiny_janus, "--seed", "5") == 0
    a, b, c = (_pngs(tmp_path / x) for x in "abc")
    assert len(a) == 4 and a == b  # batch 3 (+1) gives the bytes of batch 16
    assert all(a[k] != c[k] for k in a)
    for data in a.values():
        image = Image.open(io.BytesIO(data))
        assert image.size == (64, 64) and image.mode == "RGB" and np.asarray(image).std() > 5
    generator = json.loads((tmp_path / "a" / "manifest.json").read_text())["settings"]["generator"]
    assert generator["name"] == "janus" and len(generator["checkpoint_sha256"]) == 64
    config = generator["config"]
    assert (config["cfg"], config["temperature"], config["image_tokens"], config["resolution"]) == (5.0, 1.0, 64, 64)
    assert config["path"] == str(Path(tiny_janus).resolve()) and config["transformers"] == transformers.__version__
    assert (tmp_path / "a" / "summary.json").is_file()


def test_batch_of_n_equals_n_singles(janus):
    requests = _requests()
    batched = janus.generate_tokens(requests)
    for i, request in enumerate(requests):
        assert torch.equal(batched[i], janus.generate_tokens([request])[0]), PROMPTS[i]
    images = janus.decode(batched)
    assert [im.tobytes() for im in images] == [janus.generate([r])[0].tobytes() for r in requests]
    assert len({tuple(row.tolist()) for row in batched}) == 4


def test_greedy_tokens_equal_transformers_own_image_generate(tiny_janus):
    """CFG rows, unconditional masking, KV cache and embeddings as transformers' Janus generate() does them."""
    greedy = JanusGenerator({"path": tiny_janus, "temperature": "0"}, device="cpu")
    for request in _requests()[:2]:
        inputs = greedy.processor(
            text=[greedy.prompt_text(request.prompt)], generation_mode="image", return_tensors="pt"
        )
        theirs = greedy.model.generate(**inputs, generation_mode="image", do_sample=False, guidance_scale=5.0)
        assert torch.equal(greedy.generate_tokens([request])[0], theirs[0].long())


def test_prompt_is_the_chat_format_followed_by_begin_of_image(janus):
    assert janus.prompt_text("a red apple") == "<|User|>: a red apple\n\n<|Assistant|>:"
    inputs = janus.processor(text=[janus.prompt_text("a red apple")], generation_mode="image", return_tensors="pt")
    ids = inputs["input_ids"][0].tolist()
    assert ids[0] == janus.ids.bos and ids[-1] == janus.ids.boi


def test_sampling_settings_change_images_and_description(tiny_janus, janus):
    request = _requests()[:1]
    reference = janus.generate_tokens(request)
    for args in ({"cfg": "1"}, {"temperature": "0.5"}):
        other = JanusGenerator({"path": tiny_janus, **args}, device="cpu")
        assert other.describe() != janus.describe()
        assert not torch.equal(other.generate_tokens(request), reference), args
    same = JanusGenerator({"path": tiny_janus, "batch_size": "2"}, device="cpu")
    assert torch.equal(same.generate_tokens(request), reference)


@pytest.mark.parametrize(
    "args, message",
    [
        ({"cfg": "0.5"}, "cfg=0.5 is out of range"),
        ({"temperature": "-1"}, "temperature=-1.0 is out of range"),
        ({"top_k": "50"}, "unknown argument(s) for model 'janus': top_k"),
    ],
)
def test_bad_options_are_one_line(tiny_janus, args, message):
    with pytest.raises(UsageError) as caught:
        JanusGenerator({"path": tiny_janus, **args}, device="cpu")
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_offline_hub_repo_is_one_actionable_line(tmp_path):
    code = textwrap.dedent("""
        from ts_eval.errors import UsageError
        from ts_eval.generators.janus import JanusGenerator
        try:
            JanusGenerator({}, device="cpu")
        except UsageError as exc:
            print("USAGE:", exc)
    """)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    line = [out for out in done.stdout.splitlines() if out.startswith("USAGE:")]
    assert line, done.stderr[-2000:]
    assert "'deepseek-community/Janus-Pro-7B' at revision main" in line[0]
    assert "download deepseek-community/Janus-Pro-7B --revision main" in line[0] and "path=DIR" in line[0]
