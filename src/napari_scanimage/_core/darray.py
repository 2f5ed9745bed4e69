"""Dask arrays of one selection (``Dataset.array``, ``Dataset.lifetime_array``).

The graph is one ``from_array`` over a :class:`~.reading.LazyArray` of the selection's
:class:`~.reading.BlockReader`: picklable, it names files and page numbers only, and every
worker reopens the files (:mod:`.reading`).  Chunks hold a few frames (``CHUNK_BYTES``).

A dask compute costs about a millisecond of scheduling whatever it reads, and gathers its
chunks into a new array (a second copy of the output).  So an array made here and the arrays
sliced from it with basic indices (ints, slices, Ellipsis) remember the rows they stand for,
and ``compute()`` / ``np.asarray`` on the local schedulers (threads, sync) read those rows
straight into the output, as :meth:`Dataset.read` does: a single frame costs its page read,
a whole channel one copy.  Any other operation, scheduler (processes, distributed) or
``dask.compute`` runs the graph; the values are the same.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import dask.array as da
import numpy as np
import numpy.typing as npt

from .reading import LazyArray

if TYPE_CHECKING:
    from .reading import BlockReader

__all__ = ["CHUNK_BYTES", "SelectionArray", "selection_array"]

CHUNK_BYTES = 4 << 20  # a few frames: small tasks for dask schedulers, quick to read one


def selection_array(block: BlockReader) -> da.Array:
    """The dask array of ``block``'s selection, chunked along time only."""
    from dask.base import tokenize

    source = LazyArray(block)
    n_rows = source.shape[0]
    row_bytes = int(np.prod(source.shape[1:])) * source.dtype.itemsize
    per_chunk = max(1, min(n_rows, CHUNK_BYTES // max(row_bytes, 1)))
    stats = [os.stat(p) for p in block.spec.paths]
    reg = block.registration
    moved = () if reg is None else (reg.shifts, reg.bidi_phase, block.shift_mode)
    name = "scanimage-" + tokenize(
        block.spec,
        [(s.st_size, s.st_mtime_ns) for s in stats],
        block.layout,
        block.selection,
        block.product,
        block.bin_width_ns,
        *moved,
    )
    plain = da.from_array(  # type: ignore[no-untyped-call]
        source,
        chunks=(per_chunk, *source.shape[1:]),
        name=name,
        lock=False,
        asarray=False,
        fancy=False,
        inline_array=True,
        meta=np.empty((0,) * source.ndim, dtype=source.dtype),
    )
    return SelectionArray.wrap(plain, source, ())


def _basic(index: tuple[Any, ...]) -> bool:
    """Only ints, slices and Ellipsis (what :class:`LazyArray` reads as NumPy would)."""
    return all(
        k is Ellipsis or isinstance(k, slice | int | np.integer) and not isinstance(k, bool)
        for k in index
    )


class SelectionArray(da.Array):
    """A dask array that knows which rows of a selection it holds (see the module notes)."""

    _source: LazyArray
    _index: tuple[Any, ...]

    @classmethod
    def wrap(cls, plain: da.Array, source: LazyArray, index: tuple[Any, ...]) -> SelectionArray:
        out: SelectionArray = cls(plain.dask, plain.name, plain.chunks, meta=plain._meta)
        out._source = source
        out._index = index
        return out

    def __getitem__(self, index: Any) -> da.Array:
        plain: da.Array = super().__getitem__(index)  # type: ignore[no-untyped-call]
        key = index if isinstance(index, tuple) else (index,)
        if self._index or not _basic(key) or plain.ndim == 0:
            return plain  # (a slice of a slice, or fancy indexing: dask's graph)
        return SelectionArray.wrap(plain, self._source, key)

    def _local(self, kwargs: dict[str, Any]) -> bool:
        """Compute here, straight into the output?  Only on the local schedulers."""
        from dask import local, threaded
        from dask.base import get_scheduler

        if set(kwargs) - {"scheduler"}:
            return False
        get = get_scheduler(  # type: ignore[no-untyped-call]
            scheduler=kwargs.get("scheduler"), collections=[self]
        )
        return get in (threaded.get, local.get_sync)

    def _read(self) -> npt.NDArray[Any]:
        out: npt.NDArray[Any] = self._source[self._index]
        # (an int on the time axis gives a view of a one-row read: own the memory)
        return out if out.base is None or out.base.size == out.size else out.copy()

    def compute(self, **kwargs: Any) -> Any:
        """As dask's ``compute``; on the local schedulers the rows are read directly."""
        if self._local(kwargs):
            return self._read()
        return super().compute(**kwargs)  # type: ignore[no-untyped-call]

    def __array__(
        self, dtype: npt.DTypeLike | None = None, copy: bool | None = None, **kwargs: Any
    ) -> npt.NDArray[Any]:
        if kwargs or not self._local({}):
            plain = super().__array__(dtype, copy, **kwargs)  # type: ignore[no-untyped-call]
            return np.asarray(plain)
        out = self._read()
        return out if dtype is None else out.astype(dtype, copy=False)
