"""Typed errors raised by napari-scanimage.

Every error says what was found and what the user can do about it.
"""

from __future__ import annotations

__all__ = [
    "ScanImageError",
    "FormatError",
    "LayoutError",
    "SelectionError",
    "ScanImageWarning",
    "TruncatedFileWarning",
    "SeriesWarning",
    "IncompleteVolumeWarning",
    "EmptyRoiWarning",
    "TimestampWarning",
]


class ScanImageError(Exception):
    """Base class of every error raised for a file or a request the package cannot honour."""


class FormatError(ScanImageError, ValueError):
    """A file is not a readable ScanImage file (not TIFF, not ScanImage, or corrupt)."""


class LayoutError(ScanImageError, ValueError):
    """The metadata describe a layout the pages on disk cannot fill."""


class SelectionError(ScanImageError, ValueError):
    """A channel, plane or slice-sample request does not exist in the dataset."""


class ScanImageWarning(UserWarning):
    """Base class of the warnings issued while reading ScanImage data."""


class TruncatedFileWarning(ScanImageWarning):
    """A file ends inside a page; only the complete pages are used."""


class SeriesWarning(ScanImageWarning):
    """A multi-file series has gaps, unexpected files or discontinuous frame numbers."""


class IncompleteVolumeWarning(ScanImageWarning):
    """The last volume is incomplete (acquisition aborted); it is dropped."""


class TimestampWarning(ScanImageWarning):
    """Per-frame timestamps are missing; times are derived from the nominal rate."""


class EmptyRoiWarning(ScanImageWarning):
    """An ROI covers no pixel of the frames (its trace is NaN)."""
