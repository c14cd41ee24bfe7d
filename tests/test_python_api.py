"""ts_eval.evaluate / ts_eval.score / Results: the same runs as the CLI, for functions, folders, pipelines and
registered names, with the same store, resume, lock and provenance."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace
from typing import ClassVar

import pytest
from PIL import Image

import ts_eval
from tests.support import ROOT, cli
from ts_eval.errors import UsageError
from ts_eval.store.files import read_jsonl

PROMPTS = [
    "a red cube on top of a blue sphere",
    "three cats sleeping on a sofa",
    "a street sign that says open",
    "five apples in a bowl",
    "a lighthouse at dusk",
]
GENERATOR_SOURCE = textwrap.dedent('''
    import random

    from PIL import Image


    def generate(prompts, seeds):
        """A colour field and a box from the seed: each image depends on its own (prompt, seed) only."""
        images = []
        for prompt, seed in zip(prompts, seeds):
            rng = random.Random(seed * 31 + len(prompt))
            image = Image.new("RGB", (48, 48), tuple(rng.randrange(256) for _ in range(3)))
            image.paste(tuple(rng.randrange(256) for _ in range(3)), (8, 8, 8 + rng.randrange(32), 40))
            images.append(image)
        return images
''')
needs_vqascore = pytest.mark.skipif(
    importlib.util.find_spec("t2v_metrics") is None or importlib.util.find_spec("torch") is None,
    reason="VQAScore needs the [genai] extra and t2v-metrics",
)


@pytest.fixture
def my_model(tmp_path, monkeypatch):
    """The user's generator as a module file (the CLI's `--model python` entry) and as the imported function."""
    path = tmp_path / "my_model.py"
    path.write_text(GENERATOR_SOURCE)
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("my_model", None)
    import my_model

    yield path, my_model.generate
    sys.modules.pop("my_model", None)


@pytest.fixture
def prompt_file(tmp_path) -> Path:
    path = tmp_path / "prompts.jsonl"
    path.write_text(
        "".join(json.dumps({"prompt": p, "kind": "colour" if i % 2 else "scene"}) + "\n" for i, p in enumerate(PROMPTS))
    )
    return path


def _summary(run_dir) -> dict:
    return json.loads((Path(run_dir) / "summary.json").read_text())


def _cli_run(capsys, *args) -> Path:
    out = next(a for a in args if isinstance(a, Path) and a.name.startswith("cli"))
    code, _, err = cli("run", *args, "--quiet", "--no-view", capsys=capsys)
    assert code == 0, err
    return out


# -- the same summary as the CLI ------------------------------------------------------------------------


def test_a_function_gives_the_summary_of_model_python(tmp_path, capsys, my_model, prompt_file):
    path, generate = my_model
    options = dict(prompts=str(prompt_file), n_samples=2, scorer="dummy", progress=False, view=False)
    results = ts_eval.evaluate("prompts", model=generate, out=str(tmp_path / "api"), **options)
    cli_dir = _cli_run(
        capsys,
        "prompts",
        "--prompts",
        prompt_file,
        "--n-samples",
        "2",
        "--scorer",
        "dummy",
        "--model",
        "python",
        "--model-arg",
        f"entry={path}:generate",
        "--out",
        tmp_path / "cli",
    )
    assert results.summary == _summary(cli_dir) == _summary(results.run_dir)
    assert [r["sha256"] for r in read_jsonl(results.run_dir / "images.jsonl")] == [
        r["sha256"] for r in read_jsonl(cli_dir / "images.jsonl")
    ]
    assert set(results.summary["groups"]) == {"scene", "colour", "all"}


def test_a_folder_gives_the_summary_of_model_folder(tmp_path, capsys, my_model):
    _, generate = my_model
    made = ts_eval.evaluate(
        "genai-bench",
        model=generate,
        variant="527",
        split="hard",
        limit=6,
        scorer="dummy",
        out=str(tmp_path / "made"),
        progress=False,
        view=False,
    )
    options = dict(variant="527", split="hard", limit=6, scorer="dummy", progress=False, view=False)
    from_path = ts_eval.evaluate("genai-bench", model=made.run_dir, out=str(tmp_path / "api"), **options)
    from_text = ts_eval.evaluate("genai-bench", model=str(made.run_dir), out=str(tmp_path / "api-text"), **options)
    cli_dir = _cli_run(
        capsys,
        "genai-bench",
        "--variant",
        "527",
        "--split",
        "hard",
        "--limit",
        "6",
        "--scorer",
        "dummy",
        "--model",
        "folder",
        "--model-arg",
        f"path={made.run_dir}",
        "--out",
        tmp_path / "cli",
    )
    assert from_path.summary == from_text.summary == _summary(cli_dir)
    assert from_path.summary["model"] == "folder"


@pytest.mark.parametrize(
    "scorer, args",
    [
        ("dummy", {}),
        pytest.param("vqascore", {"model": "tiny-random"}, marks=needs_vqascore),
    ],
)
def test_score_of_in_memory_images_equals_the_run_of_the_same_images(
    tmp_path, capsys, my_model, prompt_file, scorer, args
):
    _, generate = my_model
    images = generate(PROMPTS, list(range(100, 100 + len(PROMPTS))))
    folder = tmp_path / "images"
    folder.mkdir()
    for i, image in enumerate(images, start=1):
        image.save(folder / f"{i:05d}.png")
    (tmp_path / "p.txt").write_text("\n".join(PROMPTS) + "\n")
    scorer_args = [a for k, v in args.items() for a in ("--scorer-arg", f"{k}={v}")]
    cli_dir = _cli_run(
        capsys,
        "prompts",
        "--prompts",
        tmp_path / "p.txt",
        "--model",
        "folder",
        "--model-arg",
        f"path={folder}",
        "--scorer",
        scorer,
        *scorer_args,
        "--device",
        "cpu",
        "--out",
        tmp_path / "cli",
    )
    from_run = [r["value"] for r in read_jsonl(cli_dir / "samples.jsonl")]
    # in memory, and by path, and without the cache: every value computed again equals the run's
    assert (
        ts_eval.score(images, PROMPTS, scorer, scorer_args=args, device="cpu", cache=False, progress=False) == from_run
    )
    paths = [str(folder / f"{i:05d}.png") for i in range(1, len(PROMPTS) + 1)]
    assert (
        ts_eval.score(paths, PROMPTS, scorer, scorer_args=args, device="cpu", batch_size=2, progress=False) == from_run
    )


# -- Results ------------------------------------------------------------------------------------------


def test_results_table_frame_verdict_and_load(tmp_path, capsys, my_model, prompt_file):
    _, generate = my_model
    results = ts_eval.evaluate(
        "prompts",
        model=generate,
        model_name="my-model",
        prompts=str(prompt_file),
        scorer="dummy",
        limit=4,
        out=str(tmp_path / "R"),
        progress=False,
        view=False,
    )
    assert results.run_dir == (tmp_path / "R").resolve()
    assert results.verdict.label == "custom prompts (no official recipe); subset: limit=4"
    assert not results.verdict.official
    code, printed, _ = cli("report", results.run_dir, "--label", "my-model", capsys=capsys)
    assert code == 0 and results.table() + "\n" == printed  # the CLI's own table
    assert "[" not in results.table(ci=False) and results.table(fmt="latex").startswith("\\begin{tabular}")
    frame = results.to_pandas()
    assert list(frame.columns) == [
        "prompt_id",
        "sample_index",
        "prompt",
        "tags",
        "metric",
        "value",
        "reason",
        "image_path",
        "seed",
        "image_sha256",
    ]
    assert list(frame["prompt"]) == PROMPTS[:4] and list(frame["tags"]) == [
        ["scene"],
        ["colour"],
        ["scene"],
        ["colour"],
    ]
    for row in frame.itertuples():
        assert hashlib.sha256(Path(row.image_path).read_bytes()).hexdigest() == row.image_sha256
    assert frame["value"].mean() == pytest.approx(results.summary["groups"]["all"]["mean"])
    loaded = ts_eval.Results.load(tmp_path / "R")
    assert loaded.summary == results.summary and loaded.run_dir == results.run_dir


# -- provenance, resume, lock --------------------------------------------------------------------------


def test_a_function_is_described_resumed_and_renamed(tmp_path, my_model, prompt_file):
    _, generate = my_model
    calls = []

    def counted(prompts, seeds):
        calls.append(len(prompts))
        return generate(prompts, seeds)

    options = dict(prompts=str(prompt_file), scorer="dummy", out=str(tmp_path / "R"), progress=False, view=False)
    first = ts_eval.evaluate("prompts", model=counted, **options)
    described = json.loads((tmp_path / "R" / "manifest.json").read_text())["settings"]["generator"]
    assert described["name"] == "python" and described["checkpoint_sha256"] is None
    assert (
        described["config"]["callable"]
        == f"{__name__}:test_a_function_is_described_resumed_and_renamed.<locals>.counted"
    )
    assert described["config"]["source_sha256"] == hashlib.sha256(Path(__file__).read_bytes()).hexdigest()
    assert sum(calls) == len(PROMPTS)
    again = ts_eval.evaluate("prompts", model=counted, **options)  # resumes: nothing made again
    assert sum(calls) == len(PROMPTS) and again.summary == first.summary
    with pytest.raises(UsageError, match=r"other settings .*generator\.name"):
        ts_eval.evaluate("prompts", model=counted, model_name="fine-tuned", **options)
    renamed = ts_eval.evaluate("prompts", model=counted, model_name="fine-tuned", overwrite=True, **options)
    assert renamed.summary["model"] == "fine-tuned" and "| fine-tuned |" in renamed.table()


def test_a_locked_run_directory_is_refused(tmp_path, my_model, prompt_file):
    from ts_eval.store import RunDir

    _, generate = my_model
    options = dict(prompts=str(prompt_file), scorer="dummy", out=str(tmp_path / "R"), progress=False, view=False)
    ts_eval.evaluate("prompts", model=generate, **options)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {str(ROOT)!r})
        from ts_eval.store import RunDir
        with RunDir({str(tmp_path / "R")!r}).lock():
            print("locked", flush=True)
            time.sleep(60)
    """),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(UsageError, match=r"in use|locked|another"):
            ts_eval.evaluate("prompts", model=generate, **options)
    finally:
        holder.kill()
        holder.wait()
    assert RunDir(tmp_path / "R").exists()


