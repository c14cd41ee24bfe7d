"""Name -> "module:Class" tables, imported only when a name is used (lm-evaluation-harness style).

Keeping targets as strings means `import ts_eval` and `ts-eval --help` never import torch backends. Each
entry also says which pip extra installs what it needs, so a core install answers a missing backend with
one line (`torch is not installed; run: pip install 'ts-eval[genai]'`) from here, before anything imports it.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from dataclasses import dataclass, field

from ts_eval.errors import UsageError


@dataclass(frozen=True)
class Requirement:
    """The pip extra that installs `modules` (import names); `then` is a further install step it cannot express."""

    extra: str
    modules: tuple[str, ...]
    then: str = ""

    def check(self) -> None:
        """Raise a one-line UsageError naming the extra when one of the modules cannot be imported."""
        for module in self.modules:
            if not _importable(module):
                then = f" && {self.then}" if self.then else ""
                raise UsageError(f"{module} is not installed; run: pip install 'ts-eval[{self.extra}]'{then}")


@dataclass(frozen=True)
class Plugin:
    target: str  # "module:Class"
    needs: Requirement | None = None  # None: the core install is enough
    # option -> value -> what that choice needs besides (e.g. GenEval's `detector=hf`)
    needs_by_option: dict[str, dict[str, Requirement]] = field(default_factory=dict)

    def check(self, args: dict[str, str] | None = None) -> None:
        if self.needs is not None:
            self.needs.check()
        for option, choices in self.needs_by_option.items():
            chosen = (args or {}).get(option)
            if chosen in choices:
                choices[chosen].check()


T2V_METRICS = "pip install --no-deps t2v-metrics==3.0"  # not on the extra: its pins would pull a CUDA torch

GENERATORS: dict[str, Plugin] = {
    "dummy": Plugin("ts_eval.generators.dummy:DummyGenerator"),
    "folder": Plugin("ts_eval.generators.folder:FolderGenerator"),
    "reference": Plugin("ts_eval.generators.token_shuffle.generator:TokenShuffleGenerator",
                        Requirement("model", ("torch",))),
    "diffusers": Plugin("ts_eval.generators.diffusers_adapter:DiffusersGenerator",
                        Requirement("diffusers", ("diffusers", "torch"))),
    "janus": Plugin("ts_eval.generators.janus:JanusGenerator", Requirement("janus", ("transformers", "torch"))),
    "python": Plugin("ts_eval.generators.python_entry:PythonGenerator"),
}

SCORERS: dict[str, Plugin] = {
    "dummy": Plugin("ts_eval.scorers.dummy:DummyScorer"),
    "vqascore": Plugin("ts_eval.scorers.vqascore:VQAScorer",
                       Requirement("genai", ("torch", "transformers", "sentencepiece", "cv2", "t2v_metrics"),
                                   then=T2V_METRICS)),
    "clipscore": Plugin("ts_eval.scorers.clipscore:CLIPScorer", Requirement("genai", ("torch", "open_clip")),
                        needs_by_option={"variant": {"torchmetrics": Requirement("genai", ("transformers", "torchmetrics"))}}),
    # GenEval's needs follow its detector: `dummy` needs nothing; `mmdet` says itself how to build mmcv.
    "geneval": Plugin("ts_eval.geneval.scorer:GenEvalScorer", needs_by_option={"detector": {
        "hf": Requirement("geneval", ("torch", "transformers", "open_clip")),
        "mmdet": Requirement("geneval", ("torch", "open_clip"))}}),
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


def resolve(kind: str, name: str, table: dict[str, Plugin], args: dict[str, str] | None = None):
    """Import and return the class registered as `name`; unknown names list the valid ones, a missing
    backend names its extra."""
    if name not in table:
        raise UsageError(f"unknown {kind} '{name}'; choose one of: {', '.join(sorted(table))}")
    plugin = table[name]
    plugin.check(args)
    module_name, _, attr = plugin.target.partition(":")
    return getattr(importlib.import_module(module_name), attr)


def generator_class(name: str, args: dict[str, str] | None = None):
    return resolve("model", name, GENERATORS, args)


def scorer_class(name: str, args: dict[str, str] | None = None):
    return resolve("scorer", name, SCORERS, args)


def require(feature: str) -> None:
    """One line naming the extra when a command's backend is missing (see FEATURES)."""
    FEATURES[feature].check()
