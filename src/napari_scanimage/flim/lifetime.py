"""Lifetime traces of ROIs from photon arrival times (`.siff` only).

Functions
---------
lifetime_traces
    Per ROI and time point: empirical lifetime (mean arrival time) or phasor coordinates, with
    photon counts and confidence intervals, as a :class:`LifetimeTraces` result.

Method
------
One pass over the photons of the selected pages gathers, for every ROI and time point, the
exact photon moments ``n``, ``Σt`` and ``Σt²`` (t = arrival bin, integer arithmetic) and, for
phasors, ``Σcos``, ``Σsin``, ``Σcos²`` and ``Σsin²`` of the photons' phases.  ROIs are a sparse
membership table per plane (a photon counts once for every ROI holding its pixel, so ROIs may
overlap); all planes of an ROI and all frames-per-slice samples are pooled.  With a
``registration`` each photon counts where the registration moves it (whole pixels, as
:meth:`Dataset.photon_sums`).

Empirical lifetime: ``mean(t)·bin_width − irf_offset_ns``.  Its standard error is
``sd(t)/√n`` (sample standard deviation, n − 1 in the denominator) and the interval is
``± t_{n−1}·SE`` (Student's t quantile of ``confidence``); NaN with fewer than two photons.

Phasor at harmonic h: a photon in bin t has phase ``φ = 2π·h·t·bin_width / laser_period``
(bin start times, the same convention as the empirical lifetime); ``g = mean(cos φ)``,
``s = mean(sin φ)``.  The phase is periodic, so a photon at or after the laser period (bins past
``period / bin_width``) counts as ``t − period``, i.e. as coming from the next pulse, exactly as
folding the histogram modulo the period would.  When the period is a whole number N of bins this
equals ``phasor_from_signal`` of the folded N-bin histogram.  Intervals are ``± t_{n−1}·SE``
with ``SE = sd(cos φ)/√n`` (likewise for s).
"""

from __future__ import annotations

import csv
import io
import math
import os
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
from numba import njit
from scipy import stats

from .._atomic import atomic_write
from ..errors import EmptyRoiWarning, SelectionError

if TYPE_CHECKING:
    from .._core.dataset import Dataset
    from ..analysis.registration import Registration
    from ..analysis.rois import RoiSet
    from ..io.siff import SiffReader
    from .fit_result import DecayFit

__all__ = ["KINDS", "LifetimeTraces", "lifetime_traces"]

KINDS = ("lifetime", "phasor")
_LOW32 = np.uint64(0xFFFFFFFF)
_U16 = np.uint64(0xFFFF)
_S48 = np.uint64(48)
_S32 = np.uint64(32)
BAD_COORD, BAD_COUNT = 1, 2
_F64 = npt.NDArray[np.float64]
_I64 = npt.NDArray[np.int64]
_INT = npt.NDArray[np.integer[Any]]
_Views64 = tuple[npt.NDArray[np.uint64], ...]
_Views16 = tuple[npt.NDArray[np.uint16], ...]


