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

# The GenEval section builds transformers' Mask2Former (scipy) and an open_clip CLIP: the [geneval] extra.
pytest.importorskip("scipy", reason="the GenEval section needs the [geneval] extra (scipy for Mask2Former)")
pytest.importorskip("open_clip", reason="the GenEval section needs the [geneval] extra (open_clip)")


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
    for name in ("environment", "decode", "profile", "vqascore", "geneval", "projection"):
        assert "error" not in report[name], (name, report[name].get("error"), report[name].get("traceback"))
    rows = report["decode"]["rows"]
    assert {(r["window"], r["batch_size"], r["mode"]) for r in rows} == {
        (2, 1, "compiled"),
        (2, 1, "eager"),
        (2, 2, "eager"),
    }
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


def test_sections_run_alone_and_the_markdown_shows_only_those(suite, tmp_path):
    """A rerun of some sections (after a failure on a lent GPU) writes a report of those sections alone."""
    assert suite.main(["--smoke", "--out", str(tmp_path), "--sections", "profile,geneval"]) == 0
    report = json.loads((tmp_path / "gpu-cpu-smoke.json").read_text())
    assert set(suite.SECTIONS) & set(report) == {"profile", "geneval"}
    markdown = (tmp_path / "gpu-cpu-smoke.md").read_text()
    assert "## GenEval" in markdown and "## Reference generator" not in markdown and "## VQAScore" not in markdown
    assert suite.main(["--smoke", "--out", str(tmp_path), "--sections", "decode,nonsense"]) == 2


def test_profile_markdown_splits_a_step_into_kernels_and_gaps(suite):
    """Known answer: 2 GB read in a 2 ms step whose kernels take 1.6 ms -> 0.4 ms of gaps, 1250 GB/s over the kernels."""
    report = {
        "device": "GPU",
        "smoke": False,
        "budget_s": 1,
        "elapsed_s": 1,
        "environment": {"device": "GPU", "peak_hbm_bytes_per_s": 2.5e12},
        "profile": {
            "window": 2,
            "step_wall_ms": 2.0,
            "kernel_ms_per_step": 1.6,
            "kernels_per_step": 3,
            "gap_ms_per_step": 0.4,
            "bytes_per_step": 2e9,
            "ms_by_kind": {"matmul": 1.2, "attention": 0.4},
            "top_kernels": [
                {"name": "gemv", "kind": "matmul", "calls_per_step": 2, "us_per_step": 1200.0},
                {"name": "flash", "kind": "attention", "calls_per_step": 1, "us_per_step": 400.0},
            ],
        },
    }
    text = suite.markdown(report)
    assert "kernels 1.6 ms (3 per step), so 0.4 ms between kernels" in text
    assert "reads 1250 GB/s (50% of peak HBM)" in text and "By kind: matmul 1.2 ms, attention 0.4 ms." in text
    assert "| gemv | matmul | 2 | 1200 |" in text
    assert [
        suite._kernel_kind(n)
        for n in ("nvjet_sm90_tst_64x8", "cudnn_sdpa_flash_fprop", "triton_poi_fused_mul", "gatherTopK")
    ] == ["matmul", "attention", "fused (inductor)", "other"]
