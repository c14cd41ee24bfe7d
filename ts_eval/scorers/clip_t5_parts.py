"""Where CLIP-T5's three parts come from, and what identifies them.

t2v-metrics' CLIP-T5 loads a model (CLIP-T5 weights), a T5 tokenizer, and the CLIP vision tower the model's
config.json names (`mm_vision_tower`). Each part is a local folder, or a Hub id found in the Hugging Face
cache (downloaded first when the Hub answers; else one line naming the `hf download` command and the flag).
All of this needs no torch, so an offline answer comes at once. Each part is identified by the sha256 of
every file its loader reads, so official weights are recognised by content whatever path they come by.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ts_eval import hub
from ts_eval.errors import UsageError
from ts_eval.weights import WEIGHT_FILES, HashCache, folder_sha256, weight_files

# t2v-metrics 3.0's CLIP_T5_MODELS repos, known here so the parts are found before torch is imported (a
# test checks they equal t2v-metrics' table).
OFFICIAL_PARTS = {
    "clip-flant5-xxl": {"model": "zhiqiulin/clip-flant5-xxl", "tokenizer": "google/flan-t5-xxl"},
    "clip-flant5-xl": {"model": "zhiqiulin/clip-flant5-xl", "tokenizer": "google/flan-t5-xl"},
}
# Hub revisions fetched for the official parts. t2v-metrics loads `main` of each; the two pinned commits are
# the ones public Hugging Face caches of these repos hold. zhiqiulin/clip-flant5-xxl stays at `main`: no
# public source gives its full commit; the description records the commit actually used.
REVISIONS = {
    "google/flan-t5-xxl": "ae7c9136adc7555eeccc78cdd960dfd60fb346ce",
    "openai/clip-vit-large-patch14-336": "ce19dc912ca5cd21c8a653c79e251e808ccabcd1",
}
# The files of those two repos that CLIP-T5 loads, for the offline `hf download` command (without a list
# it would fetch every weight format they hold, about 90 GB for flan-t5-xxl). The CLIP-T5 repo is fetched whole.
OFFLINE_FILES = {
    "google/flan-t5-xxl": ("spiece.model", "tokenizer_config.json", "special_tokens_map.json", "config.json"),
    "openai/clip-vit-large-patch14-336": ("config.json", "preprocessor_config.json", "pytorch_model.bin"),
}
# What each part's loader reads besides weights: AutoTokenizer(use_fast=False) for the T5 tokenizer;
# CLIPImageProcessor and CLIPVisionModel for the tower; the CLIP-T5 class for the model.
PART_FILES = {
    "model": ("config.json", "generation_config.json"),
    "tokenizer": (
        "tokenizer_config.json",
        "special_tokens_map.json",
        "added_tokens.json",
        "spiece.model",
        "config.json",
    ),
    "vision_tower": ("config.json", "preprocessor_config.json"),
}
PART_OPTIONS = {"model": "model_path", "tokenizer": "tokenizer_path", "vision_tower": "vision_tower_path"}
_HF_SNAPSHOT = re.compile(r"(models|datasets)--(?P<org>[^/]+?)--(?P<name>[^/]+)/snapshots/(?P<commit>[0-9a-f]{40})$")


@dataclass
class Part:
    """One part: the local folder handed to the loader, its Hub identity if any, its files' sha256."""

    folder: Path
    repo: str | None = None
    revision: str | None = None
    sha256: dict[str, str] = field(default_factory=dict)

    def describe(self) -> dict[str, Any]:
        return {"repo": self.repo, "revision": self.revision, "sha256": dict(sorted(self.sha256.items()))}


