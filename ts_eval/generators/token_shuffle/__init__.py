"""The reference Token-Shuffle model (arXiv 2504.17789): a Llama-style decoder that merges each s×s window of
VQ image tokens into one Transformer position, and predicts the s² tokens of a window in one step.

Read top to bottom: `configs.py` (named model sizes), `shuffle.py` (window order and channel merge),
`model.py` (the Transformer), `cfg_schedule.py`, `sampling.py` (prefill / decode / generate), `vq.py`
(image decoder), `tokenizer.py`, `checkpoint.py`, and `generator.py` (the harness adapter).
"""
