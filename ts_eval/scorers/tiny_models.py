"""Tiny random-initialised scorer models of the real architectures, built offline from a config.

They run the real code paths (t2v-metrics' CLIP-T5, open_clip's CLIP) with no download, for tests and
speed benchmarks. Their scores mean nothing; they only show that the plumbing works.
"""

from __future__ import annotations

import json
from pathlib import Path

from ts_eval.tiny import TinyModel, build_once

# Text the tiny T5 vocabulary is trained on: the prompt template, and every printable ASCII character so
# any prompt tokenizes into real pieces rather than one unknown token.
_VOCAB_TEXT = [
    (
        "A chat between a curious user and an artificial intelligence assistant. The assistant gives helpful, "
        "detailed, and polite answers to the user's questions."
    ),
    'USER: Does this figure show "a red square"? Please answer yes or no. ASSISTANT: Yes',
    "a dog and a cat in the snow, three blue birds on a wooden fence, no people",
    " ".join(chr(c) for c in range(33, 127)),
]


def build_tiny_clip_t5(root: str | Path, seed: int = 0) -> TinyModel:
    """A tiny CLIP-T5 (tokenizer, CLIP vision tower, T5 with projector) in `root`.

    Its args are scorer 'vqascore''s `model_path` and `tokenizer_path`.
    """
    root = Path(root)
    return build_once(
        root,
        {"model_path": str(root / "model"), "tokenizer_path": str(root / "tokenizer")},
        _save_clip_t5,
        model="tiny random CLIP-T5",
        seed=seed,
    )


def _save_clip_t5(root: Path) -> None:
    import sentencepiece as spm
    from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModel, T5Tokenizer

    from ts_eval.scorers.t2v_import import clip_t5_module

    clip_t5_module()  # registers t2v-metrics' packages without running their __init__ files
    from t2v_metrics.models.vqascore_models.clip_t5.model.language_model.clip_t5 import (
        CLIPT5Config,
        CLIPT5ForConditionalGeneration,
    )

    tokenizer_dir, vision_dir = root / "tokenizer", root / "vision"
    tokenizer_dir.mkdir(parents=True, exist_ok=True)
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(_VOCAB_TEXT),
        model_prefix=str(tokenizer_dir / "spiece"),
        vocab_size=160,
        hard_vocab_limit=False,
        character_coverage=1.0,
        pad_id=0,
        eos_id=1,
        unk_id=2,
        bos_id=-1,
        minloglevel=2,
    )
    T5Tokenizer(str(tokenizer_dir / "spiece.model"), extra_ids=0, legacy=True).save_pretrained(tokenizer_dir)
    vocab_size = len(T5Tokenizer.from_pretrained(tokenizer_dir))

    vision = CLIPVisionConfig(
        hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2, image_size=32, patch_size=8
    )
    CLIPVisionModel(vision).save_pretrained(vision_dir)
    processor = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    processor.save_pretrained(vision_dir)
    config = CLIPT5Config(
        vocab_size=vocab_size,
        d_model=32,
        d_kv=8,
        d_ff=64,
        num_layers=2,
        num_heads=4,
        feed_forward_proj="gated-gelu",
        tie_word_embeddings=False,
        decoder_start_token_id=0,
        pad_token_id=0,
        eos_token_id=1,
        mm_vision_tower=str(vision_dir),
        mm_hidden_size=32,
        mm_projector_type="mlp2x_gelu",
        mm_vision_select_layer=-2,
        mm_vision_select_feature="patch",
    )
    # safetensors refuses T5's shared embedding tensors
    CLIPT5ForConditionalGeneration(config).save_pretrained(root / "model", safe_serialization=False)


TINY_OPEN_CLIP = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 32, "layers": 2, "width": 32, "head_width": 16, "patch_size": 8},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 2},
}


def build_tiny_open_clip(root: str | Path, seed: int = 0) -> TinyModel:
    """A tiny open_clip CLIP in open_clip's local-dir layout in `root`; args: `model` = `local-dir:ROOT`."""
    return build_once(
        root, {"model": f"local-dir:{root}"}, _save_open_clip, model="tiny random open_clip CLIP", seed=seed
    )


