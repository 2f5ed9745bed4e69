"""Poisson maximum-likelihood fitting of the decay model to arrival-time histograms (FLIM).

The model is :func:`~napari_scanimage.flim.decay_model.decay_model`.  The photon number is fixed
at the data's (its maximum likelihood value, uncorrelated with the shape); standard errors come
from the observed Fisher information (numerical Hessian in natural units).  The result is a
:class:`~napari_scanimage.flim.fit_result.DecayFit`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
from scipy import optimize

from ..errors import SelectionError
from .decay_model import bin_edges, component_gradients, decay_shape
from .fit_result import DecayFit

if TYPE_CHECKING:
    from .._core.dataset import Dataset
    from ..analysis.registration import Registration

__all__ = ["MIN_PHOTONS", "fit_decay", "fit_dataset_decay"]

MIN_PHOTONS = 100  # fewer photons in the fit range are refused
_PARAMS = ("taus_ns", "fractions", "irf_offset_ns", "irf_width_ns", "background")
_F64 = npt.NDArray[np.float64]
_BOOL = npt.NDArray[np.bool_]


# -- fitting ----------------------------------------------------------------------------------
class _Problem:
    """Counts of the fit range, the bins' edges, and the free / fixed parameters.

    Natural parameter vector: taus (n), fractions (n - 1; the last is 1 - their sum), offset,
    width, background.  The optimiser works on log taus, softmax logits, offset, log width and
    background.
    """

    def __init__(
        self,
        y: _F64,
        lo: _F64,
        hi: _F64,
        weight: _F64,
        period: float | None,
        n_exp: int,
        fixed: Mapping[str, npt.ArrayLike],
        use_background: bool,
    ) -> None:
        self.y, self.lo, self.hi, self.weight, self.period = y, lo, hi, weight, period
        self.n, self.N = n_exp, float(y.sum())
        self.wsum = float(weight.sum())
        self.edges = np.append(lo, hi[-1])
        self.nz = y > 0
        self.ylogy = float(np.sum(y[self.nz] * np.log(y[self.nz])))
        n = n_exp
        self.names = (
            [f"tau{i}" for i in range(n)]
            + [f"frac{i}" for i in range(n - 1)]
            + ["irf_offset_ns", "irf_width_ns", "background"]
        )
        self.fixed: _BOOL = np.zeros(len(self.names), bool)
        self.values: _F64 = np.zeros(len(self.names))
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
        """Positions of the named parameter(s) in the natural parameter vector."""
        n = self.n
        spans: dict[str, Sequence[int]] = {
            "taus_ns": range(n),
            "fractions": range(n, 2 * n - 1),
            "irf_offset_ns": [2 * n - 1],
            "irf_width_ns": [2 * n],
            "background": [2 * n + 1],
        }
        if key not in spans:
            raise SelectionError(f"unknown parameter {key!r}; use one of {', '.join(_PARAMS)}")
        return list(spans[key])

    def split(self, u: _F64) -> tuple[_F64, _F64, float, float, float]:
        """Taus, all n fractions, IRF offset, IRF width and background of a natural vector."""
        n = self.n
        fr = u[n : 2 * n - 1]
        return u[:n], np.append(fr, 1.0 - fr.sum()), u[2 * n - 1], u[2 * n], u[2 * n + 1]

    def nll(self, u: _F64) -> float:
        """Negative log-likelihood minus its saturated value (half the deviance)."""
        taus, fracs, mu, sigma, bg = self.split(u)
        shape = decay_shape(self.lo, self.hi, taus, fracs, mu, sigma, self.period)
        norm = shape.sum()
        if not norm > 0 or not np.isfinite(norm):
            return 1e300
        m = self.N * ((1.0 - bg) / norm * shape + bg / self.wsum * self.weight)
        m = np.maximum(m, 1e-300)
        return float(self.ylogy - np.dot(self.y[self.nz], np.log(m[self.nz])))

    def nll_grad(self, theta: _F64) -> tuple[float, _F64]:
        """:meth:`nll` and its gradient in the optimiser coordinates (contiguous bins)."""
        u = self.to_natural(theta)
        taus, fracs, mu, sigma, bg = self.split(u)
        n, N = self.n, self.N
        comps = [component_gradients(self.edges, tau, mu, sigma, self.period) for tau in taus]
        shape = sum(f * c[0] for f, c in zip(fracs, comps, strict=True))
        S = float(shape.sum())
        if not S > 0 or not np.isfinite(S):
            return 1e300, np.zeros(theta.size)
        m = np.maximum(N * ((1.0 - bg) / S * shape + bg / self.wsum * self.weight), 1e-300)
        value = float(self.ylogy - np.dot(self.y[self.nz], np.log(m[self.nz])))
        g = -self.y / m
        r = N * (1.0 - bg) / S * (g - np.dot(g, shape) / S)
        grad = np.zeros(len(self.names))
        grad[:n] = [
            f * np.dot(r, c[1]) * -lam_over_tau
            for f, c, lam_over_tau in zip(fracs, comps, 1.0 / np.square(taus), strict=True)
        ]
        grad[:n] *= taus  # d/d log tau
        if n > 1:
            h = np.array([np.dot(r, c[0]) for c in comps])
            grad[n : 2 * n - 1] = (fracs * (h - np.dot(fracs, h)))[:-1]
        grad[2 * n - 1] = sum(f * np.dot(r, c[2]) for f, c in zip(fracs, comps, strict=True))
        grad[2 * n] = sigma * sum(f * np.dot(r, c[3]) for f, c in zip(fracs, comps, strict=True))
        grad[2 * n + 1] = N * np.dot(g, self.weight / self.wsum - shape / S)
        return value, grad[self.free]

    # optimiser coordinates ---------------------------------------------------------------
    def to_theta(self, u: _F64) -> _F64:
        """Optimiser coordinates of the free parameters of a natural vector."""
        n = self.n
        fr = np.append(u[n : 2 * n - 1], 1.0 - u[n : 2 * n - 1].sum())
        logits = np.log(np.maximum(fr, 1e-9))
        theta = np.concatenate(
            [
                np.log(u[:n]),
                logits[:-1] - logits[-1],
                [u[2 * n - 1], math.log(u[2 * n]), u[2 * n + 1]],
            ]
        )
        return theta[self.free]

    def to_natural(self, theta: _F64) -> _F64:
        """Natural vector of optimiser coordinates (fixed parameters at their values)."""
        n = self.n
        u = self.values.copy()
        t = np.empty(len(self.names))
        t[self.free] = theta
        u[:n] = np.where(self.free[:n], np.exp(t[:n]), u[:n])
        if n > 1 and self.free[n]:
            lg = np.append(t[n : 2 * n - 1], 0.0)
            e = np.exp(lg - lg.max())
            u[n : 2 * n - 1] = (e / e.sum())[:-1]
        if self.free[2 * n - 1]:
            u[2 * n - 1] = t[2 * n - 1]
        if self.free[2 * n]:
            u[2 * n] = math.exp(t[2 * n])
        if self.free[2 * n + 1]:
            u[2 * n + 1] = t[2 * n + 1]
        return u

    def bounds(self, t_lo: float, t_hi: float, bin_width: float) -> list[tuple[float, float]]:
        """Optimiser bounds of the free parameters."""
        n, span = self.n, t_hi - t_lo
        b = (
            [(math.log(0.25 * bin_width), math.log(10.0 * span))] * n
            + [(-12.0, 12.0)] * (n - 1)
            + [
                (t_lo - 0.5 * span, t_hi),
                (math.log(0.05 * bin_width), math.log(0.25 * span)),
                (0.0, 0.999),
            ]
        )
        return [v for v, free in zip(b, self.free, strict=True) if free]

    def hessian(self, u: _F64, steps: _F64) -> _F64:
        """Central-difference Hessian of :meth:`nll` in the free natural parameters."""
        idx = np.flatnonzero(self.free)
        k = idx.size
        H = np.zeros((k, k))
        f0 = self.nll(u)

        def f(*moves: tuple[int, int]) -> float:
            v = u.copy()
            for j, s in moves:
                v[idx[j]] += s * steps[j]
            return self.nll(v)

        for a in range(k):
            H[a, a] = (f((a, 1)) - 2 * f0 + f((a, -1))) / steps[a] ** 2
            for b in range(a):
                H[a, b] = H[b, a] = (
                    f((a, 1), (b, 1))
                    - f((a, 1), (b, -1))
                    - f((a, -1), (b, 1))
                    + f((a, -1), (b, -1))
                ) / (4 * steps[a] * steps[b])
        return H


def _initial(
    prob: _Problem,
    t: _F64,
    bin_width: float,
    period: float | None,
    initial: Mapping[str, npt.ArrayLike],
) -> list[_F64]:
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
    by_n: dict[int, list[tuple[float, ...]]] = {
        1: [(1.0,)],
        2: [(0.4, 1.6), (0.25, 2.0), (0.6, 1.2)],
        3: [(0.25, 1.0, 2.5), (0.15, 0.6, 2.0)],
    }
    spreads = by_n[n]
    starts = []
    for spread in spreads:
        u = prob.values.copy()
        base = np.concatenate(
            [
                tau * np.array(spread),
                np.full(n - 1, 1.0 / n),
                [mu, sigma, bg if prob.free[-1] else 0.0],
            ]
        )
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


def _check_histogram(histogram: npt.ArrayLike) -> _F64:
    try:
        y = np.asarray(histogram, np.float64)
    except (TypeError, ValueError):
        raise SelectionError(
            f"the histogram must be an array of counts, got {type(histogram).__name__}"
        ) from None
    if y.ndim != 1 or y.size == 0:
        raise SelectionError(
            f"need a non-empty 1-D histogram of counts per arrival bin, got "
            f"shape {y.shape}; pool frames / pixels into one histogram first"
        )
    if not np.isfinite(y).all() or y.min() < 0:
        raise SelectionError(
            "the histogram has negative or non-finite counts "
            f"(min {np.nanmin(y) if np.isfinite(y).any() else y[0]}); pass "
            "photon counts per arrival bin"
        )
    return y


def fit_decay(
    histogram: npt.ArrayLike,
    *,
    bin_width_ps: float,
    period_ps: float | None = None,
    n_exp: int = 2,
    fit_range: tuple[int, int] | None = None,
    background: bool = True,
    initial: Mapping[str, npt.ArrayLike] | None = None,
    fixed: Mapping[str, npt.ArrayLike] | None = None,
) -> DecayFit:
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
        raise SelectionError(
            f"the bin width must be a positive number of ps, got "
            f"{bin_width_ps!r}; take it from the file's FLIM settings"
        )
    if period_ps is not None and not (period_ps > 0 and math.isfinite(period_ps)):
        raise SelectionError(f"the laser period must be a positive number of ps, got {period_ps!r}")
    w = float(bin_width_ps) / 1000.0
    period = None if period_ps is None else float(period_ps) / 1000.0
    if fit_range is None:
        stop = y_all.size if period is None else min(y_all.size, math.ceil(period / w - 1e-9))
        fit_range = (0, stop)
    start, stop = (int(v) for v in fit_range)
    if not 0 <= start < stop <= y_all.size or stop - start < 4:
        raise SelectionError(
            f"fit range {fit_range} does not select at least 4 of the histogram's {y_all.size} bins"
        )
    y = y_all[start:stop]
    if y.sum() < MIN_PHOTONS:
        raise SelectionError(
            f"found {y.sum():g} photons in the fit range; at least "
            f"{MIN_PHOTONS} are needed: pool more pixels or time points"
        )
    t = (np.arange(start, stop, dtype=np.float64) + 0.5) * w
    lo, hi, weight = bin_edges(t, w, period)
    if np.any((weight <= 0) & (y > 0)):
        raise SelectionError(
            "the fit range has counts in bins past the laser period (late "
            "photons); fit only bins inside the period"
        )
    prob = _Problem(y, lo, hi, weight, period, n_exp, dict(fixed or {}), background)
    bounds = prob.bounds(float(lo[0]), float(hi[-1]), w)

    runs = []
    for u0 in _initial(prob, t, w, period, dict(initial or {})):
        theta0 = np.clip(prob.to_theta(u0), [b[0] for b in bounds], [b[1] for b in bounds])
        if theta0.size == 0:
            res = optimize.OptimizeResult(x=theta0, fun=prob.nll(u0), success=True)
        else:
            res = optimize.minimize(
                prob.nll_grad,
                theta0,
                method="L-BFGS-B",
                bounds=bounds,
                jac=True,
                options={"maxiter": 2000, "ftol": 1e-11, "gtol": 1e-5},
            )
        runs.append(res)
    best = min(runs, key=lambda r: r.fun)  # the first of equal minima, as the starts' order
    # an 'abnormal' line-search stop at the minimum a converged start reached is converged
    tolerance = 1e-9 * max(1.0, abs(float(best.fun)))
    if not best.success and any(r.success and r.fun - best.fun <= tolerance for r in runs):
        best.success = True
    u = prob.to_natural(best.x)
    return _result(prob, u, best, w, period_ps, n_exp, (start, stop))


def _result(
    prob: _Problem,
    u: _F64,
    res: optimize.OptimizeResult,
    w: float,
    period_ps: float | None,
    n_exp: int,
    fit_range: tuple[int, int],
) -> DecayFit:
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
        fr_err = np.append(
            err[fr_idx], math.sqrt(max(block.sum(), 0.0)) if np.isfinite(block).all() else math.nan
        )
    else:
        fr_err = np.zeros(n)
    order = np.argsort(taus, kind="stable")
    stderr: dict[str, float | tuple[float, ...]] = {
        "taus_ns": tuple(float(v) for v in err[:n][order]),
        "fractions": tuple(float(v) for v in fr_err[order]),
        "irf_offset_ns": float(err[2 * n - 1]),
        "irf_width_ns": float(err[2 * n]),
        "background": float(err[2 * n + 1]),
        "total": math.sqrt(prob.N),
    }
    return DecayFit(
        taus_ns=tuple(float(v) for v in taus[order]),
        fractions=tuple(float(v) for v in fracs[order]),
        irf_offset_ns=float(mu),
        irf_width_ns=float(sigma),
        background=float(bg),
        total=prob.N,
        stderr=stderr,
        bin_width_ps=w * 1000.0,
        period_ps=None if period_ps is None else float(period_ps),
        n_exp=n,
        deviance=2.0 * float(res.fun),
        fit_range=fit_range,
        converged=bool(res.success),
        n_free=int(prob.free.sum()),
    )


def fit_dataset_decay(
    dataset: Dataset,
    channel: int | str = 0,
    *,
    times: slice | npt.ArrayLike | None = None,
    mask: npt.NDArray[np.bool_] | None = None,
    registration: Registration | None = None,
    **kwargs: Any,
) -> DecayFit:
    """Fit the decay of a recording's pooled arrival-time histogram.

    :func:`fit_decay` of ``dataset.histogram(channel, times=, mask=, registration=)`` with
    the bin width and laser period of the file's FLIM settings.

    Parameters
    ----------
    dataset : Dataset
        A `.siff` recording.
    channel : int or str
        Channel index or name.
    times : slice or sequence of int, optional
        Time samples (volumes) to pool; default all.
    mask : bool array (Y, X) or (Z, Y, X), optional
        Only photons in these pixels.
    registration : Registration, optional
        Photons move by the registration's shifts before the mask applies.
    **kwargs
        Passed on to :func:`fit_decay` (``period_ps`` defaults to the file's).

    Returns
    -------
    DecayFit
        The fit.
    """
    flim = dataset.flim
    hist = dataset.histogram(channel, times=times, mask=mask, registration=registration)
    kwargs.setdefault("period_ps", flim.laser_period_ps)
    return fit_decay(hist, bin_width_ps=flim.bin_width_ns * 1000.0, **kwargs)
