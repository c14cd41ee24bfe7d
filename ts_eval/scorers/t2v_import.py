"""Import t2v-metrics 3.0 for its CLIP-T5 VQAScore alone.

`import t2v_metrics` imports every VLM wrapper it ships (LLaVA, InstructBLIP, Qwen2-VL, ...), and those
need llava (not on PyPI), xformers, flash_attn, decord and a dozen more packages that CLIP-T5 never uses.
We put an empty stand-in module into `sys.modules` for each unused wrapper before the import. The package
also refuses to import unless `ffmpeg -version` runs, which image scoring never needs: without a real
ffmpeg, a stand-in answers that one check.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
import types
import warnings
from contextlib import contextmanager

from ts_eval.errors import UsageError

INSTALL = "pip install 'ts-eval[genai]' && pip install --no-deps t2v-metrics==3.0"

_PACKAGE = "t2v_metrics.models."
_UNUSED = ["clipscore_models", "itmscore_models"] + [f"vqascore_models.{name}_model" for name in (
    "llava llava16 instructblip gpt4v llavaov mplug paligemma internvl internvideo internlm llama32 molmo "
    "gemini qwen2vl llavavideo tarsier perceptionlm").split()]


def _empty_attribute(name: str):
    # t2v-metrics iterates each wrapper's `*_MODELS` dict, so every public name is an empty dict. Dunder
    # names must raise: `import torch` reads `__file__` of every module in sys.modules.
    if name.startswith("__"):
        raise AttributeError(name)
    return {}


def _install_stand_ins() -> None:
    for name in _UNUSED:
        if _PACKAGE + name not in sys.modules:
            module = types.ModuleType(_PACKAGE + name, "stand-in: this t2v-metrics wrapper is not used by ts-eval")
            module.__getattr__ = _empty_attribute
            sys.modules[_PACKAGE + name] = module


_FFMPEG_STAND_IN = """#!/bin/sh
# Stand-in written by ts-eval: t2v-metrics checks `ffmpeg -version` at import; image scoring never runs ffmpeg.
[ "$1" = "-version" ] && { echo "ffmpeg stand-in (ts-eval; no video support)"; exit 0; }
echo "this is not ffmpeg: install ffmpeg for video work" >&2
exit 1
"""


@contextmanager
def _ffmpeg_for_the_import_check():
    """Make `ffmpeg -version` answer during the import; a real ffmpeg on PATH is used when there is one."""
    if shutil.which("ffmpeg"):
        yield
        return
    from ts_eval.cache import default_cache_dir

    folder = default_cache_dir() / "bin"
    stand_in = folder / "ffmpeg"
    if not stand_in.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        stand_in.write_text(_FFMPEG_STAND_IN)
        stand_in.chmod(0o755)
    saved = os.environ.get("PATH", "")
    os.environ["PATH"] = str(folder) + os.pathsep + saved
    try:
        yield
    finally:
        os.environ["PATH"] = saved


def import_t2v_metrics():
    """Return the `t2v_metrics` module, or raise a one-line UsageError saying what to install."""
    if "t2v_metrics" in sys.modules:
        return sys.modules["t2v_metrics"]
    if importlib.util.find_spec("t2v_metrics") is None:
        raise UsageError(f"t2v-metrics is not installed (needed by scorer 'vqascore'); run: {INSTALL}")
    _install_stand_ins()
    try:
        with _ffmpeg_for_the_import_check(), warnings.catch_warnings():
            # CLIP-T5's CUDA autocast decorators warn on a CPU-only machine
            warnings.filterwarnings("ignore", message=".*CUDA is not available.*")
            import t2v_metrics
    except ImportError as exc:
        missing = f" (module {exc.name!r})" if exc.name else ""
        raise UsageError(f"t2v-metrics could not be imported: {exc}{missing}; run: {INSTALL}") from None
    return t2v_metrics


def clip_t5_models() -> dict:
    """t2v-metrics' table of CLIP-T5 models: name -> tokenizer and model paths, conversation style."""
    import_t2v_metrics()
    try:
        from t2v_metrics.models.vqascore_models import clip_t5_model
    except ImportError:  # t2v-metrics 3.1 dropped CLIP-FlanT5
        raise UsageError(f"this t2v-metrics has no CLIP-T5 models; run: {INSTALL}") from None
    return clip_t5_model.CLIP_T5_MODELS
