"""The reference Token-Shuffle model: KV cache == full forward, s² tokens per step, padding-invariance,
CFG schedules over image rows, sampling filters and noise, and a tiny model that learns two token grids end
to end."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch
from token_shuffle_fixtures import TINY, lively_model, prompt_rows

from ts_eval.generators.token_shuffle import sampling
from ts_eval.generators.token_shuffle.cfg_schedule import SCHEDULES, cfg_scales, row_scales
from ts_eval.generators.token_shuffle.generator import build_model
from ts_eval.generators.token_shuffle.noise import _mul32, gumbel, key_tensor
from ts_eval.generators.token_shuffle.sampling import (
    SamplingOptions,
    decode_logits,
    full_logits,
    generate_codes,
    make_state,
    mix_cfg,
    pack_prompts,
    prefill,
    sample_tokens,
    token_scales,
)
from ts_eval.generators.token_shuffle.shuffle import grid_to_windows, windows_to_grid
from ts_eval.generators.token_shuffle.tokenizer import ByteTokenizer

pytestmark = pytest.mark.e2e  # the reference model end to end: outside the inner loop


def cached_logits(model, rows, windows):
    """Logits of every window through prefill + the decode step, as the sampler runs them."""
    tokens, lengths = pack_prompts(rows, "cpu")
    n, s2 = windows.shape[1], windows.shape[2]
    side = math.isqrt(n * s2)
    state = make_state(
        SamplingOptions(cfg_scale=1.0),
        lengths,
        tokens.shape[1] + n - 1,
        (side, side),
        model.window,
        [0] * len(rows),
        TINY.codebook_size,
    )
    with torch.no_grad():
        model.setup_caches(len(rows), tokens.shape[1] + n - 1)
        out = [prefill(model, tokens, lengths)]
        for k in range(1, n):
            out.append(decode_logits(model, state, windows[:, k - 1], torch.tensor([k])))
    return torch.stack(out, dim=1)


@pytest.mark.parametrize("window", [1, 2, 4])
def test_kv_cache_decode_equals_full_forward(window):
    model = lively_model(window)
    rows = prompt_rows("a cat", "three red apples on a table", "")  # mixed lengths: padding in play
    tokens, lengths = pack_prompts(rows, "cpu")
    n = (8 // window) ** 2
    windows = torch.randint(
        0, TINY.codebook_size, (len(rows), n, window * window), generator=torch.Generator().manual_seed(3)
    )
    with torch.no_grad():
        full = full_logits(model, tokens, lengths, windows[:, :-1])
    cached = cached_logits(model, rows, windows)
    assert cached.shape == full.shape == (len(rows), n, window * window, TINY.codebook_size)
    assert full.std() > 0.3  # logits are not all ~0
    torch.testing.assert_close(cached, full, atol=1e-4, rtol=0)


def test_prompts_are_padded_on_the_right_to_a_bucket():
    tokens, lengths = pack_prompts([[5, 6, 7], [9] * 17], "cpu", bucket=16)
    assert tokens.shape == (2, 32) and lengths.tolist() == [3, 17]
    assert tokens[0, :3].tolist() == [5, 6, 7] and tokens[0, 3:].eq(0).all()


@pytest.mark.parametrize("window", [1, 2])
def test_padding_never_changes_a_row(window):
    model = lively_model(window)
    rows = prompt_rows("a", "a much longer prompt about a dog and its ball")  # 3 vs 46 tokens: other buckets
    windows = torch.randint(0, TINY.codebook_size, (1, 4, window * window), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        tokens, lengths = pack_prompts(rows, "cpu")
        batched = full_logits(model, tokens, lengths, windows.repeat(2, 1, 1))[0]
        alone_tokens, alone_lengths = pack_prompts(rows[:1], "cpu")
        alone = full_logits(model, alone_tokens, alone_lengths, windows)[0]
    assert tokens.shape[1] == 48 and alone_tokens.shape[1] == 16
    torch.testing.assert_close(batched, alone, atol=1e-5, rtol=0)
    cached = cached_logits(model, rows, windows.repeat(2, 1, 1))[0]
    torch.testing.assert_close(cached, alone[:-1], atol=1e-4, rtol=0)


@pytest.mark.parametrize("window", [1, 2, 4])
def test_each_decode_step_emits_s_squared_tokens(window, monkeypatch):
    model = lively_model(window)
    calls = []
    real = sampling.decode_logits

    def counting(model, state, fed, step):
        logits = real(model, state, fed, step)
        calls.append((fed.shape, logits.shape, int(step)))
        return logits

    monkeypatch.setattr(sampling, "decode_logits", counting)
    tok = ByteTokenizer()
    codes = generate_codes(model, [tok.encode("a dog")], tok.encode(""), [1], (8, 8), SamplingOptions(cfg_scale=3.0))
    s2 = window * window
    assert codes.shape == (1, 8, 8)
    assert len(calls) == 64 // s2 - 1  # window 0 comes from prefill; every later step adds s² tokens
    assert [c[2] for c in calls] == list(range(1, 64 // s2))
    assert all(fed == (1, s2) and out == (2, s2, TINY.codebook_size) for fed, out, _ in calls)  # cond + uncond rows


@pytest.mark.parametrize("window", [1, 2])
def test_tiny_model_learns_two_grids_and_regenerates_them_greedily(window):
    torch.manual_seed(0)  # only dropout-free Adam below; the model itself is seeded explicitly
    args = replace(TINY, n_layers=2)
    model = build_model(args, window, "cpu", torch.float32, seed=0).train()
    tok = ByteTokenizer()
    prompts = ["a red square", "a blue circle"]
    grids = torch.randint(0, args.codebook_size, (2, 8, 8), generator=torch.Generator().manual_seed(11))
    windows = grid_to_windows(grids, window)  # (2, n, s²): the order the model generates in
    tokens, pad = pack_prompts(prompt_rows(*prompts), "cpu")
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(300):
        logits = full_logits(model, tokens, pad, windows[:, :-1])
        loss = torch.nn.functional.cross_entropy(logits.flatten(0, 2), windows.flatten())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    greedy = SamplingOptions(cfg_scale=1.0, temperature=0.0)
    codes = generate_codes(model, [tok.encode(p) for p in prompts], tok.encode(""), [0, 1], (8, 8), greedy)
    assert loss.item() < 0.05
    assert torch.equal(codes, grids)  # shuffle, unshuffle and the window order agree end to end


def test_mixed_length_batch_gives_the_same_codes_as_one_prompt_at_a_time():
    """The batched sampler (the GPU path) keeps rows apart: same codes as each prompt alone."""
    model = lively_model(2)
    tok = ByteTokenizer()
    prompts = [tok.encode(t) for t in ("a", "a photo of two cats sleeping on a sofa", "dog")]
    options = SamplingOptions(cfg_scale=4.0, top_k=50)
    batched = generate_codes(model, prompts, tok.encode(""), [5, 6, 7], (8, 8), options, batch_invariant=False)
    for i, prompt in enumerate(prompts):
        alone = generate_codes(model, [prompt], tok.encode(""), [5 + i], (8, 8), options)
        assert torch.equal(batched[i], alone[0])


def test_same_seed_same_codes_other_seed_other_codes():
    model = lively_model(1)
    tok = ByteTokenizer()

    def run(seed):
        return generate_codes(model, [tok.encode("x")], tok.encode(""), [seed], (8, 8), SamplingOptions())

    assert torch.equal(run(1), run(1))
    assert not torch.equal(run(1), run(2))


# -- CFG ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", SCHEDULES)
def test_cfg_schedules_start_at_one_and_reach_the_target(name):
    rows, target = 16, 7.5
    scales = row_scales(name, target, rows)
    assert scales.shape == (rows,)
    assert torch.all(scales >= 1 - 1e-12) and torch.all(scales <= target + 1e-12)
    assert torch.all(scales[1:] >= scales[:-1] - 1e-12)  # never decreases
    if name == "constant":
        assert torch.all(scales == target)
        return
    assert scales[0] == 1.0
    reached = int(torch.nonzero(torch.isclose(scales, torch.tensor(target, dtype=torch.float64))).min())
    expected = {"linear": rows - 1, "half-linear": rows // 2, "drop-first": 1, "sin": rows - 1, "sigmoid": rows - 1}[
        name
    ]
    assert reached == expected
    assert torch.allclose(scales[reached:], torch.tensor(target, dtype=torch.float64))


def test_half_linear_ramp_values():
    assert row_scales("half-linear", 5.0, 8).tolist() == [1.0, 2.0, 3.0, 4.0, 5.0, 5.0, 5.0, 5.0]
    grid = cfg_scales("half-linear", 5.0, (8, 3))
    assert grid.shape == (8, 3) and grid[:, 0].tolist() == grid[:, 2].tolist() == [
        1.0,
        2.0,
        3.0,
        4.0,
        5.0,
        5.0,
        5.0,
        5.0,
    ]


@pytest.mark.parametrize("name", SCHEDULES)
def test_a_schedule_gives_each_token_the_same_scale_at_every_window(name):
    options = SamplingOptions(cfg_scale=7.5, cfg_schedule=name)
    grids = {s: windows_to_grid(token_scales(options, (8, 8), s)[None], s, 8, 8)[0] for s in (1, 2, 4)}
    assert torch.equal(grids[1], grids[2]) and torch.equal(grids[1], grids[4])
    assert torch.equal(grids[1][:, :1].expand(8, 8), grids[1])  # one scale per image row


def _scales_used(model, options, monkeypatch) -> torch.Tensor:
    """The (8, 8) grid of the CFG scales the sampler actually mixed with, one per image token."""
    used = []
    real = sampling.mix_cfg
    monkeypatch.setattr(sampling, "mix_cfg", lambda logits, scales: used.append(scales.clone()) or real(logits, scales))
    tok = ByteTokenizer()
    generate_codes(model, [tok.encode("a dog")], tok.encode(""), [1], (8, 8), options)
    s = model.window
    return windows_to_grid(torch.stack(used)[None], s, 8, 8)[0]


def test_drop_first_is_the_first_image_row_at_windows_1_and_2(monkeypatch):
    """Token index order differs between s = 1 and s = 2 (at s = 2 the first 8 tokens are half of rows 0 and
    1), but the scales the sampler uses are the same on the grid: 1 on the first row, the target after."""
    options = SamplingOptions(cfg_scale=7.5, cfg_schedule="drop-first")
    at_1 = _scales_used(lively_model(1), options, monkeypatch)
    at_2 = _scales_used(lively_model(2), options, monkeypatch)
    assert torch.equal(at_1, at_2)
    assert at_1[0].eq(1.0).all() and at_1[1:].eq(7.5).all()
    linear = SamplingOptions(cfg_scale=7.5, cfg_schedule="linear")
    assert torch.equal(
        _scales_used(lively_model(1), linear, monkeypatch), _scales_used(lively_model(4), linear, monkeypatch)
    )


def test_mix_cfg_uses_a_scale_per_sub_token():
    cond = torch.tensor([[[2.0, 0.0], [2.0, 0.0]]])
    uncond = torch.tensor([[[1.0, 0.0], [1.0, 0.0]]])
    mixed = mix_cfg(torch.cat([cond, uncond]).to(torch.bfloat16), torch.tensor([1.0, 3.0]))
    assert mixed.dtype == torch.float32
    assert mixed.tolist() == [[[2.0, 0.0], [4.0, 0.0]]]


# -- sampling filters -----------------------------------------------------------------------------------


def _draws(logits, options, n=400):
    """n images' draws for one token with the same logits (each image has its own noise keys)."""
    return sample_tokens(
        logits.expand(n, 1, -1).clone(), options, key_tensor(range(n), "cpu"), torch.tensor([0])
    ).flatten()


