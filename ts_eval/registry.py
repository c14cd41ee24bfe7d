"""Name -> "module:Class" tables, imported only when a name is used (lm-evaluation-harness style).

Keeping targets as strings means `import ts_eval` and `ts-eval --help` never import torch backends.
"""

from __future__ import annotations

import importlib

from ts_eval.errors import UsageError

GENERATORS: dict[str, str] = {
    "dummy": "ts_eval.generators.dummy:DummyGenerator",
    "folder": "ts_eval.generators.folder:FolderGenerator",
    "reference": "ts_eval.generators.token_shuffle.generator:TokenShuffleGenerator",
    "diffusers": "ts_eval.generators.diffusers_adapter:DiffusersGenerator",
    "janus": "ts_eval.generators.janus:JanusGenerator",
    "python": "ts_eval.generators.python_entry:PythonGenerator",
}

SCORERS: dict[str, str] = {
    "dummy": "ts_eval.scorers.dummy:DummyScorer",
    "vqascore": "ts_eval.scorers.vqascore:VQAScorer",
    "clipscore": "ts_eval.scorers.clipscore:CLIPScorer",
    "geneval": "ts_eval.scorers.geneval_scorer:GenEvalScorer",
}


def resolve(kind: str, name: str, table: dict[str, str]):
    """Import and return the class registered as `name`; unknown names list the valid ones."""
    if name not in table:
        raise UsageError(f"unknown {kind} '{name}'; choose one of: {', '.join(sorted(table))}")
    module_name, _, attr = table[name].partition(":")
    return getattr(importlib.import_module(module_name), attr)


def generator_class(name: str):
    return resolve("model", name, GENERATORS)


def scorer_class(name: str):
    return resolve("scorer", name, SCORERS)
