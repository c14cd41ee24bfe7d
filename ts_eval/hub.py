"""Files from the Hugging Face Hub, offline-first: the local cache, else a Hub that answers, else one line.

huggingface_hub and transformers retry an unreachable Hub for tens of seconds per file and then print a
page of retries. Here the Hub is probed once per process (about 2 s at most), every file is looked up in the
local Hugging Face cache first, and when neither has it the user gets one line: the exact `hf download`
command that fetches what is missing and the ts-eval flag that points at the result.

Loaders that download by themselves (open_clip, transformers' Mask2Former) call
`require_local_or_reachable` once before they start.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ts_eval.distributed import rank_prefix
from ts_eval.errors import UsageError

PROBE_TIMEOUT_S = 2.0
DEFAULT_ENDPOINT = "https://huggingface.co"
_TRUE = {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class HubRepo:
    """A repository at a revision, and the ts-eval flag that takes a local copy of it instead."""

    repo: str
    revision: str = "main"
    repo_type: str = "model"  # "model" or "dataset"
    flag: str = "--data DIR"

    def fetch_command(self, files: Sequence[str] = ()) -> str:
        """`hf download` with exactly the files needed (all of them when `files` is empty)."""
        kind = " --repo-type dataset" if self.repo_type == "dataset" else ""
        names = "".join(f" {name}" for name in files)
        return f"hf download {self.repo}{names}{kind} --revision {self.revision} --local-dir DIR"


def endpoint() -> str:
    return (os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")


def unreachable_reason() -> str | None:
    """Why the Hub cannot be used now (HF_HUB_OFFLINE, or a failed probe), or None when it answers."""
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in _TRUE:
        return "HF_HUB_OFFLINE is set"
    return _probe(endpoint())


@functools.cache
def _probe(url: str) -> str | None:
    """One HEAD request per endpoint and process. The Hub answers its front page with 200 (401 where an
    endpoint wants a token); a gateway or captive portal that answers 404/403/5xx for every host is not a Hub."""
    try:
        urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=PROBE_TIMEOUT_S).close()
    except urllib.error.HTTPError as exc:
        return None if exc.code == 401 else f"{url} answered HTTP {exc.code}, not as a Hugging Face Hub"
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return f"{url} is unreachable ({_one_line(reason)})"
    return None


def cached_file(repo: HubRepo, filename: str, cache_dir: str | Path | None = None) -> Path | None:
    """The file from the local Hugging Face cache at the repo's revision, without any network call."""
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(
        repo.repo, filename, cache_dir=cache_dir, revision=repo.revision, repo_type=repo.repo_type
    )
    return Path(found) if isinstance(found, str) else None


def missing_message(repo: HubRepo, files: Sequence[str], reason: str, what: str = "") -> str:
    shown = ", ".join(files[:3]) + (f" and {len(files) - 3} more" if len(files) > 3 else "")
    return (
        f"{what or repo.repo}: {shown or 'the files'} of {repo.repo} (revision {repo.revision}) are not in the "
        f"Hugging Face cache and the Hub cannot be used ({reason}); fetch them with "
        f"`{repo.fetch_command(files)}` and pass {repo.flag}"
    )


def require_local_or_reachable(
    repo: HubRepo, files: Sequence[str], *, cache_dir: str | Path | None = None, what: str = "", any_of: bool = False
) -> Path | None:
    """Call once before a library downloads `files` of `repo` by itself.

    Returns the cached snapshot folder when every file (with `any_of`, one of them: e.g. open_clip's
    `open_clip_model.safetensors` or `open_clip_pytorch_model.bin`) is in the local cache: hand the library
    that folder, and it needs no network. Returns None when they are not cached but the Hub answers (let the
    library download), and raises a one-line UsageError naming the fetch command and the flag when neither.
    """
    quiet_third_party_logs()
    found = [cached_file(repo, name, cache_dir) for name in files]
    cached = [path for path in found if path is not None]
    if cached and (any_of or len(cached) == len(found)):
        return cached[0].parent
    reason = unreachable_reason()
    if reason:
        wanted = list(files[:1]) if any_of else [n for n, f in zip(files, found) if f is None]
        raise UsageError(missing_message(repo, wanted, reason, what))
    return None


