"""Plotting a phasor image: plot bounds, the universal semicircle and its lifetime ticks, a
photon-weighted 2-D histogram, the census of where every pixel went, and cursor labels.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
from phasorpy.lifetime import phasor_from_lifetime

if TYPE_CHECKING:
    from .phasor import PhasorImage

__all__ = [
    "SEMICIRCLE_TOLERANCE",
    "semicircle_distance",
    "lifetime_ticks",
    "phasor_bounds",
    "PhasorCensus",
    "phasor_census",
    "phasor_histogram",
    "cursor_labels",
]

_F64 = npt.NDArray[np.float64]
Bounds = tuple[float, float, float, float]  # (g0, g1, s0, s1) of a plot

SEMICIRCLE_TOLERANCE = 0.05  # phasor units: a pixel this close to the semicircle counts on it


def semicircle_distance(g: npt.ArrayLike, s: npt.ArrayLike) -> _F64:
    """Signed distance of phasors from the universal semicircle: < 0 inside, > 0 outside
    (|z − ½| − ½; points below the g axis are outside).
    """
    g, s = np.asarray(g, np.float64), np.asarray(s, np.float64)
    d: _F64 = np.hypot(g - 0.5, s) - 0.5
    return np.where(s < 0, np.maximum(d, -s), d)


def lifetime_ticks(
    frequency_mhz: float, taus_ns: npt.ArrayLike = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0)
) -> tuple[_F64, _F64, _F64]:
    """(taus, g, s): where single lifetimes ``taus_ns`` lie on the universal semicircle at
    ``frequency_mhz`` (include the harmonic), by phasorpy's ``phasor_from_lifetime``.
    """
    taus = np.asarray(taus_ns, np.float64)
    g, s = phasor_from_lifetime(float(frequency_mhz), taus)
    return taus, np.asarray(g, np.float64), np.asarray(s, np.float64)


def phasor_bounds(g: npt.ArrayLike, s: npt.ArrayLike, *, limit: float = 1.5) -> Bounds:
    """(g0, g1, s0, s1) of a plot showing the whole universal semicircle and every finite
    phasor up to ``limit`` in each coordinate (calibration can push noisy pixels far out).
    """
    g, s = np.asarray(g, np.float64), np.asarray(s, np.float64)
    box = [-0.05, 1.05, -0.05, 0.6]
    ok = np.isfinite(g) & np.isfinite(s)
    if ok.any():
        gi = np.clip(g[ok], -limit, limit)
        si = np.clip(s[ok], -limit, limit)
        pad = 0.02
        box = [
            min(box[0], float(gi.min()) - pad),
            max(box[1], float(gi.max()) + pad),
            min(box[2], float(si.min()) - pad),
            max(box[3], float(si.max()) + pad),
        ]
    g0, g1, s0, s1 = (float(np.clip(v, -limit, limit)) for v in box)
    return g0, g1, s0, s1


@dataclass(frozen=True)
class PhasorCensus:
    """Where every pixel of a phasor image went (see :func:`phasor_census`).

    Attributes
    ----------
    pixels : int
        All pixels.
    no_photons : int
        Pixels without photons inside the laser period (no phasor: NaN).
    below_threshold : int
        Pixels with photons but fewer than the threshold.
    undefined : int
        Other pixels without a finite phasor (e.g. NaN after calibration).
    outside_plot : int
        Finite phasors outside the plotted bounds.
    plotted : int
        Pixels drawn in the plot.
    on_semicircle : int
        Plotted pixels inside the universal semicircle or within ``tolerance`` of it.
    tolerance : float
    """

    pixels: int
    no_photons: int
    below_threshold: int
    undefined: int
    outside_plot: int
    plotted: int
    on_semicircle: int
    tolerance: float

    @property
    def semicircle_fraction(self) -> float:
        """Share of the plotted pixels on or inside the semicircle (± tolerance); NaN if none."""
        return self.on_semicircle / self.plotted if self.plotted else math.nan

    def describe(self) -> str:
        """One line: plotted pixels and what was left out, by reason."""
        share = (
            ""
            if not self.plotted
            else f", {100 * self.semicircle_fraction:.1f} % on/inside the semicircle"
        )
        return (
            f"{self.plotted} / {self.pixels} pixels plotted{share}; left out: "
            f"{self.below_threshold} below the photon threshold, {self.no_photons} without "
            f"photons (NaN), {self.undefined} other NaN, {self.outside_plot} outside the plot"
        )


def phasor_census(
    image: PhasorImage, bounds: Bounds | None = None, *, tolerance: float = SEMICIRCLE_TOLERANCE
) -> PhasorCensus:
    """Count the pixels of ``image`` by what happens to them in a plot over ``bounds``
    ((g0, g1, s0, s1), default :func:`phasor_bounds`).
    """
    mean = np.asarray(image.mean, np.float64)
    g, s = np.asarray(image.g, np.float64), np.asarray(image.s, np.float64)
    bounds = phasor_bounds(g, s) if bounds is None else bounds
    finite = np.isfinite(g) & np.isfinite(s)
    empty = ~(mean > 0)
    below = ~finite & ~empty & (mean < image.threshold)
    g0, g1, s0, s1 = bounds
    shown = finite & (g >= g0) & (g <= g1) & (s >= s0) & (s <= s1)
    near = shown & (semicircle_distance(g, s) <= tolerance)
    return PhasorCensus(
        int(mean.size),
        int((empty & ~finite).sum()),
        int(below.sum()),
        int((~finite & ~empty & ~below).sum()),
        int((finite & ~shown).sum()),
        int(shown.sum()),
        int(near.sum()),
        float(tolerance),
    )


def phasor_histogram(image: PhasorImage, bounds: Bounds, cells: int = 200) -> _F64:
    """Photon-weighted 2-D histogram (g along axis 0, s along axis 1) of the finite phasors over
    ``bounds`` (g0, g1, s0, s1) with square cells: ``cells`` along the longer side.
    """
    g0, g1, s0, s1 = bounds
    step = max(g1 - g0, s1 - s0) / int(cells)
    ng, ns = max(1, round((g1 - g0) / step)), max(1, round((s1 - s0) / step))
    g, s, w = (np.asarray(a, np.float64).ravel() for a in (image.g, image.s, image.mean))
    ok = np.isfinite(g) & np.isfinite(s)
    hist, _, _ = np.histogram2d(
        g[ok], s[ok], bins=(ng, ns), range=((g0, g1), (s0, s1)), weights=w[ok]
    )
    return hist


def cursor_labels(
    image: PhasorImage, cursors: Sequence[tuple[float, float, float]]
) -> npt.NDArray[np.int32]:
    """Labels (same shape as the image): k + 1 where a pixel's phasor lies within cursor k
    ((g, s, radius)); the first matching cursor wins; 0 elsewhere and where there is no phasor.
    """
    g, s = np.asarray(image.g), np.asarray(image.s)
    out = np.zeros(g.shape, np.int32)
    valid = np.isfinite(g) & np.isfinite(s)
    for k, (cg, cs, r) in enumerate(cursors):
        inside = valid & ((g - cg) ** 2 + (s - cs) ** 2 <= r * r) & (out == 0)
        out[inside] = k + 1
    return out
