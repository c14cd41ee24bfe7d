"""Named model sizes (`tiny`, `small`, `gpt-b`, `paper-2.7b`) and the JSON form of a config.

The paper gives hidden size 3072 and 20 layers for its 2.7B model; what it leaves open is chosen here:
24 heads of 128 (Llama-2 style, no GQA), SwiGLU width 8192 (Llama's 2/3·4d rounded to 256), Llama-2's
32,000 text tokens, and LlamaGen's VQ-16 image tokenizer (codebook 16,384, downsample 16), so a
1024×1024 image is a 64×64 grid of 4,096 tokens, 1,024 Transformer positions at window 2.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from ts_eval.errors import UsageError


@dataclass(frozen=True)
class VQArgs:
    """LlamaGen's VQ layout (`tokenizer/tokenizer_image/vq_model.py`): downsample = 2**(len(ch_mult)-1)."""

    codebook_size: int = 16384
    codebook_embed_dim: int = 8
    codebook_l2_norm: bool = True
    ch: int = 128
    ch_mult: tuple[int, ...] = (1, 1, 2, 2, 4)
    num_res_blocks: int = 2
    z_channels: int = 256

    @property
    def downsample(self) -> int:
        return 2 ** (len(self.ch_mult) - 1)


@dataclass(frozen=True)
class ModelArgs:
    """The Transformer, its vocabulary and the Token-Shuffle MLPs; `window` is chosen per model (see generator)."""

    dim: int = 3072
    n_layers: int = 20
    n_heads: int = 24
    n_kv_heads: int | None = None  # None: as many as n_heads (no GQA)
    ffn_dim: int = 8192
    norm_eps: float = 1e-5
    rope_base: float = 10000.0
    text_vocab_size: int = 32000  # the text tokenizer's ids come first in the shared vocabulary
    max_text_tokens: int = 512  # longer prompts are cut (the paper trains on captions of this order)
    shuffle_mlp_blocks: int = 2  # residual MLP blocks on each side of (un)shuffle
    shuffle_mlp_ratio: float = 1.0  # hidden width of those blocks, as a multiple of dim
    default_window: int = 2
    default_resolution: int = 1024
    tokenizer: str = "byte"  # "byte" or a Hugging Face tokenizer name/path
    vq: VQArgs = field(default_factory=VQArgs)

    @property
    def kv_heads(self) -> int:
        return self.n_kv_heads or self.n_heads

    @property
    def head_dim(self) -> int:
        return self.dim // self.n_heads

    @property
    def codebook_size(self) -> int:
        return self.vq.codebook_size

    # Vocabulary layout: [text ids][<|start_of_image|>, <|end_of_image|>][codebook entries].
    @property
    def start_of_image(self) -> int:
        return self.text_vocab_size

    @property
    def end_of_image(self) -> int:
        return self.text_vocab_size + 1

    @property
    def image_offset(self) -> int:
        return self.text_vocab_size + 2

    @property
    def vocab_size(self) -> int:
        return self.image_offset + self.codebook_size

    def check(self, where: str) -> None:
        if self.dim % self.n_heads:
            raise UsageError(f"{where}: dim {self.dim} is not divisible by n_heads {self.n_heads}")
        if self.n_heads % self.kv_heads:
            raise UsageError(f"{where}: n_heads {self.n_heads} is not a multiple of n_kv_heads {self.kv_heads}")
        if self.head_dim % 2:
            raise UsageError(f"{where}: head dim {self.head_dim} must be even for RoPE")

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["vq"]["ch_mult"] = list(self.vq.ch_mult)
        return out

    @classmethod
    def from_dict(cls, raw: dict[str, Any], where: str) -> ModelArgs:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise UsageError(
                f"{where}: unknown model config field(s) {', '.join(unknown)}; valid: {', '.join(sorted(known))}"
            )
        raw = dict(raw)
        vq_raw = dict(raw.pop("vq", {}) or {})
        vq_known = {f.name for f in fields(VQArgs)}
        if set(vq_raw) - vq_known:
            raise UsageError(f"{where}: unknown vq field(s) {', '.join(sorted(set(vq_raw) - vq_known))}")
        if "ch_mult" in vq_raw:
            vq_raw["ch_mult"] = tuple(vq_raw["ch_mult"])
        try:
            args = cls(**raw, vq=VQArgs(**vq_raw))
        except TypeError as exc:
            raise UsageError(f"{where}: {exc}") from None
        args.check(where)
        return args


# num_res_blocks=0: one res block per decoder level, so the tiny VQ costs about as much as the tiny model.
TINY_VQ = VQArgs(
    codebook_size=256, codebook_embed_dim=8, ch=32, ch_mult=(1, 1, 1, 1, 1), num_res_blocks=0, z_channels=32
)
SMALL_VQ = VQArgs(
    codebook_size=4096, codebook_embed_dim=8, ch=64, ch_mult=(1, 1, 2, 2, 4), num_res_blocks=1, z_channels=128
)

CONFIGS: dict[str, ModelArgs] = {
    # Tests and smoke runs: 128×128 images, an 8×8 token grid, GQA exercised (4 query heads, 2 kv heads).
    "tiny": ModelArgs(
        dim=64,
        n_layers=2,
        n_heads=4,
        n_kv_heads=2,
        ffn_dim=176,
        text_vocab_size=259,
        max_text_tokens=256,
        default_window=2,
        default_resolution=128,
        vq=TINY_VQ,
    ),
    # CPU benchmarks: ~30M parameters, 256×256 images (16×16 tokens).
    "small": ModelArgs(
        dim=512,
        n_layers=8,
        n_heads=8,
        ffn_dim=1408,
        text_vocab_size=259,
        max_text_tokens=256,
        default_window=2,
        default_resolution=256,
        vq=SMALL_VQ,
    ),
    # LlamaGen GPT-B's Transformer shape (768 wide, 12 layers, 12 heads, SwiGLU 2048) and VQ-16 at 256×256
    # (16×16 = 256 tokens): the CPU decode-speed benchmark's config, comparable with LlamaGen's own sampler.
    "gpt-b": ModelArgs(
        dim=768, n_layers=12, n_heads=12, ffn_dim=2048, max_text_tokens=120, default_window=1, default_resolution=256
    ),
    "paper-2.7b": ModelArgs(),
}


def load_config(name_or_path: str) -> ModelArgs:
    """A named config, or a JSON file holding ModelArgs fields (or a checkpoint's config.json)."""
    if name_or_path in CONFIGS:
        return CONFIGS[name_or_path]
    path = Path(name_or_path)
    if path.is_dir():
        path = path / "config.json"
    if not path.suffix == ".json" or not path.is_file():
        raise UsageError(
            f"unknown model config '{name_or_path}'; choose one of: {', '.join(CONFIGS)} or give a config JSON file"
        )
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise UsageError(f"{path}: malformed JSON") from None
    if isinstance(raw, dict) and "model" in raw and isinstance(raw["model"], dict):
        raw = raw["model"]  # a checkpoint's config.json
    if not isinstance(raw, dict):
        raise UsageError(f"{path}: expected a JSON object of model config fields")
    return ModelArgs.from_dict(raw, str(path))
