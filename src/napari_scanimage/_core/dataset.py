"""The public entry point: open a ScanImage recording as a :class:`Dataset`.

Functions
---------
open_dataset
    Open one file, or the multi-file series it belongs to, or an explicit list of files.

Classes
-------
Dataset
    Metadata (``info``, ``metadata``), lazy arrays (``array``), direct reads (``read``),
    per-sample ``timestamps`` and ``frame_indices``.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from ..errors import FormatError, ScanImageError, SelectionError, read_error
from ..io.mroi import Field, MroiGeometry
from ..io.scanimage import AcquisitionInfo, acquisition_info, read_static_metadata
from ..io.series import check_frame_continuity, discover_series
from ..io.siff import flim_settings
from ..io.siff_settings import check_siff_frame
from ..io.tiff import PageIndex, index_pages
from .arrays import ArrayMethods
from .fields import FieldMethods
from .layout import Layout, Selection, SliceSample, time_rows
from .live import reindex
from .photons import PhotonMethods
from .reading import BlockReader, LazyArray, ReaderSpec, close_readers, register_index
from .shifting import MODES, Shifts
from .timing import TimeMethods

if TYPE_CHECKING:
    import dask.array as da

__all__ = ["Dataset", "open_dataset"]


def open_dataset(
    path: str | os.PathLike[str],
    *,
    file_paths: Sequence[str | os.PathLike[str]] | None = None,
    bin_width_ps: float | None = None,
) -> Dataset:
    """Open a ScanImage recording.

    Parameters
    ----------
    path : path-like
        Any file of the recording.  A file of a split acquisition
        (``<base>_<acq>_<file>.tif``) opens the whole acquisition.
    file_paths : sequence of path-like, optional
        Explicit files in acquisition order; overrides discovery.
    bin_width_ps : float, optional
        `.siff` only: arrival-time bin width, overriding 5 ps · 2^binResolution from the
        header (older FLIM drivers used a 20 ps base, which the file does not state).

    Returns
    -------
    Dataset

    Raises
    ------
    FormatError
        The file is not a ScanImage TIFF or is corrupt.
    LayoutError
        Fewer pages than one volume needs.
    ReadError
        A file cannot be read (permission denied, drive unmounted, I/O error).
    """
    if file_paths is not None:
        paths = [Path(p) for p in file_paths]
        if not paths:
            raise FormatError("file_paths is empty; give at least one ScanImage file")
    else:
        paths = [Path(path)]
    try:
        if file_paths is None:
            paths = discover_series(path)
        for p in paths:
            if not p.is_file():
                raise FormatError(f"{p}: no such file")
        dataset = Dataset(paths, bin_width_ps=bin_width_ps)
        dataset._discover_series = file_paths is None  # refresh() looks for new files
        return dataset
    except OSError as exc:  # permission denied, drive gone, I/O error: say so
        if isinstance(exc, ScanImageError):
            raise
        raise read_error(exc.filename or paths[0], exc) from exc


class Dataset(FieldMethods, ArrayMethods, TimeMethods, PhotonMethods):
    """One ScanImage recording (one file or a series), read lazily.

    Use :func:`open_dataset` to create one.  Closing (or leaving a ``with`` block) releases the
    file handles held in this process; dask arrays made earlier reopen files when computed.
    """

    _discover_series = False  # refresh() adds new files of a split acquisition
    _whole: Dataset  # a field view's whole recording (see :attr:`whole`)

    def __init__(self, paths: Sequence[Path], *, bin_width_ps: float | None = None) -> None:
        self.paths = tuple(Path(p) for p in paths)
        static = read_static_metadata(self.paths[0])
        self._static = static
        self._indexes: list[PageIndex] = [index_pages(p) for p in self.paths]
        first = self._indexes[0]
        siff = first.siff_flags is not None
        info = acquisition_info(static, is_flim=siff)
        if siff:
            check_siff_frame(info, first.shape, str(self.paths[0]))
        self._flim = (
            flim_settings(static.values, bin_width_ps=bin_width_ps, path=str(self.paths[0]))
            if siff
            else None
        )
        dtype = np.dtype(np.uint16) if siff else first.dtype  # `.siff`: photon counts
        for ix in self._indexes[1:]:
            if (ix.siff_flags is not None) != siff:
                raise FormatError(
                    f"{ix.path}: mixes .siff and TIFF files in one recording; open them separately"
                )
            if ix.shape != first.shape or ix.dtype != first.dtype:
                raise FormatError(
                    f"{ix.path}: pages are {ix.shape} {ix.dtype}, but "
                    f"{first.path} has {first.shape} {first.dtype}; the files "
                    "do not belong to one recording"
                )
        for ix in self._indexes:
            register_index(ix)
        self.spec = ReaderSpec(
            tuple(str(p) for p in self.paths),
            tuple(len(ix) for ix in self._indexes),
            first.shape,
            dtype.str,
        )
        self.layout = Layout.from_counts(
            num_channels=info.num_channels,
            num_planes=info.num_planes,
            frames_per_slice=info.frames_per_slice,
            num_flyback=info.num_flyback,
            total_pages=self.spec.files.total_pages,
            source=self.paths[0].name,
        )
        self.info: AcquisitionInfo = dataclasses.replace(
            info,
            num_volumes=self.layout.num_volumes,
            num_flyback=self.layout.num_flyback,
            frame_shape=first.shape,
            dtype=dtype,
        )
        self._metadata: dict[str, Any] | None = None
        self._blocks: dict[tuple[object, ...], BlockReader] = {}
        self._arrays: dict[int, Any] = {}  # dask graphs of the blocks (see .darray)
        self._frame_values: dict[tuple[int, str], str | None] = {}
        self._mroi: MroiGeometry | None = None
        self._field_views: dict[int, Dataset] = {}
        #: the multi-ROI field this dataset is a view of (:meth:`field`), else None
        self.selected_field: Field | None = None
        if len(self.paths) > 1:
            self._check_series()

    # -- metadata -------------------------------------------------------------------------
    @property
    def metadata(self) -> dict[str, Any]:
        """Static ScanImage metadata as a dict of parsed values (``SI.…`` keys), plus
        ``RoiGroups`` when the file stores them.
        """
        if self._metadata is None:
            meta = dict(self._static.values.items())
            if self._static.roi_groups is not None:
                meta["RoiGroups"] = self._static.roi_groups.get(
                    "RoiGroups", self._static.roi_groups
                )
            self._metadata = meta
        return self._metadata

    def _check_series(self) -> None:
        starts = self.spec.files.starts
        bounds = [
            (self._frame_number(int(starts[k])), self._frame_number(int(starts[k + 1]) - 1))
            for k in range(len(self.paths))
        ]
        # frame numbers are parsed as float (the text may hold any number); io's check
        # compares and prints them as they are, but declares int
        check_frame_continuity(self.paths, bounds)  # type: ignore[arg-type]

    # -- selection ------------------------------------------------------------------------
    def channel_index(self, channel: int | str) -> int:
        """Index of a channel given by index or by name."""
        if isinstance(channel, str):
            names = self.info.channel_names
            if channel in names:
                return names.index(channel)
            raise SelectionError(
                f"no channel named {channel!r}; channels are {', '.join(map(repr, names))}"
            )
        return int(channel)

    def selection(
        self, channel: int | str = 0, *, plane: int | None = None, slice_sample: SliceSample = 0
    ) -> Selection:
        """What :meth:`array` reads for these arguments (checked: SelectionError if not)."""
        return Selection.make(self.layout, self.channel_index(channel), plane, slice_sample)

    def block_reader(
        self,
        channel: int | str,
        plane: int | None,
        slice_sample: SliceSample,
        product: str = "intensity",
        *,
        registration: Shifts | None = None,
        shift_mode: str | None = None,
    ) -> BlockReader:
        """The (cached) reader of one channel's time rows, for code that reads in its own order.

        Parameters
        ----------
        channel, plane, slice_sample
            As for :meth:`array`.
        product : {"intensity", "lifetime"}
            What a read returns: pixel values, or mean arrival times of `.siff` photons.
        registration, shift_mode
            Shifts applied on read, as for :meth:`array`.

        Returns
        -------
        BlockReader
            Called with ``(start, stop)`` it returns rows ``start:stop`` as a NumPy array;
            ``rows_at(rows)`` reads any rows.
        """
        bin_ns = self.flim.bin_width_ns if product == "lifetime" else 0.0
        mode = self._shift_mode(registration, shift_mode, product)
        key = (
            channel,
            plane,
            slice_sample,
            product,
            bin_ns,
            None if registration is None else id(registration),
            mode,
        )
        block = self._blocks.get(key)  # (a cached reader keeps its registration alive)
        if block is None:  # cached: single-frame reads are dominated by fixed costs
            block = self._blocks[key] = BlockReader(
                self.spec,
                self.layout,
                self.selection(channel, plane=plane, slice_sample=slice_sample),
                product,
                bin_ns,
                registration,
                mode,
                self.is_siff,
            )
        return block

    def _shift_mode(self, registration: Shifts | None, shift_mode: str | None, product: str) -> str:
        """The shift mode to read with (default: ``"integer"`` for `.siff` photon counts,
        ``"bilinear"`` for TIFF), after checking that ``registration`` fits this recording.
        """
        if shift_mode is not None and shift_mode not in MODES:
            raise SelectionError(
                f"shift_mode {shift_mode!r} is not one of {', '.join(map(repr, MODES))}"
            )
        if registration is None:
            return "integer"
        registration.check_fits(
            self.layout.num_volumes, self.info.num_planes, self.spec.frame_shape
        )
        if product == "lifetime":
            if shift_mode not in (None, "integer"):
                raise SelectionError(
                    "lifetime images move photons by whole pixels only; use "
                    "shift_mode='integer' (or leave it unset)"
                )
            return "integer"
        return shift_mode or ("integer" if self.is_siff else "bilinear")

    def frames(
        self,
        channel: int | str = 0,
        *,
        plane: int | None = None,
        slice_sample: SliceSample = 0,
        product: str = "intensity",
        registration: Shifts | None = None,
        shift_mode: str | None = None,
        field: int | str | None = None,
    ) -> LazyArray:
        """Like :meth:`array` (``product="lifetime"``: :meth:`lifetime_array`), as a light
        lazy array without dask: indexing reads just the time rows asked for.  This is what
        napari layers hold; ``.to_dask()`` gives the dask array.
        """
        if field is not None:
            return self.field(field).frames(
                channel,
                plane=plane,
                slice_sample=slice_sample,
                product=product,
                registration=registration,
                shift_mode=shift_mode,
            )
        if product not in ("intensity", "lifetime"):
            raise SelectionError(f"product {product!r} is not 'intensity' or 'lifetime'")
        block = self.block_reader(
            channel, plane, slice_sample, product, registration=registration, shift_mode=shift_mode
        )
        return LazyArray(block, lambda: self._dask_array(block))

    # -- data -----------------------------------------------------------------------------
    def array(
        self,
        channel: int | str = 0,
        *,
        plane: int | None = None,
        slice_sample: SliceSample = 0,
        registration: Shifts | None = None,
        shift_mode: str | None = None,
        field: int | str | None = None,
    ) -> da.Array:
        """Lazy dask array of one channel.

        Parameters
        ----------
        channel : int or str
            Channel index (in saved order) or name.
        plane : int, optional
            One plane (negative counts from the end); None keeps all planes.
        slice_sample : int or {"mean", "interleave", "axis"}
            With several frames per slice: pick sample k, average them, interleave them into
            time, or keep them on an extra axis after z.
        registration : Registration, optional
            Motion registration of this recording (:mod:`.analysis.registration`), applied on
            read: each frame is corrected for the bidirectional phase and moved back by the
            shift of its volume and plane (every sample of a volume alike); pixels brought in
            from outside the frame are 0.
        shift_mode : {"integer", "bilinear", "fourier"}, optional
            How shifts are applied (:func:`.shifting.apply_shifts`): ``"integer"``
            rounds shifts and phase to whole pixels and copies exactly (dtype kept; the default
            for `.siff`, so photon counts stay counts); ``"bilinear"`` (default for TIFF) and
            ``"fourier"`` give float32.
        field : int or str, optional
            Multi-ROI recordings: only this field's pixels (``self.field(field).array(...)``;
            a registration must then be of that field).

        Returns
        -------
        dask.array.Array
            (T, Z, Y, X); (T, Y, X) when planar or ``plane`` is given; an extra sample axis
            after z for ``"axis"``; T·F time rows for ``"interleave"``.

        Raises
        ------
        SelectionError
            The registration is for another layout (time points, planes, frame shape).
        """
        if field is not None:
            return self.field(field).array(
                channel,
                plane=plane,
                slice_sample=slice_sample,
                registration=registration,
                shift_mode=shift_mode,
            )
        return self._dask_array(
            self.block_reader(
                channel, plane, slice_sample, registration=registration, shift_mode=shift_mode
            )
        )

    def _dask_array(self, block: BlockReader) -> da.Array:
        from .darray import selection_array  # (dask is imported on first use)

        return selection_array(block, self._arrays)

    def read(
        self,
        channel: int | str = 0,
        *,
        plane: int | None = None,
        slice_sample: SliceSample = 0,
        times: slice | Sequence[int] | None = None,
        registration: Shifts | None = None,
        shift_mode: str | None = None,
        field: int | str | None = None,
    ) -> npt.NDArray[Any]:
        """Read (part of) one channel into memory, bypassing dask.

        Same parameters and axes as :meth:`array`; ``times`` picks time rows (a slice or
        indices; default all).
        """
        if field is not None:
            return self.field(field).read(
                channel,
                plane=plane,
                slice_sample=slice_sample,
                times=times,
                registration=registration,
                shift_mode=shift_mode,
            )
        block = self.block_reader(
            channel, plane, slice_sample, registration=registration, shift_mode=shift_mode
        )
        n_rows = block.selection.num_times(self.layout)
        if times is None:
            return block.rows(0, n_rows)
        return block.rows_at(time_rows(times, n_rows))

    def file_indexes(self) -> Iterator[tuple[Path, int, PageIndex]]:
        """(path, first global page, PageIndex) of each file."""
        starts = self.spec.files.starts
        for k, ix in enumerate(self._indexes):
            yield self.paths[k], int(starts[k]), ix

    # -- files still being written -------------------------------------------------------
    def refresh(self) -> int:
        """Take in what was written to the files since they were opened (or last refreshed).

        ScanImage appends frames while it acquires.  This indexes the pages added since (only
        those are walked), adds files of a split acquisition that have appeared since (not
        when the dataset was opened with an explicit ``file_paths`` list) and updates
        ``spec``, ``layout`` and ``info``.  Arrays made earlier (``frames``, ``array``,
        layers) keep their length; new calls see the new one.  A partial last page or volume
        is left out quietly until it is complete.

        Returns
        -------
        int
            Time points (volumes) added; 0 when no new volume is complete.

        Raises
        ------
        FormatError
            A file is shorter than before or now holds another recording (other header,
            frame shape or type, or pages moved); the dataset is left unchanged.
        ReadError
            A file cannot be read any more (deleted, drive gone); the dataset is unchanged.
        """
        if self.whole is not self:  # a field view: the recording refreshes all its views
            return self.whole.refresh()
        paths, indexes, layout = reindex(self)  # checks all before anything changes
        added = layout.num_volumes - self.layout.num_volumes
        grew = len(paths) > len(self.paths)
        close_readers(self.spec.paths)  # readers map the old file lengths
        for ix in indexes:
            register_index(ix)
        for ds in (self, *self._field_views.values()):
            ds._take_files(paths, indexes, layout)
        if grew:
            self._check_series()
        return added

    def _take_files(self, paths: list[Path], indexes: list[PageIndex], layout: Layout) -> None:
        """Adopt refreshed files (a field view keeps its crop and frame shape)."""
        spec = dataclasses.replace(
            self.spec,
            paths=tuple(str(p) for p in paths),
            pages_per_file=tuple(len(ix) for ix in indexes),
        )
        crop = getattr(spec, "crop", None)
        if crop is not None and getattr(crop, "num_flyback", None) != layout.num_flyback:
            spec = dataclasses.replace(
                spec, crop=dataclasses.replace(crop, num_flyback=layout.num_flyback)
            )
        self.paths = tuple(paths)
        self._indexes = list(indexes)
        self.spec = spec
        self.layout = layout
        self.info = dataclasses.replace(
            self.info, num_volumes=layout.num_volumes, num_flyback=layout.num_flyback
        )
        self._blocks = {}  # readers made earlier keep the old length
        self._arrays = {}
        self._frame_values = {}

    # -- housekeeping ---------------------------------------------------------------------
    def close(self) -> None:
        """Release file handles held by this process for these files."""
        close_readers(self.spec.paths)

    def __enter__(self) -> Dataset:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        i = self.info
        more = f" +{len(self.paths) - 1} files" if len(self.paths) > 1 else ""
        if self.selected_field is not None:
            more += f" field {self.selected_field.name!r}"
        elif i.mroi and not self.is_siff:
            try:
                more += f" ({len(self.fields)} multi-ROI fields)"
            except ScanImageError:
                more += " (multi-ROI fields unreadable)"
        return (
            f"<Dataset {self.paths[0].name}{more}: "
            f"{i.num_volumes} × {i.num_planes} planes × {i.frames_per_slice} samples, "
            f"{i.num_channels} ch {i.channel_names}, {i.frame_shape} {i.dtype}>"
        )
