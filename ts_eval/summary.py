"""summary.json from a validated run: the task's official aggregation, its verdict, and what was selected.

`summarize` computes and writes nothing, so reports, gates and the leaderboard recompute a run's summary
from its samples without touching it; `write_summary` is for the run's lock holder.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from ts_eval.official import Verdict, random_weights, verdict
from ts_eval.options import DEFAULT_RESAMPLES
from ts_eval.store import SUMMARY, write_json
from ts_eval.store.reader import Run


def summary_settings(manifest: dict[str, Any]) -> dict[str, int]:
    """Bootstrap settings recorded with the run (runs made before they were recorded: the defaults)."""
    recorded = manifest.get("summary_settings")
    recorded = recorded if isinstance(recorded, dict) else {}
    return {"resamples": int(recorded.get("resamples", DEFAULT_RESAMPLES)), "seed": int(recorded.get("seed", 0))}


def run_verdict(run: Run) -> Verdict:
    return verdict(
        run.spec.recipe,
        run.settings,
        run.scorer,
        default_split=run.spec.default_split,
        without_recipe=run.spec.without_recipe,
    )


def summarize(run: Run, *, resamples: int | None = None) -> dict[str, Any]:
    """The summary `ts-eval report` prints: per official group mean, n and 95% CI, plus the run's verdict.

    `resamples=None` uses the run's recorded setting; 0 gives point estimates (CIs collapse to the mean).
    """
    settings = summary_settings(run.manifest)
    resamples = settings["resamples"] if resamples is None else resamples
    spec = run.spec
    if run.metric != spec.metric:  # e.g. `clipscore` on GenAI-Bench, chosen with --scorer
        spec = replace(spec, metric=run.metric, raw={**spec.raw, "metric": run.metric})
    body = spec.module.summarize(spec, run.prompts, run.samples_frame(), resamples=resamples, seed=settings["seed"])
    task = run.settings["task"]
    return {
        "task": spec.name,
        "split": task["split"],
        "variant": task["variant"],
        "model": run.settings["generator"]["name"],
        **body,
        "selection": {
            "skill": task.get("skill"),
            "limit": task.get("limit"),
            "n_prompts": len(run.prompts),
            "n_images": len(run.prompts) * run.n_samples,
        },
        "verdict": run_verdict(run).to_dict(),
        "random_weights": random_weights(run.settings.get("generator"), run.scorer),
        "resamples": resamples,
    }


def write_summary(run: Run, summary: dict[str, Any]) -> None:
    """summary.json, and the verdict and resample count it was made with in the manifest."""
    write_json(run.path / SUMMARY, summary)
    run.dir.update_manifest(
        lambda m: m.update(
            verdict=summary["verdict"], summary_settings={**summary_settings(m), "resamples": summary["resamples"]}
        )
    )
