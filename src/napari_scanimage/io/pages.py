"""Read indexed TIFF pages into NumPy arrays.

Classes
-------
PageReader
    Pages of one file: plain pages by positional reads (large frames: ``os.preadv``, or
    per-thread handles where it is missing) or strided memory-map copies (small frames);
    anything else decoded by tifffile.

Functions
---------
read_description
    One page's ImageDescription text.
"""

from __future__ import annotations

import functools
import mmap
import os
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, BinaryIO, cast

import numpy as np
import numpy.typing as npt

from ..errors import FormatError, read_error
from ._platform import PositionalReader
from .tiff import PageIndex

if TYPE_CHECKING:
    import tifffile

__all__ = ["PageReader", "read_description"]

# Reads of many large frames use one preadv per frame: no page-table cost and no mapped file
# pages counted against the process.  Small frames, and reads of a few frames (a viewer step,
# where latency matters most), are copied from a memory map, small frames in runs of equal
# stride (one NumPy copy per run instead of one per page).
PREAD_MIN_BYTES = 64 * 1024
PREAD_MIN_PAGES = 4
PARALLEL_MIN_PAGES = 32
_CPUS = os.cpu_count() or 1


@functools.lru_cache(maxsize=1)
def _pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=min(_CPUS, 4), thread_name_prefix="scanimage-read")


def read_description(fh: BinaryIO, index: PageIndex, page: int) -> str:
    """Return the ImageDescription text of ``page`` ('' when absent)."""
    length = int(index.description_lengths[page])
    if length == 0:
        return ""
    fh.seek(int(index.description_offsets[page]))
    return fh.read(length).rstrip(b"\0").decode("utf-8", "replace")


def _runs(offsets: npt.NDArray[np.int64]) -> list[tuple[int, int, int]]:
    """Split page offsets into runs (start, stop, stride) with a constant positive stride.

    A stride of 0 marks a single page.
    """
    n = len(offsets)
    if n < 2:
        return [(0, n, 0)] if n else []
    diffs = np.diff(offsets)
    # diffs[a:b] constant → pages a .. b-1 step by diffs[a]; page b starts the next run
    starts = [0, *(np.flatnonzero(diffs[1:] != diffs[:-1]) + 1).tolist()]
    stops = [*starts[1:], n]
    runs = []
    for start, stop in zip(starts, stops, strict=True):
        stride = int(diffs[start]) if start < n - 1 else 0
        if stride > 0:
            runs.append((start, stop, stride))
        else:
            runs += [(k, k + 1, 0) for k in range(start, stop)]
    return runs


