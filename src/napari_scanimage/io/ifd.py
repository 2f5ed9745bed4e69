"""TIFF structure: the file header and the IFD (image file directory) walk.

read_header
    Byte order, classic or BigTIFF, and the first IFD's offset.
IfdWalker
    Reads the entries a reader needs from one IFD after another (careful walk, any page).
dtype_from_format
    The NumPy dtype of a page's sample format.

The tag numbers and the walk's state types are shared with :mod:`.tiff` (the page index) and
:mod:`._tiff_resume` (a walk resumed on a growing file).
"""

from __future__ import annotations

import mmap
import os
import struct
from dataclasses import dataclass
from operator import itemgetter
from typing import Any, NotRequired, TypeAlias, TypedDict

import numpy as np
import numpy.typing as npt

from ..errors import FormatError

__all__ = [
    "FORMAT_TAGS",
    "INT64_MAX",
    "SAMPLE_KIND",
    "TAG_BPS",
    "TAG_COMPRESSION",
    "TAG_DESCRIPTION",
    "TAG_HEIGHT",
    "TAG_PLANAR",
    "TAG_SAMPLE_FORMAT",
    "TAG_SIFF",
    "TAG_SPP",
    "TAG_STRIP_BYTES",
    "TAG_STRIP_OFFSETS",
    "TAG_TILE_WIDTH",
    "TAG_WIDTH",
    "TYPE_SIZES",
    "IfdWalker",
    "PageArrays",
    "PageFormat",
    "TiffHeader",
    "WalkInfo",
    "WalkState",
    "dtype_from_format",
    "entry_format",
    "read_header",
]

TAG_WIDTH, TAG_HEIGHT, TAG_BPS, TAG_COMPRESSION = 256, 257, 258, 259
TAG_DESCRIPTION, TAG_STRIP_OFFSETS, TAG_SPP, TAG_STRIP_BYTES = 270, 273, 277, 279
TAG_PLANAR, TAG_TILE_WIDTH, TAG_SAMPLE_FORMAT = 284, 322, 339
TAG_SIFF = 907  # ScanImage-FLIM photon encoding: 0 raw, 1 compressed
# tags whose values must agree with the first page for the memory-map fast path
FORMAT_TAGS = (TAG_WIDTH, TAG_HEIGHT, TAG_BPS, TAG_COMPRESSION, TAG_SPP, TAG_SAMPLE_FORMAT)
SAMPLE_KIND = {1: "u", 2: "i", 3: "f"}
INT64_MAX = 2**63 - 1
TYPE_SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 6: 1, 7: 1, 8: 2, 9: 4, 13: 4, 16: 8, 17: 8, 18: 8}


# Where a walk stopped: pages so far, last IFD, distance from the one before, last page end
WalkState: TypeAlias = tuple[int, ...]
# Values of the format tags (FORMAT_TAGS) of a page; None for an absent tag
PageFormat: TypeAlias = tuple[int | None, ...]
# Per-page int64 columns of a walk (as PageIndex's; "siff": tag 907), lists or arrays
PageArrays: TypeAlias = dict[str, list[int] | npt.NDArray[np.int64]]


class WalkInfo(TypedDict):
    """Where a walk of the IFD chain stopped."""

    first_format: PageFormat | None
    next: int
    tags: NotRequired[tuple[int, ...] | None]
    state: WalkState


@dataclass(frozen=True)
class TiffHeader:
    """The first bytes of a TIFF file: byte order, BigTIFF flag and first IFD offset."""

    byteorder: str  # '<' or '>'
    bigtiff: bool
    first_ifd: int


def read_header(head: bytes, path: str | os.PathLike[str] = "") -> TiffHeader:
    """Parse the 8- or 16-byte TIFF header.

    Raises
    ------
    FormatError
        If the bytes are not a TIFF header.
    """
    if len(head) < 8 or head[:2] not in (b"II", b"MM"):
        raise FormatError(
            f"{path}: not a TIFF file (first bytes {head[:4]!r}); "
            "open a ScanImage .tif or .siff file"
        )
    bo = "<" if head[:2] == b"II" else ">"
    magic = struct.unpack_from(bo + "H", head, 2)[0]
    if magic == 42:
        return TiffHeader(bo, False, struct.unpack_from(bo + "I", head, 4)[0])
    if magic == 43 and len(head) >= 16:
        return TiffHeader(bo, True, struct.unpack_from(bo + "Q", head, 8)[0])
    raise FormatError(
        f"{path}: not a TIFF file (magic number {magic}); open a ScanImage .tif or .siff file"
    )


