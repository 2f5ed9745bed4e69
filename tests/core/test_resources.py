"""Open files are closed: by ``close()``, by a ``with`` block, and when reading threads end."""

from __future__ import annotations

import subprocess
import sys

import napari_scanimage as nsi
from napari_scanimage.testing.tiff import SyntheticLayout, write_scanimage_tiff

_SCRIPT = """
import gc, sys, warnings
warnings.simplefilter("always", ResourceWarning)
import napari_scanimage as nsi
ds = nsi.open_dataset(sys.argv[1])
ds.array(0).compute()  # read in dask's worker threads: each opens the file
ds.read(0)             # and in this thread
"""


def test_reader_threads_close_their_files(tmp_path):
    """Worker threads end before ``atexit``; their open files used to be left to the garbage
    collector ("ResourceWarning: unclosed file") when the process exited.
    """
    truth = write_scanimage_tiff(tmp_path / "r.tif", SyntheticLayout(num_planes=2, num_volumes=20))
    out = subprocess.run(
        [sys.executable, "-X", "dev", "-c", _SCRIPT, str(truth.paths[0])],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "ResourceWarning" not in out.stderr, out.stderr


def test_close_and_with_release_the_files(tmp_path, opened):
    import psutil

    truth = write_scanimage_tiff(tmp_path / "c.tif", SyntheticLayout(num_volumes=4))
    path = str(truth.paths[0])

    def open_here() -> int:
        return sum(f.path == path for f in psutil.Process().open_files())

    with nsi.open_dataset(path) as ds:
        ds.read(0)
        assert open_here() >= 1
    assert open_here() == 0
    ds = opened(path)
    ds.read(0)
    ds.close()
    assert open_here() == 0


def test_readers_of_ended_threads_are_closed_from_a_live_thread(tmp_path):
    """A thread's readers are not destroyed while the thread shuts down (closing a memory
    map there releases the GIL during thread teardown, which aborted the interpreter when
    registration and traces ran in two napari workers): they stay in the process-wide table
    until a live thread's next read, or exit, closes them.
    """
    import threading

    import psutil

    from napari_scanimage._core import reading

    truth = write_scanimage_tiff(tmp_path / "t.tif", SyntheticLayout(num_volumes=4))
    path = str(truth.paths[0])
    with nsi.open_dataset(path) as ds:
        idents: list[int] = []

        def work() -> None:
            idents.append(threading.get_ident())
            ds.read(0)

        worker = threading.Thread(target=work)
        worker.start()
        worker.join()
        kept = [
            r for (ident, p), r in reading._open_readers.items() if ident == idents[0] and p == path
        ]
        assert len(kept) == 1 and not kept[0].closed  # not torn down with the thread
        np_frames = ds.read(0)  # a read in this live thread closes the ended thread's reader
        assert np_frames.size and kept[0].closed
        assert all(ident != idents[0] for ident, _ in reading._open_readers)
    assert sum(f.path == path for f in psutil.Process().open_files()) == 0
