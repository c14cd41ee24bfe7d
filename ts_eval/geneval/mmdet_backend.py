"""The official GenEval detector: mmdetection's Mask2Former Swin-S (COCO instance segmentation).

GenEval ran it on mmdetection 2.x with mmcv-full 1.7; ts-eval runs the same network in mmdetection 3.3
(config `mask2former_swin-s-p4-w7-224_8xb2-lsj-50e_coco`, GenEval's 2.x name was `..._lsj_8x2_50e_coco`).
What the two versions do differently before the network is done here as 2.x does it (preprocess.py),
and, as in the official script, one image per forward. Both published checkpoints load: the v2.0 file
GenEval's download_models.sh fetches at the pinned revision (`..._20220504_001756-743b7d99.pth`, mmdet 2.x
key names, renamed on load; downloaded by default) and the v3.0 file it fetched before July 2024
(`...-c9d0c4f2.pth`).
"""

from __future__ import annotations

import hashlib
import logging
import os
import warnings
from pathlib import Path
from typing import Any

from PIL import Image

from ts_eval.cache import default_cache_dir
from ts_eval.errors import UsageError
from ts_eval.geneval import preprocess
from ts_eval.geneval.checkpoint import mmdet3_state_dict
from ts_eval.geneval.detectors import Instances
from ts_eval.weights import HashCache

log = logging.getLogger(__name__)

OFFICIAL_CONFIG = "mask2former_swin-s-p4-w7-224_8xb2-lsj-50e_coco"
# The file GenEval's download_models.sh fetches at the pinned revision (mmdet 2.x key names), and the v3.0
# conversion it fetched from December 2023 to July 2024. OpenMMLab names each file by the first 8 hex
# digits of its sha256; torch.hub checks that prefix on download.
OFFICIAL_CHECKPOINT_URL = (
    "https://download.openmmlab.com/mmdetection/v2.0/mask2former/"
    "mask2former_swin-s-p4-w7-224_lsj_8x2_50e_coco/"
    "mask2former_swin-s-p4-w7-224_lsj_8x2_50e_coco_20220504_001756-743b7d99.pth"
)
V3_CHECKPOINT_URL = (
    "https://download.openmmlab.com/mmdetection/v3.0/mask2former/"
    "mask2former_swin-s-p4-w7-224_8xb2-lsj-50e_coco/"
    "mask2former_swin-s-p4-w7-224_8xb2-lsj-50e_coco_20220504_001756-c9d0c4f2.pth"
)
RANDOM = "random"  # checkpoint value for random weights: speed tests only, the scores mean nothing


def _import_mmdet():
    try:
        import mmdet
        from mmdet.apis import init_detector
        from mmengine.config import Config
    except (ImportError, AssertionError) as exc:  # mmdet asserts its mmcv version range on import
        reason = f"{type(exc).__name__}: {str(exc).splitlines()[0][:120]}" if str(exc) else type(exc).__name__
        raise UsageError(
            f"the mmdet detector needs mmdetection 3.3 with a compiled mmcv 2.1 ({reason}); install "
            "them as the README's GenEval section says, or use --detector hf"
        ) from None
    return mmdet, init_detector, Config


def resolve_config(config: str):
    """An mmdetection config: '' (the official one), a config name shipped with mmdetection, or a file."""
    mmdet, _, Config = _import_mmdet()
    name = config or OFFICIAL_CONFIG
    if name.endswith(".py") or os.sep in name:
        path = Path(name)
    else:
        assert mmdet.__file__ is not None  # a regular package, not a namespace one
        path = Path(mmdet.__file__).parent / ".mim" / "configs" / "mask2former" / f"{name}.py"
    if not path.is_file():
        raise UsageError(
            f"mmdet config {name!r} not found (looked at {path}); pass a config file path "
            f"or a Mask2Former config name such as {OFFICIAL_CONFIG}"
        )
    cfg = Config.fromfile(str(path))
    # The Swin backbone's `Pretrained` init points at a URL; the detector checkpoint replaces it anyway.
    cfg.model.backbone.init_cfg = None
    return cfg, path


def official_checkpoint(progress: bool = True) -> Path:
    """The official checkpoint in the ts-eval cache (either file, when one is there), else the pinned
    revision's file, downloaded once and checked against the sha256 prefix in its name."""
    folder = default_cache_dir() / "weights"
    for url in (OFFICIAL_CHECKPOINT_URL, V3_CHECKPOINT_URL):
        if (folder / Path(url).name).is_file():
            return folder / Path(url).name
    target = folder / Path(OFFICIAL_CHECKPOINT_URL).name
    import torch.hub

    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".partial")
    log.info("downloading the GenEval Mask2Former checkpoint to %s", target)
    try:
        prefix = Path(OFFICIAL_CHECKPOINT_URL).stem.rsplit("-", 1)[1]
        torch.hub.download_url_to_file(OFFICIAL_CHECKPOINT_URL, str(partial), hash_prefix=prefix, progress=progress)
    except Exception as exc:  # offline, proxy, truncated file, checksum: the user's next step is the same
        partial.unlink(missing_ok=True)
        raise UsageError(
            f"cannot download the GenEval detector checkpoint ({type(exc).__name__}); download "
            f"{OFFICIAL_CHECKPOINT_URL} (or {Path(V3_CHECKPOINT_URL).name}) elsewhere and pass "
            "--scorer-arg checkpoint=PATH"
        ) from None
    os.replace(partial, target)
    return target


