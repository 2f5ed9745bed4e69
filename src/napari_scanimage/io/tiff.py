"""TIFF page indexing and reading, tuned for ScanImage files.

Functions
---------
index_pages
    Walk the IFD chain of a classic or BigTIFF file once into a :class:`PageIndex`.

Only the entries a reader needs are kept: data offset, byte count, description offset and
length, as int64 arrays; :mod:`napari_scanimage.io.pages` reads the pages.
"""

from __future__ import annotations

import mmap
import os
import struct
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
import numpy.typing as npt

from ..errors import FormatError, TruncatedFileWarning
from ._platform import pread_function
from ._tiff_checks import check_extent, check_frame_size, check_siff_shape
from ._tiff_resume import resumed_walk
from .ifd import (
    FORMAT_TAGS,
    TAG_DESCRIPTION,
    TAG_SIFF,
    TAG_STRIP_BYTES,
    TAG_STRIP_OFFSETS,
    TAG_TILE_WIDTH,
    IfdWalker,
    PageArrays,
    PageFormat,
    TiffHeader,
    WalkInfo,
    WalkState,
    dtype_from_format,
    read_header,
)

__all__ = ["PageIndex", "index_pages", "read_header"]

# pages this far apart are indexed with pread: mapping them would pull whole file regions in
SPARSE_STRIDE = 8 * 1024
WINDOW_BYTES = 4 * 2**20


@dataclass(frozen=True, eq=False)
class PageIndex:
    """Where every page of one TIFF file lives.

    Attributes
    ----------
    path : str
    data_offsets, byte_counts : int64 arrays
        First strip offset and byte count of each page (single-strip pages).
    description_offsets, description_lengths : int64 arrays
        ImageDescription position (0 length when absent).
    shape : tuple[int, int]
        (height, width) of the first page.
    dtype : numpy.dtype
    direct : bool
        True when every page is uncompressed, single strip, and the same shape and type as the
        first, so it can be read from a memory map.
    siff_flags : int8 array or None
        Tag 907 of each page (0 raw photons, 1 compressed, -1 absent); None when no page has
        it (an ordinary TIFF).
    file_size : int
    truncated : bool
        The file ends inside a page; that page and any after it are not indexed.
    next_ifd, walk_state, first_format, first_ifd
        Where the walk stopped (0: chain ended), its state, page 0's format, the first IFD.
    """

    path: str
    data_offsets: npt.NDArray[np.int64]
    byte_counts: npt.NDArray[np.int64]
    description_offsets: npt.NDArray[np.int64]
    description_lengths: npt.NDArray[np.int64]
    shape: tuple[int, int]
    dtype: np.dtype[Any]
    direct: bool
    file_size: int
    bigtiff: bool
    byteorder: str
    truncated: bool = False
    siff_flags: npt.NDArray[np.int8] | None = None
    next_ifd: int = 0
    walk_state: WalkState = ()
    first_format: PageFormat | None = None
    first_ifd: int = 0

    def __len__(self) -> int:
        return len(self.data_offsets)


class _Columns:
    """Fixed-size fields at byte ``c`` of many equal-sized IFD copies laid end to end."""

    def __init__(self, copies: bytes | bytearray, ifd_size: int):
        self.rows = np.frombuffer(copies, dtype=np.uint8).reshape(-1, ifd_size)

    def get(self, c: int, dtype: np.dtype[Any]) -> npt.NDArray[Any]:
        column = np.ascontiguousarray(self.rows[:, c : c + dtype.itemsize])
        values: npt.NDArray[Any] = column.view(dtype)
        return values.reshape(-1)


