"""Quality control of piecewise-rigid registrations: the block field as vectors, and the
residual (non-rigid) motion per frame.

Functions
---------
block_vectors
    The residual shift of every block of every time row as vectors (position, projection) in
    (t, [z,] [sample,] y, x) coordinates, as napari's Vectors layers take them.
residual_motion
    Root-mean-square length of the block residuals per (time row, plane).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import numpy.typing as npt

from ..errors import SelectionError

if TYPE_CHECKING:
    from .registration import Registration

__all__ = ["BlockVectors", "block_vectors", "residual_motion"]


class BlockVectors(NamedTuple):
    """Vectors of the block field.

    Attributes
    ----------
    data : float64 (N, 2, D)
        ``data[:, 0]`` the position (t, [z,] y, x) of each block centre, ``data[:, 1]`` the
        residual shift (0, [0,] dy, dx) (content displacement after the rigid shift, pixels).
    flags : int8 (N,)
        As :attr:`Registration.block_flags` (0 own peak, 1–2 borrowed, 3 rigid fallback).
    length : float64 (N,)
        Length of each residual, pixels.
    """

    data: npt.NDArray[np.float64]
    flags: npt.NDArray[np.int8]
    length: npt.NDArray[np.float64]


def _require_piecewise(reg: Registration) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if reg.block_shifts is None or reg.block_centers is None or reg.block_flags is None:
        raise SelectionError(
            "this registration is rigid: it has no block field (register with piecewise=True)"
        )
    return reg.block_shifts, reg.block_centers, reg.block_flags


def block_vectors(
    reg: Registration,
    *,
    plane: int | None = None,
    rows_per_time: int = 1,
    samples: int | None = None,
) -> BlockVectors:
    """The block field of every time row as vectors.

    Parameters
    ----------
    reg : Registration
        A piecewise registration.
    plane : int, optional
        One plane's blocks, positions (t, y, x); None: every plane's, positions (t, z, y, x)
        (for one-plane registrations too, so that the axes match a (T, Z, Y, X) layer only
        when asked: give ``plane=0`` for (T, Y, X) layers).
    rows_per_time : int
        Rows of the displayed time axis per registration time row (frames per slice of an
        interleaved layer): each time row's vectors are repeated on its rows.
    samples : int, optional
        Length of a sample axis after the plane axis (the frames of each slice side by side):
        positions (t, [z,] sample, y, x), each vector repeated on every sample, as the frames
        of a slice are registered with the same shifts.  None: no sample axis.

    Raises
    ------
    SelectionError
        The registration is rigid, or ``plane`` does not exist.
    """
    blocks, centres, flags = _require_piecewise(reg)
    T, Z, H, W, _ = blocks.shape
    if plane is not None:
        if not -Z <= int(plane) < Z:
            raise SelectionError(f"plane {plane} does not exist; the registration has {Z}")
        p = int(plane) % Z
        blocks, flags = blocks[:, p : p + 1], flags[:, p : p + 1]
        Z = 1
    k = max(1, int(rows_per_time))
    S = max(1, int(samples)) if samples is not None else 1
    rows = np.arange(T * k)
    t_of = rows // k
    D = 3 + (plane is None) + (samples is not None)  # t, [z,] [sample,] y, x
    n = len(rows) * Z * S * H * W
    data = np.zeros((n, 2, D))
    tt, zz, ss, yy, xx = np.meshgrid(
        rows, np.arange(Z), np.arange(S), np.arange(H), np.arange(W), indexing="ij"
    )
    data[:, 0, 0] = tt.reshape(-1)
    if plane is None:
        data[:, 0, 1] = zz.reshape(-1)
    if samples is not None:
        data[:, 0, D - 3] = ss.reshape(-1)  # the axis before y
    data[:, 0, -2] = centres[yy, xx, 0].reshape(-1)
    data[:, 0, -1] = centres[yy, xx, 1].reshape(-1)
    moved = np.broadcast_to(blocks[t_of][:, :, None], (len(rows), Z, S, H, W, 2))
    data[:, 1, -2:] = moved.reshape(-1, 2)
    length = np.hypot(data[:, 1, -2], data[:, 1, -1])
    shown = np.broadcast_to(flags[t_of][:, :, None], (len(rows), Z, S, H, W))
    return BlockVectors(data, shown.reshape(-1).astype(np.int8), length)


def residual_motion(reg: Registration) -> npt.NDArray[np.float64]:
    """Root-mean-square length of the block residuals (the non-rigid motion left after the
    rigid shift) of each time row and plane, (T, Z) pixels; blocks that fell back to the rigid
    shift are left out (NaN when all did).
    """
    blocks, _, flags = _require_piecewise(reg)
    sq = np.sum(blocks**2, axis=-1)
    used = flags != 3
    n = used.sum(axis=(2, 3))
    with np.errstate(invalid="ignore", divide="ignore"):
        out: npt.NDArray[np.float64] = np.sqrt(np.where(used, sq, 0).sum(axis=(2, 3)) / n)
    return out
