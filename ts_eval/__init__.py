"""ts-eval: evaluation harness for autoregressive text-to-image models (Token-Shuffle line of work).

`import ts_eval` stays light: backends (torch, t2v-metrics, mmdet, ...) load only when a run needs them.
"""

__version__ = "0.1.0"


def run(task: str, **options):
    """Generate, score and summarise one benchmark; the function behind `ts-eval run`.

    `options` are the fields of `ts_eval.options.RunOptions` (model, model_args, scorer, limit, out, ...).
    """
    from ts_eval.evaluate import run as _run
    from ts_eval.options import RunOptions

    return _run(RunOptions(task=task, **options))


__all__ = ["__version__", "run"]
