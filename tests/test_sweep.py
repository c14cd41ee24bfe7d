"""`ts-eval sweep`: the FLOPs formulas (inference and training), the counter, their agreement, what the real
sampler executes, latency rows (eager and compiled) and bad input."""

from __future__ import annotations

import json

import pytest
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from ts_eval.cli import main
from ts_eval.generators.token_shuffle.configs import CONFIGS, ModelArgs, VQArgs
from ts_eval.generators.token_shuffle.generator import build_model
from ts_eval.generators.token_shuffle.sampling import SamplingOptions, generate_codes, prompt_block
from ts_eval.sweep.flops import (
    _count,
    analytic_flops,
    analytic_training_flops,
    counted_flops,
    counted_training_flops,
)
from ts_eval.sweep.runner import SweepOptions, run_sweep

MICRO = ModelArgs(
    dim=8,
    n_layers=1,
    n_heads=2,
    n_kv_heads=1,
    ffn_dim=16,
    text_vocab_size=5,
    shuffle_mlp_blocks=1,
    shuffle_mlp_ratio=1.0,
    vq=VQArgs(codebook_size=10, ch=32, ch_mult=(1, 1), num_res_blocks=1, z_channels=32),
)

pytestmark = pytest.mark.e2e  # real (tiny) backends end to end: outside the inner loop


