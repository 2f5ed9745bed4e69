"""Is this a ScanImage file?  A header check that answers without raising.

Functions
---------
is_scanimage
    True for a ScanImage TIFF (any generation) or ScanImage-FLIM `.siff` file.
"""

from __future__ import annotations

import os

from ..io.scanimage import read_static_metadata

__all__ = ["is_scanimage"]


def is_scanimage(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a ScanImage TIFF or `.siff` file, from its header alone.

    Reads only the first bytes and the ScanImage header (no page is indexed or read), so it
    is cheap enough to sort many files.  Any file of a split acquisition answers True.  It
    never raises: a missing file, a folder, an unreadable, empty, plain-TIFF or text file
    is simply not ScanImage.

    Parameters
    ----------
    path : path-like

    Returns
    -------
    bool
    """
    try:
        if not os.path.isfile(path):
            return False
        read_static_metadata(path)
    except Exception:  # whatever the bytes are, the answer is "not ScanImage", not an error
        return False
    return True