def entry_format(bigtiff: bool, bo: str, count: int) -> struct.Struct:
    """The (cached) struct of ``count`` IFD entries of a classic or BigTIFF file."""
    key = (bigtiff, bo, count)
    fmt = _ENTRY_STRUCTS.get(key)
    if fmt is None:
        if bigtiff:
            fmt = struct.Struct(bo + "Q" + "HHQQ" * count + "Q")
        else:
            fmt = struct.Struct(bo + "H" + "HHII" * count + "I")
        _ENTRY_STRUCTS[key] = fmt
    return fmt


_ENTRY_STRUCTS: dict[tuple[bool, str, int], struct.Struct] = {}


class IfdWalker:
    """Sequential IFD walk over a memory map; one `struct.unpack_from` per regular page."""

    def __init__(self, buf: mmap.mmap, size: int, header: TiffHeader, path: str):
        self.buf, self.size, self.path = buf, size, path
        self.bo, self.big = header.byteorder, header.bigtiff
        self.count_fmt = struct.Struct(self.bo + ("Q" if self.big else "H"))
        self.entry_size = 20 if self.big else 12
        self.count_size = 8 if self.big else 2
        self.inline = 8 if self.big else 4
        self.layout_key: tuple[int, ...] | None = None

    def _unpack_ifd(self, offset: int, page: int) -> tuple[tuple[int, ...], int] | None:
        """(all unpacked values: count, 4 per entry, next offset; IFD size) or None at EOF."""
        if offset + self.count_size > self.size:
            return None
        count = self.count_fmt.unpack_from(self.buf, offset)[0]
        if count == 0 or count > 4096:
            raise FormatError(
                f"{self.path}: page {page}: IFD at byte {offset} declares {count} "
                "tags; the file is corrupt (re-export or recover it from the rig)"
            )
        fmt = entry_format(self.big, self.bo, count)
        if offset + fmt.size > self.size:
            return None
        vals = fmt.unpack_from(self.buf, offset)
        return vals, fmt.size

    def walk(
        self, first: int, max_pages: int = -1, state: WalkState | None = None
    ) -> tuple[PageArrays, bool, WalkInfo, bool]:
        """Index up to ``max_pages`` pages from the IFD at ``first``; ``state`` continues an
        earlier walk (its ``info["state"]``: pages so far, last IFD, stride, last page end).
        """
        offsets: list[int] = []
        nbytes: list[int] = []
        doffs: list[int] = []
        dlens: list[int] = []
        siff: list[int] = []
        direct = True
        truncated = False
        first_format: PageFormat | None = None
        ifd = first
        # pages so far, last IFD, its distance from the one before, end of the last page
        page, prev_ifd, stride, last_end = state if state is not None else (0, -1, 0, 0)
        stop_page = page + max_pages if max_pages >= 0 else -1
        seen: set[int] | None = None
        big = self.big
        field_bytes = 8 if big else 4
        # big-endian files keep a short inline value in the first bytes of the value field
        shifts = (
            {t: 8 * (field_bytes - n) for t, n in TYPE_SIZES.items() if n < field_bytes}
            if self.bo == ">"
            else {}
        )
        cache_key: tuple[int, ...] | None = None
        # set with the tag layout on the first page (cache_key None differs from any layout)
        getter: itemgetter[Any]
        while ifd and page != stop_page:
            if ifd < 8:
                raise FormatError(
                    f"{self.path}: page {page}: IFD offset {ifd} points into the "
                    "file header; the file is corrupt"
                )
            if ifd >= self.size:
                # A file cut while ScanImage was writing (or still being written) points one
                # page past its last complete page (pages vary in size: `.siff` photons)
                if page and ifd <= max(prev_ifd + 2 * stride, last_end + stride) + 65536:
                    truncated = True
                    break
                raise FormatError(
                    f"{self.path}: page {page}: IFD offset {ifd} is beyond the end "
                    f"of the file ({self.size} bytes); the file is corrupt"
                )
            if ifd <= prev_ifd:
                seen = seen if seen is not None else set()
                if ifd in seen or len(seen) > self.size // 16:
                    raise FormatError(
                        f"{self.path}: page {page}: IFD chain loops back to byte "
                        f"{ifd}; the file is corrupt"
                    )
                seen.add(ifd)
            got = self._unpack_ifd(ifd, page)
            if got is None:
                truncated = True
                break
            vals, ifd_size = got
            tags = vals[1:-1:4]
            if cache_key != tags:
                cache_key = tags
                pos = {t: i for i, t in enumerate(tags)}
                missing = [t for t in (TAG_WIDTH, TAG_HEIGHT, TAG_STRIP_OFFSETS) if t not in pos]
                if missing:
                    raise FormatError(
                        f"{self.path}: page {page}: required TIFF tags {missing} "
                        "are missing; the file is corrupt"
                    )
                fields = []
                for t in (
                    TAG_STRIP_OFFSETS,
                    TAG_STRIP_BYTES,
                    TAG_DESCRIPTION,
                    TAG_SIFF,
                ) + FORMAT_TAGS:
                    if t in pos:  # (type, count, value) of the entry
                        fields += [1 + 4 * pos[t] + 1, 1 + 4 * pos[t] + 2, 1 + 4 * pos[t] + 3]
                    else:
                        fields += [-1, -1, -1]
                getter = itemgetter(*[f if f >= 0 else 0 for f in fields])
                absent = [i for i, f in enumerate(fields) if f < 0]
                # an inline description sits in the value field of its own entry
                desc_inline_rel = (
                    self.count_size + self.entry_size * pos[TAG_DESCRIPTION] + (12 if big else 8)
                    if TAG_DESCRIPTION in pos
                    else 0
                )
                tiled = TAG_TILE_WIDTH in pos
            got_fields = list(getter(vals))
            for i in absent:
                got_fields[i] = None
            (
                so_type,
                so_count,
                so_val,
                sb_type,
                sb_count,
                sb_val,
                d_type,
                d_count,
                d_val,
                sf_type,
                _,
                sf_val,
                *fmt_fields,
            ) = got_fields
            fmt_values = tuple(fmt_fields[2::3])
            if shifts:
                fmt_values = tuple(
                    v >> shifts.get(t, 0) if v is not None else v
                    for t, v in zip(fmt_fields[0::3], fmt_values, strict=True)
                )
                if so_count == 1:
                    so_val >>= shifts.get(so_type, 0)
                if sb_count == 1 and sb_val is not None:
                    sb_val >>= shifts.get(sb_type, 0)
                if sf_val is not None:
                    sf_val >>= shifts.get(sf_type, 0)
            if first_format is None:
                first_format = fmt_values
            if (
                so_count != 1
                or sb_count != 1
                or tiled
                or fmt_values != first_format
                or sb_val is None
            ):
                direct = False
            if d_count:
                d_off = d_val if d_count > self.inline else ifd + desc_inline_rel
            else:
                d_off, d_count = 0, 0
            # multi-strip pages hold offsets to arrays here; tifffile checks those on read
            data_end = so_val + (sb_val or 0) if so_count == 1 and sb_count == 1 else 0
            end = max(data_end, d_off + (d_count or 0))
            if end > self.size:
                truncated = True
                break
            # (64-bit fields past 2**63 cannot be in the file: kept as int64, refused later)
            offsets.append(min(so_val, INT64_MAX))
            nbytes.append(min(sb_val or 0, INT64_MAX))
            doffs.append(d_off)
            dlens.append(d_count)
            siff.append(-1 if sf_val is None else min(int(sf_val), 127))
            nxt = vals[-1]
            stride = ifd - prev_ifd if prev_ifd >= 0 else ifd_size
            prev_ifd = ifd
            last_end = max(end, ifd + ifd_size)
            ifd = nxt
            page += 1
        arrays: PageArrays = {
            "data_offsets": offsets,
            "byte_counts": nbytes,
            "description_offsets": doffs,
            "description_lengths": dlens,
            "siff": siff,
        }
        info: WalkInfo = {
            "first_format": first_format,
            "next": ifd,
            "tags": cache_key,
            "state": (page, prev_ifd, stride, last_end),
        }
        return arrays, direct, info, truncated


def dtype_from_format(
    fmt: PageFormat, path: str
) -> tuple[tuple[int, int], np.dtype[Any] | None, bool]:
    """(height, width), sample dtype (None if unusual) and whether plain memory-map reads work."""
    width, height, bps, compression, spp, sample_format = fmt
    if width is None or height is None:
        raise FormatError(f"{path}: first page has no width/height tags; the file is corrupt")
    if int(width) < 1 or int(height) < 1:
        raise FormatError(
            f"{path}: first page declares {height}×{width} pixels; the file is corrupt"
        )
    kind = SAMPLE_KIND.get(sample_format or 1)
    dtype = np.dtype(f"{kind}{bps // 8}") if kind and bps in (8, 16, 32, 64) else None
    plain = dtype is not None and compression in (None, 1) and (spp or 1) == 1
    return (int(height), int(width)), dtype, plain
