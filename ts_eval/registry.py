"""Name -> "module:Class" tables, imported only when a name is used (lm-evaluation-harness style).

Keeping targets as strings means `import ts_eval` and `ts-eval --help` never import torch backends. Each
entry also says which pip extra installs what it needs, so a core install answers a missing backend with
one line (`torch is not installed; run: pip install 'ts-eval[genai]'`) from here, before anything imports it,
and where its options dataclass lives (a module that imports without the backend, so `ts-eval models` lists
every option on a core install).

Other packages add models, scorers and tasks through Python entry points, read only when a name is not
built in or a listing is asked for:

    [project.entry-points."ts_eval.models"]
    my-model = "my_package.generator:MyGenerator"
    [project.entry-points."ts_eval.scorers"]
    my-scorer = "my_package.scorer:MyScorer"
    [project.entry-points."ts_eval.tasks"]
    my-tasks = "my_package.tasks"            # a package folder of task YAML files (or module:ATTR naming a
                                             # folder or one .yaml file)

A plugin class takes the constructor of `Generator`/`Scorer` and names its options dataclass as `Options`.
A built-in name cannot be taken by a plugin: official numbers always come from ts-eval's own code.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import logging
import sys
from dataclasses import dataclass, field
from typing import Any

from ts_eval.errors import UsageError

log = logging.getLogger(__name__)

GROUPS = {"model": "ts_eval.models", "scorer": "ts_eval.scorers", "task": "ts_eval.tasks"}


@dataclass(frozen=True)
class Requirement:
    """The pip extra that installs `modules` (import names); `then` is a further install step it cannot express."""

    extra: str
    modules: tuple[str, ...]
    then: str = ""

    @property
    def install(self) -> str:
        then = f" && {self.then}" if self.then else ""
        return f"pip install 'ts-eval[{self.extra}]'{then}"

    def missing(self) -> str | None:
        """The one line naming the extra when one of the modules cannot be imported, else None."""
        for module in self.modules:
            if not _importable(module):
                return f"{module} is not installed; run: {self.install}"
        return None

    def check(self) -> None:
        """Raise the one-line UsageError naming the extra when one of the modules cannot be imported."""
        problem = self.missing()
        if problem:
            raise UsageError(problem)


@dataclass(frozen=True)
class Plugin:
    target: str  # "module:Class"
    needs: Requirement | None = None  # None: the core install is enough
    # option -> value -> what that choice needs besides (e.g. GenEval's `detector=hf`)
    needs_by_option: dict[str, dict[str, Requirement]] = field(default_factory=dict)
    # "module:Class" of the options dataclass, importable without the backend; None: the plugin class's `Options`
    options: str | None = None
    origin: str = "ts-eval"  # the distribution that provides it

    def check(self, args: dict[str, str] | None = None) -> None:
        if self.needs is not None:
            self.needs.check()
        for option, choices in self.needs_by_option.items():
            chosen = (args or {}).get(option)
            if chosen in choices:
                choices[chosen].check()

    def load(self) -> Any:
        """The plugin class (imports its module)."""
        return _import_target(self.target)

    def options_class(self) -> type | None:
        """The plugin's options dataclass, imported without its backend where the plugin says where it is."""
        if self.options is not None:
            return _import_target(self.options)
        return getattr(self.load(), "Options", None)


T2V_METRICS = "pip install --no-deps t2v-metrics==3.0"  # not on the extra: its pins would pull a CUDA torch

GENERATORS: dict[str, Plugin] = {
    "dummy": Plugin("ts_eval.generators.dummy:DummyGenerator", options="ts_eval.generators.dummy:DummyOptions"),
    "folder": Plugin("ts_eval.generators.folder:FolderGenerator", options="ts_eval.generators.folder:FolderOptions"),
    "reference": Plugin(
        "ts_eval.generators.token_shuffle.generator:TokenShuffleGenerator",
        Requirement("model", ("torch",)),
        options="ts_eval.generators.token_shuffle.options:ReferenceOptions",
    ),
    "diffusers": Plugin(
        "ts_eval.generators.diffusers_adapter:DiffusersGenerator",
        Requirement("diffusers", ("diffusers", "torch")),
        options="ts_eval.generators.diffusers_adapter:DiffusersOptions",
    ),
    "janus": Plugin(
        "ts_eval.generators.janus:JanusGenerator",
        Requirement("janus", ("transformers", "torch")),
        options="ts_eval.generators.janus:JanusOptions",
    ),
    "python": Plugin(
        "ts_eval.generators.python_entry:PythonGenerator", options="ts_eval.generators.python_entry:PythonOptions"
    ),
}

