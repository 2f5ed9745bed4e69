"""Shifts and bidirectional correction against NumPy slicing and scipy.ndimage references."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from napari_scanimage._core.shifting import (
    apply_shifts,
    correct_bidi,
    raw_coordinates,
    shift_mask,
)

RNG = np.random.default_rng(7)


def shifted_reference(frame: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """``out[y, x] = frame[y + dy, x + dx]``, 0 outside: padding and slicing."""
    Y, X = frame.shape
    pad = max(abs(dy), abs(dx), 1)
    big = np.pad(frame, pad)
    return big[pad + dy : pad + dy + Y, pad + dx : pad + dx + X]


@pytest.mark.parametrize("dtype", ["int16", "uint16", "float32", "bool"])
def test_integer_is_an_exact_copy(dtype):
    frames = (RNG.random((9, 13, 17)) * 1000).astype(dtype)
    shifts = np.array(
        [[0, 0], [3, -2], [-4, 5], [12, 0], [0, -16], [20, 3], [3, -2], [-13, -17], [1.4, -0.6]]
    )
    got = apply_shifts(frames, shifts, "integer")
    assert got.dtype == frames.dtype and got.shape == frames.shape
    for i, (dy, dx) in enumerate(np.round(shifts).astype(int)):
        np.testing.assert_array_equal(got[i], shifted_reference(frames[i], dy, dx))


def test_sign_of_the_convention():
    """Content moved down/right by (dy, dx) comes back to where it was."""
    frame = np.zeros((10, 10), np.int16)
    frame[3, 4] = 1
    moved = np.roll(frame, (2, 3), axis=(0, 1))  # content displaced by (2, 3)
    np.testing.assert_array_equal(apply_shifts(moved[None], [(2, 3)])[0], frame)
    np.testing.assert_allclose(apply_shifts(moved[None], [(2, 3)], "bilinear")[0], frame)
    np.testing.assert_allclose(apply_shifts(moved[None], [(2, 3)], "fourier")[0], frame, atol=1e-5)


def test_leading_axes_broadcast():
    frames = RNG.integers(0, 100, (4, 3, 2, 8, 9)).astype(np.int16)
    shifts = RNG.integers(-3, 4, (4, 3, 1, 2))
    got = apply_shifts(frames, shifts)
    for t in range(4):
        for z in range(3):
            for f in range(2):
                np.testing.assert_array_equal(
                    got[t, z, f], shifted_reference(frames[t, z, f], *shifts[t, z, 0])
                )
    one = apply_shifts(frames, (1, -2))  # one pair for all
    np.testing.assert_array_equal(one[2, 1, 0], shifted_reference(frames[2, 1, 0], 1, -2))


def test_bilinear_equals_ndimage_shift():
    """scipy.ndimage.shift moves content by +shift (``out[o] = in[o - shift]``), so our
    (dy, dx) is its (-dy, -dx); "grid-constant" interpolates against the zero padding as we do,
    "constant" differs only within a pixel of the border.
    """
    frames = RNG.random((6, 21, 26))
    shifts = np.column_stack([RNG.uniform(-5, 5, 6), RNG.uniform(-5, 5, 6)])
    shifts[0] = (0.0, 0.25)
    shifts[1] = (-0.5, 0.0)
    got = apply_shifts(frames, shifts, "bilinear")
    assert got.dtype == np.float32
    for i, (dy, dx) in enumerate(shifts):
        ref = ndimage.shift(frames[i], (-dy, -dx), order=1, mode="grid-constant", cval=0)
        np.testing.assert_allclose(got[i], ref, atol=1e-5)
        ref = ndimage.shift(frames[i], (-dy, -dx), order=1, mode="constant", cval=0)
        np.testing.assert_allclose(got[i, 6:-6, 6:-6], ref[6:-6, 6:-6], atol=1e-5)


@pytest.mark.parametrize("shape", [(20, 24), (19, 24), (20, 23), (17, 15)])
def test_fourier_equals_fourier_shift(shape):
    Y, X = shape
    frames = RNG.random((5, Y, X)).astype(np.float32)
    shifts = np.column_stack([RNG.uniform(-4, 4, 5), RNG.uniform(-4, 4, 5)])
    shifts[0] = (0.5, -0.5)
    got = apply_shifts(frames, shifts, "fourier")
    assert got.dtype == np.float32
    for i, (dy, dx) in enumerate(shifts):
        ref = np.fft.ifft2(ndimage.fourier_shift(np.fft.fft2(frames[i]), (-dy, -dx))).real
        sy, sx = np.arange(Y) + dy, np.arange(X) + dx  # nearest source pixel inside
        inside = ((sy >= -0.5) & (sy < Y - 0.5))[:, None] & ((sx >= -0.5) & (sx < X - 0.5))
        np.testing.assert_allclose(got[i], np.where(inside, ref, 0), atol=1e-4)


def test_fourier_integer_shift_is_a_copy():
    frames = RNG.random((3, 16, 20)).astype(np.float32)
    shifts = np.array([[2, -3], [-1, 0], [0, 4]])
    np.testing.assert_allclose(
        apply_shifts(frames, shifts, "fourier"), apply_shifts(frames, shifts, "integer"), atol=1e-5
    )


def test_correct_bidi_restores_odd_rows():
    truth = (np.arange(12)[:, None] * 100 + np.arange(30)[None, :]).astype(np.int16)
    p = 3
    scanned = truth.copy()
    scanned[1::2, p:] = truth[1::2, :-p]  # odd rows lag by p pixels: corrected[x] = odd[x + p]
    scanned[1::2, :p] = -1
    fixed = correct_bidi(scanned[None], p)[0]
    assert fixed.dtype == np.int16
    np.testing.assert_array_equal(fixed[0::2], truth[0::2])
    np.testing.assert_array_equal(fixed[1::2, :-p], truth[1::2, :-p])
    assert (fixed[1::2, -p:] == 0).all()
    assert correct_bidi(scanned, 0) is scanned
    # sub-pixel: a linear ramp is shifted exactly by linear interpolation
    ramp = np.tile(np.arange(40, dtype=np.float64), (6, 1))
    half = ramp.copy()
    half[1::2] = ramp[1::2] - 1.5  # odd rows lag by 1.5 pixels
    got = correct_bidi(half, 1.5)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got[:, :-2], ramp[:, :-2], atol=1e-5)
    with pytest.raises(ValueError):
        apply_shifts(ramp, (0, 1), "cubic")


@pytest.mark.parametrize("p", [0, 2, -1])
def test_shift_mask_maps_photons(p):
    """A photon at raw (y, x) lands at registered (y − dy, x − dx), x first corrected by p on odd
    rows; it counts for a registered mask exactly when it lies in the raw-coordinate mask.
    """
    Y, X = 14, 18
    mask = RNG.random((Y, X)) < 0.4
    for dy, dx in [(0, 0), (3, -2), (-5, 4), (13, 0), (2, 17)]:
        raw = shift_mask(mask, (dy, dx), bidi_phase=p)
        assert raw.dtype == bool
        yy, xx = np.mgrid[:Y, :X]
        cx = xx - p * (yy % 2 == 1)  # bidi-corrected column, then registered position
        ry, rx = yy - dy, cx - dx
        inside = (cx >= 0) & (cx < X) & (ry >= 0) & (ry < Y) & (rx >= 0) & (rx < X)
        expect = np.zeros((Y, X), bool)
        expect[inside] = mask[ry[inside], rx[inside]]
        np.testing.assert_array_equal(raw, expect)
        # the coordinate form gives the same pixels
        my, mx = np.nonzero(mask)
        gy, gx, ok = raw_coordinates(my, mx, (dy, dx), (Y, X), bidi_phase=p)
        back = np.zeros((Y, X), bool)
        back[gy[ok], gx[ok]] = True
        np.testing.assert_array_equal(back, expect)
    stacked = shift_mask(np.stack([mask, ~mask]), (1, 1), bidi_phase=p)
    np.testing.assert_array_equal(stacked[1], shift_mask(~mask, (1, 1), bidi_phase=p))