def test_greedy_picks_the_argmax():
    logits = torch.tensor([[[0.1, 3.0, 2.9, -1.0]]])
    assert sample_tokens(
        logits, SamplingOptions(temperature=0), key_tensor([0], "cpu"), torch.tensor([0])
    ).tolist() == [[1]]


def test_top_k_keeps_only_the_k_largest():
    logits = torch.tensor([[[0.0, 0.1, 0.2, 0.3, 0.4]]])
    assert set(_draws(logits, SamplingOptions(top_k=2)).tolist()) == {3, 4}


def test_top_p_keeps_the_smallest_set_reaching_p():
    probs = torch.tensor([0.5, 0.3, 0.15, 0.05])
    logits = probs.log()[None, None]
    assert set(_draws(logits, SamplingOptions(top_k=0, top_p=0.7)).tolist()) == {0, 1}  # 0.5 < 0.7 <= 0.8
    assert set(_draws(logits, SamplingOptions(top_k=0, top_p=0.85)).tolist()) == {0, 1, 2}


def test_draws_follow_the_distribution_and_each_image_uses_its_own_noise():
    logits = torch.tensor([0.7, 0.2, 0.1]).log()[None, None]
    draws = _draws(logits, SamplingOptions(top_k=0), n=3000)
    freq = torch.bincount(draws, minlength=3).float() / len(draws)
    assert torch.allclose(freq, torch.tensor([0.7, 0.2, 0.1]), atol=0.03)
    rows = torch.randn(3, 4, 50)
    keys = key_tensor([9, 1, 2], "cpu")
    alone = sample_tokens(rows[:1], SamplingOptions(), keys[:1], torch.arange(4))
    assert torch.equal(sample_tokens(rows, SamplingOptions(), keys, torch.arange(4))[0], alone[0])


