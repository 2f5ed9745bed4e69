"""Sizes a TIFF page index declares, checked against the file before anything is allocated
(frames, compressed frames, `.siff` rasters, page data past the end of the file).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from ..errors import FormatError

if TYPE_CHECKING:
    from .ifd import PageArrays

__all__ = ["MAX_COMPRESSION", "check_extent", "check_frame_size", "check_siff_shape"]

# A compressed page may decode to at most this many times the size of the file: deflate
# cannot exceed about 1032:1, and a ScanImage frame of noisy pixels compresses far less; a
# declared frame larger than this is corruption, refused before anything is allocated.
MAX_COMPRESSION = 64


def check_frame_size(
    shape: Sequence[int], itemsize: int, size: int, path: str, *, compressed: bool = False
) -> None:
    """Uncompressed pages store their frame: one larger than the whole file is corruption
    (caught here, before anything allocates it).  Compressed pages may hold up to
    :data:`MAX_COMPRESSION` times the file size.
    """
    limit = size * (MAX_COMPRESSION if compressed else 1)
    if int(shape[0]) * int(shape[1]) * int(itemsize) > limit:
        what = (
            f"more than {MAX_COMPRESSION} times the file size ({size} bytes), even for "
            "compressed pages"
            if compressed
            else f"more than the whole file ({size} bytes)"
        )
        raise FormatError(
            f"{path}: pages declare {int(shape[0])}×{int(shape[1])} pixels of "
            f"{itemsize} byte(s), {what}; the file is corrupt"
        )


def check_siff_shape(shape: Sequence[int], arrays: PageArrays, size: int, path: str) -> None:
    """`.siff` photon records store y and x in 16 bits, and compressed frames store a u16
    raster of the frame: larger frames are corruption.
    """
    height, width = int(shape[0]), int(shape[1])
    if not (0 < height <= 65536 and 0 < width <= 65536):
        raise FormatError(
            f"{path}: .siff pages declare {height}×{width} pixels; photon "
            "records address at most 65536×65536, so the file is corrupt"
        )
    if (np.asarray(arrays["siff"]) == 1).any() and 2 * height * width > size:
        raise FormatError(
            f"{path}: compressed .siff pages declare a {height}×{width} "
            f"intensity raster, larger than the whole file ({size} bytes); the "
            "file is corrupt"
        )


def check_extent(arrays: PageArrays, n: int, size: int, path: str) -> int:
    """Pages whose data lie past the end of the file: trailing ones are a cut file (the pages
    before them are kept: returns how many); one followed by good pages is corruption.
    """
    offsets = np.asarray(arrays["data_offsets"], np.int64)
    counts = np.asarray(arrays["byte_counts"], np.int64)
    bad = (offsets < 0) | (counts < 0) | (offsets > size) | (counts > size - offsets)
    if not bad.any():
        return n
    first = int(np.argmax(bad))
    if first == 0 or not bad[first:].all():
        raise FormatError(
            f"{path}: page {first}: its data ({int(counts[first])} bytes at byte "
            f"{int(offsets[first])}) lie outside the file ({size} bytes); the "
            "file is corrupt"
        )
    return first
