"""`ts-eval view`: one offline HTML page to look at runs - scores per group, every image with its score and
verdict, GenEval's boxes, two runs side by side.

    from ts_eval.report.view import load_view_run, write_view
    write_view([load_view_run("results/my-run")], "results/my-run/view.html")
"""

from __future__ import annotations

from typing import TYPE_CHECKING

__all__ = ["ViewRun", "load_view_run", "render_view", "write_view"]

if TYPE_CHECKING:  # the names type checkers see; at run time __getattr__ loads them on first use
    from ts_eval.report.view.page import render_view, write_view
    from ts_eval.report.view.run import ViewRun, load_view_run


def __getattr__(name: str) -> object:  # imported on first use, so `ts-eval --help` does not load PIL or jinja2
    if name in ("ViewRun", "load_view_run"):
        from ts_eval.report.view import run

        return getattr(run, name)
    if name in ("render_view", "write_view"):
        from ts_eval.report.view import page

        return getattr(page, name)
    raise AttributeError(name)
