"""The files napari-scanimage writes: atomic writes (the new content goes to a temporary file in
the same folder, which then replaces the target in one step, so readers see the old file or the
new one, never half) and the format / version header every one of them carries.

On Windows a file another program holds open (a spreadsheet showing a CSV, a viewer, a sync or
virus scanner) cannot be replaced: the replace is retried for about a second, then a
:class:`~napari_scanimage.errors.SaveError` names the file and says to close it.
"""

from __future__ import annotations

import errno
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

__all__ = ["atomic_write", "check_header", "replace_retrying", "replacing"]

# Windows error codes of a replace refused because the target is open elsewhere: access
# denied (opened without delete sharing), sharing violation, lock violation
_HELD_OPEN = (5, 32, 33)
# waits between replace attempts (s): a scanner or sync client lets go within a second
REPLACE_DELAYS = (0.02, 0.05, 0.1, 0.2, 0.3, 0.4)


@contextmanager
def replacing(path: str | os.PathLike[str]) -> Iterator[str]:
    """Yield a temporary path next to ``path``; on success it replaces ``path``, on error it is
    removed and ``path`` is left as it was.

    An OS error (read-only or missing folder, full drive, I/O error) raised while creating,
    writing or renaming the temporary file becomes a
    :class:`~napari_scanimage.errors.SaveError` saying what happened and what to do.
    """
    from .errors import ScanImageError, save_error

    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    existed = _exists(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}-", suffix=path.suffix, dir=folder)
    except OSError as exc:
        raise save_error(path, exc, existed) from exc
    os.close(fd)
    try:
        yield tmp
        replace_retrying(tmp, path, existed)
    except OSError as exc:
        if isinstance(exc, ScanImageError):  # already says what happened
            raise
        raise save_error(path, exc, existed) from exc
    finally:
        try:
            if os.path.lexists(tmp):
                os.unlink(tmp)
        except OSError:  # the folder went away or became read-only: nothing more to do
            pass


def _held_open(exc: OSError) -> bool:
    return isinstance(exc, PermissionError) and getattr(exc, "winerror", None) in _HELD_OPEN


def replace_retrying(tmp: str, path: Path, existed: bool) -> None:
    """``os.replace(tmp, path)``, retried while another program holds ``path`` open."""
    from .errors import SaveError

    for delay in (*REPLACE_DELAYS, None):
        try:
            os.replace(tmp, path)
            return
        except OSError as exc:
            if not _held_open(exc):
                raise
            if delay is None:
                kept = "the previous file is unchanged" if existed else "nothing was written"
                err = SaveError(
                    f"cannot save {path}: the file is open in another program "
                    "(or marked read-only); close it there, or save under another "
                    f"name ({kept})"
                )
                err.errno = errno.EACCES
                raise err from exc
            time.sleep(delay)


def check_header(doc: object, fmt: str, version: int, name: str, kind: str) -> None:
    """Raise FormatError unless ``doc`` is a dict with ``"format": fmt`` and an integer
    ``"version"`` in 1…``version`` (``name``: the file, ``kind``: e.g. "ROI file").
    """
    from .errors import FormatError

    if not isinstance(doc, dict) or doc.get("format") != fmt:
        raise FormatError(f"{name} is not a napari-scanimage {kind} (no 'format': {fmt!r})")
    found = doc.get("version")
    if not isinstance(found, int) or isinstance(found, bool) or not 1 <= found <= version:
        raise FormatError(
            f"{name} is {kind} version {found!r}; this napari-scanimage reads "
            f"versions 1–{version}: update it"
        )


def atomic_write(path: str | os.PathLike[str], data: bytes | Callable[[BinaryIO], object]) -> Path:
    """Write ``data`` to ``path`` atomically (flushed to disk before the replace).

    ``data`` is the bytes, or a function writing them to the open binary file it is given.
    Raises :class:`~napari_scanimage.errors.SaveError` when the file cannot be written; the
    previous ``path`` is then unchanged and no temporary file is left.
    """
    with replacing(path) as tmp, open(tmp, "wb") as fh:
        if callable(data):
            data(fh)
        else:
            fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    return Path(path)


def _exists(path: Path) -> bool:
    try:
        return path.exists()
    except OSError:  # e.g. a folder on the way that cannot be searched
        return False
