"""Files that go away, shrink, change or cannot be opened while a recording is in use: typed
errors that say what to do, never a crash (a mapped page past the end of a file would kill
the process with SIGBUS).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import warnings
from pathlib import Path

import numpy as np
import pytest

import napari_scanimage as nsi
from napari_scanimage.errors import FormatError, ReadError, ScanImageError
from napari_scanimage.io.siff import SiffReader
from napari_scanimage.io.tiff import index_pages
from napari_scanimage.testing.siff import write_siff
from napari_scanimage.testing.tiff import SyntheticLayout, write_scanimage_tiff

LAYOUT = SyntheticLayout(channels=(1, 2), num_planes=2, num_volumes=6, height=32, width=40)
FLIM = SyntheticLayout(channels=(1,), num_volumes=30, height=32, width=32)


def in_thread(fn):
    """Run ``fn`` in a fresh thread (which opens its own readers); return or raise its
    outcome.
    """
    out = {}

    def run():
        try:
            out["value"] = fn()
        except BaseException as exc:  # handed to the caller
            out["error"] = exc

    t = threading.Thread(target=run)
    t.start()
    t.join()
    if "error" in out:
        raise out["error"]
    return out["value"]


@pytest.fixture
def tiff(tmp_path):
    return write_scanimage_tiff(tmp_path / "rec.tif", LAYOUT)


def test_deleted_while_open(tiff, opened):
    path = tiff.paths[0]
    with nsi.open_dataset(path) as ds:
        first = ds.read(0, times=[0])
        lazy = ds.array(0)
        path.unlink()
        # this thread's open handle still reads the unlinked file (Linux keeps it)
        np.testing.assert_array_equal(ds.read(0, times=[0]), first)
        # a thread without an open handle must find the file: a typed error saying so
        with pytest.raises(
            ReadError,
            match=r"rec\.tif: cannot be read: the file no longer "
            r"exists \(deleted or moved\); put it back",
        ) as err:
            in_thread(lambda: ds.read(0, times=[1]))
        assert isinstance(err.value, ScanImageError) and isinstance(err.value, OSError)
    with pytest.raises(ReadError, match="no longer exists"):  # dask reopens the file
        lazy[2].compute()
    with pytest.raises(FormatError, match="no such file"):
        opened(path)


@pytest.mark.parametrize("large", [False, True], ids=["mapped", "pread"])
def test_truncated_while_open(tmp_path, large):
    """Both read paths (memory-map copies, preadv) refuse pages past the new end."""
    size = 160 if large else 40  # 160×160×2 bytes ≥ PREAD_MIN_BYTES
    layout = SyntheticLayout(channels=(1,), num_volumes=8, height=size, width=size)
    path = write_scanimage_tiff(tmp_path / "rec.tif", layout).paths[0]
    with nsi.open_dataset(path) as ds:
        whole = ds.read(0)
        index = index_pages(path)
        with open(path, "r+b") as fh:
            fh.truncate(int(index.data_offsets[5]) + 10)
        np.testing.assert_array_equal(ds.read(0, times=[1]), whole[1:2])  # still there
        with pytest.raises(FormatError, match="ends early; the file was shortened while open"):
            ds.read(0)
        # a new reader (another thread) sees a different, shorter file: refused, not misread
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with pytest.raises(FormatError, match="the file changed while it was open"):
                in_thread(lambda: ds.read(0, times=[1]))


def test_replaced_by_another_file(tiff, tmp_path):
    """A file replaced by an incompatible one (here: other frame size) under an open
    recording: readers opened later refuse it instead of reading wrong pixels.
    """
    path = tiff.paths[0]
    with nsi.open_dataset(path) as ds:
        ds.read(0, times=[0])
        other = write_scanimage_tiff(
            tmp_path / "other.tif",
            SyntheticLayout(channels=(1, 2), num_planes=2, num_volumes=6, height=16, width=40),
        ).paths[0]
        os.replace(other, path)
        with pytest.raises(
            FormatError,
            match=r"changed while it was open \(now 24 pages of "
            r"\(16, 40\) int16\); open it again",
        ):
            in_thread(lambda: ds.read(0, times=[1]))


@pytest.fixture
def flim(tmp_path):
    return write_siff(tmp_path / "rec.siff", FLIM, photons_per_frame=4000, seed=1)


@pytest.mark.parametrize("engine", ["numba", "numpy"])
def test_siff_truncated_after_mapping(flim, engine):
    """Every photon operation checks the size before touching the map (no SIGBUS)."""
    index = index_pages(flim.path)
    pages = np.arange(len(index))
    with SiffReader(index, engine=engine) as reader:
        before = reader.intensity(pages)
        cut = int(index.data_offsets[len(index) // 2])
        with open(flim.path, "r+b") as fh:
            fh.truncate(cut)
        calls = {
            "intensity": lambda: reader.intensity(pages),
            "histogram": lambda: reader.histogram(pages, 0, 1, 64),
            "pixel_sums": lambda: reader.pixel_sums(pages, pages, len(pages)),
            "photons": lambda: reader.photons(int(pages[-1])),
            "description": lambda: reader.description(int(pages[-1])),
            "first page only": lambda: reader.intensity(pages[:1]),
        }
        refused = []
        for name, call in calls.items():
            with pytest.raises(FormatError, match="became shorter while open; reopen it"):
                call()
            refused.append(name)
        assert refused == list(calls)
    assert before.sum() > 0


@pytest.mark.filterwarnings("ignore::napari_scanimage.errors.TruncatedFileWarning")
def test_siff_truncated_under_an_open_dataset(flim):
    with nsi.open_dataset(flim.path) as ds:
        total = ds.histogram(0).sum()
        assert total > 0
        with open(flim.path, "r+b") as fh:
            fh.truncate(os.path.getsize(flim.path) // 3)
        for call in (
            lambda: ds.read(0),
            lambda: ds.histogram(0),
            lambda: ds.lifetime_array(0)[0].compute(),
        ):
            with pytest.raises(ScanImageError, match="shorter|shortened|changed"):
                call()


# -- permission denied --------------------------------------------------------------------
_PROBE = """
import json, sys
import napari_scanimage as nsi
try:
    nsi.open_dataset(sys.argv[1])
    print(json.dumps({"type": None}))
