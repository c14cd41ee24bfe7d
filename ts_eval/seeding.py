"""Per-image seeds from (task, prompt_id, sample_index, run seed) only.

Nothing about the machine (rank, world size, batch) enters, so images are the same on 1 or 64 GPUs.
"""

import hashlib


def image_seed(task: str, prompt_id: str, sample_index: int, seed: int) -> int:
    key = f"{task}\x1f{prompt_id}\x1f{sample_index}\x1f{seed}".encode()
    return int.from_bytes(hashlib.sha256(key).digest()[:8], "big") & (2**63 - 1)
