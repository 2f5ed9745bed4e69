"""Pooled and per-row arrival-time histograms of `.siff` pages: the histogram part of
:class:`~napari_scanimage.io.siff.SiffReader` (which provides the pages, the map and the
shared helpers), on both engines.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeAlias, cast

import numpy as np
import numpy.typing as npt

from .siff_strips import read_strips
from .siff_tables import pixel_lists

if TYPE_CHECKING:
    from .tiff import PageIndex

__all__ = ["COMPRESSED", "MAX_BINS_FACTOR", "RAW", "SiffHistograms"]

I64: TypeAlias = npt.NDArray[np.int64]

RAW, COMPRESSED = 0, 1  # page encodings
MAX_BINS_FACTOR = 4  # arrival times past this many times num_bins are corruption


class SiffHistograms:
    """Arrival-time histograms (a part of :class:`~napari_scanimage.io.siff.SiffReader`)."""

    if TYPE_CHECKING:  # what the reader provides (its pages, map and shared helpers)
        index: PageIndex
        path: str
        height: int
        width: int
        kinds: Any
        starts: Any
        counts: Any
        rasters: Any
        _fd: int
        _v16: Any
        _v64: Any
        _sorted: Callable[[npt.ArrayLike, npt.ArrayLike], tuple[I64, I64]]
        _planes: Callable[..., I64]
        _verify: Any
        _numpy_loop: Any
        compiled: Any
        reads_strips: Any
        raise_for_status: Any
        run_parallel: Any

    def capacity(self, num_bins: int) -> int:
        """Histogram bins kept for ``num_bins`` bins; a later arrival time is corruption."""
        return MAX_BINS_FACTOR * max(int(num_bins), 16)

    def histogram(
        self,
        pages: npt.ArrayLike,
        rows: npt.ArrayLike,
        nrows: int,
        num_bins: int,
        *,
        mask: npt.NDArray[np.bool_] | None = None,
        planes: npt.ArrayLike | None = None,
    ) -> I64:
        """Arrival-time counts: int64 (nrows, L), page ``pages[i]`` adding to row ``rows[i]``.

        ``mask`` is bool (Zm, Y, X): only photons in ``mask[planes[i]]`` count.  L is
        ``num_bins`` or, when later photons arrive, the latest arrival time + 1.
        """
        pages, rows = self._sorted(pages, rows)
        cap = self.capacity(num_bins)
        planes = self._planes(pages, planes, mask)
        if mask is None:  # the photon loop does not read the rasters: check them once
            self._verify(pages)
        flat_mask = (
            np.zeros((1, 1), np.uint8)
            if mask is None
            else np.ascontiguousarray(mask.reshape(len(mask), -1), dtype=np.uint8)
        )
        uptr, upix = pixel_lists(flat_mask != 0)
        if not self.compiled(pages):
            out = np.zeros((nrows, cap), np.int64)
            plane_of = dict(zip(pages.tolist(), planes.tolist(), strict=True))

            def body(page: int, row: int, pix: I64, tau: I64) -> None:
                if mask is not None:
                    tau = tau[flat_mask[plane_of[page]][pix] != 0]
                if tau.size and tau.max() >= cap:
                    self.raise_for_status(
                        np.array([page]), np.array([3]), np.array([tau.max()]), cap
                    )
                out[row] += np.bincount(tau, minlength=cap)

            self._numpy_loop(pages, rows, body)
            return self._trim(out, num_bins)
        from . import _siff_kernels as K

        status = np.zeros(len(pages), np.int8)
        maxtau = np.zeros(len(pages), np.int64)
        pooled = nrows == 1
        outs: list[I64] = []
        read = mask is None and self.reads_strips(pages)

        def run(sl: slice) -> None:
            # (shared is made below when not pooled)
            out = np.zeros((nrows, cap), np.int64) if pooled else cast(I64, shared)
            v16, starts = self._v16, self.starts[pages[sl]]
            if read:
                nbytes = self.index.byte_counts[pages[sl]]
                v16, starts = read_strips(self.path, self._fd, starts, nbytes)
            K.histogram(
                self._v64,
                v16,
                self.kinds[pages[sl]],
                starts,
                self.counts[pages[sl]],
                self.rasters[pages[sl]],
                rows[sl],
                planes[sl],
                flat_mask,
                mask is not None,
                uptr,
                upix,
                self.height,
                self.width,
                out,
                status[sl],
                maxtau[sl],
            )
            if pooled:
                outs.append(out)

        shared = None if pooled else np.zeros((nrows, cap), np.int64)
        touches = "none" if read else "strips" if mask is None else "all"
        self.run_parallel(pages, rows, run, pooled, touches)
        self.raise_for_status(pages, status, maxtau, cap)
        out = (
            (sum(outs[1:], outs[0]) if outs else np.zeros((1, cap), np.int64))
            if pooled
            else cast(I64, shared)
        )
        return self._trim(out, num_bins)

    @staticmethod
    def _trim(out: I64, num_bins: int) -> I64:
        used = np.flatnonzero(out.any(axis=0))
        length = max(int(num_bins), int(used[-1]) + 1 if used.size else 0)
        return out[:, :length]
