"""`benchmarks/gpu_suite.py --smoke`: the GPU suite's code on CPU with tiny shapes, so it cannot rot unseen.
(The GPU path itself needs a GPU; this runs the same functions.)"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e  # real (tiny) backends end to end: outside the inner loop

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def suite(monkeypatch):
    spec = importlib.util.spec_from_file_location("gpu_suite", ROOT / "benchmarks" / "gpu_suite.py")
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "gpu_suite", module)  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_smoke_run_fills_every_section(suite, tmp_path):
    assert suite.main(["--smoke", "--out", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "gpu-cpu-smoke.json").read_text())
    for name in ("environment", "decode", "vqascore", "geneval", "projection"):
        assert "error" not in report[name], (name, report[name].get("error"), report[name].get("traceback"))
    rows = report["decode"]["rows"]
    assert {(r["window"], r["batch_size"], r["mode"]) for r in rows} == {(2, 1, "compiled"), (2, 1, "eager"), (2, 2, "eager")}
    for row in rows:
        assert row["decode_step_ms"] > 0 and row["ms_per_image"] > row["vq_decode_ms_per_image"] > 0
        assert row["weight_bytes_per_step"] > 0 and row["fraction_of_measured_read"] > 0
    assert all(r["images_per_s"] > 0 for r in report["vqascore"]["rows"])
    assert all(r["images_per_s"] > 0 for r in report["geneval"]["detector_rows"])
    assert {r["split"] for r in report["projection"]["runs"]} == {"hard (871 prompts)", "all (1600 prompts)"}
    markdown = (tmp_path / "gpu-cpu-smoke.md").read_text()
    assert "SMOKE run" in markdown and "| 2 | 1 | compiled |" in markdown


def test_a_failing_section_is_recorded_and_the_rest_still_runs(suite, tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("CUDA out of memory (simulated)")

    monkeypatch.setattr(suite, "vqascore_section", broken)
    monkeypatch.setattr(suite, "decode_section", broken)
    assert suite.main(["--smoke", "--out", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "gpu-cpu-smoke.json").read_text())
    assert report["vqascore"]["error"] == "RuntimeError: CUDA out of memory (simulated)"
    assert "error" in report["projection"]  # needs the decode and VQAScore rows
    assert "error" not in report["geneval"]
    assert "**error** RuntimeError: CUDA out of memory (simulated)" in (tmp_path / "gpu-cpu-smoke.md").read_text()
