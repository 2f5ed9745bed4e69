"""The photon model behind the synthetic `.siff` writer (docs/formats.md §2): arrival times
from a periodic multi-exponential decay convolved with a Gaussian instrument response, photons
placed by smooth rate maps, drawn in vectorised blocks of pages.

ex_gauss_cdf, bin_probabilities
    The arrival-time distribution (exponential ⊗ Gaussian, summed over laser periods).
rate_maps, alias_table
    Where photons land (smooth per-channel maps) and fast sampling from them.
channel_models, rate_photons, block_photons
    Per-channel lifetimes and fractions, photon counts per page, and the photons of a block.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import special

__all__ = [
    "LATE_SPAN",
    "alias_table",
    "bin_probabilities",
    "block_photons",
    "channel_models",
    "ex_gauss_cdf",
    "rate_maps",
    "rate_photons",
]

LATE_SPAN = 40  # late photons have tau in [num_bins, num_bins + LATE_SPAN)


def ex_gauss_cdf(x: np.ndarray, mu: float, sigma: float, tau: float) -> np.ndarray:
    """CDF of Gaussian(mu, sigma) + Exponential(tau), stable for all x."""
    lam = 1.0 / tau
    if sigma == 0:
        return np.where(x >= mu, -np.expm1(-lam * np.maximum(x - mu, 0.0)), 0.0)
    z = (x - mu) / sigma
    tail = np.exp(-lam * (x - mu) + 0.5 * (lam * sigma) ** 2 + special.log_ndtr(z - lam * sigma))
    cdf: npt.NDArray[np.float64] = special.ndtr(z) - tail  # (scipy is untyped)
    return cdf


def bin_probabilities(
    taus_ps: Sequence[float],
    fractions: Sequence[float],
    mu: float,
    sigma: float,
    period: float,
    width: float,
    length: int,
) -> np.ndarray:
    """Probability of arrival bins 0..length-1 of the periodic mixture (model:
    docs/formats.md §2).
    """
    edges = np.minimum(np.arange(length + 1) * width, period)
    out = np.zeros(length)
    k0 = -math.ceil(max(0.0, 12 * sigma - mu) / period) - 1
    for tau, frac in zip(taus_ps, fractions, strict=True):
        k1 = math.ceil((mu + 12 * sigma + 45 * tau) / period) + 1
        for k in range(k0, k1 + 1):
            out += frac * np.diff(ex_gauss_cdf(edges + k * period, mu, sigma, tau))
    return np.maximum(out, 0.0)


def rate_maps(channels: int, height: int, width: int, seed: int) -> np.ndarray:
    """(C, Y, X) smooth maps (a few Gaussian blobs on a dim background), each summing to 1."""
    rng = np.random.default_rng([seed, 0x51FF])
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    maps = np.empty((channels, height, width))
    for c in range(channels):
        m = np.full((height, width), 0.15)
        for _ in range(5):
            cy, cx = rng.uniform(0.25, 0.75, 2) * (height - 1, width - 1)
            s = max(1.0, rng.uniform(0.04, 0.1) * min(height, width))
            m += rng.uniform(0.5, 1.5) * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * s * s))
        maps[c] = m / m.sum()
    return maps


def alias_table(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Vose alias table (acceptance probability, alias) of the distribution ``p``."""
    n = p.size
    q = (p * (n / p.sum())).tolist()
    prob, alias = [1.0] * n, list(range(n))
    small = [i for i, v in enumerate(q) if v < 1.0]
    large = [i for i, v in enumerate(q) if v >= 1.0]
    while small and large:
        s, lg = small.pop(), large[-1]
        prob[s], alias[s] = q[s], lg
        q[lg] -= 1.0 - q[s]
        if q[lg] < 1.0:
            small.append(large.pop())
    return np.array(prob), np.array(alias, np.int64)


def channel_models(
    C: int, taus_ns: Sequence[Sequence[float]], fractions: Sequence[Sequence[float]]
) -> tuple[tuple[tuple[float, ...], ...], tuple[tuple[float, ...], ...]]:
    """Per-channel (recycled) lifetimes and normalised fractions, validated."""
    taus: list[tuple[float, ...]] = []
    fracs: list[tuple[float, ...]] = []
    for c in range(C):
        t = tuple(map(float, taus_ns[c % len(taus_ns)]))
        f = (1.0,) if len(t) == 1 else tuple(map(float, fractions[c % len(fractions)]))
        if not t or len(f) != len(t) or min(t) <= 0 or min(f) < 0 or sum(f) <= 0:
            raise ValueError(f"channel {c}: need taus > 0, one fraction >= 0 each: {t}, {f}")
        taus.append(t)
        fracs.append(tuple(v / sum(f) for v in f))
    return tuple(taus), tuple(fracs)


