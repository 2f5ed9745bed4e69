"""Per-pixel arrival-time histograms, phasor images and lifetime images of `.siff` recordings.

Times and phases
----------------
Bin ``k`` covers arrival times ``[k, k + 1) · bin_width`` after the laser sync.  The phasor at
harmonic ``h`` of the laser frequency ``f = 1 / period`` gives each bin the phase
``2π h f t_k`` of its centre ``t_k`` (the last bin of a period is cut at the period when the
period is not a whole number of bins), so the bin count per period always comes from the
file's period and bin width.  Averaging over a bin of width ``b`` scales the modulation by
``sinc(π h f b)`` (1 − 4·10⁻⁶ for 20 ps bins at 80 MHz); that factor is left in, like every
instrument effect, for the calibration to remove.

Bins beyond the laser period
----------------------------
Photons may arrive at bins at or after the period (the last ``Tau_bins`` bins past it, or
corrupt/late records).  ``beyond_period`` says what happens to them:

``"keep"``  (histograms only) kept where they are: the histograms are as long as the latest
            arrival seen (at least ``Tau_bins``), never wrapped, as :meth:`Dataset.histogram`.
``"drop"``  discarded (counted in :attr:`PixelHistograms.dropped`); the default of the phasor.
``"wrap"``  folded back into the period: bin ``k`` goes to the bin holding
            ``(k + ½) · bin_width mod period`` (exact when the period is a whole number of
            bins), i.e. the photon is taken as belonging to the next pulse.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from numba import njit
from phasorpy.component import phasor_component_fraction
from phasorpy.lifetime import (
    phasor_from_lifetime,
    phasor_to_apparent_lifetime,
    polar_from_reference_phasor,
)
from phasorpy.phasor import (
    phasor_filter_median,
    phasor_from_signal,
    phasor_threshold,
    phasor_transform,
)

from .._core.layout import Selection, time_rows
from ..errors import SelectionError
from .decay import DecayFit

__all__ = ["PixelHistograms", "PhasorImage", "Reference", "pixel_histograms",
           "histogram_phasor", "phasor_image", "calibrate_with_reference",
           "calibrate_with_fit", "apparent_lifetimes", "fraction_image", "lifetime_image",
           "intensity_modulated", "turbo", "cursor_labels", "PhasorCensus", "filter_phasor",
           "phasor_census", "phasor_bounds", "phasor_histogram", "mean_phasor",
           "semicircle_distance", "lifetime_ticks"]

_MODES = ("keep", "drop", "wrap")
_KEEP, _DROP, _WRAP = 0, 1, 2


@dataclass(frozen=True)
class PixelHistograms:
    """Per-pixel arrival-time histograms (see :func:`pixel_histograms`).

    Attributes
    ----------
    counts : uint32 (Y, X, L) or (Z, Y, X, L)
        Photons per pixel and (coarse) bin.
    bin_width_ps : float
        Width of one (coarse) bin: file bin width × ``bin_factor``.
    laser_period_ps : float or None
    beyond_period : str
        How bins past the period were handled (module docstring).
    dropped : int
        Photons discarded: past the period with ``"drop"``, or moved out of the frame by the
        registration.
    """

    counts: np.ndarray
    bin_width_ps: float
    laser_period_ps: float | None
    beyond_period: str
    dropped: int


@dataclass(frozen=True)
class PhasorImage:
    """Phasor coordinates of every pixel (see :func:`phasor_image`).

    Attributes
    ----------
    mean : float64 (Y, X) or (Z, Y, X)
        Photons of each pixel inside the laser period (the phasor's zero harmonic as a count).
    g, s : float64, same shape
        Real and imaginary phasor coordinates; NaN where ``mean < min_photons``.
    frequency_mhz : float
        Laser frequency (the harmonic is not included).
    harmonic : int
    calibration : str
        ``"none"``, ``"reference"`` or ``"fit"``.
    threshold : float
        Photons a pixel needs for a phasor (g, s NaN below; :func:`filter_phasor`).
    median : tuple of int
        (size, repeat) of the median filter applied to g and s; (0, 0) unfiltered.
    """

    mean: np.ndarray
    g: np.ndarray
    s: np.ndarray
    frequency_mhz: float
    harmonic: int
    calibration: str = "none"
    threshold: float = 0.0
    median: tuple[int, int] = (0, 0)

    def apparent_lifetimes(self) -> tuple[np.ndarray, np.ndarray]:
        """Phase and modulation lifetimes (ns); meaningful once calibrated."""
        return apparent_lifetimes(self.g, self.s, self.frequency_mhz * self.harmonic)

    def fraction(self, tau1_ns: float, tau2_ns: float) -> np.ndarray:
        """Photon fraction of the ``tau1_ns`` component (see :func:`fraction_image`)."""
        return fraction_image(self.g, self.s, tau1_ns, tau2_ns,
                              self.frequency_mhz * self.harmonic)


class Reference(NamedTuple):
    """Calibration by a reference of known single lifetime measured with the same settings:
    its pooled arrival-time ``histogram`` (1-D, the file's bins) and lifetime ``tau_ns``."""

    histogram: np.ndarray
    tau_ns: float


# -- per-pixel histograms ---------------------------------------------------------------------
@njit(nogil=True, cache=True)
def _accumulate(out, z, y, x, tau, dy, dx, bidi, mode, n_period, bin_ps, period_ps, factor):
    """Add photons (y, x, tau) of one raw frame to ``out[z]`` (flat pixels × bins), moving each
    to registered coordinates (y - dy, x - dx - bidi·(y odd)).  Returns the photons dropped."""
    height, width = out.shape[1], out.shape[2]
    length = out.shape[3]
    dropped = 0
    hist = out[z]
    for j in range(tau.shape[0]):
        ry = y[j]
        yy = ry - dy
        xx = x[j] - dx - (bidi if ry % 2 == 1 else 0)
        if yy < 0 or yy >= height or xx < 0 or xx >= width:
            dropped += 1
            continue
        k = tau[j]
        if k >= n_period:
            if mode == _DROP:
                dropped += 1
                continue
            if mode == _WRAP:
                k = np.int64(math.floor(((k + 0.5) * bin_ps % period_ps) / bin_ps))
                if k >= n_period:
                    k = n_period - 1
        b = k // factor
        if b >= length:  # caller sized the histograms for the latest arrival
            dropped += 1
            continue
        hist[yy, xx, b] += 1
    return dropped


def _period_bins(bin_ps: float, period_ps: float | None) -> int:
    """Bins starting inside one laser period."""
    return math.ceil(period_ps / bin_ps - 1e-9)


def _pages(dataset, channel, times, plane):
    """(n, Zs, F) pages, their time rows, and the plane number of each Zs position."""
    sel = Selection.make(dataset.layout, dataset.channel_index(channel), plane, "axis")
    rows = time_rows(times, dataset.layout.num_volumes)
    planes = (np.arange(dataset.layout.num_planes) if sel.plane is None
              else np.array([sel.plane]))
    return sel.pages_at(dataset.layout, rows), rows, planes


def _photon_pages(dataset, channel, times, plane, registration):
    """Yield (output plane, dy, dx, bidi, y, x, tau) for every selected page."""
    pages, rows, planes = _pages(dataset, channel, times, plane)
    n, Zs, F = pages.shape
    if registration is not None:
        registration.check_fits(dataset.layout.num_volumes, dataset.layout.num_planes,
                                dataset.spec.frame_shape)
        shifts = np.round(registration.shifts[rows][:, planes]).astype(np.int64)
        bidi = int(np.round(registration.bidi_phase))
    else:
        shifts, bidi = np.zeros((n, Zs, 2), np.int64), 0
    zs = np.broadcast_to(np.arange(Zs)[None, :, None], pages.shape).reshape(-1)
    ts = np.broadcast_to(np.arange(n)[:, None, None], pages.shape).reshape(-1)
    for reader, local, sel in dataset.spec.by_file(pages.reshape(-1)):
        for page, at in zip(local.tolist(), sel.tolist(), strict=True):
            y, x, tau = reader.photons(page)
            dy, dx = shifts[ts[at], zs[at]].tolist()
            yield int(zs[at]), dy, dx, bidi, y, x, tau


def pixel_histograms(dataset, channel: int | str = 0, *, times=None, plane: int | None = None,
                     registration=None, bin_factor: int = 1,
                     beyond_period: str = "keep") -> PixelHistograms:
    """Arrival-time histogram of every pixel, pooled over the selected time samples.

    Parameters
    ----------
    dataset : Dataset
        A `.siff` recording.
    channel : int or str
    times : slice or sequence of int, optional
        Time samples (volumes); default all.  Every frames-per-slice sample is pooled.
    plane : int, optional
        One plane (output (Y, X, L)); default every plane ((Z, Y, X, L) for volumes).
    registration : Registration, optional
        Photons move by the registration's shifts and bidirectional phase rounded to whole
        pixels; photons moved out of the frame are dropped.
    bin_factor : int
        Sum this many adjacent bins (coarse bins of ``bin_factor`` × the file's width).
    beyond_period : {"keep", "drop", "wrap"}
        Photons at or after the laser period (module docstring).  ``"drop"``/``"wrap"`` need
        the laser period; the histograms then cover one period.

    Returns
    -------
    PixelHistograms
        ``counts`` uint32.  One page's photons are decoded at a time and added by a compiled
        loop, bound by scattered writes into the histograms: ~0.4 s for 100 frames of 256×256
        with 65 k photons each (6.5 M photons, 625 bins).
    """
    flim = dataset.flim
    if flim.bin_width_ps is None:
        raise SelectionError("the bin width is unknown; reopen with bin_width_ps=...")
    if beyond_period not in _MODES:
        raise SelectionError(f"beyond_period must be one of {_MODES}, got {beyond_period!r}")
    factor = int(bin_factor)
    if factor < 1 or factor != bin_factor:
        raise SelectionError(f"bin_factor must be a positive integer, got {bin_factor!r}")
    bin_ps, period_ps = float(flim.bin_width_ps), flim.laser_period_ps
    if period_ps is None and beyond_period != "keep":
        raise SelectionError("the laser period is unknown: only beyond_period='keep' works")
    n_period = _period_bins(bin_ps, period_ps) if period_ps else 1 << 62
    mode = _MODES.index(beyond_period)
    fine = int(flim.num_bins) if mode == _KEEP else n_period
    Y, X = dataset.spec.frame_shape
    Zs = len(_pages(dataset, channel, times, plane)[2])
    out = np.zeros((Zs, Y, X, -(-fine // factor)), np.uint32)
    dropped = 0
    for z, dy, dx, bidi, y, x, tau in _photon_pages(dataset, channel, times, plane,
                                                    registration):
        if not tau.size:
            continue
        if mode == _KEEP and int(tau.max()) // factor >= out.shape[3]:  # late photons
            grow = int(tau.max()) // factor + 1 - out.shape[3]
            out = np.pad(out, ((0, 0), (0, 0), (0, 0), (0, grow)))
        dropped += _accumulate(out, z, y, x, tau, dy, dx, bidi, mode, n_period, bin_ps,
                               float(period_ps or 1.0), factor)
    counts = out[0] if Zs == 1 and (plane is not None or dataset.layout.num_planes == 1) \
        else out
    return PixelHistograms(counts, bin_ps * factor, period_ps, beyond_period, dropped)


# -- phasors ----------------------------------------------------------------------------------
def _bin_phases(length: int, bin_width_ps: float, period_ps: float, harmonic: int):
    """Phase 2π h t/period of each bin's centre, bins cut at the period."""
    edges = np.minimum(np.arange(length + 1) * float(bin_width_ps), float(period_ps))
    centres = 0.5 * (edges[:-1] + edges[1:])
    return 2.0 * np.pi * harmonic * centres / float(period_ps)


def histogram_phasor(histogram, *, bin_width_ps: float, laser_period_ps: float,
                     harmonic: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Photon count and phasor (g, s) of arrival-time histograms over their last axis.

    Bins starting at or after the laser period are ignored (fold them first, see
    ``beyond_period="wrap"``).  Computed by :func:`phasorpy.phasor.phasor_from_signal` with
    the bins' phases (module docstring).  Returns (counts, g, s), float64; g, s NaN without
    photons.
    """
    h = int(harmonic)
    if h < 1 or h != harmonic:
        raise SelectionError(f"harmonic must be a positive integer, got {harmonic!r}")
    if not (bin_width_ps and bin_width_ps > 0 and laser_period_ps and laser_period_ps > 0):
        raise SelectionError("the bin width and the laser period must be known and positive")
    hist = np.asarray(histogram)
    length = min(hist.shape[-1], _period_bins(bin_width_ps, laser_period_ps))
    if length < 3:
        raise SelectionError(f"a phasor needs at least 3 bins per period, got {length}")
    signal = hist[..., :length]
    phases = _bin_phases(length, bin_width_ps, laser_period_ps, h)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean, g, s = phasor_from_signal(signal, axis=-1, sample_phase=phases, dtype=np.float64)
    counts = np.asarray(mean, np.float64) * length
    g, s = np.asarray(g, np.float64), np.asarray(s, np.float64)
    empty = ~(counts > 0)
    g[empty] = np.nan
    s[empty] = np.nan
    return counts, g, s


def phasor_image(dataset, channel: int | str = 0, *, harmonic: int = 1, times=None,
                 plane: int | None = None, registration=None,
                 calibration: DecayFit | Reference | None = None, min_photons: float = 1,
                 bin_factor: int = 1, beyond_period: str = "drop") -> PhasorImage:
    """Phasor of every pixel's arrival times, pooled over the selected time samples.

    Parameters
    ----------
    dataset, channel, times, plane, registration, bin_factor
        As :func:`pixel_histograms`.
    harmonic : int
        Multiple of the laser frequency.
    calibration : DecayFit or Reference, optional
        Remove the instrument response: a decay fit's Gaussian IRF
        (:func:`calibrate_with_fit`) or a reference of known lifetime
        (:func:`calibrate_with_reference`).  Default: raw phasors (IRF delay included).
    min_photons : float
        g and s are NaN in pixels with fewer photons.
    beyond_period : {"drop", "wrap"}
        Photons at or after the period (module docstring).
    """
    if beyond_period == "keep":
        raise SelectionError("a phasor covers one laser period: use 'drop' or 'wrap'")
    flim = dataset.flim
    if flim.laser_period_ps is None:
        raise SelectionError("the laser period is unknown (no countrates in the header)")
    hists = pixel_histograms(dataset, channel, times=times, plane=plane,
                             registration=registration, bin_factor=bin_factor,
                             beyond_period=beyond_period)
    counts, g, s = histogram_phasor(hists.counts, bin_width_ps=hists.bin_width_ps,
                                    laser_period_ps=flim.laser_period_ps, harmonic=harmonic)
    freq = 1e6 / flim.laser_period_ps
    kind = "none"
    if isinstance(calibration, DecayFit):
        g, s = calibrate_with_fit(g, s, calibration, harmonic=harmonic,
                                  frequency_mhz=freq)
        kind = "fit"
    elif isinstance(calibration, Reference):
        _, rg, rs = histogram_phasor(calibration.histogram, bin_width_ps=flim.bin_width_ps,
                                     laser_period_ps=flim.laser_period_ps, harmonic=harmonic)
        g, s = calibrate_with_reference(g, s, rg, rs, calibration.tau_ns, freq,
                                        harmonic=harmonic)
        kind = "reference"
    elif calibration is not None:
        raise SelectionError(f"calibration must be a DecayFit or a Reference, got "
                             f"{type(calibration).__name__}")
    low = ~(counts >= min_photons)
    g, s = np.array(g, np.float64), np.array(s, np.float64)
    g[low] = np.nan
    s[low] = np.nan
    return PhasorImage(counts, g, s, freq, int(harmonic), kind, float(min_photons))


def calibrate_with_reference(g, s, reference_g: float, reference_s: float,
                             reference_tau_ns: float, frequency_mhz: float, *,
                             harmonic: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Calibrated phasors: the rotation and scaling that move the measured phasor of a
    reference of known single lifetime onto its place on the universal semicircle
    (:func:`phasorpy.lifetime.polar_from_reference_phasor`, ``phasor_transform``)."""
    known_g, known_s = phasor_from_lifetime(frequency_mhz * harmonic, float(reference_tau_ns))
    if not (np.isfinite(reference_g) and np.isfinite(reference_s)):
        raise SelectionError("the reference has no photons inside the laser period")
    phase, modulation = polar_from_reference_phasor(reference_g, reference_s, known_g, known_s)
    return phasor_transform(g, s, phase, modulation)


def irf_phasor(fit: DecayFit, frequency_mhz: float, *, harmonic: int = 1) -> complex:
    """Phasor of the fit's Gaussian IRF (offset o, width w): exp(−(ωw)²/2) · exp(iωo)."""
    omega = 2e-3 * np.pi * frequency_mhz * harmonic  # rad per ns
    return complex(np.exp(-0.5 * (omega * fit.irf_width_ns) ** 2)
                   * np.exp(1j * omega * fit.irf_offset_ns))


def calibrate_with_fit(g, s, fit: DecayFit, *, harmonic: int = 1,
                       frequency_mhz: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Phasors divided by the phasor of a decay fit's Gaussian IRF (:func:`irf_phasor`).

    ``frequency_mhz`` defaults to the fit's laser period.  The fit's background is not
    removed (it scales every pixel's modulation by its own background share).
    """
    if frequency_mhz is None:
        if fit.period_ps is None:
            raise SelectionError("the fit has no laser period: give frequency_mhz")
        frequency_mhz = 1e6 / fit.period_ps
    irf = irf_phasor(fit, frequency_mhz, harmonic=harmonic)
    return phasor_transform(g, s, -np.angle(irf), 1.0 / abs(irf))


def apparent_lifetimes(g, s, frequency_mhz: float) -> tuple[np.ndarray, np.ndarray]:
    """Apparent single lifetimes (ns) from phase and from modulation of calibrated phasors at
    ``frequency_mhz`` (include the harmonic), by phasorpy."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return phasor_to_apparent_lifetime(g, s, frequency_mhz)


def fraction_image(g, s, tau1_ns: float, tau2_ns: float, frequency_mhz: float) -> np.ndarray:
    """Photon fraction of the ``tau1_ns`` component of a two-lifetime mixture: the position of
    each calibrated phasor projected on the line between the two lifetimes' phasors
    (:func:`phasorpy.component.phasor_component_fraction`); not clipped to [0, 1]."""
    if not (tau1_ns > 0 and tau2_ns > 0 and tau1_ns != tau2_ns):
        raise SelectionError(f"need two different positive lifetimes, got {tau1_ns}, {tau2_ns}")
    cg, cs = phasor_from_lifetime(frequency_mhz, [float(tau1_ns), float(tau2_ns)])
    return phasor_component_fraction(g, s, cg, cs)


# -- filtering, census and plotting -----------------------------------------------------------
SEMICIRCLE_TOLERANCE = 0.05  # phasor units: a pixel this close to the semicircle counts on it


def filter_phasor(image: PhasorImage, *, min_photons: float = 0.0, median_size: int = 3,
                  median_repeat: int = 1) -> PhasorImage:
    """Median-filtered and thresholded phasors (phasorpy's ``phasor_filter_median`` then
    ``phasor_threshold``).

    The NaN-aware median filter (``median_size`` pixels square, ``median_repeat`` times; 0
    repeats: none) runs on g and s of the image as computed, so a pixel's noise is averaged with
    its neighbours' before the threshold removes pixels with fewer than ``min_photons`` photons
    (their g, s become NaN).  Planes of a volume are filtered separately.
    """
    size, repeat = int(median_size), int(median_repeat)
    if size < 1 or repeat < 0:
        raise SelectionError(f"the median filter needs a size >= 1 and repeats >= 0, got "
                             f"size {median_size}, repeat {median_repeat}")
    if not min_photons >= 0:
        raise SelectionError(f"the photon threshold must be >= 0, got {min_photons}")
    mean, g, s = (np.asarray(a, np.float64) for a in (image.mean, image.g, image.s))
    if repeat and size > 1:
        skip = tuple(range(mean.ndim - 2))  # leading (plane) axes are not filtered across
        mean, g, s = phasor_filter_median(mean, g, s, size=size, repeat=repeat,
                                          skip_axis=skip or None)
    threshold = max(float(min_photons), float(image.threshold))
    if threshold > 0:
        _, g, s = phasor_threshold(mean, g, s, mean_min=threshold)
    return PhasorImage(np.asarray(image.mean), np.asarray(g, np.float64),
                       np.asarray(s, np.float64), image.frequency_mhz, image.harmonic,
                       image.calibration, threshold, (size, repeat) if repeat else (0, 0))


def semicircle_distance(g, s) -> np.ndarray:
    """Signed distance of phasors from the universal semicircle: < 0 inside, > 0 outside
    (|z − ½| − ½; points below the g axis are outside)."""
    g, s = np.asarray(g, np.float64), np.asarray(s, np.float64)
    d = np.hypot(g - 0.5, s) - 0.5
    return np.where(s < 0, np.maximum(d, -s), d)


def lifetime_ticks(frequency_mhz: float, taus_ns=(0.25, 0.5, 1.0, 2.0, 4.0, 8.0)
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(taus, g, s): where single lifetimes ``taus_ns`` lie on the universal semicircle at
    ``frequency_mhz`` (include the harmonic), by phasorpy's ``phasor_from_lifetime``."""
    taus = np.asarray(taus_ns, np.float64)
    g, s = phasor_from_lifetime(float(frequency_mhz), taus)
    return taus, np.asarray(g, np.float64), np.asarray(s, np.float64)


def phasor_bounds(g, s, *, limit: float = 1.5) -> tuple[float, float, float, float]:
    """(g0, g1, s0, s1) of a plot showing the whole universal semicircle and every finite
    phasor up to ``limit`` in each coordinate (calibration can push noisy pixels far out)."""
    g, s = np.asarray(g, np.float64), np.asarray(s, np.float64)
    box = [-0.05, 1.05, -0.05, 0.6]
    ok = np.isfinite(g) & np.isfinite(s)
    if ok.any():
        gi = np.clip(g[ok], -limit, limit)
        si = np.clip(s[ok], -limit, limit)
        pad = 0.02
        box = [min(box[0], float(gi.min()) - pad), max(box[1], float(gi.max()) + pad),
               min(box[2], float(si.min()) - pad), max(box[3], float(si.max()) + pad)]
    return tuple(float(np.clip(v, -limit, limit)) for v in box)


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
        share = "" if not self.plotted else \
            f", {100 * self.semicircle_fraction:.1f} % on/inside the semicircle"
        return (f"{self.plotted} / {self.pixels} pixels plotted{share}; left out: "
                f"{self.below_threshold} below the photon threshold, {self.no_photons} without "
                f"photons (NaN), {self.undefined} other NaN, {self.outside_plot} outside the plot")


def phasor_census(image: PhasorImage, bounds: tuple[float, float, float, float] | None = None,
                  *, tolerance: float = SEMICIRCLE_TOLERANCE) -> PhasorCensus:
    """Count the pixels of ``image`` by what happens to them in a plot over ``bounds``
    ((g0, g1, s0, s1), default :func:`phasor_bounds`)."""
    mean = np.asarray(image.mean, np.float64)
    g, s = np.asarray(image.g, np.float64), np.asarray(image.s, np.float64)
    bounds = phasor_bounds(g, s) if bounds is None else bounds
    finite = np.isfinite(g) & np.isfinite(s)
    empty = ~(mean > 0)
    below = ~finite & ~empty & (mean < image.threshold)
    g0, g1, s0, s1 = bounds
    shown = finite & (g >= g0) & (g <= g1) & (s >= s0) & (s <= s1)
    near = shown & (semicircle_distance(g, s) <= tolerance)
    return PhasorCensus(int(mean.size), int((empty & ~finite).sum()), int(below.sum()),
                        int((~finite & ~empty & ~below).sum()), int((finite & ~shown).sum()),
                        int(shown.sum()), int(near.sum()), float(tolerance))


def phasor_histogram(image: PhasorImage, bounds: tuple[float, float, float, float],
                     cells: int = 200) -> np.ndarray:
    """Photon-weighted 2-D histogram (g along axis 0, s along axis 1) of the finite phasors over
    ``bounds`` (g0, g1, s0, s1) with square cells: ``cells`` along the longer side."""
    g0, g1, s0, s1 = bounds
    step = max(g1 - g0, s1 - s0) / int(cells)
    ng, ns = max(1, round((g1 - g0) / step)), max(1, round((s1 - s0) / step))
    g, s, w = (np.asarray(a, np.float64).ravel() for a in (image.g, image.s, image.mean))
    ok = np.isfinite(g) & np.isfinite(s)
    hist, _, _ = np.histogram2d(g[ok], s[ok], bins=(ng, ns), range=((g0, g1), (s0, s1)),
                                weights=w[ok])
    return hist


def mean_phasor(image: PhasorImage, mask=None) -> tuple[float, float, float, float]:
    """Photon-weighted mean (g, s) of the finite phasors (within ``mask`` if given) and its
    apparent phase and modulation lifetimes (ns; meaningful once calibrated).  NaN if none."""
    g, s = np.asarray(image.g, np.float64), np.asarray(image.s, np.float64)
    w = np.asarray(image.mean, np.float64)
    ok = np.isfinite(g) & np.isfinite(s) & (w > 0)
    if mask is not None:
        ok &= np.asarray(mask, bool)
    if not ok.any():
        return (math.nan,) * 4
    gm = float(np.average(g[ok], weights=w[ok]))
    sm = float(np.average(s[ok], weights=w[ok]))
    tp, tm = apparent_lifetimes(gm, sm, image.frequency_mhz * image.harmonic)
    return gm, sm, float(tp), float(tm)


# -- lifetime images --------------------------------------------------------------------------
@njit(nogil=True, cache=True)
def _accumulate_sums(n_out, t_out, z, y, x, tau, dy, dx, bidi):
    height, width = n_out.shape[1], n_out.shape[2]
    dropped = 0
    for j in range(tau.shape[0]):
        ry = y[j]
        yy = ry - dy
        xx = x[j] - dx - (bidi if ry % 2 == 1 else 0)
        if yy < 0 or yy >= height or xx < 0 or xx >= width:
            dropped += 1
            continue
        n_out[z, yy, xx] += 1
        t_out[z, yy, xx] += tau[j]
    return dropped


def lifetime_image(dataset, channel: int | str = 0, *, times=None, plane: int | None = None,
                   registration=None, irf_offset_ns: float | DecayFit = 0.0
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Mean photon arrival time per pixel minus the IRF offset (ns), pooled over the selected
    time samples, and the photon counts.

    Returns (lifetime float64, counts int64), (Y, X) or (Z, Y, X); lifetime NaN without
    photons.  ``irf_offset_ns``: a number or a :class:`DecayFit` (its IRF offset).  Arrival
    times are bin starts, never wrapped (as :meth:`Dataset.lifetime_array`).
    """
    flim = dataset.flim
    if flim.bin_width_ps is None:
        raise SelectionError("the bin width is unknown; reopen with bin_width_ps=...")
    offset = irf_offset_ns.irf_offset_ns if isinstance(irf_offset_ns, DecayFit) \
        else float(irf_offset_ns)
    pages, _, planes = _pages(dataset, channel, times, plane)
    Y, X = dataset.spec.frame_shape
    Zs = len(planes)
    n = np.zeros((Zs, Y, X), np.int64)
    t = np.zeros((Zs, Y, X), np.int64)
    if registration is None:  # the readers' compiled per-pixel sums, pooled per plane
        rows = np.broadcast_to(np.arange(Zs)[None, :, None], pages.shape).reshape(-1)
        for reader, local, sel in dataset.spec.by_file(pages.reshape(-1)):
            a, b = reader.pixel_sums(local, rows[sel], Zs)
            n += a
            t += b
    else:
        for z, dy, dx, bidi, y, x, tau in _photon_pages(dataset, channel, times, plane,
                                                        registration):
            _accumulate_sums(n, t, z, y, x, tau, dy, dx, bidi)
    with np.errstate(invalid="ignore", divide="ignore"):
        life = t / n * (flim.bin_width_ps / 1000.0) - offset
    life[n == 0] = np.nan
    if Zs == 1 and (plane is not None or dataset.layout.num_planes == 1):
        return life[0], n[0]
    return life, n


# -- colour -----------------------------------------------------------------------------------
_TURBO = np.array([  # polynomial fit of the Turbo colormap (A. Mikhailov, 2019), x in [0, 1]
    [0.13572138, 4.61539260, -42.66032258, 132.13108234, -152.94239396, 59.28637943],
    [0.09140261, 2.19418839, 4.84296658, -14.18503333, 4.27729857, 2.82956604],
    [0.10667330, 12.64194608, -60.58204836, 110.36276771, -89.90310912, 27.34824973],
])


def turbo(x) -> np.ndarray:
    """Turbo colours (…, 3) float64 in [0, 1] of values ``x`` in [0, 1] (clipped)."""
    x = np.clip(np.asarray(x, np.float64), 0.0, 1.0)[..., None]
    out = np.zeros(x.shape[:-1] + (3,))
    for p in range(5, -1, -1):
        out = out * x + _TURBO[:, p]
    return np.clip(out, 0.0, 1.0)


def intensity_modulated(lifetime, counts, *, tau_range: tuple[float, float],
                        colormap="turbo", count_range: tuple[float, float] | None = None
                        ) -> np.ndarray:
    """RGB image (…, 3) float32: hue from ``lifetime`` over ``tau_range`` (clipped), brightness
    from ``counts`` over ``count_range`` (default 0 to the largest count; clipped).

    ``colormap``: ``"turbo"``, ``"gray"`` or an (N, 3) table of colours in [0, 1] (linearly
    interpolated).  Pixels with a NaN lifetime are black.
    """
    lo, hi = (float(v) for v in tau_range)
    if not hi > lo:
        raise SelectionError(f"tau_range must be increasing, got {tau_range}")
    life = np.asarray(lifetime, np.float64)
    cnt = np.asarray(counts, np.float64)
    if life.shape != cnt.shape:
        raise SelectionError(f"lifetime {life.shape} and counts {cnt.shape} differ in shape")
    if count_range is None:
        top = float(np.nanmax(cnt)) if cnt.size else 0.0
        count_range = (0.0, top if top > 0 else 1.0)
    c0, c1 = (float(v) for v in count_range)
    if not c1 > c0:
        raise SelectionError(f"count_range must be increasing, got {count_range}")
    x = np.clip((life - lo) / (hi - lo), 0.0, 1.0)
    colour = _colours(np.nan_to_num(x), colormap)
    bright = np.clip((cnt - c0) / (c1 - c0), 0.0, 1.0)
    bright = np.where(np.isfinite(life), np.nan_to_num(bright), 0.0)
    return (colour * bright[..., None]).astype(np.float32)


def _colours(x: np.ndarray, colormap) -> np.ndarray:
    if isinstance(colormap, str):
        if colormap == "turbo":
            return turbo(x)
        if colormap in ("gray", "grey"):
            return np.repeat(x[..., None], 3, axis=-1)
        raise SelectionError(f"unknown colormap {colormap!r}: 'turbo', 'gray' or a table")
    table = np.asarray(colormap, np.float64)
    if table.ndim != 2 or table.shape[1] != 3 or len(table) < 2:
        raise SelectionError(f"a colour table must be (N >= 2, 3), got {table.shape}")
    pos = x * (len(table) - 1)
    i = np.minimum(pos.astype(np.int64), len(table) - 2)
    f = (pos - i)[..., None]
    return np.clip(table[i] * (1 - f) + table[i + 1] * f, 0.0, 1.0)


def cursor_labels(image: PhasorImage, cursors: list[tuple[float, float, float]]) -> np.ndarray:
    """Labels (same shape as the image): k + 1 where a pixel's phasor lies within cursor k
    ((g, s, radius)); the first matching cursor wins; 0 elsewhere and where there is no phasor."""
    g, s = np.asarray(image.g), np.asarray(image.s)
    out = np.zeros(g.shape, np.int32)
    valid = np.isfinite(g) & np.isfinite(s)
    for k, (cg, cs, r) in enumerate(cursors):
        inside = valid & ((g - cg) ** 2 + (s - cs) ** 2 <= r * r) & (out == 0)
        out[inside] = k + 1
    return out
