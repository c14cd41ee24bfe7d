"""The static-shape decode step under `torch.compile` (CPU, fp32): the codes eager sampling gives at windows
1, 2 and 4 with CFG on and off, compiled once per generation shape with no recompilation from step to step."""

from __future__ import annotations

import pytest
import torch
from token_shuffle_fixtures import lively_model
from torch._dynamo.utils import counters

from ts_eval.generators.token_shuffle.sampling import (
    Generation,
    SamplingOptions,
    compile_decode_step,
    decode_step,
    generate_codes,
)
from ts_eval.generators.token_shuffle.tokenizer import ByteTokenizer

pytestmark = pytest.mark.e2e  # real (tiny) backends end to end: outside the inner loop

TOK = ByteTokenizer()
PROMPTS = [TOK.encode("a red apple"), TOK.encode("two dogs")]  # both in the first prompt bucket: one cache shape


@pytest.fixture
def fresh_dynamo():
    torch._dynamo.reset()
    counters.clear()
    yield
    torch._dynamo.reset()


def _codes(model, options, step_fn=None):
    return generate_codes(model, PROMPTS, TOK.encode(""), [11, 12], (8, 8), options, step_fn=step_fn)


@pytest.mark.parametrize("cfg", [3.0, 1.0], ids=["cfg-on", "cfg-off"])
@pytest.mark.parametrize("window", [1, 2, 4])
def test_compiled_step_samples_the_eager_codes(window, cfg, fresh_dynamo):
    model = lively_model(window)
    options = SamplingOptions(cfg_scale=cfg, cfg_schedule="linear", top_k=100)
    eager = _codes(model, options)
    compiled = _codes(model, options, compile_decode_step("cpu"))
    assert torch.equal(compiled, eager)
    assert counters["stats"]["unique_graphs"] == 1  # the whole step, sampling included, is one graph
    assert sum(counters["graph_break"].values()) == 0  # fullgraph: no break (no .item(), no host sync)
    assert len(set(eager.flatten().tolist())) > 20  # a real draw, not a constant


def test_no_recompilation_across_steps_or_images(fresh_dynamo):
    model = lively_model(2)
    options = SamplingOptions(cfg_scale=3.0)
    step_fn = compile_decode_step("cpu")
    calls = []

    def counted(*args):
        calls.append(counters["stats"]["unique_graphs"])
        return step_fn(*args)

    _codes(model, options, counted)
    steps = (8 // 2) ** 2 - 1
    assert len(calls) == 2 * steps  # each of the two images runs alone on CPU: 15 steps each
    assert calls[1:] == [1] * (len(calls) - 1)  # compiled at the first call, never again
    with torch._dynamo.config.patch(error_on_recompile=True):
        again = _codes(model, options, step_fn)  # new caches, new state tensors, same shapes
    assert counters["stats"]["unique_graphs"] == 1
    assert torch.equal(again, _codes(model, options))
    # Prompts in other buckets change the cache length: one more compile, generic in that length, then none.
    longer = [TOK.encode("a prompt long enough for the third bucket of sixteen tokens")]
    generate_codes(model, longer, TOK.encode(""), [1], (8, 8), options, step_fn=step_fn)
    assert counters["stats"]["unique_graphs"] == 2
    longest = [TOK.encode("a prompt that is long enough to fall into yet another bucket of the cache, the fifth")]
    with torch._dynamo.config.patch(error_on_recompile=True):
        generate_codes(model, longest, TOK.encode(""), [1], (8, 8), options, step_fn=step_fn)


def test_a_generation_records_no_autograd_history():
    """Stepping outside `no_grad` must not chain the KV cache into an autograd graph (memory grows every
    step, and a compiled step would be traced for training)."""
    model = lively_model(2)
    assert torch.is_grad_enabled()
    generation = Generation(model, PROMPTS[:1], TOK.encode(""), [1], (8, 8), SamplingOptions(cfg_scale=3.0))
    generation.prefill()
    generation.advance(decode_step)
    cache = model.layers[0].attention.kv_cache
    assert not cache.k_cache.requires_grad and cache.k_cache.grad_fn is None
