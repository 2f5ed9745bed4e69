"""ROI traces: every ROI's signal over time in one pass over the frames.

Functions
---------
traces
    Mean, sum or dF/F of every ROI, as a :class:`Traces` result.
iter_traces
    The same as a generator that yields progress (for workers that report and can stop).

Masks become one sparse matrix (ROIs × plane·Y·X); each block of time rows is read once, only
the pixel columns some ROI uses are gathered, and one sparse product gives every ROI's sum for
every plane.  Memory is bounded by the block size, whatever the file size.  Blocks can run on
any dask scheduler (``scheduler=``); the arithmetic is the same, so results are identical.
"""

from __future__ import annotations

import csv
import io
import os
import warnings
from collections.abc import Callable, Generator, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
from scipy import ndimage, sparse

from .._atomic import atomic_write
from ..errors import EmptyRoiWarning, SelectionError
from ._progress import drive
from .masks import roi_masks

if TYPE_CHECKING:
    from .._core.dataset import Dataset
    from .._core.layout import SliceSample
    from .._core.reading import BlockReader
    from ..flim.fit_result import DecayFit
    from ..flim.lifetime import LifetimeTraces
    from .registration import Registration
    from .rois import RoiSet

__all__ = ["Traces", "iter_traces", "neuropil_masks", "traces"]

KINDS = ("mean", "sum", "dff")
BLOCK_BYTES = 8 << 20  # frames per block: small enough to be summed while still in cache
_F64 = npt.NDArray[np.float64]
_I64 = npt.NDArray[np.int64]
# per plane: the flat pixel columns some mask uses, and the masks' weights on them
_Planes = list[tuple[_I64, sparse.csr_matrix]]


@dataclass(frozen=True)
class Traces:
    """Traces of several ROIs.

    Attributes
    ----------
    values : float64 (n_rois, T)
    names : list of str
    time : float64 (T,)
        Seconds from the start of the acquisition.
    channel : str
    kind : str
        "mean", "sum" or "dff".
    per_plane : float64 (n_rois, T, Z)
        Sums (kind "sum") or means (otherwise, before dF/F) of each ROI within each plane;
        NaN where the ROI has no pixel in that plane.
    """

    values: _F64
    names: list[str]
    time: _F64
    channel: str
    kind: str
    per_plane: _F64 = field(repr=False)

    def to_csv(self, path: str | os.PathLike[str]) -> Path:
        """Write a tidy CSV (time_s, roi, channel, metric, value), atomically."""
        return atomic_write(path, self.csv_text().encode())

    def csv_text(self) -> str:
        """The tidy CSV as text (for the clipboard)."""
        out = io.StringIO(newline="")
        self._write_rows(out)
        return out.getvalue()

    def _write_rows(self, fh: io.StringIO) -> None:
        writer = csv.writer(fh)
        writer.writerow(["time_s", "roi", "channel", "metric", "value"])
        for r, name in enumerate(self.names):
            for t, v in zip(self.time.tolist(), self.values[r].tolist(), strict=True):
                writer.writerow([repr(t), name, self.channel, self.kind, repr(v)])


def neuropil_masks(
    masks: sparse.csr_matrix, shape: tuple[int, int, int], *, inner: int = 2, outer: int = 8
) -> sparse.csr_matrix:
    """Annulus around each ROI (per plane): pixels between ``inner`` and ``outer`` pixels from
    it, minus every ROI's pixels.  Same layout as ``masks`` (n_rois, Z·Y·X).
    """
    Z, Y, X = shape
    union = np.asarray(masks.sum(axis=0)).reshape(Z, Y, X) > 0
    rows = []
    for r in range(masks.shape[0]):
        m = masks[r].toarray().reshape(Z, Y, X)
        ring = np.zeros_like(m)
        for z in range(Z):
            if m[z].any():
                grown = ndimage.binary_dilation(m[z], iterations=outer)
                near = ndimage.binary_dilation(m[z], iterations=inner)
                ring[z] = grown & ~near & ~union[z]
        rows.append(sparse.csr_matrix(ring.reshape(1, -1)))
    return sparse.vstack(rows, format="csr") if rows else masks.copy()


