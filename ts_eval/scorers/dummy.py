"""A stand-in scorer for smoke runs and tests: a fixed pseudo-random value per (image bytes, prompt).

It looks at no pixels; use it to exercise the harness, never to compare models.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from ts_eval.options import option, parse_options
from ts_eval.records import Sample, ScoredImage, ScoreRequest


@dataclass(frozen=True)
class DummyScorerOptions:
    """A fixed pseudo-random value per (image bytes, prompt), no pixels looked at: for smoke runs and tests."""

    binary: bool | None = option(
        None, "values 0/1 instead of [0, 1) (unset: binary for tasks whose metric is `correct`)"
    )
    # accepted like every scorer's; no model runs, so it changes nothing
    dtype: str = option("auto", "accepted like every scorer's dtype; changes nothing here")


class DummyScorer:
    name = "dummy"
    Options = DummyScorerOptions

    def __init__(self, args: dict[str, str], *, task, device: str = "cpu", batch_size: int = 64):
        self.options = parse_options(args, DummyScorerOptions, "scorer 'dummy'")
        self.binary = task.metric == "correct" if self.options.binary is None else self.options.binary
        self.metrics = (task.metric,)
        self.batch_size = batch_size

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "version": "1", "metric": self.metrics[0], "binary": self.binary}

    def score(self, requests: list[ScoreRequest]) -> list[ScoredImage]:
        return [
            ScoredImage(
                [
                    Sample(
                        r.prompt.prompt_id, r.sample_index, self.metrics[0], self._value(r), image_sha256=r.image_sha256
                    )
                ]
            )
            for r in requests
        ]

    def _value(self, request: ScoreRequest) -> float:
        digest = hashlib.sha256(f"{request.image_sha256}\x1f{request.prompt.prompt}".encode()).digest()
        unit = int.from_bytes(digest[:8], "big") / 2**64
        return float(unit >= 0.5) if self.binary else round(unit, 6)
