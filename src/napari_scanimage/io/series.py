"""Multi-file ScanImage series: discovery by ScanImage's file naming, and checks.

Functions
---------
discover_series
    All files of the acquisition a given file belongs to, in acquisition order.
natural_key
    Sort key that orders embedded numbers numerically.
check_frame_continuity
    Warn when ``frameNumbers`` jump across file boundaries.

ScanImage names split files ``<base>_<acq:05d>_<file:05d>.tif`` (one grab cut every
``logFramesPerFile`` frames); loop mode starts a new acquisition number per repeat
(``<base>_<acq:05d>.tif``), each repeat being its own recording.  Dropping any file of a split
acquisition opens the whole acquisition; an explicit file list overrides discovery.
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Sequence
from pathlib import Path

from ..errors import SeriesWarning

__all__ = ["check_frame_continuity", "discover_series", "natural_key"]

_SPLIT = re.compile(r"^(?P<base>.*_\d+)_(?P<file>\d+)$")


def natural_key(path: str | os.PathLike[str]) -> list[int | str]:
    """Key that sorts ``a_2`` before ``a_10``."""
    name = Path(path).name
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


def discover_series(path: str | os.PathLike[str]) -> list[Path]:
    """Files of the split acquisition ``path`` belongs to (just ``path`` when not split).

    Warns
    -----
    SeriesWarning
        Naming the missing file numbers (gaps) and files that share the acquisition's prefix
        but do not follow the naming (ignored).
    """
    path = Path(path)
    match = _SPLIT.match(path.stem)
    if not match:
        return [path]
    base, suffix = match["base"], path.suffix
    width = len(match["file"])
    members: dict[int, Path] = {}
    extras: list[str] = []
    for candidate in path.parent.iterdir():
        name = candidate.name
        if not name.startswith(base + "_") or not candidate.is_file():
            continue
        m = _SPLIT.match(candidate.stem)
        if m and m["base"] == base and candidate.suffix.lower() == suffix.lower():
            members[int(m["file"])] = candidate
        elif candidate.suffix.lower() in (".tif", ".tiff", ".siff"):
            extras.append(name)
    numbers = sorted(members)
    missing = sorted(set(range(numbers[0], numbers[-1] + 1)) - set(numbers))
    if numbers[0] > 1:
        missing = list(range(1, numbers[0])) + missing
    if missing:
        names = ", ".join(f"{base}_{n:0{width}d}{suffix}" for n in missing[:10])
        more = f" and {len(missing) - 10} more" if len(missing) > 10 else ""
        warnings.warn(
            f"{path.parent}: series {base} is missing file(s) {names}{more}; the data "
            "on either side of a gap are joined without it",
            SeriesWarning,
            stacklevel=2,
        )
    if extras:
        warnings.warn(
            f"{path.parent}: ignoring file(s) that do not follow the series naming "
            f"{base}_NNNNN{suffix}: {', '.join(sorted(extras, key=natural_key))}",
            SeriesWarning,
            stacklevel=2,
        )
    return [members[n] for n in numbers]


def check_frame_continuity(
    paths: Sequence[str | os.PathLike[str]], boundaries: Sequence[tuple[int | None, int | None]]
) -> list[int]:
    """Warn about ``frameNumbers`` that do not continue across file boundaries.

    Parameters
    ----------
    paths : sequence of path-like
        Files in series order.
    boundaries : sequence of (first, last) frame numbers per file (None when unknown).

    Returns
    -------
    list of int
        Indices k where file k+1 does not continue file k.
    """
    breaks: list[int] = []
    for k in range(len(paths) - 1):
        last, first = boundaries[k][1], boundaries[k + 1][0]
        if last is not None and first is not None and first != last + 1:
            breaks.append(k)
    if breaks:
        msg = "; ".join(
            f"{Path(paths[k]).name} ends at frame {boundaries[k][1]} but "
            f"{Path(paths[k + 1]).name} starts at {boundaries[k + 1][0]}"
            for k in breaks[:5]
        )
        warnings.warn(
            f"frame numbers are not continuous across files: {msg}. Check that the "
            "files belong to one acquisition and none is missing",
            SeriesWarning,
            stacklevel=2,
        )
    return breaks
