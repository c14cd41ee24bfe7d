"""Find a task's data files: `--data DIR`, the copy bundled with the package, or the official download.

Every file is checked against the sha256 pinned in the task spec before any prompt is read from it.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ts_eval.distributed import rank_prefix
from ts_eval.errors import UsageError
from ts_eval.store.files import sha256_file
from ts_eval.tasks.spec import TaskSpec


@dataclass(frozen=True)
class DataFiles:
    paths: dict[str, Path]
    origin: str  # "--data", "bundled" or "download"
    source: dict[str, Any]  # what the manifest records: repo, revision, sha256 of each file

    def __getitem__(self, name: str) -> Path:
        return self.paths[name]


def resolve_data(spec: TaskSpec, variant: str | None, data_dir: str | Path | None) -> DataFiles:
    variant_name, variant_spec = spec.variant(variant)
    wanted: dict[str, dict[str, Any]] = variant_spec["files"]
    if data_dir is not None:
        folder, origin = Path(data_dir), "--data"
        if not folder.is_dir():
            raise UsageError(f"--data {folder}: no such directory")
        paths = {name: folder / name for name in wanted}
    elif variant_spec.get("bundled"):
        folder, origin = spec.path.parent / variant_spec["bundled"], "bundled"
        paths = {name: folder / name for name in wanted}
    else:
        origin = "download"
        paths = {name: _download(spec, variant_name, variant_spec, name) for name in wanted}
    observed = {}
    for name, path in paths.items():
        if not path.is_file():
            raise UsageError(f"{spec.name} {variant_name}: {path} is missing; put {name} from "
                             f"{_official(variant_spec)} there or point --data at a folder holding it")
        observed[name] = sha256_file(path)
        pinned = wanted[name].get("sha256") if wanted[name] else None
        if pinned and observed[name] != pinned:
            raise UsageError(f"{path}: sha256 {observed[name][:12]}... does not match the pinned "
                             f"{pinned[:12]}... for {spec.name} {variant_name}; re-download it or use the official file")
        if not pinned:
            print(f"{rank_prefix()}ts-eval: warning: {path.name} has no pinned sha256 in {spec.path.name}; observed {observed[name]}",
                  file=sys.stderr)
    source = {**variant_spec["source"], "variant": variant_name, "origin": origin, "sha256": observed}
    return DataFiles(paths=paths, origin=origin, source=source)


def _official(variant_spec: dict[str, Any]) -> str:
    src = variant_spec["source"]
    if "hf_dataset" in src:
        return f"the Hugging Face dataset {src['hf_dataset']} (revision {src.get('revision', 'main')})"
    return src.get("url", "the official source")


def _download(spec: TaskSpec, variant_name: str, variant_spec: dict[str, Any], filename: str) -> Path:
    """Fetch one file into the Hugging Face cache at the pinned revision (progress bar from huggingface_hub)."""
    src = variant_spec["source"]
    if "hf_dataset" not in src:
        raise UsageError(f"{spec.name} {variant_name}: no download source; pass --data DIR holding {filename}")
    try:
        from huggingface_hub import hf_hub_download
    except ImportError:
        raise UsageError("huggingface_hub is needed to download task data; run: pip install huggingface_hub") from None
    try:
        return Path(hf_hub_download(repo_id=src["hf_dataset"], filename=filename, repo_type="dataset",
                                    revision=src.get("revision", "main")))
    except Exception as exc:  # network errors, offline mode, missing file: all end the same way for the user
        reason = type(exc).__name__
        raise UsageError(f"cannot download {filename} of {spec.name} {variant_name} from {_official(variant_spec)} "
                         f"({reason}); when offline, download it elsewhere and pass --data DIR") from None