def test_bad_generators_are_one_line(tmp_path, prompt_file):
    options = dict(prompts=str(prompt_file), scorer="dummy", out=str(tmp_path / "R"), progress=False, view=False)
    cases = [
        (lambda prompts, seeds: [Image.new("RGB", (8, 8))], "returned 1 images for 5 prompts"),
        (lambda prompts, seeds: "nope", "returned str"),
        (lambda prompts: [], "must take (prompts: list[str], seeds: list[int])"),
    ]
    for model, message in cases:
        with pytest.raises(UsageError, match=re_escape(message)):
            ts_eval.evaluate("prompts", model=model, overwrite=True, **options)
    for kwargs, message in [
        ({"model": 42}, "got int"),
        ({"model": "no-such-model"}, "neither a registered model"),
        ({"model": "dummy", "model_name": "x"}, "model_name names an in-memory model"),
        ({"model": print, "model_args": {"steps": 2}}, "takes only model_args batch_size"),
        ({"model": "dummy", "limitt": 3}, "unknown option(s) limitt"),
    ]:
        with pytest.raises(UsageError, match=re_escape(message)):
            ts_eval.evaluate("prompts", **{**options, **kwargs})


def re_escape(text: str) -> str:
    import re

    return re.escape(text)


# -- a diffusers pipeline object -----------------------------------------------------------------------


