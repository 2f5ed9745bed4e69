"""Page tables and selections: which raw page holds channel c, plane z, sample f of volume t.

Classes
-------
Layout
    The page order of docs/formats.md §1.4 (channel → frame in slice → slice → flyback → volume).
Selection
    One channel, all planes or one, and a slice-sample mode; maps output time rows to pages.
FileTable
    Global page number ↔ (file, local page) over a multi-file series.
"""

from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from ..errors import IncompleteVolumeWarning, LayoutError, SelectionError

__all__ = ["FileTable", "Layout", "Selection", "SliceSample"]

SliceSample = int | Literal["mean", "interleave", "axis"]
_MODES = ("mean", "interleave", "axis")


@dataclass(frozen=True)
class Layout:
    """Page order of one recording.

    ``page(t, z, f, c) = t * pages_per_volume + (z * F + f) * C + c``; flyback pages follow the
    slices of each volume.  All indices are int64.
    """

    num_channels: int
    num_planes: int
    frames_per_slice: int
    num_flyback: int
    num_volumes: int
    total_pages: int

    @property
    def pages_per_volume(self) -> int:
        return self.num_channels * (self.num_planes * self.frames_per_slice + self.num_flyback)

    @property
    def dropped_pages(self) -> int:
        """Pages after the last complete volume (an aborted acquisition)."""
        return self.total_pages - self.num_volumes * self.pages_per_volume

    def page(
        self, t: npt.ArrayLike, z: npt.ArrayLike, f: npt.ArrayLike, c: int
    ) -> npt.NDArray[np.int64]:
        """Global raw page index (broadcasting int64 arithmetic)."""
        t, z, f = (np.asarray(a, dtype=np.int64) for a in (t, z, f))
        return t * self.pages_per_volume + (z * self.frames_per_slice + f) * self.num_channels + c

    @classmethod
    def from_counts(
        cls,
        *,
        num_channels: int,
        num_planes: int,
        frames_per_slice: int,
        num_flyback: int,
        total_pages: int,
        source: str = "",
    ) -> Layout:
        """Fit the metadata's layout to the pages on disk.

        A single volume written without its flyback frames is recognised; an incomplete last
        volume is dropped with an :class:`IncompleteVolumeWarning`.

        Raises
        ------
        LayoutError
            If not even one complete volume (frame, when planar) is on disk.
        """
        if min(num_channels, num_planes, frames_per_slice) < 1 or num_flyback < 0:
            raise LayoutError(
                f"{source}: metadata describe an impossible layout "
                f"(C={num_channels}, Z={num_planes}, F={frames_per_slice}, "
                f"flyback={num_flyback})"
            )
        slices_pages = num_channels * num_planes * frames_per_slice
        if num_flyback and total_pages == slices_pages:
            num_flyback = 0  # a single volume is saved without its flyback frames
        per_volume = slices_pages + num_channels * num_flyback
        num_volumes = total_pages // per_volume
        if num_volumes == 0:
            raise LayoutError(
                f"{source}: {total_pages} pages on disk, fewer than one volume needs "
                f"({per_volume} = {num_channels} channels × ({num_planes} planes × "
                f"{frames_per_slice} frames + {num_flyback} flyback)); the file is incomplete "
                "or its metadata are wrong"
            )
        layout = cls(
            num_channels, num_planes, frames_per_slice, num_flyback, num_volumes, total_pages
        )
        if layout.dropped_pages:
            warnings.warn(
                f"{source}: the last volume is incomplete ({layout.dropped_pages} of "
                f"{per_volume} pages); it is left out, {num_volumes} complete volumes remain",
                IncompleteVolumeWarning,
                stacklevel=3,
            )
        return layout


def _wrap_index(value: int, size: int, message: str) -> int:
    """``value`` in range(size), negative counting from the end; SelectionError otherwise."""
    index = int(value)
    if index < 0:
        index += size
    if not 0 <= index < size:
        raise SelectionError(message)
    return index


