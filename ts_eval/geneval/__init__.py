"""GenEval (Ghosh et al., 2023) in one package: the official rules (`rules`), the detector interface and its
backends (`detectors`, `mmdet_backend`, `hf_backend`, with mmdet 2.x's `preprocess` and `checkpoint` keys),
the CLIP colour classifier (`color`), the scorer (`scorer`), the task's prompts and summary (`task`),
re-judging from detections (`rescore`), the official file layouts (`interop`) and their commands (`cli`)."""
