"""`--model reference`'s options: importable without torch, so `ts-eval models` lists them on a core install."""

from __future__ import annotations

from dataclasses import dataclass

from ts_eval.generators.token_shuffle.configs import CONFIGS
from ts_eval.options import option

# The guidance schedules cfg_schedule.py implements (paper Fig. 5), named here so the listing needs no torch.
SCHEDULES = ("constant", "linear", "half-linear", "drop-first", "sin", "sigmoid")


@dataclass(frozen=True)
class ReferenceOptions:
    """The reference Token-Shuffle model (arXiv 2504.17789): random weights unless checkpoint= is given."""

    config: str | None = option(
        None, f"model size: {' | '.join(CONFIGS)} or a config JSON (unset: the checkpoint's, else tiny)"
    )
    window: int | None = option(None, "shuffle window s: s*s tokens per position (unset: the config's or checkpoint's)")
    checkpoint: str | None = option(None, "folder with config.json and model weights (see checkpoint.py)")
    vq: str | None = option(None, "VQ decoder weights: safetensors or LlamaGen's vq_ds16_t2i.pt")
    tokenizer: str | None = option(None, "byte, or a Hugging Face tokenizer name or folder (unset: the config's)")
    cfg: float = option(7.5, "classifier-free guidance scale (1 or 0: off)")
    cfg_schedule: str = option("half-linear", f"guidance over the image rows: {', '.join(SCHEDULES)}")
    top_k: int = option(1000, "sample among the k most likely tokens (0: all)")
    top_p: float = option(1.0, "nucleus sampling mass, in (0, 1]")
    temperature: float = option(1.0, "sampling temperature (0: the most likely token)")
    resolution: int | None = option(None, "image side in pixels (unset: the config's)")
    dtype: str | None = option(None, "the Transformer's dtype (unset: --dtype); the VQ decoder always runs fp32")
    batch_size: int = option(8, "prompts per batch")
    kv_cache: bool = option(True, "decode with the KV cache")
    compile: bool = option(False, "torch.compile the decode step (needs kv_cache)")
    init_seed: int = option(0, "seed of the random weights when no checkpoint is given")
