"""Tiny random-initialised models on disk, each built once per folder, for tests, smoke runs and benchmarks.

The builders (`generators/tiny_models.py`, `scorers/tiny_models.py`, `geneval/tiny.py`) all go through
`build_once`, so they share one set of rules:
- a folder is ready when its `READY` file names the recipe it was built from (model, seed, settings). The file
  is written last and atomically, so a half-built folder (a killed build, another recipe) is rebuilt, never used;
- two processes asking for the same folder build it once: the second waits on a lock in the folder, then
  finds it ready;
- the build runs under `torch.random.fork_rng` with only the CPU generator seeded, so the caller's torch RNG
  (CPU and CUDA) is left as it was;
- each returns a `TinyModel`: the folder, and the plugin options (`--model-arg`/`--scorer-arg` values) that
  load it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ts_eval.store.files import json_bytes, write_atomic

READY = "READY"
LOCK = ".building.lock"


@dataclass(frozen=True)
class TinyModel:
    folder: Path
    args: dict[str, str]  # the options a generator or scorer takes to load it


def recipe(model: str, seed: int, settings: dict[str, Any] | None = None) -> dict[str, Any]:
    # through JSON, so that a tuple setting compares equal to the list read back from READY
    return json.loads(json.dumps({"model": model, "seed": seed, **(settings or {})}))


def is_ready(folder: Path, wanted: dict[str, Any]) -> bool:
    try:
        return json.loads((folder / READY).read_text(encoding="utf-8")) == wanted
    except (OSError, ValueError):
        return False


@contextmanager
def _building(folder: Path) -> Iterator[None]:
    """Hold an exclusive lock on the folder; the kernel drops it if this process dies."""
    import fcntl

    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # blocks while another process builds
        yield
    finally:
        os.close(fd)


def build_once(
    folder: str | Path,
    args: dict[str, str],
    build: Callable[[Path], None],
    *,
    model: str,
    seed: int = 0,
    settings: dict[str, Any] | None = None,
) -> TinyModel:
    """Run `build(folder)` with torch's CPU generator seeded by `seed`, unless the folder is ready for this
    recipe; returns the folder with `args`."""
    folder = Path(folder)
    wanted = recipe(model, seed, settings)
    if not is_ready(folder, wanted):
        import torch

        with _building(folder):
            if not is_ready(folder, wanted):  # another process may have built it while this one waited
                (folder / READY).unlink(missing_ok=True)  # a rebuild for another recipe is half-built until done
                with torch.random.fork_rng(devices=[]):
                    torch.default_generator.manual_seed(seed)  # torch.manual_seed would seed CUDA too
                    build(folder)
                write_atomic(folder / READY, json_bytes(wanted))
    return TinyModel(folder, args)
