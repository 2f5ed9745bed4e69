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
import zlib
from typing import TYPE_CHECKING, Any

import dask.array as da
import numpy as np
import numpy.typing as npt

from .reading import LazyArray

if TYPE_CHECKING:
    from .reading import BlockReader

__all__ = ["CHUNK_BYTES", "ArrayCache", "SelectionArray", "selection_array"]

CHUNK_BYTES = 4 << 20  # a few frames: small tasks for dask schedulers, quick to read one


#: the arrays made for blocks, by id(block): (block, file sizes and times, array)
ArrayCache = dict[int, tuple["BlockReader", tuple[tuple[int, int], ...], da.Array]]


def selection_array(block: BlockReader, cache: ArrayCache | None = None) -> da.Array:
    """The dask array of ``block``'s selection, chunked along time only.

    With a ``cache``, the graph made for the same block and unchanged files is reused
    (making one costs more than reading a frame).
    """
    stats = tuple((s.st_size, s.st_mtime_ns) for s in map(os.stat, block.spec.paths))
    hit = None if cache is None else cache.get(id(block))
    if hit is not None and hit[0] is block and hit[1] == stats:
        plain = hit[2]
    else:
        plain = _graph(block, stats)
        if cache is not None:
            cache[id(block)] = (block, stats, plain)
    # (a new array each time: dask arrays can be assigned to in place)
    return SelectionArray.wrap(plain, LazyArray(block), ())


def _graph(block: BlockReader, stats: tuple[tuple[int, int], ...]) -> da.Array:
    from dask.base import tokenize

    source = LazyArray(block)
    n_rows = source.shape[0]
    row_bytes = int(np.prod(source.shape[1:])) * source.dtype.itemsize
    per_chunk = max(1, min(n_rows, CHUNK_BYTES // max(row_bytes, 1)))
    reg = block.registration
    moved = (
        ()
        if reg is None
        else (
            reg.shifts,
            reg.bidi_phase,
            block.shift_mode,
            getattr(reg, "block_shifts", None),  # a piecewise registration's field
            getattr(reg, "block_centers", None),
        )
    )
    name = "scanimage-" + tokenize(
        block.spec,
        stats,
        block.layout,
        block.selection,
        block.product,
        block.bin_width_ns,
        *moved,
    )
    plain: da.Array = da.from_array(  # type: ignore[no-untyped-call]
        source,
        chunks=(per_chunk, *source.shape[1:]),
        name=name,
        lock=False,
        asarray=False,
        fancy=False,
        inline_array=True,
        meta=np.empty((0,) * source.ndim, dtype=source.dtype),
    )
    return plain


def _take(source: LazyArray, key: tuple[Any, ...]) -> npt.NDArray[Any]:
    """Rows of ``source`` at basic index ``key`` (the task of one time row)."""
    out: npt.NDArray[Any] = source[key]
    return out


def _basic(index: tuple[Any, ...]) -> bool:
    """Only ints, slices and Ellipsis (what :class:`LazyArray` reads as NumPy would)."""
    return all(
        k is Ellipsis or isinstance(k, slice | int | np.integer) and not isinstance(k, bool)
        for k in index
    )


class SelectionArray(da.Array):
    """A dask array that knows which rows of a selection it holds (see the module notes)."""

    _source: LazyArray | None  # None once assigned to: only the graph has the values
    _index: tuple[Any, ...]

    @classmethod
    def wrap(cls, plain: da.Array, source: LazyArray, index: tuple[Any, ...]) -> SelectionArray:
        out = cls(plain.dask, plain.name, plain.chunks, meta=plain._meta)
        out._source = source
        out._index = index
        return out

    def __getitem__(self, index: Any) -> da.Array:
        key = index if isinstance(index, tuple) else (index,)
        source = self._source
        if source is None or self._index or not _basic(key):
            # (a slice of a slice, fancy indexing, an array assigned to: dask's graph)
            graph_slice: da.Array = super().__getitem__(index)  # type: ignore[no-untyped-call]
            return graph_slice
        if key and isinstance(key[0], int | np.integer) and Ellipsis not in key[1:]:
            one = self._one_row(source, key)
            if one is not None:
                return one
        plain: da.Array = super().__getitem__(index)  # type: ignore[no-untyped-call]
        if plain.ndim == 0:
            return plain
        return SelectionArray.wrap(plain, source, key)

    def _one_row(self, source: LazyArray, key: tuple[Any, ...]) -> SelectionArray | None:
        """``self[key]`` for an int time index: one task reading that row (dask's slicing of
        the chunk costs more than the read).  None for a scalar.
        """
        n = self.shape[0]
        t = int(key[0])
        if not -n <= t < n:
            raise IndexError(f"index {t} is out of bounds for axis 0 with size {n}")
        key = (t % n, *key[1:])
        shape = np.broadcast_to(np.empty((), bool), self.shape)[key].shape  # (no memory)
        if not shape:
            return None
        name = f"{self.name}-row-{zlib.crc32(repr(key).encode()):08x}"
        graph = {(name, *(0,) * len(shape)): (_take, source, key)}
        chunks = tuple((size,) for size in shape)
        meta = np.empty((0,) * len(shape), dtype=self.dtype)
        out = SelectionArray(graph, name, chunks, meta=meta)  # type: ignore[no-untyped-call]
        out._source, out._index = source, key
        return out

    def __setitem__(self, key: Any, value: Any) -> None:
        super().__setitem__(key, value)  # type: ignore[no-untyped-call]
        self._source = None  # (the values are the graph's now)

    def _local(self, kwargs: dict[str, Any]) -> bool:
        """Compute here, straight into the output?  Only on the local schedulers."""
        from dask import local, threaded
        from dask.base import get_scheduler

        if self._source is None or set(kwargs) - {"scheduler"}:
            return False
        get = get_scheduler(  # type: ignore[no-untyped-call]
            scheduler=kwargs.get("scheduler"), collections=[self]
        )
        return get in (threaded.get, local.get_sync)

    def _read(self) -> npt.NDArray[Any]:
        out: npt.NDArray[Any] = self._source[self._index]  # type: ignore[index]
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