def rate_photons(rng: np.random.Generator, rate_map: Callable[[int], np.ndarray],
                  pages: np.ndarray, active: np.ndarray, H: int, W: int,
                  ) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Photons of each page and pixel of each photon (raster order in a page), Poisson with mean
    ``rate_map(g)`` per pixel: one unit-rate Poisson process along the pages' cumulative rate.
    """
    npix = H * W
    maps = np.zeros((pages.size, npix))
    for i in np.flatnonzero(active):
        mp = np.asarray(rate_map(int(pages[i])), np.float64)
        if mp.shape != (H, W) or not np.isfinite(mp).all() or mp.min(initial=0.0) < 0:
            raise ValueError(f"rate_map({pages[i]}) must be a finite, >= 0 map of shape {H, W}")
        maps[i] = mp.ravel()
    cum = np.cumsum(maps.ravel())
    total = float(cum[-1])
    pts = np.cumsum(rng.standard_exponential(int(total + 6 * math.sqrt(total)) + 16))
    while pts[-1] < total:  # rarely: extend the process
        pts = np.concatenate([pts, pts[-1] + np.cumsum(rng.standard_exponential(1 << 12))])
    idx = np.searchsorted(cum, pts[pts < total], side="right")  # cum[idx-1] <= pt < cum[idx]
    return np.bincount(idx // npix, minlength=pages.size), idx % npix


def block_photons(rng: np.random.Generator, m: dict[str, Any], g0: int, N: np.ndarray,
                   n_norm: np.ndarray, late: np.ndarray, pix_in: np.ndarray | None,
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:  # fmt: skip
    """Pixel index and arrival bin of every photon of pages g0.. (page-major, arrival order),
    and with a lifetime map the (C*K,) counts of non-late photons per channel and lifetime.
    """
    C, H, W, npix, K = m["C"], m["H"], m["W"], m["H"] * m["W"], m["K"]
    total, starts = int(N.sum()), np.cumsum(N) - N
    ph_c = np.repeat((np.arange(N.size) + g0) % C, N)
    normal = None  # photons before each page's late ones (None: all)
    if late.any():
        normal = np.arange(total) - np.repeat(starts, N) < np.repeat(n_norm, N)
    if pix_in is None:
        u = rng.random(total) * npix  # alias sampling of the pixel
        k = np.minimum(u.astype(np.int64), npix - 1)
        idx = ph_c * npix + k
        pix = np.where(u - k < m["prob"][idx], k, m["alias"][idx])
    elif normal is not None:  # rate maps; late photons in any pixel
        pix = rng.integers(0, npix, total)
        pix[normal] = pix_in
    else:
        pix = pix_in
    pix0 = pix  # the lifetime map moves with the pattern
    if m["motion"] is not None:
        shift = m["motion"][np.arange(g0, g0 + N.size) // m["ppv"]]
        y, x = np.divmod(pix, W)
        pix = (y + np.repeat(shift[:, 0], N)) % H * W + (x + np.repeat(shift[:, 1], N)) % W
    time = rng.standard_exponential(total, np.float32)  # float32: ~1e-3 ps resolution
    ncomp = None
    if m["lmap"] is not None:  # a channel with fewer lifetimes uses its last one
        comp = ph_c * K + np.minimum(m["lmap"][pix0], m["last"][ph_c])
        ncomp = np.bincount(comp if normal is None else comp[normal], minlength=C * K)
    else:
        comp, u = ph_c * K, rng.random(total, np.float32) if K > 1 else None
        for j in range(K - 1):  # lifetime component of each photon
            comp += u >= m["cum"][:, j][ph_c]
    time *= m["tau_ps"][comp]
    irf = rng.standard_normal(total, np.float32)  # Gaussian IRF
    irf *= m["irf"][1]
    time += irf
    time += m["irf"][0]
    time *= 1.0 / m["period"]  # periodic: keep the fraction of a laser period
    time -= np.floor(time)
    time *= m["period"] / m["bw"]
    tau = np.minimum(time.astype(np.uint32), m["n_period"] - 1)
    for i in np.flatnonzero(late):  # late photons, shuffled into their page
        a, b = int(starts[i]), int(starts[i] + N[i])
        tau[a + int(n_norm[i]) : b] = m["num_bins"] + rng.integers(0, LATE_SPAN, int(late[i]))
        perm = a + rng.permutation(b - a)
        pix[a:b], tau[a:b] = pix[perm], tau[perm]
    return pix, tau, ncomp
