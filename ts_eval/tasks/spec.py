"""Load task specs from the bundled `tasks/` folder, other packages' `ts_eval.tasks` entry points and any
`--tasks-dir`; adding a benchmark is adding a file.

Each YAML file is validated into a typed `TaskSpec` (variants, groups, table, scorer, recipe...) when it is
read: anything missing or of the wrong shape is one line naming the file and the key, never a KeyError later.
The spec's `python:` names the benchmark's Python half (a `TaskModule`, below): an importable
module, or a `.py` file next to the YAML.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import logging
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol, runtime_checkable

import yaml

from ts_eval.errors import UsageError

if TYPE_CHECKING:
    import pandas as pd

    from ts_eval.records import Prompt

log = logging.getLogger(__name__)

_PACKAGE = Path(__file__).resolve().parent.parent


def bundled_tasks_dir() -> Path:
    """Inside a wheel the specs live at ts_eval/_tasks; in a source checkout at ./tasks."""
    installed = _PACKAGE / "_tasks"
    return installed if installed.is_dir() else _PACKAGE.parent / "tasks"


# -- the task's Python half -------------------------------------------------------------------------


@runtime_checkable
class TaskModule(Protocol):
    """Prompt loading and the official aggregation of one benchmark family (a module, or any object with these).

    `load_prompts` turns the variant's verified data files (`ts_eval.tasks.data.DataFiles`) into prompts (ids in
    the benchmark's own words); `summarize` gives `{"metric", "groups": {group: {"mean", "n", "ci95"}}, ...}` from the samples, as the
    benchmark's official code aggregates them, with bootstrap CIs over prompts.
    """

    def load_prompts(self, files: Any) -> list[Prompt]: ...

    def summarize(
        self, spec: TaskSpec, prompts: list[Prompt], samples: pd.DataFrame, *, resamples: int, seed: int
    ) -> dict[str, Any]: ...


@runtime_checkable
class GroupedTaskModule(TaskModule, Protocol):
    """A task module that says which prompts make up each group (the gate pairs prompts group by group).
    Without it a group is the prompts carrying its name as a tag, else every prompt."""

    def group_members(self, prompts: list[Prompt], group: str) -> list[str]: ...


@runtime_checkable
class UserPromptsTaskModule(TaskModule, Protocol):
    """The module of a task whose prompts come from `--prompts SOURCE` (`user_prompts: true` in its spec)."""

    def load_source(self, text: str | None, tag_columns: list[str] | None) -> tuple[Any, list[Prompt]]: ...


# -- the typed spec --------------------------------------------------------------------------------


@dataclass(frozen=True)
class DataFile:
    sha256: str | None  # None: not pinned yet (each read prints and records the observed sha256)


@dataclass(frozen=True)
class Variant(Mapping[str, Any]):
    """One variant of a benchmark's data: where it comes from, its files (pinned by sha256), a copy shipped with
    the spec (`bundled`, a folder relative to the YAML) and the official prompt counts (`expected`).

    It also reads as the YAML mapping it came from (`variant["files"]`)."""

    name: str
    source: dict[str, Any]
    files: dict[str, DataFile]
    bundled: str | None
    expected: dict[str, int]
    raw: dict[str, Any] = field(repr=False)

    def __getitem__(self, key: str) -> Any:
        return self.raw[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.raw)

    def __len__(self) -> int:
        return len(self.raw)


class Column(NamedTuple):
    """One column of the task's table: its header and the group it shows."""

    header: str
    group: str


@dataclass(frozen=True)
class ScorerChoice:
    """The task's official scorer and its `--scorer-arg` values."""

    name: str
    args: dict[str, str]


