"""Applying rigid shifts and bidirectional-scan correction to frames and masks.

Conventions (see :mod:`napari_scanimage.analysis.registration`): a shift (dy, dx) is the
displacement of a frame's content relative to the reference; applying it moves the content back,
``registered[y, x] = frame[y + dy, x + dx]``, with 0 for pixels brought in from outside the frame.
Bidirectional correction with phase p moves the odd rows (1, 3, 5, … counted from 0):
``corrected[y, x] = frame[y, x + p]`` for odd y; it comes before the shift.

Functions
---------
apply_shifts
    Shift frames, each by its own (dy, dx): whole pixels (exact), bilinear or Fourier.
correct_bidi
    Bidirectional-scan correction of the odd rows.
shift_mask
    A mask drawn on registered frames, in the raw frame's coordinates (for photon counting).
raw_coordinates
    The same mapping for pixel coordinates.
Shifts
    What the read path needs of a registration (a
    :class:`~napari_scanimage.analysis.registration.Registration` is one).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

__all__ = ["MODES", "Shifts", "apply_shifts", "correct_bidi", "raw_coordinates", "shift_mask"]

MODES = ("integer", "bilinear", "fourier")


class Shifts(Protocol):
    """Per-(time, plane) rigid shifts and a bidirectional phase, as applied on read.

    The read path depends on this shape only, not on how the shifts were estimated.
    """

    @property
    def shifts(self) -> np.ndarray:
        """(num_times, num_planes, 2) of (dy, dx)."""

    @property
    def bidi_phase(self) -> float:
        """Bidirectional line phase, pixels."""

    @property
    def block_shifts(self) -> np.ndarray | None:
        """Piecewise registrations: residual block shifts (T, Z, NBY, NBX, 2); else None."""

    @property
    def block_centers(self) -> np.ndarray | None:
        """Piecewise registrations: block centres (NBY, NBX, 2); else None."""

    def check_fits(self, num_times: int, num_planes: int, frame_shape: tuple[int, int]) -> None:
        """Raise SelectionError unless the shifts fit a recording of this layout."""


def apply_shifts(
    frames: npt.ArrayLike, shifts: npt.ArrayLike, mode: str = "integer"
) -> npt.NDArray[Any]:
    """Move each frame's content back by its shift (dy, dx).

    Parameters
    ----------
    frames : array (..., Y, X)
        Any dtype.
    shifts : array (..., 2)
        (dy, dx) per frame; the leading axes broadcast against those of ``frames`` (one pair
        shifts every frame alike).
    mode : {"integer", "bilinear", "fourier"}
        ``"integer"``: shifts rounded to whole pixels (``np.round``: halves to even); an exact
        copy of the pixels, same dtype.  ``"bilinear"``: linear interpolation between the 4
        nearest pixels, pixels outside the frame counting as 0 (as ``scipy.ndimage.shift``
        with ``order=1, mode="grid-constant"`` and shift ``(-dy, -dx)``); float32.
        ``"fourier"``: phase ramp on the 2-D FFT (sub-pixel, band-limited); pixels whose
        nearest source pixel lies outside the frame are 0; float32.

    Returns
    -------
    numpy.ndarray
        Same shape as ``frames``.
    """
    frames = np.asarray(frames)
    if frames.ndim < 2:
        raise ValueError(f"frames must be (..., Y, X), got shape {frames.shape}")
    if mode not in MODES:
        raise ValueError(f"shift mode {mode!r} is not one of {', '.join(map(repr, MODES))}")
    lead, (Y, X) = frames.shape[:-2], frames.shape[-2:]
    s = np.asarray(shifts, dtype=np.float64)
    if s.shape[-1:] != (2,):
        raise ValueError(f"shifts must be (..., 2), got shape {s.shape}")
    s = np.broadcast_to(s, (*lead, 2)).reshape(-1, 2)
    flat = frames.reshape(-1, Y, X)
    if mode == "integer":
        r = np.round(s).astype(np.int64)
        out = _shift_whole(flat, r[:, 0], r[:, 1], (Y, X))
    elif mode == "bilinear":
        out = _shift_bilinear(flat, s[:, 0], s[:, 1])
    else:
        out = _shift_fourier(flat, s[:, 0], s[:, 1])
    return out.reshape(frames.shape)


def _groups(
    dy: npt.NDArray[np.int64], dx: npt.NDArray[np.int64]
) -> Iterator[tuple[int, int, slice | npt.NDArray[np.intp]]]:
    """Yield (dy, dx, index) for each distinct pair, index a slice when contiguous."""
    if dy.size == 0:
        return
    y0, x0 = int(dy.min()), int(dx.min())
    span = int(dx.max()) - x0 + 1
    keys = (dy - y0) * span + (dx - x0)
    uniq, inverse = np.unique(keys, return_inverse=True)
    if len(uniq) == 1:
        yield int(dy[0]), int(dx[0]), slice(None)
        return
    inverse = inverse.reshape(-1)
    for k, key in enumerate(uniq.tolist()):
        idx = np.flatnonzero(inverse == k)
        contiguous = idx[-1] - idx[0] + 1 == len(idx)
        yield (
            key // span + y0,
            key % span + x0,
            slice(int(idx[0]), int(idx[-1]) + 1) if contiguous else idx,
        )


def _shift_whole(
    frames: npt.NDArray[Any],
    dy: npt.NDArray[np.int64],
    dx: npt.NDArray[np.int64],
    out_shape: tuple[int, int],
) -> npt.NDArray[Any]:
    """``out[i, y, x] = frames[i, y + dy[i], x + dx[i]]`` (0 outside) for y, x within
    ``out_shape``: one copy per distinct shift.
    """
    n, Y, X = frames.shape
    oy, ox = out_shape
    out = np.zeros((n, oy, ox), frames.dtype)
    for sy, sx, idx in _groups(dy, dx):
        a, b = max(0, -sy), min(oy, Y - sy)
        c, d = max(0, -sx), min(ox, X - sx)
        if a < b and c < d:
            out[idx, a:b, c:d] = frames[idx, a + sy : b + sy, c + sx : d + sx]
    return out


def _shift_bilinear(
    frames: npt.NDArray[Any], dy: npt.NDArray[np.float64], dx: npt.NDArray[np.float64]
) -> npt.NDArray[np.float32]:
    """Whole-pixel part by copying (one row and column more), then the fractional part as
    two linear blends of neighbouring rows and columns (separable bilinear).
    """
    n, Y, X = frames.shape
    iy, ix = np.floor(dy), np.floor(dx)
    fy = (dy - iy).astype(np.float32)[:, None, None]
    fx = (dx - ix).astype(np.float32)[:, None, None]
    whole = _shift_whole(frames, iy.astype(np.int64), ix.astype(np.int64), (Y + 1, X + 1))
    g = whole.astype(np.float32, copy=False)
    if fy.any():  # g[y] + fy · (g[y + 1] − g[y]), in place
        t: npt.NDArray[np.float32] = np.subtract(g[:, 1:], g[:, :Y])
        t *= fy
        t += g[:, :Y]
        g = t
    else:
        g = g[:, :Y]
    if fx.any():
        t = np.subtract(g[:, :, 1:], g[:, :, :X])
        t *= fx
        t += g[:, :, :X]
        return t
    return np.ascontiguousarray(g[:, :, :X])


def _shift_fourier(
    frames: npt.NDArray[Any], dy: npt.NDArray[np.float64], dx: npt.NDArray[np.float64]
) -> npt.NDArray[np.float32]:
    """Multiply the real 2-D FFT by the phase ramp of each frame's shift (all frames in one
    batched transform), then zero the pixels brought in from outside the frame.
    """
    from scipy import fft

    n, Y, X = frames.shape
    spec = fft.rfft2(frames.astype(np.float32, copy=False), axes=(-2, -1), workers=-1)
    ky = fft.fftfreq(Y)
    kx = fft.rfftfreq(X)
    corner = spec[:, Y // 2, -1].copy() if Y % 2 == 0 and X % 2 == 0 else None
    ey = np.exp(2j * np.pi * ky[None, :] * dy[:, None])
    ex = np.exp(2j * np.pi * kx[None, :] * dx[:, None])
    if Y % 2 == 0:  # Nyquist: the real part of the ramp, as a complex FFT taking .real gives
        ey[:, Y // 2] = np.cos(np.pi * dy)
    if X % 2 == 0:
        ex[:, -1] = np.cos(np.pi * dx)
    spec *= ey.astype(np.complex64)[:, :, None]
    spec *= ex.astype(np.complex64)[:, None, :]
    if corner is not None:
        spec[:, Y // 2, -1] = corner * np.cos(np.pi * (dy + dx))
    out: npt.NDArray[np.float32] = fft.irfft2(spec, s=(Y, X), axes=(-2, -1), workers=-1).astype(
        np.float32, copy=False
    )
    src_y = np.arange(Y)[None, :] + dy[:, None]
    src_x = np.arange(X)[None, :] + dx[:, None]
    out *= ((src_y >= -0.5) & (src_y < Y - 0.5))[:, :, None]
    out *= ((src_x >= -0.5) & (src_x < X - 0.5))[:, None, :]
    return out


def correct_bidi(frames: npt.ArrayLike, p: float) -> npt.NDArray[Any]:
    """Bidirectional-scan correction: ``out[..., y, x] = frames[..., y, x + p]`` for odd y
    (1, 3, 5, …), even rows unchanged.

    A whole-pixel ``p`` copies exactly (0 brought in at the edge, same dtype); otherwise the odd
    rows are interpolated linearly along x (0 outside) and the result is float32.  ``p == 0``
    returns ``frames`` itself.
    """
    frames = np.asarray(frames)
    p = float(p)
    if p == 0:
        return frames
    whole = p.is_integer()
    out = frames.copy() if whole else frames.astype(np.float32)
    odd = frames[..., 1::2, :]
    if odd.size:
        out[..., 1::2, :] = apply_shifts(odd, (0.0, p), "integer" if whole else "bilinear")
    return out


def shift_mask(
    mask: npt.ArrayLike, shift: npt.ArrayLike, *, bidi_phase: int = 0
) -> npt.NDArray[Any]:
    """A mask drawn on registered frames, in the coordinates of the raw frame.

    A photon (or pixel value) at raw (y, x) lands at registered (y − dy, x − dx) (after the
    bidirectional correction of odd rows, x − p); so ``m_raw[y, x] = m[y − dy, x − dx]``
    (bidirectional: odd rows then moved by +p), False/0 where that falls outside the frame.

    Parameters
    ----------
    mask : array (..., Y, X)
        Any dtype (bool stays bool); leading axes (several masks or planes) alike.
    shift : (int, int), or a one-element sequence holding a field (2, Y, X)
        Whole-pixel (dy, dx); or a piecewise registration's displacement field rounded to
        whole pixels (:func:`.warping.field_mask`: photons move by the field at their pixel).
    bidi_phase : int
        Whole-pixel bidirectional phase p.
    """
    mask = np.asarray(mask)
    if mask.ndim < 2:
        raise ValueError(f"mask must be (..., Y, X), got shape {mask.shape}")
    if np.size(shift) > 2:  # a field (piecewise registration)
        from .warping import field_mask

        return field_mask(mask, np.asarray(shift).reshape(2, *mask.shape[-2:]), bidi_phase)
    dy, dx = (int(v) for v in np.asarray(shift).reshape(2))
    moved = apply_shifts(mask, (-dy, -dx), "integer")
    return correct_bidi(moved, -int(bidi_phase))


def raw_coordinates(
    y: npt.ArrayLike,
    x: npt.ArrayLike,
    shift: npt.ArrayLike,
    frame_shape: tuple[int, int],
    *,
    bidi_phase: int = 0,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.bool_]]:
    """Raw-frame coordinates of registered pixels (y, x), as :func:`shift_mask` maps them.

    Returns (raw y, raw x, inside): int64 arrays; ``inside`` is False for pixels whose source
    lies outside the frame (no photon can land there).
    """
    Y, X = frame_shape
    dy, dx = (int(v) for v in np.asarray(shift).reshape(2))
    ry = np.asarray(y, np.int64) + dy
    cx = np.asarray(x, np.int64) + dx
    inside = (ry >= 0) & (ry < Y) & (cx >= 0) & (cx < X)
    rx = cx + int(bidi_phase) * (ry % 2 == 1)
    inside &= (rx >= 0) & (rx < X)
    return ry, rx, inside
