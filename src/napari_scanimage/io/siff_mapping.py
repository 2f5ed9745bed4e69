"""Which file bytes the memory map of a :class:`~.siff.SiffReader` holds in this process.

Reads touch the mapped file one page (of the file) at a time; the OS keeps what was touched
resident in the process until it is dropped (``madvise``).  :class:`MappedPages` counts the
bytes newly mapped — a photon strip or an intensity raster counted once until the next drop,
at least :data:`FAULT_AROUND` bytes each — and says when the reader should drop them.
"""

from __future__ import annotations

import mmap
import threading
from typing import TypeAlias

import numpy as np
import numpy.typing as npt

from .tiff import PageIndex

__all__ = ["FAULT_AROUND", "MappedPages"]

I64: TypeAlias = npt.NDArray[np.int64]

# A fault on a mapped file maps the cached pages around it too (Linux: 64 KiB), so a small
# read counts as this many bytes.
FAULT_AROUND = 64 << 10
_PAGE = mmap.PAGESIZE
_COMPRESSED = 1


class MappedPages:
    """Bytes of one `.siff` file mapped since they were last dropped.

    Parameters
    ----------
    index : PageIndex
        The file's pages (``siff_flags`` set).
    npix : int
        Pixels per frame (a compressed page's raster is ``2 * npix`` bytes before its strip).
    """

    def __init__(self, index: PageIndex, npix: int):
        self.index = index
        self.raster_bytes = 2 * npix
        flags = index.siff_flags if index.siff_flags is not None else np.zeros(len(index))
        self.compressed = flags == _COMPRESSED
        self.starts = index.data_offsets
        self.firsts = np.where(self.compressed, self.starts - self.raster_bytes, self.starts)
        self.touched = 0
        self.dirty = (index.file_size, 0)
        self.held = np.zeros((2, len(index)), bool)  # strips (row 0) and rasters (row 1) held
        self._lock = threading.Lock()  # (pieces of one call run on several threads)

    def span(self, pages: I64) -> tuple[int, int]:
        """Whole memory pages inside the file bytes that ``pages`` read."""
        lo = int(self.firsts[pages].min())
        hi = int((self.starts[pages] + self.index.byte_counts[pages]).max())
        return -(-lo // _PAGE) * _PAGE, hi // _PAGE * _PAGE

    def add(self, pages: I64, strips_only: bool, budget: int) -> tuple[int, int] | None:
        """Count the bytes reading ``pages`` mapped (their photon strips, and unless
        ``strips_only`` their rasters).  Past ``budget``: the span of everything mapped since
        the last drop (the caller drops it; counting starts afresh), else None.
        """
        if not len(pages):
            return None
        lo, hi = self.span(pages)
        with self._lock:
            strips = pages[~self.held[0, pages]]
            self.held[0, strips] = True
            grown = int(np.maximum(self.index.byte_counts[strips] + _PAGE, FAULT_AROUND).sum())
            if not strips_only:
                rasters = pages[~self.held[1, pages] & self.compressed[pages]]
                self.held[1, rasters] = True
                grown += max(self.raster_bytes + _PAGE, FAULT_AROUND) * len(rasters)
            self.touched += grown
            self.dirty = (min(self.dirty[0], lo), max(self.dirty[1], hi))
            if self.touched <= budget:
                return None
            span = self.dirty
            self.touched, self.dirty = 0, (self.index.file_size, 0)
            self.held[:] = False
        return span
