"""Resident memory stays bounded while `.siff` files are read, on every path.

Each case runs in a fresh subprocess and reads RssFile (file pages mapped into the process)
from ``/proc/self/status`` before and after; the mapped budget is lowered so that a file of a
few tens of MiB stands for a large one.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from napari_scanimage.testing.siff import write_siff
from napari_scanimage.testing.tiff import SyntheticLayout

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="reads /proc/self/status"
)

_SCRIPT = """
import json, mmap, os, sys
if sys.argv[3] == "no-madvise":  # as on Windows: the fallback maps the file afresh
    del mmap.MADV_DONTNEED
import dask
import numpy as np
import napari_scanimage.io.siff as siff
siff.MAPPED_BUDGET = 1 << 20  # (a 40 MiB file then counts as large)
from napari_scanimage import open_dataset
from napari_scanimage.analysis.traces import traces

def rss_file():
    with open("/proc/self/status") as fh:
        return next(int(l.split()[1]) * 1024 for l in fh if l.startswith("RssFile:"))

ds = open_dataset(sys.argv[1])
mask = np.zeros(ds.info.frame_shape, bool)
mask[10:20, 30:50] = True
import napari_scanimage.io._siff_kernels  # compiled kernels loaded before the baseline
ds.histogram(0, times=[0])
ds.array(0)[:2].compute(scheduler="threads")
mode = sys.argv[2]
if mode != "timestamps":
    traces(ds, {"a": mask}, kind="sum", times=[0])
base = rss_file()
if mode == "dask":
    (out,) = dask.compute(ds.array(0), scheduler="threads")  # the graph: a read per chunk
elif mode == "traces":
    out = traces(ds, {"a": mask}, kind="sum").values
elif mode == "lifetime":
    (out,) = dask.compute(ds.lifetime_array(0), scheduler="threads")
elif mode == "histogram":  # rasters checked once, then only the photon strips
    out = [ds.histogram(0) for _ in range(3)]
elif mode == "timestamps":  # every frame's description
    out = ds.timestamps(0)
print(json.dumps({"grow": rss_file() - base}))
"""


@pytest.fixture(scope="module")
def big_siff(tmp_path_factory):
    path = tmp_path_factory.mktemp("memory") / "m.siff"
    lay = SyntheticLayout(channels=(1,), num_planes=1, num_volumes=600, height=128, width=256)
    write_siff(path, lay, compressed=True, photons_per_frame=1000.0, keep_truth=False, seed=2)
    return path


@pytest.mark.parametrize(
    ("mode", "engine"),
    [
        ("dask", "auto"),
        ("traces", "auto"),
        ("lifetime", "auto"),
        ("dask", "numpy"),
        ("dask", "no-madvise"),
        ("timestamps", "auto"),
        ("histogram", "auto"),
    ],
)
def test_mapped_file_pages_are_released_in_small_reads(big_siff, mode, engine):
    """Reads of a few frames at a time (dask chunks, trace blocks) each ran as one piece,
    which skipped the per-piece release: the whole file stayed mapped into the process.
    Also on the NumPy engine, and where pages cannot be released one region at a time.
    Timestamps read every frame's description through the map, which kept them all mapped.
    """
    size = big_siff.stat().st_size
    assert size > 32 << 20
    out = subprocess.run(
        [sys.executable, "-c", _SCRIPT, str(big_siff), mode, engine],
        env={**os.environ, "NAPARI_SCANIMAGE_ENGINE": "numpy" if engine == "numpy" else ""},
        capture_output=True,
        text=True,
        check=True,
    )
    grow = json.loads(out.stdout.strip().splitlines()[-1])["grow"]
    assert grow < size / 4, f"{grow / 2**20:.0f} MiB of a {size / 2**20:.0f} MiB file kept"


def test_histograms_of_a_large_file_read_the_strips(big_siff, monkeypatch):
    """Above MAPPED_BUDGET the photon strips of compressed pages are read into a buffer, not
    mapped; the histograms are the same as through the map, with and without a mask.
    """
    from napari_scanimage import open_dataset
    from napari_scanimage.io import siff

    mask = np.zeros((128, 256), bool)
    mask[40:90, 10:200] = True
    results = []
    for budget in (siff.MAPPED_BUDGET, 1 << 20):
        monkeypatch.setattr(siff, "MAPPED_BUDGET", budget)
        with open_dataset(big_siff) as ds:
            results.append(
                [ds.histogram(0), ds.histogram(0, per_frame=True), ds.histogram(0, mask=mask)]
            )
    for a, b in zip(*results, strict=True):
        np.testing.assert_array_equal(a, b)
    assert results[0][0].sum() == results[0][1].sum() > results[0][2].sum() > 0
