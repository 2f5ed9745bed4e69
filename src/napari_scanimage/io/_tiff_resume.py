"""Going on indexing a TIFF file that has grown since it was indexed (a file still being
written): :func:`resumed_walk` walks only the pages added since an earlier
:class:`~napari_scanimage.io.tiff.PageIndex`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Literal

import numpy as np

from ..errors import FormatError

if TYPE_CHECKING:
    from .ifd import IfdWalker, PageArrays, TiffHeader, WalkInfo, WalkState
    from .tiff import PageIndex

    Walk = tuple[PageArrays, bool, WalkInfo, bool]


def resumed_walk(
    resume: PageIndex | None,
    walker: IfdWalker,
    fd: int,
    header: TiffHeader,
    path: str,
    walk_chain: Callable[[IfdWalker, int, TiffHeader, int, WalkState | None], Walk],
) -> Walk | None:
    """``(arrays, direct, info, truncated)`` of the whole file from ``resume`` and a walk of
    the new pages (``walk_chain(walker, fd, header, start, state)``), or None when the file
    does not continue ``resume`` (index it from the start).
    """
    base = _resume_point(resume, walker, header, path)
    if base is None or resume is None:  # (no earlier index: no resume point)
        return None
    if base is not resume:  # the chain ended where the earlier index stopped: no new pages
        info: WalkInfo = {
            "first_format": resume.first_format,
            "next": 0,
            "state": resume.walk_state,
        }
        return _join_arrays(resume, None), resume.direct, info, False
    arrays, direct, info, truncated = walk_chain(
        walker, fd, header, resume.next_ifd, resume.walk_state
    )
    direct = resume.direct and direct and info["first_format"] in (None, resume.first_format)
    info["first_format"] = resume.first_format
    return _join_arrays(resume, arrays), direct, info, truncated


def _resume_point(
    resume: PageIndex | None, walker: IfdWalker, header: TiffHeader, path: str
) -> PageIndex | Literal[True] | None:
    """``resume`` when the file still continues it (walk on from its next IFD), True when
    its chain has ended there since, None when it does not continue it.
    """
    if (
        resume is None
        or not resume.walk_state
        or not resume.next_ifd
        or os.path.abspath(resume.path) != os.path.abspath(path)
        or walker.size < resume.file_size
        or resume.bigtiff != header.bigtiff
        or resume.byteorder != header.byteorder
        or resume.first_ifd != header.first_ifd
    ):
        return None
    pages, last_ifd = resume.walk_state[:2]
    try:  # the last indexed IFD must still link to where the earlier walk stopped
        got = walker._unpack_ifd(last_ifd, pages - 1)
    except FormatError:
        return None
    if got is None:
        return None
    nxt = got[0][-1]
    if nxt == resume.next_ifd:
        return resume
    return True if nxt == 0 else None


def _join_arrays(resume: PageIndex, arrays: PageArrays | None) -> PageArrays:
    """The earlier index's per-page arrays followed by ``arrays`` (new pages)."""
    flags = (
        resume.siff_flags.astype(np.int64)
        if resume.siff_flags is not None
        else np.full(len(resume), -1, np.int64)
    )
    old: PageArrays = {
        "data_offsets": resume.data_offsets,
        "byte_counts": resume.byte_counts,
        "description_offsets": resume.description_offsets,
        "description_lengths": resume.description_lengths,
        "siff": flags,
    }
    if arrays is None:
        return old
    return {k: np.concatenate([v, np.asarray(arrays[k], np.int64)]) for k, v in old.items()}
