"""Is a number official? One verdict per run, computed here and nowhere else.

A task declares its official recipe in its YAML (`official:`): every setting that changes its numbers, on the
generator side (`n_samples`, `image_format`, `prompt_rewrites`) and the scorer side (a partial copy of the
official scorer's `describe()`: model, weights sha256, dtype, templates, ...). A run is official only when every
setting the recipe names equals the effective one; the first difference names the run in every table.

The prompt selection is a second, separate question: a declared split (GenAI-Bench `hard`) is an official prompt
set of its own, while `--limit` and `--skill` make a *subset*. A table column called `All`/`Overall` means the
whole official prompt set: for a split or a subset it is relabelled.

Recipe leaves compare by equality; `{one_of: [a, b]}` accepts any listed value, and `{sha256_prefix: [p, q]}`
a sha256 that starts with a listed prefix (OpenMMLab names each checkpoint by the first 8 hex digits of its
sha256; GenEval's v2 and v3 detector checkpoints are known only by those).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

_NO_RECIPE = "the task declares no official recipe"


@dataclass(frozen=True)
class Verdict:
    official: bool
    differences: tuple[str, ...]  # each `path=effective (official: value)`, in the recipe's order
    subset: str | None  # `limit=20`, `skill=counting`; None: a whole official prompt set
    split: str | None  # a declared split other than the task's default (e.g. `hard`); None: the whole benchmark
    # What a task with no official recipe calls its runs instead of `unofficial: ...` (the `prompts` task:
    # `custom prompts (no official recipe)`); None for every benchmark.
    without_recipe: str | None = None

    @property
    def first_difference(self) -> str | None:
        return self.differences[0] if self.differences else None

    @property
    def label(self) -> str:
        """What every table prints beside the run: `official`, `unofficial: scorer.model=tiny-random`, ..."""
        if self.official:
            parts = ["official"]
        elif self.without_recipe:
            parts = [self.without_recipe]
        else:
            parts = [f"unofficial: {_short(self.first_difference or _NO_RECIPE)}"]
        if self.subset:
            parts.append(f"subset: {self.subset}")
        return "; ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        out = {
            "official": self.official,
            "label": self.label,
            "differences": list(self.differences),
            "subset": self.subset,
            "split": self.split,
        }
        if self.without_recipe:
            out["without_recipe"] = self.without_recipe
        return out

    @classmethod
    def from_dict(cls, row: dict[str, Any]) -> Verdict:
        return cls(
            bool(row["official"]),
            tuple(row.get("differences") or ()),
            row.get("subset"),
            row.get("split"),
            row.get("without_recipe"),
        )


def effective_settings(settings: dict[str, Any], scorer: dict[str, Any] | None) -> dict[str, Any]:
    """The values a recipe is compared with, from a run's recorded settings and its scorer's description."""
    return {
        "n_samples": settings.get("n_samples"),
        "image_format": settings.get("image_format", "png"),  # runs before --image-format saved PNG
        "prompt_rewrites": bool(settings.get("prompt_rewrites")),
        "scorer": scorer,
    }


def verdict(
    recipe: dict[str, Any] | None,
    settings: dict[str, Any],
    scorer: dict[str, Any] | None,
    *,
    default_split: str,
    without_recipe: str | None = None,
) -> Verdict:
    """Compare a run's effective settings with its task's recipe (`TaskSpec.recipe`); a task without one may name
    its runs (`TaskSpec.without_recipe`)."""
    task = settings.get("task") or {}
    subset = ", ".join(f"{key}={task[key]}" for key in ("skill", "limit") if task.get(key) is not None) or None
    split = task.get("split") if task.get("split") not in (None, default_split) else None
    if not recipe:
        return Verdict(False, (without_recipe or _NO_RECIPE,), subset, split, without_recipe)
    differences = tuple(_differences(recipe, effective_settings(settings, scorer), ""))
    return Verdict(not differences, differences, subset, split)


_MATCHERS = ("one_of", "sha256_prefix")


def _differences(recipe: Any, effective: Any, path: str):
    if isinstance(recipe, dict) and not set(_MATCHERS) & set(recipe):
        for key, wanted in recipe.items():
            here = f"{path}.{key}" if path else str(key)
            value = effective.get(key, _MISSING) if isinstance(effective, dict) else _MISSING
            yield from _differences(wanted, value, here)
        return
    if isinstance(recipe, dict) and "sha256_prefix" in recipe:
        allowed = [f"{prefix}..." for prefix in recipe["sha256_prefix"]]
        matches = isinstance(effective, str) and effective.startswith(tuple(recipe["sha256_prefix"]))
    else:
        allowed = recipe["one_of"] if isinstance(recipe, dict) else [recipe]
        matches = effective in allowed
    if not matches:
        shown = "missing" if effective is _MISSING else _text(effective)
        yield f"{path}={shown} (official: {' or '.join(_text(a) for a in allowed)})"


class _Missing:
    def __repr__(self) -> str:
        return "missing"


_MISSING = _Missing()


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, default=str)


def _short(difference: str) -> str:
    """`scorer.weights_sha256=0123456789abcdef... (official: ...)` -> the setting and its value, short."""
    setting = difference.split(" (official:", 1)[0]
    return setting if len(setting) <= 60 else setting[:57] + "..."


# -- meaningless numbers ---------------------------------------------------------------------------
# A run can be unofficial and still measure something; a run whose generator or scorer has random weights, or
# is a stand-in that looks at nothing, measures nothing. The descriptions in the manifest say which:
# - `random_weights: true` anywhere in a description (declared by tiny random models, e.g. VQAScore's tiny-random);
# - `init_seed` set (weights drawn from a seeded random init, as the reference model without a checkpoint);
# - `pretrained`, `checkpoint(_sha256)`, `clip_pretrained` or `weights` set to `random` (GenEval's speed-test models);
# - a part named `dummy` (the stand-in generator, scorer and GenEval detector).
_RANDOM_WEIGHT_KEYS = ("pretrained", "checkpoint", "checkpoint_sha256", "clip_pretrained", "weights")


def random_weights(generator: dict[str, Any] | None, scorer: dict[str, Any] | None) -> list[str]:
    """`["generator reference", "scorer vqascore"]`: the parts of a run whose weights are random or which are
    stand-ins; empty when both are real models."""
    found = []
    for role, description in (("generator", generator), ("scorer", scorer)):
        if isinstance(description, dict) and _is_random(description):
            found.append(f"{role} {description.get('name', '?')}")
    return found


def _is_random(node: Any) -> bool:
    if isinstance(node, list):
        return any(_is_random(item) for item in node)
    if not isinstance(node, dict):
        return False
    if node.get("random_weights") is True or node.get("name") == "dummy" or node.get("init_seed") is not None:
        return True
    if any(node.get(key) == "random" for key in _RANDOM_WEIGHT_KEYS):
        return True
    return any(_is_random(value) for value in node.values())
