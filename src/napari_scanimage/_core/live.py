"""Files still being written: what :meth:`Dataset.refresh` reads before it changes anything.

:func:`reindex` indexes the pages added since a dataset was opened (or last refreshed), adds
new files of a split acquisition and checks that every file continues what was read of it.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..errors import FormatError, IncompleteVolumeWarning, ScanImageError, SeriesWarning, read_error
from ..io.scanimage import acquisition_info, read_static_metadata
from ..io.series import discover_series, natural_key
from ..io.tiff import PageIndex, index_pages
from .layout import Layout

if TYPE_CHECKING:
    from .dataset import Dataset

__all__ = ["reindex"]


def reindex(ds: Dataset) -> tuple[list[Path], list[PageIndex], Layout]:
    """(files, their indexes, layout) of ``ds``'s recording as it is on disk now.

    Raises
    ------
    FormatError
        A file is shorter than before or holds another recording now.
    ReadError
        A file cannot be read any more.
    """
    paths = list(ds.paths)
    try:
        static = read_static_metadata(paths[0])
        if ds._discover_series:
            paths += new_series_files(ds.paths)
        indexes: list[PageIndex] = []
        for k, p in enumerate(paths):
            old = ds._indexes[k] if k < len(ds._indexes) else None
            try:
                ix = index_pages(p, resume=old, warn=False)
            except FormatError:
                if old is None:  # a new file without a complete page yet: next time
                    break
                raise
            check_continues(ds._indexes[0], old, ix)
            indexes.append(ix)
    except OSError as exc:
        if isinstance(exc, ScanImageError):
            raise
        raise read_error(exc.filename or paths[0], exc) from exc
    if static.generation != ds._static.generation or dict(static.values.items()) != dict(
        ds._static.values.items()
    ):
        raise FormatError(
            f"{paths[0]}: its ScanImage header has changed since it was opened, "
            "so it holds another recording now; open it again"
        )
    paths = paths[: len(indexes)]
    acq = acquisition_info(ds._static, is_flim=indexes[0].siff_flags is not None)
    with warnings.catch_warnings():  # a partial last volume is normal while writing
        warnings.simplefilter("ignore", IncompleteVolumeWarning)
        layout = Layout.from_counts(
            num_channels=acq.num_channels,
            num_planes=acq.num_planes,
            frames_per_slice=acq.frames_per_slice,
            num_flyback=acq.num_flyback,
            total_pages=sum(len(ix) for ix in indexes),
            source=paths[0].name,
        )
    return paths, indexes, layout


def new_series_files(paths: Sequence[Path]) -> list[Path]:
    """Files of the split acquisition of ``paths`` that appeared after them."""
    with warnings.catch_warnings():  # gaps and odd names were reported when opened
        warnings.simplefilter("ignore", SeriesWarning)
        found = discover_series(paths[0])
    last = natural_key(paths[-1])
    known = {Path(p).resolve() for p in paths}
    return [p for p in found if p.resolve() not in known and natural_key(p) > last]


def check_continues(first: PageIndex, old: PageIndex | None, new: PageIndex) -> None:
    """Refuse a file that does not continue what was read of it (``old``), or, for a new file
    of the series (``old`` None), whose pages differ from the first file's.
    """
    ref = first if old is None else old
    if (
        new.shape != ref.shape
        or new.dtype != ref.dtype
        or (new.siff_flags is None) != (ref.siff_flags is None)
    ):
        raise FormatError(
            f"{new.path}: pages are {new.shape} {new.dtype}"
            f"{' (.siff)' if new.siff_flags is not None else ''}, but the "
            f"recording was opened with {ref.shape} {ref.dtype}"
            f"{' (.siff)' if ref.siff_flags is not None else ''}; the file "
            "holds another recording now, open it again"
        )
    if old is None:
        return
    n = len(old)
    if new.file_size < old.file_size or len(new) < n:
        raise FormatError(
            f"{new.path}: the file is shorter than when it was read "
            f"({new.file_size} bytes, {len(new)} pages; was {old.file_size} "
            f"bytes, {n} pages); open it again"
        )
    if n and not (
        np.array_equal(new.data_offsets[:n], old.data_offsets)
        and np.array_equal(new.byte_counts[:n], old.byte_counts)
        and np.array_equal(new.description_offsets[:n], old.description_offsets)
    ):
        raise FormatError(
            f"{new.path}: its pages have moved since it was read, so the file "
            "holds another recording now; open it again"
        )
