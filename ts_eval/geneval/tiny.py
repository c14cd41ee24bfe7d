"""Tiny random-initialised GenEval models of the real architectures, saved to disk, built offline.

Each is loaded back through the same scorer options a user passes for the real weights (a config file and
checkpoint for mmdet, a model folder for hf, `local-dir:` for open_clip), so tests and speed benchmarks run
the real code paths: preprocessing, batching, forward, post-processing. Their outputs mean nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ts_eval.tiny import TinyModel, build_once

TINY_SIZE = (96, 64)  # test-time resize (long, short side) of the tiny detectors; the official one is (1333, 800)
MMDET_CONFIG, MMDET_CHECKPOINT = "mask2former_tiny.py", "mask2former_tiny.pth"
# The transformers Mask2Former's tiny shape (also what the GPU suite's CPU smoke run times).
TINY_SWIN: dict[str, Any] = dict(
    embed_dim=16,
    depths=[1, 1, 1, 1],
    num_heads=[1, 1, 2, 2],
    window_size=4,
    image_size=64,
    out_features=["stage1", "stage2", "stage3", "stage4"],
)
TINY_MASK2FORMER: dict[str, Any] = dict(
    num_labels=80,
    num_queries=8,
    hidden_dim=32,
    mask_feature_size=32,
    feature_size=32,
    encoder_layers=1,
    decoder_layers=2,
    encoder_feedforward_dim=64,
    dim_feedforward=64,
    num_attention_heads=2,
)


def tiny_mmdet(folder: str | Path, seed: int = 0, scale: tuple[int, int] = TINY_SIZE) -> TinyModel:
    """A 0.36 M-parameter Mask2Former (Swin backbone) config + checkpoint; its args are the scorer args.

    `scale` is the config's test resize (long, short); the official (1333, 800) makes every image 800 px."""
    folder = Path(folder)
    args = {
        "detector": "mmdet",
        "detector_config": str(folder / MMDET_CONFIG),
        "checkpoint": str(folder / MMDET_CHECKPOINT),
    }
    return build_once(
        folder,
        args,
        lambda root: _save_mmdet(root, scale),
        model="tiny random Mask2Former (mmdet)",
        seed=seed,
        settings={"scale": scale},
    )


def _save_mmdet(folder: Path, scale: tuple[int, int]) -> None:
    import torch
    from mmdet.apis import init_detector

    from ts_eval.geneval.mmdet_backend import resolve_config

    cfg, _ = resolve_config("")
    model = cfg.model
    model.backbone.update(embed_dims=16, depths=[1, 1, 1, 1], num_heads=[1, 1, 2, 2], window_size=4, drop_path_rate=0.0)
    head = model.panoptic_head
    head.update(in_channels=[16, 32, 64, 128], feat_channels=32, out_channels=32, num_queries=8)
    head.positional_encoding.update(num_feats=16)
    decoder = head.pixel_decoder
    decoder.positional_encoding.update(num_feats=16)
    decoder.norm_cfg.update(num_groups=8)
    decoder.encoder.update(num_layers=1)
    decoder.encoder.layer_cfg.self_attn_cfg.update(embed_dims=32, num_heads=2)
    decoder.encoder.layer_cfg.ffn_cfg.update(embed_dims=32, feedforward_channels=64)
    layers = head.transformer_decoder
    layers.update(num_layers=1)
    layers.layer_cfg.self_attn_cfg.update(embed_dims=32, num_heads=2)
    layers.layer_cfg.cross_attn_cfg.update(embed_dims=32, num_heads=2)
    layers.layer_cfg.ffn_cfg.update(embed_dims=32, feedforward_channels=64)
    cfg.test_dataloader.dataset.pipeline[1].scale = scale
    cfg.test_pipeline = cfg.test_dataloader.dataset.pipeline
    cfg.dump(str(folder / MMDET_CONFIG))
    detector = init_detector(cfg, checkpoint=None, device="cpu")
    torch.save(
        {"state_dict": detector.state_dict(), "meta": {"note": "tiny random Mask2Former"}}, folder / MMDET_CHECKPOINT
    )


def tiny_hf(folder: str | Path, seed: int = 0) -> TinyModel:
    """A tiny transformers Mask2Former (Swin backbone, 80 COCO labels) saved with its image processor."""
    return build_once(
        folder,
        {"detector": "hf", "hf_model": str(folder)},
        _save_hf,
        model="tiny random Mask2Former (transformers)",
        seed=seed,
    )


def _save_hf(folder: Path) -> None:
    from transformers import (
        Mask2FormerConfig,
        Mask2FormerForUniversalSegmentation,
        Mask2FormerImageProcessor,
        SwinConfig,
    )

    config = Mask2FormerConfig(
        backbone_config=SwinConfig(**TINY_SWIN),  # pyright: ignore[reportArgumentType]  # annotated Dict, takes a config
        **TINY_MASK2FORMER,
    )
    Mask2FormerForUniversalSegmentation(config).save_pretrained(folder)
    Mask2FormerImageProcessor(size={"shortest_edge": TINY_SIZE[1], "longest_edge": TINY_SIZE[0]}).save_pretrained(
        folder
    )


def tiny_clip(folder: str | Path, seed: int = 0) -> TinyModel:
    """A tiny CLIP in OpenAI's release format (a TorchScript archive), loaded like OpenAI's ViT-L/14."""
    from ts_eval.scorers.tiny_models import build_tiny_openai_clip

    built = build_tiny_openai_clip(folder, seed)
    return TinyModel(built.folder, {"clip_pretrained": built.args["pretrained"]})
