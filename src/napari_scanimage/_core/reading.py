"""Picklable reader specs and per-thread file readers shared by NumPy and dask reads.

A :class:`ReaderSpec` names files and their page counts only: every process indexes a file
once (cached by path, size and modification time) and every thread keeps its own open
:class:`~napari_scanimage.io.pages.PageReader`, so dask graphs never carry an open handle.
"""

from __future__ import annotations

import atexit
import dataclasses
import functools
import os
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import numpy.typing as npt

from ..errors import FormatError, LayoutError, ScanImageError, SelectionError, read_error
from ..io.pages import PageReader
from ..io.siff import SiffReader
from ..io.tiff import PageIndex, index_pages
from .layout import FileTable, Layout, Selection
from .shifting import Shifts, apply_shifts, correct_bidi
from .warping import block_field, warp_frames

if TYPE_CHECKING:
    import dask.array as da

__all__ = ["BlockReader", "LazyArray", "PageCrop", "ReaderSpec", "close_readers", "register_index"]

_index_lock = threading.Lock()
_indexes: dict[tuple[str, int, int], PageIndex] = {}
_readers_lock = threading.Lock()
#: open readers by (thread ident, path): each thread reads through its own handle
_open_readers: dict[tuple[int, str], PageReader | SiffReader] = {}


def _file_key(path: str) -> tuple[str, int, int]:
    st = os.stat(path)
    return (path, st.st_size, st.st_mtime_ns)


def register_index(index: PageIndex) -> None:
    """Make an index built elsewhere available to readers in this process."""
    with _index_lock:
        _indexes[_file_key(index.path)] = index


def _get_index(path: str) -> PageIndex:
    try:
        key = _file_key(path)
        index = _indexes.get(key)
        if index is None:
            with _index_lock:  # a file still being written: walk only its new pages
                known = [ix for k, ix in _indexes.items() if k[0] == path]
            base = max(known, key=len) if known else None
            index = index_pages(path, resume=base, warn=base is None)
            _check_unchanged(path, index)
            with _index_lock:
                _indexes[key] = index
    except OSError as exc:  # deleted, permission denied, drive unmounted, I/O error
        if isinstance(exc, ScanImageError):
            raise
        raise read_error(path, exc) from exc
    return index


def _check_unchanged(path: str, index: PageIndex) -> None:
    """Refuse a file changed under an open recording (replaced or shortened) so that its pages
    no longer match what the recording was opened with.
    """
    with _index_lock:
        known = [ix for k, ix in _indexes.items() if k[0] == path]
    if known and (
        len(index) < min(map(len, known))
        or any(
            ix.shape != index.shape
            or ix.dtype != index.dtype
            or (ix.siff_flags is None) != (index.siff_flags is None)
            for ix in known
        )
    ):
        raise FormatError(
            f"{path}: the file changed while it was open (now {len(index)} "
            f"pages of {index.shape} {index.dtype}); open it again"
        )


def _reader(path: str) -> PageReader | SiffReader:
    """The open reader of ``path`` of the calling thread: a SiffReader for `.siff` files.

    Readers are kept in one process-wide table by (thread, path), not in thread-local storage:
    a thread's locals are destroyed while the thread shuts down, and closing a memory map
    there (which releases the GIL) can abort the interpreter.  Readers of threads that have
    ended are closed here, from a live thread, and every reader at exit.
    """
    key = (threading.get_ident(), path)
    reader = _open_readers.get(key)
    if reader is None or reader.closed:
        _close_readers_of_ended_threads()
        index = _get_index(path)
        cls = PageReader if index.siff_flags is None else SiffReader
        try:
            reader = cls(index)
        except OSError as exc:
            raise read_error(path, exc) from exc
        with _readers_lock:
            _open_readers[key] = reader
    return reader


def _close_readers_of_ended_threads() -> None:
    alive = {t.ident for t in threading.enumerate()}
    with _readers_lock:
        ended = [key for key in _open_readers if key[0] not in alive]
        readers = [_open_readers.pop(key) for key in ended]
    for reader in readers:
        reader.close()


