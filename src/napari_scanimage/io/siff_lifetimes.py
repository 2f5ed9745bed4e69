"""Per-pixel mean photon arrival times (lifetime images) of `.siff` pages.

One compiled pass per page gives the float32 image straight away, where counting photons and
arrival sums per pixel into int64 arrays and dividing them afterwards (what
:meth:`SiffReader.pixel_sums` serves) moves four times the output through memory.  The values
are the same: count and sum rounded to float32, divided, times the scale.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from .siff import SiffReader

__all__ = ["lifetime_frames"]


def lifetime_frames(
    reader: SiffReader, pages: npt.ArrayLike, scale: float, out: npt.NDArray[np.float32]
) -> npt.NDArray[np.float32]:
    """Mean arrival bin × ``scale`` of every pixel of ``pages`` (local page numbers) into
    ``out`` (n, Y, X) float32; NaN where a pixel has no photon.
    """
    pages = np.asarray(pages, dtype=np.int64).reshape(-1)
    n = len(pages)
    npix = reader.height * reader.width
    flat = out.reshape(n, npix)
    if not reader.compiled(pages):  # small jobs before the kernels are loaded
        counts, sums = reader.pixel_sums(pages, np.arange(n), n)
        with np.errstate(invalid="ignore", divide="ignore"):
            np.true_divide(sums.reshape(n, npix), counts.reshape(n, npix), out=flat,
                           dtype=np.float32)  # fmt: skip
        flat *= np.float32(scale)
        return out
    from . import _siff_kernels as K

    reader.check_pages(pages)
    status = np.zeros(n, np.int8)

    def run(sl: slice) -> None:
        K.lifetimes(
            reader.words64,
            reader.words16,
            reader.kinds[pages[sl]],
            reader.starts[pages[sl]],
            reader.counts[pages[sl]],
            reader.rasters[pages[sl]],
            reader.height,
            reader.width,
            np.float32(scale),
            flat[sl],
            np.empty(npix, np.int64),
            np.empty(npix, np.int64),
            status[sl],
        )

    rows: Any = np.arange(n, dtype=np.int64)
    reader.run_parallel(pages, rows, run)
    reader.raise_for_status(pages, status)
    return out
