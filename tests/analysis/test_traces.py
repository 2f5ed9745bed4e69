"""ROI traces against brute-force NumPy on synthetic recordings."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from scipy import ndimage

import napari_scanimage as nsi
from napari_scanimage.analysis.traces import neuropil_masks, traces
from napari_scanimage.errors import EmptyRoiWarning, SelectionError
from napari_scanimage.testing.tiff import SyntheticLayout, write_scanimage_tiff

LAYOUT = SyntheticLayout(
    channels=(1, 2),
    channel_names=("Green", "Red"),
    num_planes=3,
    frames_per_slice=2,
    num_flyback=1,
    num_volumes=12,
    height=20,
    width=24,
    frame_rate=35.0,
)
Z, Y, X = 3, 20, 24


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    written = write_scanimage_tiff(tmp_path_factory.mktemp("tr") / "rec.tif", LAYOUT)
    with nsi.open_dataset(written.paths[0]) as ds:
        yield ds


def disc(cy, cx, r):
    yy, xx = np.mgrid[:Y, :X]
    return (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r


def roi_masks():
    """2-D all-planes, per-plane, overlapping, border-touching and empty ROIs."""
    only_plane1 = np.zeros((Z, Y, X), bool)
    only_plane1[1] = disc(8, 9, 3)
    border = np.zeros((Y, X), bool)
    border[:3, -4:] = True
    return {
        "all planes": disc(10, 12, 4),
        "plane 1": only_plane1,
        "overlap": disc(10, 14, 4),
        "border": border,
        "empty": np.zeros((Y, X), bool),
    }


def brute(ds, masks, channel, mode="mean"):
    frames = ds.read(channel, slice_sample=mode).astype(np.float64)  # (T, Z, Y, X)
    sums, counts = [], []
    for mask in masks.values():
        m = np.broadcast_to(mask, (Z, Y, X))
        sums.append(np.array([frame[m].sum() for frame in frames]))
        counts.append(m.sum())
    return np.array(sums), np.array(counts, float)


def test_sum_mean_exact(dataset):
    masks = roi_masks()
    sums, counts = brute(dataset, masks, 1)
    with pytest.warns(EmptyRoiWarning, match="empty"):
        got = traces(dataset, masks, channel="Red", kind="sum")
    assert got.names == list(masks) and got.channel == "Red" and got.values.shape == (5, 12)
    np.testing.assert_array_equal(got.values[:4], sums[:4])
    assert np.isnan(got.values[4]).all()
    with pytest.warns(EmptyRoiWarning):
        mean = traces(dataset, masks, channel=1)
    np.testing.assert_allclose(mean.values[:4], sums[:4] / counts[:4, None], rtol=1e-12)
    # per plane: the all-planes ROI in each plane, the plane-1 ROI only in plane 1
    frames = dataset.read(1, slice_sample="mean").astype(np.float64)
    for z in range(Z):
        want = frames[:, z][:, masks["all planes"]].mean(axis=1)
        np.testing.assert_allclose(mean.per_plane[0, :, z], want, rtol=1e-12)
    assert np.isnan(mean.per_plane[1, :, 0]).all() and not np.isnan(mean.per_plane[1, :, 1]).any()
    np.testing.assert_allclose(got.time, dataset.timestamps(0, slice_sample="mean"))


def test_dff_whole_and_running(dataset):
    masks = {k: v for k, v in roi_masks().items() if k != "empty"}
    sums, counts = brute(dataset, masks, 0, mode=1)
    f = sums / counts[:, None]
    got = traces(dataset, masks, kind="dff", slice_sample=1, percentile=20)
    f0 = np.percentile(f, 20, axis=1, keepdims=True)
    np.testing.assert_allclose(got.values, (f - f0) / f0, rtol=1e-12, atol=1e-12)
    period = np.median(np.diff(got.time))
    running = traces(dataset, masks, kind="dff", slice_sample=1, percentile=20, window_s=5 * period)
    f0 = np.stack([ndimage.percentile_filter(row, 20, size=5, mode="nearest") for row in f])
    np.testing.assert_allclose(running.values, (f - f0) / f0, rtol=1e-12, atol=1e-12)


def test_neuropil_and_interleave(dataset):
    masks = {"a": disc(10, 12, 3), "b": disc(6, 5, 2)}
    got = traces(dataset, masks, neuropil=0.7, slice_sample="interleave")
    assert got.values.shape == (2, 24) and got.time.shape == (24,)
    frames = dataset.read(0, slice_sample="interleave").astype(np.float64)  # (24, Z, Y, X)
    from scipy import sparse

    stack = sparse.csr_matrix(
        np.stack([np.broadcast_to(m, (Z, Y, X)).ravel() for m in masks.values()])
    )
    rings = neuropil_masks(stack, (Z, Y, X)).toarray().reshape(2, Z, Y, X)
    assert not (rings & np.broadcast_to(masks["a"] | masks["b"], (Z, Y, X))).any()
    for r, m in enumerate(masks.values()):
        m3 = np.broadcast_to(m, (Z, Y, X))
        want = frames[:, m3].mean(axis=1) - 0.7 * frames[:, rings[r]].mean(axis=1)
        np.testing.assert_allclose(got.values[r], want, rtol=1e-12)


@pytest.mark.parametrize("scheduler", ["threads", "processes"])
def test_dask_schedulers_give_identical_results(dataset, scheduler):
    masks = {k: v for k, v in roi_masks().items() if k != "empty"}
    here = traces(dataset, masks, kind="sum", times=slice(1, 11))
    there = traces(dataset, masks, kind="sum", times=slice(1, 11), scheduler=scheduler)
    np.testing.assert_array_equal(here.values, there.values)
    assert here.values.shape == (4, 10)


def test_progress_and_csv(dataset, tmp_path, monkeypatch):
    from napari_scanimage.analysis import traces as module

    monkeypatch.setattr(module, "BLOCK_BYTES", Y * X * Z * 4 * 4)  # 4 float32 rows per block
    seen = []
    got = traces(dataset, {"a": disc(10, 12, 3)}, progress=lambda d, n: seen.append((d, n)))
    assert seen == [(0, 3), (1, 3), (2, 3), (3, 3)]
    path = got.to_csv(tmp_path / "t.csv")
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 12 and rows[0].keys() == {"time_s", "roi", "channel", "metric", "value"}
    assert rows[3]["roi"] == "a" and rows[3]["metric"] == "mean"
    assert float(rows[3]["value"]) == got.values[0, 3] and float(rows[3]["time_s"]) == got.time[3]
    assert [p.name for p in tmp_path.iterdir()] == ["t.csv"]


def test_bad_requests(dataset):
    with pytest.raises(SelectionError, match="kind"):
        traces(dataset, {"a": disc(1, 1, 1)}, kind="median")
    with pytest.raises(SelectionError, match="shape"):
        traces(dataset, {"a": np.ones((5, 5), bool)})
    with pytest.raises(SelectionError, match="one value per time"):
        traces(dataset, {"a": disc(1, 1, 1)}, slice_sample="axis")
    with pytest.raises(SelectionError, match="no ROIs"):
        traces(dataset, {})