@atexit.register
def _close_all() -> None:
    with _readers_lock:
        readers = list(_open_readers.values())
        _open_readers.clear()
    for reader in readers:
        reader.close()


def close_readers(paths: Iterable[str | os.PathLike[str]]) -> None:
    """Close every cached reader (all threads) of ``paths`` and forget their indexes."""
    names = set(map(str, paths))
    with _readers_lock:
        readers = [r for (_, path), r in _open_readers.items() if path in names]
    for reader in readers:
        reader.close()
    with _index_lock:
        for key in [k for k in _indexes if k[0] in names]:
            del _indexes[key]


@dataclass(frozen=True)
class PageCrop:
    """One multi-ROI field of every page: rows ``row_offsets[z]`` to ``+ height`` and columns
    ``0:width`` of the pages of plane z; planes where the field is not scanned (offset -1) and
    flyback pages read as zeros.  The layout counts give each page's plane.
    """

    page_shape: tuple[int, int]
    row_offsets: tuple[int, ...]
    height: int
    width: int
    num_channels: int
    frames_per_slice: int
    num_flyback: int

    def planes_of(self, pages: npt.ArrayLike) -> npt.NDArray[np.int64]:
        """Plane of each global page (-1 for flyback pages)."""
        C, F, Z = self.num_channels, self.frames_per_slice, len(self.row_offsets)
        within = np.asarray(pages, dtype=np.int64) % (C * (Z * F + self.num_flyback))
        planes = within // C // F
        return np.where(planes < Z, planes, -1)

    def read(
        self, spec: ReaderSpec, pages: npt.ArrayLike, out: npt.NDArray[Any] | None
    ) -> npt.NDArray[Any]:
        """The field's pixels of ``pages`` (any shape): only the field's band of rows of each
        page is read (through ``spec`` without the crop).
        """
        pages = np.asarray(pages, dtype=np.int64)
        whole = dataclasses.replace(spec, frame_shape=self.page_shape, crop=None)
        if out is None:
            out = np.empty(pages.shape + (self.height, self.width), dtype=spec.dtype)
        flat_out = out.reshape((-1, self.height, self.width))
        flat = pages.reshape(-1)
        planes = self.planes_of(flat)
        for z in np.unique(planes).tolist():
            at = np.flatnonzero(planes == z)
            r = self.row_offsets[z] if z >= 0 else -1
            if r < 0:
                flat_out[at] = 0
            elif self.width == self.page_shape[1]:  # full-width field: straight into out
                band = (
                    flat_out
                    if len(at) == len(flat)
                    else np.empty((len(at), self.height, self.width), dtype=spec.dtype)
                )
                whole.read_pages(flat[at], band, rows=(r, self.height))
                if band is not flat_out:
                    flat_out[at] = band
            else:
                flat_out[at] = whole.read_pages(flat[at], rows=(r, self.height))[..., : self.width]
        return out


