"""Fixtures of the reader tests: the platform-call-free mode of the readers.

``NAPARI_SCANIMAGE_TEST_NO_PREAD=1`` runs every test under ``tests/io`` as on a platform
without ``os.pread``, ``os.preadv`` and ``mmap.MADV_*`` (Windows): the readers must then take
their portable paths and give the same results.
"""

from __future__ import annotations

import mmap
import os
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

NO_PREAD_ENV = "NAPARI_SCANIMAGE_TEST_NO_PREAD"
POSIX_READS = ("pread", "preadv")


@contextmanager
def _without_posix_reads() -> Iterator[None]:
    """Remove ``os.pread``, ``os.preadv`` and every ``mmap.MADV_*`` for the duration."""
    with pytest.MonkeyPatch.context() as mp:
        for name in POSIX_READS:
            if hasattr(os, name):
                mp.delattr(os, name)
        for name in [n for n in dir(mmap) if n.startswith("MADV_")]:
            mp.delattr(mmap, name)
        yield


@pytest.fixture(scope="session", autouse=True)
def _no_pread_mode() -> Iterator[None]:
    if os.environ.get(NO_PREAD_ENV, "") not in ("", "0"):
        with _without_posix_reads():
            yield
    else:
        yield


@pytest.fixture
def without_posix_reads():
    """A context manager factory: ``with without_posix_reads(): ...`` runs its body as on a
    platform without ``os.pread``, ``os.preadv`` and ``mmap.MADV_*``.
    """
    return _without_posix_reads
