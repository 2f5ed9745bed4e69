"""Photon-level methods of :class:`~napari_scanimage.Dataset` for ScanImage-FLIM `.siff` files.

Kept apart from ``dataset.py`` so that the TIFF path stays small; :class:`PhotonMethods` is a
mixin that needs the dataset's ``spec``, ``layout``, ``paths`` and ``_flim``.
"""

from __future__ import annotations

import dataclasses
import mmap
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple, cast

import numpy as np
import numpy.typing as npt

from ..errors import SelectionError
from ..io.siff import FlimSettings, SiffReader, masks_to_csr
from .layout import Selection, SliceSample, time_rows
from .shifting import Shifts, raw_coordinates, shift_mask
from .warping import field_csr, field_groups, is_piecewise

if TYPE_CHECKING:
    from pathlib import Path

    import dask.array as da

    from ..io.tiff import PageIndex
    from .layout import Layout
    from .reading import BlockReader, ReaderSpec

# (positions in the (n, Z, F) pages, group of each within its batch, the batch's
# (mask plane, dy, dx) keys — FieldKeys for piecewise registrations —, bidirectional
# phase): see PhotonMethods.shift_groups
ShiftGroup = tuple[npt.NDArray[np.intp], npt.NDArray[np.intp], list[Any], int]

__all__ = ["Event", "PhotonMethods", "PhotonSums", "shifted_csr"]

_APPENDED = b"\nAppended text = "
_TEXT_TIME = re.compile(r"(?:^|\n)Text timestamp = ([^\n]*)")
_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
_TABLE_BYTES = 64 << 20  # registered photon work: per-group mask tables per kernel call


class Event(NamedTuple):
    """A text annotation appended to a frame during acquisition."""

    page: int  #: global raw page index
    time_s: float | None  #: frameTimestamps_sec of that page
    text: str
    text_time_s: float | None  #: the annotation's own timestamp, when stored


@dataclass(frozen=True)
class PhotonSums:
    """Photons inside masks, per mask, time sample and plane.

    Attributes
    ----------
    counts, arrival_sums : int64 arrays (R, T, Z)
        Photon count and sum of arrival-time bins of each mask; all frames-per-slice samples
        of a plane are pooled.  Z is 1 for planar data.
    bin_width_ps : float or None
    """

    counts: npt.NDArray[np.int64]
    arrival_sums: npt.NDArray[np.int64]
    bin_width_ps: float | None

    def mean_arrival_bins(self, *, pool_planes: bool = True) -> npt.NDArray[np.float64]:
        """Mean arrival time in bins: (R, T) pooled over planes, else (R, T, Z); NaN where a
        mask caught no photon.
        """
        n, s = self.counts, self.arrival_sums
        if pool_planes:
            n, s = n.sum(axis=2), s.sum(axis=2)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean: npt.NDArray[np.float64] = s / n
        return mean

    def mean_arrival_ns(self, *, pool_planes: bool = True) -> npt.NDArray[np.float64]:
        """Mean arrival time in ns (see :meth:`mean_arrival_bins`)."""
        if self.bin_width_ps is None:
            raise SelectionError("the bin width is unknown; reopen with bin_width_ps=...")
        return self.mean_arrival_bins(pool_planes=pool_planes) * (self.bin_width_ps / 1000.0)