@dataclass(frozen=True)
class TaskSpec:
    name: str
    version: int
    path: Path
    raw: dict[str, Any] = field(repr=False)
    python: str  # the TaskModule: a module name, or a .py file relative to the YAML
    metric: str
    title: str
    default_n_samples: int
    scorer: ScorerChoice
    recipe: dict[str, Any] | None  # `official:`: every setting that changes the task's numbers
    without_recipe: str | None  # the verdict label of a task with no recipe (the `prompts` task's)
    default_variant: str
    variants: dict[str, Variant]
    default_split: str
    splits: dict[str, str | None]  # split -> the tag it selects (None: every prompt)
    sections: dict[str, tuple[str, ...]]  # `groups:` as written: section -> group names
    columns: tuple[Column, ...]  # `table:`
    user_prompts: bool  # the prompts come from `--prompts SOURCE` (the `prompts` task)
    tag_groups: bool  # each tag of the prompt set is a group of its own, besides the listed ones
    value_range: tuple[float, float]  # the metric's possible values (leaderboard consistency checks)

    @cached_property
    def module(self) -> TaskModule:
        """The benchmark family's Python half (prompt loading, aggregation), checked against `TaskModule`."""
        module = _import_task_module(self.python, self.path)
        wanted = UserPromptsTaskModule if self.user_prompts else TaskModule
        if not isinstance(module, wanted):
            needs = ["load_prompts", "summarize"] + (["load_source"] if self.user_prompts else [])
            missing = [name for name in needs if not callable(getattr(module, name, None))]
            raise UsageError(
                f"task spec {self.path}: python: {self.python} lacks {', '.join(missing)} (see docs/extending.md)"
            )
        return module

    @property
    def default_scorer(self) -> tuple[str, dict[str, str]]:
        return self.scorer.name, dict(self.scorer.args)

    def variant(self, name: str | None) -> tuple[str, Variant]:
        name = str(name) if name is not None else self.default_variant
        if name not in self.variants:
            raise UsageError(
                f"unknown variant '{name}' for task {self.name}; choose one of: {', '.join(self.variants)}"
            )
        return name, self.variants[name]

    def split_tag(self, split: str | None) -> tuple[str, str | None]:
        split = split or self.default_split
        if split not in self.splits:
            raise UsageError(f"unknown split '{split}' for task {self.name}; choose one of: {', '.join(self.splits)}")
        return split, self.splits[split]

    @property
    def groups(self) -> list[str]:
        return [g for section in self.sections.values() for g in section]

    @property
    def overall(self) -> tuple[str, ...]:
        """The groups of the `overall` section (the one number of a run)."""
        return self.sections.get("overall", ())

    @property
    def table(self) -> list[Column]:
        return list(self.columns)

    def layout(self, groups: list[str]) -> list[tuple[str, str]]:
        """(header, group) of the table for runs holding `groups`: the spec's table, after one column per tag
        group (named as the tag) where the groups are data-driven."""
        if not self.tag_groups:
            return [*self.table]
        listed = set(self.groups)
        tags = [g for g in dict.fromkeys(groups) if g not in listed]
        return [(tag, tag) for tag in tags] + self.table

    def group_members(self, prompts: list[Prompt], group: str) -> list[str]:
        """The prompt ids of a group: the task module's own membership; else the prompts tagged with the group;
        else every prompt."""
        module = self.module
        if isinstance(module, GroupedTaskModule):
            return module.group_members(prompts, group)
        return [p.prompt_id for p in prompts if group in p.tags] or [p.prompt_id for p in prompts]

    def load_source(self, text: str | None, tag_columns: list[str] | None) -> tuple[Any, list[Prompt]]:
        """The prompts of `--prompts SOURCE`, for a task whose prompts are the user's (`user_prompts: true`)."""
        module = self.module
        if not isinstance(module, UserPromptsTaskModule):
            raise UsageError(f"task {self.name} has its own prompt set; --prompts is for the prompts task")
        return module.load_source(text, tag_columns)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.path.read_bytes()).hexdigest()


# -- validation: one line naming the file and the key -------------------------------------------------


class _Invalid(Exception):
    def __init__(self, key: str, problem: str):
        super().__init__(f"{key}: {problem}" if key else problem)


_REQUIRED = ("name", "version", "python", "metric", "variants", "default_variant", "groups", "table")


