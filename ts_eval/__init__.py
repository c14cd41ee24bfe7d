"""ts-eval: evaluation harness for autoregressive text-to-image models (Token-Shuffle line of work).

    import ts_eval
    results = ts_eval.evaluate("genai-bench", model=my_function, split="hard")   # -> ts_eval.Results
    values = ts_eval.score(images, prompts, scorer="vqascore")                  # -> list[float]

`import ts_eval` stays light: backends (torch, t2v-metrics, mmdet, ...) and pandas load only when a run needs them.
See docs/python-api.md.
"""

__version__ = "0.1.0"


def score(images, prompts, scorer: str = "vqascore", **options) -> list:
    """One score per (image, prompt) pair for PIL images or paths, without a run directory (see `ts_eval.api.score`)."""
    from ts_eval.api import score as _score

    return _score(images, prompts, scorer, **options)


def run(task: str, **options):
    """Generate, score and summarise one benchmark; the function behind `ts-eval run`, returning the summary dict.

    `options` are the fields of `ts_eval.options.RunOptions` (model, model_args, scorer, limit, out, ...).
    """
    from ts_eval.evaluate import run as _run
    from ts_eval.options import RunOptions

    return _run(RunOptions(task=task, **options))


def __getattr__(name: str):
    # Imported on first use: `import ts_eval` loads nothing heavy.
    if name == "evaluate":
        # `ts_eval.evaluate(task, model=..., scorer=..., **options) -> Results`: the module ts_eval/evaluate.py is
        # callable (it forwards to ts_eval.api.evaluate), since importing it binds this name to it anyway.
        import importlib

        return importlib.import_module("ts_eval.evaluate")
    if name == "Results":
        from ts_eval.results import Results

        return Results
    raise AttributeError(f"module 'ts_eval' has no attribute {name!r}")


__all__ = ["__version__", "evaluate", "score", "run", "Results"]
