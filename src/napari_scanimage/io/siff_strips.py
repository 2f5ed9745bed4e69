"""Photon strips of compressed `.siff` pages read into a buffer instead of the memory map.

A compressed page keeps its photons' arrival times (a few KiB) after an intensity raster
(tens of KiB).  Reading only the strips through the map still maps the rasters around them
(a page fault maps its neighbours: Linux's fault-around), so a histogram of a large file
would hold most of the file in this process or, dropping the pages, fault them in again on
every call.  ``os.preadv`` into one buffer per piece of work holds only the strips, briefly.
"""

from __future__ import annotations

import os
from typing import TypeAlias

import numpy as np
import numpy.typing as npt

from ..errors import FormatError

__all__ = ["read_strips"]

I64: TypeAlias = npt.NDArray[np.int64]


def read_strips(
    path: str, fd: int, starts: I64, nbytes: I64
) -> tuple[tuple[npt.NDArray[np.uint16], ...], I64]:
    """Read the strips (byte offsets ``starts``, lengths ``nbytes``) into one buffer.

    Returns
    -------
    (v16, offsets)
        The buffer as u16 views at byte offsets 0 and 1 (as :class:`SiffReader.words16`)
        and each strip's byte offset in it (even: all in the first view).
    """
    sizes = (nbytes + 1) // 2 * 2
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    raw = bytearray(int(sizes.sum()) + 2)
    view = memoryview(raw)
    for at, start, n in zip(offsets.tolist(), starts.tolist(), nbytes.tolist(), strict=True):
        if n and os.preadv(fd, [view[at : at + n]], start) != n:
            raise FormatError(f"{path}: the file became shorter while open; reopen it")
    buf = np.frombuffer(raw, np.uint8)
    return (buf.view("<u2"), buf[1:-1].view("<u2")), offsets