def _fast_walk(
    walker: IfdWalker,
    fd: int,
    header: TiffHeader,
    first_tags: tuple[int, ...],
    start: int,
    sparse: bool,
    start_state: WalkState,
) -> dict[str, Any] | None:
    """Index a file whose IFDs all share the first page's tag layout, or return None.

    The chain is followed with one unpack per page (the next-IFD field of a same-sized IFD);
    everything else is gathered and checked with vectorised NumPy afterwards.  Any surprise
    (different tag count or layout, out-of-range offsets, loops) returns None and the careful
    per-page walk takes over.  A cut end (a file still being written: the next IFD, or the last
    pages' data, not yet in the file) stops the walk at the last complete page: ``"next"`` is
    then the IFD to go on from (0 when the chain ended) and ``"state"`` the walk state there.
    IFDs are read with ``os.pread`` (one at a time when ``sparse``, else in windows; where
    ``os.pread`` is missing, by seeking ``fd``, which only this walk reads), so indexing maps
    no file pages and memory stays bounded.
    """
    size, big, bo = walker.size, header.bigtiff, header.byteorder
    count = len(first_tags)
    ifd_size = walker.count_size + walker.entry_size * count + (8 if big else 4)
    next_rel = ifd_size - (8 if big else 4)
    unpack_next = struct.Struct(bo + ("Q" if big else "I")).unpack_from
    ifds: list[int] = []
    ifd = start
    last = 0
    limit = size - ifd_size
    if start > limit:
        return None
    # IFD bytes are copied out of windows read with pread: a dense file (small frames) is read
    # in large windows, a sparse one (large frames) one IFD at a time; nothing stays mapped
    window = ifd_size if sparse else max(WINDOW_BYTES, ifd_size)
    copies: bytes | bytearray = bytearray()
    blocks: list[bytes] = []
    block, block_start, block_end = b"", 0, 0
    pread = pread_function()
    try:
        if sparse:  # one pread per IFD: the tightest loop
            append = ifds.append
            while ifd:
                if ifd <= last:
                    return None
                if ifd > limit:  # a cut end: the careful walk decides
                    break
                append(ifd)
                last = ifd
                block = pread(fd, ifd_size, ifd)
                blocks.append(block)
                ifd = unpack_next(block, next_rel)[0]
            copies = b"".join(blocks)
        while ifd:
            if ifd <= last:
                return None
            if ifd > limit:
                break
            ifds.append(ifd)
            last = ifd
            if ifd + ifd_size > block_end:
                block = pread(fd, window, ifd)
                block_start, block_end = ifd, ifd + len(block)
            rel = ifd - block_start
            copies += block[rel : rel + ifd_size]
            ifd = unpack_next(block, rel + next_rel)[0]
    except struct.error:
        return None
    pos = np.asarray(ifds, dtype=np.int64)
    gather = _Columns(copies, ifd_size)
    word = np.dtype(bo + ("u8" if big else "u4"))
    cnt_dtype = np.dtype(bo + ("u8" if big else "u2"))
    if not (gather.get(0, cnt_dtype) == count).all():
        return None
    where = {t: i for i, t in enumerate(first_tags)}
    head_dtype = np.dtype(bo + "u4")  # tag and type, checked for every page

    tag_dtype = np.dtype(bo + "u2")
    for i, tag in enumerate(first_tags):  # every page lists the careful walk's tags, in order
        if not (gather.get(walker.count_size + walker.entry_size * i, tag_dtype) == tag).all():
            return None

    def entry(tag: int) -> tuple[npt.NDArray[Any], ...]:
        at = walker.count_size + walker.entry_size * where[tag]
        head = gather.get(at, head_dtype)
        if not (head == head[0]).all():  # and the same type on every page
            raise LookupError
        return gather.get(at + 4, word), gather.get(at + 4 + word.itemsize, word)

    try:
        fields: dict[int, tuple[npt.NDArray[Any], ...]] = {
            t: entry(t)
            for t in (TAG_STRIP_OFFSETS, TAG_STRIP_BYTES, TAG_DESCRIPTION, TAG_SIFF)
            + FORMAT_TAGS
            + (TAG_TILE_WIDTH,)
            if t in where
        }
    except LookupError:
        return None
    for t in FORMAT_TAGS + (TAG_TILE_WIDTH,):
        if t in fields and not all((a == a[0]).all() for a in fields[t]):
            return None
    if TAG_TILE_WIDTH in fields or TAG_STRIP_BYTES not in fields:
        return None
    (so_count, so_val), (sb_count, sb_val) = fields[TAG_STRIP_OFFSETS], fields[TAG_STRIP_BYTES]
    if not ((so_count == 1).all() and (sb_count == 1).all()):
        return None
    if bo == ">":  # inline SHORT values sit in the high bytes of a big-endian value field
        return None
    data_offsets = so_val.astype(np.int64)
    byte_counts = sb_val.astype(np.int64)
    if TAG_DESCRIPTION in fields:
        d_count, d_val = (a.astype(np.int64) for a in fields[TAG_DESCRIPTION])
        inline = d_count <= walker.inline
        rel = walker.count_size + walker.entry_size * where[TAG_DESCRIPTION] + 4 + word.itemsize
        d_off = np.where(inline, pos + rel, d_val)
    else:
        d_count = d_off = np.zeros(len(pos), np.int64)
    if min(data_offsets.min(), byte_counts.min(), d_off.min(), d_count.min(), 0) < 0:
        return None  # 64-bit fields past 2**63: the careful walk refuses them page by page

    def end(
        offset: npt.NDArray[np.int64], length: npt.NDArray[np.int64]
    ) -> npt.NDArray[np.int64]:  # no int64 overflow
        return np.minimum(offset, size + 1) + np.minimum(length, size + 1)

    ends = np.maximum(end(data_offsets, byte_counts), end(d_off, d_count))
    cut = ends > size
    if cut.any():  # pages still being written at the end are left for the careful walk
        kept = int(np.argmax(cut))
        if not cut[kept:].all():
            return None
        ifd = int(pos[kept])
        pos, data_offsets, byte_counts, d_off, d_count, ends = (
            a[:kept] for a in (pos, data_offsets, byte_counts, d_off, d_count, ends)
        )
        if TAG_SIFF in fields:
            fields[TAG_SIFF] = tuple(a[:kept] for a in fields[TAG_SIFF])
    siff = (
        np.minimum(fields[TAG_SIFF][1], 127).astype(np.int64)
        if TAG_SIFF in fields
        else np.full(len(pos), -1, np.int64)
    )
    n = len(pos)
    state = start_state
    if n:
        stride = int(pos[-1] - (pos[-2] if n > 1 else start_state[1]))
        state = (
            start_state[0] + n,
            int(pos[-1]),
            stride,
            max(int(ends[-1]), int(pos[-1]) + ifd_size),
        )
    return {
        "data_offsets": data_offsets,
        "byte_counts": byte_counts,
        "description_offsets": d_off,
        "description_lengths": d_count,
        "siff": siff,
        "next": int(ifd),
        "state": state,
    }


