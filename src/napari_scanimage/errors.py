"""Typed errors raised by napari-scanimage.

Every error says what was found and what the user can do about it.
"""

from __future__ import annotations

import errno
import os

__all__ = [
    "ScanImageError",
    "FormatError",
    "LayoutError",
    "SelectionError",
    "ReadError",
    "SaveError",
    "ScanImageWarning",
    "TruncatedFileWarning",
    "SeriesWarning",
    "IncompleteVolumeWarning",
    "EmptyRoiWarning",
    "TimestampWarning",
    "MroiWarning",
]


class ScanImageError(Exception):
    """Base class of every error raised for a file or a request the package cannot honour."""


class FormatError(ScanImageError, ValueError):
    """A file is not a readable ScanImage file (not TIFF, not ScanImage, or corrupt)."""


class LayoutError(ScanImageError, ValueError):
    """The metadata describe a layout the pages on disk cannot fill."""


class SelectionError(ScanImageError, ValueError):
    """A channel, plane or slice-sample request does not exist in the dataset."""


class ReadError(ScanImageError, OSError):
    """A file cannot be read: deleted or moved, permission denied, its drive unmounted, or an
    I/O error.  ``errno`` is the operating system's error number (None when unknown).
    """


class SaveError(ScanImageError, OSError):
    """A file cannot be written: read-only or missing folder, full drive, or an I/O error.  The
    file that was there before is left unchanged and no temporary file is left behind.
    """


# keyed by ``OSError.errno``, which is None for errors not raised by the operating system
_READ_HINTS: dict[int | None, tuple[str, str]] = {
    errno.EACCES: (
        "permission denied",
        "ask for read access to the file and its folder, or copy it somewhere you can read",
    ),
    errno.EPERM: (
        "permission denied",
        "ask for read access to the file and its folder, or copy it somewhere you can read",
    ),
    errno.ENOENT: (
        "the file no longer exists (deleted or moved)",
        "put it back or open it again from where it is now",
    ),
    errno.ENOTDIR: (
        "part of its path is not a folder any more",
        "check the path and open the file again",
    ),
    errno.EIO: (
        "the drive reported an I/O error",
        "check that the drive or network share is mounted and healthy, then open the file again",
    ),
    errno.ESTALE: (
        "the network share went away (stale file handle)",
        "check that the share is mounted, then open the file again",
    ),
    errno.ENODEV: (
        "the drive is gone",
        "check that the drive is mounted, then open the file again",
    ),
    errno.ENXIO: ("the drive is gone", "check that the drive is mounted, then open the file again"),
}

_SAVE_HINTS: dict[int | None, tuple[str, str]] = {
    errno.EACCES: ("permission denied", "choose a folder you can write to"),
    errno.EPERM: ("permission denied", "choose a folder you can write to"),
    errno.EROFS: ("the drive is read-only", "choose a folder on a writable drive"),
    errno.ENOENT: ("its folder does not exist", "create the folder or choose another one"),
    errno.ENOTDIR: ("part of its folder path is a file, not a folder", "choose another folder"),
    errno.EISDIR: ("a folder of that name exists", "choose another file name"),
    errno.ENOSPC: ("the drive is full", "free some space or save to another drive"),
    errno.EDQUOT: ("your disk quota is used up", "free some space or save to another drive"),
    errno.EIO: ("the drive reported an I/O error", "check the drive, or save to another one"),
}


def read_error(path: str | os.PathLike[str], exc: OSError) -> ReadError:
    """A :class:`ReadError` for an OS error met while reading ``path`` (raise it ``from``
    ``exc``).
    """
    what, todo = _READ_HINTS.get(
        exc.errno,
        (exc.strerror or type(exc).__name__, "check the file and its drive, then open it again"),
    )
    err = ReadError(f"{path}: cannot be read: {what}; {todo}")
    err.errno = exc.errno
    return err


def save_error(path: str | os.PathLike[str], exc: OSError, existed: bool) -> SaveError:
    """A :class:`SaveError` for an OS error met while saving ``path`` (``existed``: a previous
    file was there, and is still unchanged).
    """
    what, todo = _SAVE_HINTS.get(
        exc.errno, (exc.strerror or type(exc).__name__, "check the drive, or save somewhere else")
    )
    kept = "the previous file is unchanged" if existed else "nothing was written"
    err = SaveError(f"cannot save {path}: {what}; {todo} ({kept})")
    err.errno = exc.errno
    return err


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


class MroiWarning(ScanImageWarning):
    """Multi-ROI geometry is inconsistent or incomplete (e.g. the fly-to lines between fields
    estimated from the page and from the scan timing disagree); what is used instead is said.
    """
