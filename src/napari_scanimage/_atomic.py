"""The files napari-scanimage writes: atomic writes (the new content goes to a temporary file in
the same folder, which then replaces the target in one step, so readers see the old file or the
new one, never half) and the format / version header every one of them carries."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["atomic_write", "check_header", "replacing"]


@contextmanager
def replacing(path: str | os.PathLike) -> Iterator[str]:
    """Yield a temporary path next to ``path``; on success it replaces ``path``, on error it is
    removed and ``path`` is left as it was."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}-", suffix=path.suffix,
                               dir=path.parent if str(path.parent) else ".")
    os.close(fd)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def check_header(doc, fmt: str, version: int, name: str, kind: str) -> None:
    """Raise FormatError unless ``doc`` is a dict with ``"format": fmt`` and an integer
    ``"version"`` in 1…``version`` (``name``: the file, ``kind``: e.g. "ROI file")."""
    from .errors import FormatError

    if not isinstance(doc, dict) or doc.get("format") != fmt:
        raise FormatError(f"{name} is not a napari-scanimage {kind} (no 'format': {fmt!r})")
    found = doc.get("version")
    if not isinstance(found, int) or isinstance(found, bool) or not 1 <= found <= version:
        raise FormatError(f"{name} is {kind} version {found!r}; this napari-scanimage reads "
                          f"versions 1–{version}: update it")


def atomic_write(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (flushed to disk before the replace)."""
    with replacing(path) as tmp, open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    return Path(path)
