"""Options as typed values: `RunOptions` for a run's stages, and the `k=v` strings of `--model-arg`/`--scorer-arg`.

Every default is defined here once; the CLI and the Python API build the same `RunOptions`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Sequence

from ts_eval.errors import UsageError

DEFAULT_RESAMPLES = 1000  # bootstrap resamples of the 95% CIs; recorded in the manifest's `summary_settings`
DEFAULT_BATCH_SIZE = 8


@dataclass
class RunOptions:
    """Everything `run`, `generate` and `score` take; `None` means the task's official setting."""

    task: str | None = None  # None for `score`, which reads it from the run
    variant: str | None = None
    split: str | None = None
    skill: str | None = None
    data: str | None = None
    prompts: str | None = None  # the `prompts` task's SOURCE: a file, a dataset folder or hf://ORG/NAME...
    prompt_tags: list[str] | None = None  # its tag columns; None: every column besides prompt and id
    tasks_dir: str | None = None
    model: str | Any = "dummy"  # a registered name, or an in-memory generator ts_eval.evaluate has wrapped
    model_args: dict[str, str] = field(default_factory=dict)
    scorer: str | None = None
    scorer_args: dict[str, str] = field(default_factory=dict)
    n_samples: int | None = None
    limit: int | None = None
    seed: int = 0
    image_format: str | None = None
    out: str | None = None
    overwrite: bool = False
    batch_size: int = DEFAULT_BATCH_SIZE
    device: str = "auto"
    dtype: str = "auto"  # the generator's; each scorer runs in its official dtype unless --scorer-arg dtype=
    prompt_rewrites: str | None = None
    resamples: int | None = None  # None: the run's recorded setting (DEFAULT_RESAMPLES for a new run)
    cache: bool = True
    view: bool = True  # write view.html (the visual report) next to summary.json
    progress: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.model, str) and not all(hasattr(self.model, a) for a in ("generate", "describe")):
            raise UsageError(f"model must be a registered name or a generator with generate() and describe(), got "
                             f"{type(self.model).__name__} (ts_eval.evaluate wraps functions, pipelines and folders)")
        if isinstance(self.prompt_tags, str):  # "Category,Challenge", as on the command line
            self.prompt_tags = [c.strip() for c in self.prompt_tags.split(",") if c.strip()]
        for name in ("n_samples", "limit", "batch_size", "resamples"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
                raise UsageError(f"--{name.replace('_', '-')} must be at least 1, got {value!r}")


def key_values(pairs: Sequence[str] | None, flag: str) -> dict[str, str]:
    """`--model-arg a=1 --model-arg b=2` or lm-eval's `--model-args a=1,b=2` -> {"a": "1", "b": "2"}."""
    out: dict[str, str] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"{flag} expects key=value, got {pair!r}")
        out[key.strip().replace("-", "_")] = value
    return out


def parse_options(args: dict[str, str], spec: dict[str, Any], owner: str) -> dict[str, Any]:
    """Parse `--model-arg`/`--scorer-arg` strings against defaults; unknown keys are a usage error.

    The type of each default decides the conversion (bool/int/float/str; None means str or None). Floats
    must be finite: a NaN threshold or guidance scale would silently compare false everywhere.
    """
    unknown = sorted(set(args) - set(spec))
    if unknown:
        raise UsageError(f"unknown argument(s) for {owner}: {', '.join(unknown)}; valid: {', '.join(sorted(spec))}")
    out = dict(spec)
    for key, raw in args.items():
        default = spec[key]
        try:
            if isinstance(default, bool):
                if str(raw).lower() not in {"1", "0", "true", "false", "yes", "no", "on", "off"}:
                    raise ValueError(raw)
                out[key] = str(raw).lower() in {"1", "true", "yes", "on"}
            elif isinstance(default, int):
                out[key] = int(raw)
            elif isinstance(default, float):
                out[key] = float(raw)
                if not math.isfinite(out[key]):
                    raise ValueError(raw)
            else:
                out[key] = raw
        except ValueError:
            kind = "true/false" if isinstance(default, bool) else type(default).__name__
            raise UsageError(f"{owner}: {key}={raw!r} is not a valid {kind}") from None
    return out