@dataclass(frozen=True)
class LifetimeTraces:
    """Lifetime or phasor traces of several ROIs.

    Attributes
    ----------
    values : float64 (R, T) for kind "lifetime" (ns), (R, T, 2) for "phasor" (g, s)
        NaN where an ROI caught no photon.
    counts : int64 (R, T)
        Photons behind each value.
    ci_low, ci_high : float64, same shape as ``values``
        Confidence interval (level ``confidence``); NaN with fewer than two photons.
    names : list of str
    time : float64 (T,)
        Seconds from the start of the acquisition (mean over pooled volumes).
    channel : str
    kind : str
        "lifetime" or "phasor".
    harmonic : int
    irf_offset_ns : float
        Subtracted from the lifetimes.
    confidence : float
    """

    values: np.ndarray
    counts: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    names: list[str]
    time: np.ndarray
    channel: str
    kind: str
    harmonic: int = 1
    irf_offset_ns: float = 0.0
    confidence: float = 0.95

    def to_csv(self, path: str | os.PathLike[str]) -> Path:
        """Write a tidy CSV (time_s, roi, channel, metric, value, ci_low, ci_high, photons),
        atomically.  Metrics: ``lifetime_ns``, or ``phasor_g_h<h>`` and ``phasor_s_h<h>``.
        """
        return atomic_write(path, self.csv_text().encode())

    def csv_text(self) -> str:
        """The tidy CSV as text."""
        out = io.StringIO(newline="")
        writer = csv.writer(out)
        writer.writerow(
            ["time_s", "roi", "channel", "metric", "value", "ci_low", "ci_high", "photons"]
        )
        if self.kind == "lifetime":
            parts = [("lifetime_ns", self.values, self.ci_low, self.ci_high)]
        else:
            parts = [
                (
                    f"phasor_{c}_h{self.harmonic}",
                    self.values[..., k],
                    self.ci_low[..., k],
                    self.ci_high[..., k],
                )
                for k, c in enumerate("gs")
            ]
        times = self.time.tolist()
        for r, name in enumerate(self.names):
            n = self.counts[r].tolist()
            for metric, v, lo, hi in parts:
                for t, a, b, c, m in zip(
                    times, v[r].tolist(), lo[r].tolist(), hi[r].tolist(), n, strict=True
                ):
                    writer.writerow(
                        [repr(t), name, self.channel, metric, repr(a), repr(b), repr(c), m]
                    )
        return out.getvalue()


# -- photon moments -----------------------------------------------------------------------------
@njit(nogil=True, cache=True)
def _moments_kernel(
    v64: _Views64,
    v16: _Views16,
    kinds: _I64,
    starts: _I64,
    counts: _I64,
    rasters: _I64,
    rows: _I64,
    planes: _I64,
    indptr: _I64,
    indices: _I64,
    uptr: _I64,
    upix: _I64,
    height: int,
    width: int,
    omega: float,
    phasor: bool,
    out_i: _I64,
    out_f: _F64,
    status: npt.NDArray[np.int8],
) -> None:
    """Photon moments of every mask per output row: ``out_i[row, mask]`` += (n, Σt, Σt²) and,
    with ``phasor``, ``out_f[row, mask]`` += (Σcos, Σsin, Σcos², Σsin²) of phase ``omega·t``.

    Pages and masks as in the reader's ``mask_sums`` kernel (CSR table per plane, masked pixels
    listed in ``upix[uptr[z]:uptr[z + 1]]``).
    """
    npix = height * width
    for i in range(kinds.shape[0]):
        oi = out_i[rows[i]]
        of = out_f[rows[i]]
        ptr = indptr[planes[i]]
        n = counts[i]
        if kinds[i] == 0:
            view = v64[starts[i] % 8]
            base = starts[i] // 8
            for j in range(n):
                rec = view[base + j]
                y = np.int64(rec >> _S48)
                x = np.int64((rec >> _S32) & _U16)
                if y >= height or x >= width:
                    status[i] = BAD_COORD
                    break
                p = y * width + x
                a = ptr[p]
                b = ptr[p + 1]
                if a == b:
                    continue
                t = np.int64(rec & _LOW32)
                c = 0.0
                s = 0.0
                if phasor:
                    c = math.cos(omega * t)
                    s = math.sin(omega * t)
                for q in range(a, b):
                    r = indices[q]
                    oi[r, 0] += 1
                    oi[r, 1] += t
                    oi[r, 2] += t * t
                    if phasor:
                        of[r, 0] += c
                        of[r, 1] += s
                        of[r, 2] += c * c
                        of[r, 3] += s * s
        else:
            view = v16[starts[i] % 2]
            base = starts[i] // 2
            z = planes[i]
            rview = v16[rasters[i] % 2]
            rbase = rasters[i] // 2
            pos: int | np.int64 = 0  # (annotations of locals are not seen by numba)
            prev = 0
            for u in range(uptr[z], uptr[z + 1]):  # only pixels inside some mask
                k = upix[u]
                for m in range(prev, k):
                    pos += np.int64(rview[rbase + m])
                cnt = np.int64(rview[rbase + k])
                prev = k + 1
                if pos + cnt > n:
                    status[i] = BAD_COUNT
                    break
                if cnt:
                    s1: int | np.int64 = 0
                    s2: int | np.int64 = 0
                    sc = 0.0
                    ss = 0.0
                    scc = 0.0
                    sss = 0.0
                    for j in range(pos, pos + cnt):
                        t = np.int64(view[base + j])
                        s1 += t
                        s2 += t * t
                        if phasor:
                            c = math.cos(omega * t)
                            s = math.sin(omega * t)
                            sc += c
                            ss += s
                            scc += c * c
                            sss += s * s
                    for q in range(ptr[k], ptr[k + 1]):
                        r = indices[q]
                        oi[r, 0] += cnt
                        oi[r, 1] += s1
                        oi[r, 2] += s2
                        if phasor:
                            of[r, 0] += sc
                            of[r, 1] += ss
                            of[r, 2] += scc
                            of[r, 3] += sss
                pos += cnt
            if status[i] == 0:
                for m in range(prev, npix):
                    pos += np.int64(rview[rbase + m])
                if pos != n:
                    status[i] = BAD_COUNT


