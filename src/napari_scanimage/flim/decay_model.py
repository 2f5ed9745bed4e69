"""The fluorescence-decay model of arrival-time histograms (FLIM).

A photon's arrival time is a delay from a mixture of exponentials (lifetimes ``taus_ns``,
photon fractions ``fractions``) plus a Gaussian instrument response (``irf_offset_ns``,
``irf_width_ns``), taken modulo the laser period when there is one (earlier pulses' tails wrap
in), plus a uniform background fraction.  Bin ``i`` covers ``[i, i + 1) * bin_width``; bin parts
past the period are empty.  Fitted by :mod:`~napari_scanimage.flim.fitting`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from typing import overload

import numpy as np
import numpy.typing as npt
from scipy import special

from ..errors import SelectionError

__all__ = ["decay_model", "bin_edges", "decay_shape", "mix_background", "component_gradients"]

_TAIL_SIGMAS = 40.0  # beyond mu + this many sigmas the IRF's CDF is 1 to double precision
_F64 = npt.NDArray[np.float64]


def _exgauss_cdf(x: _F64, mu: float, sigma: float, lam: float) -> _F64:
    """CDF of Gaussian(mu, sigma) + Exponential(rate lam)."""
    if sigma <= 0:
        return np.where(x >= mu, -np.expm1(-lam * np.maximum(x - mu, 0.0)), 0.0)
    z = (x - mu) / sigma
    ls = lam * sigma
    # scipy.special's ufuncs are untyped: float64 in, float64 out
    out: _F64 = special.ndtr(z) - np.exp(-lam * (x - mu) + 0.5 * ls * ls + special.log_ndtr(z - ls))
    return out


def _exgauss_pdf(x: _F64, mu: float, sigma: float, lam: float) -> _F64:
    """Exponentially modified Gaussian density.

    lam/2 exp(lam/2 (2 mu + lam s² - 2x)) erfc((mu + lam s² - x) / (√2 s)), written with
    log Phi for stability.
    """
    if sigma <= 0:
        return np.where(x >= mu, lam * np.exp(-lam * np.maximum(x - mu, 0.0)), 0.0)
    z = (x - mu) / sigma
    ls = lam * sigma
    out: _F64 = lam * np.exp(-lam * (x - mu) + 0.5 * ls * ls + special.log_ndtr(z - ls))
    return out


def _pulse_range(
    xmin: float, xmax: float, mu: float, sigma: float, lam: float, period: float
) -> tuple[int, int]:
    """Pulses k0..k1 summed explicitly (x + k·period); for k > k1 the IRF is complete."""
    k0 = math.ceil((mu - _TAIL_SIGMAS * sigma - xmax) / period)
    k1 = math.ceil((mu + _TAIL_SIGMAS * sigma + lam * sigma * sigma - xmin) / period) - 1
    return min(k0, k1), k1


def _component(
    lo: _F64, hi: _F64 | None, tau: float, mu: float, sigma: float, period: float | None
) -> _F64:
    """Probability of each bin of one exponential component, over all pulses.

    Bins are [lo, hi) (the density at lo when hi is None), summed over all earlier and later
    pulses when periodic.
    """
    lam = 1.0 / tau
    f: Callable[[_F64], _F64]
    if hi is None:

        def f(x: _F64) -> _F64:
            return _exgauss_pdf(x, mu, sigma, lam)
    elif lo.size > 1 and np.array_equal(lo[1:], hi[:-1]):  # contiguous bins: CDF at the edges
        top = hi[-1]

        def f(x: _F64) -> _F64:
            return np.diff(_exgauss_cdf(np.append(x, top + (x[-1] - lo[-1])), mu, sigma, lam))
    else:
        upper = hi

        def f(x: _F64) -> _F64:
            return _exgauss_cdf(upper + (x - lo), mu, sigma, lam) - _exgauss_cdf(x, mu, sigma, lam)

    if period is None:
        return f(lo)
    xmax = float(np.max(lo if hi is None else hi))
    k0, k1 = _pulse_range(float(np.min(lo)), xmax, mu, sigma, lam, period)
    out = np.zeros(lo.shape)
    for k in range(k0, k1 + 1):
        out += f(lo + k * period)
    # pulses k > k1: pure exponential tails, a geometric series in exp(-period / tau)
    ls = lam * sigma
    log_a = -lam * (lo + (k1 + 1) * period - mu) + 0.5 * ls * ls
    geometric = 1.0 / -np.expm1(-lam * period)
    scale: float | _F64 = lam if hi is None else -np.expm1(-lam * (hi - lo))
    tails: _F64 = np.exp(log_a) * scale * geometric
    return out + tails


def decay_shape(
    lo: _F64,
    hi: _F64 | None,
    taus: Iterable[float],
    fractions: Iterable[float],
    mu: float,
    sigma: float,
    period: float | None,
) -> _F64:
    """Unnormalised decay (no background) of bins [lo, hi) or at points lo.

    Parameters
    ----------
    lo, hi : ndarray of float64
        Bin starts and ends (ns); ``hi`` None evaluates the density at ``lo``.
    taus, fractions : iterable of float
        Lifetimes (ns) and their photon fractions.
    mu, sigma : float
        Centre and standard deviation of the Gaussian IRF (ns).
    period : float or None
        Laser period (ns); None for a single pulse.

    Returns
    -------
    ndarray of float64
        The mixture of the components' bin probabilities (densities), same shape as ``lo``.
    """
    out = np.zeros(lo.shape)
    for tau, frac in zip(taus, fractions, strict=True):
        if frac != 0:
            out += frac * _component(lo, hi, tau, mu, sigma, period)
    return out


@overload
def bin_edges(
    t_ns: _F64, bin_width_ns: float, period_ns: float | None
) -> tuple[_F64, _F64, _F64]: ...
@overload
def bin_edges(
    t_ns: _F64, bin_width_ns: None, period_ns: float | None
) -> tuple[_F64, None, _F64]: ...
@overload
def bin_edges(
    t_ns: _F64, bin_width_ns: float | None, period_ns: float | None
) -> tuple[_F64, _F64 | None, _F64]: ...
def bin_edges(
    t_ns: _F64, bin_width_ns: float | None, period_ns: float | None
) -> tuple[_F64, _F64 | None, _F64]:
    """Edges of bins centred on ``t_ns``, cut to the laser period.

    Parameters
    ----------
    t_ns : ndarray of float64
        Bin centres (ns).
    bin_width_ns : float or None
        Bin width; None: points, not bins.
    period_ns : float or None
        Laser period; bin parts outside [0, period) are cut off.

    Returns
    -------
    lo, hi, weight : ndarray of float64
        Bin starts, ends (None for points) and the uniform background's weight of each bin
        (its width inside the period; 1 for points).
    """
    if bin_width_ns is None:
        return t_ns, None, np.ones(t_ns.shape)
    lo, hi = t_ns - 0.5 * bin_width_ns, t_ns + 0.5 * bin_width_ns
    if period_ns is not None:
        lo, hi = np.clip(lo, 0.0, period_ns), np.clip(hi, 0.0, period_ns)
    return lo, hi, hi - lo


def mix_background(
    shape: _F64,
    weight: _F64,
    background: float,
    total: float,
    norm_shape: float,
    norm_weight: float,
) -> _F64:
    """Expected counts: the normalised decay mixed with a uniform background.

    Parameters
    ----------
    shape, weight : ndarray of float64
        Unnormalised decay (:func:`decay_shape`) and background weight (:func:`bin_edges`).
    background : float
        Fraction of the counts in the background.
    total : float
        Counts over the bins the norms were taken over.
    norm_shape, norm_weight : float
        Sums of ``shape`` and ``weight`` over those bins.

    Returns
    -------
    ndarray of float64
        Expected counts of each bin.
    """
    out = (1.0 - background) / norm_shape * shape if background != 1 else 0.0 * shape
    if background:
        out = out + background / norm_weight * weight
    return total * out


def decay_model(
    t_ns: npt.ArrayLike,
    *,
    taus_ns: float | Sequence[float],
    fractions: float | Sequence[float] | None = None,
    irf_offset_ns: float,
    irf_width_ns: float,
    period_ns: float | None = None,
    background: float = 0.0,
    total: float = 1.0,
    bin_width_ns: float | None = None,
) -> _F64:
    """Expected counts of arrival-time bins centred on ``t_ns`` (ns), summing to ``total``.

    ``taus_ns`` > 0 with photon ``fractions`` >= 0 (normalised; default equal); Gaussian IRF
    centre and standard deviation (>= 0) in ns.  ``period_ns``: arrival times are taken modulo
    the laser period (earlier pulses' tails wrap in) and bin parts outside [0, period) are
    empty; None: a single pulse.  ``background``: fraction of the counts spread uniformly (by
    bin width).  ``bin_width_ns``: integrate over ``[t - w/2, t + w/2)`` (exact bin
    probabilities); None evaluates the density at ``t_ns``.
    """
    t = np.asarray(t_ns, np.float64)
    taus = [float(v) for v in np.atleast_1d(taus_ns)]
    fracs = [float(v) for v in np.atleast_1d(1.0 if fractions is None else fractions)]
    fracs = fracs * len(taus) if fractions is None else fracs
    if not taus or len(fracs) != len(taus):
        raise SelectionError(
            f"need one fraction per lifetime, got {len(taus)} lifetime(s) and "
            f"{len(fracs)} fraction(s)"
        )
    if min(taus) <= 0 or min(fracs) < 0 or sum(fracs) <= 0 or irf_width_ns < 0:
        raise SelectionError(
            f"lifetimes must be > 0, fractions >= 0 and the IRF width >= 0; "
            f"got taus {taus}, fractions {fracs}, width {irf_width_ns}"
        )
    if not 0 <= background <= 1:
        raise SelectionError(f"background is a fraction in [0, 1], got {background}")
    if period_ns is not None and not period_ns > 0:
        raise SelectionError(f"the laser period must be positive, got {period_ns}")
    fracs = [f / sum(fracs) for f in fracs]
    lo, hi, weight = bin_edges(t.ravel(), bin_width_ns, period_ns)
    shape = decay_shape(lo, hi, taus, fracs, float(irf_offset_ns), float(irf_width_ns), period_ns)
    norm, wnorm = float(shape.sum()), float(weight.sum())
    if not norm > 0 and background < 1:
        raise SelectionError("the decay has no probability in these bins: check the times")
    out = mix_background(shape, weight, float(background), float(total), norm, wnorm)
    return out.reshape(t.shape)


def component_gradients(
    edges: _F64, tau: float, mu: float, sigma: float, period: float | None
) -> list[_F64]:
    """Bin probabilities of one component and their derivatives.

    Parameters
    ----------
    edges : ndarray of float64
        Edges of contiguous bins (ns).
    tau : float
        Lifetime (ns).
    mu, sigma : float
        Centre and standard deviation (> 0) of the Gaussian IRF (ns).
    period : float or None
        Laser period (ns); None for a single pulse.

    Returns
    -------
    list of ndarray of float64
        The bin probabilities and their derivatives with respect to the rate 1/tau, mu and
        sigma, one value per bin each.
    """
    lam = 1.0 / tau
    ls = lam * sigma
    if period is None:
        ks = range(1)
    else:
        k0, k1 = _pulse_range(float(edges[0]), float(edges[-1]), mu, sigma, lam, period)
        ks = range(k0, k1 + 1)
    F, dl, dm, ds = (np.zeros(edges.shape) for _ in range(4))
    for k in ks:
        x = edges - mu + (0.0 if period is None else k * period)
        z = x / sigma
        f = lam * np.exp(-lam * x + 0.5 * ls * ls + special.log_ndtr(z - ls))
        phi = np.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)
        F += special.ndtr(z) - f / lam
        dm -= f
        ds += lam * phi - ls * f
        dl += (x - ls * sigma) * f / lam + sigma * phi
    out = [np.diff(a) for a in (F, dl, dm, ds)]
    if period is not None:
        lo, width, k1 = edges[:-1], np.diff(edges), ks[-1]
        a = np.exp(-lam * (lo + (k1 + 1) * period - mu) + 0.5 * ls * ls)
        g = 1.0 / -np.expm1(-lam * period)
        part = -np.expm1(-lam * width)
        tail = a * part * g
        out[0] += tail
        out[1] += (
            tail * (-(lo + (k1 + 1) * period - mu) + ls * sigma)
            + a * g * width * np.exp(-lam * width)
            - tail * period * (g - 1.0)
        )
        out[2] += lam * tail
        out[3] += lam * ls * tail
    return out
