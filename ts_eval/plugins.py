"""`ts-eval models` and `ts-eval scorers`: every plugin with its options, defaults and meaning, and what it needs.

Everything shown comes from the registry and each plugin's options dataclass (no hand-kept list), and nothing
here imports a backend: a core install lists every option, and says which extra a plugin needs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ts_eval import registry
from ts_eval.options import OptionInfo, option_infos, summary_line


@dataclass(frozen=True)
class Entry:
    """One plugin as listed."""

    kind: str  # "model" or "scorer"
    name: str
    origin: str  # "ts-eval", or the distribution that registers it
    summary: str
    options: tuple[OptionInfo, ...]
    extra: str | None  # the pip extra it needs (None: the core install is enough)
    missing: str | None  # the one line naming what to install, when its backend is absent here
    by_option: tuple[str, ...] = field(default=())  # "detector=hf: <what to install>" for absent backends
    problem: str | None = None  # why its options cannot be shown (a plugin that fails to import)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "name": self.name,
            "origin": self.origin,
            "summary": self.summary,
            "extra": self.extra,
            "installed": self.missing is None,
            "missing": self.missing,
            "by_option": list(self.by_option),
            "problem": self.problem,
            "options": [o.to_dict() for o in self.options],
        }


def _entry(kind: str, name: str, plugin: registry.Plugin) -> Entry:
    missing = plugin.needs.missing() if plugin.needs else None
    by_option = tuple(
        f"{option}={value}: {problem}"
        for option, choices in plugin.needs_by_option.items()
        for value, need in choices.items()
        if (problem := need.missing())
    )
    extra = plugin.needs.extra if plugin.needs else None
    try:
        spec = plugin.options_class()
    except Exception as exc:  # a third-party plugin may fail to import in any way; the listing goes on
        spec, problem = None, f"cannot be imported: {type(exc).__name__}: {exc}".splitlines()[0]
    else:
        problem = None if spec is not None else "declares no Options dataclass"
    if spec is None:
        return Entry(kind, name, plugin.origin, "", (), extra, missing, by_option, problem)
    return Entry(kind, name, plugin.origin, summary_line(spec), tuple(option_infos(spec)), extra, missing, by_option)


def entries(kind: str, names: list[str] | None = None) -> list[Entry]:
    """The plugins of one kind (built-in first, then other packages'), or only `names` (each must exist)."""
    table = registry.plugins(kind)
    chosen = names or list(table)
    for name in chosen:
        registry.find(kind, name)  # an unknown name is one line listing the valid ones
    return [_entry(kind, name, table[name]) for name in chosen]


def _default(value: Any) -> str:
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return "true" if value else "false"
    if value == "":
        return "''"
    return str(value)


def render(listed: list[Entry]) -> str:
    """Plain text: per plugin a head line, what it needs, then one aligned row per option."""
    if not listed:
        return ""
    flag = f"--{listed[0].kind}-arg"
    lines = [
        f"Options are given as {flag} NAME=VALUE (repeatable) or {flag}s A=1,B=2 (a comma inside a value: \\,).",
        "",
    ]
    for e in listed:
        head = e.name + (f" ({e.origin})" if e.origin != "ts-eval" else "")
        lines.append(f"{head}: {e.summary}" if e.summary else head)
        if e.missing:
            lines.append(f"  not installed: {e.missing}")
        elif e.extra:
            lines.append(f"  extra: [{e.extra}] (installed)")
        lines += [f"  {choice}" for choice in e.by_option]
        if e.problem:
            lines.append(f"  options unknown: {e.problem}")
        rows = [(o.name, o.type_name, _default(o.default)) for o in e.options]
        widths = [max((len(r[i]) for r in rows), default=0) for i in range(3)]
        for o in e.options:
            meaning = o.help + (f" [{' | '.join(o.choices)}]" if o.choices else "")
            lines.append(
                f"  {o.name:<{widths[0]}}  {o.type_name:<{widths[1]}}  {_default(o.default):<{widths[2]}}  "
                f"{meaning}".rstrip()
            )
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"
