"""Benchmarks: declarative specs (`tasks/*.yaml`) plus one small module per benchmark family."""

from ts_eval.tasks.spec import TaskSpec, available_tasks, load_task

__all__ = ["TaskSpec", "available_tasks", "load_task"]