def _text(raw: Mapping[str, Any], key: str, default: str | None = None) -> str:
    value = raw.get(key, default)
    if not isinstance(value, str) or not value:
        raise _Invalid(key, "must be a non-empty string")
    return value


def _flag(raw: Mapping[str, Any], key: str) -> bool:
    value = raw.get(key, False)
    if not isinstance(value, bool):
        raise _Invalid(key, "must be true or false")
    return value


def _whole(value: Any, key: str, minimum: int | None = None) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or (minimum is not None and value < minimum):
        raise _Invalid(key, f"must be a whole number{f' of at least {minimum}' if minimum is not None else ''}")
    return value


def _mapping(value: Any, key: str, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _Invalid(key, f"must be a mapping of {what}")
    return value


def _variant(name: str, raw: Any) -> Variant:
    key = f"variants.{name}"
    if not isinstance(raw, dict) or not isinstance(raw.get("files"), dict) or not isinstance(raw.get("source"), dict):
        raise _Invalid(key, "needs a `source` mapping and a `files` mapping")
    files = {}
    for file_name, pin in raw["files"].items():
        sha = (pin or {}).get("sha256") if isinstance(pin, dict) or pin is None else pin
        if sha is not None and (not isinstance(sha, str) or not sha):
            raise _Invalid(f"{key}.files.{file_name}", "sha256 must be the file's hex digest, or null while unpinned")
        files[str(file_name)] = DataFile(sha)
    bundled = raw.get("bundled")
    if bundled is not None and (not isinstance(bundled, str) or not bundled):
        raise _Invalid(f"{key}.bundled", "must be a folder relative to the spec file")
    expected = _mapping(raw.get("expected") or {}, f"{key}.expected", "group -> official prompt count")
    for group, count in expected.items():
        _whole(count, f"{key}.expected.{group}", 0)
    return Variant(name, dict(raw["source"]), files, bundled, {str(k): v for k, v in expected.items()}, raw)


def _sections(raw: Any) -> dict[str, tuple[str, ...]]:
    if (
        not isinstance(raw, dict)
        or not raw
        or not all(isinstance(v, list) and v and all(isinstance(g, str) for g in v) for v in raw.values())
    ):
        raise _Invalid("groups", "must map each section to a non-empty list of group names")
    return {str(k): tuple(v) for k, v in raw.items()}


def _columns(raw: Any, groups: set[str]) -> tuple[Column, ...]:
    if (
        not isinstance(raw, list)
        or not raw
        or not all(isinstance(row, list) and len(row) == 2 and all(isinstance(x, str) for x in row) for row in raw)
    ):
        raise _Invalid("table", "must be a list of [header, group] pairs")
    columns = tuple(Column(header, group) for header, group in raw)
    unknown = [c.group for c in columns if c.group not in groups]
    if unknown:
        raise _Invalid("table", f"names group {unknown[0]!r}, which groups does not list")
    return columns


def _scorer(raw: Any) -> ScorerChoice:
    if raw is None:
        return ScorerChoice("dummy", {})
    scorer = _mapping(raw, "scorer", "name and args")
    args = _mapping(scorer.get("args") or {}, "scorer.args", "option -> value")
    return ScorerChoice(_text(scorer, "name"), {str(k): str(v) for k, v in args.items()})


def _value_range(raw: Any) -> tuple[float, float]:
    if raw is None:
        return 0.0, 1.0
    if (
        not isinstance(raw, list)
        or len(raw) != 2
        or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in raw)
        or raw[0] >= raw[1]
    ):
        raise _Invalid("value_range", "must be [low, high] with low < high")
    return float(raw[0]), float(raw[1])


def parse_spec(raw: dict[str, Any], path: Path) -> TaskSpec:
    """The typed spec of one YAML mapping; a one-line UsageError naming the file and the key when it is wrong."""
    try:
        return _parse(raw, path)
    except _Invalid as exc:
        raise UsageError(f"task spec {path}: {exc}") from None


