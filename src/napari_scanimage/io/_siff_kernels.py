"""Compiled photon loops for `.siff` pages (numba, ``nogil``; threads come from the caller).

Every kernel walks a list of pages given by parallel arrays:

``kinds``   0 raw (u64 records ``y|x|tau``), 1 compressed (u16 raster + grouped u16 times)
``starts``  byte offset S of the photon strip
``counts``  photons in the strip (raw: bytes ÷ 8, compressed: bytes ÷ 2)
``rasters`` byte offset of the compressed u16 intensity raster (S − 2·H·W)
``rows``    output row each page accumulates into (pages sharing a row must be in one call)

The file is seen through views of one memory map: ``v64[r]`` is the u64 view starting at byte
``r`` (so byte offset S is element ``S // 8`` of ``v64[S % 8]``), likewise ``v16[S % 2]``.
A per-page ``status`` reports what was wrong instead of raising inside compiled code.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeAlias

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import TypeVar

    _F = TypeVar("_F", bound=Callable[..., Any])

    # numba has no type information: its dispatcher is called like the function it compiles
    def njit(**options: Any) -> Callable[[_F], _F]: ...
else:
    from numba import njit

# Arrays as the callers pass them (see the module docstring)
I64: TypeAlias = npt.NDArray[np.int64]
V64: TypeAlias = tuple[npt.NDArray[np.uint64], ...]
V16: TypeAlias = tuple[npt.NDArray[np.uint16], ...]
Status: TypeAlias = npt.NDArray[np.int8]

OK, BAD_COORD, BAD_COUNT, OVERFLOW = 0, 1, 2, 3
_LOW32 = np.uint64(0xFFFFFFFF)
_U16 = np.uint64(0xFFFF)
_S48 = np.uint64(48)
_S32 = np.uint64(32)


@njit(nogil=True, cache=True, inline="always")
def _pixel(rec: np.uint64, height: int, width: int) -> int | np.int64:
    """Flat pixel index of a raw photon record, or -1 when it lies outside the frame."""
    y = np.int64(rec >> _S48)
    x = np.int64((rec >> _S32) & _U16)
    if y >= height or x >= width:
        return -1
    return y * width + x


@njit(nogil=True, cache=True, inline="always")
def _count_u16(
    view: npt.NDArray[np.uint16],
    start: int | np.int64,
    stop: int | np.int64,
    hist: I64,
    status: Status,
    maxtau: I64,
    i: int,
) -> None:
    """Add the u16 arrival times ``view[start:stop]`` to ``hist``; times past its end mark
    page ``i`` as OVERFLOW and keep the largest in ``maxtau[i]``.
    """
    cap = hist.shape[0]
    for j in range(start, stop):
        tau = np.int64(view[j])
        if tau >= cap:
            status[i] = OVERFLOW
            if tau > maxtau[i]:
                maxtau[i] = tau
            continue
        hist[tau] += 1


@njit(nogil=True, cache=True, inline="always")
def _raster_sum(
    rview: npt.NDArray[np.uint16],
    rbase: int | np.int64,
    start: int | np.int64,
    stop: int | np.int64,
) -> int | np.int64:
    total: int | np.int64 = 0
    for k in range(start, stop):
        total += np.int64(rview[rbase + k])
    return total


@njit(nogil=True, cache=True)
def intensity(
    v64: V64,
    v16: V16,
    kinds: I64,
    starts: I64,
    counts: I64,
    rasters: I64,
    height: int,
    width: int,
    out: npt.NDArray[np.uint16],
    status: Status,
) -> None:
    """Photon counts per pixel of each page into ``out[i]`` (flat H·W, uint16)."""
    npix = height * width
    for i in range(kinds.shape[0]):
        row = out[i]
        n = counts[i]
        if kinds[i] == 0:
            for k in range(npix):
                row[k] = 0
            view = v64[starts[i] % 8]
            base = starts[i] // 8
            for j in range(n):
                p = _pixel(view[base + j], height, width)
                if p < 0:
                    status[i] = BAD_COORD
                    break
                if row[p] < 65535:
                    row[p] += 1
        else:
            view = v16[rasters[i] % 2]
            base = rasters[i] // 2
            total = 0
            for k in range(npix):
                c = view[base + k]
                row[k] = c
                total += c
            if total != n:
                status[i] = BAD_COUNT


@njit(nogil=True, cache=True)
def histogram(
    v64: V64,
    v16: V16,
    kinds: I64,
    starts: I64,
    counts: I64,
    rasters: I64,
    rows: I64,
    planes: I64,
    mask: npt.NDArray[np.uint8],
    use_mask: bool,
    uptr: I64,
    upix: I64,
    height: int,
    width: int,
    out: I64,
    status: Status,
    maxtau: I64,
) -> None:
    """Arrival-time counts of each page added to ``out[rows[i]]``; with ``use_mask`` only the
    photons whose pixel is set in ``mask[planes[i]]`` (flat H·W, uint8), whose set pixels of
    plane z are also listed, ascending, in ``upix[uptr[z]:uptr[z + 1]]``.
    """
    npix = height * width
    cap = out.shape[1]
    for i in range(kinds.shape[0]):
        hist = out[rows[i]]
        n = counts[i]
        if kinds[i] == 0:
            view = v64[starts[i] % 8]
            base = starts[i] // 8
            m = mask[planes[i]]
            for j in range(n):
                rec = view[base + j]
                if use_mask:
                    p = _pixel(rec, height, width)
                    if p < 0:
                        status[i] = BAD_COORD
                        break
                    if m[p] == 0:
                        continue
                tau = np.int64(rec & _LOW32)
                if tau >= cap:
                    status[i] = OVERFLOW
                    if tau > maxtau[i]:
                        maxtau[i] = tau
                    continue
                hist[tau] += 1
        else:
            view = v16[starts[i] % 2]
            base = starts[i] // 2
            if not use_mask:
                _count_u16(view, base, base + n, hist, status, maxtau, i)
                continue
            z = planes[i]
            rview = v16[rasters[i] % 2]
            rbase = rasters[i] // 2
            pos: int | np.int64 = 0
            prev = 0
            for u in range(uptr[z], uptr[z + 1]):  # only the masked pixels' photons
                k = upix[u]
                pos += _raster_sum(rview, rbase, prev, k)
                c = np.int64(rview[rbase + k])
                prev = k + 1
                if pos + c > n:
                    status[i] = BAD_COUNT
                    break
                _count_u16(view, base + pos, base + pos + c, hist, status, maxtau, i)
                pos += c
            if status[i] == OK and pos + _raster_sum(rview, rbase, prev, npix) != n:
                status[i] = BAD_COUNT


@njit(nogil=True, cache=True)
def mask_sums(
    v64: V64,
    v16: V16,
    kinds: I64,
    starts: I64,
    counts: I64,
    rasters: I64,
    rows: I64,
    planes: I64,
    indptr: I64,
    indices: I64,
    uptr: I64,
    upix: I64,
    height: int,
    width: int,
    out_n: I64,
    out_tau: I64,
    status: Status,
) -> None:
    """Photon count and arrival-time sum of every mask, per output row.

    Masks are a CSR table per plane: the masks containing pixel ``p`` of plane ``z`` are
    ``indices[indptr[z, p]:indptr[z, p + 1]]``; the pixels of plane z in any mask are
    ``upix[uptr[z]:uptr[z + 1]]``, ascending.  ``out_n`` and ``out_tau`` are (rows, masks).
    """
    npix = height * width
    for i in range(kinds.shape[0]):
        cn = out_n[rows[i]]
        ct = out_tau[rows[i]]
        ptr = indptr[planes[i]]
        n = counts[i]
        if kinds[i] == 0:
            view = v64[starts[i] % 8]
            base = starts[i] // 8
            for j in range(n):
                rec = view[base + j]
                p = _pixel(rec, height, width)
                if p < 0:
                    status[i] = BAD_COORD
                    break
                a = ptr[p]
                b = ptr[p + 1]
                if a == b:
                    continue
                tau = np.int64(rec & _LOW32)
                for q in range(a, b):
                    r = indices[q]
                    cn[r] += 1
                    ct[r] += tau
        else:
            view = v16[starts[i] % 2]
            base = starts[i] // 2
            z = planes[i]
            rview = v16[rasters[i] % 2]
            rbase = rasters[i] // 2
            pos: int | np.int64 = 0
            prev = 0
            for u in range(uptr[z], uptr[z + 1]):  # only pixels inside some mask
                k = upix[u]
                pos += _raster_sum(rview, rbase, prev, k)
                c = np.int64(rview[rbase + k])
                prev = k + 1
                if pos + c > n:
                    status[i] = BAD_COUNT
                    break
                if c:
                    s: int | np.int64 = 0
                    for j in range(pos, pos + c):
                        s += np.int64(view[base + j])
                    for q in range(ptr[k], ptr[k + 1]):
                        r = indices[q]
                        cn[r] += c
                        ct[r] += s
                pos += c
            if status[i] == OK and pos + _raster_sum(rview, rbase, prev, npix) != n:
                status[i] = BAD_COUNT


@njit(nogil=True, cache=True)
def pixel_sums(
    v64: V64,
    v16: V16,
    kinds: I64,
    starts: I64,
    counts: I64,
    rasters: I64,
    rows: I64,
    height: int,
    width: int,
    out_n: I64,
    out_tau: I64,
    status: Status,
) -> None:
    """Photon count and arrival-time sum of every pixel, per output row: ``out_n`` and
    ``out_tau`` are (rows, height·width).  (``mask_sums`` with every pixel its own mask, without
    the table lookups.)
    """
    npix = height * width
    for i in range(kinds.shape[0]):
        cn = out_n[rows[i]]
        ct = out_tau[rows[i]]
        n = counts[i]
        if kinds[i] == 0:
            view = v64[starts[i] % 8]
            base = starts[i] // 8
            for j in range(n):
                rec = view[base + j]
                p = _pixel(rec, height, width)
                if p < 0:
                    status[i] = BAD_COORD
                    break
                cn[p] += 1
                ct[p] += np.int64(rec & _LOW32)
        else:
            view = v16[starts[i] % 2]
            base = starts[i] // 2
            rview = v16[rasters[i] % 2]
            rbase = rasters[i] // 2
            pos: int | np.int64 = 0
            for k in range(npix):
                c = np.int64(rview[rbase + k])
                if c:
                    if pos + c > n:
                        status[i] = BAD_COUNT
                        break
                    s: int | np.int64 = 0
                    for j in range(pos, pos + c):
                        s += np.int64(view[base + j])
                    cn[k] += c
                    ct[k] += s
                    pos += c
            if status[i] == OK and pos != n:
                status[i] = BAD_COUNT


@njit(nogil=True, cache=True)
def raster_totals(v16: V16, rasters: I64, npix: int, out: I64) -> None:
    """Sum of each compressed page's u16 intensity raster into ``out`` (int64)."""
    for i in range(rasters.shape[0]):
        view = v16[rasters[i] % 2]
        base = rasters[i] // 2
        total: int | np.int64 = 0
        for k in range(npix):
            total += np.int64(view[base + k])
        out[i] = total


