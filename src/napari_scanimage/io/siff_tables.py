"""Mask tables of the `.siff` photon loops: CSR membership of pixels in masks.

Functions
---------
masks_to_csr
    Which masks hold each pixel of each plane, as a CSR table.
pixel_lists
    The set pixels of each row of a bool table, as CSR.
ranges
    Concatenated ``arange(n)`` for each n of a list.
"""

from __future__ import annotations

from typing import TypeAlias

import numpy as np
import numpy.typing as npt

__all__ = ["masks_to_csr", "pixel_lists", "ranges"]

I64: TypeAlias = npt.NDArray[np.int64]


def pixel_lists(table: npt.NDArray[np.bool_]) -> tuple[I64, I64]:
    """Set pixels of each row of a (Zm, H·W) bool table as CSR: ``uptr`` (Zm + 1), ``upix``."""
    counts = table.sum(axis=1)
    uptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    return uptr, np.nonzero(table)[1].astype(np.int64)


def ranges(lengths: I64) -> I64:
    """Concatenated ``arange(n)`` for each n in ``lengths``."""
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, np.int64)
    starts = np.repeat(np.cumsum(lengths) - lengths, lengths)
    return np.arange(total, dtype=np.int64) - starts


def masks_to_csr(masks: npt.NDArray[np.bool_]) -> tuple[I64, I64]:
    """CSR membership table of bool masks (R, Zm, Y, X): ``indptr`` (Zm, Y·X + 1) and
    ``indices`` (mask numbers), so that the masks holding pixel p of plane z are
    ``indices[indptr[z, p]:indptr[z, p + 1]]``.
    """
    R, Zm = masks.shape[:2]
    flat = masks.reshape(R, Zm, -1)
    npix = flat.shape[2]
    per_plane = []
    indptr = np.zeros((Zm, npix + 1), np.int64)
    offset = 0
    for z in range(Zm):
        r, p = np.nonzero(flat[:, z, :])
        order = np.argsort(p, kind="stable")
        r, p = r[order], p[order]
        counts = np.bincount(p, minlength=npix)
        indptr[z, 1:] = offset + np.cumsum(counts)
        indptr[z, 0] = offset
        offset += len(r)
        per_plane.append(r.astype(np.int64))
    indices = np.concatenate(per_plane) if per_plane else np.zeros(0, np.int64)
    return indptr, indices
