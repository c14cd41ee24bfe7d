"""`--model diffusers` on a tiny random Stable-Diffusion-architecture pipeline saved to disk, offline."""

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

diffusers = pytest.importorskip("diffusers")
torch = pytest.importorskip("torch")

from ts_eval.cli import main  # noqa: E402
from ts_eval.errors import UsageError  # noqa: E402
from ts_eval.generators.diffusers_adapter import DiffusersGenerator  # noqa: E402
from ts_eval.generators.tiny_models import build_tiny_diffusers  # noqa: E402
from ts_eval.records import ImageRequest  # noqa: E402

pytestmark = pytest.mark.e2e  # real (tiny) backends end to end: outside the inner loop

PROMPTS = ["a red apple", "two dogs running in the snow at night, seen from far away", "x", "an empty room"]


@pytest.fixture(scope="module")
def tiny_sd(tmp_path_factory) -> str:
    return build_tiny_diffusers(tmp_path_factory.mktemp("tiny-sd")).args["path"]


def _generator(path: str, **args: str) -> DiffusersGenerator:
    return DiffusersGenerator({"path": path, "steps": "2", **args}, device="cpu")


def _requests(seed: int = 100) -> list[ImageRequest]:
    return [ImageRequest(f"{i:05d}", p, 0, seed + i) for i, p in enumerate(PROMPTS)]


def _pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image).astype(np.int16)


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
            "diffusers",
            "--model-arg",
            f"path={path}",
            "--model-arg",
            "steps=2",
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


def test_full_run_directory_is_deterministic_per_seed(tiny_sd, genai_527, tmp_path):
    assert _run(genai_527, tmp_path / "a", tiny_sd) == 0
    assert _run(genai_527, tmp_path / "b", tiny_sd) == 0
    assert _run(genai_527, tmp_path / "c", tiny_sd, "--seed", "5") == 0
    a, b, c = (_pngs(tmp_path / x) for x in "abc")
    assert len(a) == 4 and a == b
    assert all(a[k] != c[k] for k in a)
    for data in a.values():
        image = Image.open(io.BytesIO(data))
        assert image.size == (64, 64) and image.mode == "RGB" and np.asarray(image).std() > 5
    manifest = json.loads((tmp_path / "a" / "manifest.json").read_text())
    generator = manifest["settings"]["generator"]
    assert generator["name"] == "diffusers" and len(generator["checkpoint_sha256"]) == 64
    config = generator["config"]
    assert config["path"] == str(Path(tiny_sd).resolve()) and config["commit"] is None
    assert (config["pipeline"], config["scheduler"], config["steps"]) == ("StableDiffusionPipeline", "DDIMScheduler", 2)
    assert config["guidance"] == 7.5  # the pipeline's own default, recorded as used
    assert config["diffusers"] == diffusers.__version__
    for name in ("prompts.jsonl", "images.jsonl", "samples.jsonl", "summary.json"):
        assert (tmp_path / "a" / name).is_file()


def test_each_image_is_the_pipeline_output_for_its_own_seed(tiny_sd):
    """Our seed goes into the initial noise exactly as a user calling the pipeline by hand would pass it."""
    generator = _generator(tiny_sd)
    request = _requests()[1]
    ours = generator.generate([request])[0]
    pipe = diffusers.AutoPipelineForText2Image.from_pretrained(tiny_sd)
    pipe.set_progress_bar_config(disable=True)
    theirs = pipe(request.prompt, num_inference_steps=2, generator=torch.Generator().manual_seed(request.seed)).images[
        0
    ]
    assert ours.tobytes() == theirs.tobytes()


def test_batch_matches_singles_up_to_float_rounding(tiny_sd):
    batched = _generator(tiny_sd, batch_size="4").generate(_requests())
    singles = [_generator(tiny_sd).generate([r])[0] for r in _requests()]
    for a, b in zip(batched, singles):
        assert np.abs(_pixels(a) - _pixels(b)).max() <= 2
    # distinct seeds give distinct images, so the batch did not share one noise tensor
    assert len({im.tobytes() for im in batched}) == 4
    # and a batch is exactly reproducible
    again = _generator(tiny_sd, batch_size="4").generate(_requests())
    assert [im.tobytes() for im in again] == [im.tobytes() for im in batched]