def _parse(raw: dict[str, Any], path: Path) -> TaskSpec:
    missing = [k for k in _REQUIRED if k not in raw]
    if missing:
        raise _Invalid("", f"lacks required key(s): {', '.join(missing)} (see docs/extending.md)")
    name, python, metric = _text(raw, "name"), _text(raw, "python"), _text(raw, "metric")
    version = _whole(raw["version"], "version")
    variants_raw = raw["variants"]
    if not isinstance(variants_raw, dict) or not variants_raw:
        raise _Invalid("variants", "must map each variant name to its source and files")
    variants = {str(k): _variant(str(k), v) for k, v in variants_raw.items()}
    default_variant = str(raw["default_variant"])
    if default_variant not in variants:
        raise _Invalid("default_variant", f"{raw['default_variant']!r} is not one of the variants")
    sections = _sections(raw["groups"])
    columns = _columns(raw["table"], {g for section in sections.values() for g in section})
    splits_raw = raw.get("splits")
    if splits_raw is not None and (not isinstance(splits_raw, dict) or not splits_raw):
        raise _Invalid("splits", "must map each split name to a tag (or null for every prompt)")
    splits = {str(k): (None if v is None else str(v)) for k, v in (splits_raw or {"all": None}).items()}
    default_split = str(raw.get("default_split", "all"))
    if default_split not in splits:
        raise _Invalid("default_split", f"{raw.get('default_split', 'all')!r} is not one of the splits")
    n_samples = _whole(raw.get("n_samples", 1), "n_samples", 1)
    tag_groups, user_prompts = _flag(raw, "tag_groups"), _flag(raw, "user_prompts")
    for key in ("scorer", "official"):
        if raw.get(key) is not None and not isinstance(raw[key], dict):
            raise _Invalid(key, "must be a mapping")
    without_recipe = raw.get("without_recipe")
    if without_recipe is not None and (not isinstance(without_recipe, str) or raw.get("official")):
        raise _Invalid(
            "without_recipe", "is the label of a task with no `official` recipe: text, and no `official` key"
        )
    title = raw.get("title", name)
    if not isinstance(title, str):
        raise _Invalid("title", "must be text")
    return TaskSpec(
        name=name,
        version=version,
        path=path,
        raw=raw,
        python=python,
        metric=metric,
        title=title,
        default_n_samples=n_samples,
        scorer=_scorer(raw.get("scorer")),
        recipe=raw.get("official"),
        without_recipe=without_recipe,
        default_variant=default_variant,
        variants=variants,
        default_split=default_split,
        splits=splits,
        sections=sections,
        columns=columns,
        user_prompts=user_prompts,
        tag_groups=tag_groups,
        value_range=_value_range(raw.get("value_range")),
    )


def _read(path: Path) -> TaskSpec:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise UsageError(f"task spec {path} cannot be read: {str(exc).splitlines()[0]}") from None
    if not isinstance(raw, dict):
        raise UsageError(f"task spec {path} is not a YAML mapping of keys (name, version, variants, ...)")
    return parse_spec(raw, path)


# -- the task's Python half ------------------------------------------------------------------------


def _import_task_module(python: str, spec_path: Path) -> ModuleType:
    """`python:` of a spec: a `.py` file relative to the YAML (loaded once per process), or a module name."""
    if python.endswith(".py"):
        file = (spec_path.parent / python).resolve()
        if not file.is_file():
            raise UsageError(f"task spec {spec_path}: python: {file} does not exist")
        # named by path and content: the same file is imported once, an edited one again
        digest = hashlib.sha256(str(file).encode() + b"\0" + file.read_bytes()).hexdigest()[:12]
        name = f"ts_eval_task_{file.stem}_{digest}"
        if name in sys.modules:
            return sys.modules[name]
        loader_spec = importlib.util.spec_from_file_location(name, file)
        if loader_spec is None or loader_spec.loader is None:
            raise UsageError(f"task spec {spec_path}: python: {file} cannot be loaded as a Python module")
        module = importlib.util.module_from_spec(loader_spec)
        sys.modules[name] = module  # dataclasses and pickling look the module up by name
        try:
            loader_spec.loader.exec_module(module)
        except Exception as exc:  # the user's module may fail in any way: say which and why in one line
            del sys.modules[name]
            raise UsageError(
                f"task spec {spec_path}: python: {file} fails to import "
                f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})"
            ) from None
        return module
    try:
        return importlib.import_module(python)
    except ModuleNotFoundError as exc:
        if exc.name is None or not python.startswith(exc.name):
            raise  # the module exists; something it imports is missing
        raise UsageError(
            f"task spec {spec_path}: python: no module named {python!r} (name an importable module, "
            "or a .py file next to the spec)"
        ) from None


