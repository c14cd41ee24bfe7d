"""mmdet 2.x's test-time preprocessing, step by step, against computations written out independently."""

from __future__ import annotations

import io
from fractions import Fraction
from math import floor

import numpy as np
import pytest
from PIL import Image

cv2 = pytest.importorskip("cv2")

from ts_eval.geneval.preprocess import (  # noqa: E402
    MEAN,
    STD,
    TEST_SCALE,
    decode_bgr,
    normalize,
    pad_to_multiple,
    prepare,
    rescale_size,
    resize,
)


def png(pixels: np.ndarray, mode: str | None = None) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels, mode).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.mark.parametrize("width, height", [(512, 512), (640, 480), (2666, 1597), (1597, 2666), (64, 80), (1024, 96)])
def test_target_size_rounds_half_up_like_mmcv(width, height):
    factor = min(Fraction(max(TEST_SCALE)) / max(width, height), Fraction(min(TEST_SCALE)) / min(width, height))
    expected = (floor(width * factor + Fraction(1, 2)), floor(height * factor + Fraction(1, 2)))
    assert rescale_size(width, height) == expected


def test_half_way_sizes_round_up_not_to_even_nor_down():
    assert rescale_size(2666, 1597) == (1333, 799)  # 1597 * 0.5 = 798.5: round() gives 798, int() 798


def bilinear_half_pixel(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """Bilinear resampling with pixel centres at +0.5 and edge clamping, in float64."""
    in_h, in_w = image.shape[:2]

    def axis(n_out, n_in):
        x = (np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5
        x = np.clip(x, 0, n_in - 1)
        low = np.floor(x).astype(int)
        high = np.minimum(low + 1, n_in - 1)
        return low, high, x - low

    y0, y1, fy = axis(height, in_h)
    x0, x1, fx = axis(width, in_w)
    img = image.astype(np.float64)
    top = img[y0][:, x0] * (1 - fx)[None, :, None] + img[y0][:, x1] * fx[None, :, None]
    bottom = img[y1][:, x0] * (1 - fx)[None, :, None] + img[y1][:, x1] * fx[None, :, None]
    return top * (1 - fy)[:, None, None] + bottom * fy[:, None, None]


@pytest.mark.parametrize("size", [(100, 125), (37, 41)])  # up and down
def test_resize_is_bilinear_on_uint8(size):
    image = np.random.default_rng(0).integers(0, 256, (80, 64, 3), dtype=np.uint8)
    out = resize(image, size)
    assert out.dtype == np.uint8 and out.shape == (size[1], size[0], 3)
    exact = bilinear_half_pixel(image, *size)
    assert np.abs(out - exact).max() <= 1.0  # OpenCV's fixed-point weights, rounded to uint8
    float_resize = cv2.resize(image.astype(np.float32), size, interpolation=cv2.INTER_LINEAR)
    assert not np.array_equal(out.astype(np.float32), float_resize)  # what mmdet 3.x's float32 pipeline gives


def test_pad_bottom_right_with_128_to_a_multiple_of_32():
    image = np.random.default_rng(1).integers(0, 256, (70, 33, 3), dtype=np.uint8)
    out = pad_to_multiple(image)
    assert out.shape == (96, 64, 3) and out.dtype == np.uint8
    assert np.array_equal(out[:70, :33], image)
    assert (out[70:] == 128).all() and (out[:, 33:] == 128).all()
    assert pad_to_multiple(out).shape == out.shape  # already a multiple: unchanged


def test_normalize_flips_bgr_to_rgb_then_standardises():
    bgr = np.random.default_rng(2).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    out = normalize(bgr)
    assert out.dtype == np.float32 and bgr.dtype == np.uint8  # the input is left alone
    rgb = bgr[..., ::-1].astype(np.float64)
    np.testing.assert_allclose(out, (rgb - np.array(MEAN)) / np.array(STD), rtol=0, atol=2e-6)
    blue = normalize(np.array([[[255, 0, 0]]], np.uint8))[0, 0]  # BGR blue
    assert blue[2] == pytest.approx((255 - 103.53) / 57.375, abs=1e-5) and blue[0] == pytest.approx(
        -123.675 / 58.395, abs=1e-5
    )


def test_prepare_runs_the_steps_in_mmdet2_order():
    rgb = np.random.default_rng(3).integers(0, 256, (64, 80, 3), dtype=np.uint8)
    ready = prepare(png(rgb))
    assert (ready.ori_shape, ready.img_shape, ready.pad_shape) == ((64, 80), (800, 1000), (800, 1024))
    assert ready.scale_factor == (1000 / 80, 800 / 64)
    assert ready.pixels.shape == (3, 800, 1024) and ready.pixels.dtype == np.float32
    # the image area: resized as uint8, then normalised
    expected = normalize(resize(rgb[..., ::-1].copy(), (1000, 800)))
    np.testing.assert_array_equal(ready.pixels[:, :, :1000], expected.transpose(2, 0, 1))
    # the padding was 128 before normalising, so it is (128 - mean) / std, not 0
    pad = (128 - np.array(MEAN)) / np.array(STD)
    np.testing.assert_allclose(ready.pixels[:, :, 1000:].reshape(3, -1).T, np.tile(pad, (800 * 24, 1)), atol=1e-5)
    assert ready.metainfo()["batch_input_shape"] == (800, 1024)


def test_decode_is_three_channel_bgr_whatever_the_png_mode():
    rgb = np.random.default_rng(4).integers(0, 256, (6, 5, 3), dtype=np.uint8)
    assert np.array_equal(decode_bgr(png(rgb)), rgb[..., ::-1])
    rgba = np.dstack([rgb, np.full((6, 5), 7, np.uint8)])
    assert np.array_equal(decode_bgr(png(rgba, "RGBA")), rgb[..., ::-1])  # alpha dropped, not composited
    grey = rgb[..., 0]
    assert np.array_equal(decode_bgr(png(grey, "L")), np.dstack([grey] * 3))
    from ts_eval.errors import UsageError

    with pytest.raises(UsageError, match="cannot decode"):
        decode_bgr(b"not an image", "x.png")