def test_noise_is_a_pure_function_of_seed_token_and_code():
    codes = torch.arange(64)
    keys = key_tensor([3, 2**63 - 1, 3], "cpu")
    noise = gumbel(keys, torch.tensor([0, 5, 4095]), codes)
    assert noise.shape == (3, 3, 64) and torch.isfinite(noise).all()
    assert torch.equal(noise[0], noise[2]) and not torch.equal(noise[0], noise[1])  # by seed, not by batch row
    assert torch.equal(gumbel(keys[:1], torch.tensor([5]), codes)[0, 0], noise[0, 1])  # by token, not by call
    assert not torch.equal(noise[0, 0], noise[0, 1])
    uniform = torch.exp(-torch.exp(-gumbel(key_tensor(range(20), "cpu"), torch.arange(50), torch.arange(256))))
    assert abs(uniform.mean().item() - 0.5) < 0.01 and abs(uniform.var().item() - 1 / 12) < 0.003


@pytest.mark.parametrize("x", [0, 1, 0xFFFF, 0x10000, 0x7FFFFFFF, 0xFFFFFFFF, 0xDEADBEEF, 123456789])
def test_32_bit_products_are_exact(x):
    for c in (0x7FEB352D, 0x846CA68B, 0xFFFFFFFF):
        assert int(_mul32(torch.tensor([x]), c)) == _mul32(x, c) == (x * c) % 2**32


@pytest.mark.parametrize("window", [1, 2])
def test_no_cache_baseline_samples_the_same_image(window):
    model = lively_model(window)
    tok = ByteTokenizer()

    def run(cache):
        return generate_codes(
            model,
            [tok.encode("a"), tok.encode("a blue bird")],
            tok.encode(""),
            [3, 4],
            (8, 8),
            SamplingOptions(cfg_scale=2.0),
            use_cache=cache,
        )

    assert torch.equal(run(True), run(False))
