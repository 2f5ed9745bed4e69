"""Platform capabilities the readers use, each with a portable fallback.

Functions
---------
has_pread, has_preadv, has_madvise
    Whether ``os.pread``, ``os.preadv`` and ``mmap`` ``madvise``/``MADV_DONTNEED`` exist here
    (POSIX systems have them; Windows has none of them).
pread_function
    ``os.pread``, or a seek-and-read equivalent on a descriptor one thread owns.
release_mapped
    Drop a region of a memory map from this process (``MADV_DONTNEED``); False where it cannot.

Classes
-------
PositionalReader
    ``readinto(buffer, offset)`` on one file from any thread: ``os.preadv`` where it exists,
    else a handle of the calling thread's own (seek + readinto).

Capabilities are looked up when a reader is made (not when this module is imported), so the
results of both paths can be compared in one process by removing the functions from ``os`` and
``mmap``.
"""

from __future__ import annotations

import io
import mmap
import os
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from ..errors import FormatError

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

__all__ = [
    "PositionalReader",
    "has_madvise",
    "has_pread",
    "has_preadv",
    "pread_function",
    "release_mapped",
]


def has_pread() -> bool:
    return hasattr(os, "pread")


def has_preadv() -> bool:
    return hasattr(os, "preadv")


def has_madvise() -> bool:
    return hasattr(mmap, "MADV_DONTNEED") and hasattr(mmap.mmap, "madvise")


def pread_function() -> Callable[[int, int, int], bytes]:
    """``pread(fd, n, offset) -> bytes`` (fewer than ``n`` only at the end of the file).

    Without ``os.pread`` the descriptor is seeked and read, which moves its position: use it
    only on a descriptor this thread owns and that no buffered file object reads through.
    """
    pread = getattr(os, "pread", None)
    return pread if pread is not None else _seek_read


def _seek_read(fd: int, n: int, offset: int) -> bytes:
    os.lseek(fd, offset, os.SEEK_SET)
    chunks = []
    while n > 0:  # os.read may return less than asked before the end of the file
        chunk = os.read(fd, n)
        if not chunk:
            break
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def release_mapped(mm: mmap.mmap, start: int, length: int) -> bool:
    """Drop bytes ``start`` … ``start + length`` (page-aligned) of ``mm`` from this process's
    mapping (they stay in the OS file cache).  Returns False where this is not available (the
    caller then remaps the file to the same end).
    """
    advice = getattr(mmap, "MADV_DONTNEED", None)
    if advice is None or not hasattr(mm, "madvise"):
        return False
    try:
        mm.madvise(advice, start, length)
    except (OSError, ValueError):  # refused by this kernel: the pages just stay mapped
        pass
    return True


class PositionalReader:
    """Read file bytes at given offsets, from any thread, without a shared file position.

    Parameters
    ----------
    path : str
        The file (opened again by each thread in the fallback).
    fd : int
        An open descriptor of ``path`` (used by ``os.preadv``; not closed here).
    """

    def __init__(self, path: str, fd: int):
        self.path = path
        self._fd = fd
        self._preadv: Callable[[int, Sequence[WriteableBuffer], int], int] | None = getattr(
            os, "preadv", None
        )
        self._local = threading.local()
        self._handles: list[io.FileIO] = []
        self._lock = threading.Lock()

    @property
    def positional(self) -> bool:
        """True when reads go through ``os.preadv`` (no per-thread handles)."""
        return self._preadv is not None

    def readinto(self, buffer: WriteableBuffer, offset: int) -> int:
        """Fill ``buffer`` (writable, C-contiguous) from byte ``offset``; return the number of
        bytes read (less than its size only at the end of the file).
        """
        if self._preadv is not None:
            return self._preadv(self._fd, [buffer], offset)
        fh: io.FileIO | None = getattr(self._local, "fh", None)
        if fh is None:
            fh = self._open()
        fh.seek(offset)
        view = memoryview(buffer).cast("B")
        got = 0
        while got < len(view):
            k = fh.readinto(view[got:])
            if not k:
                break
            got += k
        return got

    def _open(self) -> io.FileIO:
        fh = open(self.path, "rb", buffering=0)
        # the path must still name the file the descriptor holds (not one saved over it since)
        mine, first = os.fstat(fh.fileno()), os.fstat(self._fd)
        if (mine.st_ino, mine.st_dev) != (first.st_ino, first.st_dev) and mine.st_ino:
            fh.close()
            raise FormatError(
                f"{self.path}: the file was replaced by another one while open; reopen it"
            )
        with self._lock:
            self._handles.append(fh)
        self._local.fh = fh
        return fh

    def close(self) -> None:
        with self._lock:
            handles, self._handles = self._handles, []
        for fh in handles:
            fh.close()
        self._local = threading.local()
