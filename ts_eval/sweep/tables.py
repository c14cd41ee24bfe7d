"""The sweep's Markdown report: the inference table (sampling one image), the training table (the paper's
Fig. 4 quantity), how each was counted, and the comparison with the paper."""

from __future__ import annotations

from typing import Any

from ts_eval.sweep.flops import FORMULA

# The paper's Fig. 4 (1024² and 2048², s = 1, 2, 4, 8) gives its numbers only as bars; its caption says
# s = 2 reduces "both training FLOPs and token number" about 4×. Its tables (transcribed in the benchmark
# data: Tables 1-4) hold no FLOPs; Table 3 gives 1,024 tokens for a 512² image at downsample 16.
PAPER_FIG4_S2_REDUCTION = 4.0
PAPER_TABLE3_TOKENS_512_DS16 = 1024


def _si(value: float, unit: str = "") -> str:
    """42.77e12 -> '42.77 T' (engineering prefixes, so tiny and 2.7B configs read alike)."""
    for prefix, scale in (("P", 1e15), ("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(value) >= scale:
            return f"{value / scale:.4g} {prefix}{unit}"
    return f"{value:.4g} {unit}".rstrip()


def _baseline(rows: list[dict[str, Any]], row: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any] | None:
    return next((o for o in rows if o["window"] == 1 and all(o[k] == row[k] for k in keys)), None)


def _table(head: list[str], body: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(str(c) for c in cells) + " |" for cells in body]
    return "\n".join(lines)


def inference_table(rows: list[dict[str, Any]]) -> str:
    timed = any("latency_s" in r for r in rows)
    compiled = any(r.get("compile_s", 0) > 0 for r in rows)
    head = [
        "window",
        "resolution",
        "batch",
        "image tokens",
        "positions",
        "inference FLOPs (analytic)",
        "inference FLOPs (counted)",
        "diff",
        "× fewer than s=1",
        "as executed (static step)",
        "VQ decode",
        "end-to-end (+ VQ decode)",
        "end-to-end × fewer",
        "params (+ shuffle MLPs)",
        "KV cache / image",
    ]
    if timed:
        head += ["s / image", "p90", "prefill s", "decode step ms", "VQ s", "tokens/s", "× faster than s=1"]
        head += ["compile s"] if compiled else []
    body = []
    for r in rows:
        base = _baseline(rows, r, ("resolution", "batch_size", "cfg"))
        cells = [
            r["window"],
            r["resolution"],
            r["batch_size"],
            r["image_tokens"],
            r["image_positions"],
            _si(r["flops_analytic"]),
            _si(r["flops_counted"]),
            f"{r['flops_rel_diff']:+.2%}",
            f"{base['flops_counted'] / r['flops_counted']:.2f}" if base else "",
            _si(r["flops_static"]),
            _si(r["vq_decode_flops"]),
            _si(r["flops_end_to_end"]),
            f"{base['flops_end_to_end'] / r['flops_end_to_end']:.2f}" if base else "",
            f"{_si(r['params'])} (+{_si(r['shuffle_params'])})",
            f"{r['kv_cache_bytes_per_image'] / 2**20:.1f} MiB",
        ]
        if timed:
            cells += [
                f"{r['latency_s']:.4g}",
                f"{r['latency_p90_s']:.4g}",
                f"{r['prefill_s']:.4g}",
                f"{r['decode_step_s'] * 1e3:.3g}",
                f"{r['vq_decode_s']:.4g}",
                f"{r['tokens_per_s']:.4g}",
                f"{base['latency_s'] / r['latency_s']:.2f}" if base else "",
            ]
            cells += [f"{r['compile_s']:.3g}"] if compiled else []
        body.append(cells)
    return _table(head, body)


def training_table(rows: list[dict[str, Any]]) -> str:
    head = [
        "window",
        "resolution",
        "image tokens",
        "token number (Transformer image positions)",
        "sequence",
        "training FLOPs (analytic)",
        "training FLOPs (counted)",
        "diff",
        "× fewer tokens than s=1",
        "× fewer FLOPs than s=1",
    ]
    body = []
    for r in rows:
        base = _baseline(rows, r, ("resolution",))
        body.append(
            [
                r["window"],
                r["resolution"],
                r["image_tokens"],
                r["image_positions"],
                r["sequence_length"],
                _si(r["train_flops_analytic"]),
                _si(r["train_flops_counted"]),
                f"{r['train_flops_rel_diff']:+.2%}",
                f"{base['image_positions'] / r['image_positions']:.2f}" if base else "",
                f"{base['train_flops_counted'] / r['train_flops_counted']:.2f}" if base else "",
            ]
        )
    return _table(head, body)


def paper_comparison(result: dict[str, Any]) -> str:
    """What can be compared with the paper: Fig. 4's caption (s = 2 ≈ 4× fewer training FLOPs and tokens)
    and Table 3's token count; Fig. 4's bar values are not available as numbers."""
    lines = []
    training = result.get("training_rows", [])
    for r in training:
        base = _baseline(training, r, ("resolution",))
        if r["window"] == 2 and base:
            flops = base["train_flops_counted"] / r["train_flops_counted"]
            tokens = base["image_positions"] / r["image_positions"]
            why = (
                "attention, quadratic in the sequence, shrinks by more than 4×"
                if flops > PAPER_FIG4_S2_REDUCTION
                else f"the {result['settings']['prefill_len']} prompt positions are never shuffled and the shuffle "
                "MLPs add work"
            )
            lines.append(
                f"- {r['resolution']}², s = 2: {tokens:.2f}× fewer image positions and {flops:.2f}× fewer "
                f"training FLOPs than s = 1 (paper, Fig. 4 caption: about {PAPER_FIG4_S2_REDUCTION:.0f}× "
                f"for both; here {why})."
            )
    for r in result["rows"]:
        if (
            r["resolution"] == 512
            and r["window"] == 1
            and r["batch_size"] == min(x["batch_size"] for x in result["rows"])
        ):
            verdict = "matches" if r["image_tokens"] == PAPER_TABLE3_TOKENS_512_DS16 else "differs from"
            lines.append(
                f"- 512², s = 1: {r['image_tokens']} image tokens, which {verdict} the paper's Table 3 "
                f"({PAPER_TABLE3_TOKENS_512_DS16} tokens at downsample 16)."
            )
    if not lines:
        return ""
    return (
        "Against the paper. Fig. 4 gives training FLOPs and token numbers for s = 1, 2, 4, 8 at 1024² and "
        "2048² only as bars (no values in its text or tables), so only its caption's ratio can be compared:\n\n"
        + "\n".join(lines)
    )


def markdown(result: dict[str, Any]) -> str:
    rows = result["rows"]
    settings = result["settings"]
    cfg = "on" if rows and rows[0]["cfg"] else "off"
    title = f"# Token-Shuffle efficiency sweep: `{result['config']}`\n\n"
    intro = (
        f"Config `{result['config']}` ({result['dtype']}), device: {result['device']}, torch {result['torch']}; "
        f"prompt of {settings['prefill_len'] - 1} tokens + <|start_of_image|>."
    )
    inference = (
        f"## Inference: sampling one image with the KV cache\n\nCFG {cfg} (scale {settings['cfg_scale']}: "
        "cond and uncond rows, both counted), the LM head over the codebook rows only. Inference FLOPs are "
        "the whole sampling loop with each decode step attending over the filled cache positions; 'as "
        "executed' is what the static-shape decode step computes (every step attends over the whole cache, "
        "masked). End-to-end adds the VQ decoder. The KV cache is what the sampler allocates for one image "
        "(for the longest prompt the model takes); a GPU batch holds batch-size times it."
        + (
            " Compile time (warm-up beyond a timed run) is reported apart and excluded from every timing."
            if settings.get("compile")
            else ""
        )
        + "\n\n"
        + inference_table(rows)
    )
    training = ""
    if result.get("training_rows"):
        training = (
            "\n\n## Training: one teacher-forced sample, forward + backward (the quantity of the paper's "
            "Fig. 4)\n\nThe prompt and the first n-1 windows in one forward pass (dense attention scores, as the "
            "math kernel computes them), a cross-entropy over all image tokens, and the backward pass. Token "
            "number: the image positions the Transformer sees.\n\n" + training_table(result["training_rows"])
        )
        comparison = paper_comparison(result)
        training += ("\n\n" + comparison) if comparison else ""
    method = (
        "## How the FLOPs are counted\n\nCounted FLOPs: `torch.utils.flop_counter.FlopCounterMode` on the meta "
        "device with the MATH SDPA backend, around the model's own code: the sampler's `prefill` and decode step "
        "(decode steps 1, 2 and n-1 counted exactly and, the count being affine in position, checked on the third "
        "step, the series summed), and `full_logits` + cross-entropy + backward for training. Analytic FLOPs:"
    )
    return title + intro + "\n\n" + inference + training + "\n\n" + method + "\n\n```\n" + FORMULA + "```\n"