def _read_block(
    block: BlockReader, rows: _I64, buffer: npt.NDArray[Any] | None = None
) -> npt.NDArray[Any]:
    """Frames of time rows ``rows`` as (n, Z·Y·X); read into ``buffer`` when the selection
    needs no averaging (one page per frame) and no registration.
    """
    pages = block.selection.pages_at(block.layout, rows)  # (n, nz, nf)
    if buffer is not None and pages.shape[2] == 1 and block.registration is None:
        out = buffer[: len(rows)].reshape((len(rows), pages.shape[1], *block.spec.frame_shape))
        block.spec.read_pages(pages[:, :, 0], out=out)
        return out.reshape(len(rows), -1)
    return block.rows_at(rows).reshape(len(rows), -1)


def _sums(flat: npt.NDArray[Any], planes: _Planes) -> _F64:
    """Per-plane sums (n_masks, n_rows, Z): ``planes`` holds, per plane, the flat pixel columns
    some mask uses and the masks' weights on them; only those pixels are converted.
    """
    return np.stack([w @ flat[:, cols].astype(np.float64).T for cols, w in planes], axis=2)


def _block_sums(block: BlockReader, rows: _I64, planes: _Planes) -> _F64:
    """Per-plane sums of one block of time rows (the unit of work on dask schedulers)."""
    return _sums(_read_block(block, rows), planes)


def iter_traces(
    dataset: Dataset,
    rois: RoiSet | Mapping[str, npt.ArrayLike],
    *,
    channel: int | str = 0,
    kind: str = "mean",
    slice_sample: SliceSample = "mean",
    percentile: float = 8.0,
    window_s: float | None = None,
    neuropil: float | None = None,
    neuropil_radii: tuple[int, int] = (2, 8),
    times: slice | Sequence[int] | None = None,
    scheduler: Any = None,
    registration: Registration | None = None,
    shift_mode: str | None = None,
) -> Generator[tuple[int, int], None, Traces]:
    """Generator form of :func:`traces`: yields (blocks done, blocks) and returns Traces."""
    if kind not in KINDS:
        raise SelectionError(f"kind {kind!r} is not one of {', '.join(map(repr, KINDS))}")
    info = dataset.info
    Z = info.num_planes
    if info.frame_shape is None:  # set for every opened recording
        raise SelectionError("the frame shape of the recording is unknown")
    Y, X = info.frame_shape
    masks, names = roi_masks(rois, (Y, X), Z)
    n_rois = masks.shape[0]
    if neuropil is not None:
        masks = sparse.vstack(
            [
                masks,
                neuropil_masks(masks, (Z, Y, X), inner=neuropil_radii[0], outer=neuropil_radii[1]),
            ],
            format="csr",
        )
    weights = masks.astype(np.float64).tocsc()
    used = np.flatnonzero(np.diff(weights.indptr))  # columns (pixels) any mask uses
    planes: _Planes = []
    for z in range(Z):
        cols = used[(used >= z * Y * X) & (used < (z + 1) * Y * X)]
        planes.append((cols, weights[:, cols].tocsr()))
    counts = np.stack(
        [np.asarray(masks[:, z * Y * X : (z + 1) * Y * X].sum(axis=1)).ravel() for z in range(Z)],
        axis=1,
    ).astype(np.float64)  # (n_masks, Z)
    if info.frames_per_slice == 1:
        slice_sample = 0
    elif slice_sample == "axis":
        raise SelectionError(
            "traces need one value per time: use a sample index, 'mean' or "
            "'interleave' for slice_sample"
        )
    block = dataset.block_reader(
        channel, None, slice_sample, registration=registration, shift_mode=shift_mode
    )
    n_rows = block.selection.num_times(dataset.layout)
    rows_all = (
        np.arange(n_rows, dtype=np.int64)
        if times is None
        else np.arange(n_rows, dtype=np.int64)[times]
    )
    row_bytes = Y * X * Z * block.out_dtype.itemsize
    per_block = max(1, BLOCK_BYTES // max(row_bytes, 1))
    chunks = [rows_all[i : i + per_block] for i in range(0, len(rows_all), per_block)]
    sums = np.zeros((masks.shape[0], len(rows_all), Z))
    yield 0, len(chunks)
    if scheduler is None:  # read the next block while this one is summed (double buffering)
        from concurrent.futures import ThreadPoolExecutor

        n_flat = Z * Y * X
        buffers: list[npt.NDArray[Any] | None] = (
            [np.empty((per_block, n_flat), block.out_dtype) for _ in range(2)]
            if block.registration is None
            else [None, None]
        )
        at = 0
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="scanimage-traces") as pool:
            pending: list[Future[npt.NDArray[Any]]] = (
                [pool.submit(_read_block, block, chunks[0], buffers[0])] if chunks else []
            )
            for k, rows in enumerate(chunks):
                flat = pending.pop().result()
                if k + 1 < len(chunks):
                    pending.append(
                        pool.submit(_read_block, block, chunks[k + 1], buffers[(k + 1) % 2])
                    )
                sums[:, at : at + len(rows)] = _sums(flat, planes)
                at += len(rows)
                yield k + 1, len(chunks)
    else:
        from dask.base import compute
        from dask.delayed import delayed

        tasks = [delayed(_block_sums)(block, rows, planes) for rows in chunks]
        # dask's compute carries no annotations
        parts = compute(*tasks, scheduler=scheduler)  # type: ignore[no-untyped-call]
        at = 0
        for part in parts:
            sums[:, at : at + part.shape[1]] = part
            at += part.shape[1]
        yield len(chunks), len(chunks)
    return _finish(
        dataset,
        block,
        rows_all,
        sums,
        counts,
        names,
        n_rois,
        kind,
        percentile,
        window_s,
        neuropil,
        slice_sample,
    )


