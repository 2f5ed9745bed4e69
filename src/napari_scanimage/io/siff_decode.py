"""Decoding one `.siff` page's photons with NumPy (the reference the compiled kernels are
tested against; docs/formats.md §2).
"""

from __future__ import annotations

from typing import TypeAlias

import numpy as np
import numpy.typing as npt

from .siff_histogram import RAW

__all__ = ["page_photons"]

I64: TypeAlias = npt.NDArray[np.int64]


def page_photons(
    buf: npt.NDArray[np.uint8],
    kind: int,
    raster: int,
    start: int,
    count: int,
    height: int,
    width: int,
) -> tuple[I64, I64, I64, int]:
    """(y, x, tau, status) of the ``count`` photons of a page stored at byte ``start`` of
    ``buf`` (a compressed page's intensity raster at byte ``raster``), in storage order (raw:
    arrival order; compressed: grouped by pixel in raster order).

    ``status`` is 0, or the reader's status code of a corrupt page: 1 for a photon outside
    the ``height`` × ``width`` frame, 2 for a raster whose counts do not sum to ``count``.
    """
    if kind == RAW:
        rec = buf[start : start + 8 * count].view("<u8")
        y = (rec >> np.uint64(48)).astype(np.int64)
        x = ((rec >> np.uint64(32)) & np.uint64(0xFFFF)).astype(np.int64)
        tau = (rec & np.uint64(0xFFFFFFFF)).astype(np.int64)
        bad = bool(count) and (int(y.max()) >= height or int(x.max()) >= width)
        return y, x, tau, 1 if bad else 0
    counts = buf[raster:start].view("<u2").astype(np.int64)
    if int(counts.sum()) != count:
        empty = np.zeros(0, np.int64)
        return empty, empty, empty, 2
    pix = np.repeat(np.arange(height * width, dtype=np.int64), counts)
    tau = buf[start : start + 2 * count].view("<u2").astype(np.int64)
    return pix // width, pix % width, tau, 0