# -- where specs come from -------------------------------------------------------------------------


def plugin_task_paths() -> list[tuple[Path, str]]:
    """(folder or .yaml file, origin) of every `ts_eval.tasks` entry point another package registers.

    The entry point names a package (its folder's *.yaml are tasks) or `module:ATTR`, where ATTR is a folder or a
    .yaml file (relative paths: to the module's folder)."""
    from ts_eval import registry

    found = []
    for ep in registry.entry_points("task"):
        dist = getattr(ep, "dist", None)
        origin = f"entry point {ep.name} = {ep.value}" + (f" ({dist.name})" if dist else "")
        module_name, _, attr = ep.value.partition(":")
        try:
            if attr:
                module = importlib.import_module(module_name.strip())
                where = Path(str(getattr(module, attr.strip())))
                base = Path(module.__file__ or ".").parent
                found.append((where if where.is_absolute() else base / where, origin))
                continue
            spec = importlib.util.find_spec(module_name.strip())
            locations = list(spec.submodule_search_locations or []) if spec is not None else []
        except Exception as exc:  # another package's code may fail in any way: one line naming it
            raise UsageError(f"task plugin ({origin}) cannot be loaded: {type(exc).__name__}: {exc}") from None
        if not locations:
            raise UsageError(
                f"task plugin ({origin}) is not a package folder; name a package holding *.yaml "
                "specs, or module:ATTR giving a folder or a .yaml file"
            )
        found.append((Path(locations[0]), origin))
    return found


def _yaml_files(where: Path, origin: str) -> list[Path]:
    if where.is_file() and where.suffix in (".yaml", ".yml"):
        return [where]
    if not where.is_dir():
        raise UsageError(f"tasks directory {where} does not exist" + (f" ({origin})" if origin else ""))
    return sorted(where.glob("*.yaml"))


def _spec_files(tasks_dir: Path | str | None) -> dict[str, TaskSpec]:
    """Every spec by name: bundled, then other packages' (which cannot replace a bundled task), then --tasks-dir's
    (which can: the user asked for it)."""
    found: dict[str, TaskSpec] = {spec.name: spec for spec in map(_read, _yaml_files(bundled_tasks_dir(), ""))}
    bundled = set(found)
    for where, origin in plugin_task_paths():
        for path in _yaml_files(where, origin):
            spec = _read(path)
            if spec.name in bundled:
                log.warning("task %s from %s is ignored: the name is taken by a bundled task", spec.name, origin)
                continue
            found[spec.name] = spec
    if tasks_dir:
        for path in _yaml_files(Path(tasks_dir), ""):
            spec = _read(path)
            found[spec.name] = spec  # a user's --tasks-dir overrides a bundled spec of the same name
    return found


def available_tasks(tasks_dir: Path | str | None = None) -> list[str]:
    return sorted(_spec_files(tasks_dir))


def load_task(name: str, tasks_dir: Path | str | None = None) -> TaskSpec:
    specs = _spec_files(tasks_dir)
    if name not in specs:
        raise UsageError(f"unknown task '{name}'; choose one of: {', '.join(sorted(specs))}")
    log.debug("task %s from %s", name, specs[name].path)
    return specs[name]
