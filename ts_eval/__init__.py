"""ts-eval: evaluation harness for autoregressive text-to-image models (Token-Shuffle line of work).

    import ts_eval
    results = ts_eval.evaluate("genai-bench", model=my_function, split="hard")   # -> ts_eval.Results
    values = ts_eval.score(images, prompts, scorer="vqascore")                  # -> list[float]
    summary = ts_eval.run("genai-bench", model="reference", split="hard")      # -> the summary dict

`import ts_eval` stays light: backends (torch, t2v-metrics, mmdet, ...) and pandas load only when a run needs them.
Every name here is `ts_eval.api`'s, loaded on first use. See docs/python-api.md.
"""

from typing import TYPE_CHECKING

__version__ = "0.1.0"
__all__ = ["Results", "__version__", "evaluate", "run", "score"]

if TYPE_CHECKING:  # the names type checkers see; at run time __getattr__ loads them on first use
    from ts_eval.api import Results, evaluate, run, score


def __getattr__(name: str):
    if name in ("evaluate", "score", "run", "Results"):
        from ts_eval import api  # the package's one import from above: its facade

        return getattr(api, name)
    raise AttributeError(f"module 'ts_eval' has no attribute {name!r}")
