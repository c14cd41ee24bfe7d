"""Options as typed values: `RunOptions` for a run's stages, and each plugin's typed options, parsed from the `k=v`
strings of `--model-arg`/`--scorer-arg`.

Every default is defined here once; the CLI and the Python API build the same `RunOptions`.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

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
            raise UsageError(
                f"model must be a registered name or a generator with generate() and describe(), got "
                f"{type(self.model).__name__} (ts_eval.evaluate wraps functions, pipelines and folders)"
            )
        if isinstance(self.prompt_tags, str):  # "Category,Challenge", as on the command line
            self.prompt_tags = [c.strip() for c in self.prompt_tags.split(",") if c.strip()]
        for name in ("n_samples", "limit", "batch_size", "resamples"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
                raise UsageError(f"--{name.replace('_', '-')} must be at least 1, got {value!r}")


# -- plugin options: `--model-arg`/`--scorer-arg` ---------------------------------------------------
#
# Each generator and scorer declares its options once, as a frozen dataclass whose fields carry a type, a
# default and a one-line meaning (`option(...)`). The same definition parses the `k=v` strings, lists the
# options in `ts-eval models|scorers`, and is what the manifest records as the plugin's effective settings.

T = TypeVar("T")
_KINDS = (bool, int, float, str)  # what a `k=v` string can become
_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off"}


def option(default: Any, help: str, *, choices: Sequence[str] = ()) -> Any:
    """A field of a plugin's options dataclass: its default, a one-line meaning and, where the value is one of a
    fixed set, the set (checked when parsed, shown when listed)."""
    return field(default=default, metadata={"help": help, "choices": tuple(choices)})


@dataclass(frozen=True)
class OptionInfo:
    """One option as `ts-eval models|scorers` lists it."""

    name: str
    kind: type  # bool, int, float or str
    optional: bool  # None is a value of its own (usually: the backend's or the task's default)
    default: Any
    help: str
    choices: tuple[str, ...] = ()

    @property
    def type_name(self) -> str:
        return self.kind.__name__ + ("?" if self.optional else "")

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type_name,
            "default": self.default,
            "help": self.help,
            "choices": list(self.choices),
        }


def _kind(name: str, hint: Any, owner: str) -> tuple[type, bool]:
    """The conversion of a field's type hint: `int` -> (int, False), `float | None` -> (float, True)."""
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    optional = len(args) < len(typing.get_args(hint))
    if hint in _KINDS:
        return hint, False
    if typing.get_origin(hint) in (typing.Union, types.UnionType) and len(args) == 1 and args[0] in _KINDS:
        return args[0], optional
    raise TypeError(f"{owner}: option {name} has type {hint!r}; use bool, int, float or str (or X | None)")


def option_infos(spec: type) -> list[OptionInfo]:
    """The options a plugin's options dataclass declares, in declaration order."""
    if not dataclasses.is_dataclass(spec):
        raise TypeError(f"{spec!r} is not an options dataclass")
    hints = typing.get_type_hints(spec)
    infos = []
    for f in dataclasses.fields(spec):
        if f.default is dataclasses.MISSING:
            raise TypeError(f"{spec.__name__}.{f.name} has no default; every plugin option needs one")
        kind, optional = _kind(f.name, hints[f.name], spec.__name__)
        infos.append(
            OptionInfo(
                f.name, kind, optional, f.default, str(f.metadata.get("help", "")), tuple(f.metadata.get("choices", ()))
            )
        )
    return infos


def summary_line(spec: type) -> str:
    """The first line of the options dataclass's docstring: what the plugin is, in one line."""
    doc = spec.__doc__ or ""
    return "" if doc.startswith(f"{spec.__name__}(") else doc.strip().splitlines()[0] if doc.strip() else ""


def _convert(info: OptionInfo, raw: str, owner: str) -> Any:
    text = str(raw)
    try:
        if info.kind is bool:
            if text.lower() not in _TRUE | _FALSE:
                raise ValueError(text)
            value: Any = text.lower() in _TRUE
        elif info.kind is int:
            value = int(text)
        elif info.kind is float:
            value = float(text)
            if not math.isfinite(value):  # a NaN threshold or guidance scale would silently compare false
                raise ValueError(text)
        else:
            value = text
    except ValueError:
        kind = "true/false" if info.kind is bool else info.kind.__name__
        raise UsageError(f"{owner}: {info.name}={raw!r} is not a valid {kind}") from None
    if info.choices and value not in info.choices:
        raise UsageError(f"{owner}: {info.name}={raw!r}; choose one of: {', '.join(info.choices)}")
    return value


def parse_options(
    args: Mapping[str, str], spec: type[T], owner: str, *, defaults: Mapping[str, Any] | None = None
) -> T:
    """`--model-arg`/`--scorer-arg` strings -> the plugin's options dataclass; one line for any bad key or value.

    `defaults` replaces some field defaults (e.g. `ts-eval rescore` starts from the judge settings a run recorded).
    """
    infos = {info.name: info for info in option_infos(spec)}
    unknown = sorted(set(args) - set(infos))
    if unknown:
        raise UsageError(f"unknown argument(s) for {owner}: {', '.join(unknown)}; valid: {', '.join(sorted(infos))}")
    values = {name: info.default for name, info in infos.items()}
    values.update({k: v for k, v in (defaults or {}).items() if k in infos})
    values.update({key: _convert(infos[key], raw, owner) for key, raw in args.items()})
    return spec(**values)


def option_values(options: Any) -> dict[str, Any] | None:
    """A plugin's parsed options as the manifest records them (every effective value, defaults included); None for
    a plugin that keeps no options dataclass."""
    if dataclasses.is_dataclass(options) and not isinstance(options, type):
        return dataclasses.asdict(options)
    return None


def key_values(pairs: Sequence[str] | None, flag: str) -> dict[str, str]:
    """`--model-arg a=1 --model-arg b=2` -> {"a": "1", "b": "2"}; a dash in a key reads as an underscore."""
    out: dict[str, str] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"{flag} expects key=value, got {pair!r}")
        out[key.strip().replace("-", "_")] = value
    return out


def split_pairs(text: str, flag: str) -> list[str]:
    """lm-eval's `--model-args a=1,b=2` -> ["a=1", "b=2"].

    A comma inside a value is written `\\,` (`negative_prompt=blurry\\, dark`) and a backslash before a comma or
    another backslash as `\\\\`; any other backslash is kept as typed (Windows paths). The repeated `--model-arg`
    form takes each value verbatim, commas included.
    """
    pairs, current, i = [], [], 0
    while i < len(text):
        char = text[i]
        if char == "\\" and i + 1 < len(text) and text[i + 1] in ",\\":
            current.append(text[i + 1])
            i += 2
            continue
        if char == ",":
            pairs.append("".join(current))
            current = []
        else:
            current.append(char)
        i += 1
    pairs.append("".join(current))
    pairs = [p.strip() for p in pairs]
    if any(not p for p in pairs):
        raise UsageError(
            f"{flag} {text!r} has an empty item; separate key=value pairs with single commas "
            "(write a comma inside a value as \\,)"
        )
    for pair in pairs:
        if "=" not in pair:
            raise UsageError(
                f"{flag} expects key=value[,key=value...], got {pair!r} in {text!r} "
                "(write a comma inside a value as \\,)"
            )
    return pairs
