"""FLOPs of the reference model, from formulas and from torch's counter: inference (sampling one image with
the KV cache) and training (one teacher-forced sample, forward + backward: the quantity of the paper's Fig. 4).

The formulas (also printed in every sweep report) are `FORMULA` below.

Counted FLOPs run the model's own code under `torch.utils.flop_counter.FlopCounterMode` on the meta device (no
weights, no memory) with the MATH SDPA backend (the fused CPU kernel counts as 0). Inference: the sampler's
`prefill` and decode step, with the step attending over the filled cache positions only (P+k keys at step k;
the static-shape step the sampler runs attends over the whole cache, `flops_static` below). A step's count is
affine in its position, so three steps are counted exactly (k = 1, 2 and n-1), the line through the first two
is checked against the third, and the series is summed. Training: `full_logits` over the whole sequence, a
cross-entropy on the image tokens, and its backward pass.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from ts_eval.errors import CheckFailed
from ts_eval.generators.token_shuffle.configs import ModelArgs
from ts_eval.generators.token_shuffle.sampling import (
    SamplingOptions,
    decode_logits,
    full_logits,
    make_state,
    pack_prompts,
    prefill,
)

FORMULA = """\
Notation: L layers, d model width, H query heads / G kv heads of width h = d/H, f SwiGLU width, V codebook
size, s window, B residual MLP blocks per (un)shuffle side of width r = ⌊d·ratio⌋, P prefill length (text
tokens incl. <bos>, plus <|start_of_image|>), N image tokens, n = N/s² image positions. A matmul of an
(m×k) by a (k×n) matrix is 2·m·k·n FLOPs; norms, RoPE, softmax and sampling are not counted.

    M        = 2·L·(d·(H+2G)·h + d·d + 3·d·f)      Transformer matmuls per position
    attn(t)  = 4·L·d·t                              QKᵀ and AV for one query over t keys
    in(s)    = 2·d² + 4·B·d·r   (0 when s = 1)      compress s² tokens d→d/s², merge, B residual MLPs
    out(s)   = 4·B·d·r + 2·d²   (0 when s = 1)      B residual MLPs, split, expand s² parts d/s²→d
    head(s)  = s²·2·d·V                             shared LM head over the codebook rows, s² tokens

Inference (one image, KV-cache sampling):
    prefill  = P·M + 4·L·d·P²  + out(s) + head(s)   (SDPA's math kernel computes the full P×P scores;
                                                     only the last position predicts window 0)
    decode k = M + attn(P+k) + in(s) + out(s) + head(s),     k = 1 … n-1
    total    = prefill + Σ_k decode k
             = P·M + 4LdP² + n·(out+head) + (n-1)·(M+in) + 4Ld·((n-1)·P + n(n-1)/2)
    static   = total with P the padded prompt block and attn(P+n-1) at every step: what the static-shape
               sampler executes (prefill over the padding too; every step attends over the whole cache)
    ×2 with CFG (the unconditional row is padded to the same P). End-to-end adds the VQ decoder (counted).

Training (one sample, teacher-forced: the P prompt tokens and the first n-1 windows in one forward of
T = P + n - 1 positions; the loss is on all N image tokens):
    forward  = T·M + 4·L·d·T² + (n-1)·in(s) + n·(out(s) + head(s))   (dense scores, as the math kernel computes)
    train    = 3 · forward                                           (backward = 2 × forward for every matmul)