def find_part(
    kind: str, source: str, *, owner: str, what: str, hashes: HashCache, cache_dir: str | None = None
) -> Part:
    """`kind` (model, tokenizer, vision_tower) from a local folder as it is, or a Hub id in the cache."""
    source = os.path.expanduser(source)
    noun = kind.replace("_", " ")
    needs = "spiece.model" if kind == "tokenizer" else "config.json or the weights"
    if os.path.isdir(source):
        folder = Path(source).resolve()
        names = {p.name for p in folder.iterdir() if p.is_file()}
        if not _complete(kind, names):
            raise UsageError(
                f"{owner}: {folder} is not a {noun} folder (it lacks {needs}); point "
                f"--scorer-arg {PART_OPTIONS[kind]} at a Hugging Face folder holding them"
            )
        files = [n for n in PART_FILES[kind] if n in names]
        if kind != "tokenizer":
            files += weight_files(names, lambda n: (folder / n).read_text())
        match = _HF_SNAPSHOT.search(folder.as_posix())  # a snapshot of the Hugging Face cache keeps its identity
        return Part(
            folder,
            f"{match['org']}/{match['name']}" if match else None,
            match["commit"] if match else None,
            folder_sha256(folder, files, hashes),
        )
    if source.startswith(("/", ".", "~")) or source.count("/") != 1:
        raise UsageError(
            f"{owner}: {noun} {source} does not exist; give a local folder or a Hugging Face id (org/name)"
        )
    repo = hub.HubRepo(source, REVISIONS.get(source, "main"), flag=f"--scorer-arg {PART_OPTIONS[kind]}=DIR")
    listed = set(
        hub.list_files(
            repo, cache_dir, what, enough=lambda names: _complete(kind, names), known=OFFLINE_FILES.get(source, ())
        )
    )
    if not _complete(kind, listed):
        raise UsageError(
            f"{owner}: {repo.repo} (revision {repo.revision}) is not a {noun} repository: it lacks {needs}"
        )
    wanted = [n for n in PART_FILES[kind] if n in listed]
    if kind != "tokenizer":  # an index names its shards: fetch it first
        wanted += weight_files(listed, lambda n: hub.fetch(repo, [n], cache_dir=cache_dir, what=what)[n].read_text())
    paths = hub.fetch(repo, wanted, cache_dir=cache_dir, what=what)
    folder = next(iter(paths.values())).parent
    return Part(folder, repo.repo, folder.name, {n: hashes.sha256(p) for n, p in paths.items()})


def _complete(kind: str, names: set[str]) -> bool:
    """Does a folder (or a cached snapshot) hold what the part's loader needs?"""
    if kind == "tokenizer":
        return "spiece.model" in names
    return "config.json" in names and any(n in names for n in WEIGHT_FILES)


def vision_tower_of(model_folder: Path, owner: str) -> str:
    """The CLIP vision tower a CLIP-T5 config.json names (`mm_vision_tower`), as t2v-metrics reads it."""
    try:
        return str(json.loads((model_folder / "config.json").read_text())["mm_vision_tower"])
    except (OSError, ValueError, KeyError, TypeError):
        raise UsageError(
            f"{owner}: {model_folder}/config.json names no mm_vision_tower; is it a CLIP-T5 model?"
        ) from None


def with_vision_tower(model_folder: Path, tower: Path, root: Path) -> Path:
    """The model folder, or a folder of links to its files whose config.json names the local tower folder.

    t2v-metrics builds the tower from config.json's `mm_vision_tower`; a Hub id there would make transformers
    look it up online. Every other file is the original (a symbolic link), so the weights are the same bytes.
    """
    config = json.loads((model_folder / "config.json").read_text())
    if os.path.realpath(str(config.get("mm_vision_tower"))) == str(tower):
        return model_folder
    config["mm_vision_tower"] = str(tower)
    text = json.dumps(config, indent=2, sort_keys=True)
    name = hashlib.sha256(f"{model_folder}\x1f{text}".encode()).hexdigest()[:16]
    linked = root / name
    if not (linked / "config.json").is_file():
        partial = root / f"{name}.partial-{os.getpid()}"
        partial.mkdir(parents=True, exist_ok=True)
        for item in model_folder.iterdir():
            if item.name != "config.json":
                (partial / item.name).symlink_to(item.resolve())
        (partial / "config.json").write_text(text)
        try:
            partial.rename(linked)
        except OSError:  # another process made it first
            shutil.rmtree(partial, ignore_errors=True)
    return linked
