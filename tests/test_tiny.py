"""Tiny models on disk (`ts_eval/tiny.py`): built once per folder, marked ready last, the caller's RNG untouched."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.support import ROOT
from ts_eval.tiny import READY, TinyModel, build_once

torch = pytest.importorskip("torch")


class Recorder:
    """A build that counts its runs and leaves one file."""

    def __init__(self, fail: bool = False):
        self.runs, self.fail = 0, fail

    def __call__(self, folder: Path) -> None:
        self.runs += 1
        (folder / "weights.bin").write_bytes(b"half" if self.fail else b"whole")
        if self.fail:
            raise RuntimeError("killed mid-build")


def test_a_folder_is_built_once_and_returns_its_args(tmp_path):
    build = Recorder()
    first = build_once(tmp_path / "m", {"model": "x"}, build, model="toy")
    again = build_once(tmp_path / "m", {"model": "x"}, build, model="toy")
    assert first == again == TinyModel(tmp_path / "m", {"model": "x"})
    assert build.runs == 1
    assert json.loads((tmp_path / "m" / READY).read_text()) == {"model": "toy", "seed": 0}


def test_a_half_built_folder_is_rebuilt_never_used(tmp_path):
    with pytest.raises(RuntimeError, match="killed"):
        build_once(tmp_path, {}, Recorder(fail=True), model="toy")
    assert (tmp_path / "weights.bin").read_bytes() == b"half" and not (tmp_path / READY).exists()
    build = Recorder()
    build_once(tmp_path, {}, build, model="toy")
    assert build.runs == 1 and (tmp_path / "weights.bin").read_bytes() == b"whole"


def test_another_recipe_rebuilds_the_folder(tmp_path):
    build = Recorder()
    build_once(tmp_path, {}, build, model="toy", seed=0, settings={"scale": (96, 64)})
    build_once(tmp_path, {}, build, model="toy", seed=0, settings={"scale": (96, 64)})  # a tuple reads back equal
    build_once(tmp_path, {}, build, model="toy", seed=1, settings={"scale": (96, 64)})
    build_once(tmp_path, {}, build, model="toy", seed=1, settings={"scale": (1333, 800)})
    assert build.runs == 3
    assert json.loads((tmp_path / READY).read_text()) == {"model": "toy", "seed": 1, "scale": [1333, 800]}


def test_a_build_draws_from_its_seed_and_leaves_the_callers_rng_alone(tmp_path):
    torch.manual_seed(1234)
    torch.rand(3)
    before = torch.random.get_rng_state()
    drawn = {}
    build_once(tmp_path, {}, lambda folder: drawn.setdefault("x", torch.rand(4)), model="toy", seed=7)
    assert torch.equal(torch.random.get_rng_state(), before)
    assert torch.equal(drawn["x"], torch.rand(4, generator=torch.Generator().manual_seed(7)))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_a_build_leaves_the_callers_cuda_rng_alone(tmp_path):
    torch.cuda.manual_seed(5)
    torch.rand(3, device="cuda")
    before = torch.cuda.get_rng_state()
    build_once(tmp_path, {}, lambda folder: torch.rand(2), model="toy", seed=0)
    assert torch.equal(torch.cuda.get_rng_state(), before)


def _open_clip(folder):
    pytest.importorskip("open_clip")
    from ts_eval.scorers.tiny_models import build_tiny_open_clip

    return build_tiny_open_clip(folder)


def _hf(folder):
    pytest.importorskip("transformers")
    pytest.importorskip("scipy", reason="transformers' Mask2Former needs scipy (the [geneval] extra)")
    from ts_eval.geneval.tiny import tiny_hf

    return tiny_hf(folder)


def _mmdet(folder):
    pytest.importorskip("mmdet")
    from ts_eval.geneval.tiny import tiny_mmdet

    return tiny_mmdet(folder)


@pytest.mark.e2e
@pytest.mark.parametrize("build", [_open_clip, _hf, _mmdet], ids=["open_clip", "geneval-hf", "geneval-mmdet"])
def test_building_a_real_tiny_model_leaves_the_callers_torch_rng_alone(build, tmp_path):
    torch.manual_seed(99)
    before = torch.random.get_rng_state()
    built = build(tmp_path / "model")
    assert torch.equal(torch.random.get_rng_state(), before)
    assert (built.folder / READY).is_file()


@pytest.mark.e2e
def test_a_detector_folder_with_a_stray_config_is_rebuilt(tmp_path):
    (tmp_path / "config.json").write_text("{}")  # what a build killed after its first file leaves
    built = _hf(tmp_path)
    assert json.loads((tmp_path / "config.json").read_text())["num_queries"] == 8
    assert built.args == {"detector": "hf", "hf_model": str(tmp_path)}


BUILDER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from ts_eval.tiny import build_once

    folder, me = Path(sys.argv[1]), sys.argv[2]
    (folder.parent / f"arrived-{me}").touch()
    deadline = time.time() + 60
    while len(list(folder.parent.glob("arrived-*"))) < 2 and time.time() < deadline:  # start together
        time.sleep(0.01)

    def build(target):
        with open(folder.parent / "builds.log", "a") as log:
            log.write(me + "\\n")
        time.sleep(1.5)  # long enough for the other process to look at the folder meanwhile
        (target / "weights.bin").write_bytes(b"whole")

    print(build_once(folder, {"model": str(folder)}, build, model="toy").args["model"])
""")


@pytest.mark.reliability
def test_two_processes_build_one_folder_once(tmp_path):
    folder = tmp_path / "model"
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", BUILDER, str(folder), str(i)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    results = [w.communicate(timeout=180) for w in workers]
    assert [w.returncode for w in workers] == [0, 0], [err for _, err in results]
    assert [out.strip() for out, _ in results] == [str(folder)] * 2
    assert len((tmp_path / "builds.log").read_text().split()) == 1
    assert (folder / "weights.bin").read_bytes() == b"whole" and (folder / READY).is_file()