def index_pages(
    path: str | os.PathLike[str], *, resume: PageIndex | None = None, warn: bool = True
) -> PageIndex:
    """Walk the IFD chain of a TIFF file once.

    Parameters
    ----------
    path : path-like
        Classic TIFF or BigTIFF file, either byte order.
    resume : PageIndex, optional
        An earlier index of this file, grown since (still being written): only new pages are
        walked; a file that does not continue it is indexed from the start.
    warn : bool
        False: no :class:`TruncatedFileWarning` (re-indexing a file known to be growing).

    Returns
    -------
    PageIndex

    Raises
    ------
    FormatError
        Not a TIFF file, no pages, or a corrupt IFD (offset out of range, loop, missing tags).

    Warns
    -----
    TruncatedFileWarning
        When the file ends inside a page: complete pages are indexed, the rest are not.
    """
    path = os.fspath(path)
    size = os.path.getsize(path)
    with open(path, "rb") as fh:
        head = fh.read(16)
        header = read_header(head, path)
        if size == 0:
            raise FormatError(f"{path}: file is empty")
        with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
            walker = IfdWalker(mm, size, header, path)
            walked = resumed_walk(resume, walker, fh.fileno(), header, path, _walk_chain)
            arrays, direct, info, truncated = walked or _walk_chain(
                walker, fh.fileno(), header, header.first_ifd, None
            )
    n = len(arrays["data_offsets"])
    if n == 0:
        if truncated:
            raise FormatError(
                f"{path}: the file ends before its first page is complete "
                f"({size} bytes); nothing can be read"
            )
        raise FormatError(f"{path}: TIFF file holds no pages")
    first_format = info["first_format"]
    assert first_format is not None  # set by the first page indexed
    shape, dtype, plain = dtype_from_format(first_format, path)
    if not plain or dtype is None:  # (plain pages have a dtype)
        direct = False
    else:
        expected = shape[0] * shape[1] * dtype.itemsize
        if direct and (np.asarray(arrays["byte_counts"]) != expected).any():
            direct = False
    is_siff = np.asarray(arrays["siff"]).max() >= 0
    if is_siff:
        check_siff_shape(shape, arrays, size, path)
    else:  # (.siff frames are not stored as pixels)
        if dtype is None:
            dtype = _dtype_via_tifffile(path)
        check_frame_size(
            shape,
            dtype.itemsize * max(int(first_format[4] or 1), 1),
            size,
            path,
            compressed=first_format[3] not in (None, 1),
        )
    if direct or is_siff:  # one strip per page: its data must lie in the file
        kept = check_extent(arrays, n, size, path)
        if kept < n:  # a cut file: keep the pages whose data are complete
            arrays = {k: np.asarray(v)[:kept] for k, v in arrays.items()}
            n, truncated = kept, True
            info["next"], info["state"] = 0, ()  # not resumable: index afresh next time
    if truncated and warn:
        warnings.warn(
            f"{Path(path).name}: the file ends inside page {n} "
            f"({size} bytes); using the {n} complete pages",
            TruncatedFileWarning,
            stacklevel=2,
        )
    return PageIndex(
        path=path,
        data_offsets=np.asarray(arrays["data_offsets"], dtype=np.int64),
        byte_counts=np.asarray(arrays["byte_counts"], dtype=np.int64),
        description_offsets=np.asarray(arrays["description_offsets"], dtype=np.int64),
        description_lengths=np.asarray(arrays["description_lengths"], dtype=np.int64),
        shape=shape,
        dtype=dtype if dtype is not None else np.dtype(np.uint16),
        direct=direct,
        file_size=size,
        bigtiff=header.bigtiff,
        byteorder=header.byteorder,
        truncated=truncated,
        siff_flags=siff if (siff := np.asarray(arrays["siff"], np.int8)).max() >= 0 else None,
        next_ifd=int(info["next"] or 0),
        walk_state=tuple(info["state"] or ()),
        first_format=info["first_format"],
        first_ifd=header.first_ifd,
    )


