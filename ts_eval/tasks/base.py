"""The narrow interface every benchmark's Python half implements (the module a task spec names as `python:`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    import pandas as pd

    from ts_eval.records import Prompt
    from ts_eval.tasks.data import DataFiles
    from ts_eval.tasks.spec import TaskSpec


@runtime_checkable
class TaskModule(Protocol):
    """Prompt loading and the official aggregation of one benchmark family (a module, or any object with these).

    `load_prompts` turns the variant's verified data files into prompts (ids in the benchmark's own words);
    `summarize` gives `{"metric", "groups": {group: {"mean", "n", "ci95"}}, ...}` from the samples, as the
    benchmark's official code aggregates them, with bootstrap CIs over prompts.
    """

    def load_prompts(self, files: DataFiles) -> list[Prompt]: ...

    def summarize(self, spec: TaskSpec, prompts: list[Prompt], samples: pd.DataFrame, *, resamples: int,
                  seed: int) -> dict[str, Any]: ...


@runtime_checkable
class GroupedTaskModule(TaskModule, Protocol):
    """A task module that says which prompts make up each group (the gate pairs prompts group by group).
    Without it a group is the prompts carrying its name as a tag, else every prompt."""

    def group_members(self, prompts: list[Prompt], group: str) -> list[str]: ...


@runtime_checkable
class UserPromptsTaskModule(TaskModule, Protocol):
    """The module of a task whose prompts come from `--prompts SOURCE` (`user_prompts: true` in its spec)."""

    def load_source(self, text: str | None, tag_columns: list[str] | None) -> tuple[DataFiles, list[Prompt]]: ...
