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

from ts_eval.errors import UsageError
from ts_eval import run
from ts_eval.records import Prompt, ScoreRequest
from ts_eval.store import read_jsonl

if importlib.util.find_spec("t2v_metrics") is None:  # a plain import would need the unused VLM wrappers' packages
    pytest.skip("t2v-metrics is not installed (see README: the [genai] extra)", allow_module_level=True)

from ts_eval.scorers.tiny_models import build_tiny_clip_t5  # noqa: E402
from ts_eval.scorers.vqascore import VQAScorer  # noqa: E402

PROMPTS = ["a red square", "a dog and a cat in the snow", "three blue birds on a wooden fence, no people",
           "A baker pulling freshly baked bread out of an oven in a bakery."]


@pytest.fixture(scope="session")
def tiny_clip_t5(tmp_path_factory) -> dict[str, str]:
    return build_tiny_clip_t5(tmp_path_factory.mktemp("tiny-clip-t5"))


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
    assert described["conversation"] == "t5_chat"
    assert described["precision"] == "fp32" and described["device"] == "cpu"  # CPU auto dtype


def test_probabilities_depend_on_image_and_text(scorer, images):
    grid = [(image, text) for image in images for text in PROMPTS[:3]]
    scores = dict(zip(grid, values(scorer, grid)))
    assert all(0.0 < v < 1.0 for v in scores.values())
    for text in PROMPTS[:3]:
        assert len({round(scores[(image, text)], 12) for image in images}) == len(images)
    for image in images:
        assert len({round(scores[(image, text)], 12) for text in PROMPTS[:3]}) == 3


def test_batch_equals_single_calls_despite_padding(tiny_clip_t5, scorer, images):
    # prompts of different lengths are padded together in a batch; the pad must not change any score
    pairs = [(images[i % len(images)], text) for i, text in enumerate(PROMPTS)]
    together = values(scorer, pairs)
    alone = [values(scorer, [pair])[0] for pair in pairs]
    assert together == pytest.approx(alone, rel=1e-4, abs=0)
    chunked = VQAScorer(dict(tiny_clip_t5), device="cpu", batch_size=3)
    assert values(chunked, pairs) == pytest.approx(alone, rel=1e-4, abs=0)


def test_one_model_call_per_batch_scores_only_the_pairs(tiny_clip_t5, images, monkeypatch):
    scorer = VQAScorer(dict(tiny_clip_t5), device="cpu", batch_size=2)
    wrapper = scorer._load()
    calls: list[tuple[int, int]] = []
    forward = wrapper.forward
    monkeypatch.setattr(wrapper, "forward", lambda imgs, texts, **kw: calls.append((len(imgs), len(texts)))
                        or forward(imgs, texts, **kw))
    pairs = [(images[i % len(images)], PROMPTS[i % len(PROMPTS)]) for i in range(5)]
    assert len(values(scorer, pairs)) == 5
    assert calls == [(2, 2), (2, 2), (1, 1)]  # never the 5 x 5 matrix of VQAScore.__call__


def test_templates_reach_the_model(tiny_clip_t5, scorer, images):
    pairs = [(images[0], PROMPTS[0]), (images[1], PROMPTS[1])]
    custom = VQAScorer({**tiny_clip_t5, "question_template": 'Is "{}" shown? Answer yes or no.',
                        "answer_template": "No"}, device="cpu")
    assert custom.describe()["question_template"] != scorer.describe()["question_template"]
    official, changed = values(scorer, pairs), values(custom, pairs)
    assert all(0.0 < v < 1.0 for v in changed)
    assert all(abs(a - b) > 1e-3 * a for a, b in zip(official, changed))


def test_cpu_bf16_runs_despite_cuda_only_autocast(tiny_clip_t5, scorer, images):
    bf16 = VQAScorer(dict(tiny_clip_t5), device="cpu", dtype="bf16")
    assert bf16.describe()["precision"] == "bf16-autocast-cpu"
    assert bf16.describe() != scorer.describe()  # a different precision never shares cached scores
    pairs = [(images[i], PROMPTS[i]) for i in range(3)]
    low, full = values(bf16, pairs), values(scorer, pairs)
    assert all(0.0 < v < 1.0 for v in low)
    assert low == pytest.approx(full, rel=0.2)  # same model, coarser arithmetic


def test_describe_is_stable_and_tracks_weights(tiny_clip_t5, scorer):
    again = VQAScorer(dict(tiny_clip_t5), device="cpu")
    assert again.describe() == scorer.describe()
    assert json.dumps(scorer.describe())  # it goes into manifest.json


