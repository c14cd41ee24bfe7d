"""Shared fixtures: where the benchmark data lives, and an isolated score cache per test."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BUNDLED_GENAI_527 = ROOT / "tasks" / "data" / "genai-bench-527"


def shared_data_dir() -> Path | None:
    """$TS_EVAL_SHARED_DATA, else ../shared/data next to the checkout."""
    env = os.environ.get("TS_EVAL_SHARED_DATA")
    candidate = Path(env) if env else ROOT.parent / "shared" / "data"
    return candidate if candidate.is_dir() else None


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