@njit(nogil=True, cache=True, error_model="numpy")
def lifetimes(
    v64: V64,
    v16: V16,
    kinds: I64,
    starts: I64,
    counts: I64,
    rasters: I64,
    height: int,
    width: int,
    scale: np.float32,
    out: npt.NDArray[np.float32],
    scratch_n: I64,
    scratch_t: I64,
    status: Status,
) -> None:
    """Mean arrival time × ``scale`` of every pixel of each page into ``out[i]`` (flat H·W,
    float32; 0/0 = NaN without photons), computed as NumPy does: count and arrival sum as
    float32, divided, times ``scale``.  ``scratch_n`` / ``scratch_t`` (H·W) hold a raw page's
    per-pixel sums (compressed pages are grouped by pixel already).
    """
    npix = height * width
    for i in range(kinds.shape[0]):
        row = out[i]
        n = counts[i]
        if kinds[i] == 0:
            for k in range(npix):
                scratch_n[k] = 0
                scratch_t[k] = 0
            view = v64[starts[i] % 8]
            base = starts[i] // 8
            for j in range(n):
                rec = view[base + j]
                p = _pixel(rec, height, width)
                if p < 0:
                    status[i] = BAD_COORD
                    break
                scratch_n[p] += 1
                scratch_t[p] += np.int64(rec & _LOW32)
            for k in range(npix):
                row[k] = np.float32(scratch_t[k]) / np.float32(scratch_n[k]) * scale
        else:
            view = v16[starts[i] % 2]
            base = starts[i] // 2
            rview = v16[rasters[i] % 2]
            rbase = rasters[i] // 2
            pos: int | np.int64 = 0
            for k in range(npix):
                c = np.int64(rview[rbase + k])
                s: int | np.int64 = 0
                if c:
                    if pos + c > n:
                        status[i] = BAD_COUNT
                        break
                    for j in range(pos, pos + c):
                        s += np.int64(view[base + j])
                    pos += c
                row[k] = np.float32(s) / np.float32(c) * scale
            if status[i] == OK and pos != n:
                status[i] = BAD_COUNT
