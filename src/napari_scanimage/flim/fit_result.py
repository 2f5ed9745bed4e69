"""The result of a decay fit (:class:`DecayFit`): parameters, diagnostics and its JSON file.

Results are saved as versioned JSON, written atomically.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from .._atomic import atomic_write, check_header
from ..errors import FormatError
from .decay_model import bin_edges, decay_shape, mix_background

__all__ = ["FORMAT", "VERSION", "DecayFit"]

FORMAT = "napari-scanimage-decay-fit"
VERSION = 1
_SCALARS = ("irf_offset_ns", "irf_width_ns", "background", "total", "bin_width_ps", "deviance")


def _json_scalar(v: float | None) -> float | None:
    if v is None:
        return None
    v = float(v)
    return v if math.isfinite(v) else None


def _json_value(v: float | Sequence[float] | None) -> float | list[float | None] | None:
    """A number or a tuple of numbers as JSON (NaN and infinities as null)."""
    if isinstance(v, Sequence):
        return [_json_scalar(x) for x in v]
    return _json_scalar(v)


def _float_from_json(v: Any) -> float:
    return math.nan if v is None else float(v)


def _from_json(v: Any) -> float | tuple[float, ...]:
    if isinstance(v, list):
        return tuple(_float_from_json(x) for x in v)
    return _float_from_json(v)


def _floats_from_json(v: Any) -> tuple[float, ...]:
    return tuple(_float_from_json(x) for x in v)


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
    stderr: dict[str, float | tuple[float, ...]] = field(default_factory=dict)
    bin_width_ps: float = 1.0
    period_ps: float | None = None
    n_exp: int = 1
    deviance: float = math.nan
    fit_range: tuple[int, int] = (0, 0)
    converged: bool = True
    n_free: int = -1

    def _errors(self, key: str, default: tuple[float, ...] = ()) -> tuple[float, ...]:
        """Standard errors of the lifetimes or the fractions (a tuple, one per component)."""
        err = self.stderr.get(key, default)
        return err if isinstance(err, tuple) else (err,)

    @property
    def free_parameters(self) -> int:
        """Parameters the fit adjusted: :attr:`n_free`, or, when unknown, those with a
        non-zero standard error (fixed ones have 0; the last fraction follows from the
        others).
        """
        if self.n_free >= 0:
            return int(self.n_free)
        taus = self._errors("taus_ns", (math.nan,) * self.n_exp)
        fracs = self._errors("fractions", (math.nan,) * self.n_exp)
        count = sum(1 for e in taus if e != 0)
        count += (self.n_exp - 1) if any(e != 0 for e in fracs) else 0
        return count + sum(
            1
            for k in ("irf_offset_ns", "irf_width_ns", "background")
            if self.stderr.get(k, math.nan) != 0
        )

    @property
    def degrees_of_freedom(self) -> int:
        """Bins in the fit range minus the free parameters minus one (the photon number is
        fixed at the data's).
        """
        start, stop = self.fit_range
        return int(stop - start - self.free_parameters - 1)

    @property
    def reduced_chi2(self) -> float:
        """Reduced χ²: the Poisson deviance (the likelihood-ratio χ² of counts, valid with
        few photons per bin) over :attr:`degrees_of_freedom`; about 1 for a good fit, NaN
        without degrees of freedom.
        """
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
                out.append(
                    f"τ{k + 1} = {a:.3g} ns ≈ τ{k + 2} = {b:.3g} ns (fit "
                    f"{self.n_exp - 1} component{'s' if self.n_exp > 2 else ''})"
                )
        if self.n_exp > 1:
            for k, f in enumerate(fracs):
                if not 0 <= f <= 1:
                    out.append(f"fraction {k + 1} = {f:.3g} lies outside [0, 1]")
                elif f < 0.01:
                    out.append(f"component {k + 1} carries {100 * f:.2g} % of the photons")
        errs = [*self._errors("taus_ns"), *self._errors("fractions")]
        if any(not math.isfinite(e) for e in errs):
            out.append("standard errors undefined (parameters not determined)")
        else:
            big = [
                f"τ{k + 1} {t:.3g} ± {e:.2g} ns"
                for k, (t, e) in enumerate(zip(taus, self._errors("taus_ns"), strict=False))
                if e > t
            ]
            big += [
                f"fraction {k + 1} {f:.2g} ± {e:.2g}"
                for k, (f, e) in enumerate(zip(fracs, self._errors("fractions"), strict=False))
                if self.n_exp > 1 and e > 0.5
            ]
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
        delay of a photon after the IRF.
        """
        return float(sum(f * t for f, t in zip(self.fractions, self.taus_ns, strict=True)))

    @property
    def amplitude_mean_tau_ns(self) -> float:
        """Amplitude-weighted mean lifetime Σ aᵢ τᵢ / Σ aᵢ with amplitudes aᵢ = fᵢ / τᵢ."""
        return 1.0 / sum(f / t for f, t in zip(self.fractions, self.taus_ns, strict=True))

    def model(self, bins: npt.ArrayLike | None = None) -> npt.NDArray[np.float64]:
        """Expected counts of bin indices, on the fit's scale.

        Parameters
        ----------
        bins : array_like of int, optional
            Bin indices; default the fit range.

        Returns
        -------
        ndarray of float64
            Expected counts, shaped like ``bins``; the counts over the fit range sum to
            :attr:`total`.
        """
        start, stop = self.fit_range
        bins = np.arange(start, stop) if bins is None else np.asarray(bins)
        w = self.bin_width_ps / 1000.0
        period = None if self.period_ps is None else self.period_ps / 1000.0
        lo_f, hi_f, wt_f = bin_edges(
            (np.arange(start, stop, dtype=np.float64) + 0.5) * w, w, period
        )
        lo, hi, wt = bin_edges((bins.astype(np.float64).ravel() + 0.5) * w, w, period)
        args = (self.taus_ns, self.fractions, self.irf_offset_ns, self.irf_width_ns, period)
        norm = float(decay_shape(lo_f, hi_f, *args).sum())
        out = mix_background(
            decay_shape(lo, hi, *args), wt, self.background, self.total, norm, float(wt_f.sum())
        )
        return out.reshape(bins.shape)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable fields (NaN as None)."""
        out = {k: _json_value(getattr(self, k)) for k in ("taus_ns", "fractions", *_SCALARS)}
        return {
            **out,
            "stderr": {k: _json_value(v) for k, v in self.stderr.items()},
            "period_ps": _json_value(self.period_ps),
            "n_exp": int(self.n_exp),
            "fit_range": list(self.fit_range),
            "converged": bool(self.converged),
            "n_free": int(self.n_free),
        }

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write as JSON (format tag and version first), atomically."""
        doc = {"format": FORMAT, "version": VERSION, **self.to_dict()}
        text = json.dumps(doc, indent=1, allow_nan=False)
        return atomic_write(path, (text + "\n").encode())

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> DecayFit:
        """Read a file written by :meth:`save`; FormatError if it is not one."""
        path = Path(path)
        try:
            doc = json.loads(path.read_bytes().decode())
        except (OSError, ValueError) as exc:
            raise FormatError(f"{path.name} is not a decay-fit file ({exc})") from None
        check_header(doc, FORMAT, VERSION, path.name, "decay-fit file")
        try:
            scalars = {k: _float_from_json(doc[k]) for k in _SCALARS}
            fit_range = tuple(int(v) for v in doc["fit_range"])
            if len(fit_range) != 2:
                raise ValueError(f"fit_range needs (start, stop), got {fit_range}")
            fit = cls(
                _floats_from_json(doc["taus_ns"]),
                _floats_from_json(doc["fractions"]),
                irf_offset_ns=scalars["irf_offset_ns"],
                irf_width_ns=scalars["irf_width_ns"],
                background=scalars["background"],
                total=scalars["total"],
                bin_width_ps=scalars["bin_width_ps"],
                deviance=scalars["deviance"],
                stderr={str(k): _from_json(v) for k, v in doc["stderr"].items()},
                period_ps=None if doc["period_ps"] is None else float(doc["period_ps"]),
                n_exp=int(doc["n_exp"]),
                fit_range=(fit_range[0], fit_range[1]),
                converged=bool(doc["converged"]),
                n_free=int(doc.get("n_free", -1)),
            )  # files before n_free: inferred
            ok = len(fit.taus_ns) == fit.n_exp == len(fit.fractions) and fit.bin_width_ps > 0
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            raise FormatError(f"{path.name}: a field is missing or malformed ({exc!r})") from None
        if not ok:
            raise FormatError(
                f"{path.name}: inconsistent decay fit ({fit.n_exp} components, "
                f"{len(fit.taus_ns)} lifetimes, {len(fit.fractions)} fractions)"
            )
        return fit
