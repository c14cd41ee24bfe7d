"""The narrow interface every scorer implements."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from ts_eval.records import ScoredImage, ScoreRequest


@runtime_checkable
class Scorer(Protocol):
    """Built as `cls(args: dict[str, str], *, task, device, batch_size)` from `--scorer-arg k=v`.

    The class names its options dataclass as `Options` and parses `args` with `ts_eval.options.parse_options`
    into `options` (see `Generator`); `ts-eval scorers` lists the same definition.

    No dtype comes from the command line (that is the generator's): each scorer runs in its official
    precision unless `--scorer-arg dtype=...` says otherwise, and `describe()` reports the effective one.

    `score` returns one ScoredImage per request, in order, each holding exactly one row per name in
    `metrics`. Equal `describe()` output must mean equal scores: it keys the content cache. A scorer that also
    returns detections (GenEval) sets `writes_detections = True`.
    """

    name: str
    metrics: tuple[str, ...]
    batch_size: int
    options: Any  # the parsed options dataclass

    def describe(self) -> dict[str, Any]:
        """Name, version and every setting that changes a score (model, templates, thresholds)."""
        ...

    def score(self, requests: list[ScoreRequest]) -> list[ScoredImage]: ...
