"""`ts-eval sweep`: what each Token-Shuffle window buys — inference FLOPs (sampling one image, and end to end
with the VQ decode), training FLOPs (the paper's Fig. 4), KV-cache memory and latency of the reference
generator across windows, resolutions and batch sizes.

`flops.py` (the formulas and the counter), `latency.py` (timed generation), `runner.py` (rows, JSON),
`tables.py` (Markdown), `plots.py`, `cli.py` (argument parsing only).
"""
