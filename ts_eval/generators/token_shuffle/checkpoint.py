"""Checkpoints: a folder with `config.json` (format `ts-eval/token-shuffle@1`: model config + window) and
`model.safetensors` (Transformer + shuffle MLPs), optionally `vq.safetensors` (the VQ decoder).

Loading checks every tensor's name and shape first and names the first one that does not fit.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ts_eval.errors import UsageError
from ts_eval.generators.token_shuffle.configs import ModelArgs
from ts_eval.store import write_atomic

FORMAT = "ts-eval/token-shuffle@1"
MODEL_FILE, VQ_FILE, CONFIG_FILE = "model.safetensors", "vq.safetensors", "config.json"


def read_checkpoint_config(folder: Path) -> tuple[ModelArgs, int]:
    path = folder / CONFIG_FILE
    if not path.is_file():
        raise UsageError(
            f"checkpoint {folder} has no {CONFIG_FILE}; a checkpoint is a folder with {CONFIG_FILE} and {MODEL_FILE}"
        )
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise UsageError(f"{path}: malformed JSON") from None
    if not isinstance(raw, dict) or raw.get("format") != FORMAT or not isinstance(raw.get("model"), dict):
        raise UsageError(f"{path}: not a {FORMAT} config (needs 'format', 'model' and 'window')")
    window = raw.get("window")
    if not isinstance(window, int):
        raise UsageError(f"{path}: 'window' must be an integer")
    return ModelArgs.from_dict(raw["model"], str(path)), window


# Globals a weights file may hold beyond tensors and containers: LlamaGen's .pt files carry the training
# script's argparse.Namespace next to the state dict. Nothing else is ever unpickled.
ALLOWED_GLOBALS: list[Callable[..., Any] | tuple[Callable[..., Any], str]] = [argparse.Namespace]


def read_tensors(path: Path) -> dict[str, torch.Tensor]:
    """safetensors, or a torch pickle of tensors (LlamaGen's .pt: the state dict under "model"), read with
    torch's weights-only unpickler and `ALLOWED_GLOBALS`."""
    if not path.is_file():
        raise UsageError(f"weights file {path} does not exist")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except Exception as exc:  # safetensors raises its own error types for damaged files
            raise UsageError(f"{path}: not a readable safetensors file ({exc})") from None
    try:
        with torch.serialization.safe_globals(ALLOWED_GLOBALS):
            obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:
        raise UsageError(f"{path}: not a readable torch weights file ({exc})") from None
    if isinstance(obj, dict) and isinstance(obj.get("model"), dict):
        obj = obj["model"]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise UsageError(f"{path}: expected a mapping of tensor names to tensors")
    return obj


def load_into(
    module: nn.Module, tensors: dict[str, torch.Tensor], path: Path, *, ignore_prefixes: tuple[str, ...] = ()
) -> None:
    """Copy `tensors` into `module` after checking that every name and shape matches."""
    expected = module.state_dict()
    for name, target in expected.items():
        if name not in tensors:
            raise UsageError(
                f"{path}: tensor '{name}' is missing (expected shape {list(target.shape)}); "
                "is this checkpoint for another config or window?"
            )
        if tuple(tensors[name].shape) != tuple(target.shape):
            raise UsageError(
                f"{path}: tensor '{name}' has shape {list(tensors[name].shape)}, the model expects "
                f"{list(target.shape)}; the checkpoint is for another config or window"
            )
    extra = sorted(n for n in tensors if n not in expected and not n.startswith(ignore_prefixes))
    if extra:
        raise UsageError(f"{path}: tensor '{extra[0]}' is not part of this model ({len(extra)} unexpected in all)")
    module.load_state_dict({n: tensors[n] for n in expected}, strict=True)


def sha256_files(paths: list[Path]) -> str:
    digest = hashlib.sha256()
    for path in paths:
        with open(path, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


def save_checkpoint(
    folder: Path,
    args: ModelArgs,
    window: int,
    model: nn.Module,
    vq: nn.Module | None = None,
    extra: dict[str, Any] | None = None,
) -> None:
    from safetensors.torch import save

    folder.mkdir(parents=True, exist_ok=True)
    config = {"format": FORMAT, "window": window, "model": args.to_dict(), **(extra or {})}
    write_atomic(folder / MODEL_FILE, save({k: v.contiguous().cpu() for k, v in model.state_dict().items()}))
    if vq is not None:
        write_atomic(folder / VQ_FILE, save({k: v.contiguous().cpu() for k, v in vq.state_dict().items()}))
    write_atomic(folder / CONFIG_FILE, (json.dumps(config, indent=2) + "\n").encode())