def _file_moments(
    reader: SiffReader,
    pages: npt.ArrayLike,
    rows: npt.ArrayLike,
    planes: npt.ArrayLike,
    nrows: int,
    indptr: _I64,
    indices: _I64,
    nmasks: int,
    omega: float,
    phasor: bool,
) -> tuple[_I64, _F64]:
    """Moments of one file's pages (local indices): int64 (nrows, R, 3), float64 (nrows, R, 4)."""
    from ..io.siff import pixel_lists

    pages = np.asarray(pages, np.int64).reshape(-1)
    rows = np.asarray(rows, np.int64).reshape(-1)
    planes = np.asarray(planes, np.int64).reshape(-1)
    order = np.argsort(rows, kind="stable")
    pages, rows, planes = (np.ascontiguousarray(a[order]) for a in (pages, rows, planes))
    reader.check_pages(pages)
    out_i = np.zeros((nrows, nmasks, 3), np.int64)
    out_f = np.zeros((nrows, nmasks, 4 if phasor else 0), np.float64)
    status = np.zeros(len(pages), np.int8)
    uptr, upix = pixel_lists(indptr[:, 1:] > indptr[:, :-1])

    def run(sl: slice) -> None:
        _moments_kernel(
            reader.words64,
            reader.words16,
            reader.kinds[pages[sl]],
            reader.starts[pages[sl]],
            reader.counts[pages[sl]],
            reader.rasters[pages[sl]],
            rows[sl],
            planes[sl],
            indptr,
            indices,
            uptr,
            upix,
            reader.height,
            reader.width,
            float(omega),
            bool(phasor),
            out_i,
            out_f,
            status[sl],
        )

    reader.run_parallel(pages, rows, run)  # slices never share an output row
    reader.raise_for_status(pages, status)
    return out_i, out_f


