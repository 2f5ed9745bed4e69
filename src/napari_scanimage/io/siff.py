"""ScanImage-FLIM `.siff` pages: photons, intensity, arrival-time histograms and sums.

Classes
-------
FlimSettings
    Arrival-time bins of a recording: number, width, laser period.
SiffReader
    Photon-level reads of the pages of one indexed `.siff` file (docs/formats.md §2).

Every operation has two engines: compiled loops (:mod:`._siff_kernels`, numba, run on a few
threads over blocks of pages straight from a memory map) and a plain NumPy path
(``engine="numpy"``) that decodes pages one at a time; the tests hold them equal.  The default,
``"auto"``, compiles for large jobs and keeps small ones (a viewer step) on NumPy until the
kernels are loaded, so opening a file never waits for numba.  Set
``NAPARI_SCANIMAGE_ENGINE=numpy`` to use the NumPy path everywhere.

Arrival times are never wrapped: histograms are as long as the latest arrival time seen (at
least ``num_bins``); a time beyond :data:`MAX_BINS_FACTOR` × ``num_bins`` is taken as corruption
and raises :class:`~napari_scanimage.errors.FormatError`.
"""

from __future__ import annotations

import functools
import mmap
import os
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeAlias

import numpy as np
import numpy.typing as npt

from ..errors import FormatError, read_error
from ._platform import pread_function, release_mapped
from .siff_decode import page_photons
from .siff_histogram import COMPRESSED, MAX_BINS_FACTOR, RAW, SiffHistograms
from .siff_mapping import MappedPages
from .siff_settings import FlimSettings, flim_settings
from .siff_tables import masks_to_csr, pixel_lists, ranges
from .tiff import PageIndex

__all__ = ["FlimSettings", "SiffReader", "flim_settings", "masks_to_csr", "pixel_lists"]

I64: TypeAlias = npt.NDArray[np.int64]
Indices: TypeAlias = "Sequence[int] | npt.NDArray[np.integer[Any]]"  # page numbers
_Body: TypeAlias = Callable[[int, int, I64, I64], None]  # (page, row, flat pixel, arrival)
_Kernel: TypeAlias = Callable[[slice, I64, I64, npt.NDArray[np.int8]], None]  # see _sums

PARALLEL_MIN_PHOTONS = 1 << 18
SMALL_JOB_PHOTONS = 1 << 16
_KERNELS = __name__.rsplit(".", 1)[0] + "._siff_kernels"
# Work is split into pieces of at most this many file bytes.  In files larger than
# MAPPED_BUDGET the pages a piece read are dropped from this process's mapping (they stay in
# the page cache) as it ends when a call has several pieces; reads of one piece (dask chunks,
# trace blocks) are counted and dropped once they pass the budget.  So resident memory stays
# bounded however large the file and however small the reads; smaller files, and repeated
# small reads of the same pages, stay mapped between calls.  Where pages cannot be dropped one
# region at a time (no madvise: Windows) the whole file is mapped afresh after the call.
PIECE_BYTES = 32 << 20
MAPPED_BUDGET = 96 << 20
_PAGE = mmap.PAGESIZE
_CPUS = os.cpu_count() or 1
_NO_BYTES = np.zeros(0, np.uint8)


def default_engine() -> str:
    """Engine of readers made without one: "numpy" (by the environment, or no numba), or "auto"."""
    if os.environ.get("NAPARI_SCANIMAGE_ENGINE", "").lower() == "numpy":
        return "numpy"
    import importlib.util

    if importlib.util.find_spec("numba") is None:  # not installed on this platform
        return "numpy"
    return "auto"


@functools.lru_cache(maxsize=1)
def _pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=min(_CPUS, 8), thread_name_prefix="scanimage-siff")


