"""GenEval's Mask2Former checkpoints in either mmdetection layout, as mmdetection 3.x state dicts.

The v2.0 checkpoint (`..._20220504_001756-743b7d99.pth`, what GenEval's download_models.sh fetches at the
pinned revision) names the transformer layers the mmcv 1.x way (`attentions.0`, `ffns.0`); mmdetection 3.x
names them by role. The renames below are the whole difference (checked key by key between an mmdet 2.28
and an mmdet 3.3 Mask2Former Swin-S, see docs/geneval.md); tensors are unchanged.

- pixel decoder encoder layers: `attentions.0` -> `self_attn` (multi-scale deformable attention),
  `ffns.0` -> `ffn`;
- transformer decoder layers, whose 2.x order is (cross_attn, norm, self_attn, norm, ffn, norm):
  `attentions.0` -> `cross_attn`, `attentions.1` -> `self_attn`, `ffns.0` -> `ffn`.
"""

from __future__ import annotations

import re
from typing import Any

_RENAMES = [
    (re.compile(r"^(panoptic_head\.pixel_decoder\.encoder\.layers\.\d+\.)attentions\.0\."), r"\1self_attn."),
    (re.compile(r"^(panoptic_head\.pixel_decoder\.encoder\.layers\.\d+\.)ffns\.0\."), r"\1ffn."),
    (re.compile(r"^(panoptic_head\.transformer_decoder\.layers\.\d+\.)attentions\.0\."), r"\1cross_attn."),
    (re.compile(r"^(panoptic_head\.transformer_decoder\.layers\.\d+\.)attentions\.1\."), r"\1self_attn."),
    (re.compile(r"^(panoptic_head\.transformer_decoder\.layers\.\d+\.)ffns\.0\."), r"\1ffn."),
]


def mmdet2_to_mmdet3(key: str) -> str:
    for pattern, replacement in _RENAMES:
        key, n = pattern.subn(replacement, key)
        if n:
            break
    return key


def mmdet3_state_dict(state: dict[str, Any], model_state: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """`state` with mmdet 3.x names, and the layout it came in: 'mmdet3' (as is) or 'mmdet2' (renamed).

    A state dict that fits neither comes back unchanged as 'unknown'; the caller reports what is missing.
    """
    wanted = set(model_state)
    if wanted <= set(state):
        return state, "mmdet3"
    renamed = {mmdet2_to_mmdet3(key): value for key, value in state.items()}
    if len(renamed) == len(state) and wanted <= set(renamed):
        return renamed, "mmdet2"
    return state, "unknown"
