"""Piecewise-rigid registrations applied on read: a smooth displacement field per frame.

A piecewise registration stores, per (time, plane), the rigid shift (dy, dx) and the residual
shift of each block of a regular grid of blocks (``block_shifts`` (T, Z, NBY, NBX, 2) at
``block_centers`` (NBY, NBX, 2)).  The displacement at every pixel is the rigid shift plus the
block residuals interpolated by a tensor-product cubic spline through the block centres
(not-a-knot ends; quadratic or linear with fewer than 4 blocks along an axis, constant with
one), held constant from the outer centres to the frame's edges.  The
convention is the rigid one (:mod:`.shifting`): ``registered[y, x] = frame[y + dy(y, x),
x + dx(y, x)]``.

Applying the field:

* ``"bilinear"`` / ``"fourier"`` shift modes: each frame is resampled at ``(y, x) + d(y, x)``,
  linear (``"bilinear"``) or cubic-spline (``"fourier"``: a band-limited shift has no meaning
  for a field that varies across the frame) interpolation, 0 outside the frame; float32.
* ``"integer"``, photon counts (`.siff`): the photons of (bidirectionally corrected) pixel p
  move to ``p - round(d(p))``, the field rounded to whole pixels at the photon's own pixel;
  counts and arrival times move together and nothing is interpolated (several pixels may land
  on one, and none on another, where the rounded field steps).
* ``"integer"``, TIFF pixel values: ``registered[q] = frame[q + round(d(q))]`` (nearest
  source pixel; exact copies, dtype kept).

Masks drawn on registered frames map back to raw pixels as the photons move
(:func:`field_mask`, :func:`field_csr`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

__all__ = [
    "FieldKey",
    "block_field",
    "field_csr",
    "field_groups",
    "field_mask",
    "is_piecewise",
    "raw_targets",
    "spline_weights",
    "warp_frames",
]

_F64 = npt.NDArray[np.float64]


def is_piecewise(registration: object) -> bool:
    """True for a registration that carries a block field (``block_shifts`` not None)."""
    return getattr(registration, "block_shifts", None) is not None


def spline_weights(centres: npt.ArrayLike, n: int) -> _F64:
    """Matrix W (n, k) with ``W @ v`` the interpolating spline through values ``v`` at
    ``centres`` (k, increasing) evaluated at pixels 0 … n-1 (cubic, not-a-knot; lower order
    with fewer than 4 centres; constant past the outer centres).
    """
    from scipy.interpolate import make_interp_spline

    c = np.asarray(centres, np.float64)
    k = len(c)
    if k == 1:
        return np.ones((n, 1))
    spline = make_interp_spline(c, np.eye(k), k=min(3, k - 1))
    at = np.arange(n, dtype=np.float64)
    # past the outer centres: the end value held.  (Continuing with the end slope let
    # residuals of ±1.5 px become displacements of tens of pixels at the frame's edges:
    # a not-a-knot cubic's end slopes follow the noise of the outer blocks.)
    w: _F64 = spline(np.clip(at, c[0], c[-1]))
    return w


def block_field(
    block_shifts: npt.ArrayLike,
    centres: npt.ArrayLike,
    shape: tuple[int, int],
    dtype: npt.DTypeLike = np.float32,
) -> npt.NDArray[Any]:
    """Residual field (..., 2, Y, X) interpolated from block shifts (..., NBY, NBX, 2) at block
    centres (NBY, NBX, 2) (see the module docstring), of ``dtype`` (float32 by default: what
    warping frames needs).
    """
    b = np.asarray(block_shifts, np.float64)
    c = np.asarray(centres, np.float64)
    wy = spline_weights(c[:, 0, 0], shape[0]).astype(dtype)
    wx = spline_weights(c[0, :, 1], shape[1]).astype(dtype)
    # separable: (Y, NBY) @ B (..., 2, NBY, NBX) @ (NBX, X), as two 2-D matrix
    # products (batched matmul with so short an inner axis is many times slower)
    lead = b.shape[:-3]
    H, W = b.shape[-3:-1]
    B = np.moveaxis(b.reshape(-1, H, W, 2), 1, 0).astype(dtype)  # (H, m, W, 2)
    A = (wy @ B.reshape(H, -1)).reshape(shape[0], -1, W, 2)  # (Y, m, W, 2)
    A = np.ascontiguousarray(A.transpose(1, 3, 0, 2))  # (m, 2, Y, W)
    out: npt.NDArray[Any] = (A.reshape(-1, W) @ wx.T).reshape(*lead, 2, *shape)
    return out.astype(dtype, copy=False)


def _grid(shape: tuple[int, int]) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    Y, X = shape
    return (
        np.arange(Y, dtype=np.float32)[:, None],
        np.arange(X, dtype=np.float32)[None, :],
    )


def raw_targets(field: npt.ArrayLike, bidi_phase: int = 0) -> npt.NDArray[np.int64]:
    """Where the photons of each raw pixel land: flat registered index (Y·X,) int64, -1 for
    photons that leave the frame.

    ``field`` (2, Y, X) is the displacement (rounded here to whole pixels) in the
    bidirectionally corrected frame: raw pixel (y, x) is corrected pixel (y, x - p) on odd
    rows, which moves to ``(y, x - p) - round(d(y, x - p))``.
    """
    d = np.round(np.asarray(field)).astype(np.int64)
    _, Y, X = d.shape
    yy, xx = np.mgrid[:Y, :X]
    xc = xx - int(bidi_phase) * (yy % 2 == 1)  # corrected column of each raw pixel
    inside = (xc >= 0) & (xc < X)
    xs = np.clip(xc, 0, X - 1)
    qy = yy - d[0][yy, xs]
    qx = xc - d[1][yy, xs]
    inside &= (qy >= 0) & (qy < Y) & (qx >= 0) & (qx < X)
    return np.where(inside, qy * X + qx, -1).reshape(-1)


def field_mask(mask: npt.ArrayLike, field: npt.ArrayLike, bidi_phase: int = 0) -> npt.NDArray[Any]:
    """A mask (..., Y, X) drawn on registered frames, in raw-frame coordinates: raw pixel p is
    in it when its photons land in the mask (:func:`raw_targets`); False/0 where they leave.
    """
    m = np.asarray(mask)
    Y, X = m.shape[-2:]
    q = raw_targets(field, bidi_phase)
    flat = m.reshape(*m.shape[:-2], Y * X)
    out = np.where(q >= 0, flat[..., np.maximum(q, 0)], np.zeros((), m.dtype))
    return out.reshape(m.shape).astype(m.dtype, copy=False)


def field_csr(
    where: Sequence[tuple[npt.NDArray[np.intp], ...]],
    keys: Sequence[FieldKey],
    frame_shape: tuple[int, int],
    bidi_phase: int,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """CSR membership table (one row of Y·X + 1 pointers per key, as
    :func:`napari_scanimage._core.photons.shifted_csr`) of masks ``where[plane]`` = (mask, y,
    x) drawn on registered frames, for raw pixels moved by each key's field.
    """
    Y, X = frame_shape
    npix = Y * X
    indptr = np.zeros((len(keys), npix + 1), np.int64)
    parts = []
    offset = 0
    for j, key in enumerate(keys):
        r, y, x = where[key.plane]
        pix = np.asarray(y, np.int64) * X + np.asarray(x, np.int64)
        order = np.argsort(pix, kind="stable")  # registered-pixel CSR of the masks
        base_ptr = np.zeros(npix + 1, np.int64)
        base_ptr[1:] = np.cumsum(np.bincount(pix, minlength=npix))
        base_idx = np.asarray(r, np.int64)[order]
        q = raw_targets(key.field, bidi_phase)
        valid = q >= 0
        qs = np.where(valid, q, 0)
        counts = np.where(valid, base_ptr[qs + 1] - base_ptr[qs], 0)
        total = int(counts.sum())
        indptr[j, 0] = offset
        indptr[j, 1:] = offset + np.cumsum(counts)
        offset += total
        # each raw pixel takes its target's run of mask indices
        starts = np.repeat(base_ptr[qs] - (np.cumsum(counts) - counts), counts)
        parts.append(base_idx[starts + np.arange(total)])
    return indptr, np.concatenate(parts) if parts else np.zeros(0, np.int64)


class FieldKey(NamedTuple):
    """One (time row, plane) of a piecewise registration, as photon grouping uses it: the mask
    plane its pages use and the displacement field (2, Y, X) rounded to whole pixels.
    """

    plane: int
    field: npt.NDArray[np.int16]


def field_groups(
    registration: Any,
    rows_t: npt.NDArray[np.int64],
    F: int,
    Zm: int,
    npix: int,
    table_bytes: int,
) -> Iterator[tuple[npt.NDArray[np.intp], npt.NDArray[np.intp], list[FieldKey], int]]:
    """Pages (n, Z, F) of the selected volumes grouped by (time row, plane): yields (positions
    in the pages, group of each within the batch, the batch's :class:`FieldKey` list,
    bidirectional phase rounded), in batches whose per-group tables stay within
    ``table_bytes``.
    """
    rows_t = np.asarray(rows_t, np.int64)
    n, Z = len(rows_t), registration.num_planes
    group = np.repeat(np.arange(n * Z), F)  # pages are (n, Z, F) in C order
    p = int(np.round(registration.bidi_phase))
    per_batch = max(1, table_bytes // (8 * (npix + 1) + 4 * npix))
    for g0 in range(0, n * Z, per_batch):
        ids = range(g0, min(g0 + per_batch, n * Z))
        keys = [
            FieldKey(
                g % Z if Zm > 1 else 0,
                np.round(registration.displacement(int(rows_t[g // Z]), g % Z)).astype(np.int16),
            )
            for g in ids
        ]
        at = np.flatnonzero((group >= g0) & (group < g0 + len(keys)))
        yield at, group[at] - g0, keys, p


def warp_frames(
    frames: npt.NDArray[Any],
    fields: npt.NDArray[np.floating[Any]],
    mode: str,
    photons: bool = False,
) -> npt.NDArray[Any]:
    """Frames (n, nz, nf, Y, X) moved back by total displacement fields (n, nz, 2, Y, X)
    (every sample of a (time, plane) alike), as the module docstring describes for ``mode``
    and ``photons``.
    """
    from scipy import ndimage

    n, nz, nf, Y, X = frames.shape
    if mode == "integer":
        out = np.zeros(frames.shape, frames.dtype)
    else:
        out = np.empty(frames.shape, np.float32)
    gy, gx = _grid((Y, X))
    for i in range(n):
        for z in range(nz):
            d = fields[i, z]
            if mode == "integer" and photons:
                q = raw_targets(d)
                keep = q >= 0
                for f in range(nf):
                    src = frames[i, z, f].reshape(-1)
                    moved = np.bincount(q[keep], weights=src[keep], minlength=Y * X)
                    out[i, z, f] = moved.reshape(Y, X).astype(frames.dtype, copy=False)
            elif mode == "integer":
                sy = np.round(gy + d[0]).astype(np.int64)
                sx = np.round(gx + d[1]).astype(np.int64)
                ok = (sy >= 0) & (sy < Y) & (sx >= 0) & (sx < X)
                sy, sx = np.clip(sy, 0, Y - 1), np.clip(sx, 0, X - 1)
                for f in range(nf):
                    out[i, z, f] = np.where(ok, frames[i, z, f][sy, sx], 0)
            else:
                coords = np.stack(
                    [np.broadcast_to(gy + d[0], (Y, X)), np.broadcast_to(gx + d[1], (Y, X))]
                )
                for f in range(nf):
                    ndimage.map_coordinates(
                        frames[i, z, f].astype(np.float32, copy=False),
                        coords,
                        output=out[i, z, f],
                        order=1 if mode == "bilinear" else 3,
                        mode="grid-constant",
                        cval=0.0,
                    )
    return out