class MMDetDetector:
    name = "mmdet"

    def __init__(self, config: str = "", checkpoint: str = "", device: str = "auto", max_per_image: int = 100):
        from ts_eval.devices import torch_device

        _, init_detector, _ = _import_mmdet()
        self.cfg, self.config_path = resolve_config(config)
        self.cfg.model.test_cfg.max_per_image = max_per_image
        self.scale = resize_scale(self.cfg)
        self.device = torch_device(device)
        self.checkpoint = self._checkpoint_path(config, checkpoint)
        with warnings.catch_warnings():  # "checkpoint is None, use COCO classes": weights are loaded below
            warnings.simplefilter("ignore", UserWarning)
            self.model = init_detector(self.cfg, checkpoint=None, device=str(self.device))
        self.model.eval()
        self.checkpoint_layout = None
        self.checkpoint_sha256 = None
        if self.checkpoint is not None:
            self.checkpoint_layout = self._load_weights(self.checkpoint)
            self.checkpoint_sha256 = HashCache().sha256(self.checkpoint)  # hashed once per (path, size, mtime)

    @staticmethod
    def _checkpoint_path(config: str, checkpoint: str) -> Path | None:
        if checkpoint == RANDOM:
            log.warning("GenEval detector with random weights; its scores mean nothing")
            return None
        if checkpoint:
            path = Path(checkpoint)
            if not path.is_file():
                raise UsageError(f"--scorer-arg checkpoint={checkpoint}: no such file")
            return path
        if config not in ("", OFFICIAL_CONFIG):
            raise UsageError(f"mmdet config {config!r} has no known checkpoint; pass --scorer-arg checkpoint=PATH")
        return official_checkpoint()

    def _load_weights(self, path: Path) -> str:
        """Load a checkpoint with mmdet 3.x or 2.x key names; returns which ('mmdet3' or 'mmdet2')."""
        import torch
        from mmengine.runner.checkpoint import load_state_dict

        try:
            # Not weights-only: mmdetection checkpoints carry metadata objects; the file is either the
            # checksum-verified official one or one the user named.
            state = torch.load(path, map_location="cpu", weights_only=False)
        except Exception as exc:
            raise UsageError(f"{path}: not a readable PyTorch checkpoint ({type(exc).__name__})") from None
        state = state.get("state_dict", state) if isinstance(state, dict) else state
        state, layout = mmdet3_state_dict(state, self.model.state_dict())
        missing = [k for k in self.model.state_dict() if k not in state]
        if missing:
            raise UsageError(
                f"{path} does not fit mmdet config {self.config_path.name}: {len(missing)} weights "
                f"missing (first: {missing[0]}); pass the checkpoint made for this config"
            )
        load_state_dict(self.model, state, strict=False)
        return layout

    def describe(self) -> dict[str, Any]:
        config_sha = hashlib.sha256(self.cfg.pretty_text.encode()).hexdigest()
        return {
            "name": self.name,
            "config": self.config_path.stem,
            "config_sha256": config_sha,
            "checkpoint_sha256": self.checkpoint_sha256 or RANDOM,
            "checkpoint_layout": self.checkpoint_layout,
            "max_per_image": self.cfg.model.test_cfg.max_per_image,
            "precision": "fp32",
            "preprocess": preprocess.describe(self.scale),
        }

    def detect(self, images: list[Image.Image], paths: list[str]) -> list[Instances]:
        """One forward per image, as the official script calls `inference_detector(model, path)`; a batch
        would pad its images to a common size, which changes the numbers of the smaller ones."""
        return [self._detect_one(path) for path in paths]

    def _detect_one(self, path: str) -> Instances:
        import torch
        from mmdet.structures import DetDataSample

        ready = preprocess.prepare(Path(path).read_bytes(), self.scale, name=path)
        inputs = torch.from_numpy(ready.pixels)[None].to(self.device)
        with torch.no_grad():
            # straight to the network: the 3.x data preprocessor would normalise and pad a second time
            # init_detector is annotated nn.Module; what it returns is an mmdet BaseDetector, which has predict()
            result = self.model.predict(  # pyright: ignore[reportCallIssue]
                inputs, [DetDataSample(metainfo=ready.metainfo())], rescale=True
            )[0]
        pred = result.pred_instances
        return Instances(
            boxes=pred.bboxes.float().cpu().numpy(),
            scores=pred.scores.float().cpu().numpy(),
            labels=pred.labels.cpu().numpy().astype("int64"),
            masks=pred.masks.cpu(),
        )


def resize_scale(cfg) -> tuple[int, int]:
    """The (long, short) test scale of the config's test pipeline (the official one: (1333, 800))."""
    pipeline = cfg.get("test_pipeline") or cfg.test_dataloader.dataset.pipeline
    for step in pipeline:
        if step["type"] == "Resize":
            if not step.get("keep_ratio", False):
                raise UsageError("the mmdet config's test Resize must keep the aspect ratio, as GenEval's does")
            long, short = (int(v) for v in step["scale"])
            return long, short
    raise UsageError("the mmdet config's test pipeline has no Resize step; GenEval's resizes to (1333, 800)")
