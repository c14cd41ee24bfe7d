"""Where a public model's weights come from, and how the manifest pins them.

`--model-arg path=` is a local folder or a Hugging Face Hub repo id. A Hub repo is pinned by the commit
its `revision` resolved to; a local folder by the sha256 of its files, since a folder's content can change
under the same name. Either way equal manifests mean equal weights.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from ts_eval.errors import UsageError

# Bytes to hash before a progress bar is worth showing.
_BAR_FROM = 1 << 30


@dataclass(frozen=True)
class Source:
    path: str  # a repo id as given, or the folder's absolute path
    local: bool
    revision: str | None  # what the user asked for (Hub only)

    def describe(self, commit: str | None) -> dict[str, Any]:
        if self.local:
            return {"path": self.path, "revision": None, "commit": None}
        return {"path": self.path, "revision": self.revision, "commit": commit}


def resolve_source(path: str, revision: str | None, owner: str, default_revision: str = "main") -> Source:
    """A local folder (no revision allowed) or a Hub repo id; a path that looks local must exist."""
    if not path:
        raise UsageError(f"{owner} needs --model-arg path=REPO_OR_DIR (a Hugging Face repo id or a local folder)")
    expanded = Path(path).expanduser()
    if expanded.is_dir():
        if revision:
            raise UsageError(f"{owner}: revision={revision} applies to Hub repos; {path} is a local folder")
        return Source(str(expanded.resolve()), True, None)
    looks_local = path.startswith(("/", ".", "~")) or path.count("/") > 1  # repo ids are "name" or "org/name"
    if looks_local or expanded.exists():
        raise UsageError(f"{owner}: {path} is not a folder; pass a model folder or a Hub repo id such as org/name")
    return Source(path, False, revision or default_revision)


def snapshot_commit(folder: str | Path) -> str | None:
    """The commit of a Hub cache snapshot folder (`.../snapshots/<commit>`), else None."""
    folder = Path(folder)
    return folder.name if folder.parent.name == "snapshots" else None


def folder_sha256(folder: Path) -> str:
    """sha256 over every file's relative path and bytes, in sorted order (hidden entries skipped)."""
    files = sorted(
        p
        for p in folder.rglob("*")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )
    total = sum(p.stat().st_size for p in files)
    digest = hashlib.sha256()
    with tqdm(
        total=total, unit="B", unit_scale=True, desc=f"hash {folder.name}", leave=False, disable=total < _BAR_FROM
    ) as bar:
        for path in files:
            digest.update(path.relative_to(folder).as_posix().encode() + b"\0")
            with open(path, "rb") as handle:
                for chunk in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(chunk)
                    bar.update(len(chunk))
    return digest.hexdigest()


def local_sha256(source: Source) -> str | None:
    """A local folder is pinned by its bytes; a Hub snapshot by its commit (None here)."""
    return folder_sha256(Path(source.path)) if source.local else None


def load_failed(what: str, source: Source, exc: BaseException) -> UsageError:
    """One line for a model that could not be loaded: why, and how to supply it without a network."""
    reason = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
    if source.local:
        return UsageError(f"cannot load {what} from {source.path} ({reason})")
    return UsageError(
        f"cannot load {what} {source.path!r} at revision {source.revision} ({reason}); without a "
        f"network, download it elsewhere ({_download_command(source)}), copy the folder here and "
        "pass --model-arg path=DIR"
    )


def _download_command(source: Source) -> str:
    try:
        from huggingface_hub import __version__ as hub_version
    except ImportError:
        hub_version = "1"
    cli = "huggingface-cli" if int(hub_version.split(".")[0]) < 1 else "hf"
    return f"{cli} download {source.path} --revision {source.revision} --local-dir DIR"
