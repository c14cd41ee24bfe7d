"""`Results`: one run directory as a Python user sees it - its summary, verdict, table and per-image scores.

Everything is read through the validating reader (`ts_eval.store.reader.read_run`) and rendered by the same
functions as the CLI, so `Results.table()` prints what `ts-eval report` prints.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ts_eval.official import Verdict


@dataclass(frozen=True)
class Results:
    run_dir: Path  # absolute
    summary: dict[str, Any]  # summary.json: groups (mean, n, ci95), metric, selection, verdict, random_weights
    tasks_dir: str | None = field(default=None, repr=False)

    @classmethod
    def load(cls, run_dir: str | Path, *, tasks_dir: str | None = None) -> Results:
        """Results of an existing run directory, validated and summarised (nothing is written)."""
        from ts_eval.store.reader import read_run
        from ts_eval.summary import summarize

        run = read_run(run_dir, tasks_dir=tasks_dir)
        return cls(run.path.resolve(), summarize(run), tasks_dir)

    @property
    def verdict(self) -> Verdict:
        """Official or not, and why: `.official`, `.label`, `.differences`, `.subset`."""
        return Verdict.from_dict(self.summary["verdict"])

    def table(self, fmt: str = "md", *, ci: bool = True, label: str | None = None) -> str:
        """The run's table as `ts-eval run` prints it (md, csv, latex or json), with the verdict label and, where the
        models have random weights, the note that says so."""
        from ts_eval.report.tables import render_summaries
        from ts_eval.tasks import load_task

        spec = load_task(self.summary["task"], self.tasks_dir)
        return render_summaries(spec, [(label or self.summary["model"], self.summary)], fmt, ci=ci)

    def to_pandas(self):
        """One row per image and metric: prompt_id, sample_index, prompt, tags, metric, value, reason, image_path
        (absolute), seed, image_sha256 - the run's samples.jsonl beside its prompts and images."""
        import pandas as pd

        from ts_eval.store.reader import read_run

        run = read_run(self.run_dir, tasks_dir=self.tasks_dir)
        prompts = {p.prompt_id: p for p in run.prompts}
        images = {(r.prompt_id, r.sample_index): r for r in run.images}
        rows = []
        for sample in run.samples:
            image = images.get((sample.prompt_id, sample.sample_index))
            prompt = prompts[sample.prompt_id]
            rows.append(
                {
                    "prompt_id": sample.prompt_id,
                    "sample_index": sample.sample_index,
                    "prompt": prompt.prompt,
                    "tags": list(prompt.tags),
                    "metric": sample.metric,
                    "value": sample.value,
                    "reason": sample.reason,
                    "image_path": str(run.path / image.path) if image else None,
                    "seed": image.seed if image else None,
                    "image_sha256": sample.image_sha256,
                }
            )
        return pd.DataFrame(
            rows,
            columns=[
                "prompt_id",
                "sample_index",
                "prompt",
                "tags",
                "metric",
                "value",
                "reason",
                "image_path",
                "seed",
                "image_sha256",
            ],
        )
