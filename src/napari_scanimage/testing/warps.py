"""Movies moved by known smooth, non-rigid warps: ground truth for piecewise registration.

:func:`warped_movie` renders frames of a textured scene ("cells" on smooth background) whose
content is displaced, in frame t, by a known field ``D[t]`` (2, Y, X) in the registration
convention: ``frame_t[q + D[t](q)] = scene[q]`` — registering frame t with ``D[t]`` gives the
scene back.  ``D[t]`` is a rigid drift plus a sum of two smooth waves across the field of view
whose amplitudes change from frame to frame.  Photon (Poisson) noise and bleaching optional.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import ndimage

__all__ = ["WarpedMovie", "scene", "warped_movie"]


@dataclass(frozen=True)
class WarpedMovie:
    """Frames (n, Y, X) float32, the true displacement (n, 2, Y, X) float32 and the scene
    (Y, X) float32 they were rendered from.
    """

    frames: npt.NDArray[np.float32]
    displacement: npt.NDArray[np.float32]
    scene: npt.NDArray[np.float32]


def scene(shape: tuple[int, int], seed: int = 0, pad: int = 16, mean: float = 100.0) -> np.ndarray:
    """A non-negative texture (Y + 2·pad, X + 2·pad): smooth background and cell-like blobs,
    scaled to ``mean`` on average.
    """
    rng = np.random.default_rng(seed)
    big = (shape[0] + 2 * pad, shape[1] + 2 * pad)
    tex = ndimage.gaussian_filter(rng.normal(size=big), 6) * 30
    tex += ndimage.gaussian_filter(rng.normal(size=big), 1.5) * 6
    cells = np.zeros(big)
    at = rng.integers(0, np.array(big)[:, None], (2, big[0] * big[1] // 250))
    cells[at[0], at[1]] = rng.uniform(200, 600, at.shape[1])
    tex += ndimage.gaussian_filter(cells, 3)
    tex -= tex.min()
    out: np.ndarray = tex * (mean / tex.mean())
    return out


def _field(
    yy: np.ndarray, xx: np.ndarray, rigid: np.ndarray, amp: np.ndarray, waves: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Displacement (dy, dx) at points (yy, xx): rigid + Σ_k amp[k] · sin(k-th wave)."""
    dy = np.full(yy.shape, rigid[0])
    dx = np.full(yy.shape, rigid[1])
    for k, (ky, kx, phase, ay, ax) in enumerate(waves):
        s = np.sin(2 * np.pi * (ky * yy + kx * xx) + phase) * amp[k]
        dy += ay * s
        dx += ax * s
    return dy, dx


def warped_movie(
    n: int,
    shape: tuple[int, int],
    *,
    seed: int = 0,
    rigid_max: float = 5.0,
    field_max: float = 2.5,
    mean_photons: float | None = 100.0,
    bleach: float = 0.0,
    wavelength: tuple[float, float] = (0.7, 1.4),
) -> WarpedMovie:
    """Frames moved by known smooth warps.

    Parameters
    ----------
    n : int
        Frames.
    shape : (int, int)
        Frame (Y, X).
    seed : int
    rigid_max : float
        Largest |dy|, |dx| of the rigid drift (a random walk kept within ±rigid_max).
    field_max : float
        Largest length of the non-rigid part, pixels.
    mean_photons : float or None
        Mean photons per pixel (Poisson noise), or None for noise-free frames.
    bleach : float
        Intensity decay over the movie, e-folds.
    wavelength : (float, float)
        Range of the waves' wavelengths, in frame widths.

    Returns
    -------
    WarpedMovie
    """
    rng = np.random.default_rng(seed)
    Y, X = shape
    pad = int(np.ceil(rigid_max + field_max)) + 8
    tex = scene(shape, seed, pad, mean_photons or 100.0)
    steps = rng.normal(0, rigid_max / 4, (n, 2))
    rigid = np.clip(np.cumsum(steps, axis=0), -rigid_max, rigid_max)
    rigid -= rigid.mean(axis=0)
    rigid = np.clip(rigid, -rigid_max, rigid_max)
    L = float(max(Y, X))
    waves = []
    for _ in range(2):
        length = rng.uniform(*wavelength) * L
        angle = rng.uniform(0, np.pi)
        direction = rng.uniform(0, 2 * np.pi)
        waves.append(
            (
                np.cos(angle) / length,
                np.sin(angle) / length,
                rng.uniform(0, 2 * np.pi),
                np.sin(direction),
                np.cos(direction),
            )
        )
    waves_a = np.array(waves)
    # two waves of 0.9–1 × half the largest length each, either sign: |field| ≤ field_max
    amp = rng.choice([-1.0, 1.0], (n, 2)) * rng.uniform(0.9, 1.0, (n, 2)) * (field_max / 2)
    yy, xx = np.mgrid[:Y, :X].astype(np.float64)
    coeffs = ndimage.spline_filter(tex, order=3, mode="nearest")  # once, not per frame
    frames = np.empty((n, Y, X), np.float32)
    truth = np.empty((n, 2, Y, X), np.float32)
    for t in range(n):
        truth_y, truth_x = _field(yy, xx, rigid[t], amp[t], waves_a)
        truth[t] = truth_y, truth_x
        # raw pixel p shows scene point q with q + D(q) = p: fixed point q = p - D(q)
        qy, qx = yy.copy(), xx.copy()
        for _ in range(5):
            dy, dx = _field(qy, qx, rigid[t], amp[t], waves_a)
            qy, qx = yy - dy, xx - dx
        img = ndimage.map_coordinates(
            coeffs, [qy + pad, qx + pad], order=3, mode="nearest", prefilter=False
        )
        img = np.maximum(img, 0) * np.exp(-bleach * t / max(n, 1))
        if mean_photons is not None:
            img = rng.poisson(img)
        frames[t] = img
    return WarpedMovie(frames, truth, tex[pad : pad + Y, pad : pad + X].astype(np.float32))
