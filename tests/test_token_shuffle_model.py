"""The reference Token-Shuffle model: KV cache == full forward, s² tokens per step, padding-invariance,
CFG schedules, sampling filters, and a tiny model that learns two token grids end to end."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch

from ts_eval.generators.token_shuffle import sampling
from ts_eval.generators.token_shuffle.cfg_schedule import SCHEDULES, cfg_scales
from ts_eval.generators.token_shuffle.configs import CONFIGS
from ts_eval.generators.token_shuffle.generator import build_model
from ts_eval.generators.token_shuffle.sampling import (
    SamplingOptions, decode_step, full_logits, generate_codes, mix_cfg, pack_prompts, prefill, sample_tokens,
)
from ts_eval.generators.token_shuffle.shuffle import grid_to_windows
from ts_eval.generators.token_shuffle.tokenizer import ByteTokenizer

TINY = CONFIGS["tiny"]


def lively_model(window: int, seed: int = 0):
    """Tiny model with O(1) logits (the default 0.02 init makes every logit ~0 and comparisons vacuous)."""
    model = build_model(TINY, window, "cpu", torch.float32, seed=seed)
    gen = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 2:
                p.copy_(torch.randn(p.shape, generator=gen) / math.sqrt(p.shape[1] if "embeddings" not in name else 1))
    return model


def prompt_rows(*texts: str) -> list[list[int]]:
    tok = ByteTokenizer()
    return [tok.encode(t) + [TINY.start_of_image] for t in texts]


@pytest.mark.parametrize("window", [1, 2, 4])
def test_kv_cache_decode_equals_full_forward(window):
    model = lively_model(window)
    rows = prompt_rows("a cat", "three red apples on a table", "")  # mixed lengths: left padding in play
    tokens, pad = pack_prompts(rows, "cpu")
    n = (8 // window) ** 2
    windows = torch.randint(0, TINY.codebook_size, (len(rows), n, window * window), generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        full = full_logits(model, tokens, pad, windows[:, :-1])
        model.setup_caches(len(rows), tokens.shape[1] + n - 1)
        cached = [prefill(model, tokens, pad)]
        for k in range(1, n):
            cached.append(decode_step(model, windows[:, k - 1], pad, tokens.shape[1] + k - 1))
        model.clear_caches()
    cached = torch.stack(cached, dim=1)
    assert cached.shape == full.shape == (len(rows), n, window * window, TINY.codebook_size)
    assert full.std() > 0.3  # logits are not all ~0
    torch.testing.assert_close(cached, full, atol=1e-4, rtol=0)


@pytest.mark.parametrize("window", [1, 2])
def test_left_padding_never_changes_a_row(window):
    model = lively_model(window)
    rows = prompt_rows("a", "a much longer prompt about a dog")
    windows = torch.randint(0, TINY.codebook_size, (1, 4, window * window), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        tokens, pad = pack_prompts(rows, "cpu")
        batched = full_logits(model, tokens, pad, windows.repeat(2, 1, 1))[0]
        alone_tokens, alone_pad = pack_prompts(rows[:1], "cpu")
        alone = full_logits(model, alone_tokens, alone_pad, windows)[0]
    assert pad.tolist() == [len(rows[1]) - len(rows[0]), 0]
    torch.testing.assert_close(batched, alone, atol=1e-5, rtol=0)


@pytest.mark.parametrize("window", [1, 2, 4])
def test_each_decode_step_emits_s_squared_tokens(window, monkeypatch):
    model = lively_model(window)
    calls = []
    real = sampling.decode_step

    def counting(model, codes, pad, position):
        logits = real(model, codes, pad, position)
        calls.append((codes.shape, logits.shape))
        return logits

    monkeypatch.setattr(sampling, "decode_step", counting)
    tok = ByteTokenizer()
    codes = generate_codes(model, [tok.encode("a dog")], tok.encode(""), [1], (8, 8), SamplingOptions(cfg_scale=3.0))
    s2 = window * window
    assert codes.shape == (1, 8, 8)
    assert len(calls) == 64 // s2 - 1  # window 0 comes from prefill; every later step adds s² tokens
    assert all(fed == (2, s2) and out == (2, s2, TINY.codebook_size) for fed, out in calls)  # cond + uncond rows


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
    model = lively_model(2)
    tok = ByteTokenizer()
    prompts = [tok.encode(t) for t in ("a", "a photo of two cats sleeping on a sofa", "dog")]
    options = SamplingOptions(cfg_scale=4.0, top_k=50)
    batched = generate_codes(model, prompts, tok.encode(""), [5, 6, 7], (8, 8), options)
    for i, prompt in enumerate(prompts):
        alone = generate_codes(model, [prompt], tok.encode(""), [5 + i], (8, 8), options)
        assert torch.equal(batched[i], alone[0])


def test_same_seed_same_codes_other_seed_other_codes():
    model = lively_model(1)
    tok = ByteTokenizer()
    run = lambda seed: generate_codes(model, [tok.encode("x")], tok.encode(""), [seed], (8, 8), SamplingOptions())
    assert torch.equal(run(1), run(1))
    assert not torch.equal(run(1), run(2))


# -- CFG ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", SCHEDULES)
def test_cfg_schedules_start_at_one_and_reach_the_target(name):
    n, width, target = 64, 8, 7.5
    scales = cfg_scales(name, target, n, width)
    assert scales.shape == (n,)
    assert torch.all(scales >= 1 - 1e-12) and torch.all(scales <= target + 1e-12)
    assert torch.all(scales[1:] >= scales[:-1] - 1e-12)  # never decreases
    if name == "constant":
        assert torch.all(scales == target)
        return
    assert scales[0] == 1.0
    reached = int(torch.nonzero(torch.isclose(scales, torch.tensor(target, dtype=torch.float64))).min())
    expected = {"linear": n - 1, "half-linear": n // 2, "drop-first": width, "sin": n - 1, "sigmoid": n - 1}[name]
    assert reached == expected
    assert torch.allclose(scales[reached:], torch.tensor(target, dtype=torch.float64))


def test_half_linear_ramp_values():
    scales = cfg_scales("half-linear", 5.0, 8, 4)
    assert scales.tolist() == [1.0, 2.0, 3.0, 4.0, 5.0, 5.0, 5.0, 5.0]


def test_mix_cfg_uses_a_scale_per_sub_token():
    cond = torch.tensor([[[2.0, 0.0], [2.0, 0.0]]])
    uncond = torch.tensor([[[1.0, 0.0], [1.0, 0.0]]])
    mixed = mix_cfg(torch.cat([cond, uncond]).to(torch.bfloat16), torch.tensor([1.0, 3.0]))
    assert mixed.dtype == torch.float32
    assert mixed.tolist() == [[[2.0, 0.0], [4.0, 0.0]]]


# -- sampling filters -----------------------------------------------------------------------------------

def _draws(logits, options, n=400):
    gens = [torch.Generator().manual_seed(i) for i in range(n)]
    return sample_tokens(logits.expand(n, 1, -1).clone(), options, gens).flatten()


def test_greedy_picks_the_argmax():
    logits = torch.tensor([[[0.1, 3.0, 2.9, -1.0]]])
    assert sample_tokens(logits, SamplingOptions(temperature=0), [torch.Generator()]).tolist() == [[1]]


def test_top_k_keeps_only_the_k_largest():
    logits = torch.tensor([[[0.0, 0.1, 0.2, 0.3, 0.4]]])
    assert set(_draws(logits, SamplingOptions(top_k=2)).tolist()) == {3, 4}


def test_top_p_keeps_the_smallest_set_reaching_p():
    probs = torch.tensor([0.5, 0.3, 0.15, 0.05])
    logits = probs.log()[None, None]
    assert set(_draws(logits, SamplingOptions(top_k=0, top_p=0.7)).tolist()) == {0, 1}  # 0.5 < 0.7 <= 0.8
    assert set(_draws(logits, SamplingOptions(top_k=0, top_p=0.85)).tolist()) == {0, 1, 2}


def test_draws_follow_the_distribution_and_each_row_uses_its_own_generator():
    logits = torch.tensor([0.7, 0.2, 0.1]).log()[None, None]
    draws = _draws(logits, SamplingOptions(top_k=0), n=3000)
    freq = torch.bincount(draws, minlength=3).float() / len(draws)
    assert torch.allclose(freq, torch.tensor([0.7, 0.2, 0.1]), atol=0.03)
    rows = torch.randn(3, 4, 50)
    gens = lambda: [torch.Generator().manual_seed(s) for s in (9, 1, 2)]
    alone = sample_tokens(rows[:1], SamplingOptions(), [torch.Generator().manual_seed(9)])
    assert torch.equal(sample_tokens(rows, SamplingOptions(), gens())[0], alone[0])


@pytest.mark.parametrize("window", [1, 2])
def test_no_cache_baseline_samples_the_same_image(window):
    model = lively_model(window)
    tok = ByteTokenizer()
    run = lambda cache: generate_codes(model, [tok.encode("a"), tok.encode("a blue bird")], tok.encode(""), [3, 4],
                                       (8, 8), SamplingOptions(cfg_scale=2.0), use_cache=cache)
    assert torch.equal(run(True), run(False))
