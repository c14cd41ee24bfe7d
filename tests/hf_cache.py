"""A Hugging Face cache laid out by hand: what huggingface_hub writes, for tests that must not download."""

from __future__ import annotations

import hashlib
from pathlib import Path

# What the Hub stores in LFS; the cache names those blobs by sha256, other files by git sha1.
LFS_FILES = {"pytorch_model.bin", "model.safetensors", "spiece.model"}


def add_to_hf_cache(
    cache: Path, repo: str, revision: str, folder: Path, *, ref: str | None = None, repo_type: str = "model"
) -> Path:
    """Lay out the files of `folder` as huggingface_hub's cache does (blobs, snapshot links, refs)."""
    root = cache / f"{repo_type}s--{repo.replace('/', '--')}"
    (root / "blobs").mkdir(parents=True, exist_ok=True)
    snapshot = root / "snapshots" / revision
    snapshot.mkdir(parents=True, exist_ok=True)
    for file in sorted(folder.iterdir()):
        data = file.read_bytes()
        blob = (
            hashlib.sha256(data).hexdigest()
            if file.name in LFS_FILES
            else hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
        )
        (root / "blobs" / blob).write_bytes(data)
        (snapshot / file.name).symlink_to(Path("..", "..", "blobs", blob))
    if ref:
        (root / "refs").mkdir(exist_ok=True)
        (root / "refs" / ref).write_text(revision)
    return snapshot