def _roi_moments(
    dataset: Dataset,
    stack: npt.NDArray[np.bool_],
    channel: int | str,
    times: slice | npt.ArrayLike | None,
    registration: Registration | None,
    bin_volumes: int,
    omega: float,
    phasor: bool,
) -> tuple[_I64, _F64, _I64]:
    """Moments per (pooled time point, ROI) of bool masks ``stack`` (R, Z, Y, X); also the
    selected time rows.
    """
    from .._core.photons import shifted_csr
    from ..io.siff import masks_to_csr

    pages, rows_t = dataset.volume_pages(channel, times)
    n, Z, F = pages.shape
    R = stack.shape[0]
    groups = -(-n // bin_volumes)
    rows = np.broadcast_to((np.arange(n) // bin_volumes)[:, None, None], pages.shape)
    zs = np.broadcast_to(np.arange(Z)[None, :, None], pages.shape)
    if registration is None:
        passes: Iterable[tuple[slice | _INT, _INT, tuple[_I64, _I64]]] = [
            (slice(None), zs.reshape(-1), masks_to_csr(stack))
        ]
    else:
        Y, X = dataset.spec.frame_shape
        where = [np.nonzero(stack[:, z]) for z in range(Z)]
        passes = (
            (at, group, shifted_csr(where, keys, (Y, X), p))
            for at, group, keys, p in dataset.shift_groups(registration, rows_t, F, Z, Y * X)
        )
    out_i = np.zeros((groups, R, 3), np.int64)
    out_f = np.zeros((groups, R, 4 if phasor else 0), np.float64)
    for at, group_planes, (indptr, indices) in passes:
        group_pages, group_rows = pages.reshape(-1)[at], rows.reshape(-1)[at]
        for reader, local, sel in dataset.spec.siff_by_file(group_pages):
            a, b = _file_moments(
                reader,
                local,
                group_rows[sel],
                group_planes[sel],
                groups,
                indptr,
                indices,
                R,
                omega,
                phasor,
            )
            out_i += a
            out_f += b
    return out_i, out_f, rows_t


# -- statistics ---------------------------------------------------------------------------------
def _mean_ci(n: _F64, s1: _F64, s2: _F64, confidence: float) -> tuple[_F64, _F64]:
    """Mean, and half-width of its Student-t interval, from n, Σx, Σx² (float arrays)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = s1 / n
        var = np.maximum(s2 - s1 * mean, 0.0) / (n - 1)
        se = np.sqrt(var / n)
        q = stats.t.ppf(0.5 + confidence / 2, np.where(n > 1, n - 1, np.nan))
    mean = np.where(n > 0, mean, np.nan)
    return mean, np.where(n > 1, q * se, np.nan)


def _offset_ns(irf_offset_ns: float | DecayFit) -> float:
    given: Any = getattr(irf_offset_ns, "irf_offset_ns", irf_offset_ns)  # a DecayFit or not
    try:
        value = float(given)
    except (TypeError, ValueError):
        raise SelectionError(
            f"irf_offset_ns must be a number or a DecayFit, got {irf_offset_ns!r}"
        ) from None
    if not math.isfinite(value):
        raise SelectionError(f"irf_offset_ns must be finite, got {value}")
    return value


def lifetime_traces(
    dataset: Dataset,
    rois: RoiSet | Mapping[str, npt.ArrayLike],
    *,
    channel: int | str = 0,
    kind: str = "lifetime",
    harmonic: int = 1,
    irf_offset_ns: float | DecayFit = 0.0,
    bin_volumes: int = 1,
    times: slice | npt.ArrayLike | None = None,
    registration: Registration | None = None,
    confidence: float = 0.95,
) -> LifetimeTraces:
    """Empirical lifetime or phasor of every ROI at every time point, in one photon pass.

    Parameters
    ----------
    dataset : Dataset
        A `.siff` recording (photon arrival times).
    rois : RoiSet or dict of name → bool mask (Y, X) or (Z, Y, X)
        A 2-D ROI covers every plane; all planes of an ROI are pooled.
    channel : int or str
    kind : {"lifetime", "phasor"}
        Mean arrival time in ns minus ``irf_offset_ns``, or phasor (g, s) at ``harmonic``
        (frequency from the file's laser period and bin width; see the module notes).
    harmonic : int
        Phasor harmonic (≥ 1).
    irf_offset_ns : float or DecayFit
        Subtracted from lifetimes (a DecayFit's ``irf_offset_ns``).  Unused for phasors.
    bin_volumes : int
        Pool this many consecutive time points into one (photons summed; the time is the mean
        of theirs).  A shorter last group keeps the remaining points.
    times : slice or sequence of int, optional
        Time samples (volumes); default all.
    registration : Registration, optional
        ROIs are drawn on the registered frames; photons move by whole pixels.
    confidence : float
        Level of the confidence intervals, in (0, 1).

    Returns
    -------
    LifetimeTraces
    """
    from ..analysis.masks import roi_masks

    if kind not in KINDS:
        raise SelectionError(f"kind {kind!r} is not one of {', '.join(map(repr, KINDS))}")
    if not getattr(dataset, "is_siff", False):
        raise SelectionError(
            f"{dataset.paths[0].name} is not a .siff file: lifetime and "
            "phasor traces need photon arrival times (ScanImage-FLIM)"
        )
    if not (isinstance(bin_volumes, (int, np.integer)) and bin_volumes >= 1):
        raise SelectionError(f"bin_volumes must be a positive integer, got {bin_volumes!r}")
    if not (isinstance(harmonic, (int, np.integer)) and harmonic >= 1):
        raise SelectionError(f"harmonic must be a positive integer, got {harmonic!r}")
    if not 0 < confidence < 1:
        raise SelectionError(f"confidence must be in (0, 1), got {confidence!r}")
    offset = _offset_ns(irf_offset_ns)
    flim = dataset.flim
    bin_ns = flim.bin_width_ns
    omega = 0.0
    if kind == "phasor":
        if flim.laser_period_ps is None:
            raise SelectionError(
                "the laser period is unknown (no countrates in the file): phasors need it"
            )
        if flim.bin_width_ps is None:  # bin_width_ns above has raised already
            raise SelectionError("the bin width is unknown; reopen with bin_width_ps=...")
        omega = 2.0 * math.pi * int(harmonic) * flim.bin_width_ps / flim.laser_period_ps
    info = dataset.info
    Z = info.num_planes
    if info.frame_shape is None:  # set for every opened recording
        raise SelectionError("the frame shape of the recording is unknown")
    Y, X = info.frame_shape
    masks, names = roi_masks(rois, (Y, X), Z)
    stack = masks.toarray().reshape(len(names), Z, Y, X)
    empty = ~stack.reshape(len(names), -1).any(axis=1)
    if empty.any():
        warnings.warn(
            f"ROI(s) {', '.join(n for n, e in zip(names, empty, strict=True) if e)} "
            "cover no pixel of the frames; their traces are NaN",
            EmptyRoiWarning,
            stacklevel=2,
        )
    mom_i, mom_f, rows_t = _roi_moments(
        dataset, stack, channel, times, registration, int(bin_volumes), omega, kind == "phasor"
    )
    counts = mom_i[..., 0].T.copy()  # (R, T)
    nf = counts.astype(np.float64)
    if kind == "lifetime":
        mean, half = _mean_ci(
            nf, mom_i[..., 1].T.astype(np.float64), mom_i[..., 2].T.astype(np.float64), confidence
        )
        values = mean * bin_ns - offset
        half = half * bin_ns
    else:
        parts = [_mean_ci(nf, mom_f[..., k].T, mom_f[..., k + 2].T, confidence) for k in range(2)]
        values = np.stack([p[0] for p in parts], axis=-1)
        half = np.stack([p[1] for p in parts], axis=-1)
    stamps = np.asarray(
        dataset.timestamps(0, slice_sample="mean" if info.frames_per_slice > 1 else 0), np.float64
    )[rows_t]
    group = np.arange(len(rows_t)) // int(bin_volumes)
    time = np.bincount(group, weights=stamps, minlength=counts.shape[1]) / np.maximum(
        np.bincount(group, minlength=counts.shape[1]), 1
    )
    channel_name = info.channel_names[dataset.channel_index(channel)]
    return LifetimeTraces(
        values,
        counts,
        values - half,
        values + half,
        list(names),
        time,
        channel_name,
        kind,
        int(harmonic),
        offset,
        float(confidence),
    )
