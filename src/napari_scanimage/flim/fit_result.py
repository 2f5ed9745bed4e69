"""The result of a decay fit (:class:`DecayFit`): parameters, diagnostics and its JSON file.

Results are saved as versioned JSON, written atomically.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .._atomic import atomic_write, check_header
from ..errors import FormatError
from .decay_model import bin_edges, decay_shape, mix_background

__all__ = ["FORMAT", "VERSION", "DecayFit"]

FORMAT = "napari-scanimage-decay-fit"
VERSION = 1
_SCALARS = ("irf_offset_ns", "irf_width_ns", "background", "total", "bin_width_ps", "deviance")


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
        lo_f, hi_f, wt_f = bin_edges((np.arange(start, stop) + 0.5) * w, w, period)
        lo, hi, wt = bin_edges((bins.astype(np.float64).ravel() + 0.5) * w, w, period)
        args = (self.taus_ns, self.fractions, self.irf_offset_ns, self.irf_width_ns, period)
        norm = float(decay_shape(lo_f, hi_f, *args).sum())
        out = mix_background(decay_shape(lo, hi, *args), wt, self.background, self.total, norm,
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