except Exception as exc:
    print(json.dumps({"type": type(exc).__name__, "message": str(exc),
                      "errno": getattr(exc, "errno", None),
                      "typed": isinstance(exc, nsi.ScanImageError)}))
"""


def _drop_root_file_access():
    """In a child of root: give up the capabilities that let root ignore file modes."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (1, 2):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH
        if libc.prctl(24, cap, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP) failed")


def open_in_child(path: Path) -> dict:
    """open_dataset(path) in a child process that file modes apply to (root included)."""
    root = os.geteuid() == 0
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=_drop_root_file_access if root else None,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("what", ["file", "folder"])
def test_permission_denied(tiff, what):
    path = tiff.paths[0]
    locked = path if what == "file" else path.parent
    os.chmod(locked, 0)
    try:
        got = open_in_child(path)
    finally:
        os.chmod(locked, 0o755 if what == "folder" else 0o644)
    assert got["type"] == "ReadError" and got["typed"] and got["errno"] == 13
    assert got["message"] == (
        f"{path}: cannot be read: permission denied; ask for read access "
        "to the file and its folder, or copy it somewhere you can read"
    )
    with nsi.open_dataset(path) as ds:  # readable again
        assert ds.read(0, times=[0]).shape == (1, 2, 32, 40)


def test_mapped_page_past_the_end_kills_the_process(tmp_path):
    """Why the size checks exist: touching a mapped page past a shortened file's end is fatal
    (SIGBUS), so it must never be left to chance.
    """
    target = tmp_path / "f.bin"
    target.write_bytes(b"\1" * (1 << 16))
    code = (
        "import mmap, os, sys\n"
        "fd = os.open(sys.argv[1], os.O_RDONLY)\n"
        "mm = mmap.mmap(fd, 0, access=mmap.ACCESS_READ)\n"
        "os.truncate(sys.argv[1], 100)\n"
        "print(mm[40000])\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(target)], capture_output=True, timeout=60
    )
    assert done.returncode == -7  # SIGBUS