@dataclass(frozen=True)
class Selection:
    """What :meth:`Dataset.array` shows: one channel, all planes or one, a slice-sample mode.

    Output shape: (T', [Z], [F], Y, X) where T' = T·F for ``"interleave"`` else T; the Z axis is
    present when the data are volumetric and ``plane`` is None; the F axis only for ``"axis"``.
    """

    channel: int
    plane: int | None
    slice_sample: SliceSample
    volumetric: bool

    @classmethod
    def make(
        cls, layout: Layout, channel_index: int, plane: int | None, slice_sample: SliceSample
    ) -> Selection:
        if not 0 <= channel_index < layout.num_channels:
            raise SelectionError(
                f"channel index {channel_index} does not exist; the dataset "
                f"has {layout.num_channels} channel(s)"
            )
        if plane is not None:
            plane = _wrap_index(
                plane,
                layout.num_planes,
                f"plane {plane} does not exist; the dataset has "
                f"{layout.num_planes} plane(s) (0–{layout.num_planes - 1})",
            )
        if isinstance(slice_sample, str):
            if slice_sample not in _MODES:
                raise SelectionError(
                    f"slice_sample {slice_sample!r} is not one of an int, "
                    f"{', '.join(map(repr, _MODES))}"
                )
        else:
            slice_sample = _wrap_index(
                slice_sample,
                layout.frames_per_slice,
                f"slice sample {slice_sample} does not exist; there are "
                f"{layout.frames_per_slice} frames per slice",
            )
        return cls(channel_index, plane, slice_sample, layout.num_planes > 1)

    def num_times(self, layout: Layout) -> int:
        per = layout.frames_per_slice if self.slice_sample == "interleave" else 1
        return layout.num_volumes * per

    def leading_shape(self, layout: Layout) -> tuple[int, ...]:
        """Shape before (Y, X)."""
        shape = [self.num_times(layout)]
        if self.volumetric and self.plane is None:
            shape.append(layout.num_planes)
        if self.slice_sample == "axis":
            shape.append(layout.frames_per_slice)
        return tuple(shape)

    def axis_labels(self) -> tuple[str, ...]:
        labels = ["t"]
        if self.volumetric and self.plane is None:
            labels.append("z")
        if self.slice_sample == "axis":
            labels.append("sample")
        return (*labels, "y", "x")

    def pages(self, layout: Layout, start: int, stop: int) -> npt.NDArray[np.int64]:
        """Pages for output time rows ``start:stop``, shape (rows, nz, nf), int64.

        ``nf`` is the number of samples combined or stacked per output frame (1 for a picked
        sample and for ``"interleave"``).
        """
        return self.pages_at(layout, np.arange(start, stop, dtype=np.int64))

    def pages_at(self, layout: Layout, rows: npt.ArrayLike) -> npt.NDArray[np.int64]:
        """Pages for output time rows ``rows`` (int array), shape (len(rows), nz, nf)."""
        rows = np.asarray(rows, dtype=np.int64)
        planes = (
            np.arange(layout.num_planes, dtype=np.int64)
            if self.plane is None
            else np.array([self.plane], dtype=np.int64)
        )
        F = layout.frames_per_slice
        if self.slice_sample == "interleave":
            t, f = rows // F, rows % F
            return layout.page(
                t[:, None, None], planes[None, :, None], f[:, None, None], self.channel
            )
        if isinstance(self.slice_sample, str):  # mean or axis: all samples
            f = np.arange(F, dtype=np.int64)
        else:
            f = np.array([self.slice_sample], dtype=np.int64)
        return layout.page(
            rows[:, None, None], planes[None, :, None], f[None, None, :], self.channel
        )


def time_rows(times: slice | npt.ArrayLike | None, n_rows: int) -> npt.NDArray[np.int64]:
    """Time rows selected by ``times`` (None = all, a slice, or indices; negative counts from
    the end) as int64 indices in range.
    """
    if times is None:
        return np.arange(n_rows, dtype=np.int64)
    if isinstance(times, slice):
        return np.arange(*times.indices(n_rows), dtype=np.int64)
    try:
        rows = np.asarray(times).reshape(-1)
        if rows.size and not np.issubdtype(rows.dtype, np.integer):
            raise TypeError
        rows = rows.astype(np.int64)
    except (TypeError, ValueError):
        raise SelectionError(f"times must be a slice or integer indices, got {times!r}") from None
    if rows.size:
        rows = np.where(rows < 0, rows + n_rows, rows)
        if rows.min() < 0 or rows.max() >= n_rows:
            raise SelectionError(f"time index out of range 0–{n_rows - 1}")
    return rows


@dataclass(frozen=True)
class FileTable:
    """Global page numbers over a series of files (pages of all files concatenated)."""

    pages_per_file: tuple[int, ...]

    @functools.cached_property
    def starts(self) -> npt.NDArray[np.int64]:
        return np.concatenate([[0], np.cumsum(self.pages_per_file, dtype=np.int64)])

    @property
    def total_pages(self) -> int:
        return int(sum(self.pages_per_file))

    def locate(self, pages: npt.ArrayLike) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.int64]]:
        """(file index, page within file) for global ``pages``."""
        pages = np.asarray(pages, dtype=np.int64)
        starts = self.starts
        if pages.size and (pages.min() < 0 or pages.max() >= starts[-1]):
            raise LayoutError(f"page index out of range 0–{starts[-1] - 1}")
        files = np.searchsorted(starts, pages, side="right") - 1
        return files, pages - starts[files]