def test_every_setting_that_changes_images_changes_the_description(tiny_sd):
    base = _generator(tiny_sd)
    request = _requests()[:1]
    reference = base.generate(request)[0].tobytes()
    for args in (
        {"steps": "3"},
        {"guidance": "1.5"},
        {"negative_prompt": "blurry"},
        {"scheduler": "EulerDiscreteScheduler"},
        {"resolution": "32"},
    ):
        other = _generator(tiny_sd, **args)
        assert other.describe() != base.describe(), args
        assert other.generate(request)[0].tobytes() != reference, args
    assert _generator(tiny_sd, resolution="32").generate(request)[0].size == (32, 32)
    assert (
        _generator(tiny_sd, scheduler="EulerDiscreteScheduler").describe()["config"]["scheduler"]
        == "EulerDiscreteScheduler"
    )


def test_local_folder_is_pinned_by_its_bytes(tiny_sd, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(tiny_sd, copy)
    assert _generator(str(copy)).weights_sha256 == _generator(tiny_sd).weights_sha256
    config = copy / "scheduler" / "scheduler_config.json"
    data = json.loads(config.read_text())
    data["beta_end"] = 0.02
    config.write_text(json.dumps(data))
    assert _generator(str(copy)).weights_sha256 != _generator(tiny_sd).weights_sha256


@pytest.mark.parametrize(
    "args, message",
    [
        (
            {"scheduler": "NotAScheduler"},
            "scheduler 'NotAScheduler' does not fit StableDiffusionPipeline; choose one of:",
        ),
        ({"scheduler": "AutoencoderKL"}, "does not fit"),
        ({"resolution": "60"}, "resolution 60 is not a multiple of 8"),
        ({"steps": "many"}, "steps='many' is not a valid int"),
        ({"steps": "0"}, "steps=0 is out of range"),
        ({"revision": "v1"}, "revision=v1 applies to Hub repos"),
        ({"sampler": "ddim"}, "unknown argument(s) for model 'diffusers': sampler"),
    ],
)
def test_bad_options_are_one_line(tiny_sd, args, message):
    with pytest.raises(UsageError) as caught:
        _generator(tiny_sd, **args)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_bad_path_is_one_line_exit_2(genai_527, tmp_path, capsys):
    out = tmp_path / "run"
    assert _run(genai_527, out, str(tmp_path / "no-such-model")) == 2
    err = capsys.readouterr().err.strip()
    assert "no-such-model is not a folder" in err and len(err.splitlines()) == 1
    assert not out.exists()


def test_not_a_pipeline_folder_is_one_line(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(UsageError, match=r"cannot load diffusers pipeline from .*empty") as caught:
        _generator(str(tmp_path / "empty"))
    assert "\n" not in str(caught.value)


def test_offline_hub_repo_is_one_actionable_line(tmp_path):
    code = textwrap.dedent("""
        from ts_eval.errors import UsageError
        from ts_eval.generators.diffusers_adapter import DiffusersGenerator
        try:
            DiffusersGenerator({"path": "stabilityai/sdxl-turbo", "revision": "v1.0"}, device="cpu")
        except UsageError as exc:
            print("USAGE:", exc)
    """)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    line = [out for out in done.stdout.splitlines() if out.startswith("USAGE:")]
    assert line, done.stderr[-2000:]
    assert "'stabilityai/sdxl-turbo' at revision v1.0" in line[0]
    assert "download stabilityai/sdxl-turbo --revision v1.0" in line[0] and "--model-arg path=DIR" in line[0]
    assert "Couldn't connect" not in done.stderr  # the hub's retry chatter is silenced; the one line says it