class PhotonMethods:
    """Photons, arrival-time histograms, mask sums, lifetimes and annotations (`.siff`)."""

    # what the mixin uses of the Dataset it is part of
    _flim: FlimSettings | None
    paths: tuple[Path, ...]
    spec: ReaderSpec
    layout: Layout

    if TYPE_CHECKING:

        def channel_index(self, channel: int | str) -> int: ...
        def block_reader(
            self,
            channel: int | str,
            plane: int | None,
            slice_sample: SliceSample,
            product: str = "intensity",
            *,
            registration: Shifts | None = None,
            shift_mode: str | None = None,
        ) -> BlockReader: ...
        def _dask_array(self, block: BlockReader) -> da.Array: ...
        def file_indexes(self) -> Iterator[tuple[Path, int, PageIndex]]: ...
        def frame_description(self, page: int) -> dict[str, str]: ...

    @property
    def is_siff(self) -> bool:
        """True for ScanImage-FLIM `.siff` recordings (photon data)."""
        return self._flim is not None

    @property
    def flim(self) -> FlimSettings:
        """Arrival-time bins of the recording (`.siff` only)."""
        return self._require_siff("FLIM settings")

    def set_bin_width_ps(self, bin_width_ps: float) -> None:
        """Override the arrival-time bin width (ps) for lifetimes made from now on."""
        flim = self._require_siff("arrival-time bins")
        if not (isinstance(bin_width_ps, (int, float)) and bin_width_ps > 0):
            raise SelectionError(f"bin width must be a positive number of ps, got {bin_width_ps!r}")
        self._flim = dataclasses.replace(flim, bin_width_ps=float(bin_width_ps))

    def _require_siff(self, what: str) -> FlimSettings:
        if self._flim is None:
            raise SelectionError(
                f"{self.paths[0].name} is not a .siff file: {what} exist only "
                "for ScanImage-FLIM recordings"
            )
        return self._flim

    def photons(
        self, page: int
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """(y, x, tau) int64 arrays of every photon of global raw ``page``.

        Raw files give photons in arrival order; compressed files grouped by pixel in raster
        order.  ``tau`` is the arrival-time bin, never wrapped.
        """
        self._require_siff("photons")
        total = self.spec.files.total_pages
        if not -total <= int(page) < total:
            raise SelectionError(
                f"page {page} does not exist; the recording has {total} "
                "pages (flyback pages included)"
            )
        page = int(page) % total
        ((reader, local, _),) = self.spec.by_file(np.array([page]))
        return cast(SiffReader, reader).photons(int(local[0]))  # `.siff`: a SiffReader

    def volume_pages(
        self, channel: int | str, times: slice | npt.ArrayLike | None
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """Pages (n, Z, F) of all planes and samples of the selected time samples, and the
        selected time rows.
        """
        sel = Selection.make(self.layout, self.channel_index(channel), None, "axis")
        rows = time_rows(times, self.layout.num_volumes)
        return sel.pages_at(self.layout, rows), rows

    def histogram(
        self,
        channel: int | str = 0,
        *,
        times: slice | npt.ArrayLike | None = None,
        mask: npt.ArrayLike | None = None,
        per_frame: bool = False,
        registration: Shifts | None = None,
    ) -> npt.NDArray[np.uint64]:
        """Arrival-time histogram of one channel.

        Parameters
        ----------
        channel : int or str
        times : slice or sequence of int, optional
            Time samples (volumes) to include; default all.  Every plane and frames-per-slice
            sample of a time sample is included; flyback frames are not.
        mask : bool array (Y, X) or (Z, Y, X), optional
            Only photons in these pixels (per plane for 3-D masks).
        per_frame : bool
            One histogram per selected time sample instead of one pooled histogram.
        registration : Registration, optional
            Motion registration of this recording: ``mask`` is then drawn on the registered
            frames, and each photon counts where the registration moves it (whole pixels:
            shifts and bidirectional phase are rounded, as :meth:`Registration.integer`).
            Without a mask only photons that stay inside the registered frame count.

        Returns
        -------
        numpy.ndarray
            uint64 (L,) or (n, L).  L = ``flim.num_bins``, longer when photons arrive at or
            after ``num_bins`` (such arrival times are kept, never wrapped).
        """
        flim = self._require_siff("arrival-time histograms")
        pages, rows_t = self.volume_pages(channel, times)
        n, Z, F = pages.shape
        planes = np.broadcast_to(np.arange(Z)[None, :, None], pages.shape)
        table = None
        if mask is not None:
            table = self._mask_table(mask, "mask")
            if len(table) == 1:
                planes = np.zeros(pages.shape, np.int64)
        rows = (
            np.broadcast_to(np.arange(n)[:, None, None], pages.shape)
            if per_frame
            else np.zeros(pages.shape, np.int64)
        )
        nrows = n if per_frame else 1
        passes: Iterable[
            tuple[slice | npt.NDArray[np.intp], npt.NDArray[Any], npt.NDArray[np.bool_] | None]
        ]
        if registration is None:
            passes = [(slice(None), planes.reshape(-1), table)]
        else:
            Y, X = self.spec.frame_shape
            table = np.ones((1, Y, X), bool) if table is None else table
            passes = (
                (
                    at,
                    group,
                    np.stack([shift_mask(table[k[0]], k[1:], bidi_phase=p) for k in keys]),
                )
                for at, group, keys, p in self.shift_groups(
                    registration, rows_t, F, len(table), Y * X
                )
            )
        out = np.zeros((nrows, flim.num_bins), np.uint64)
        for at, group_planes, group_table in passes:
            group_pages, group_rows = pages.reshape(-1)[at], rows.reshape(-1)[at]
            for reader, local, sel in self.spec.by_file(group_pages):  # `.siff`: SiffReaders
                part = cast(SiffReader, reader).histogram(
                    local,
                    group_rows[sel],
                    nrows,
                    flim.num_bins,
                    mask=group_table,
                    planes=group_planes[sel],
                )
                if part.shape[1] > out.shape[1]:
                    out = np.pad(out, ((0, 0), (0, part.shape[1] - out.shape[1])))
                out[:, : part.shape[1]] += part.astype(np.uint64)
        return out if per_frame else out[0]

    def shift_groups(
        self, registration: Shifts, rows_t: npt.NDArray[np.int64], F: int, Zm: int, npix: int
    ) -> Iterator[ShiftGroup]:
        """Pages of the selected volumes grouped by (mask plane, dy, dx), in batches whose
        per-group mask tables stay small: yields (positions in the (n, Z, F) pages, group of
        each within the batch, the batch's (mask plane, dy, dx) keys, bidirectional phase).

        Shifts and phase are rounded to whole pixels (photons move by whole pixels).  A
        piecewise registration gives one group per (volume, plane), keyed by its field
        (:func:`.warping.field_groups`).
        """
        registration.check_fits(
            self.layout.num_volumes, self.layout.num_planes, self.spec.frame_shape
        )
        if is_piecewise(registration):
            yield from field_groups(registration, rows_t, F, Zm, npix, _TABLE_BYTES)
            return
        shifts = np.round(registration.shifts[rows_t]).astype(np.int64)  # (n, Z, 2)
        n, Z = shifts.shape[:2]
        z = np.broadcast_to(np.arange(Z)[None, :] if Zm > 1 else 0, (n, Z))
        keys = np.stack([z, shifts[..., 0], shifts[..., 1]], axis=-1).reshape(-1, 3)
        uniq, inverse = np.unique(keys, axis=0, return_inverse=True)
        group = np.repeat(inverse.reshape(-1), F)  # pages are (n, Z, F) in C order
        p = int(np.round(registration.bidi_phase))
        per_batch = max(1, _TABLE_BYTES // (8 * (npix + 1)))
        for g0 in range(0, len(uniq), per_batch):
            at = np.flatnonzero((group >= g0) & (group < g0 + per_batch))
            yield at, group[at] - g0, uniq[g0 : g0 + per_batch].tolist(), p

    def _mask_table(self, mask: npt.ArrayLike, name: str) -> npt.NDArray[np.bool_]:
        """(Zm, Y, X) bool with Zm 1 or the number of planes."""
        m = np.asarray(mask)
        if m.dtype != bool:
            raise SelectionError(f"{name} must be a bool array, got {m.dtype}")
        Y, X = self.spec.frame_shape
        if m.ndim == 2:
            m = m[None]
        if m.ndim != 3 or m.shape[1:] != (Y, X) or m.shape[0] not in (1, self.layout.num_planes):
            raise SelectionError(
                f"{name} of shape {np.shape(mask)} does not fit frames of "
                f"{Y}×{X} with {self.layout.num_planes} plane(s); give (Y, X) "
                "or (Z, Y, X)"
            )
        return m

    def photon_sums(
        self,
        masks: npt.ArrayLike,
        channel: int | str = 0,
        *,
        times: slice | npt.ArrayLike | None = None,
        registration: Shifts | None = None,
    ) -> PhotonSums:
        """Photon counts and arrival-time sums inside each of several masks, in one pass.

        Parameters
        ----------
        masks : bool array (R, Y, X) or (R, Z, Y, X), or a sequence of (Y, X)/(Z, Y, X) masks
            A 2-D mask applies to every plane.
        channel : int or str
        times : slice or sequence of int, optional
            Time samples (volumes); default all.
        registration : Registration, optional
            Masks are drawn on the registered frames; each photon counts where the
            registration moves it (whole pixels, see :meth:`histogram`).

        Returns
        -------
        PhotonSums
        """
        flim = self._require_siff("photon sums")
        tables = [self._mask_table(m, f"mask {i}") for i, m in enumerate(_mask_list(masks))]
        if not tables:
            raise SelectionError("no masks given")
        Z = self.layout.num_planes
        Zm = max(len(t) for t in tables)
        stack = np.stack([np.broadcast_to(t, (Zm, *t.shape[1:])) for t in tables])
        pages, rows_t = self.volume_pages(channel, times)
        n = len(rows_t)
        zs = np.broadcast_to(np.arange(Z)[None, :, None], pages.shape)
        rows = np.broadcast_to(np.arange(n)[:, None, None], pages.shape) * Z + zs
        planes = zs if Zm > 1 else np.zeros(pages.shape, np.int64)
        passes: Iterable[
            tuple[
                slice | npt.NDArray[np.intp],
                npt.NDArray[Any],
                tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]],
            ]
        ]
        if registration is None:
            passes = [(slice(None), planes.reshape(-1), masks_to_csr(stack))]
        else:
            Y, X = self.spec.frame_shape
            where = [np.nonzero(stack[:, z]) for z in range(Zm)]  # (mask, y, x) per plane
            passes = (
                (at, group, shifted_csr(where, keys, (Y, X), p))
                for at, group, keys, p in self.shift_groups(
                    registration, rows_t, pages.shape[2], Zm, Y * X
                )
            )
        R = len(tables)
        counts = np.zeros((n * Z, R), np.int64)
        sums = np.zeros((n * Z, R), np.int64)
        for at, group_planes, (indptr, indices) in passes:
            group_pages, group_rows = pages.reshape(-1)[at], rows.reshape(-1)[at]
            for reader, local, sel in self.spec.by_file(group_pages):  # `.siff`: SiffReaders
                c, s = cast(SiffReader, reader).mask_sums(
                    local, group_rows[sel], n * Z, indptr, indices, R, planes=group_planes[sel]
                )
                counts += c
                sums += s
        shape = (n, Z, R)
        return PhotonSums(
            counts.reshape(shape).transpose(2, 0, 1).copy(),
            sums.reshape(shape).transpose(2, 0, 1).copy(),
            flim.bin_width_ps,
        )

    def lifetime_array(
        self,
        channel: int | str = 0,
        *,
        plane: int | None = None,
        slice_sample: SliceSample = 0,
        registration: Shifts | None = None,
    ) -> da.Array:
        """Lazy mean photon arrival time per pixel in ns: float32 dask array, same axes as
        :meth:`array`, NaN where a pixel has no photon.

        Intensity (:meth:`array`) and lifetime come from the same photons.  No IRF offset is
        subtracted (that is the FLIM fit's job).  ``slice_sample="mean"`` pools the samples'
        photons.  With a ``registration`` the photon counts and arrival sums of every pixel are
        moved by whole pixels (shifts and bidirectional phase rounded) before dividing, so each
        lifetime still comes from whole photons.
        """
        self._require_siff("lifetime images")
        block = self.block_reader(
            channel, plane, slice_sample, "lifetime", registration=registration
        )
        return self._dask_array(block)

    def events(self) -> list[Event]:
        """Text annotations appended to frames (``Appended text`` in the frame descriptions)."""
        found: list[Event] = []
        for path, index_start, index in self.file_indexes():
            if not index.file_size:
                continue
            with open(path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
                hits = []
                pos = mm.find(_APPENDED)
                while pos >= 0:
                    hits.append(pos)
                    pos = mm.find(_APPENDED, pos + 1)
            if not hits:
                continue
            starts = index.description_offsets
            ends = starts + index.description_lengths
            order = np.argsort(starts)
            at = np.searchsorted(starts[order], hits, side="right") - 1
            for h, k in zip(hits, at.tolist(), strict=True):
                if k < 0 or h >= ends[order[k]]:
                    continue
                page = int(order[k]) + index_start
                desc = self.frame_description(page)
                text = desc.get("Appended text", "")
                found.append(
                    Event(
                        page,
                        _float(desc.get("frameTimestamps_sec")),
                        text,
                        _float(desc.get("Text timestamp")),
                    )
                )
        return sorted(found)


def shifted_csr(
    where: Sequence[tuple[npt.NDArray[np.intp], ...]],
    keys: Sequence[Sequence[int]],
    frame_shape: tuple[int, int],
    bidi_phase: int,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """CSR membership table (as :func:`masks_to_csr`) with one row per (mask plane, dy, dx) key:
    the masks' pixels ``where[plane]`` = (mask, y, x) moved to raw-frame coordinates.
    """
    if keys and np.ndim(keys[0][1]):  # piecewise: a displacement field per key
        return field_csr(where, keys, frame_shape, bidi_phase)  # type: ignore[arg-type]
    Y, X = frame_shape
    npix = Y * X
    indptr = np.zeros((len(keys), npix + 1), np.int64)
    parts = []
    offset = 0
    for j, (z, dy, dx) in enumerate(keys):
        r, y, x = where[z]
        ry, rx, inside = raw_coordinates(y, x, (dy, dx), frame_shape, bidi_phase=bidi_phase)
        pix = ry[inside] * X + rx[inside]
        order = np.argsort(pix, kind="stable")
        indptr[j, 0] = offset
        indptr[j, 1:] = offset + np.cumsum(np.bincount(pix, minlength=npix))
        offset += len(pix)
        parts.append(r[inside][order].astype(np.int64))
    return indptr, np.concatenate(parts) if parts else np.zeros(0, np.int64)


def _mask_list(masks: npt.ArrayLike) -> list[npt.ArrayLike]:
    if isinstance(masks, np.ndarray):
        return list(masks) if masks.ndim >= 3 else [masks]
    if isinstance(masks, Sequence):
        return list(masks)
    raise SelectionError(f"masks must be an array or a sequence of arrays, got {type(masks)}")


def _float(text: str | None) -> float | None:
    m = _NUMBER.search(text or "")
    return float(m.group()) if m else None