@dataclass(frozen=True)
class ReaderSpec:
    """Files of one recording and how many pages each contributes (picklable).

    With a ``crop`` (a multi-ROI field) reads return that field of each page and
    ``frame_shape`` is the field's shape.
    """

    paths: tuple[str, ...]
    pages_per_file: tuple[int, ...]
    frame_shape: tuple[int, int]
    dtype: str
    crop: PageCrop | None = None

    @functools.cached_property
    def files(self) -> FileTable:
        return FileTable(self.pages_per_file)

    def read_pages(
        self,
        pages: npt.ArrayLike,
        out: npt.NDArray[Any] | None = None,
        rows: tuple[int, int] | None = None,
    ) -> npt.NDArray[Any]:
        """Read global ``pages`` (any shape) into an array of shape ``pages.shape + (Y, X)``;
        with ``rows`` = (first, count), only that band of each page: ``(count, X)``.
        """
        if self.crop is not None:
            return self.crop.read(self, pages, out)
        pages = np.asarray(pages, dtype=np.int64)
        shape = self.frame_shape if rows is None else (rows[1], self.frame_shape[1])
        if out is None:
            out = np.empty(pages.shape + shape, dtype=self.dtype)
        flat_out = out.reshape((-1,) + shape)
        flat = pages.ravel()
        if len(self.paths) == 1:  # the common case: no file lookup
            if flat.size and (flat.min() < 0 or flat.max() >= self.pages_per_file[0]):
                raise LayoutError(f"page index out of range 0–{self.pages_per_file[0] - 1}")
            _reader(self.paths[0]).read_into(flat, flat_out, rows)
            return out
        files, local = self.files.locate(flat)
        for k in np.unique(files).tolist():
            sel = np.flatnonzero(files == k)
            reader = _reader(self.paths[k])
            if len(sel) == len(files):
                reader.read_into(local, flat_out, rows)
            else:
                block = np.empty((len(sel),) + shape, dtype=self.dtype)
                reader.read_into(local[sel], block, rows)
                flat_out[sel] = block
        return out

    def description(self, page: int) -> str:
        files, local = self.files.locate(np.array([page]))
        return _reader(self.paths[int(files[0])]).description(int(local[0]))

    def by_file(
        self, pages: npt.ArrayLike
    ) -> Iterator[tuple[PageReader | SiffReader, npt.NDArray[np.int64], npt.NDArray[np.intp]]]:
        """Yield (reader, local pages, positions in ``pages``) for each file ``pages`` touch."""
        flat = np.asarray(pages, dtype=np.int64).reshape(-1)
        files, local = self.files.locate(flat)
        for k in np.unique(files).tolist():
            sel = np.flatnonzero(files == k)
            yield _reader(self.paths[k]), local[sel], sel

    def siff_by_file(
        self, pages: npt.ArrayLike
    ) -> Iterator[tuple[SiffReader, npt.NDArray[np.int64], npt.NDArray[np.intp]]]:
        """:meth:`by_file` for `.siff` recordings: photon readers only.

        Raises
        ------
        SelectionError
            When a file of ``pages`` is not a `.siff` file (it has no photons).
        """
        for reader, local, sel in self.by_file(pages):
            if not isinstance(reader, SiffReader):
                raise SelectionError(
                    f"{reader.index.path} is not a .siff file; photon arrival times need one"
                )
            yield reader, local, sel

    def lifetimes(self, pages: npt.ArrayLike, bin_width_ns: float) -> npt.NDArray[np.float32]:
        """`.siff` mean photon arrival time (ns) per pixel of ``pages`` (any shape): float32
        ``pages.shape + (Y, X)``, NaN where a pixel has no photon.
        """
        from ..io.siff_lifetimes import lifetime_frames

        pages = np.asarray(pages, dtype=np.int64)
        out = np.empty(pages.shape + self.frame_shape, np.float32)
        flat = out.reshape((-1, *self.frame_shape))
        parts = list(self.by_file(pages))  # (only `.siff` recordings have photons: SiffReaders)
        for reader, local, sel in parts:
            whole = len(parts) == 1
            part = flat if whole else np.empty((len(sel), *self.frame_shape), np.float32)
            lifetime_frames(cast(SiffReader, reader), local, bin_width_ns, part)
            if not whole:
                flat[sel] = part
        return out

    def pixel_sums(
        self, pages: npt.ArrayLike
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """`.siff` photon counts and arrival-time sums per pixel of ``pages`` (any shape):
        two int64 arrays of shape ``pages.shape + (Y, X)``.
        """
        pages = np.asarray(pages, dtype=np.int64)
        flat = pages.reshape(-1)
        shape = pages.shape + self.frame_shape
        parts = list(self.by_file(flat))  # (only `.siff` recordings have photons: SiffReaders)
        if len(parts) == 1:  # one file: its arrays as they are (no copy)
            reader, local, _ = parts[0]
            counts, sums = cast(SiffReader, reader).pixel_sums(
                local, np.arange(len(local)), len(local)
            )
            return counts.reshape(shape), sums.reshape(shape)
        counts = np.empty((flat.size, *self.frame_shape), np.int64)
        sums = np.empty_like(counts)
        for reader, local, sel in parts:
            n, t = cast(SiffReader, reader).pixel_sums(local, np.arange(len(local)), len(local))
            counts[sel], sums[sel] = n, t
        return counts.reshape(shape), sums.reshape(shape)


@dataclass(frozen=True)
class BlockReader:
    """Reads output time rows of one :class:`Selection` (the function inside dask tasks).

    ``product`` is ``"intensity"`` (pixel values; photon counts for `.siff`) or ``"lifetime"``
    (`.siff` only: mean photon arrival time per pixel in ns, NaN without photons; samples
    averaged with ``"mean"`` pool their photons).

    With a ``registration`` every frame is corrected on read (bidirectional phase, then the
    shift of its volume and plane; see :mod:`.shifting`) with ``shift_mode``
    ``"integer"`` (exact copies, dtype kept), ``"bilinear"`` or ``"fourier"`` (float32).
    Lifetimes always move photon counts and arrival sums by whole pixels before dividing.
    A piecewise registration moves each frame by its displacement field (:mod:`.warping`);
    ``photons`` (`.siff` recordings) then makes ``"integer"`` move photon counts.
    """

    spec: ReaderSpec
    layout: Layout
    selection: Selection
    product: str = "intensity"
    bin_width_ns: float = 0.0
    registration: Shifts | None = None
    shift_mode: str = "integer"
    photons: bool = False

    @property
    def out_dtype(self) -> np.dtype:
        if self.selection.slice_sample == "mean" or self.product == "lifetime":
            return np.dtype(np.float32)
        if self.registration is not None and self.shift_mode != "integer":
            return np.dtype(np.float32)
        return np.dtype(self.spec.dtype)

    def out_shape(self, rows: int) -> tuple[int, ...]:
        return (rows, *self.selection.leading_shape(self.layout)[1:], *self.spec.frame_shape)

    def rows(self, start: int, stop: int) -> npt.NDArray[Any]:
        """Output rows ``start:stop`` as one array (pages read straight into it)."""
        return self.rows_at(np.arange(start, stop, dtype=np.int64))

    def rows_at(self, rows: npt.NDArray[np.integer[Any]]) -> npt.NDArray[Any]:
        """Output rows ``rows`` (int indices) as one array, in one read."""
        pages = self.selection.pages_at(self.layout, rows)  # (n, nz, nf)
        sel = self.selection
        out: npt.NDArray[Any]
        if self.product == "lifetime" and sel.slice_sample != "mean" and self.registration is None:
            out = self.spec.lifetimes(pages, self.bin_width_ns)  # (one pass, no int64 sums)
        elif self.product == "lifetime":
            counts, sums = self.spec.pixel_sums(pages)
            if sel.slice_sample == "mean":  # pool the samples' photons
                counts, sums = counts.sum(axis=2, keepdims=True), sums.sum(axis=2, keepdims=True)
            if self.registration is not None:  # move the photons: whole pixels, exact
                counts, sums = (self._register(a, rows, "integer") for a in (counts, sums))
            with np.errstate(invalid="ignore", divide="ignore"):
                out = np.true_divide(
                    sums,
                    counts,  # NaN: no photon
                    dtype=np.float32,
                )
                out *= np.float32(self.bin_width_ns)
        else:
            out = self.spec.read_pages(pages)
            if sel.slice_sample == "mean":
                out = out.mean(axis=2, dtype=np.float32, keepdims=True)
            if self.registration is not None:
                out = self._register(out, rows, self.shift_mode)
        if sel.slice_sample != "axis":
            out = out[:, :, 0]
        if not (sel.volumetric and sel.plane is None):
            out = out[:, 0]
        return out

    def __call__(self, start: int, stop: int) -> npt.NDArray[Any]:
        return self.rows(start, stop)

    def row_shifts(self, rows: npt.ArrayLike, name: str = "shifts") -> npt.NDArray[Any]:
        """Registration shifts (n, nz, 2) of output time rows ``rows``: a row's volume and the
        selection's planes (``name="block_shifts"``: a piecewise registration's block
        residuals (n, nz, NBY, NBX, 2)).
        """
        rows = np.asarray(rows, dtype=np.int64)
        if self.selection.slice_sample == "interleave":
            rows = rows // self.layout.frames_per_slice
        planes = (
            slice(None)
            if self.selection.plane is None
            else slice(self.selection.plane, self.selection.plane + 1)
        )
        if self.registration is None:
            raise SelectionError("this reader applies no registration, so it has no shifts")
        shifts: npt.NDArray[Any] = getattr(self.registration, name)[rows][:, planes]
        return shifts

    def _register(
        self, frames: npt.NDArray[Any], rows: npt.NDArray[np.integer[Any]], mode: str
    ) -> npt.NDArray[Any]:
        """Bidirectional correction and shifts applied to frames (n, nz, nf, Y, X); the
        ``"integer"`` mode rounds the bidirectional phase too (an exact copy).
        """
        reg = self.registration
        if reg is None:  # nothing to apply
            return frames
        p = float(np.round(reg.bidi_phase)) if mode == "integer" else reg.bidi_phase
        frames = correct_bidi(frames, p)
        shifts = self.row_shifts(rows)
        if reg.block_shifts is None or reg.block_centers is None:
            return apply_shifts(frames, shifts[:, :, None], mode)
        blocks = self.row_shifts(rows, "block_shifts")  # (n, nz, NBY, NBX, 2)
        fields = block_field(blocks, reg.block_centers, self.spec.frame_shape)
        fields += shifts[:, :, :, None, None].astype(np.float32)
        photons = self.photons or self.product == "lifetime"
        return warp_frames(frames, fields, mode, photons)


class LazyArray:
    """Read-only array over one selection without dask: indexing reads only the time rows it
    needs, in one call (a viewer step costs the page reads and little else).

    Supports the basic indexing napari and NumPy code use (ints, slices, Ellipsis, integer
    arrays on the time axis) and ``np.asarray``; :meth:`to_dask` gives the equivalent dask
    array.

    ``on_error``: None (a failed read raises), or a function called with the error (a
    :class:`~napari_scanimage.errors.ScanImageError` or OSError) of a failed read, after which
    the read returns zeros (a viewer shows blank frames and tells the user instead of failing).
    """

    on_error: Callable[[Exception], object] | None = None

    def __init__(self, block: BlockReader, to_dask: Callable[[], da.Array] | None = None):
        self.block = block
        self.shape = block.out_shape(block.selection.leading_shape(block.layout)[0])
        self.dtype = block.out_dtype
        self._to_dask = to_dask

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    def __len__(self) -> int:
        return self.shape[0]

    def __repr__(self) -> str:
        return f"LazyArray(shape={self.shape}, dtype={self.dtype})"

    def __getitem__(self, key: Any) -> Any:  # an array; a NumPy scalar when all axes get ints
        index: tuple[Any, ...] = key if isinstance(key, tuple) else (key,)
        if any(k is Ellipsis for k in index):
            at = next(i for i, k in enumerate(index) if k is Ellipsis)
            fill = (slice(None),) * (self.ndim - len(index) + 1)
            index = index[:at] + fill + index[at + 1 :]
        if len(index) > self.ndim:
            raise IndexError(f"too many indices for an array of {self.ndim} dimensions")
        first = index[0] if index else slice(None)
        rows = np.arange(self.shape[0], dtype=np.int64)[first]
        try:
            if np.ndim(rows) == 0:
                one: npt.NDArray[Any] = self.block.rows_at(np.array([rows], dtype=np.int64))[0]
                return one[index[1:]]
            return self.block.rows_at(rows)[(slice(None), *index[1:])]
        except (ScanImageError, OSError) as exc:
            if self.on_error is None:
                raise
            self.on_error(exc)
            blank: npt.NDArray[Any] = np.broadcast_to(
                np.zeros((), self.dtype),  # no memory
                self.shape,
            )[index]
            return np.zeros(blank.shape, self.dtype)

    def __array__(
        self, dtype: npt.DTypeLike | None = None, copy: bool | None = None
    ) -> npt.NDArray[Any]:
        out: npt.NDArray[Any] = self[...]
        return out if dtype is None else out.astype(dtype, copy=False)

    def to_dask(self) -> da.Array:
        """The same data as a dask array (as :meth:`Dataset.array` gives it)."""
        if self._to_dask is None:
            raise SelectionError("this lazy array was made without a dask equivalent")
        return self._to_dask()