class _Scheduler:
    config: ClassVar[dict] = {"num_train_timesteps": 10}


class ShapedLikeAPipeline:
    """The interface `ts_eval.evaluate` relies on: callable with diffusers' keywords, components, config,
    scheduler; each image from its own CPU torch.Generator."""

    def __init__(self):
        self.scheduler = _Scheduler()
        self.components = {"scheduler": self.scheduler}
        self.config = {"_class_name": "ShapedLikeAPipeline", "_name_or_path": "someone/tiny"}
        self.name_or_path = "someone/tiny"
        self.calls: list[dict] = []

    def set_progress_bar_config(self, **kwargs):
        pass

    def __call__(
        self,
        prompt,
        generator=None,
        output_type="pil",
        num_inference_steps=30,
        guidance_scale=7.0,
        negative_prompt=None,
        height=None,
        width=None,
    ):
        import torch

        self.calls.append({"n": len(prompt), "steps": num_inference_steps, "guidance": guidance_scale})
        images = [
            Image.fromarray((torch.rand((16, 16, 3), generator=g) * 255).to(torch.uint8).numpy()) for g in generator
        ]
        return SimpleNamespace(images=images)


def test_a_pipeline_object_is_seeded_per_image_and_described(tmp_path, prompt_file):
    pytest.importorskip("torch")
    pipe = ShapedLikeAPipeline()
    options = dict(prompts=str(prompt_file), scorer="dummy", progress=False, view=False)
    one = ts_eval.evaluate("prompts", model=pipe, model_args={"steps": 3}, out=str(tmp_path / "b1"), **options)
    three = ts_eval.evaluate(
        "prompts", model=pipe, model_args={"steps": 3, "batch_size": 3}, out=str(tmp_path / "b3"), **options
    )
    assert [c["n"] for c in pipe.calls] == [1] * 5 + [3, 2] and {c["steps"] for c in pipe.calls} == {3}
    assert {c["guidance"] for c in pipe.calls} == {7.0}  # the pipeline's own default, recorded
    hashes = [[r["sha256"] for r in read_jsonl(run / "images.jsonl")] for run in (one.run_dir, three.run_dir)]
    assert hashes[0] == hashes[1] and len(set(hashes[0])) == 5  # the batch changes nothing
    described = json.loads((one.run_dir / "manifest.json").read_text())["settings"]["generator"]
    assert described["name"] == "diffusers" and described["config"]["pipeline"].endswith(":ShapedLikeAPipeline")
    assert described["config"]["name_or_path"] == "someone/tiny" and described["config"]["steps"] == 3
    assert described["config"]["guidance"] == 7.0 and described["config"]["config"]["_class_name"]
    with pytest.raises(UsageError, match="unknown argument"):
        ts_eval.evaluate("prompts", model=pipe, model_args={"stepz": 3}, out=str(tmp_path / "x"), **options)