class SiffReader(SiffHistograms):
    """Photon-level reads of one indexed `.siff` file.

    Page arguments are page indices local to this file.  Not shared between threads (each
    thread opens its own); the compiled loops run on an internal pool.
    """

    def __init__(self, index: PageIndex, engine: str | None = None):
        if index.siff_flags is None:
            raise FormatError(f"{index.path}: not a .siff file (no page has tag 907)")
        self.index = index
        self.path = index.path
        self.engine = engine or default_engine()
        self.height, self.width = index.shape
        npix = self.height * self.width
        # O_BINARY: no newline translation on Windows (0 elsewhere)
        self._fd = os.open(index.path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
        self._mm: mmap.mmap | None = None
        self._buf: npt.NDArray[np.uint8]  # the map's bytes (set by _map)
        self._v64: tuple[npt.NDArray[np.uint64], ...] = ()
        self._v16: tuple[npt.NDArray[np.uint16], ...] = ()
        self._map()
        self.kinds = index.siff_flags.astype(np.int64)
        self.starts = index.data_offsets
        nbytes = index.byte_counts
        self.counts = np.where(self.kinds == RAW, nbytes // 8, nbytes // 2)
        self.rasters = self.starts - 2 * npix
        desc_end = index.description_offsets
        self._bad = np.full(len(index), "", dtype=object)
        self._bad[(self.kinds != RAW) & (self.kinds != COMPRESSED)] = "is not a .siff frame"
        self._bad[(self.kinds == RAW) & (nbytes % 8 != 0)] = (
            "has a raw photon strip whose length is not a multiple of 8 bytes"
        )
        self._bad[(self.kinds == COMPRESSED) & (nbytes % 2 != 0)] = (
            "has a compressed photon strip of an odd number of bytes"
        )
        self._bad[(self.kinds == COMPRESSED) & (self.rasters < desc_end)] = (
            "has no room for its intensity raster before the photon strip"
        )
        self._bad_any = bool((self._bad != "").any())
        # compressed pages whose raster total has been checked against their photon count
        self._verified = self.kinds != COMPRESSED
        self._identity: tuple[I64, I64] | None = None  # pixel_sums' mask table
        self._held = MappedPages(index, npix)  # what the map holds (see MAPPED_BUDGET)
        self._pread = pread_function()

    # -- housekeeping ---------------------------------------------------------------------
    def _map(self) -> None:
        """Map the whole file (again: the previous map's pages leave this process)."""
        old = self._mm
        try:
            self._mm = (
                mmap.mmap(self._fd, 0, access=mmap.ACCESS_READ) if self.index.file_size else None
            )
        except (OSError, ValueError):  # e.g. emptied meanwhile: keep the map (size checks
            if old is None:  # report the change on the next read)
                raise
            return
        buf = np.frombuffer(self._mm, np.uint8) if self._mm is not None else np.zeros(8, np.uint8)
        size = len(buf)
        self._buf = buf
        self._v64 = tuple(buf[r : r + (size - r) // 8 * 8].view("<u8") for r in range(8))
        self._v16 = tuple(buf[r : r + (size - r) // 2 * 2].view("<u2") for r in range(2))
        if old is not None:
            try:
                old.close()
            except BufferError:  # views still alive elsewhere; the map goes with them
                pass

    @property
    def closed(self) -> bool:
        """True once :meth:`close` has been called."""
        return self._fd < 0

    @property
    def words64(self) -> tuple[npt.NDArray[np.uint64], ...]:
        """The mapped file as little-endian 64-bit words at each of the 8 byte offsets (what
        the compiled photon kernels decode).
        """
        return self._v64

    @property
    def words16(self) -> tuple[npt.NDArray[np.uint16], ...]:
        """The mapped file as little-endian 16-bit words at both byte offsets."""
        return self._v16

    def close(self) -> None:
        """Release the memory map and the file descriptor (calling it again does nothing)."""
        if self._fd >= 0:
            self._v64 = self._v16 = ()
            self._buf = _NO_BYTES  # (no view keeps the map)
            if self._mm is not None:
                try:
                    self._mm.close()
                except BufferError:  # views still alive elsewhere; the map goes with them
                    pass
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> SiffReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def check_pages(self, pages: I64) -> None:
        """Raise FormatError when the reader is closed or a page index is out of range."""
        if self._fd < 0:
            raise FormatError(f"{self.path}: reader is closed")
        if pages.size and (pages.min() < 0 or pages.max() >= len(self.kinds)):
            raise FormatError(f"{self.path}: page index out of range 0–{len(self.kinds) - 1}")
        if self._bad_any:
            bad = self._bad[pages]
            hit = np.flatnonzero(bad != "")
            if hit.size:
                raise FormatError(
                    f"{self.path}: page {int(pages[hit[0]])} {bad[hit[0]]}; the "
                    "file is corrupt from there (earlier pages can be read)"
                )
        self._check_size()

    def _check_size(self) -> None:
        """Refuse to touch the memory map of a file shortened since it was opened: a mapped
        page past the new end would kill the process (SIGBUS) in the compiled loops.
        """
        try:
            size = os.fstat(self._fd).st_size
        except OSError as exc:  # EIO / ESTALE: failing drive or unmounted share
            raise read_error(self.path, exc) from exc
        if size < self.index.file_size:
            raise FormatError(f"{self.path}: the file became shorter while open; reopen it")

    def raise_for_status(
        self,
        pages: npt.NDArray[np.integer[Any]],
        status: npt.NDArray[np.integer[Any]],
        maxtau: npt.NDArray[np.integer[Any]] | None = None,
        cap: int = 0,
    ) -> None:
        """Raise the typed error a compiled kernel reported for the first page whose
        ``status`` is non-zero (bad photon records, arrival times past ``cap``…).
        """
        hit = np.flatnonzero(status)
        if not hit.size:
            return
        i = int(hit[0])
        page, code = int(pages[i]), int(status[i])
        if code == 1:
            what = f"has a photon outside the {self.height}×{self.width} frame"
        elif code == 2:
            what = "has an intensity raster that does not match its photon count"
        else:
            tau = int(maxtau[i]) if maxtau is not None else -1
            what = (
                f"has arrival time bin {tau}, beyond {cap} ({MAX_BINS_FACTOR}× Tau_bins); "
                "Tau_bins or the photon data is wrong"
            )
        raise FormatError(
            f"{self.path}: page {page} {what}; the file is corrupt there "
            "(other pages can still be read)"
        )

    def description(self, page: int) -> str:
        """The frame description text of ``page`` ('' when absent)."""
        start = int(self.index.description_offsets[page])
        length = int(self.index.description_lengths[page])
        if self._fd < 0:
            raise FormatError(f"{self.path}: reader is closed")
        self._check_size()
        # read, not taken from the map: every frame's description (timestamps) would map the
        # whole file into this process, one page per description
        text = self._pread(self._fd, length, start)
        return text.rstrip(b"\0").decode("utf-8", "replace")

    def read_into(
        self, pages: Indices, out: npt.NDArray[np.uint16], rows: tuple[int, int] | None = None
    ) -> None:
        """Intensity (photon counts) of ``pages`` into ``out`` (n, Y, X) uint16; with ``rows``
        = (first, count) only that band of rows, ``out`` (n, count, X) (photons are counted
        over whole frames either way).
        """
        if rows is None:
            self.intensity(pages, out)
            return
        whole = np.empty((len(pages), self.height, self.width), dtype=out.dtype)
        self.intensity(pages, whole)
        out[...] = whole[:, rows[0] : rows[0] + rows[1]]

    # -- NumPy reference path ---------------------------------------------------------------
    def photons(self, page: int) -> tuple[I64, I64, I64]:
        """(y, x, tau) int64 arrays of every photon of ``page``, in storage order (raw: arrival
        order; compressed: grouped by pixel in raster order).
        """
        pages = np.array([page], dtype=np.int64)
        self.check_pages(pages)
        at = (int(self.rasters[page]), int(self.starts[page]), int(self.counts[page]))
        y, x, tau, status = page_photons(
            self._buf, int(self.kinds[page]), *at, self.height, self.width
        )
        if status:
            self.raise_for_status(pages, np.array([status]))
        return y, x, tau

    def _numpy_loop(self, pages: I64, rows: I64, body: _Body) -> None:
        # pieces of about PIECE_BYTES, each released after use (as run_parallel's)
        page_bytes = int(self.index.byte_counts[pages].mean()) if len(pages) else 1
        per = max(1, PIECE_BYTES // max(1, page_bytes))
        for a in range(0, len(pages), per):
            piece = zip(pages[a : a + per].tolist(), rows[a : a + per].tolist(), strict=True)
            for page, row in piece:
                y, x, tau = self.photons(page)
                body(page, row, y * self.width + x, tau)
            if not self._account(pages[a : a + per], False):
                self._map()

    # -- operations -----------------------------------------------------------------------
    def intensity(
        self, pages: npt.ArrayLike, out: npt.NDArray[np.uint16] | None = None
    ) -> npt.NDArray[np.uint16]:
        """Photon counts per pixel of ``pages``: uint16 (n, Y, X)."""
        pages = np.asarray(pages, dtype=np.int64).reshape(-1)
        self.check_pages(pages)
        npix = self.height * self.width
        if out is None:
            out = np.empty((len(pages), self.height, self.width), np.uint16)
        flat = out.reshape(len(pages), npix)
        if not self.compiled(pages):

            def body(page: int, row: int, pix: I64, tau: I64) -> None:
                flat[row] = np.minimum(np.bincount(pix, minlength=npix), 65535)

            self._numpy_loop(pages, np.arange(len(pages)), body)
            return out
        from . import _siff_kernels as K

        status = np.zeros(len(pages), np.int8)

        def run(sl: slice) -> None:
            K.intensity(
                self._v64,
                self._v16,
                self.kinds[pages[sl]],
                self.starts[pages[sl]],
                self.counts[pages[sl]],
                self.rasters[pages[sl]],
                self.height,
                self.width,
                flat[sl],
                status[sl],
            )

        self.run_parallel(pages, np.arange(len(pages)), run)
        self.raise_for_status(pages, status)
        return out

    def mask_sums(
        self,
        pages: npt.ArrayLike,
        rows: npt.ArrayLike,
        nrows: int,
        indptr: I64,
        indices: I64,
        nmasks: int,
        planes: npt.ArrayLike | None = None,
    ) -> tuple[I64, I64]:
        """Photon counts and arrival-time sums per mask: two int64 (nrows, nmasks) arrays.

        Masks come as a CSR table per plane (see :func:`masks_to_csr`); ``planes[i]`` picks the
        table row of page ``pages[i]``.
        """
        pages, rows = self._sorted(pages, rows)
        planes = self._planes(pages, planes, indptr)
        out_n = np.zeros((nrows, nmasks), np.int64)
        out_t = np.zeros((nrows, nmasks), np.int64)
        if not self.compiled(pages):
            plane_of = dict(zip(pages.tolist(), planes.tolist(), strict=True))

            def body(page: int, row: int, pix: I64, tau: I64) -> None:
                ptr = indptr[plane_of[page]]
                reps = ptr[pix + 1] - ptr[pix]
                owners = indices[np.repeat(ptr[pix], reps) + ranges(reps)]
                out_n[row] += np.bincount(owners, minlength=nmasks)
                out_t[row] += np.bincount(
                    owners, weights=np.repeat(tau, reps), minlength=nmasks
                ).astype(np.int64)

            self._numpy_loop(pages, rows, body)
            return out_n, out_t
        from . import _siff_kernels as K

        uptr, upix = pixel_lists(indptr[:, 1:] > indptr[:, :-1])

        def kernel(sl: slice, a: I64, b: I64, status: npt.NDArray[np.int8]) -> None:
            K.mask_sums(
                self._v64,
                self._v16,
                self.kinds[pages[sl]],
                self.starts[pages[sl]],
                self.counts[pages[sl]],
                self.rasters[pages[sl]],
                rows[sl],
                planes[sl],
                indptr,
                indices,
                uptr,
                upix,
                self.height,
                self.width,
                a,
                b,
                status,
            )

        return self._sums(pages, rows, out_n, out_t, kernel)

    def _sums(
        self, pages: I64, rows: I64, out_n: I64, out_t: I64, kernel: _Kernel
    ) -> tuple[I64, I64]:
        """Run ``kernel(slice, counts, sums, status)`` over slices of ``pages`` on the thread
        pool, into ``out_n`` / ``out_t`` (rows, …); with one output row every slice gets its
        own pair, added up at the end.
        """
        status = np.zeros(len(pages), np.int8)
        pooled = out_n.shape[0] == 1
        parts: list[tuple[I64, I64]] = []

        def run(sl: slice) -> None:
            a, b = (np.zeros_like(out_n), np.zeros_like(out_t)) if pooled else (out_n, out_t)
            kernel(sl, a, b, status[sl])
            if pooled:
                parts.append((a, b))

        self.run_parallel(pages, rows, run, pooled)
        self.raise_for_status(pages, status)
        for a, b in parts:
            out_n += a
            out_t += b
        return out_n, out_t

    def pixel_sums(self, pages: npt.ArrayLike, rows: npt.ArrayLike, nrows: int) -> tuple[I64, I64]:
        """Photon counts and arrival-time sums per pixel: int64 (nrows, Y, X) each (every
        pixel is its own mask).
        """
        npix = self.height * self.width
        pages = np.asarray(pages, np.int64)
        if self.compiled(pages):
            return self._pixel_sums_compiled(pages, rows, nrows)
        if self._identity is None:
            self._identity = (
                np.arange(npix + 1, dtype=np.int64)[None],
                np.arange(npix, dtype=np.int64),
            )
        indptr, indices = self._identity
        out_n, out_t = self.mask_sums(pages, rows, nrows, indptr, indices, npix)
        shape = (nrows, self.height, self.width)
        return out_n.reshape(shape), out_t.reshape(shape)

    def _pixel_sums_compiled(self, pages: I64, rows: npt.ArrayLike, nrows: int) -> tuple[I64, I64]:
        from . import _siff_kernels as K

        pages, rows = self._sorted(pages, rows)
        npix = self.height * self.width
        out_n = np.zeros((nrows, npix), np.int64)
        out_t = np.zeros((nrows, npix), np.int64)

        def kernel(sl: slice, a: I64, b: I64, status: npt.NDArray[np.int8]) -> None:
            K.pixel_sums(
                self._v64,
                self._v16,
                self.kinds[pages[sl]],
                self.starts[pages[sl]],
                self.counts[pages[sl]],
                self.rasters[pages[sl]],
                rows[sl],
                self.height,
                self.width,
                a,
                b,
                status,
            )

        self._sums(pages, rows, out_n, out_t, kernel)
        shape = (nrows, self.height, self.width)
        return out_n.reshape(shape), out_t.reshape(shape)

    # -- helpers --------------------------------------------------------------------------
    def reads_strips(self, pages: I64) -> bool:
        """Whether a histogram of ``pages`` reads their photon strips into a buffer rather
        than through the map: compressed pages of a large file (see :mod:`.siff_strips`).
        """
        return (
            hasattr(os, "preadv")
            and self.index.file_size > MAPPED_BUDGET
            and bool((self.kinds[pages] == COMPRESSED).all())
        )

    def compiled(self, pages: I64) -> bool:
        """Use the compiled loops for ``pages``?  Small jobs (a viewer step) take the NumPy
        path until the kernels are loaded, so opening a file never waits for numba.
        """
        if self.engine != "auto":
            return self.engine == "numba"
        if _KERNELS in sys.modules:
            return True
        return int(self.counts[pages].sum()) >= SMALL_JOB_PHOTONS

    def _verify(self, pages: I64) -> None:
        todo = np.unique(pages[~self._verified[pages]])
        if not todo.size:
            return
        npix = self.height * self.width
        totals = np.zeros(len(todo), np.int64)
        if not self.compiled(pages):
            for i, page in enumerate(todo.tolist()):
                a = int(self.rasters[page])
                totals[i] = self._buf[a : a + 2 * npix].view("<u2").sum(dtype=np.int64)
        else:
            from . import _siff_kernels as K

            def run(sl: slice) -> None:
                K.raster_totals(self._v16, self.rasters[todo[sl]], npix, totals[sl])

            self.run_parallel(todo, np.arange(len(todo)), run)
        bad = totals != self.counts[todo]
        self.raise_for_status(todo, bad.astype(np.int8) * 2)
        self._verified[todo] = True

    def _sorted(self, pages: npt.ArrayLike, rows: npt.ArrayLike) -> tuple[I64, I64]:
        pages = np.asarray(pages, dtype=np.int64).reshape(-1)
        rows = np.broadcast_to(np.asarray(rows, dtype=np.int64), pages.shape).reshape(-1)
        self.check_pages(pages)
        if rows.size > 1 and (np.diff(rows) < 0).any():
            order = np.argsort(rows, kind="stable")
            pages, rows = pages[order], rows[order]
        return pages, np.ascontiguousarray(rows)

    def _planes(
        self, pages: I64, planes: npt.ArrayLike | None, table: npt.NDArray[Any] | None
    ) -> I64:
        if planes is None:
            return np.zeros(len(pages), np.int64)
        planes = np.broadcast_to(np.asarray(planes, np.int64), pages.shape).reshape(-1)
        if table is not None and planes.size and (planes.min() < 0 or planes.max() >= len(table)):
            raise ValueError("mask plane index out of range")
        return np.ascontiguousarray(planes)

    def run_parallel(
        self,
        pages: I64,
        rows: I64,
        run: Callable[[slice], None],
        pooled: bool = False,
        touches: str = "all",
    ) -> None:
        """Call ``run`` on slices of ``pages`` on the thread pool.

        Slices split at row changes, so no two share an output row, unless ``pooled`` (each
        slice then has its own output).  ``touches``: what ``run`` reads of the mapped pages,
        counted against MAPPED_BUDGET: ``"all"``, only the photon ``"strips"``, or
        ``"none"``.
        """
        n = len(pages)
        if n == 0:
            return
        nbytes = self.index.byte_counts[pages] + 2 * self.height * self.width * (
            self.kinds[pages] == COMPRESSED
        )
        total = int(nbytes.sum())
        parallel = int(self.counts[pages].sum()) >= PARALLEL_MIN_PHOTONS and _CPUS > 1
        n_chunks = min(n, max(4 * _CPUS if parallel else 1, -(-total // PIECE_BYTES)))
        cum = np.cumsum(nbytes + 256)  # a page costs something even without photons
        cuts = np.searchsorted(cum, cum[-1] * np.arange(1, n_chunks) / n_chunks)
        if not pooled:
            cuts = np.searchsorted(rows, rows[np.minimum(cuts, n - 1)], side="left")
        bounds = np.unique(np.concatenate([[0], cuts, [n]]))
        slices = [slice(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
        remap = False  # set when pages could not be dropped one region at a time
        several = len(slices) > 1 and self.index.file_size > MAPPED_BUDGET

        def piece(sl: slice) -> None:
            nonlocal remap
            self._check_size()  # shortened meanwhile? (keeps the SIGBUS window to one piece)
            run(sl)
            if touches != "none" and not (  # (a large read: each piece's pages go as it ends)
                self._release(self._held.span(pages[sl]))
                if several
                else self._account(pages[sl], touches == "strips")
            ):
                remap = True

        try:
            if not parallel:
                for sl in slices:
                    piece(sl)
            else:
                for f in [_pool().submit(piece, sl) for sl in slices]:
                    f.result()
        finally:
            if remap:  # no madvise: drop every page this call mapped by mapping afresh
                self._map()

    def _account(self, pages: I64, strips_only: bool) -> bool:
        """Count what reading ``pages`` mapped; past MAPPED_BUDGET drop it from this
        process.  False where that cannot be done.
        """
        if self.index.file_size <= MAPPED_BUDGET:
            return True
        span = self._held.add(pages, strips_only, MAPPED_BUDGET)
        return span is None or self._release(span)

    def _release(self, span: tuple[int, int]) -> bool:
        """Drop ``span`` of the map from this process; False where that cannot be done."""
        lo, hi = span
        if self._mm is None or hi - lo < 16 * _PAGE:
            return True
        return release_mapped(self._mm, lo, hi - lo)
