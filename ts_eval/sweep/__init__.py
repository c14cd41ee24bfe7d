"""`ts-eval sweep`: what each Token-Shuffle window buys — FLOPs (analytic and counted), KV-cache memory and
latency of the reference generator across windows, resolutions and batch sizes, with the paper's Fig. 4 plots.

`flops.py` (the formula and the counter), `latency.py` (timed generation), `runner.py` (rows, JSON, Markdown),
`plots.py`, `cli.py` (argument parsing only).
"""