SCORERS: dict[str, Plugin] = {
    "dummy": Plugin("ts_eval.scorers.dummy:DummyScorer", options="ts_eval.scorers.dummy:DummyScorerOptions"),
    "vqascore": Plugin(
        "ts_eval.scorers.vqascore:VQAScorer",
        Requirement("genai", ("torch", "transformers", "sentencepiece", "cv2", "t2v_metrics"), then=T2V_METRICS),
        options="ts_eval.scorers.vqascore:VQAScoreOptions",
    ),
    "clipscore": Plugin(
        "ts_eval.scorers.clipscore:CLIPScorer",
        Requirement("genai", ("torch", "open_clip")),
        needs_by_option={"variant": {"torchmetrics": Requirement("genai", ("transformers", "torchmetrics"))}},
        options="ts_eval.scorers.clipscore:CLIPScoreOptions",
    ),
    # GenEval's needs follow its detector: `dummy` needs nothing; `mmdet` says itself how to build mmcv.
    "geneval": Plugin(
        "ts_eval.geneval.scorer:GenEvalScorer",
        needs_by_option={
            "detector": {
                "hf": Requirement("geneval", ("torch", "transformers", "open_clip")),
                "mmdet": Requirement("geneval", ("torch", "open_clip")),
            }
        },
        options="ts_eval.geneval.scorer:GenEvalOptions",
    ),
}

# Commands (not plugins) that need an extra.
FEATURES: dict[str, Requirement] = {
    "sweep": Requirement("model", ("torch",)),
}


def _importable(module: str) -> bool:
    if module in sys.modules:  # a None entry is how Python (and the tests) mark a module as absent
        return sys.modules[module] is not None
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _import_target(target: str) -> Any:
    module_name, _, attr = target.partition(":")
    module = importlib.import_module(module_name)
    return getattr(module, attr) if attr else module


def entry_points(kind: str) -> list[importlib.metadata.EntryPoint]:
    """The installed entry points of one kind ("model", "scorer", "task"), in a stable order."""
    found = importlib.metadata.entry_points(group=GROUPS[kind])
    return sorted(found, key=lambda ep: (ep.name, ep.value))


def _origin(ep: importlib.metadata.EntryPoint) -> str:
    dist = getattr(ep, "dist", None)
    return f"{dist.name} {dist.version}" if dist is not None else ep.value


def plugins(kind: str) -> dict[str, Plugin]:
    """Every plugin of a kind ("model" or "scorer"): the built-in table, then those other packages register."""
    table = dict(GENERATORS if kind == "model" else SCORERS)
    for ep in entry_points(kind):
        if ep.name in table:
            log.warning(
                "%s '%s' from %s is ignored: the name is taken by %s", kind, ep.name, _origin(ep), table[ep.name].origin
            )
            continue
        table[ep.name] = Plugin(ep.value, origin=_origin(ep))
    return table


def find(kind: str, name: str) -> Plugin:
    """The plugin registered as `name` (built in, else from an entry point); unknown names list the valid ones."""
    table = GENERATORS if kind == "model" else SCORERS
    if name in table:
        return table[name]
    table = plugins(kind)  # entry points are read only for a name that is not built in
    if name not in table:
        raise UsageError(f"unknown {kind} '{name}'; choose one of: {', '.join(sorted(table))}")
    return table[name]


def resolve(kind: str, name: str, args: dict[str, str] | None = None) -> Any:
    """Import and return the class registered as `name`; a missing backend names its extra."""
    plugin = find(kind, name)
    plugin.check(args)
    if plugin.origin == "ts-eval":
        return plugin.load()
    try:
        return plugin.load()
    except Exception as exc:  # another package's code may fail in any way: one line naming it
        detail = f"{type(exc).__name__}: {exc}".splitlines()[0]
        raise UsageError(
            f"{kind} '{name}' ({plugin.target}, from {plugin.origin}) cannot be imported: {detail}"
        ) from None


def generator_class(name: str, args: dict[str, str] | None = None) -> type:
    """A class implementing `ts_eval.generators.base.Generator` (the registry sits below the plugins it names)."""
    return resolve("model", name, args)


def scorer_class(name: str, args: dict[str, str] | None = None) -> type:
    """A class implementing `ts_eval.scorers.base.Scorer`."""
    return resolve("scorer", name, args)


def require(feature: str) -> None:
    """One line naming the extra when a command's backend is missing (see FEATURES)."""
    FEATURES[feature].check()