def _walk_chain(
    walker: IfdWalker, fd: int, header: TiffHeader, start: int, state: WalkState | None
) -> tuple[PageArrays, bool, WalkInfo, bool]:
    """Index the chain from the IFD at ``start`` (``state``: the walk so far; None at page 0)
    as :meth:`IfdWalker.walk`: two pages carefully (page 0 may carry extra tags), the rest in
    bulk if they repeat the second's layout, and a cut end (file being written) carefully.
    """
    arrays, direct, info, truncated = walker.walk(start, max_pages=2, state=state)
    if not info["next"] or truncated:
        return arrays, direct, info, truncated
    sparse = info["next"] - start >= 2 * SPARSE_STRIDE  # two pages
    tags = cast("tuple[int, ...]", info["tags"])  # (the pages walked have a layout)
    fast = (
        _fast_walk(walker, fd, header, tags, info["next"], sparse, info["state"])
        if direct
        else None
    )
    if not fast:
        return walker.walk(start, state=state)
    arrays = {k: np.concatenate([np.asarray(v, np.int64), fast[k]]) for k, v in arrays.items()}
    info = {**info, "next": fast["next"], "state": fast["state"]}
    if fast["next"]:  # a cut end, or pages the bulk walk could not take
        tail, tail_direct, tail_info, truncated = walker.walk(fast["next"], state=fast["state"])
        arrays = {k: np.concatenate([v, np.asarray(tail[k], np.int64)]) for k, v in arrays.items()}
        direct = (
            direct and tail_direct and tail_info["first_format"] in (None, info["first_format"])
        )
        info = {**info, "next": tail_info["next"], "state": tail_info["state"]}
    return arrays, direct, info, truncated


def _dtype_via_tifffile(path: str) -> np.dtype[Any]:
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            return np.dtype(tif.pages.first.dtype)
    except Exception as exc:  # tifffile raises many types on broken files
        raise FormatError(
            f"{path}: the pixel format of the first page cannot be decoded "
            f"({exc}); the file is corrupt"
        ) from None
