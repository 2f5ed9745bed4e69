"""Phase correlation of frames against a reference: rigid shifts, references, bidirectional phase.

All functions take plain NumPy arrays; only NumPy and SciPy are used.

Sign convention (as in :mod:`.registration`): a shift (dy, dx) is the displacement of a frame's
content relative to the reference (content moved down / right is positive).

Method
------
Frames are made zero-mean and multiplied by an edge taper, transformed with ``scipy.fft.rfft2``
(float32 / complex64, several frames per call), and multiplied by the precomputed conjugate
spectrum of the reference.  Both spectra are whitened (divided by their magnitude), so every
spatial frequency has the same weight, and the product is multiplied by the transform of a
Gaussian of ``smooth_sigma`` pixels: the correlation peak is then a sampled Gaussian, whose
centre a 3-point parabola through the logarithms gives exactly, in y and in x.  The inverse
transform is only computed for the rows within ``max_shift`` of zero, and the correlation is
divided by the overlap of the two tapers at each shift.  Batches of frames run
on a small thread pool (one FFT thread each), so the element-wise steps are parallel too.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import numpy as np
import numpy.typing as npt
from scipy import fft

__all__ = [
    "Correlator",
    "bidi_cross",
    "bidi_peak",
    "bidi_phase",
    "estimate_shifts",
    "find_peaks",
    "make_reference",
    "shift_image",
    "taper",
]

BATCH_BYTES = 32 << 20  # complex spectra held at once by one call (all threads together)
_EPS = 1e-6  # whitening: |spectrum| + _EPS · mean |spectrum|
_F32 = npt.NDArray[np.float32]
_F64 = npt.NDArray[np.float64]
_R = TypeVar("_R")


def taper(shape: tuple[int, int], width: float | None = None) -> _F32:
    """Edge taper (Y, X) float32: 1 inside, a raised-cosine ramp to 0 over ``width`` pixels at
    each edge (default a quarter of each side, at least 1 pixel).

    Wide ramps keep the shared, static frame border from pulling shifts towards zero (the bias
    is under 1 % of the shift for 64-pixel frames and falls with the frame size).
    """
    out = []
    for n in shape:
        w = max(1.0, n / 4 if width is None else float(width))
        w = min(w, n / 2)
        d = np.minimum(np.arange(n) + 0.5, n - 0.5 - np.arange(n))  # distance to the edge
        out.append(np.where(d < w, 0.5 - 0.5 * np.cos(np.pi * d / w), 1.0))
    return np.outer(out[0], out[1]).astype(np.float32)


def _threads(workers: int) -> int:
    n = os.cpu_count() or 1
    return max(1, n + 1 + workers if workers < 0 else workers)


def _gaussian_spectrum(shape: tuple[int, int], sigma: float) -> _F64:
    """rfft2 of a unit-sum Gaussian of ``sigma`` px centred at the origin (real, (Y, X//2+1))."""
    ky = fft.fftfreq(shape[0])[:, None]
    kx = fft.rfftfreq(shape[1])[None, :]
    out: _F64 = np.exp(-2 * np.pi**2 * sigma**2 * (ky**2 + kx**2))
    return out


def _whiten(spec: np.ndarray) -> np.ndarray:
    """Divide complex spectra (n, Y, Xc) by their magnitude, in place."""
    mag = np.abs(spec)
    scale = mag[:, ::4, ::4].mean(axis=(1, 2), keepdims=True)  # a sample is enough
    mag += _EPS * scale + np.finfo(np.float32).tiny
    np.reciprocal(mag, out=mag)
    factor = np.empty(spec.shape, spec.dtype)
    np.copyto(factor, mag)  # complex × complex is faster than complex × real
    spec *= factor
    return spec


class Correlator:
    """Precomputed reference spectrum, windows and bias calibration for one reference image:
    build it once per reference, then :meth:`estimate` any number of frames against it.

    ``calibrate=False`` skips the bias calibration (a few full-frame transforms), for
    intermediate references whose shifts only need to be about right.
    """

    def __init__(
        self, reference: npt.ArrayLike, max_shift: int, sigma: float, calibrate: bool = True
    ) -> None:
        ref = np.asarray(reference, np.float32)
        if ref.ndim != 2:
            raise ValueError(f"reference must be (Y, X), got shape {ref.shape}")
        Y, X = ref.shape
        self.shape = (Y, X)
        self.max_shift = m = int(max(0, min(max_shift, (Y - 3) // 2, (X - 3) // 2)))
        self.window = taper((Y, X))
        spec = fft.rfft2(self._prepare(ref[None]))
        spec = np.conj(_whiten(spec)[0])
        gauss = _gaussian_spectrum((Y, X), sigma) if sigma > 0 else np.ones(spec.shape)
        self.ref_spec = (spec * gauss).astype(np.complex64)
        # the correlation of a frame with itself: the Gaussian's value at 0 (for normalising)
        self.norm = float(fft.irfft2(gauss, s=(Y, X))[0, 0]) if sigma > 0 else 1.0
        offsets = np.arange(-(m + 1), m + 2)
        self.rows = offsets % Y
        self.cols = offsets % X
        # the tapers of frame and reference overlap less as the shift grows, which lowers the
        # correlation away from 0 and pulls peaks towards 0: divide by that overlap (capped, so
        # that noise far out is not amplified when max_shift is large)
        env = []
        for n, w in ((Y, self.window[:, X // 2]), (X, self.window[Y // 2])):
            a = np.array(
                [
                    np.dot(w[max(0, -o) : n - max(0, o)], w[max(0, o) : n - max(0, -o)])
                    for o in offsets
                ]
            )
            env.append(a / a[m + 1])
        self.envelope = np.minimum(1.0 / np.outer(env[0], env[1]), 1.5).astype(np.float32)
        self.calibration = self._calibrate(ref) if calibrate else None

    def _calibrate(self, ref: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]] | None:
        """Measured → true shift along each axis, from copies of the reference moved by known
        amounts (Fourier shift).  The taper both images share still pulls large shifts a little
        towards 0 (a few % of the shift on small frames); this map takes that out.
        """
        m = self.max_shift
        if m < 1:
            return None
        mags = np.unique(np.r_[0.25, 0.5, 0.75, np.geomspace(1, m, max(2, int(np.log2(m)) + 2))])
        true = np.r_[-mags[::-1], 0.0, mags]
        # diagonal moves: the taper is separable, so each axis is measured on the same copies
        moves = np.stack([true, true], axis=1)
        spec = fft.rfft2(ref - ref.mean())
        ry, rx = _phase_ramps(self.shape, moves)
        moved = fft.irfft2(spec[None] * ry * rx, s=self.shape).astype(np.float32)
        measured, _ = self.peaks(moved, True, calibrated=False)
        out = []
        for axis in range(2):
            got = measured[:, axis]
            if np.any(np.diff(got) <= 0):  # not monotonic (a flat reference): no correction
                return None
            out.append((got, true))
        return out

    def unbias(self, shifts: _F64) -> _F64:
        """Measured subpixel shifts (n, 2) → true shifts, by the calibration (in place)."""
        if self.calibration is None:  # nothing measured: shifts as they are
            return shifts
        for axis, (got, true) in enumerate(self.calibration):
            s = shifts[:, axis]
            mapped = np.interp(s, got, true)
            # beyond the calibrated range: keep the gain of its ends
            mapped = np.where(s > got[-1], s * true[-1] / got[-1], mapped)
            mapped = np.where(s < got[0], s * true[0] / got[0], mapped)
            shifts[:, axis] = mapped
        return shifts

    def _prepare(self, frames: np.ndarray) -> np.ndarray:
        """Zero-mean, tapered float32 copies of frames (n, Y, X)."""
        out = np.empty(frames.shape, np.float32)
        step = max(1, min(frames.shape[1:]) // 64)  # the mean of a sample of pixels suffices
        mean = frames[:, ::step, ::step].mean(axis=(1, 2), dtype=np.float64)
        np.subtract(frames, mean[:, None, None].astype(np.float32), out=out, casting="unsafe")
        out *= self.window
        return out

    def correlate(self, frames: np.ndarray, ref_spec: np.ndarray | None = None) -> np.ndarray:
        """Normalised correlation (n, 2m+3, 2m+3) for offsets -(m+1) … m+1 in y and x.

        Parameters
        ----------
        frames : ndarray (n, Y, X)
            Frames of the reference's shape, any real dtype.
        ref_spec : ndarray (k, Y, X//2+1), optional
            Other references' spectra (made like ``self.ref_spec``, of the same shape): frame
            i is then correlated with reference ``i % k`` (blocks of a frame, frame by frame).

        Returns
        -------
        ndarray of float32
            The correlation at each offset, about 1 at the peak of an identical frame.
        """
        spec = fft.rfft2(self._prepare(frames), overwrite_x=True, workers=1)
        _whiten(spec)
        if ref_spec is None:
            spec *= self.ref_spec
        else:
            k = len(ref_spec)
            spec.reshape(-1, k, *spec.shape[1:])[...] *= ref_spec[None]
        spec = fft.ifft(spec, axis=1, overwrite_x=True, workers=1)
        part: _F32 = fft.irfft(spec[:, self.rows], n=self.shape[1], axis=2, workers=1)
        out = part[:, :, self.cols]
        out *= self.envelope * np.float32(1.0 / self.norm)
        return out

    def peaks(
        self, frames: np.ndarray, subpixel: bool, calibrated: bool = True
    ) -> tuple[_F64, _F64]:
        """Shift (n, 2) and peak height (n,) of each frame's correlation with the reference.

        Parameters
        ----------
        frames : ndarray (n, Y, X)
            Frames of the reference's shape.
        subpixel : bool
            Refine the integer peak by a 3-point Gaussian fit in y and x.
        calibrated : bool
            Take out the taper's pull towards 0 (subpixel shifts only).

        Returns
        -------
        shifts, peak : ndarray of float64
            (dy, dx) of each frame relative to the reference, and the peak's height.
        """
        corr = self.correlate(frames)
        shifts, peak = find_peaks(corr, subpixel)
        m = self.max_shift
        if subpixel and calibrated and self.calibration is not None:
            shifts = self.unbias(shifts)
        np.clip(shifts, -m, m, out=shifts)
        return shifts, peak

    def estimate(
        self, frames: npt.ArrayLike, subpixel: bool = True, workers: int = -1
    ) -> tuple[_F64, _F64]:
        """Shifts (N, 2) and peak heights (N,) of frames (N, Y, X) against the reference, in
        batches on ``workers`` threads (see :func:`estimate_shifts`).
        """
        frames = np.asarray(frames)
        if frames.ndim != 3 or frames.shape[1:] != self.shape:
            raise ValueError(
                f"frames must be (N, {self.shape[0]}, {self.shape[1]}), got shape {frames.shape}"
            )
        n = len(frames)
        if n == 0:
            return np.zeros((0, 2)), np.zeros(0)
        Y, X = self.shape
        parts = run_batches(
            lambda s: self.peaks(frames[s], subpixel), n, Y * (X // 2 + 1) * 8, workers
        )
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def find_peaks(corr: np.ndarray, subpixel: bool) -> tuple[_F64, _F64]:
    """Shift (n, 2) and height (n,) of the peak of correlations (n, 2m+3, 2m+3) at offsets
    -(m+1) … m+1: the integer maximum within ±m, refined (``subpixel``) by a 3-point Gaussian
    fit (a parabola through the logarithms) in y and in x.
    """
    n, w = corr.shape[0], corr.shape[1]
    m = (w - 3) // 2
    inner = corr[:, 1:-1, 1:-1].reshape(n, -1)
    flat = inner.argmax(axis=1)
    iy, ix = np.divmod(flat, w - 2)
    iy += 1
    ix += 1
    k = np.arange(n)
    c0 = corr[k, iy, ix].astype(np.float64)
    shifts = np.stack([iy - (m + 1), ix - (m + 1)], axis=1).astype(np.float64)
    peak = c0.copy()
    if subpixel:
        ok = c0 > 0
        floor = np.where(ok, c0 * 1e-6, 1.0)
        gain = np.zeros(n)
        for axis, (a, b) in enumerate((((iy - 1, ix), (iy + 1, ix)), ((iy, ix - 1), (iy, ix + 1)))):
            lm = np.log(np.maximum(corr[k, a[0], a[1]], floor))
            lp = np.log(np.maximum(corr[k, b[0], b[1]], floor))
            l0 = np.log(np.maximum(c0, floor))
            curv = lm - 2 * l0 + lp
            good = ok & (curv < 0)
            d = np.where(good, (lm - lp) / np.where(good, 2 * curv, -1.0), 0.0)
            d = np.clip(d, -0.5, 0.5)
            shifts[:, axis] += d
            gain -= np.where(good, curv, 0.0) * d * d / 2
        peak = np.where(ok, c0 * np.exp(gain), c0)
    return shifts, peak


def _chunks(n: int, per: int) -> list[slice]:
    return [slice(i, min(i + per, n)) for i in range(0, n, per)]


def run_batches(fn: Callable[[slice], _R], n: int, per_frame_bytes: int, workers: int) -> list[_R]:
    """Run ``fn(slice)`` over frames 0…n in batches on ``workers`` threads; results in order."""
    threads = _threads(workers)
    per = max(1, BATCH_BYTES // max(1, per_frame_bytes * threads))
    per = min(per, max(1, math.ceil(n / threads)))  # every thread gets work
    parts = _chunks(n, per)
    if threads == 1 or len(parts) == 1:
        return [fn(s) for s in parts]
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="scanimage-phasecorr") as ex:
        return list(ex.map(fn, parts))


def estimate_shifts(
    frames: npt.ArrayLike,
    reference: npt.ArrayLike,
    *,
    max_shift: float,
    subpixel: bool = True,
    smooth_sigma: float = 1.15,
    workers: int = -1,
) -> tuple[_F64, _F64]:
    """Rigid shift of each frame relative to ``reference`` by phase correlation.

    Parameters
    ----------
    frames : (N, Y, X) or (Y, X) array
        Any real dtype.
    reference : (Y, X) array
    max_shift : float
        Largest |dy|, |dx| searched, in pixels (limited to what the frame size allows).
    subpixel : bool
        Refine the integer peak by a 3-point Gaussian fit in y and x.
    smooth_sigma : float
        Pixels; the Gaussian the whitened correlation is smoothed with (0: none).
    workers : int
        Threads (negative: all CPUs + 1 + workers, as in ``scipy.fft``).

    Returns
    -------
    shifts : float64 (N, 2)
        (dy, dx) displacement of each frame's content relative to the reference.
    peak : float64 (N,)
        Height of the correlation peak, about 1 for a frame equal to the reference up to the
        shift, lower with noise or changed content.
    """
    frames = np.asarray(frames)
    single = frames.ndim == 2
    if single:
        frames = frames[None]
    if frames.ndim != 3:
        raise ValueError(f"frames must be (N, Y, X), got shape {frames.shape}")
    if frames.shape[1:] != np.shape(reference):
        raise ValueError(
            f"frames {frames.shape[1:]} and reference {np.shape(reference)} differ in size"
        )
    if len(frames) == 0:
        return np.zeros((0, 2)), np.zeros(0)
    corr = Correlator(reference, int(math.floor(max_shift)), smooth_sigma)
    shifts, peak = corr.estimate(frames, subpixel, workers)
    return (shifts[0], peak[0]) if single else (shifts, peak)


def _phase_ramps(
    shape: tuple[int, ...], shifts: _F64
) -> tuple[npt.NDArray[np.complex64], npt.NDArray[np.complex64]]:
    """Factors (n, Y, 1) and (n, 1, Xc) that move rfft2 content by ``shifts`` (n, 2)."""
    ky = fft.fftfreq(shape[0])
    kx = fft.rfftfreq(shape[1])
    ry = np.exp(-2j * np.pi * ky[None, :] * shifts[:, :1]).astype(np.complex64)
    rx = np.exp(-2j * np.pi * kx[None, :] * shifts[:, 1:]).astype(np.complex64)
    return ry[:, :, None], rx[:, None, :]


def shift_image(img: npt.ArrayLike, shift: npt.ArrayLike) -> _F32:
    """``img`` (Y, X) with its content moved by ``shift`` = (dy, dx) pixels.

    Subpixel, by a Fourier phase ramp; content wraps around the edges.  float32.
    """
    img = np.asarray(img, np.float32)
    ry, rx = _phase_ramps(img.shape, np.asarray(shift, np.float64).reshape(1, 2))
    spec = fft.rfft2(img)
    spec *= ry[0]
    spec *= rx[0]
    moved: _F32 = fft.irfft2(spec, s=img.shape).astype(np.float32)
    return moved


def _coverage(n: int, shift: _F64) -> tuple[npt.NDArray[np.intp], _F64]:
    """Whole part and the two weights of a 1-D bilinear move of each frame by ``shift`` (n,)."""
    whole = np.floor(shift)
    frac = shift - whole
    return whole.astype(np.intp), np.stack([1 - frac, frac], axis=1)


def _aligned_mean(frames: np.ndarray, shifts: _F64, bilinear: bool = True) -> _F32:
    """Mean of frames (n, Y, X) each moved back by its shift (n, 2) (bilinear, else to the
    nearest whole pixel); pixels brought in from outside a frame are left out, so each pixel
    averages the frames that cover it.

    The moved frames are never made: each frame's (up to 4) weighted whole-pixel copies are
    added into one sum, and the coverage, separable, is a product of 1-D coverages.
    """
    n, Y, X = frames.shape
    if not bilinear:
        shifts = np.round(shifts)
    iy, wy = _coverage(n, shifts[:, 0])
    ix, wx = _coverage(n, shifts[:, 1])
    total = np.zeros((Y, X), np.float32)
    cov_y = np.zeros((n, Y))
    cov_x = np.zeros((n, X))
    tmp = np.empty((Y, X), np.float32)
    for i in range(n):
        for a in (0, 1):
            if wy[i, a] == 0:
                continue
            sy = int(iy[i]) + a  # registered[y] takes frame[y + sy]
            y0, y1 = max(0, -sy), min(Y, Y - sy)
            if y0 >= y1:
                continue
            cov_y[i, y0:y1] += wy[i, a]
            for b in (0, 1):
                if wx[i, b] == 0:
                    continue
                sx = int(ix[i]) + b
                x0, x1 = max(0, -sx), min(X, X - sx)
                if x0 >= x1:
                    continue
                if a == 0:
                    cov_x[i, x0:x1] += wx[i, b]
                part = tmp[y0:y1, x0:x1]
                np.multiply(
                    frames[i, y0 + sy : y1 + sy, x0 + sx : x1 + sx],
                    np.float32(wy[i, a] * wx[i, b]),
                    out=part,
                    casting="unsafe",
                )
                total[y0:y1, x0:x1] += part
    count = cov_y.T @ cov_x  # Σ_i cov_y[i, y] · cov_x[i, x]
    plain = frames.mean(axis=0, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(count > 0.5, total / count, plain)
    return out.astype(np.float32)


def _binned(frames: np.ndarray, target: int = 64) -> _F32:
    """Frames block-averaged so the longer side is about ``target`` px, flattened (N, P)."""
    n, Y, X = frames.shape
    f = max(1, max(Y, X) // target)
    Yb, Xb = Y // f, X // f
    # two sums over contiguous axes (one mean over two strided axes is several times slower)
    rows = frames[:, : Yb * f, : Xb * f].reshape(n, Yb, f, Xb * f).sum(axis=2, dtype=np.float32)
    small: _F32 = rows.reshape(n, Yb, Xb, f).sum(axis=3) / np.float32(f * f)
    return small.reshape(n, -1)


def make_reference(
    frames: npt.ArrayLike,
    *,
    n_iter: int = 3,
    keep: float = 0.5,
    n_seed: int = 20,
    max_shift: float | None = None,
    smooth_sigma: float = 1.15,
    workers: int = -1,
    n_coarse: int = 64,
) -> _F32:
    """Reference image (Y, X) float32 from frames (N, Y, X) of one plane.

    The start is the mean of the ``n_seed`` frames most alike: the frame whose ``n_seed`` best
    pixel correlations (on block-averaged frames) are highest, and those frames.  Each of
    ``n_iter`` rounds then registers frames to the current reference and averages the
    ``keep`` fraction that correlates best, moved to the median position of all frames.  The
    rounds before the last use ``n_coarse`` frames spread over the N and whole-pixel moves
    (they only need to bring the reference near its final position); the last uses every
    frame and bilinear moves (each pixel over the frames that cover it).
    """
    frames = np.asarray(frames)
    if frames.ndim != 3 or len(frames) == 0:
        raise ValueError(f"frames must be (N, Y, X) with N ≥ 1, got shape {frames.shape}")
    n, Y, X = frames.shape
    if max_shift is None:
        max_shift = max(1, round(0.1 * min(Y, X)))
    small = _binned(frames)
    small -= small.mean(axis=1, keepdims=True)
    small /= np.linalg.norm(small, axis=1, keepdims=True) + 1e-12
    cc = small @ small.T
    k = min(n_seed, n)
    best = int(np.argmax(np.sort(cc, axis=1)[:, -k:].mean(axis=1)))
    seeds = np.sort(np.argsort(cc[best])[-k:])
    ref: _F32 = frames[seeds].mean(axis=0, dtype=np.float64).astype(np.float32)
    coarse = np.unique(np.round(np.linspace(0, n - 1, min(n, max(1, n_coarse))))).astype(np.intp)
    for it in range(n_iter):
        last = it == n_iter - 1
        subset = frames if last else frames[coarse]
        # (no bias calibration: these shifts only place frames for the mean)
        corr = Correlator(ref, int(math.floor(max_shift)), smooth_sigma, calibrate=False)
        shifts, peak = corr.estimate(subset, True, workers)
        n_keep = max(1, int(math.ceil(keep * len(subset))))
        chosen = np.sort(np.argsort(-peak, kind="stable")[:n_keep])
        # moved, in one interpolation, to the median position of all frames: shifts relative
        # to the reference then stay small on both sides (within max_shift)
        centre = np.median(shifts, axis=0)
        ref = _aligned_mean(subset[chosen], shifts[chosen] - centre, bilinear=last)
    return ref


# -- bidirectional scanning ---------------------------------------------------------------
def bidi_cross(frames: npt.ArrayLike, workers: int = -1) -> npt.NDArray[np.complex128]:
    """Sum over frames and row pairs of the whitened cross-power spectrum along x of odd rows
    against the even rows above them, complex128 (X//2+1,).
    """
    frames = np.asarray(frames)
    if frames.ndim == 2:
        frames = frames[None]
    n, Y, X = frames.shape
    h = Y // 2
    window = taper((1, X))[0]
    if h == 0 or n == 0:
        return np.zeros(X // 2 + 1, np.complex128)

    def part(s: slice) -> npt.NDArray[np.complex128]:
        spec = []
        for rows in (slice(0, 2 * h, 2), slice(1, 2 * h, 2)):
            a = frames[s, rows].astype(np.float32)
            a -= a.mean(axis=2, keepdims=True)
            a *= window
            spec.append(fft.rfft(a, axis=2, workers=1))
        cross = spec[1] * np.conj(spec[0])
        mag = np.abs(cross)
        mag += _EPS * mag.mean() + np.finfo(np.float32).tiny
        cross /= mag
        total: npt.NDArray[np.complex128] = cross.sum(axis=(0, 1), dtype=np.complex128)
        return total

    parts = run_batches(part, n, Y * (X // 2 + 1) * 8, workers)
    return sum(parts[1:], parts[0])  # parts[0] + parts[1] + …


def bidi_peak(
    cross: npt.NDArray[np.complexfloating], X: int, max_offset: int, sigma: float = 1.15
) -> float:
    """Subpixel bidirectional phase (pixels, within ``max_offset``) at the peak of the
    inverse transform of :func:`bidi_cross`'s spectrum for rows of ``X`` pixels.
    """
    m = int(max(0, min(max_offset, (X - 3) // 2)))
    if m == 0 or not np.any(cross):
        return 0.0
    kx = fft.rfftfreq(X)
    c = fft.irfft(cross * np.exp(-2 * np.pi**2 * sigma**2 * kx**2), n=X)
    idx = np.arange(-(m + 1), m + 2) % X
    win = c[idx]
    i = int(np.argmax(win[1:-1])) + 1
    c0, cm, cp = win[i], win[i - 1], win[i + 1]
    p = float(i - (m + 1))
    if c0 > 0:
        lm, l0, lp = np.log(np.maximum([cm, c0, cp], c0 * 1e-6))
        curv = lm - 2 * l0 + lp
        if curv < 0:
            p += float(np.clip((lm - lp) / (2 * curv), -0.5, 0.5))
    return p


def bidi_phase(frames: npt.ArrayLike, max_offset: int = 10, workers: int = -1) -> float:
    """Offset p along x of the odd rows' content relative to the even rows (rows 1, 3, 5, …
    counted from 0), in pixels, searched within ±``max_offset``; :func:`correct_bidi` with p
    removes it: ``corrected_odd_row[x] = odd_row[x + p]``.

    Estimated by phase correlation along x of each odd row with the even row above it
    (whitened cross-power averaged over rows and frames), integer peak refined by a 3-point fit.
    """
    frames = np.asarray(frames)
    return bidi_peak(bidi_cross(frames, workers), frames.shape[-1], max_offset)
