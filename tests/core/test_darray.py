"""Dask arrays of a selection: computed directly (local schedulers) and through the graph
(processes, ``dask.compute``) they equal :meth:`Dataset.read`, on every kind of selection.
"""

from __future__ import annotations

import pickle

import dask
import numpy as np
import pytest

from napari_scanimage._core.darray import SelectionArray
from napari_scanimage.analysis.registration import Registration
from napari_scanimage.io import pages as tiff_pages
from napari_scanimage.testing.mroi import write_mroi_tiff
from napari_scanimage.testing.siff import write_siff
from napari_scanimage.testing.tiff import SyntheticLayout, write_scanimage_tiff

VOLUME = SyntheticLayout(
    channels=(1, 2),
    num_planes=3,
    frames_per_slice=2,
    num_flyback=1,
    num_volumes=9,
    height=24,
    width=40,
)
SELECTIONS = [
    {},
    {"plane": 1},
    {"plane": -1, "slice_sample": 1},
    {"slice_sample": "mean"},
    {"slice_sample": "interleave"},
    {"slice_sample": "axis"},
]
INDICES = [
    (),
    (4,),
    (-1,),
    (slice(2, 7),),
    (slice(None, None, -2),),
    (slice(1, 8, 3), Ellipsis, slice(3, 9)),
    (Ellipsis, 5),
    (2, slice(3, 9)),
    (-2, 1),
]


def both_ways(arr, index):
    """(direct compute, np.asarray, graph compute on the threads) of ``arr[index]``."""
    part = arr[index] if index else arr
    (graph,) = dask.compute(part, scheduler="threads")
    return part.compute(), np.asarray(part), graph


@pytest.mark.parametrize("sel", SELECTIONS)
def test_dask_array_equals_read(tmp_path, opened, sel):
    truth = write_scanimage_tiff(tmp_path / "v.tif", VOLUME)
    ds = opened(truth.paths[0])
    whole = ds.read(1, **sel)
    arr = ds.array(1, **sel)
    assert isinstance(arr, SelectionArray) and arr.shape == whole.shape
    for index in INDICES:
        expected = whole[index] if index else whole
        for got in both_ways(arr, index):
            assert got.dtype == expected.dtype
            np.testing.assert_array_equal(got, expected)
            assert got.flags.owndata or got.base.size == got.size  # no shared buffers


def test_one_frame_reads_one_frame(tmp_path, monkeypatch, opened):
    """A single-frame compute reads that frame's page only (not its whole chunk)."""
    truth = write_scanimage_tiff(tmp_path / "one.tif", VOLUME)
    ds = opened(truth.paths[0])
    arr = ds.array(0, plane=2)
    assert arr.chunks[0][0] > 1
    calls: list[int] = []
    original = tiff_pages.PageReader.read_into
    monkeypatch.setattr(
        tiff_pages.PageReader,
        "read_into",
        lambda self, p, *rest: (calls.append(len(p)), original(self, p, *rest)),
    )
    frame = arr[5].compute()
    assert calls == [1]
    np.testing.assert_array_equal(frame, ds.read(0, plane=2, times=[5])[0])


def test_multi_roi_field_and_siff_lifetime(tmp_path, opened):
    truth = write_mroi_tiff(tmp_path / "meso.tif", num_volumes=3)
    ds = opened(truth.path)
    for k in range(len(truth.fields)):
        whole = ds.read(0, field=k)
        for got in both_ways(ds.array(0, field=k), (slice(1, 3),)):
            np.testing.assert_array_equal(got, whole[1:3])
    lay = SyntheticLayout(channels=(1, 2), num_planes=2, num_volumes=6, height=16, width=20)
    sim = write_siff(tmp_path / "l.siff", lay, compressed=True, seed=4)
    ds = opened(sim.path)
    lifetimes = ds.frames(1, product="lifetime")[:]
    for got in both_ways(ds.lifetime_array(1), (slice(0, 4),)):
        np.testing.assert_array_equal(got, lifetimes[:4])
    counts = ds.read(0, plane=1)
    for got in both_ways(ds.array(0, plane=1), (3,)):
        np.testing.assert_array_equal(got, counts[3])


def test_registered_reads_and_pickled_graph(tmp_path, opened):
    truth = write_scanimage_tiff(tmp_path / "r.tif", VOLUME)
    ds = opened(truth.paths[0])
    shifts = np.random.default_rng(2).uniform(-3, 3, (VOLUME.num_volumes, VOLUME.num_planes, 2))
    reg = Registration(
        shifts,
        np.ones(shifts.shape[:2]),
        np.zeros((VOLUME.num_planes, VOLUME.height, VOLUME.width), np.float32),
    )
    for mode in ("integer", "bilinear"):
        whole = ds.read(0, registration=reg, shift_mode=mode)
        arr = ds.array(0, registration=reg, shift_mode=mode)
        for got in both_ways(arr, (slice(2, 8, 2),)):
            np.testing.assert_array_equal(got, whole[2:8:2])
    arr = ds.array(0, slice_sample="mean")
    restored = pickle.loads(pickle.dumps(arr[1:6]))
    assert not isinstance(restored, SelectionArray)  # a plain dask array of the same graph
    with dask.config.set(scheduler="processes", num_workers=2):
        np.testing.assert_array_equal(restored.compute(), ds.read(0, slice_sample="mean")[1:6])
        # on processes the graph runs (no direct read), with the same values
        np.testing.assert_array_equal(np.asarray(arr[7]), ds.read(0, slice_sample="mean")[7])
    one = pickle.loads(pickle.dumps(arr[-3]))  # a single row: its own one-task graph
    with dask.config.set(scheduler="processes", num_workers=2):
        np.testing.assert_array_equal(one.compute(), ds.read(0, slice_sample="mean")[-3])
    derived = (arr + 1)[2]  # any dask operation gives a plain array of the graph
    assert not isinstance(derived, SelectionArray)
    np.testing.assert_array_equal(derived.compute(), ds.read(0, slice_sample="mean")[2] + 1)


def test_assigned_arrays_compute_their_values(tmp_path, opened):
    """Dask arrays can be assigned to in place: the assigned values win over direct reads,
    and the next ``array()`` is the file's again.
    """
    truth = write_scanimage_tiff(tmp_path / "w.tif", VOLUME)
    ds = opened(truth.paths[0])
    arr = ds.array(0, plane=0)
    arr[2] = 7
    got = arr.compute()
    assert (got[2] == 7).all() and (arr[2].compute() == 7).all()
    np.testing.assert_array_equal(np.asarray(arr)[3], ds.read(0, plane=0, times=[3])[0])
    np.testing.assert_array_equal(ds.array(0, plane=0)[2].compute(), ds.read(0, plane=0)[2])
    with pytest.raises(IndexError):
        ds.array(0, plane=0)[VOLUME.num_volumes]