def test_a_real_diffusers_pipeline_makes_the_images_of_model_diffusers(tmp_path, capsys, prompt_file):
    pytest.importorskip("diffusers")
    from diffusers import AutoPipelineForText2Image

    from ts_eval.generators.tiny_models import build_tiny_diffusers

    folder = build_tiny_diffusers(tmp_path / "tiny-sd").args["path"]
    pipe = AutoPipelineForText2Image.from_pretrained(folder)
    results = ts_eval.evaluate(
        "prompts",
        model=pipe,
        model_args={"steps": 2},
        prompts=str(prompt_file),
        scorer="dummy",
        out=str(tmp_path / "api"),
        progress=False,
        view=False,
        device="cpu",
    )
    cli_dir = _cli_run(
        capsys,
        "prompts",
        "--prompts",
        prompt_file,
        "--model",
        "diffusers",
        "--model-arg",
        f"path={folder}",
        "--model-arg",
        "steps=2",
        "--scorer",
        "dummy",
        "--device",
        "cpu",
        "--out",
        tmp_path / "cli",
    )
    assert [r["sha256"] for r in read_jsonl(results.run_dir / "images.jsonl")] == [
        r["sha256"] for r in read_jsonl(cli_dir / "images.jsonl")
    ]
    assert results.summary["groups"] == _summary(cli_dir)["groups"]
    described = json.loads((results.run_dir / "manifest.json").read_text())["settings"]["generator"]
    cli_described = json.loads((cli_dir / "manifest.json").read_text())["settings"]["generator"]
    assert described["checkpoint_sha256"] == cli_described["checkpoint_sha256"] is not None  # the same folder
    assert described["config"]["pipeline"] == (
        "diffusers.pipelines.stable_diffusion.pipeline_stable_diffusion:StableDiffusionPipeline"
    )


# -- score's input checks ------------------------------------------------------------------------------


def test_score_input_errors_are_one_line(tmp_path):
    red = Image.new("RGB", (8, 8), "red")
    (tmp_path / "not-an-image.png").write_text("hello")
    cases = [
        (([red, red], ["a"]), "2 images but 1 prompts"),
        (([red], [3]), "prompt 0 is 3 (int), not text"),
        (([red], ["  "]), "prompt 0 is blank"),
        (([b"bytes"], ["a"]), "image 0 is a bytes"),
        (([tmp_path / "not-an-image.png"], ["a"]), "not a readable image"),
        (([tmp_path / "missing.png"], ["a"]), "not a readable image"),
        (("red.png", "a red square"), "give a list of images"),
    ]
    for (images, prompts), message in cases:
        with pytest.raises(UsageError, match=re_escape(message)) as caught:
            ts_eval.score(images, prompts, scorer="dummy", progress=False)
        assert "\n" not in str(caught.value)
    with pytest.raises(UsageError, match="judges each image against its benchmark metadata"):
        ts_eval.score([red], ["a red square"], scorer="geneval", scorer_args={"detector": "dummy"}, progress=False)
    assert ts_eval.score([], [], scorer="dummy") == []


def test_score_uses_the_cache_and_batches(tmp_path, monkeypatch):
    from ts_eval.scorers.dummy import DummyScorer

    images = [Image.new("RGB", (8, 8), (i, 0, 0)) for i in range(5)]
    prompts = [f"prompt {i}" for i in range(5)]
    seen = []
    original = DummyScorer.score

    def spy(self, requests):
        seen.append(len(requests))
        return original(self, requests)

    monkeypatch.setattr(DummyScorer, "score", spy)
    first = ts_eval.score(images, prompts, scorer="dummy", batch_size=2, progress=False)
    assert seen == [2, 2, 1]
    assert ts_eval.score(images, prompts, scorer="dummy", batch_size=2, progress=False) == first
    assert seen == [2, 2, 1]  # every value from the cache
    assert ts_eval.score(images, prompts, scorer="dummy", cache=False, progress=False) == first and seen[-1] == 5


# -- the package -----------------------------------------------------------------------------------------


def test_the_facade_names_are_the_api_functions_and_import_nothing_heavy():
    import ts_eval.api as api
    import ts_eval.pipeline

    assert ts_eval.evaluate is api.evaluate and ts_eval.run is api.run and ts_eval.score is api.score
    probe = "import ts_eval, sys; print(callable(ts_eval.evaluate), 'pandas' in sys.modules, 'torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, check=True)
    assert done.stdout.split() == ["True", "False", "False"]
