"""VQAScore through t2v-metrics' real CLIP-T5 code (tokenizer, CLIP tower, projector, T5) on a tiny random model.

The official 11B clip-flant5-xxl cannot run here; the tiny model shares its code path, not its numbers.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import textwrap

import pytest

from ts_eval import run
from ts_eval.errors import UsageError
from ts_eval.records import Prompt, ScoreRequest
from ts_eval.store import read_jsonl

if importlib.util.find_spec("t2v_metrics") is None:  # a plain import would need the unused VLM wrappers' packages
    pytest.skip("t2v-metrics is not installed (see README: the [genai] extra)", allow_module_level=True)

from ts_eval.scorers.tiny_models import build_tiny_clip_t5
from ts_eval.scorers.vqascore import VQAScorer

PROMPTS = [
    "a red square",
    "a dog and a cat in the snow",
    "three blue birds on a wooden fence, no people",
    "A baker pulling freshly baked bread out of an oven in a bakery.",
]

pytestmark = pytest.mark.e2e  # real (tiny) backends end to end: outside the inner loop


@pytest.fixture(scope="session")
def tiny_clip_t5(tmp_path_factory) -> dict[str, str]:
    return build_tiny_clip_t5(tmp_path_factory.mktemp("tiny-clip-t5")).args


@pytest.fixture(scope="session")
def images(three_image_files) -> list[str]:
    return three_image_files


@pytest.fixture(scope="module")
def scorer(tiny_clip_t5) -> VQAScorer:
    return VQAScorer(dict(tiny_clip_t5), device="cpu", batch_size=8)


def requests(pairs: list[tuple[str, str]]) -> list[ScoreRequest]:
    return [ScoreRequest(Prompt(f"{i:05d}", text), 0, path, f"sha-{i}") for i, (path, text) in enumerate(pairs)]


def values(scorer: VQAScorer, pairs: list[tuple[str, str]]) -> list[float]:
    out = scorer.score(requests(pairs))
    assert [len(s.samples) for s in out] == [1] * len(pairs)
    assert {s.samples[0].metric for s in out} == {"vqascore"}
    return [s.samples[0].value for s in out]


def test_official_settings_by_default(scorer):
    described = scorer.describe()
    assert described["model"] == "clip-flant5-xxl"  # the tiny weights stand in under the official entry
    assert described["question_template"] == 'Does this figure show "{}"? Please answer yes or no.'
    assert described["answer_template"] == "Yes"
    assert described["conversation"] == "t5_chat" and described["image_aspect_ratio"] == "pad"
    # t2v-metrics' precision: bf16 weights under a bf16 autocast (the CPU's, as CUDA's is inert here)
    assert described["dtype"] == "bf16" and described["autocast"] == "cpu" and described["device"] == "cpu"


def test_default_dtype_loads_bf16_weights_like_t2v_metrics_and_fp32_loads_float32(tiny_clip_t5, scorer):
    import torch

    assert {p.dtype for p in scorer._load().model.parameters()} == {torch.bfloat16}
    fp32 = VQAScorer({**tiny_clip_t5, "dtype": "fp32"}, device="cpu")
    assert {p.dtype for p in fp32._load().model.parameters()} == {torch.float32}
    assert fp32.describe()["dtype"] == "fp32" and fp32.describe()["autocast"] is None


def test_t2v_metrics_own_forward_cannot_run_bf16_on_the_cpu(scorer, images):
    # Why the CPU path adds the CPU's bf16 autocast: t2v-metrics' forward only autocasts on CUDA.
    with pytest.raises(RuntimeError, match="same dtype"):
        scorer._load().forward([images[0]], [PROMPTS[0]])


def test_probabilities_depend_on_image_and_text(scorer, images):
    grid = [(image, text) for image in images for text in PROMPTS[:3]]
    scores = dict(zip(grid, values(scorer, grid)))
    assert all(0.0 < v < 1.0 for v in scores.values())
    for text in PROMPTS[:3]:
        assert len({round(scores[(image, text)], 12) for image in images}) == len(images)
    for image in images:
        assert len({round(scores[(image, text)], 12) for text in PROMPTS[:3]}) == 3


@pytest.mark.parametrize("dtype, tolerance", [("fp32", 1e-4), ("bf16", 2e-2)])
def test_batch_equals_single_calls_despite_padding(tiny_clip_t5, images, dtype, tolerance):
    # prompts of different lengths are padded together in a batch; the pad must not change any score
    # (beyond bf16's rounding of batched matmuls)
    pairs = [(images[i % len(images)], text) for i, text in enumerate(PROMPTS)]
    whole = VQAScorer({**tiny_clip_t5, "dtype": dtype}, device="cpu", batch_size=8)
    together = values(whole, pairs)
    alone = [values(whole, [pair])[0] for pair in pairs]
    assert together == pytest.approx(alone, rel=tolerance, abs=0)
    chunked = VQAScorer({**tiny_clip_t5, "dtype": dtype}, device="cpu", batch_size=3)
    assert values(chunked, pairs) == pytest.approx(alone, rel=tolerance, abs=0)


def test_one_model_call_per_batch_scores_only_the_pairs(tiny_clip_t5, images, monkeypatch):
    scorer = VQAScorer(dict(tiny_clip_t5), device="cpu", batch_size=2)
    wrapper = scorer._load()
    calls: list[tuple[int, int]] = []
    forward = wrapper.forward
    monkeypatch.setattr(
        wrapper,
        "forward",
        lambda imgs, texts, **kw: calls.append((len(imgs), len(texts))) or forward(imgs, texts, **kw),
    )
    pairs = [(images[i % len(images)], PROMPTS[i % len(PROMPTS)]) for i in range(5)]
    assert len(values(scorer, pairs)) == 5
    assert calls == [(2, 2), (2, 2), (1, 1)]  # never the 5 x 5 matrix of VQAScore.__call__


def test_templates_reach_the_model(tiny_clip_t5, scorer, images):
    pairs = [(images[0], PROMPTS[0]), (images[1], PROMPTS[1])]
    custom = VQAScorer(
        {**tiny_clip_t5, "question_template": 'Is "{}" shown? Answer yes or no.', "answer_template": "No"}, device="cpu"
    )
    assert custom.describe()["question_template"] != scorer.describe()["question_template"]
    official, changed = values(scorer, pairs), values(custom, pairs)
    assert all(0.0 < v < 1.0 for v in changed)
    assert all(abs(a - b) > 1e-3 * a for a, b in zip(official, changed))


def test_fp32_scores_differ_slightly_and_never_share_a_description(tiny_clip_t5, scorer, images):
    fp32 = VQAScorer({**tiny_clip_t5, "dtype": "fp32"}, device="cpu")
    assert fp32.describe() != scorer.describe()  # a different precision never shares cached scores
    pairs = [(images[i], PROMPTS[i]) for i in range(3)]
    low, full = values(scorer, pairs), values(fp32, pairs)
    assert all(0.0 < v < 1.0 for v in full)
    assert low == pytest.approx(full, rel=0.2) and low != full  # same model, coarser arithmetic


def test_describe_is_stable_and_names_every_loaded_file_by_sha256(tiny_clip_t5, scorer):
    import hashlib
    from pathlib import Path

    again = VQAScorer(dict(tiny_clip_t5), device="cpu")
    assert again.describe() == scorer.describe()
    assert json.dumps(scorer.describe())  # it goes into manifest.json
    weights = scorer.describe()["weights"]
    model = Path(tiny_clip_t5["model_path"])
    assert set(weights["model"]["sha256"]) == {"config.json", "generation_config.json", "pytorch_model.bin"}
    assert (
        weights["model"]["sha256"]["pytorch_model.bin"]
        == hashlib.sha256((model / "pytorch_model.bin").read_bytes()).hexdigest()
    )
    assert "spiece.model" in weights["tokenizer"]["sha256"]
    assert {"config.json", "preprocessor_config.json", "model.safetensors"} <= set(weights["vision_tower"]["sha256"])
    assert weights["model"]["repo"] is None  # a plain local folder has no Hub identity


def test_replaced_weights_change_the_description(tiny_clip_t5, tmp_path):
    import shutil

    copy = tmp_path / "model"
    shutil.copytree(tiny_clip_t5["model_path"], copy)
    before = VQAScorer({**tiny_clip_t5, "model_path": str(copy)}, device="cpu").describe()
    with open(copy / "pytorch_model.bin", "ab") as handle:
        handle.write(b"\0")
    after = VQAScorer({**tiny_clip_t5, "model_path": str(copy)}, device="cpu").describe()
    assert (
        before["weights"]["model"]["sha256"]["pytorch_model.bin"]
        != after["weights"]["model"]["sha256"]["pytorch_model.bin"]
    )


@pytest.mark.parametrize(
    "args, message",
    [
        ({"model": "llava-v1.5-13b"}, "unknown model 'llava-v1.5-13b'; choose one of: clip-flant5-xxl"),
        ({"question_template": "Is it a photo?"}, "must contain '{}'"),
        ({"question_template": "{} and {}"}, "at most one '{}'"),
        ({"model_path": "/nonexistent/clip-flant5"}, "model /nonexistent/clip-flant5 does not exist"),
        ({"colour": "red"}, "unknown argument(s) for scorer 'vqascore': colour"),
        ({"dtype": "fp16"}, "dtype=fp16 is not supported; t2v-metrics runs CLIP-T5 in bf16"),
    ],
)
def test_bad_settings_are_one_line_usage_errors(args, message, tiny_clip_t5):
    with pytest.raises(UsageError) as caught:
        VQAScorer({**tiny_clip_t5, **args}, device="cpu")
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_a_folder_without_weights_is_named_at_construction(tiny_clip_t5, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(UsageError) as caught:
        VQAScorer({**tiny_clip_t5, "model_path": str(empty)}, device="cpu")
    text = str(caught.value)
    assert str(empty) in text and "--scorer-arg model_path" in text and "\n" not in text


OFFLINE_PROBE = textwrap.dedent("""
    import sys, time
    from ts_eval.errors import UsageError
    from ts_eval.scorers import vqascore
    args = dict(arg.split("=", 1) for arg in sys.argv[1:])
    start = time.perf_counter()
    try:
        vqascore.VQAScorer(args, device="cpu")
    except UsageError as exc:
        print(f"SECONDS {time.perf_counter() - start:.3f}")
        print("USAGE:", exc)