"""


@dataclass(frozen=True)
class FlopTerms:
    per_position: int  # M
    attention_per_key: int  # 4·L·d
    shuffle_in: int
    shuffle_out: int
    head: int


def flop_terms(args: ModelArgs, window: int) -> FlopTerms:
    d, L, h = args.dim, args.n_layers, args.head_dim
    per_position = 2 * L * (d * (args.n_heads + 2 * args.kv_heads) * h + d * d + 3 * d * args.ffn_dim)
    if window > 1:
        r = int(d * args.shuffle_mlp_ratio)
        blocks = 4 * args.shuffle_mlp_blocks * d * r
        shuffle_in = shuffle_out = 2 * d * d + blocks
    else:
        shuffle_in = shuffle_out = 0
    return FlopTerms(per_position, 4 * L * d, shuffle_in, shuffle_out, window * window * 2 * d * args.codebook_size)


def analytic_flops(
    args: ModelArgs, window: int, image_tokens: int, prefill_len: int, cfg: bool, static_block: int | None = None
) -> int:
    """FLOPs of the whole sampling loop for one image (formula in the module docstring). With
    `static_block` (the padded prompt block the sampler uses): what the static-shape sampler executes, a
    prefill over the whole block and every decode step attending over the whole cache (block + n - 1 keys)."""
    t = flop_terms(args, window)
    n, p = image_tokens // (window * window), static_block or prefill_len
    keys = (n - 1) * (p + n - 1) if static_block else (n - 1) * p + n * (n - 1) // 2
    total = (
        p * t.per_position
        + t.attention_per_key * p * p
        + n * (t.shuffle_out + t.head)
        + (n - 1) * (t.per_position + t.shuffle_in)
        + t.attention_per_key * keys
    )
    return total * (2 if cfg else 1)


def analytic_training_flops(args: ModelArgs, window: int, image_tokens: int, prefill_len: int) -> int:
    """Forward + backward of one teacher-forced sample (formula in the module docstring)."""
    t = flop_terms(args, window)
    n = image_tokens // (window * window)
    length = prefill_len + n - 1
    forward = (
        length * t.per_position
        + t.attention_per_key * length * length
        + (n - 1) * t.shuffle_in
        + n * (t.shuffle_out + t.head)
    )
    return 3 * forward


def _count(fn, grad: bool = False) -> int:
    with torch.set_grad_enabled(grad), sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        fn()
    return int(counter.get_total_flops())


def counted_flops(model, image_tokens: int, prefill_len: int, cfg: bool, every_step: bool = False) -> dict[str, int]:
    """Count the sampler's prefill and decode steps on `model` (normally on the meta device), each step
    attending over the filled positions: steps 1, 2 and n-1 and the series, or with `every_step` each step.

    Returns prefill, the first decode step, the per-position slope, and the total for one image.
    """
    window = model.window
    n = image_tokens // (window * window)
    rows = 2 if cfg else 1
    device = model.output.weight.device
    tokens, lengths = pack_prompts([[0] * prefill_len] * rows, device, bucket=1)
    codes = torch.zeros(1, window * window, dtype=torch.long, device=device)
    side = int(image_tokens**0.5)
    options = SamplingOptions(cfg_scale=2.0 if cfg else 1.0, temperature=0)
    model.setup_caches(rows, prefill_len + n - 1)

    def step(k: int):
        state = make_state(options, lengths, prefill_len + k, (side, side), window, [0], model.args.codebook_size)
        return decode_logits(model, state, codes, torch.tensor([k], device=device))

    try:
        first = _count(lambda: prefill(model, tokens, lengths))
        counted = range(1, n) if every_step else sorted({1, 2, n - 1})
        steps = {k: _count(lambda k=k: step(k)) for k in counted if 1 <= k <= n - 1}
    finally:
        model.clear_caches()
    if every_step:
        return {
            "prefill": first,
            "decode_step_first": steps.get(1, 0),
            "decode_slope": steps.get(2, 0) - steps.get(1, 0),
            "total": first + sum(steps.values()),
        }
    slope = steps[2] - steps[1] if 2 in steps else 0
    if n - 1 >= 1 and steps[n - 1] != steps[1] + (n - 2) * slope:
        raise CheckFailed(
            f"decode-step FLOPs are not affine in position (step 1: {steps[1]}, step 2: "
            f"{steps.get(2)}, step {n - 1}: {steps[n - 1]}); the series sum would be wrong"
        )
    decode_total = (n - 1) * steps.get(1, 0) + slope * (n - 1) * (n - 2) // 2
    # Per image: both the cond and the uncond row belong to it when CFG is on.
    return {
        "prefill": first,
        "decode_step_first": steps.get(1, 0),
        "decode_slope": slope,
        "total": first + decode_total,
    }


def counted_training_flops(model, image_tokens: int, prefill_len: int) -> int:
    """Forward + backward of one teacher-forced sample through `full_logits` (normally on the meta device)."""
    window = model.window
    n = image_tokens // (window * window)
    device = model.output.weight.device
    tokens, lengths = pack_prompts([[0] * prefill_len], device, bucket=1)
    windows = torch.zeros(1, n, window * window, dtype=torch.long, device=device)

    def step():
        logits = full_logits(model, tokens, lengths, windows[:, :-1])  # predicts windows 0 … n-1
        F.cross_entropy(logits.flatten(0, 2).float(), windows.flatten()).backward()

    return _count(step, grad=True)


def counted_vq_flops(vq, grid: tuple[int, int]) -> int:
    """FLOPs of decoding one image's code grid (convolutions and the attention block)."""
    device = vq.post_quant_conv.weight.device
    codes = torch.zeros(1, *grid, dtype=torch.long, device=device)
    return _count(lambda: vq.decode_code(codes))
