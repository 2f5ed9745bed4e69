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

Photons at or after the laser period are handled by :func:`pixel_histograms` (module
:mod:`~napari_scanimage.flim.pixels`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import numpy.typing as npt
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

from ..errors import SelectionError
from .fit_result import DecayFit
from .pixels import period_bins, pixel_histograms

if TYPE_CHECKING:
    from .._core.dataset import Dataset
    from ..analysis.registration import Registration

__all__ = [
    "PhasorImage",
    "Reference",
    "histogram_phasor",
    "phasor_image",
    "calibrate_with_reference",
    "calibrate_with_fit",
    "irf_phasor",
    "apparent_lifetimes",
    "fraction_image",
    "filter_phasor",
    "mean_phasor",
]

_F64 = npt.NDArray[np.float64]


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

    mean: _F64
    g: _F64
    s: _F64
    frequency_mhz: float
    harmonic: int
    calibration: str = "none"
    threshold: float = 0.0
    median: tuple[int, int] = (0, 0)

    def apparent_lifetimes(self) -> tuple[_F64, _F64]:
        """Phase and modulation lifetimes (ns); meaningful once calibrated."""
        return apparent_lifetimes(self.g, self.s, self.frequency_mhz * self.harmonic)

    def fraction(self, tau1_ns: float, tau2_ns: float) -> _F64:
        """Photon fraction of the ``tau1_ns`` component (see :func:`fraction_image`)."""
        return fraction_image(self.g, self.s, tau1_ns, tau2_ns, self.frequency_mhz * self.harmonic)


class Reference(NamedTuple):
    """Calibration by a reference of known single lifetime measured with the same settings:
    its pooled arrival-time ``histogram`` (1-D, the file's bins) and lifetime ``tau_ns``.
    """

    histogram: npt.NDArray[np.number[Any]]
    tau_ns: float


# -- phasors ----------------------------------------------------------------------------------
def _bin_phases(length: int, bin_width_ps: float, period_ps: float, harmonic: int) -> _F64:
    """Phase 2π h t/period of each bin's centre, bins cut at the period."""
    edges: _F64 = np.minimum(np.arange(length + 1) * float(bin_width_ps), float(period_ps))
    centres = 0.5 * (edges[:-1] + edges[1:])
    return 2.0 * np.pi * harmonic * centres / float(period_ps)


def histogram_phasor(
    histogram: npt.ArrayLike, *, bin_width_ps: float, laser_period_ps: float, harmonic: int = 1
) -> tuple[_F64, _F64, _F64]:
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
    length = min(hist.shape[-1], period_bins(bin_width_ps, laser_period_ps))
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


def phasor_image(
    dataset: Dataset,
    channel: int | str = 0,
    *,
    harmonic: int = 1,
    times: slice | npt.ArrayLike | None = None,
    plane: int | None = None,
    registration: Registration | None = None,
    calibration: DecayFit | Reference | None = None,
    min_photons: float = 1,
    bin_factor: int = 1,
    beyond_period: str = "drop",
) -> PhasorImage:
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
    if flim.bin_width_ps is None:
        raise SelectionError("the bin width is unknown; reopen with bin_width_ps=...")
    hists = pixel_histograms(
        dataset,
        channel,
        times=times,
        plane=plane,
        registration=registration,
        bin_factor=bin_factor,
        beyond_period=beyond_period,
    )
    counts, g, s = histogram_phasor(
        hists.counts,
        bin_width_ps=hists.bin_width_ps,
        laser_period_ps=flim.laser_period_ps,
        harmonic=harmonic,
    )
    freq = 1e6 / flim.laser_period_ps
    kind = "none"
    if isinstance(calibration, DecayFit):
        g, s = calibrate_with_fit(g, s, calibration, harmonic=harmonic, frequency_mhz=freq)
        kind = "fit"
    elif isinstance(calibration, Reference):
        _, rg, rs = histogram_phasor(
            calibration.histogram,
            bin_width_ps=flim.bin_width_ps,
            laser_period_ps=flim.laser_period_ps,
            harmonic=harmonic,
        )
        g, s = calibrate_with_reference(g, s, rg, rs, calibration.tau_ns, freq, harmonic=harmonic)
        kind = "reference"
    elif calibration is not None:
        raise SelectionError(
            f"calibration must be a DecayFit or a Reference, got {type(calibration).__name__}"
        )
    low = ~(counts >= min_photons)
    g, s = np.array(g, np.float64), np.array(s, np.float64)
    g[low] = np.nan
    s[low] = np.nan
    return PhasorImage(counts, g, s, freq, int(harmonic), kind, float(min_photons))


def calibrate_with_reference(
    g: npt.ArrayLike,
    s: npt.ArrayLike,
    reference_g: npt.ArrayLike,
    reference_s: npt.ArrayLike,
    reference_tau_ns: float,
    frequency_mhz: float,
    *,
    harmonic: int = 1,
) -> tuple[_F64, _F64]:
    """Phasors calibrated by a reference of known single lifetime.

    The rotation and scaling that move the measured phasor of the reference onto its place on
    the universal semicircle (:func:`phasorpy.lifetime.polar_from_reference_phasor`,
    ``phasor_transform``).

    Parameters
    ----------
    g, s : array_like
        Measured phasor coordinates.
    reference_g, reference_s : float or 0-d array
        Measured phasor of the reference (:func:`histogram_phasor` of its histogram).
    reference_tau_ns : float
        The reference's lifetime (ns).
    frequency_mhz : float
        Laser frequency (without the harmonic).
    harmonic : int
        Harmonic of the phasors.

    Returns
    -------
    g, s : ndarray of float64
        Calibrated phasor coordinates.
    """
    known_g, known_s = phasor_from_lifetime(frequency_mhz * harmonic, float(reference_tau_ns))
    if not (np.isfinite(reference_g) and np.isfinite(reference_s)):
        raise SelectionError("the reference has no photons inside the laser period")
    phase, modulation = polar_from_reference_phasor(reference_g, reference_s, known_g, known_s)
    return phasor_transform(g, s, phase, modulation)


def irf_phasor(fit: DecayFit, frequency_mhz: float, *, harmonic: int = 1) -> complex:
    """Phasor of the fit's Gaussian IRF (offset o, width w): exp(−(ωw)²/2) · exp(iωo)."""
    omega = 2e-3 * np.pi * frequency_mhz * harmonic  # rad per ns
    return complex(
        np.exp(-0.5 * (omega * fit.irf_width_ns) ** 2) * np.exp(1j * omega * fit.irf_offset_ns)
    )


def calibrate_with_fit(
    g: npt.ArrayLike,
    s: npt.ArrayLike,
    fit: DecayFit,
    *,
    harmonic: int = 1,
    frequency_mhz: float | None = None,
) -> tuple[_F64, _F64]:
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


def apparent_lifetimes(
    g: npt.ArrayLike, s: npt.ArrayLike, frequency_mhz: float
) -> tuple[_F64, _F64]:
    """Apparent single lifetimes (ns) from phase and from modulation of calibrated phasors at
    ``frequency_mhz`` (include the harmonic), by phasorpy.
    """
    with np.errstate(invalid="ignore", divide="ignore"):
        return phasor_to_apparent_lifetime(g, s, frequency_mhz)


def fraction_image(
    g: npt.ArrayLike, s: npt.ArrayLike, tau1_ns: float, tau2_ns: float, frequency_mhz: float
) -> _F64:
    """Photon fraction of the ``tau1_ns`` component of a two-lifetime mixture: the position of
    each calibrated phasor projected on the line between the two lifetimes' phasors
    (:func:`phasorpy.component.phasor_component_fraction`); not clipped to [0, 1].
    """
    if not (tau1_ns > 0 and tau2_ns > 0 and tau1_ns != tau2_ns):
        raise SelectionError(f"need two different positive lifetimes, got {tau1_ns}, {tau2_ns}")
    cg, cs = phasor_from_lifetime(frequency_mhz, [float(tau1_ns), float(tau2_ns)])
    return phasor_component_fraction(g, s, cg, cs)


def filter_phasor(
    image: PhasorImage, *, min_photons: float = 0.0, median_size: int = 3, median_repeat: int = 1
) -> PhasorImage:
    """Median-filtered and thresholded phasors (phasorpy's ``phasor_filter_median`` then
    ``phasor_threshold``).

    The NaN-aware median filter (``median_size`` pixels square, ``median_repeat`` times; 0
    repeats: none) runs on g and s of the image as computed, so a pixel's noise is averaged with
    its neighbours' before the threshold removes pixels with fewer than ``min_photons`` photons
    (their g, s become NaN).  Planes of a volume are filtered separately.
    """
    size, repeat = int(median_size), int(median_repeat)
    if size < 1 or repeat < 0:
        raise SelectionError(
            f"the median filter needs a size >= 1 and repeats >= 0, got "
            f"size {median_size}, repeat {median_repeat}"
        )
    if not min_photons >= 0:
        raise SelectionError(f"the photon threshold must be >= 0, got {min_photons}")
    mean, g, s = (np.asarray(a, np.float64) for a in (image.mean, image.g, image.s))
    if repeat and size > 1:
        skip = tuple(range(mean.ndim - 2))  # leading (plane) axes are not filtered across
        mean, g, s = phasor_filter_median(
            mean, g, s, size=size, repeat=repeat, skip_axis=skip or None
        )
    threshold = max(float(min_photons), float(image.threshold))
    if threshold > 0:
        _, g, s = phasor_threshold(mean, g, s, mean_min=threshold)
    return PhasorImage(
        np.asarray(image.mean),
        np.asarray(g, np.float64),
        np.asarray(s, np.float64),
        image.frequency_mhz,
        image.harmonic,
        image.calibration,
        threshold,
        (size, repeat) if repeat else (0, 0),
    )


def mean_phasor(
    image: PhasorImage, mask: npt.ArrayLike | None = None
) -> tuple[float, float, float, float]:
    """Photon-weighted mean (g, s) of the finite phasors (within ``mask`` if given) and its
    apparent phase and modulation lifetimes (ns; meaningful once calibrated).  NaN if none.
    """
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