def list_files(
    repo: HubRepo,
    cache_dir: str | Path | None = None,
    what: str = "",
    enough: Callable[[set[str]], bool] = bool,
    known: Sequence[str] = (),
) -> list[str]:
    """The repository's file names at the revision: the cached snapshot's when `enough(names)`, else the Hub's.

    With neither, the one-line error's command fetches `known` (files the caller knows it needs), or the
    whole repository.
    """
    snapshot = _cached_snapshot(repo, cache_dir)
    if snapshot is not None:
        names = {p.relative_to(snapshot).as_posix() for p in snapshot.rglob("*") if p.is_file()}
        if enough(names):
            return sorted(names)
    reason = unreachable_reason()
    if reason:
        raise UsageError(missing_message(repo, list(known), reason, what))
    from huggingface_hub import HfApi

    try:
        return sorted(
            HfApi(endpoint=endpoint()).list_repo_files(repo.repo, revision=repo.revision, repo_type=repo.repo_type)
        )
    except Exception as exc:  # not found, gated, network: all end the same way for the user
        raise UsageError(
            f"{what or repo.repo}: cannot list {repo.repo} (revision {repo.revision}) on the Hub "
            f"({type(exc).__name__}: {_one_line(exc)}); fetch it with `{repo.fetch_command()}` "
            f"and pass {repo.flag}"
        ) from None


def fetch(
    repo: HubRepo, files: Sequence[str], *, cache_dir: str | Path | None = None, what: str = ""
) -> dict[str, Path]:
    """Local paths of `files`: from the cache, else downloaded (huggingface_hub's progress bars), else one line."""
    paths = {name: cached_file(repo, name, cache_dir) for name in files}
    missing = [name for name, path in paths.items() if path is None]
    if not missing:
        return paths  # type: ignore[return-value]
    require_local_or_reachable(repo, missing, cache_dir=cache_dir, what=what)  # raises unless the Hub answers
    from huggingface_hub import hf_hub_download

    for name in missing:
        try:
            paths[name] = Path(
                hf_hub_download(repo.repo, name, revision=repo.revision, repo_type=repo.repo_type, cache_dir=cache_dir)
            )
        except Exception as exc:  # network, missing file, disk: all end the same way for the user
            raise UsageError(
                f"{what or repo.repo}: cannot download {name} of {repo.repo} (revision "
                f"{repo.revision}): {type(exc).__name__}: {_one_line(exc)}; fetch it with "
                f"`{repo.fetch_command(missing)}` and pass {repo.flag}"
            ) from None
    return paths  # type: ignore[return-value]


def _cached_snapshot(repo: HubRepo, cache_dir: str | Path | None) -> Path | None:
    from huggingface_hub import constants

    root = Path(cache_dir or constants.HF_HUB_CACHE) / f"{repo.repo_type}s--{repo.repo.replace('/', '--')}"
    revision = repo.revision
    ref = root / "refs" / revision
    if ref.is_file():
        revision = ref.read_text().strip()
    snapshot = root / "snapshots" / revision
    return snapshot if snapshot.is_dir() else None


# -- third-party logs ------------------------------------------------------------------------------

_DIGITS = re.compile(r"\d+")
# Libraries whose messages are collapsed; "" is the root logger, which open_clip logs to.
THIRD_PARTY = ("huggingface_hub", "transformers", "diffusers", "datasets", "open_clip", "timm", "")


class _FirstLineOnce(logging.Filter):
    """Keep the first line of each message, once: `Retrying in 2s [Retry 1/5]` and its repeats become one line
    (prefixed with the torchrun rank, like ts-eval's own lines)."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: set[tuple[str, str]] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name == "ts_eval" or record.name.startswith("ts_eval."):
            return True  # ts-eval's own lines are formatted by ts_eval.logs
        key = getattr(record, "one_line_key", None)
        if key is None:  # the first filter this record meets rewrites it; every filter keeps its own `seen`
            line = _one_line(record.getMessage())
            key = (record.name, _DIGITS.sub("N", line)[:120])
            record.msg, record.args, record.one_line_key = rank_prefix() + line, (), key
        if key in self.seen:
            return False
        self.seen.add(key)
        return True


def quiet_third_party_logs(names: Sequence[str] = THIRD_PARTY) -> None:
    """Collapse each third-party log message to one line, shown once (idempotent): the one place that does it.

    ts-eval's command setup (ts_eval.logs) calls it, and so does each loader right after importing a
    library that sets up its own handler on import (transformers, diffusers, datasets). The filter sits on the
    library's own handlers too: records of child loggers (`huggingface_hub.utils._http`) reach those handlers
    but not the parent logger's filters. With `-v` messages stay in full.
    """
    if logging.NOTSET < logging.getLogger("ts_eval").level <= logging.DEBUG:  # -v: messages in full
        return
    for name in names:
        logger = logging.getLogger(name)
        for holder in [logger, *logger.handlers]:
            if not any(isinstance(f, _FirstLineOnce) for f in holder.filters):
                holder.addFilter(_FirstLineOnce())


def _one_line(value: object, limit: int = 200) -> str:
    text = " ".join(str(value).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