def _finish(
    dataset: Dataset,
    block: BlockReader,
    rows: _I64,
    sums: _F64,
    counts: _F64,
    names: list[str],
    n_rois: int,
    kind: str,
    percentile: float,
    window_s: float | None,
    neuropil: float | None,
    slice_sample: SliceSample,
) -> Traces:
    total = sums.sum(axis=2)
    npix = counts.sum(axis=1)
    empty = npix[:n_rois] == 0
    if empty.any():
        warnings.warn(
            f"ROI(s) {', '.join(n for n, e in zip(names, empty, strict=True) if e)} "
            "cover no pixel of the frames; their traces are NaN",
            EmptyRoiWarning,
            stacklevel=3,
        )
    with np.errstate(invalid="ignore", divide="ignore"):
        means = total / npix[:, None]
        plane_means = sums / counts[:, None, :]
    if kind == "sum":
        values = total[:n_rois].copy()
        values[empty] = np.nan
        per_plane = np.where(counts[:n_rois, None, :] > 0, sums[:n_rois], np.nan)
    else:
        values = means[:n_rois].copy()
        per_plane = plane_means[:n_rois]
        if neuropil is not None:
            values = values - neuropil * means[n_rois:]
    time = _time(dataset, block, rows, slice_sample)
    if kind == "dff":
        values = dff(values, time, percentile=percentile, window_s=window_s)
    channel = dataset.info.channel_names[block.selection.channel]
    return Traces(values, list(names), time, channel, kind, per_plane)


def dff(
    values: _F64, time: _F64, *, percentile: float = 8.0, window_s: float | None = None
) -> _F64:
    """(F − F0) / F0 per row; F0 = ``percentile`` of the whole row, or a running percentile over
    ``window_s`` seconds (edges repeat the nearest value).
    """
    if window_s is None:
        f0 = np.nanpercentile(values, percentile, axis=1, keepdims=True) if values.size else values
    else:
        dt = float(np.median(np.diff(time))) if len(time) > 1 else 1.0
        size = max(1, int(round(window_s / dt)) if dt > 0 else 1)
        f0 = (
            np.stack(
                [
                    ndimage.percentile_filter(row, percentile, size=size, mode="nearest")
                    for row in values
                ]
            )
            if len(values)
            else values
        )
    with np.errstate(invalid="ignore", divide="ignore"):
        out: _F64 = (values - f0) / f0
    return out


