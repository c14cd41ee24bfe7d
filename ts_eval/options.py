"""`--model-arg k=v` / `--scorer-arg k=v` strings -> typed options, checked against defaults."""

from __future__ import annotations

from typing import Any

from ts_eval.errors import UsageError


def parse_options(args: dict[str, str], spec: dict[str, Any], owner: str) -> dict[str, Any]:
    """Parse `--model-arg`/`--scorer-arg` strings against defaults; unknown keys are a usage error.

    The type of each default decides the conversion (bool/int/float/str; None means str or None).
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
            else:
                out[key] = raw
        except ValueError:
            kind = "true/false" if isinstance(default, bool) else type(default).__name__
            raise UsageError(f"{owner}: {key}={raw!r} is not a valid {kind}") from None
    return out
