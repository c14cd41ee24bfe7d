"""Load task specs from the bundled `tasks/` folder and any `--tasks-dir`; adding a benchmark is adding a file."""

from __future__ import annotations

import hashlib
import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ts_eval.errors import UsageError

_PACKAGE = Path(__file__).resolve().parent.parent


def bundled_tasks_dir() -> Path:
    """Inside a wheel the specs live at ts_eval/_tasks; in a source checkout at ./tasks."""
    installed = _PACKAGE / "_tasks"
    return installed if installed.is_dir() else _PACKAGE.parent / "tasks"


@dataclass(frozen=True)
class TaskSpec:
    name: str
    version: int
    path: Path
    raw: dict[str, Any] = field(repr=False)

    @property
    def module(self):
        """The benchmark family's Python half (prompt loading, aggregation)."""
        return importlib.import_module(self.raw["python"])

    @property
    def metric(self) -> str:
        return self.raw["metric"]

    @property
    def default_n_samples(self) -> int:
        return int(self.raw.get("n_samples", 1))

    @property
    def default_scorer(self) -> tuple[str, dict[str, str]]:
        scorer = self.raw.get("scorer") or {"name": "dummy"}
        return scorer["name"], {k: str(v) for k, v in (scorer.get("args") or {}).items()}

    @property
    def recipe(self) -> dict[str, Any] | None:
        """The official recipe (`official:` in the YAML): every setting that changes the task's numbers."""
        return self.raw.get("official")

    @property
    def without_recipe(self) -> str | None:
        """The verdict label of a task that has no official recipe (`without_recipe:`, the `prompts` task's)."""
        return self.raw.get("without_recipe")

    @property
    def default_split(self) -> str:
        return str(self.raw.get("default_split", "all"))

    @property
    def splits(self) -> dict[str, str | None]:
        return self.raw.get("splits") or {"all": None}

    @property
    def variants(self) -> dict[str, dict[str, Any]]:
        return {str(k): v for k, v in self.raw["variants"].items()}

    def variant(self, name: str | None) -> tuple[str, dict[str, Any]]:
        name = str(name) if name is not None else str(self.raw["default_variant"])
        if name not in self.variants:
            raise UsageError(f"unknown variant '{name}' for task {self.name}; choose one of: "
                             f"{', '.join(self.variants)}")
        return name, self.variants[name]

    def split_tag(self, split: str | None) -> tuple[str, str | None]:
        split = split or self.raw.get("default_split", "all")
        if split not in self.splits:
            raise UsageError(f"unknown split '{split}' for task {self.name}; choose one of: {', '.join(self.splits)}")
        return split, self.splits[split]

    @property
    def groups(self) -> list[str]:
        return [g for section in self.raw["groups"].values() for g in section]

    @property
    def table(self) -> list[tuple[str, str]]:
        return [(header, group) for header, group in self.raw["table"]]

    @property
    def user_prompts(self) -> bool:
        """Whether the prompts come from `--prompts SOURCE` (the `prompts` task) instead of the task's own files."""
        return bool(self.raw.get("user_prompts"))

    @property
    def tag_groups(self) -> bool:
        """Whether each tag of the prompt set is a group of its own (`tag_groups: true`: the `prompts` task, whose
        tags come from the user's data), besides the groups the spec lists."""
        return bool(self.raw.get("tag_groups"))

    def layout(self, groups: list[str]) -> list[tuple[str, str]]:
        """(header, group) of the table for runs holding `groups`: the spec's table, after one column per tag
        group (named as the tag) where the groups are data-driven."""
        if not self.tag_groups:
            return self.table
        listed = set(self.groups)
        tags = [g for g in dict.fromkeys(groups) if g not in listed]
        return [(tag, tag) for tag in tags] + self.table

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.path.read_bytes()).hexdigest()


