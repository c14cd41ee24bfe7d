"""Shared fixtures: where the benchmark data lives, and an isolated score cache per test."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.support import shared_data_dir


@pytest.fixture
def shared_data() -> Path:
    folder = shared_data_dir()
    if folder is None:
        pytest.skip("benchmark data not found: set TS_EVAL_SHARED_DATA to the shared data folder")
    return folder


@pytest.fixture
def genai_527(shared_data) -> Path:
    return shared_data / "genai_bench_527"


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("TS_EVAL_CACHE_DIR", str(tmp_path_factory.mktemp("score-cache")))


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Torch runs single-threaded in tests: on a small shared CI machine, two busy threads per process are
    several times slower than one, and timings are steadier."""
    torch = sys.modules.get("torch")
    if torch is None:
        yield
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def three_image_files(tmp_path_factory) -> list[str]:
    """PNG files that differ in size and content: flat red, noise, a grey gradient."""
    from PIL import Image

    folder = tmp_path_factory.mktemp("three-images")
    made = [
        Image.new("RGB", (48, 32), (255, 0, 0)),
        Image.effect_noise((40, 56), 80).convert("RGB"),
        Image.linear_gradient("L").resize((64, 64)).convert("RGB"),
    ]
    paths = [str(folder / f"{i}.png") for i in range(len(made))]
    for image, path in zip(made, paths):
        image.save(path)
    return paths