class PageReader:
    """Read pages of one indexed file.

    Holds one open file (and memory map for small frames); not shared between threads — make
    one per thread.
    """

    def __init__(self, index: PageIndex):
        self.index = index
        self._fh = open(index.path, "rb")
        self._fd = self._fh.fileno()
        self._buf: npt.NDArray[np.uint8] | None = None
        self._mm: mmap.mmap | None = None
        self._tiff: tifffile.TiffFile | None = None
        self.frame_bytes = index.shape[0] * index.shape[1] * index.dtype.itemsize
        self._swap = index.byteorder != ("<" if np.little_endian else ">")
        # without os.preadv (Windows) each reading thread seeks a handle of its own
        self._pread = index.direct and self.frame_bytes >= PREAD_MIN_BYTES
        self._positional = PositionalReader(index.path, self._fd) if self._pread else None
        if index.direct:
            self._mm = mmap.mmap(self._fd, 0, access=mmap.ACCESS_READ)
            self._buf = np.frombuffer(self._mm, dtype=np.uint8)

    @property
    def closed(self) -> bool:
        """True once :meth:`close` has been called."""
        return self._fh.closed

    def read_into(
        self,
        pages: npt.NDArray[np.integer[Any]],
        out: npt.NDArray[Any],
        rows: tuple[int, int] | None = None,
    ) -> None:
        """Copy ``pages`` (local page numbers) into ``out`` of shape (len(pages), Y, X).

        ``out`` must be C-contiguous with the index's dtype (native byte order).  With
        ``rows`` = (first, count) only that band of rows is read: ``out`` is then
        (len(pages), count, X).
        """
        index = self.index
        if not index.direct:
            if rows is None:
                self._read_tifffile(pages, out)
            else:
                whole = np.empty((len(pages), *index.shape), dtype=out.dtype)
                self._read_tifffile(pages, whole)
                out[...] = whole[:, rows[0] : rows[0] + rows[1]]
            return
        offsets = index.data_offsets[np.asarray(pages, dtype=np.int64)]
        nbytes = self.frame_bytes
        if rows is not None:  # one contiguous band of each page
            row_bytes = self.frame_bytes // index.shape[0]
            offsets = offsets + rows[0] * row_bytes
            nbytes = rows[1] * row_bytes
        flat = out.reshape(len(offsets), -1).view(np.uint8)
        if self._pread and len(offsets) >= PREAD_MIN_PAGES:
            n = len(offsets)
            if n >= PARALLEL_MIN_PAGES and _CPUS > 1:  # reads release the GIL
                parts = np.array_split(np.arange(n), min(_CPUS, 4))
                list(
                    _pool().map(
                        lambda idx: self._pread_pages(pages, offsets, flat, idx, nbytes), parts
                    )
                )
            else:
                self._pread_pages(pages, offsets, flat, range(n), nbytes)
        else:
            # (direct files are mapped while open)
            buf = cast("npt.NDArray[np.uint8]", self._buf)
            # touching a mapped page past the end of a shortened file would kill the process
            end = int(offsets.max()) + nbytes
            try:
                size = os.fstat(self._fd).st_size
            except OSError as exc:
                raise read_error(index.path, exc) from exc
            if end > len(buf) or end > size:
                last = int(pages[int(np.argmax(offsets))])
                raise FormatError(
                    f"{index.path}: page {last} ends early; the file was shortened while open"
                )
            for start, stop, stride in _runs(offsets):
                first = int(offsets[start])
                if stride == 0:
                    flat[start] = buf[first : first + nbytes]
                else:
                    src = np.lib.stride_tricks.as_strided(
                        buf[first:],
                        shape=(stop - start, nbytes),
                        strides=(stride, 1),
                        writeable=False,
                    )
                    flat[start:stop] = src
        if self._swap:
            out.byteswap(inplace=True)

    def _pread_pages(
        self,
        pages: npt.NDArray[np.integer[Any]],
        offsets: npt.NDArray[np.int64],
        flat: npt.NDArray[np.uint8],
        indices: Iterable[int],
        nbytes: int,
    ) -> None:
        # (made whenever reads go through pread)
        readinto = cast(PositionalReader, self._positional).readinto
        for i in indices:
            try:
                got = readinto(flat[i], int(offsets[i]))
            except OSError as exc:  # EIO: failing drive or unmounted share
                raise read_error(self.index.path, exc) from exc
            if got != nbytes:
                raise FormatError(
                    f"{self.index.path}: page {int(pages[i])} ends early; the "
                    "file was shortened while open"
                )

    def _read_tifffile(self, pages: npt.NDArray[np.integer[Any]], out: npt.NDArray[Any]) -> None:
        for i, p in enumerate(np.asarray(pages).tolist()):
            try:
                if self._tiff is None:
                    import tifffile

                    self._tiff = tifffile.TiffFile(self.index.path)  # own handle, from byte 0
                page = self._tiff.pages[int(p)]
                # a page unlike the first is refused before tifffile allocates its pixels
                if (
                    tuple(page.shape) != out.shape[1:]
                    or np.dtype(page.dtype).str[1:] != out.dtype.str[1:]
                ):
                    raise FormatError(
                        f"{self.index.path}: page {p} holds {page.shape} "
                        f"{page.dtype} pixels, unlike the first page's "
                        f"{out.shape[1:]} {out.dtype}; the file is corrupt"
                    )
                # and its strips must lie in the file (tifffile would allocate what they claim)
                size = self.index.file_size
                if any(
                    o < 0 or c < 0 or o + c > size
                    for o, c in zip(page.dataoffsets, page.databytecounts, strict=False)
                ):
                    raise FormatError(
                        f"{self.index.path}: page {p}: its data lie outside the "
                        f"file ({size} bytes); the file is corrupt"
                    )
                out[i] = page.asarray()
            except FormatError:
                raise
            except Exception as exc:  # tifffile raises many types on broken pages
                raise FormatError(f"{self.index.path}: page {p} cannot be decoded ({exc})") from exc

    def description(self, page: int) -> str:
        """Return the ImageDescription text of local page ``page`` ('' when absent)."""
        return read_description(self._fh, self.index, page)

    def close(self) -> None:
        """Close the file, its memory map and any tifffile handle."""
        self._buf = None
        if self._mm is not None:
            try:
                self._mm.close()
            except BufferError:  # arrays still view the map; the OS frees it with them
                pass
            self._mm = None
        if self._tiff is not None:
            self._tiff.close()
            self._tiff = None
        if self._positional is not None:
            self._positional.close()
        self._fh.close()

    def __enter__(self) -> PageReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