def _spec_files(tasks_dir: Path | None) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for folder in [bundled_tasks_dir(), *([Path(tasks_dir)] if tasks_dir else [])]:
        if not folder.is_dir():
            raise UsageError(f"tasks directory {folder} does not exist")
        for path in sorted(folder.glob("*.yaml")):
            found[_read(path)["name"]] = path  # a user's --tasks-dir overrides a bundled spec of the same name
    return found


def _read(path: Path) -> dict[str, Any]:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise UsageError(f"task spec {path} cannot be read: {str(exc).splitlines()[0]}") from None
    if not isinstance(raw, dict):
        raise UsageError(f"task spec {path} is not a YAML mapping of keys (name, version, variants, ...)")
    problem = _problem(raw)
    if problem:
        raise UsageError(f"task spec {path}: {problem}")
    return raw


_REQUIRED = ("name", "version", "python", "metric", "variants", "default_variant", "groups", "table")


def _problem(raw: dict[str, Any]) -> str | None:
    """The first thing wrong with a spec's shape, in words (None: usable)."""
    missing = [k for k in _REQUIRED if k not in raw]
    if missing:
        return f"lacks required key(s): {', '.join(missing)} (see docs/extending.md)"
    for key in ("name", "python", "metric"):
        if not isinstance(raw[key], str) or not raw[key]:
            return f"{key} must be a non-empty string"
    if not isinstance(raw["version"], int) or isinstance(raw["version"], bool):
        return "version must be an integer"
    variants = raw["variants"]
    if not isinstance(variants, dict) or not variants:
        return "variants must map each variant name to its source and files"
    for name, variant in variants.items():
        if not isinstance(variant, dict) or not isinstance(variant.get("files"), dict) \
                or not isinstance(variant.get("source"), dict):
            return f"variant {name!r} needs a `source` mapping and a `files` mapping"
    if str(raw["default_variant"]) not in {str(k) for k in variants}:
        return f"default_variant {raw['default_variant']!r} is not one of the variants"
    groups = raw["groups"]
    if not isinstance(groups, dict) or not groups or not all(
            isinstance(v, list) and v and all(isinstance(g, str) for g in v) for v in groups.values()):
        return "groups must map each section to a non-empty list of group names"
    names = {g for section in groups.values() for g in section}
    table = raw["table"]
    if not isinstance(table, list) or not table or not all(
            isinstance(row, list) and len(row) == 2 and all(isinstance(x, str) for x in row) for row in table):
        return "table must be a list of [header, group] pairs"
    unknown = [group for _, group in table if group not in names]
    if unknown:
        return f"table names group {unknown[0]!r}, which groups does not list"
    splits = raw.get("splits")
    if splits is not None and (not isinstance(splits, dict) or not splits):
        return "splits must map each split name to a tag (or null for every prompt)"
    if str(raw.get("default_split", "all")) not in (splits or {"all": None}):
        return f"default_split {raw.get('default_split', 'all')!r} is not one of the splits"
    n_samples = raw.get("n_samples", 1)
    if not isinstance(n_samples, int) or isinstance(n_samples, bool) or n_samples < 1:
        return "n_samples must be a whole number of at least 1"
    for key in ("tag_groups", "user_prompts"):
        if not isinstance(raw.get(key, False), bool):
            return f"{key} must be true or false"
    if raw.get("without_recipe") is not None and (not isinstance(raw["without_recipe"], str) or raw.get("official")):
        return "without_recipe is the label of a task with no `official` recipe: text, and no `official` key"
    for key in ("scorer", "official"):
        if raw.get(key) is not None and not isinstance(raw[key], dict):
            return f"{key} must be a mapping"
    return None


def available_tasks(tasks_dir: Path | None = None) -> list[str]:
    return sorted(_spec_files(tasks_dir))


def load_task(name: str, tasks_dir: Path | None = None) -> TaskSpec:
    files = _spec_files(tasks_dir)
    if name not in files:
        raise UsageError(f"unknown task '{name}'; choose one of: {', '.join(sorted(files))}")
    raw = _read(files[name])
    return TaskSpec(name=raw["name"], version=int(raw["version"]), path=files[name], raw=raw)
