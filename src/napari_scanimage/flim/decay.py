"""Fluorescence-decay fitting of arrival-time histograms (FLIM).

Model: a photon's arrival time is a delay from a mixture of exponentials (lifetimes ``taus_ns``,
photon fractions ``fractions``) plus a Gaussian instrument response (``irf_offset_ns``,
``irf_width_ns``), taken modulo the laser period when there is one (earlier pulses' tails wrap
in), plus a uniform background fraction.  Bin ``i`` covers ``[i, i + 1) * bin_width``; bin parts
past the period are empty.  Fitting is Poisson maximum likelihood with the photon number fixed at
the data's (its maximum likelihood value, uncorrelated with the shape); standard errors come from
the observed Fisher information (numerical Hessian in natural units).  Results are saved as
versioned JSON, written atomically.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import optimize, special

from .._atomic import atomic_write, check_header
from ..errors import FormatError, SelectionError

__all__ = ["FORMAT", "VERSION", "MIN_PHOTONS", "DecayFit", "decay_model", "fit_decay",
           "fit_dataset_decay"]

FORMAT = "napari-scanimage-decay-fit"
VERSION = 1
MIN_PHOTONS = 100  # fewer photons in the fit range are refused
_TAIL_SIGMAS = 40.0  # beyond mu + this many sigmas the IRF's CDF is 1 to double precision
_SCALARS = ("irf_offset_ns", "irf_width_ns", "background", "total", "bin_width_ps", "deviance")
_PARAMS = ("taus_ns", "fractions", "irf_offset_ns", "irf_width_ns", "background")


# -- model ------------------------------------------------------------------------------------
def _exgauss_cdf(x: np.ndarray, mu: float, sigma: float, lam: float) -> np.ndarray:
    """CDF of Gaussian(mu, sigma) + Exponential(rate lam)."""
    if sigma <= 0:
        return np.where(x >= mu, -np.expm1(-lam * np.maximum(x - mu, 0.0)), 0.0)
    z = (x - mu) / sigma
    ls = lam * sigma
    return special.ndtr(z) - np.exp(-lam * (x - mu) + 0.5 * ls * ls + special.log_ndtr(z - ls))


def _exgauss_pdf(x: np.ndarray, mu: float, sigma: float, lam: float) -> np.ndarray:
    """Exponentially modified Gaussian density, lam/2 exp(lam/2 (2 mu + lam s² - 2x))
    erfc((mu + lam s² - x) / (√2 s)), written with log Phi for stability."""
    if sigma <= 0:
        return np.where(x >= mu, lam * np.exp(-lam * np.maximum(x - mu, 0.0)), 0.0)
    z = (x - mu) / sigma
    ls = lam * sigma
    return lam * np.exp(-lam * (x - mu) + 0.5 * ls * ls + special.log_ndtr(z - ls))


def _pulse_range(xmin: float, xmax: float, mu: float, sigma: float, lam: float,
                 period: float) -> tuple[int, int]:
    """Pulses k0..k1 summed explicitly (x + k·period); for k > k1 the IRF is complete."""
    k0 = math.ceil((mu - _TAIL_SIGMAS * sigma - xmax) / period)
    k1 = math.ceil((mu + _TAIL_SIGMAS * sigma + lam * sigma * sigma - xmin) / period) - 1
    return min(k0, k1), k1


def _component(lo: np.ndarray, hi: np.ndarray | None, tau: float, mu: float, sigma: float,
               period: float | None) -> np.ndarray:
    """Probability of each bin [lo, hi) (or density at lo when hi is None) of one exponential
    component, summed over all earlier and later pulses when periodic."""
    lam = 1.0 / tau
    if hi is None:
        def f(x):
            return _exgauss_pdf(x, mu, sigma, lam)
    elif lo.size > 1 and np.array_equal(lo[1:], hi[:-1]):  # contiguous bins: CDF at the edges
        def f(x):
            return np.diff(_exgauss_cdf(np.append(x, hi[-1] + (x[-1] - lo[-1])), mu, sigma,
                                        lam))
    else:
        def f(x):
            return _exgauss_cdf(hi + (x - lo), mu, sigma, lam) - _exgauss_cdf(x, mu, sigma, lam)
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
    scale = lam if hi is None else -np.expm1(-lam * (hi - lo))
    return out + np.exp(log_a) * scale * geometric


def _shape(lo: np.ndarray, hi: np.ndarray | None, taus, fractions, mu: float, sigma: float,
           period: float | None) -> np.ndarray:
    """Unnormalised decay (no background) of bins [lo, hi) or at points lo."""
    out = np.zeros(lo.shape)
    for tau, frac in zip(taus, fractions, strict=True):
        if frac != 0:
            out += frac * _component(lo, hi, tau, mu, sigma, period)
    return out


def _edges(t_ns: np.ndarray, bin_width_ns: float | None, period_ns: float | None):
    """(lo, hi or None, background weight) of bins centred on t_ns."""
    if bin_width_ns is None:
        return t_ns, None, np.ones(t_ns.shape)
    lo, hi = t_ns - 0.5 * bin_width_ns, t_ns + 0.5 * bin_width_ns
    if period_ns is not None:
        lo, hi = np.clip(lo, 0.0, period_ns), np.clip(hi, 0.0, period_ns)
    return lo, hi, hi - lo


def _mix(shape: np.ndarray, weight: np.ndarray, background: float, total: float,
         norm_shape: float, norm_weight: float) -> np.ndarray:
    out = (1.0 - background) / norm_shape * shape if background != 1 else 0.0 * shape
    if background:
        out = out + background / norm_weight * weight
    return total * out


def decay_model(t_ns, *, taus_ns: Sequence[float], fractions: Sequence[float] | None = None,
                irf_offset_ns: float, irf_width_ns: float, period_ns: float | None = None,
                background: float = 0.0, total: float = 1.0,
                bin_width_ns: float | None = None) -> np.ndarray:
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
        raise SelectionError(f"need one fraction per lifetime, got {len(taus)} lifetime(s) and "
                             f"{len(fracs)} fraction(s)")
    if min(taus) <= 0 or min(fracs) < 0 or sum(fracs) <= 0 or irf_width_ns < 0:
        raise SelectionError(f"lifetimes must be > 0, fractions >= 0 and the IRF width >= 0; "
                             f"got taus {taus}, fractions {fracs}, width {irf_width_ns}")
    if not 0 <= background <= 1:
        raise SelectionError(f"background is a fraction in [0, 1], got {background}")
    if period_ns is not None and not period_ns > 0:
        raise SelectionError(f"the laser period must be positive, got {period_ns}")
    fracs = [f / sum(fracs) for f in fracs]
    lo, hi, weight = _edges(t.ravel(), bin_width_ns, period_ns)
    shape = _shape(lo, hi, taus, fracs, float(irf_offset_ns), float(irf_width_ns), period_ns)
    norm, wnorm = float(shape.sum()), float(weight.sum())
    if not norm > 0 and background < 1:
        raise SelectionError("the decay has no probability in these bins: check the times")
    return _mix(shape, weight, float(background), float(total), norm, wnorm).reshape(t.shape)


def _json_value(v):
    if isinstance(v, (tuple, list)):
        return [_json_value(x) for x in v]
    if v is None:
        return None
    v = float(v)
    return v if math.isfinite(v) else None


def _from_json(v):
    if isinstance(v, list):
        return tuple(_from_json(x) for x in v)
    return math.nan if v is None else float(v)


@dataclass(frozen=True)
class DecayFit:
    """Result of :func:`fit_decay`.

    ``taus_ns`` ascending with their photon (intensity) ``fractions`` (sum 1); Gaussian IRF
    ``irf_offset_ns``, ``irf_width_ns``; ``background`` fraction of the counts; ``total`` counts
    in ``fit_range`` (bins start..stop-1); ``stderr`` by name (tuples for taus and fractions; 0
    when fixed, NaN when the information matrix is singular); ``deviance``: Poisson deviance at
    the optimum (about the number of bins for a good fit).
    """

    taus_ns: tuple[float, ...]
    fractions: tuple[float, ...]
    irf_offset_ns: float
    irf_width_ns: float
    background: float
    total: float
    stderr: dict = field(default_factory=dict)
    bin_width_ps: float = 1.0
    period_ps: float | None = None
    n_exp: int = 1
    deviance: float = math.nan
    fit_range: tuple[int, int] = (0, 0)
    converged: bool = True
    n_free: int = -1

    @property
    def free_parameters(self) -> int:
        """Parameters the fit adjusted: :attr:`n_free`, or, when unknown, those with a
        non-zero standard error (fixed ones have 0; the last fraction follows from the
        others)."""
        if self.n_free >= 0:
            return int(self.n_free)
        taus = self.stderr.get("taus_ns", (math.nan,) * self.n_exp)
        fracs = self.stderr.get("fractions", (math.nan,) * self.n_exp)
        count = sum(1 for e in taus if e != 0)
        count += (self.n_exp - 1) if any(e != 0 for e in fracs) else 0
        return count + sum(1 for k in ("irf_offset_ns", "irf_width_ns", "background")
                           if self.stderr.get(k, math.nan) != 0)

    @property
    def degrees_of_freedom(self) -> int:
        """Bins in the fit range minus the free parameters minus one (the photon number is
        fixed at the data's)."""
        start, stop = self.fit_range
        return int(stop - start - self.free_parameters - 1)

    @property
    def reduced_chi2(self) -> float:
        """Reduced χ²: the Poisson deviance (the likelihood-ratio χ² of counts, valid with
        few photons per bin) over :attr:`degrees_of_freedom`; about 1 for a good fit, NaN
        without degrees of freedom."""
        dof = self.degrees_of_freedom
        return float(self.deviance) / dof if dof > 0 else math.nan

    def warnings(self) -> list[str]:
        """Why the fit should not be trusted, one sentence each (empty for a sound fit).

        Flags an unconverged optimiser; lifetimes within 10 % of each other (components that
        collapsed onto one: fit fewer); a component with under 1 % of the photons; fractions
        outside [0, 1]; standard errors that are undefined, or larger than a lifetime or than
        0.5 for a fraction (the components trade off freely); a reduced χ² above 2 (the model
        does not describe the decay).
        """
        out = []
        if not self.converged:
            out.append("the optimiser did not converge")
        taus, fracs = self.taus_ns, self.fractions
        for k in range(len(taus) - 1):
            a, b = taus[k], taus[k + 1]
            if abs(b - a) <= 0.1 * max(abs(a), abs(b)):
                out.append(f"τ{k + 1} = {a:.3g} ns ≈ τ{k + 2} = {b:.3g} ns (fit "
                           f"{self.n_exp - 1} component{'s' if self.n_exp > 2 else ''})")
        if self.n_exp > 1:
            for k, f in enumerate(fracs):
                if not 0 <= f <= 1:
                    out.append(f"fraction {k + 1} = {f:.3g} lies outside [0, 1]")
                elif f < 0.01:
                    out.append(f"component {k + 1} carries {100 * f:.2g} % of the photons")
        errs = [*self.stderr.get("taus_ns", ()), *self.stderr.get("fractions", ())]
        if any(not math.isfinite(e) for e in errs):
            out.append("standard errors undefined (parameters not determined)")
        else:
            big = [f"τ{k + 1} {t:.3g} ± {e:.2g} ns" for k, (t, e) in
                   enumerate(zip(taus, self.stderr.get("taus_ns", ()), strict=False)) if e > t]
            big += [f"fraction {k + 1} {f:.2g} ± {e:.2g}" for k, (f, e) in
                    enumerate(zip(fracs, self.stderr.get("fractions", ()), strict=False))
                    if self.n_exp > 1 and e > 0.5]
            if big:
                out.append("standard errors larger than the values: " + ", ".join(big))
        chi2 = self.reduced_chi2
        if math.isfinite(chi2) and chi2 > 2:
            out.append(f"reduced χ² = {chi2:.3g}: the model does not describe the decay")
        return out

    @property
    def degenerate(self) -> bool:
        """True when :meth:`warnings` found a reason to distrust the fit."""
        return bool(self.warnings())

    @property
    def mean_tau_ns(self) -> float:
        """Intensity-weighted mean lifetime Σ fᵢ τᵢ (fractions are photon fractions): the mean
        delay of a photon after the IRF."""
        return float(sum(f * t for f, t in zip(self.fractions, self.taus_ns, strict=True)))

    @property
    def amplitude_mean_tau_ns(self) -> float:
        """Amplitude-weighted mean lifetime Σ aᵢ τᵢ / Σ aᵢ with amplitudes aᵢ = fᵢ / τᵢ."""
        return 1.0 / sum(f / t for f, t in zip(self.fractions, self.taus_ns, strict=True))

    def model(self, bins=None) -> np.ndarray:
        """Expected counts of bin indices ``bins`` (default the fit range), on the fit's scale:
        the counts over the fit range sum to :attr:`total`."""
        start, stop = self.fit_range
        bins = np.arange(start, stop) if bins is None else np.asarray(bins)
        w = self.bin_width_ps / 1000.0
        period = None if self.period_ps is None else self.period_ps / 1000.0
        lo_f, hi_f, wt_f = _edges((np.arange(start, stop) + 0.5) * w, w, period)
        lo, hi, wt = _edges((bins.astype(np.float64).ravel() + 0.5) * w, w, period)
        args = (self.taus_ns, self.fractions, self.irf_offset_ns, self.irf_width_ns, period)
        norm = float(_shape(lo_f, hi_f, *args).sum())
        out = _mix(_shape(lo, hi, *args), wt, self.background, self.total, norm,
                   float(wt_f.sum()))
        return out.reshape(bins.shape)

    def to_dict(self) -> dict:
        """JSON-serialisable fields (NaN as None)."""
        out = {k: _json_value(getattr(self, k)) for k in ("taus_ns", "fractions", *_SCALARS)}
        return {**out, "stderr": {k: _json_value(v) for k, v in self.stderr.items()},
                "period_ps": _json_value(self.period_ps), "n_exp": int(self.n_exp),
                "fit_range": list(self.fit_range), "converged": bool(self.converged),
                "n_free": int(self.n_free)}

    def save(self, path: str | os.PathLike) -> Path:
        """Write as JSON (format tag and version first), atomically."""
        doc = {"format": FORMAT, "version": VERSION, **self.to_dict()}
        text = json.dumps(doc, indent=1, allow_nan=False)
        return atomic_write(path, (text + "\n").encode())

    @classmethod
    def load(cls, path: str | os.PathLike) -> DecayFit:
        """Read a file written by :meth:`save`; FormatError if it is not one."""
        path = Path(path)
        try:
            doc = json.loads(path.read_bytes().decode())
        except (OSError, ValueError) as exc:
            raise FormatError(f"{path.name} is not a decay-fit file ({exc})") from None
        check_header(doc, FORMAT, VERSION, path.name, "decay-fit file")
        try:
            kw = {k: _from_json(doc[k]) for k in ("taus_ns", "fractions", *_SCALARS)}
            fit = cls(**kw, stderr={str(k): _from_json(v) for k, v in doc["stderr"].items()},
                      period_ps=None if doc["period_ps"] is None else float(doc["period_ps"]),
                      n_exp=int(doc["n_exp"]), fit_range=tuple(int(v) for v in doc["fit_range"]),
                      converged=bool(doc["converged"]),
                      n_free=int(doc.get("n_free", -1)))  # files before n_free: inferred
            ok = (len(fit.taus_ns) == fit.n_exp == len(fit.fractions) and fit.bin_width_ps > 0
                  and len(fit.fit_range) == 2)
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            raise FormatError(f"{path.name}: a field is missing or malformed ({exc!r})") from None
        if not ok:
            raise FormatError(f"{path.name}: inconsistent decay fit ({fit.n_exp} components, "
                              f"{len(fit.taus_ns)} lifetimes, {len(fit.fractions)} fractions)")
        return fit


def _component_grad(edges: np.ndarray, tau: float, mu: float, sigma: float,
                    period: float | None):
    """Bin probabilities of one component over contiguous bins (edges, sigma > 0) and their
    derivatives with respect to the rate 1/tau, mu and sigma."""
    lam = 1.0 / tau
    ls = lam * sigma
    ks = [0] if period is None else range(*np.add(_pulse_range(
        float(edges[0]), float(edges[-1]), mu, sigma, lam, period), (0, 1)))
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
        out[1] += (tail * (-(lo + (k1 + 1) * period - mu) + ls * sigma)
                   + a * g * width * np.exp(-lam * width) - tail * period * (g - 1.0))
        out[2] += lam * tail
        out[3] += lam * ls * tail
    return out


# -- fitting ----------------------------------------------------------------------------------
class _Problem:
    """Counts of the fit range, the bins' edges, and the free / fixed parameters.

    Natural parameter vector: taus (n), fractions (n - 1; the last is 1 - their sum), offset,
    width, background.  The optimiser works on log taus, softmax logits, offset, log width and
    background."""

    def __init__(self, y, lo, hi, weight, period, n_exp, fixed, use_background):
        self.y, self.lo, self.hi, self.weight, self.period = y, lo, hi, weight, period
        self.n, self.N = n_exp, float(y.sum())
        self.wsum = float(weight.sum())
        self.edges = np.append(lo, hi[-1])
        self.nz = y > 0
        self.ylogy = float(np.sum(y[self.nz] * np.log(y[self.nz])))
        n = n_exp
        self.names = ([f"tau{i}" for i in range(n)] + [f"frac{i}" for i in range(n - 1)]
                      + ["irf_offset_ns", "irf_width_ns", "background"])
        self.fixed = np.zeros(len(self.names), bool)
        self.values = np.zeros(len(self.names))
        for key, val in fixed.items():
            idx = self.indices(key)
            val = np.atleast_1d(np.asarray(val, np.float64))
            if key == "fractions":
                if val.size != n or min(val) < 0 or val.sum() <= 0:
                    raise SelectionError(f"fixed fractions need {n} values >= 0, got {val}")
                val = (val / val.sum())[: n - 1]
            elif val.size != len(idx):
                raise SelectionError(f"fixed {key} needs {len(idx)} value(s), got {val.size}")
            self.fixed[idx], self.values[idx] = True, val
        if not use_background:
            self.fixed[-1], self.values[-1] = True, 0.0
        self.free = ~self.fixed

    def indices(self, key: str) -> list[int]:
        n = self.n
        spans = {"taus_ns": range(n), "fractions": range(n, 2 * n - 1),
                 "irf_offset_ns": [2 * n - 1], "irf_width_ns": [2 * n], "background": [2 * n + 1]}
        if key not in spans:
            raise SelectionError(f"unknown parameter {key!r}; use one of {', '.join(_PARAMS)}")
        return list(spans[key])

    def split(self, u: np.ndarray):
        n = self.n
        fr = u[n: 2 * n - 1]
        return u[:n], np.append(fr, 1.0 - fr.sum()), u[2 * n - 1], u[2 * n], u[2 * n + 1]

    def nll(self, u: np.ndarray) -> float:
        """Negative log-likelihood minus its saturated value (half the deviance)."""
        taus, fracs, mu, sigma, bg = self.split(u)
        shape = _shape(self.lo, self.hi, taus, fracs, mu, sigma, self.period)
        norm = shape.sum()
        if not norm > 0 or not np.isfinite(norm):
            return 1e300
        m = self.N * ((1.0 - bg) / norm * shape + bg / self.wsum * self.weight)
        m = np.maximum(m, 1e-300)
        return float(self.ylogy - np.dot(self.y[self.nz], np.log(m[self.nz])))

    def nll_grad(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        """:meth:`nll` and its gradient in the optimiser coordinates (contiguous bins)."""
        u = self.to_natural(theta)
        taus, fracs, mu, sigma, bg = self.split(u)
        n, N = self.n, self.N
        comps = [_component_grad(self.edges, tau, mu, sigma, self.period) for tau in taus]
        shape = sum(f * c[0] for f, c in zip(fracs, comps, strict=True))
        S = float(shape.sum())
        if not S > 0 or not np.isfinite(S):
            return 1e300, np.zeros(theta.size)
        m = np.maximum(N * ((1.0 - bg) / S * shape + bg / self.wsum * self.weight), 1e-300)
        value = float(self.ylogy - np.dot(self.y[self.nz], np.log(m[self.nz])))
        g = -self.y / m
        r = N * (1.0 - bg) / S * (g - np.dot(g, shape) / S)
        grad = np.zeros(len(self.names))
        grad[:n] = [f * np.dot(r, c[1]) * -lam_over_tau for f, c, lam_over_tau in
                    zip(fracs, comps, 1.0 / np.square(taus), strict=True)]
        grad[:n] *= taus  # d/d log tau
        if n > 1:
            h = np.array([np.dot(r, c[0]) for c in comps])
            grad[n: 2 * n - 1] = (fracs * (h - np.dot(fracs, h)))[:-1]
        grad[2 * n - 1] = sum(f * np.dot(r, c[2]) for f, c in zip(fracs, comps, strict=True))
        grad[2 * n] = sigma * sum(f * np.dot(r, c[3]) for f, c in zip(fracs, comps, strict=True))
        grad[2 * n + 1] = N * np.dot(g, self.weight / self.wsum - shape / S)
        return value, grad[self.free]

    # optimiser coordinates ---------------------------------------------------------------
    def to_theta(self, u: np.ndarray) -> np.ndarray:
        n = self.n
        fr = np.append(u[n: 2 * n - 1], 1.0 - u[n: 2 * n - 1].sum())
        logits = np.log(np.maximum(fr, 1e-9))
        theta = np.concatenate([np.log(u[:n]), logits[:-1] - logits[-1],
                                [u[2 * n - 1], math.log(u[2 * n]), u[2 * n + 1]]])
        return theta[self.free]

    def to_natural(self, theta: np.ndarray) -> np.ndarray:
        n = self.n
        u = self.values.copy()
        t = np.empty(len(self.names))
        t[self.free] = theta
        u[:n] = np.where(self.free[:n], np.exp(t[:n]), u[:n])
        if n > 1 and self.free[n]:
            lg = np.append(t[n: 2 * n - 1], 0.0)
            e = np.exp(lg - lg.max())
            u[n: 2 * n - 1] = (e / e.sum())[:-1]
        if self.free[2 * n - 1]:
            u[2 * n - 1] = t[2 * n - 1]
        if self.free[2 * n]:
            u[2 * n] = math.exp(t[2 * n])
        if self.free[2 * n + 1]:
            u[2 * n + 1] = t[2 * n + 1]
        return u

    def bounds(self, t_lo: float, t_hi: float, bin_width: float) -> list[tuple[float, float]]:
        n, span = self.n, t_hi - t_lo
        b = ([(math.log(0.25 * bin_width), math.log(10.0 * span))] * n + [(-12.0, 12.0)] * (n - 1)
             + [(t_lo - 0.5 * span, t_hi), (math.log(0.05 * bin_width), math.log(0.25 * span)),
                (0.0, 0.999)])
        return [v for v, free in zip(b, self.free, strict=True) if free]

    def hessian(self, u: np.ndarray, steps: np.ndarray) -> np.ndarray:
        """Central-difference Hessian of :meth:`nll` in the free natural parameters."""
        idx = np.flatnonzero(self.free)
        k = idx.size
        H = np.zeros((k, k))
        f0 = self.nll(u)

        def f(*moves):
            v = u.copy()
            for j, s in moves:
                v[idx[j]] += s * steps[j]
            return self.nll(v)

        for a in range(k):
            H[a, a] = (f((a, 1)) - 2 * f0 + f((a, -1))) / steps[a] ** 2
            for b in range(a):
                H[a, b] = H[b, a] = (f((a, 1), (b, 1)) - f((a, 1), (b, -1)) - f((a, -1), (b, 1))
                                     + f((a, -1), (b, -1))) / (4 * steps[a] * steps[b])
        return H


def _initial(prob: _Problem, t: np.ndarray, bin_width: float, period: float | None,
             initial: Mapping) -> list[np.ndarray]:
    """Starting natural parameter vectors (several lifetime spreads for n_exp > 1)."""
    y, n = prob.y, prob.n
    peak = int(np.argmax(y))
    half = np.flatnonzero(y[: peak + 1] < 0.5 * y[peak])
    mu = float(t[half[-1]] + 0.5 * bin_width) if half.size else float(t[peak])
    tenth = np.flatnonzero(y[: peak + 1] < 0.1 * y[peak])
    rise = (mu - float(t[tenth[-1]] + 0.5 * bin_width)) if tenth.size else 2 * bin_width
    sigma = float(np.clip(rise / 1.28, bin_width, 0.05 * (t[-1] - t[0] + bin_width)))
    floor = float(np.percentile(y, 5))
    bg = float(np.clip(floor * y.size / max(prob.N, 1.0), 0.0, 0.5)) * 0.5
    delay = t - mu
    if period is not None:
        delay = np.mod(delay + 3 * sigma, period) - 3 * sigma
    signal = np.maximum(y - floor, 0.0)
    tau = float(np.dot(signal, np.maximum(delay, 0.0)) / max(signal.sum(), 1.0))
    tau = float(np.clip(tau, bin_width, 0.5 * (t[-1] - t[0])))
    spreads = {1: [(1.0,)], 2: [(0.4, 1.6), (0.25, 2.0), (0.6, 1.2)],
               3: [(0.25, 1.0, 2.5), (0.15, 0.6, 2.0)]}[n]
    starts = []
    for spread in spreads:
        u = prob.values.copy()
        base = np.concatenate([tau * np.array(spread), np.full(n - 1, 1.0 / n),
                               [mu, sigma, bg if prob.free[-1] else 0.0]])
        u[prob.free] = base[prob.free]
        for key, val in initial.items():
            idx = prob.indices(key)
            val = np.atleast_1d(np.asarray(val, np.float64))
            if key == "fractions":
                val = (val / val.sum())[: n - 1] if val.size == n else val
            if val.size != len(idx):
                raise SelectionError(f"initial {key} needs {len(idx)} value(s), got {val.size}")
            u[idx] = np.where(prob.free[idx], val, u[idx])
        starts.append(u)
    return starts[:1] if initial else starts


def _check_histogram(histogram) -> np.ndarray:
    try:
        y = np.asarray(histogram, np.float64)
    except (TypeError, ValueError):
        raise SelectionError(f"the histogram must be an array of counts, got "
                             f"{type(histogram).__name__}") from None
    if y.ndim != 1 or y.size == 0:
        raise SelectionError(f"need a non-empty 1-D histogram of counts per arrival bin, got "
                             f"shape {y.shape}; pool frames / pixels into one histogram first")
    if not np.isfinite(y).all() or y.min() < 0:
        raise SelectionError("the histogram has negative or non-finite counts "
                             f"(min {np.nanmin(y) if np.isfinite(y).any() else y[0]}); pass "
                             "photon counts per arrival bin")
    return y


def fit_decay(histogram, *, bin_width_ps: float, period_ps: float | None = None,
              n_exp: int = 2, fit_range: tuple[int, int] | None = None, background: bool = True,
              initial: Mapping[str, object] | None = None,
              fixed: Mapping[str, object] | None = None) -> DecayFit:
    """Fit a multi-exponential decay with a Gaussian IRF to an arrival-time histogram.

    ``histogram``: photons per arrival bin (e.g. ``Dataset.histogram``); ``bin_width_ps`` and
    ``period_ps`` from the file's ``FlimSettings`` (period None: no wrap-around); ``n_exp``
    components, 1..3.  ``fit_range`` (start, stop) bins, default every bin inside the laser
    period (late photons ignored).  ``background``: fit a uniform background fraction (else 0).
    ``initial`` / ``fixed``: starting / fixed values by name: ``taus_ns`` and ``fractions``
    (n_exp values each), ``irf_offset_ns``, ``irf_width_ns``, ``background``.
    """
    y_all = _check_histogram(histogram)
    if isinstance(n_exp, bool) or n_exp not in (1, 2, 3):
        raise SelectionError(f"n_exp must be 1, 2 or 3 exponential components, got {n_exp!r}")
    if not (bin_width_ps and bin_width_ps > 0 and math.isfinite(bin_width_ps)):
        raise SelectionError(f"the bin width must be a positive number of ps, got "
                             f"{bin_width_ps!r}; take it from the file's FLIM settings")
    if period_ps is not None and not (period_ps > 0 and math.isfinite(period_ps)):
        raise SelectionError(f"the laser period must be a positive number of ps, got "
                             f"{period_ps!r}")
    w = float(bin_width_ps) / 1000.0
    period = None if period_ps is None else float(period_ps) / 1000.0
    if fit_range is None:
        stop = y_all.size if period is None else min(y_all.size, math.ceil(period / w - 1e-9))
        fit_range = (0, stop)
    start, stop = (int(v) for v in fit_range)
    if not 0 <= start < stop <= y_all.size or stop - start < 4:
        raise SelectionError(f"fit range {fit_range} does not select at least 4 of the "
                             f"histogram's {y_all.size} bins")
    y = y_all[start:stop]
    if y.sum() < MIN_PHOTONS:
        raise SelectionError(f"found {y.sum():g} photons in the fit range; at least "
                             f"{MIN_PHOTONS} are needed: pool more pixels or time points")
    t = (np.arange(start, stop) + 0.5) * w
    lo, hi, weight = _edges(t, w, period)
    if np.any((weight <= 0) & (y > 0)):
        raise SelectionError("the fit range has counts in bins past the laser period (late "
                             "photons); fit only bins inside the period")
    prob = _Problem(y, lo, hi, weight, period, n_exp, dict(fixed or {}), background)
    bounds = prob.bounds(float(lo[0]), float(hi[-1]), w)

    best = None
    runs = []
    for u0 in _initial(prob, t, w, period, dict(initial or {})):
        theta0 = np.clip(prob.to_theta(u0), [b[0] for b in bounds], [b[1] for b in bounds])
        if theta0.size == 0:
            res = optimize.OptimizeResult(x=theta0, fun=prob.nll(u0), success=True)
        else:
            res = optimize.minimize(prob.nll_grad, theta0, method="L-BFGS-B", bounds=bounds,
                                    jac=True, options={"maxiter": 2000, "ftol": 1e-11,
                                                            "gtol": 1e-5})
        runs.append(res)
        if best is None or res.fun < best.fun:
            best = res
    # an 'abnormal' line-search stop at the minimum a converged start reached is converged
    tolerance = 1e-9 * max(1.0, abs(float(best.fun)))
    if not best.success and any(r.success and r.fun - best.fun <= tolerance for r in runs):
        best.success = True
    u = prob.to_natural(best.x)
    return _result(prob, u, best, w, period_ps, n_exp, (start, stop))


def _result(prob: _Problem, u: np.ndarray, res, w: float, period_ps, n_exp: int,
            fit_range) -> DecayFit:
    n = n_exp
    scale = np.concatenate([u[:n], np.full(n - 1, 0.01), [w, u[2 * n], 1e-3]])
    steps = 1e-3 * np.maximum(np.abs(u), scale)[prob.free]
    cov = np.full((u.size, u.size), np.nan)
    if steps.size:
        H = prob.hessian(u, steps)
        try:
            c = np.linalg.inv(H)
            if np.all(np.linalg.eigvalsh(0.5 * (H + H.T)) > 0):
                cov[np.ix_(prob.free, prob.free)] = c
        except np.linalg.LinAlgError:
            pass
    var = np.where(prob.free, np.diag(cov), 0.0)
    err = np.sqrt(np.maximum(var, 0.0)) if not np.isnan(var).any() else np.sqrt(var)
    taus, fracs, mu, sigma, bg = prob.split(u)
    fr_idx = list(range(n, 2 * n - 1))
    if fr_idx and prob.free[n]:
        block = cov[np.ix_(fr_idx, fr_idx)]
        fr_err = np.append(err[fr_idx], math.sqrt(max(block.sum(), 0.0))
                           if np.isfinite(block).all() else math.nan)
    else:
        fr_err = np.zeros(n)
    order = np.argsort(taus, kind="stable")
    stderr = {"taus_ns": tuple(float(v) for v in err[:n][order]),
              "fractions": tuple(float(v) for v in fr_err[order]),
              "irf_offset_ns": float(err[2 * n - 1]), "irf_width_ns": float(err[2 * n]),
              "background": float(err[2 * n + 1]), "total": math.sqrt(prob.N)}
    return DecayFit(taus_ns=tuple(float(v) for v in taus[order]),
                    fractions=tuple(float(v) for v in fracs[order]),
                    irf_offset_ns=float(mu), irf_width_ns=float(sigma), background=float(bg),
                    total=prob.N, stderr=stderr, bin_width_ps=w * 1000.0,
                    period_ps=None if period_ps is None else float(period_ps), n_exp=n,
                    deviance=2.0 * float(res.fun), fit_range=tuple(fit_range),
                    converged=bool(res.success), n_free=int(prob.free.sum()))


def fit_dataset_decay(dataset, channel: int | str = 0, *, times=None, mask=None,
                      registration=None, **kwargs) -> DecayFit:
    """:func:`fit_decay` of ``dataset.histogram(channel, times=, mask=)`` with the bin width and
    laser period of the file's FLIM settings (keyword arguments are passed on)."""
    flim = dataset.flim
    hist = dataset.histogram(channel, times=times, mask=mask, registration=registration)
    kwargs.setdefault("period_ps", flim.laser_period_ps)
    return fit_decay(hist, bin_width_ps=flim.bin_width_ns * 1000.0, **kwargs)
