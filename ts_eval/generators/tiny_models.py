"""Tiny random-initialised public-model checkpoints of the real architectures, built offline from configs.

Saved in each library's own folder layout, they load through the same `from_pretrained` calls as the real
weights, so `--model diffusers` and `--model janus` run their whole code path (tokenizer, prompt template,
batching, sampling, decoding) with no download. Their images mean nothing; they only show the plumbing.
"""

# These builders run in the adapters' environment (diffusers, transformers 5 with Janus); the main environment
# that pyright checks against has transformers 4.49 without Janus, and tokenizers ships incomplete stubs.
# pyright: reportMissingImports=false, reportAttributeAccessIssue=false, reportCallIssue=false
# pyright: reportArgumentType=false

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from ts_eval.tiny import TinyModel, build_once

# Janus-Pro's prompt format ("<|User|>: {prompt}\n\n<|Assistant|>:"); the real repos ship their own template.
JANUS_CHAT_TEMPLATE = (
    "{% for message in messages %}{% if message['role'] == 'user' %}<|User|>: "
    "{% for part in message['content'] %}{{ part['text'] | trim }}{% endfor %}{{ '\\n\\n' }}{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<|Assistant|>:{% endif %}"
)
JANUS_SPECIAL_TOKENS = [
    "<｜begin▁of▁sentence｜>",
    "<｜end▁of▁sentence｜>",
    "<｜▁pad▁｜>",
    "<image_placeholder>",
    "<begin_of_image>",
    "<end_of_image>",
    "<|User|>",
    "<|Assistant|>",
]
_TOKENIZER_TEXT = [
    "a red apple on a wooden table",
    "two dogs running in the snow at night",
    "A baker pulling freshly baked bread out of an oven in a bakery.",
]


def _byte_characters() -> list[str]:
    """The 256 printable stand-ins byte-level BPE uses for raw bytes (GPT-2's table)."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    codes, extra = list(printable), 0
    for byte in range(256):
        if byte not in printable:
            codes.append(256 + extra)
            extra += 1
    return [chr(c) for c in codes]


def build_tiny_diffusers(root: str | Path, seed: int = 0) -> TinyModel:
    """A tiny Stable-Diffusion-architecture pipeline (64px, CLIP text encoder, DDIM) in `root`; args: `path`."""
    return build_once(root, {"path": str(root)}, _save_diffusers, model="tiny random Stable Diffusion", seed=seed)


def _save_diffusers(root: Path) -> None:
    from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for char in _byte_characters():  # every byte alone and word-final: any prompt tokenizes, no merges needed
        vocab.setdefault(char, len(vocab))
        vocab.setdefault(char + "</w>", len(vocab))
    with tempfile.TemporaryDirectory() as vocab_dir:
        (Path(vocab_dir) / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
        (Path(vocab_dir) / "merges.txt").write_text("#version: 0.2\n", encoding="utf-8")
        tokenizer = CLIPTokenizer.from_pretrained(vocab_dir, model_max_length=77)
    unet = UNet2DConditionModel(
        sample_size=8,
        in_channels=4,
        out_channels=4,
        layers_per_block=1,
        block_out_channels=(8, 16),
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=16,
        attention_head_dim=2,
        norm_num_groups=4,
    )
    vae = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        latent_channels=4,
        block_out_channels=(8, 8, 8, 8),
        norm_num_groups=4,
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        sample_size=64,
    )
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=len(tokenizer),
            hidden_size=16,
            intermediate_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            max_position_embeddings=77,
            bos_token_id=0,
            eos_token_id=1,
            pad_token_id=1,
        )
    )
    scheduler = DDIMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        clip_sample=False,
        set_alpha_to_one=False,
        steps_offset=1,
    )
    pipe = StableDiffusionPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.save_pretrained(root)


def _janus_tokenizer():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import LlamaTokenizerFast  # the class Janus' processor expects

    bos, eos, pad = JANUS_SPECIAL_TOKENS[:3]
    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    backend.train_from_iterator(
        _TOKENIZER_TEXT,
        trainers.BpeTrainer(
            vocab_size=320,
            special_tokens=JANUS_SPECIAL_TOKENS,
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            show_progress=False,
        ),
    )
    backend.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A", special_tokens=[(bos, backend.token_to_id(bos))]
    )
    return LlamaTokenizerFast(
        tokenizer_object=backend,
        bos_token=bos,
        eos_token=eos,
        pad_token=pad,
        padding_side="left",
        additional_special_tokens=JANUS_SPECIAL_TOKENS[6:],
        extra_special_tokens={
            "image_token": "<image_placeholder>",
            "boi_token": "<begin_of_image>",
            "eoi_token": "<end_of_image>",
        },
    )


def build_tiny_janus(root: str | Path, seed: int = 0) -> TinyModel:
    """A tiny Janus (8x8 image tokens, 256-entry VQ codebook -> 64px images) in transformers' layout in `root`;
    args: `path`."""
    return build_once(root, {"path": str(root)}, _save_janus, model="tiny random Janus", seed=seed)


def _save_janus(root: Path) -> None:
    import torch
    from transformers import (
        GenerationConfig,
        JanusConfig,
        JanusForConditionalGeneration,
        JanusProcessor,
        JanusVisionConfig,
        JanusVQVAEConfig,
        LlamaConfig,
    )

    try:  # transformers 5 splits image processors by backend; the PIL one needs no torchvision
        from transformers.models.janus.image_processing_pil_janus import JanusImageProcessorPil as ImageProcessor
    except ImportError:
        from transformers import JanusImageProcessor as ImageProcessor

    tokenizer = _janus_tokenizer()
    processor = JanusProcessor(
        image_processor=ImageProcessor(size={"height": 32, "width": 32}),
        tokenizer=tokenizer,
        chat_template=JANUS_CHAT_TEMPLATE,
        use_default_system_prompt=True,
        num_image_tokens=64,
    )
    boi = tokenizer.convert_tokens_to_ids("<begin_of_image>")
    config = JanusConfig(
        text_config=LlamaConfig(
            vocab_size=len(tokenizer),
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=4,
            max_position_embeddings=512,
            pad_token_id=tokenizer.pad_token_id,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
        ),
        vision_config=JanusVisionConfig(
            hidden_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            image_size=32,
            patch_size=4,
            projection_dim=32,
            num_image_tokens=64,
            mlp_ratio=2.0,
        ),
        vq_config=JanusVQVAEConfig(
            embed_dim=8,
            num_embeddings=256,
            latent_channels=32,
            base_channels=32,
            channel_multiplier=(1, 1, 1, 1),
            num_res_blocks=1,
            projection_dim=32,
            image_token_embed_dim=32,
            num_hidden_layers=1,
        ),
        image_token_id=tokenizer.convert_tokens_to_ids("<image_placeholder>"),
    )
    model = JanusForConditionalGeneration(config)
    # At the usual 0.02 init the token distribution is almost uniform, so CFG and temperature barely move
    # a draw; a wider head gives peaked distributions, as a trained model has.
    for layer in (model.model.generation_head.proj_out, model.model.generation_head.vision_head):
        torch.nn.init.normal_(layer.weight, std=0.5)
    # What the Hub conversion writes: Janus' CFG weight and temperature, and the ids its generate() needs.
    model.generation_config = GenerationConfig(
        temperature=1.0,
        guidance_scale=5.0,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        generation_kwargs={"boi_token_id": boi},
    )
    model.save_pretrained(root)
    processor.save_pretrained(root)