""")


def _offline(tmp_path, env: dict[str, str], *args: str) -> tuple[float, str]:
    full_env = {
        "HF_HOME": str(tmp_path / "hf"),
        "TS_EVAL_CACHE_DIR": str(tmp_path / "ts"),
        "PATH": "/usr/bin:/bin",
        "OMP_NUM_THREADS": "1",
        **env,
    }
    done = subprocess.run(
        [sys.executable, "-c", OFFLINE_PROBE, *args], capture_output=True, text=True, env=full_env, timeout=300
    )
    lines = done.stdout.splitlines()
    usage = [line for line in lines if line.startswith("USAGE:")]
    assert usage, done.stdout[-2000:] + done.stderr[-2000:]
    assert "Traceback" not in done.stderr and "Retrying" not in done.stderr, done.stderr[-2000:]
    return float(lines[lines.index(usage[0]) - 1].split()[1]), usage[0]


@pytest.mark.parametrize(
    "env",
    [{"HF_HUB_OFFLINE": "1"}, {"HF_ENDPOINT": "http://127.0.0.1:9"}],
    ids=["HF_HUB_OFFLINE", "unreachable-endpoint"],
)
def test_official_model_offline_is_one_fast_line_naming_the_fetch_command(tmp_path, env):
    seconds, line = _offline(tmp_path, env)
    assert seconds < 3.0, seconds
    assert (
        "`hf download zhiqiulin/clip-flant5-xxl --revision main --local-dir DIR` and pass --scorer-arg model_path=DIR"
    ) in line
    assert "22 GB" in line


def test_offline_tokenizer_and_vision_tower_name_their_own_repo_and_flag(tmp_path, tiny_clip_t5):
    import shutil

    _, line = _offline(tmp_path, {"HF_HUB_OFFLINE": "1"}, f"model_path={tiny_clip_t5['model_path']}")
    assert "`hf download google/flan-t5-xxl spiece.model" in line  # only the files the tokenizer needs
    assert (
        "--revision ae7c9136adc7555eeccc78cdd960dfd60fb346ce --local-dir DIR` and pass --scorer-arg tokenizer_path=DIR"
        in line
    )
    model = tmp_path / "model"  # a model whose config.json names the official tower by its Hub id
    shutil.copytree(tiny_clip_t5["model_path"], model)
    config = json.loads((model / "config.json").read_text())
    (model / "config.json").write_text(json.dumps({**config, "mm_vision_tower": "openai/clip-vit-large-patch14-336"}))
    _, line = _offline(
        tmp_path, {"HF_HUB_OFFLINE": "1"}, f"model_path={model}", f"tokenizer_path={tiny_clip_t5['tokenizer_path']}"
    )
    assert (
        "hf download openai/clip-vit-large-patch14-336 config.json preprocessor_config.json pytorch_model.bin "
        "--revision ce19dc912ca5cd21c8a653c79e251e808ccabcd1 --local-dir DIR`"
    ) in line
    assert "--scorer-arg vision_tower_path=DIR" in line


def test_missing_package_is_one_line(monkeypatch):
    from ts_eval.scorers import t2v_import

    for name in [m for m in sys.modules if m.startswith("t2v_metrics")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "t2v_metrics", None)  # `import t2v_metrics` now fails
    with pytest.raises(UsageError, match=r"t2v-metrics is not installed .*pip install --no-deps t2v-metrics==3.0"):
        t2v_import.clip_t5_module()


def test_end_to_end_genai_bench_with_the_task_default_scorer(tiny_clip_t5, genai_527, tmp_path, monkeypatch):
    out = tmp_path / "R"
    options = dict(
        variant="527",
        data=str(genai_527),
        split="all",
        limit=3,
        model="dummy",
        scorer_args=dict(tiny_clip_t5),
        device="cpu",
        batch_size=2,
        out=str(out),
        progress=False,
        resamples=100,
    )
    summary = run("genai-bench", **options)  # no --scorer: the task's vqascore with model clip-flant5-xxl
    rows = read_jsonl(out / "samples.jsonl")
    assert [r["prompt_id"] for r in rows] == ["00001", "00002", "00003"]
    assert {r["metric"] for r in rows} == {"vqascore"} and all(0.0 < r["value"] < 1.0 for r in rows)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["scorer"]["name"] == "vqascore" and manifest["scorer"]["model"] == "clip-flant5-xxl"
    assert manifest["scorer"]["dtype"] == "bf16"
    assert summary["metric"] == "vqascore"
    assert summary["groups"]["all"]["n"] == 3
    assert summary["groups"]["all"]["mean"] == pytest.approx(sum(r["value"] for r in rows) / 3)

    # a rerun finds every score cached and never loads the model
    monkeypatch.setattr(VQAScorer, "_load", lambda self: pytest.fail("model loaded for a cached run"))
    assert run("genai-bench", **{**options, "out": str(tmp_path / "again")})["groups"] == summary["groups"]


def test_generator_dtype_no_longer_reaches_the_scorer(tiny_clip_t5, genai_527, tmp_path):
    # `--dtype fp16` is the generator's; VQAScore used to refuse it, now it keeps its official bf16
    run(
        "genai-bench",
        variant="527",
        data=str(genai_527),
        limit=1,
        model="dummy",
        scorer_args=dict(tiny_clip_t5),
        device="cpu",
        dtype="fp16",
        out=str(tmp_path / "R"),
        progress=False,
        resamples=10,
    )
    assert json.loads((tmp_path / "R" / "manifest.json").read_text())["scorer"]["dtype"] == "bf16"


def test_clip_t5_imports_without_ffmpeg_stubs_or_the_other_wrappers(tmp_path):
    probe = textwrap.dedent("""
        import shutil, sys
        from ts_eval.scorers.t2v_import import SHELLS, clip_t5_module
        clip_t5_module()
        loaded = sorted(m for m in sys.modules if m.startswith("t2v_metrics"))
        # every module but the three shells was loaded by Python from the installed files (a .py file, or
        # a folder without __init__.py): nothing is stubbed
        made_here = [m for m in loaded if sys.modules[m].__spec__.loader is None]
        print(shutil.which("ffmpeg"), made_here == sorted(SHELLS), len(SHELLS),
              any("llava" in m or "clipscore" in m or "itmscore" in m for m in loaded))
    """)
    env = {"PATH": "/usr/bin:/bin", "TS_EVAL_CACHE_DIR": str(tmp_path), "HOME": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    # no ffmpeg anywhere, only the three package shells lack a file (no stubs), no other wrapper imported
    assert done.stdout.split() == ["None", "True", "3", "False"]
    assert not (tmp_path / "bin").exists()  # no ffmpeg stand-in written


def test_the_repos_found_before_the_import_are_t2v_metrics_own():
    from ts_eval.scorers.clip_t5_parts import OFFICIAL_PARTS
    from ts_eval.scorers.t2v_import import clip_t5_models

    table = clip_t5_models()
    for name, parts in OFFICIAL_PARTS.items():
        assert parts == {"model": table[name]["model"]["path"], "tokenizer": table[name]["tokenizer"]["path"]}