def step_by_step_flops(window: int, image_tokens: int, prefill_len: int) -> int:
    """MICRO's FLOPs enumerated matmul by matmul, step by step (independent of the closed form)."""
    d, f, v, hd, heads, kv = 8, 16, 10, 4, 2, 1
    s2 = window * window

    def transformer(positions: int, keys_per_position: list[int]) -> int:
        qkv = 2 * positions * d * (heads + 2 * kv) * hd
        wo = 2 * positions * d * d
        ffn = 3 * 2 * positions * d * f
        attention = sum(2 * k * d + 2 * k * d for k in keys_per_position)  # QKᵀ and AV over all heads
        return qkv + wo + ffn + attention

    shuffle_in = (s2 * 2 * d * (d // s2) + 2 * 2 * d * d) if window > 1 else 0  # compress + one residual MLP
    shuffle_out = (2 * 2 * d * d + s2 * 2 * (d // s2) * d) if window > 1 else 0  # one residual MLP + expand
    head = s2 * 2 * d * v
    total = transformer(prefill_len, [prefill_len] * prefill_len) + shuffle_out + head  # dense P×P scores
    for k in range(1, image_tokens // s2):
        total += shuffle_in + transformer(1, [prefill_len + k]) + shuffle_out + head
    return total


@pytest.mark.parametrize("window", [1, 2])
@pytest.mark.parametrize("cfg", [False, True])
def test_analytic_formula_matches_a_hand_enumeration(window, cfg):
    expected = step_by_step_flops(window, 16, 7) * (2 if cfg else 1)
    assert analytic_flops(MICRO, window, 16, 7, cfg) == expected


@pytest.mark.parametrize("config", ["tiny", "small"])
@pytest.mark.parametrize("window", [1, 2, 4])
def test_counted_equals_analytic_on_the_meta_device(config, window):
    args = CONFIGS[config]
    model = build_model(args, window, "meta", torch.float32)
    for tokens in (16 * 16, 32 * 32):
        counted = counted_flops(model, tokens, 20, cfg=True)
        assert counted["total"] == analytic_flops(args, window, tokens, 20, True)


@pytest.mark.parametrize("window", [1, 2])
def test_series_sum_equals_counting_every_step(window):
    """Counting 3 decode steps and summing the series == counting each of the n-1 steps."""
    meta = build_model(CONFIGS["tiny"], window, "meta", torch.float32)
    series = counted_flops(meta, 64, 20, cfg=True)
    every = counted_flops(meta, 64, 20, cfg=True, every_step=True)
    assert series["total"] == every["total"] > series["prefill"] + (64 // window**2 - 1) * series["decode_step_first"]


@pytest.mark.parametrize("window", [1, 2])
def test_the_static_formula_is_what_the_real_sampler_executes(window):
    """The sampler as it runs (padded prompt block, every step over the whole cache), counted op by op."""
    args = CONFIGS["tiny"]
    model = build_model(args, window, "cpu", torch.float32)
    prompt = [1] * 19  # 20 with <|start_of_image|>; padded to a block of 32
    with torch.no_grad(), sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        generate_codes(model, [prompt], [1] * 19, [0], (8, 8), SamplingOptions(cfg_scale=3.0))
    assert counter.get_total_flops() == analytic_flops(args, window, 64, 20, True, static_block=prompt_block(20))
    assert counter.get_total_flops() > analytic_flops(args, window, 64, 20, True)  # the price of static shapes


@pytest.mark.parametrize("window", [1, 2, 8])
def test_training_formula_matches_counting_forward_and_backward(window):
    for config in ("tiny", "small"):
        args = CONFIGS[config]
        meta = build_model(args, window, "meta", torch.float32)
        assert counted_training_flops(meta, 16 * 16, 20) == analytic_training_flops(args, window, 16 * 16, 20)
    # forward + backward = 3× the forward alone, on a real (CPU) model too
    model = build_model(CONFIGS["tiny"], window, "cpu", torch.float32)
    from ts_eval.generators.token_shuffle.sampling import full_logits, pack_prompts

    tokens, lengths = pack_prompts([[0] * 20], "cpu", bucket=1)
    windows = torch.zeros(1, 64 // window**2, window * window, dtype=torch.long)
    forward = _count(lambda: full_logits(model, tokens, lengths, windows[:, :-1]))
    assert counted_training_flops(model, 64, 20) == 3 * forward


def test_kv_cache_bytes_match_what_the_sampler_allocates():
    result = run_sweep(
        SweepOptions(
            config="tiny",
            windows=(2,),
            resolutions=(128,),
            batch_sizes=(3,),
            flops_only=True,
            device="cpu",
            dtype="fp32",
            text_tokens=10,
            progress=False,
        )
    )
    row = result["rows"][0]
    model = build_model(CONFIGS["tiny"], 2, "cpu", torch.float32)
    generate_codes(model, [[1] * 10], [1], [0], (8, 8), SamplingOptions(cfg_scale=3.0))
    allocated = sum(b.nbytes for name, b in model.named_buffers() if name.endswith(("k_cache", "v_cache")))
    assert row["kv_cache_bytes_per_image"] == allocated
    assert row["shuffle_params"] > 0 and row["params"] > row["shuffle_params"]
    assert row["flops_end_to_end"] == row["flops_counted"] + row["vq_decode_flops"]


def test_flops_only_paper_config_acceptance(tmp_path):
    out = tmp_path / "F.json"
    assert (
        main(
            [
                "sweep",
                "--config",
                "paper-2.7b",
                "--windows",
                "1,2,4",
                "--resolutions",
                "1024,2048",
                "--flops-only",
                "--json",
                str(out),
                "--markdown",
                str(tmp_path / "F.md"),
                "--quiet",
            ]
        )
        == 0
    )
    result = json.loads(out.read_text())
    assert {"config", "device", "torch", "rows"} <= set(result)
    rows = {(r["window"], r["resolution"]): r for r in result["rows"]}
    assert len(rows) == 6
    for (window, resolution), row in rows.items():
        assert row["image_tokens"] == (resolution // 16) ** 2
        assert row["image_positions"] * window**2 == row["image_tokens"]
        assert abs(row["flops_counted"] - row["flops_analytic"]) <= 0.02 * row["flops_analytic"]
        assert "latency_s" not in row
        assert (row["shuffle_params"] == 0) == (window == 1)
    for resolution in (1024, 2048):
        assert rows[(1, resolution)]["flops_counted"] / rows[(2, resolution)]["flops_counted"] > 3
        assert rows[(2, resolution)]["flops_counted"] > rows[(4, resolution)]["flops_counted"]
    report = (tmp_path / "F.md").read_text()
    assert "| 2 | 1024 |" in report
    assert "## Inference" in report and "## Training" in report and "Fig. 4" in report
    training = {(r["window"], r["resolution"]): r for r in result["training_rows"]}
    assert set(training) == {(w, r) for w in (1, 2, 4, 8) for r in (1024, 2048)}
    for (window, resolution), row in training.items():
        assert row["train_flops_counted"] == row["train_flops_analytic"]
        assert row["image_positions"] == (resolution // 16) ** 2 // window**2
    for resolution in (1024, 2048):
        ratio = training[(1, resolution)]["train_flops_counted"] / training[(2, resolution)]["train_flops_counted"]
        assert ratio > 3.5  # the paper's Fig. 4: about 4×
        assert training[(4, resolution)]["train_flops_counted"] > training[(8, resolution)]["train_flops_counted"]


def test_latency_rows_on_cpu(tmp_path):
    out = tmp_path / "L.json"
    assert (
        main(
            [
                "sweep",
                "--config",
                "tiny",
                "--windows",
                "1,2",
                "--resolutions",
                "128",
                "--device",
                "cpu",
                "--repeats",
                "2",
                "--json",
                str(out),
                "--plot",
                str(tmp_path / "plots"),
                "--quiet",
            ]
        )
        == 0
    )
    rows = json.loads(out.read_text())["rows"]
    for row in rows:
        for key in ("latency_s", "latency_p90_s", "prefill_s", "decode_step_s", "vq_decode_s", "tokens_per_s"):
            assert row[key] > 0, key
        assert row["latency_p90_s"] >= row["latency_s"]
        assert row["peak_mem_bytes"] is None  # CPU
    for figure in ("inference.png", "training.png", "time_breakdown.png"):
        assert (tmp_path / "plots" / figure).stat().st_size > 1000


def test_compiled_latency_rows_report_compile_time_apart(tmp_path):
    out = tmp_path / "C.json"
    assert (
        main(
            [
                "sweep",
                "--config",
                "tiny",
                "--windows",
                "2",
                "--resolutions",
                "128",
                "--device",
                "cpu",
                "--repeats",
                "1",
                "--compile",
                "--json",
                str(out),
                "--markdown",
                str(tmp_path / "C.md"),
                "--quiet",
            ]
        )
        == 0
    )
    result = json.loads(out.read_text())
    row = result["rows"][0]
    assert result["settings"]["compile"] is True
    assert row["compile_s"] > 0 and row["warmup_s"] >= row["compile_s"]
    assert row["latency_s"] < row["warmup_s"]  # compilation is not in the timed runs
    assert "compile s" in (tmp_path / "C.md").read_text()


@pytest.mark.slow
def test_latency_ratio_follows_the_flop_ratio(tmp_path):
    out = tmp_path / "L.json"
    assert (
        main(
            [
                "sweep",
                "--config",
                "tiny",
                "--windows",
                "1,2",
                "--resolutions",
                "256",
                "--device",
                "cpu",
                "--json",
                str(out),
                "--quiet",
            ]
        )
        == 0
    )
    s1, s2 = json.loads(out.read_text())["rows"]
    assert s1["latency_s"] / s2["latency_s"] >= 0.5 * s1["flops_counted"] / s2["flops_counted"]


@pytest.mark.parametrize(
    "argv, message",
    [
        (
            ["--config", "paper-2.7b", "--windows", "3", "--resolutions", "1024"],
            "window 3 does not divide the 64x64 token grid",
        ),
        (["--config", "huge"], "unknown model config 'huge'"),
        (["--config", "tiny", "--device", "cuda"], "--device cuda asked for CUDA"),
        (["--config", "tiny", "--resolutions", "100"], "resolution 100 is not a multiple of the VQ stride 16"),
        (["--config", "tiny", "--windows", "1,x"], "--windows expects comma-separated integers"),
        (["--config", "tiny", "--train-windows", "3"], "window 3 does not divide the 64x64 token grid"),
    ],
)
def test_bad_input_is_one_line_exit_2(tmp_path, capsys, argv, message):
    if "cuda" in argv and torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    out = tmp_path / "out.json"
    assert main(["sweep", *argv, "--flops-only", "--json", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert not out.exists()
