"""Small JPEG thumbnails of a run's images, cached by the image's sha256 so re-rendering reuses them."""

from __future__ import annotations

import base64
import io
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from PIL import Image, ImageOps, UnidentifiedImageError
from tqdm.auto import tqdm

from ts_eval.store import write_atomic

SIZE = 256  # longest side in pixels: sharp at the page's ~150 CSS px tiles on a 1.5x screen
QUALITY = 80
ORIENTATION = 0x0112  # the EXIF tag


@dataclass(frozen=True)
class Thumbnail:
    src: str  # what <img src> gets: a path relative to the page, or a data: URI
    width: int  # the original image's size: detection boxes are in its pixels
    height: int


def thumbnail_name(sha256: str) -> str:
    return f"{sha256}-{SIZE}.jpg"


def _orientation(image: Image.Image) -> int:
    if image.format == "PNG":  # PNG's getexif() decodes the whole image to look for a late eXIf chunk
        exif = Image.Exif()
        if image.info.get("exif"):
            exif.load(image.info["exif"])
        return exif.get(ORIENTATION, 1)
    return image.getexif().get(ORIENTATION, 1)


def _make(source: Path, target: Path) -> tuple[int, int] | None:
    """The original's size; writes the thumbnail unless the cache already holds it. None: not readable."""
    try:
        with Image.open(source) as image:
            # Detection boxes are in the upright image's pixels (the scorer applies the EXIF orientation).
            turned = _orientation(image) in (5, 6, 7, 8)
            size = (image.height, image.width) if turned else image.size
            if not target.exists():
                image.draft("RGB", (SIZE, SIZE))  # JPEG originals decode at a reduced scale
                small = ImageOps.exif_transpose(image).convert("RGB")
                small.thumbnail((SIZE, SIZE), Image.Resampling.LANCZOS)
                buffer = io.BytesIO()
                small.save(buffer, format="JPEG", quality=QUALITY, optimize=True)
                write_atomic(target, buffer.getvalue())
            return size
    except (FileNotFoundError, UnidentifiedImageError, OSError, SyntaxError):
        return None


def make_thumbnails(
    sources: dict[str, Path], folder: Path, page_dir: Path, *, embed: bool = False, progress: bool = True
) -> dict[str, Thumbnail]:
    """sha256 -> thumbnail of each readable image in `sources`; files missing or unreadable are left out.

    Thumbnails land in `folder` as <sha256>-<size>.jpg; `src` is relative to `page_dir` (or a data: URI
    when `embed`). Files in `folder` of that form that no image needs any more are removed.
    """
    folder.mkdir(parents=True, exist_ok=True)
    shas = list(sources)
    workers = min(8, os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=workers) as pool:  # PIL decodes and resizes without the GIL
        sizes = list(
            tqdm(
                pool.map(lambda s: _make(sources[s], folder / thumbnail_name(s)), shas),
                total=len(shas),
                desc="thumbnails",
                unit="img",
                disable=not progress,
            )
        )
    relative = quote(Path(os.path.relpath(folder, page_dir)).as_posix())
    found: dict[str, Thumbnail] = {}
    for sha, size in zip(shas, sizes):
        if size is None:
            continue
        name = thumbnail_name(sha)
        src = (
            f"data:image/jpeg;base64,{base64.b64encode((folder / name).read_bytes()).decode('ascii')}"
            if embed
            else f"{relative}/{name}"
        )
        found[sha] = Thumbnail(src, *size)
    wanted = {thumbnail_name(s) for s in shas}
    for stale in folder.glob(f"*-{SIZE}.jpg"):
        if stale.name not in wanted and len(stale.name) == len(thumbnail_name("0" * 64)):
            stale.unlink(missing_ok=True)
    return found
