"""Per-pixel photon accumulation of `.siff` recordings: arrival-time histograms and mean
arrival-time (lifetime) images, optionally moved by a registration.

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
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
from numba import njit

from .._core.layout import Selection, time_rows
from .._core.warping import is_piecewise, raw_targets
from ..errors import SelectionError
from .fit_result import DecayFit

if TYPE_CHECKING:
    from .._core.dataset import Dataset
    from ..analysis.registration import Registration

__all__ = ["PixelHistograms", "pixel_histograms", "lifetime_image", "period_bins"]

_MODES = ("keep", "drop", "wrap")
_KEEP, _DROP, _WRAP = 0, 1, 2
_F64 = npt.NDArray[np.float64]
_I64 = npt.NDArray[np.int64]
_INT = npt.NDArray[np.integer[Any]]
# one page's photons moved to a plane of the output: (plane, dy, dx, bidi, y, x, tau)
_PagePhotons = tuple[int, int, int, int, _INT, _INT, _INT]


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

    counts: npt.NDArray[np.uint32]
    bin_width_ps: float
    laser_period_ps: float | None
    beyond_period: str
    dropped: int


# -- per-pixel histograms ---------------------------------------------------------------------
@njit(nogil=True, cache=True)
def _accumulate(
    out: npt.NDArray[np.uint32],
    z: int,
    y: _INT,
    x: _INT,
    tau: _INT,
    dy: int,
    dx: int,
    bidi: int,
    mode: int,
    n_period: int,
    bin_ps: float,
    period_ps: float,
    factor: int,
) -> int:
    """Add photons (y, x, tau) of one raw frame to ``out[z]`` (flat pixels × bins), moving each
    to registered coordinates (y - dy, x - dx - bidi·(y odd)).  Returns the photons dropped.
    """
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


def period_bins(bin_ps: float, period_ps: float) -> int:
    """Bins starting inside one laser period.

    Parameters
    ----------
    bin_ps, period_ps : float
        Bin width and laser period (ps).

    Returns
    -------
    int
        The number of bins whose start lies before the period's end.
    """
    return math.ceil(period_ps / bin_ps - 1e-9)


def _pages(
    dataset: Dataset, channel: int | str, times: slice | npt.ArrayLike | None, plane: int | None
) -> tuple[_I64, _I64, _I64]:
    """(n, Zs, F) pages, their time rows, and the plane number of each Zs position."""
    sel = Selection.make(dataset.layout, dataset.channel_index(channel), plane, "axis")
    rows = time_rows(times, dataset.layout.num_volumes)
    planes = (
        np.arange(dataset.layout.num_planes, dtype=np.int64)
        if sel.plane is None
        else np.array([sel.plane], np.int64)
    )
    return sel.pages_at(dataset.layout, rows), rows, planes


def _photon_pages(
    dataset: Dataset,
    channel: int | str,
    times: slice | npt.ArrayLike | None,
    plane: int | None,
    registration: Registration | None,
) -> Iterator[_PagePhotons]:
    """Yield (output plane, dy, dx, bidi, y, x, tau) for every selected page.

    With a piecewise registration the photons come already moved (by the field rounded at
    each photon's pixel, as the read path moves them) with dy = dx = bidi = 0; photons moved
    out of the frame get row ``Y``, so the accumulators count them as dropped.
    """
    pages, rows, planes = _pages(dataset, channel, times, plane)
    n, Zs, F = pages.shape
    Y, X = dataset.spec.frame_shape
    piecewise = is_piecewise(registration)
    if registration is not None:
        registration.check_fits(
            dataset.layout.num_volumes, dataset.layout.num_planes, dataset.spec.frame_shape
        )
        shifts = np.round(registration.shifts[rows][:, planes]).astype(np.int64)
        bidi = int(np.round(registration.bidi_phase))
    else:
        shifts, bidi = np.zeros((n, Zs, 2), np.int64), 0
    zs = np.broadcast_to(np.arange(Zs)[None, :, None], pages.shape).reshape(-1)
    ts = np.broadcast_to(np.arange(n)[:, None, None], pages.shape).reshape(-1)
    targets: dict[tuple[int, int], _I64] = {}  # (time, plane): the F samples share a field
    for reader, local, sel in dataset.spec.siff_by_file(pages.reshape(-1)):
        for page, at in zip(local.tolist(), sel.tolist(), strict=True):
            y, x, tau = reader.photons(page)
            t, z = int(ts[at]), int(zs[at])
            if piecewise and registration is not None:
                key = (t, z)
                if key not in targets:
                    targets.clear()  # pages come in time order: one field at a time
                    field = registration.displacement(int(rows[t]), int(planes[z]))
                    targets[key] = raw_targets(field, bidi)
                q = targets[key][np.asarray(y, np.int64) * X + np.asarray(x, np.int64)]
                moved_y = np.where(q >= 0, q // X, Y)
                yield z, 0, 0, 0, moved_y, np.where(q >= 0, q % X, 0), tau
                continue
            dy, dx = shifts[t, z].tolist()
            yield z, dy, dx, bidi, y, x, tau


def pixel_histograms(
    dataset: Dataset,
    channel: int | str = 0,
    *,
    times: slice | npt.ArrayLike | None = None,
    plane: int | None = None,
    registration: Registration | None = None,
    bin_factor: int = 1,
    beyond_period: str = "keep",
) -> PixelHistograms:
    """Arrival-time histogram of every pixel, pooled over the selected time samples.

    Parameters
    ----------
    dataset : Dataset
        A `.siff` recording.
    channel : int or str
        Channel index or name.
    times : slice or sequence of int, optional
        Time samples (volumes); default all.  Every frames-per-slice sample is pooled.
    plane : int, optional
        One plane (output (Y, X, L)); default every plane ((Z, Y, X, L) for volumes).
    registration : Registration, optional
        Photons move by the registration's shifts and bidirectional phase rounded to whole
        pixels (a piecewise registration: by its field rounded at each photon's pixel);
        photons moved out of the frame are dropped.
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
    n_period = period_bins(bin_ps, period_ps) if period_ps else 1 << 62
    mode = _MODES.index(beyond_period)
    fine = int(flim.num_bins) if mode == _KEEP else n_period
    Y, X = dataset.spec.frame_shape
    Zs = len(_pages(dataset, channel, times, plane)[2])
    out = np.zeros((Zs, Y, X, -(-fine // factor)), np.uint32)
    dropped = 0
    for z, dy, dx, bidi, y, x, tau in _photon_pages(dataset, channel, times, plane, registration):
        if not tau.size:
            continue
        if mode == _KEEP and int(tau.max()) // factor >= out.shape[3]:  # late photons
            grow = int(tau.max()) // factor + 1 - out.shape[3]
            out = np.pad(out, ((0, 0), (0, 0), (0, 0), (0, grow)))
        dropped += _accumulate(
            out, z, y, x, tau, dy, dx, bidi, mode, n_period, bin_ps, float(period_ps or 1.0), factor
        )
    counts = out[0] if Zs == 1 and (plane is not None or dataset.layout.num_planes == 1) else out
    return PixelHistograms(counts, bin_ps * factor, period_ps, beyond_period, dropped)


# -- lifetime images --------------------------------------------------------------------------
@njit(nogil=True, cache=True)
def _accumulate_sums(
    n_out: _I64, t_out: _I64, z: int, y: _INT, x: _INT, tau: _INT, dy: int, dx: int, bidi: int
) -> int:
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


def lifetime_image(
    dataset: Dataset,
    channel: int | str = 0,
    *,
    times: slice | npt.ArrayLike | None = None,
    plane: int | None = None,
    registration: Registration | None = None,
    irf_offset_ns: float | DecayFit = 0.0,
) -> tuple[_F64, _I64]:
    """Mean photon arrival time per pixel minus the IRF offset (ns), pooled over the selected
    time samples, and the photon counts.

    Returns (lifetime float64, counts int64), (Y, X) or (Z, Y, X); lifetime NaN without
    photons.  ``irf_offset_ns``: a number or a :class:`DecayFit` (its IRF offset).  Arrival
    times are bin starts, never wrapped (as :meth:`Dataset.lifetime_array`).
    """
    flim = dataset.flim
    if flim.bin_width_ps is None:
        raise SelectionError("the bin width is unknown; reopen with bin_width_ps=...")
    offset = (
        irf_offset_ns.irf_offset_ns if isinstance(irf_offset_ns, DecayFit) else float(irf_offset_ns)
    )
    pages, _, planes = _pages(dataset, channel, times, plane)
    Y, X = dataset.spec.frame_shape
    Zs = len(planes)
    n = np.zeros((Zs, Y, X), np.int64)
    t = np.zeros((Zs, Y, X), np.int64)
    if registration is None:  # the readers' compiled per-pixel sums, pooled per plane
        rows = np.broadcast_to(np.arange(Zs)[None, :, None], pages.shape).reshape(-1)
        for reader, local, sel in dataset.spec.siff_by_file(pages.reshape(-1)):
            a, b = reader.pixel_sums(local, rows[sel], Zs)
            n += a
            t += b
    else:
        for z, dy, dx, bidi, y, x, tau in _photon_pages(
            dataset, channel, times, plane, registration
        ):
            _accumulate_sums(n, t, z, y, x, tau, dy, dx, bidi)
    with np.errstate(invalid="ignore", divide="ignore"):
        life = t / n * (flim.bin_width_ps / 1000.0) - offset
    life[n == 0] = np.nan
    if Zs == 1 and (plane is not None or dataset.layout.num_planes == 1):
        return life[0], n[0]
    return life, n