def _time(dataset: Dataset, block: BlockReader, rows: _I64, slice_sample: SliceSample) -> _F64:
    times = dataset.timestamps(0, slice_sample=slice_sample)
    return np.asarray(times, dtype=np.float64)[rows]


def traces(
    dataset: Dataset,
    rois: RoiSet | Mapping[str, npt.ArrayLike],
    *,
    channel: int | str = 0,
    kind: str = "mean",
    slice_sample: SliceSample = "mean",
    percentile: float = 8.0,
    window_s: float | None = None,
    neuropil: float | None = None,
    neuropil_radii: tuple[int, int] = (2, 8),
    times: slice | Sequence[int] | None = None,
    scheduler: Any = None,
    progress: Callable[[int, int], None] | None = None,
    registration: Registration | None = None,
    shift_mode: str | None = None,
    harmonic: int = 1,
    irf_offset_ns: float | DecayFit = 0.0,
    bin_volumes: int = 1,
) -> Traces | LifetimeTraces:
    """Every ROI's trace over time, in one pass over the frames.

    Parameters
    ----------
    dataset : Dataset
        The recording.
    rois : RoiSet or dict of name → bool mask (Y, X) or (Z, Y, X)
        A 2-D ROI without a plane covers every plane (pooled); a per-plane ROI only its plane.
    channel : int or str
        Channel index or name.
    kind : {"mean", "sum", "dff", "lifetime", "phasor"}
        Mean or sum of the ROI's pixels; dF/F = (F − F0) / F0 of the mean.  "lifetime" and
        "phasor" (`.siff` only) give a :class:`~.lifetime.LifetimeTraces` from the photons'
        arrival times (see :func:`~.lifetime.lifetime_traces`; ``harmonic``,
        ``irf_offset_ns``, ``bin_volumes``, ``times`` and ``registration`` apply).
    slice_sample : int or {"mean", "interleave"}
        With several frames per slice: one sample, their mean, or each as a time point.
    percentile, window_s : float
        F0 for dF/F: this percentile of the whole trace, or of a running window of
        ``window_s`` seconds.
    neuropil : float, optional
        Subtract ``neuropil`` × the mean of an annulus around each ROI (``neuropil_radii``
        pixels, other ROIs excluded) before dF/F.
    times : slice or indices, optional
        Time rows; default all.
    scheduler : str or dask client, optional
        Run the blocks on this dask scheduler ("threads", "processes", a distributed Client).
    progress : callable(done, total), optional
        Called after each block.
    registration : Registration, optional
        Motion registration of the recording: traces of the registered frames (ROIs drawn on
        them), as :meth:`Dataset.read` gives them with ``registration``.
    shift_mode : {"integer", "bilinear", "fourier"}, optional
        How the shifts are applied (default: whole pixels for `.siff`, bilinear for TIFF).

    Returns
    -------
    Traces, or LifetimeTraces for kinds "lifetime" and "phasor"
    """
    if kind in ("lifetime", "phasor"):
        from ..flim.lifetime import lifetime_traces

        return lifetime_traces(
            dataset,
            rois,
            channel=channel,
            kind=kind,
            harmonic=harmonic,
            irf_offset_ns=irf_offset_ns,
            bin_volumes=bin_volumes,
            times=times,
            registration=registration,
        )
    gen = iter_traces(
        dataset,
        rois,
        channel=channel,
        kind=kind,
        slice_sample=slice_sample,
        percentile=percentile,
        window_s=window_s,
        neuropil=neuropil,
        neuropil_radii=neuropil_radii,
        times=times,
        scheduler=scheduler,
        registration=registration,
        shift_mode=shift_mode,
    )
    return drive(gen, progress)