def _save_open_clip(root: Path) -> None:
    import open_clip
    import torch

    model = open_clip.CLIP(**TINY_OPEN_CLIP)
    torch.save(model.state_dict(), root / "open_clip_pytorch_model.bin")
    (root / "open_clip_config.json").write_text(json.dumps({"model_cfg": TINY_OPEN_CLIP, "preprocess_cfg": {}}))


# OpenAI's loader infers the architecture from the state dict: text heads = width // 64, vision heads likewise.
TINY_OPENAI_CLIP = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 32, "layers": 2, "width": 64, "head_width": 64, "patch_size": 8},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 1, "layers": 2},
    "quick_gelu": True,
}
OPENAI_ARCHIVE = "tiny-openai-clip.pt"


def build_tiny_openai_clip(root: str | Path, seed: int = 0) -> TinyModel:
    """A tiny CLIP the way OpenAI released theirs (a TorchScript archive of the model) in `root`.

    Its args give `pretrained=ROOT/tiny-openai-clip.pt`, which takes the route of OpenAI's real checkpoints
    (`load_openai_model`).
    """
    root = Path(root)
    return build_once(
        root, {"pretrained": str(root / OPENAI_ARCHIVE)}, _save_openai_clip, model="tiny random OpenAI CLIP", seed=seed
    )


def _save_openai_clip(root: Path) -> None:
    import warnings

    import open_clip
    import torch

    model = open_clip.CLIP(**TINY_OPENAI_CLIP).eval()
    # OpenAI's archives hold the causal mask as a constant, not as a weight
    mask = model._buffers.pop("attn_mask")
    assert mask is not None  # open_clip registers it for every CLIP with a text tower
    model.attn_mask = mask
    examples = {"encode_image": torch.zeros(1, 3, 32, 32), "encode_text": torch.zeros(1, 77, dtype=torch.long)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer and torch.jit deprecation warnings
        traced = torch.jit.trace_module(model, examples)
        torch.jit.save(traced, str(root / OPENAI_ARCHIVE))


def build_tiny_transformers_clip(root: str | Path, seed: int = 0) -> TinyModel:
    """A tiny transformers CLIPModel with a CLIPProcessor in `root`; args: `model` = the folder.

    The tokenizer is CLIP's real BPE (open_clip ships its merges; converted here the way transformers did),
    so token ids equal open_clip's. The text config keeps eos_token_id=2 like OpenAI's hub configs, which
    makes transformers pool at the highest token id, as it does for the real models.
    """
    return build_once(
        root, {"model": str(root)}, _save_transformers_clip, model="tiny random transformers CLIP", seed=seed
    )


def _save_transformers_clip(root: Path) -> None:
    import gzip

    import open_clip
    from transformers import (
        CLIPConfig,
        CLIPImageProcessor,
        CLIPModel,
        CLIPProcessor,
        CLIPTextConfig,
        CLIPTokenizer,
        CLIPVisionConfig,
    )

    bpe = Path(open_clip.__file__).parent / "bpe_simple_vocab_16e6.txt.gz"
    with gzip.open(bpe) as handle:
        merges = handle.read().decode("utf-8").split("\n")[1 : 49152 - 256 - 2 + 1]
    byte_chars = list(open_clip.tokenizer.bytes_to_unicode().values())
    vocab = byte_chars + [c + "</w>" for c in byte_chars] + ["".join(m.split()) for m in merges]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    (root / "vocab.json").write_text(json.dumps({token: i for i, token in enumerate(vocab)}))
    (root / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n")
    tokenizer = CLIPTokenizer(str(root / "vocab.json"), str(root / "merges.txt"))
    images = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    CLIPProcessor(image_processor=images, tokenizer=tokenizer).save_pretrained(root)
    text = CLIPTextConfig(
        vocab_size=49408,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        max_position_embeddings=77,
        bos_token_id=0,
        eos_token_id=2,
        pad_token_id=1,
    )
    vision = CLIPVisionConfig(
        hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2, image_size=32, patch_size=8
    )
    CLIPModel(
        CLIPConfig(text_config=text.to_dict(), vision_config=vision.to_dict(), projection_dim=32)
    ).save_pretrained(root)