@pytest.mark.parametrize("args, dtype, message", [
    ({"model": "llava-v1.5-13b"}, "auto", "unknown model 'llava-v1.5-13b'; choose one of: clip-flant5-xxl"),
    ({"question_template": "Is it a photo?"}, "auto", "must contain '{}'"),
    ({"question_template": "{} and {}"}, "auto", "at most one '{}'"),
    ({"model_path": "/nonexistent/clip-flant5"}, "auto", "model_path=/nonexistent/clip-flant5 does not exist"),
    ({"colour": "red"}, "auto", "unknown argument(s) for scorer 'vqascore': colour"),
    ({}, "fp16", "use --dtype fp32 (default) or bf16"),
])
def test_bad_settings_are_one_line_usage_errors(args, dtype, message):
    with pytest.raises(UsageError) as caught:
        VQAScorer(args, device="cpu", dtype=dtype)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_missing_weights_name_the_model_and_the_fix(tiny_clip_t5, tmp_path, images):
    empty = tmp_path / "empty"
    empty.mkdir()
    scorer = VQAScorer({**tiny_clip_t5, "model_path": str(empty)}, device="cpu")
    with pytest.raises(UsageError) as caught:
        scorer.score(requests([(images[0], PROMPTS[0])]))
    text = str(caught.value)
    assert "clip-flant5-xxl" in text and str(empty) in text and "--scorer-arg model_path=DIR" in text
    assert "\n" not in text


def test_official_model_offline_gives_one_line(tmp_path):
    code = textwrap.dedent("""
        from ts_eval.errors import UsageError
        from ts_eval.scorers.vqascore import VQAScorer
        try:
            VQAScorer({}, device="cpu")._load()
        except UsageError as exc:
            print("USAGE:", exc)
    """)
    env = {"HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf"), "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    line = [l for l in done.stdout.splitlines() if l.startswith("USAGE:")]
    assert line, done.stderr[-2000:]
    assert "clip-flant5-xxl" in line[0] and "google/flan-t5-xxl" in line[0] and "model_path=DIR" in line[0]


def test_missing_package_is_one_line(monkeypatch):
    from ts_eval.scorers import t2v_import

    real = importlib.util.find_spec
    monkeypatch.delitem(sys.modules, "t2v_metrics")
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "t2v_metrics" else real(name, *a))
    with pytest.raises(UsageError, match=r"t2v-metrics is not installed .*pip install --no-deps t2v-metrics==3.0"):
        t2v_import.import_t2v_metrics()


def test_end_to_end_genai_bench_with_the_task_default_scorer(tiny_clip_t5, genai_527, tmp_path, monkeypatch):
    out = tmp_path / "R"
    options = dict(variant="527", data=str(genai_527), split="all", limit=3, model="dummy",
                   scorer_args=dict(tiny_clip_t5), device="cpu", batch_size=2, out=str(out), progress=False,
                   resamples=100)
    summary = run("genai-bench", **options)  # no --scorer: the task's vqascore with model clip-flant5-xxl
    rows = read_jsonl(out / "samples.jsonl")
    assert [r["prompt_id"] for r in rows] == ["00001", "00002", "00003"]
    assert {r["metric"] for r in rows} == {"vqascore"} and all(0.0 < r["value"] < 1.0 for r in rows)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["scorer"]["name"] == "vqascore" and manifest["scorer"]["model"] == "clip-flant5-xxl"
    assert summary["metric"] == "vqascore"
    assert summary["groups"]["all"]["n"] == 3
    assert summary["groups"]["all"]["mean"] == pytest.approx(sum(r["value"] for r in rows) / 3)

    # a rerun finds every score cached and never loads the model
    monkeypatch.setattr(VQAScorer, "_load", lambda self: pytest.fail("model loaded for a cached run"))
    assert run("genai-bench", **{**options, "out": str(tmp_path / "again")})["groups"] == summary["groups"]


def test_imports_without_ffmpeg_through_a_stand_in_that_only_answers_the_version_check(tmp_path):
    probe = ("import shutil; from ts_eval.scorers.t2v_import import import_t2v_metrics; import_t2v_metrics(); "
             "print(shutil.which('ffmpeg'))")
    env = {"PATH": "/usr/bin:/bin", "TS_EVAL_CACHE_DIR": str(tmp_path), "HOME": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "None"  # PATH is restored after the import
    stand_in = tmp_path / "bin" / "ffmpeg"
    assert subprocess.run([stand_in, "-version"], capture_output=True).returncode == 0
    refused = subprocess.run([stand_in, "-i", "video.mp4", "out.png"], capture_output=True, text=True)
    assert refused.returncode == 1 and "not ffmpeg" in refused.stderr
