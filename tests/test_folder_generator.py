"""`--model folder` finds existing images in each supported layout."""

from __future__ import annotations

import pytest
from PIL import Image

from ts_eval.errors import UsageError
from ts_eval.generators.folder import FolderGenerator
from ts_eval.records import ImageRequest


@pytest.mark.parametrize(
    "relpath", ["images/00007/0001.png", "00007/samples/0001.png", "00007/1.jpg", "00007/0001.jpeg"]
)
def test_each_layout_is_found(tmp_path, relpath):
    path = tmp_path / relpath
    path.parent.mkdir(parents=True)
    Image.new("RGB", (8, 8), (1, 2, 3)).save(path)
    image = FolderGenerator({"path": str(tmp_path)}).generate([ImageRequest("00007", "p", 1, 0)])[0]
    assert image.size == (8, 8)
    if relpath.endswith(".png"):  # lossless: the exact pixel comes back
        assert image.getpixel((0, 0)) == (1, 2, 3)


def test_single_image_per_prompt_serves_sample_zero_only(tmp_path):
    Image.new("RGB", (8, 8)).save(tmp_path / "00007.png")
    generator = FolderGenerator({"path": str(tmp_path)})
    assert generator.generate([ImageRequest("00007", "p", 0, 0)])[0].size == (8, 8)
    with pytest.raises(UsageError, match="sample 1"):
        generator.generate([ImageRequest("00007", "p", 1, 0)])


def test_needs_an_existing_path(tmp_path):
    with pytest.raises(UsageError, match="path=DIR"):
        FolderGenerator({})
    with pytest.raises(UsageError, match="not a directory"):
        FolderGenerator({"path": str(tmp_path / "nope")})
