"""Import t2v-metrics 3.0's CLIP-T5 VQAScore alone, without running the package's `__init__` files.

Why this module exists: `t2v_metrics/__init__.py` refuses to import unless `ffmpeg -version` runs (image
scoring never calls ffmpeg), appends InternVideo2 to `sys.path`, and imports every score family; then
`models/vqascore_models/__init__.py` imports all 18 VLM wrappers, which need llava (not on PyPI), xformers,
flash_attn, decord and a dozen more packages that CLIP-T5 never uses.

So the three parent packages of `clip_t5_model` are registered as bare packages that point at their real
folders (`__path__`) without executing their `__init__.py`; Python then imports `clip_t5_model` and the
modules it names itself (`mm_utils`, `clip_t5`, `constants`, ...) from the installed files, unchanged. No
module is stubbed and no ffmpeg stand-in is needed. These three shells are the whole workaround.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import sys
import types
import warnings
from pathlib import Path

from ts_eval.errors import UsageError

INSTALL = "pip install 'ts-eval[genai]' && pip install --no-deps t2v-metrics==3.0"
PACKAGE = "t2v_metrics"
# The parents of the CLIP-T5 wrapper whose `__init__.py` is skipped (see the module docstring).
SHELLS = ("t2v_metrics", "t2v_metrics.models", "t2v_metrics.models.vqascore_models")
CLIP_T5 = "t2v_metrics.models.vqascore_models.clip_t5_model"


def _package_root() -> Path:
    module = sys.modules.get(PACKAGE)
    if module is not None and getattr(module, "__path__", None):
        return Path(next(iter(module.__path__)))
    spec = importlib.util.find_spec(PACKAGE) if PACKAGE not in sys.modules else None
    if spec is None or not spec.submodule_search_locations:
        raise UsageError(f"t2v-metrics is not installed (needed by scorer 'vqascore'); run: {INSTALL}")
    return Path(next(iter(spec.submodule_search_locations)))


def _register_shells(root: Path) -> None:
    for name in SHELLS:
        if name in sys.modules:
            continue
        folder = root.joinpath(*name.split(".")[1:])
        shell = types.ModuleType(name, "t2v-metrics package folder; its __init__.py is not run by ts-eval")
        shell.__path__ = [str(folder)]
        shell.__spec__ = importlib.machinery.ModuleSpec(name, None, is_package=True)
        shell.__spec__.submodule_search_locations = shell.__path__
        sys.modules[name] = shell


def clip_t5_module():
    """t2v-metrics' `clip_t5_model` module, or a one-line UsageError saying what to install."""
    if CLIP_T5 in sys.modules:
        return sys.modules[CLIP_T5]
    root = _package_root()
    if not (root / "models" / "vqascore_models" / "clip_t5_model.py").is_file():  # t2v-metrics 3.1 dropped it
        raise UsageError(f"this t2v-metrics ({root}) has no CLIP-T5 models; run: {INSTALL}")
    _register_shells(root)
    try:
        with warnings.catch_warnings():
            # CLIP-T5's CUDA autocast decorators warn on a CPU-only machine
            warnings.filterwarnings("ignore", message=".*CUDA is not available.*")
            return importlib.import_module(CLIP_T5)
    except ImportError as exc:
        missing = f" (module {exc.name!r})" if exc.name else ""
        raise UsageError(f"t2v-metrics' CLIP-T5 could not be imported: {exc}{missing}; run: {INSTALL}") from None


def clip_t5_models() -> dict:
    """t2v-metrics' table of CLIP-T5 models: name -> tokenizer and model paths, conversation style."""
    return clip_t5_module().CLIP_T5_MODELS
