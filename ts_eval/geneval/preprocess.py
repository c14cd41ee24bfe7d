"""The official GenEval detector's test-time preprocessing, as mmdetection 2.x + mmcv-full 1.7 run it.

GenEval's evaluate_images.py calls mmdet 2.x's `inference_detector(model, path)` on one image at a time, and
the Mask2Former config's test pipeline does, in this order (mmdet 2.28 / mmcv 1.7.1):

1. LoadImageFromFile: `cv2.imdecode(bytes, IMREAD_COLOR)`, BGR uint8 (EXIF orientation applied by OpenCV);
2. Resize, keep ratio, to scale (1333, 800): factor = min(1333 / long side, 800 / short side), new size
   `int(side * factor + 0.5)`, `cv2.resize(..., INTER_LINEAR)` on the uint8 image (so the result is rounded
   to uint8);
3. Pad to a multiple of 32 at the bottom/right with (128, 128, 128), still uint8;
4. Normalize: float32, BGR -> RGB, subtract mean, multiply by 1 / std with OpenCV, over the padded image too.

mmdetection 3.x does it differently (its LoadImageFromFile(to_float32=True) resizes the float32 image, and
DetDataPreprocessor normalises first and pads with 0 afterwards, and a batch pads to its largest image), so
ts-eval runs these steps itself and hands the finished tensor to the 3.x model.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ts_eval.errors import UsageError

# mask2former_r50_lsj_8x2_50e_coco.py (mmdet 2.x), which the Swin-S config inherits
MEAN = (123.675, 116.28, 103.53)  # RGB
STD = (58.395, 57.12, 57.375)
PAD_VALUE = (128, 128, 128)
SIZE_DIVISOR = 32
TEST_SCALE = (1333, 800)


@dataclass(frozen=True)
class DetectorInput:
    """One image ready for the detector, with the shapes mmdetection's image metas carry."""

    pixels: np.ndarray  # (3, pad_h, pad_w) float32, normalised RGB
    ori_shape: tuple[int, int]  # (h, w) of the image file
    img_shape: tuple[int, int]  # (h, w) after the resize
    pad_shape: tuple[int, int]  # (h, w) after padding
    scale_factor: tuple[float, float]  # (w_scale, h_scale): resized / original, per axis

    def metainfo(self) -> dict:
        return {
            "ori_shape": self.ori_shape,
            "img_shape": self.img_shape,
            "pad_shape": self.pad_shape,
            "batch_input_shape": self.pad_shape,
            "scale_factor": self.scale_factor,
        }


def _cv2():
    try:
        import cv2
    except ImportError:
        raise UsageError("the mmdet detector needs OpenCV (pip install opencv-python-headless)") from None
    return cv2


def decode_bgr(data: bytes, name: str = "image") -> np.ndarray:
    """mmcv 1.x `imfrombytes(flag='color', backend='cv2')`: BGR uint8, 3 channels."""
    cv2 = _cv2()
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise UsageError(f"{name}: OpenCV cannot decode this image; replace it and re-run `ts-eval generate`")
    return image


def rescale_size(width: int, height: int, scale: tuple[int, int] = TEST_SCALE) -> tuple[int, int]:
    """mmcv 1.x `rescale_size((w, h), scale)`: the largest keep-ratio size within (long, short) edges."""
    factor = min(max(scale) / max(height, width), min(scale) / min(height, width))
    return int(width * float(factor) + 0.5), int(height * float(factor) + 0.5)


def resize(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """mmcv 1.x `imresize(img, (w, h), interpolation='bilinear', backend='cv2')`, on the uint8 image."""
    cv2 = _cv2()
    return cv2.resize(image, size, interpolation=cv2.INTER_LINEAR)


def pad_to_multiple(image: np.ndarray, divisor: int = SIZE_DIVISOR, value=PAD_VALUE) -> np.ndarray:
    """mmcv 1.x `impad_to_multiple`: constant padding at the bottom and right."""
    cv2 = _cv2()
    height = int(np.ceil(image.shape[0] / divisor)) * divisor - image.shape[0]
    width = int(np.ceil(image.shape[1] / divisor)) * divisor - image.shape[1]
    return cv2.copyMakeBorder(image, 0, height, 0, width, cv2.BORDER_CONSTANT, value=value)


def normalize(image: np.ndarray, mean=MEAN, std=STD) -> np.ndarray:
    """mmdet 2.x Normalize(to_rgb=True) through mmcv 1.x `imnormalize`: the same OpenCV calls on the same
    dtypes (mean and std pass through float32, then float64), so the float32 result is bit-identical."""
    cv2 = _cv2()
    out = image.copy().astype(np.float32)
    mean = np.array(mean, dtype=np.float32).reshape(1, -1).astype(np.float64)
    stdinv = 1 / np.array(std, dtype=np.float32).reshape(1, -1).astype(np.float64)
    cv2.cvtColor(out, cv2.COLOR_BGR2RGB, out)
    cv2.subtract(out, mean, out)
    cv2.multiply(out, stdinv, out)
    return out


def prepare(data: bytes, scale: tuple[int, int] = TEST_SCALE, name: str = "image") -> DetectorInput:
    """Image file bytes -> the detector's input, as mmdet 2.x's test pipeline makes it."""
    image = decode_bgr(data, name)
    height, width = image.shape[:2]
    resized = resize(image, rescale_size(width, height, scale))
    new_h, new_w = resized.shape[:2]
    padded = pad_to_multiple(resized)
    pixels = np.ascontiguousarray(normalize(padded).transpose(2, 0, 1))
    return DetectorInput(
        pixels, (height, width), (new_h, new_w), tuple(padded.shape[:2]), (new_w / width, new_h / height)
    )


def describe(scale: tuple[int, int] = TEST_SCALE) -> dict:
    """The settings above, for the scorer's `describe()`."""
    return {
        "pipeline": "mmdet2",
        "decode": "cv2.imdecode color BGR",
        "scale": list(scale),
        "resize": "cv2 INTER_LINEAR on uint8, size int(x*f+0.5)",
        "pad": f"bottom-right to /{SIZE_DIVISOR} with {list(PAD_VALUE)} before normalize",
        "mean": list(MEAN),
        "std": list(STD),
        "to_rgb": True,
        "batch": 1,
    }
