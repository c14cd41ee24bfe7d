"""Find a task's data files: `--data DIR`, the copy bundled with the package, or the official download.

Every file is checked against the sha256 pinned in the task spec before any prompt is read from it. A
download looks in the Hugging Face cache first; with no cached copy and no reachable Hub it fails at once
with the `hf download` command that fetches the files and the `--data DIR` flag that uses them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ts_eval import hub
from ts_eval.errors import UsageError
from ts_eval.store.files import sha256_file
from ts_eval.tasks.spec import TaskSpec, Variant

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DataFiles:
    paths: dict[str, Path]
    origin: str  # "--data", "bundled" or "download"
    source: dict[str, Any]  # what the manifest records: repo, revision, sha256 of each file
    expected: dict[str, int] = field(default_factory=dict)  # the variant's official prompt counts (`expected:`)

    def __getitem__(self, name: str) -> Path:
        return self.paths[name]


def resolve_data(spec: TaskSpec, variant: str | None, data_dir: str | Path | None) -> DataFiles:
    variant_name, variant_spec = spec.variant(variant)
    wanted = variant_spec.files
    if data_dir is not None:
        folder, origin = Path(data_dir), "--data"
        if not folder.is_dir():
            raise UsageError(f"--data {folder}: no such directory")
        paths = {name: folder / name for name in wanted}
    elif variant_spec.bundled:
        folder, origin = spec.path.parent / variant_spec.bundled, "bundled"
        paths = {name: folder / name for name in wanted}
    else:
        origin = "download"
        paths = _download(spec, variant_name, variant_spec, list(wanted))
    observed = {}
    for name, path in paths.items():
        if not path.is_file():
            raise UsageError(f"{spec.name} {variant_name}: {path} is missing; {_how_to_fetch(variant_spec, name)}")
        observed[name] = sha256_file(path)
        pinned = wanted[name].sha256
        if pinned and observed[name] != pinned:
            raise UsageError(
                f"{path}: sha256 {observed[name][:12]}... does not match the pinned "
                f"{pinned[:12]}... for {spec.name} {variant_name}; re-download it or use the official file"
            )
        if not pinned:
            log.warning("%s has no pinned sha256 in %s; observed %s", path.name, spec.path.name, observed[name])
    source = {**variant_spec.source, "variant": variant_name, "origin": origin, "sha256": observed}
    return DataFiles(paths=paths, origin=origin, source=source, expected=dict(variant_spec.expected))


def _how_to_fetch(variant_spec: Variant, name: str) -> str:
    src = variant_spec.source
    if "hf_dataset" in src:
        repo = hub.HubRepo(src["hf_dataset"], src.get("revision", "main"), repo_type="dataset")
        return f"fetch it with `{repo.fetch_command([name])}` and pass --data DIR"
    return f"put {name} from {_official(variant_spec)} there or point --data at a folder holding it"


def _official(variant_spec: Variant) -> str:
    src = variant_spec.source
    if "hf_dataset" in src:
        return f"the Hugging Face dataset {src['hf_dataset']} (revision {src.get('revision', 'main')})"
    return src.get("url", "the official source")


def _download(spec: TaskSpec, variant_name: str, variant_spec: Variant, filenames: list[str]) -> dict[str, Path]:
    """The files from the Hugging Face cache at the pinned revision, downloading them if the Hub answers."""
    src = variant_spec.source
    if "hf_dataset" not in src:
        raise UsageError(
            f"{spec.name} {variant_name}: no download source; pass --data DIR holding {', '.join(filenames)}"
        )
    repo = hub.HubRepo(src["hf_dataset"], src.get("revision", "main"), repo_type="dataset", flag="--data DIR")
    return hub.fetch(repo, filenames, what=f"{spec.name} {variant_name}")
