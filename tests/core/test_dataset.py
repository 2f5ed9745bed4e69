"""Dataset reads against the synthetic writer's ground truth, for every ScanImage layout."""

from __future__ import annotations

import pickle
import warnings

import dask
import numpy as np
import pytest

import napari_scanimage as nsi
from napari_scanimage.errors import (
    IncompleteVolumeWarning,
    LayoutError,
    SelectionError,
    TimestampWarning,
)
from napari_scanimage.testing.tiff import SyntheticLayout, write_scanimage_tiff


def expected_axis(truth, channel: int) -> np.ndarray:
    """(T, Z, F, Y, X) straight from the writer's page formula, page by page."""
    lay = truth.layout
    out = np.empty(
        (lay.num_volumes, lay.num_planes, lay.frames_per_slice, lay.height, lay.width),
        dtype=lay.dtype,
    )
    for t in range(lay.num_volumes):
        for z in range(lay.num_planes):
            for f in range(lay.frames_per_slice):
                out[t, z, f] = truth.page(truth.page_index(t, z, f, channel))
    return out


def check_all_modes(ds, truth) -> None:
    lay = truth.layout
    for c in range(lay.num_channels):
        axis = expected_axis(truth, c)
        volumetric = lay.num_planes > 1
        squeeze = (lambda a: a) if volumetric else (lambda a: a[:, 0])
        got_axis = ds.array(c, slice_sample="axis").compute()
        np.testing.assert_array_equal(got_axis, squeeze(axis))
        for k in range(lay.frames_per_slice):
            np.testing.assert_array_equal(
                ds.array(c, slice_sample=k).compute(), squeeze(axis[:, :, k])
            )
        np.testing.assert_allclose(
            ds.array(c, slice_sample="mean").compute(),
            squeeze(axis.astype(np.float64).mean(axis=2)),
            rtol=1e-6,
        )
        inter = np.moveaxis(axis, 2, 1).reshape((-1, *axis.shape[1:2], *axis.shape[3:]))
        np.testing.assert_array_equal(
            ds.array(c, slice_sample="interleave").compute(), squeeze(inter)
        )
        for z in range(lay.num_planes):
            np.testing.assert_array_equal(ds.read(c, plane=z), axis[:, z, 0])


LAYOUTS = {
    "planar_1ch": SyntheticLayout(num_volumes=7),
    "planar_2ch": SyntheticLayout(channels=(1, 2), num_volumes=6),
    "vol_B0": SyntheticLayout(channels=(2,), num_planes=3, num_volumes=4),
    "vol_B1_2ch": SyntheticLayout(channels=(1, 2), num_planes=3, num_flyback=1, num_volumes=3),
    "vol_B7": SyntheticLayout(num_planes=4, num_flyback=7, num_volumes=3, height=16, width=24),
    "vol_F3_2ch": SyntheticLayout(
        channels=(1, 4), num_planes=2, frames_per_slice=3, num_flyback=1, num_volumes=3
    ),
    "vol_F2_avg4": SyntheticLayout(
        num_planes=2, frames_per_slice=2, log_average_factor=4, num_volumes=3, dtype="uint16"
    ),
    "stale_numslices": SyntheticLayout(
        num_planes=3, stale_num_slices=11, num_flyback=1, num_volumes=3
    ),
    "split_straddle": SyntheticLayout(
        channels=(1, 2),
        num_planes=3,
        frames_per_slice=2,
        num_flyback=1,
        num_volumes=4,
        frames_per_file=5,
    ),
    "incomplete_last": SyntheticLayout(
        channels=(1, 2), num_planes=2, num_flyback=1, num_volumes=3, extra_pages=4
    ),
}


@pytest.mark.parametrize("name", sorted(LAYOUTS))
def test_layout_bit_exact(tmp_path, name, opened):
    lay = LAYOUTS[name]
    truth = write_scanimage_tiff(tmp_path / f"{name}.tif", lay)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = opened(truth.paths[-1])  # any file of a series opens the series
    with ds:
        info = ds.info
        assert len(ds.paths) == len(truth.paths)
        assert info.num_planes == lay.num_planes
        assert info.frames_per_slice == (lay.frames_per_slice if lay.num_planes > 1 else 1)
        assert info.num_flyback == lay.num_flyback
        assert info.num_volumes == lay.num_volumes
        assert info.channel_names == lay.names
        assert info.frame_shape == (lay.height, lay.width)
        assert info.dtype == np.dtype(lay.dtype)
        assert info.frame_rate == pytest.approx(lay.frame_rate)
        assert info.volume_rate == pytest.approx(
            lay.frame_rate
            / lay.frames_per_volume
            / (1 if lay.num_planes > 1 else lay.log_average_factor),
            rel=1e-5,
        )
        incomplete = [w for w in caught if issubclass(w.category, IncompleteVolumeWarning)]
        assert len(incomplete) == (1 if lay.extra_pages else 0)
        check_all_modes(ds, truth)


def test_frames_per_slice_shapes_and_labels(tmp_path, opened):
    truth = write_scanimage_tiff(tmp_path / "f.tif", LAYOUTS["vol_F3_2ch"])
    ds = opened(truth.paths[0])
    assert ds.array(0).shape == (3, 2, 32, 48)
    assert ds.array(0, slice_sample="axis").shape == (3, 2, 3, 32, 48)
    assert ds.array(0, slice_sample="interleave").shape == (9, 2, 32, 48)
    assert ds.array(0, slice_sample="mean").dtype == np.float32
    assert ds.array(0, plane=1).shape == (3, 32, 48)
    assert ds.selection(0, slice_sample="axis").axis_labels() == ("t", "z", "sample", "y", "x")
    # channel by name equals channel by index
    np.testing.assert_array_equal(ds.read("Channel 4"), ds.read(1))
    # timestamps: (T, F) of the last plane, from frameTimestamps_sec
    frames = np.array([[truth.page_index(t, 1, f, 0) // 2 for f in range(3)] for t in range(3)])
    np.testing.assert_allclose(ds.timestamps(), frames / 30.0, atol=1e-6)
    assert ds.timestamps(plane=0, slice_sample=1).shape == (3,)
    assert ds.timestamps(slice_sample="interleave").shape == (9,)
    np.testing.assert_array_equal(
        ds.frame_indices(plane=0, slice_sample=2), [truth.page_index(t, 0, 2, 0) for t in range(3)]
    )


def test_planar_frames_per_slice_is_time(tmp_path, opened):
    """Planar headers carry framesPerSlice = number of frames; it must not become samples."""
    truth = write_scanimage_tiff(tmp_path / "p.tif", SyntheticLayout(num_volumes=12))
    ds = opened(truth.paths[0])
    assert ds.info.frames_per_slice == 1
    assert ds.array().shape == (12, 32, 48)
    np.testing.assert_allclose(ds.timestamps(), np.arange(12) / 30.0, atol=1e-6)


def test_selection_errors(tmp_path, opened):
    truth = write_scanimage_tiff(tmp_path / "s.tif", LAYOUTS["vol_F3_2ch"])
    ds = opened(truth.paths[0])
    with pytest.raises(SelectionError, match="2 channel"):
        ds.array(2)
    with pytest.raises(SelectionError, match="no channel named 'Blue'"):
        ds.array("Blue")
    with pytest.raises(SelectionError, match="plane 5"):
        ds.array(0, plane=5)
    with pytest.raises(SelectionError, match="3 frames per slice"):
        ds.array(0, slice_sample=3)
    with pytest.raises(SelectionError, match="slice_sample"):
        ds.array(0, slice_sample="median")
    assert ds.array(0, plane=-1).shape == (3, 32, 48)


def test_lazy_graph_is_picklable_and_chunks_agree(tmp_path, opened):
    truth = write_scanimage_tiff(
        tmp_path / "l.tif",
        SyntheticLayout(channels=(1, 2), num_planes=2, num_volumes=40, height=256, width=256),
    )
    ds = opened(truth.paths[0])
    arr = ds.array(1)
    assert arr.numblocks[0] > 1  # several chunks along time
    restored = pickle.loads(pickle.dumps(arr))
    with dask.config.set(scheduler="processes", num_workers=2):
        in_processes = restored[::3].compute()
    whole = ds.read(1)
    np.testing.assert_array_equal(in_processes, whole[::3])
    np.testing.assert_array_equal(arr[17, 1].compute(), whole[17, 1])
    np.testing.assert_array_equal(ds.read(1, times=[5, -1]), whole[[5, -1]])
    np.testing.assert_array_equal(ds.read(1, times=slice(3, 30, 4)), whole[3:30:4])


def test_opening_realises_no_pixel_data(tmp_path, monkeypatch, opened):
    truth = write_scanimage_tiff(tmp_path / "n.tif", SyntheticLayout(num_volumes=5))
    from napari_scanimage.io import pages as tiff

    calls = []
    original = tiff.PageReader.read_into
    monkeypatch.setattr(
        tiff.PageReader,
        "read_into",
        lambda self, p, *rest: (calls.append(len(p)), original(self, p, *rest)),
    )
    ds = opened(truth.paths[0])
    arr = ds.array(0)
    assert calls == []
    arr[2].compute()
    assert sum(calls) >= 1


def test_single_volume_without_flyback_page(tmp_path, opened):
    """A single volume is saved without flyback although the header declares one."""
    truth = write_scanimage_tiff(
        tmp_path / "one.tif", SyntheticLayout(num_planes=3, num_flyback=1, num_volumes=1)
    )
    # rewrite: drop the flyback page by writing a 3-page file with a flyback-declaring header
    lay = SyntheticLayout(num_planes=3, num_flyback=0, num_volumes=1)
    text = truth.static_text.replace(
        "numFramesPerVolumeWithFlyback = 3", "numFramesPerVolumeWithFlyback = 4"
    )
    assert "numFramesPerVolumeWithFlyback = 4" in text
    one = write_scanimage_tiff(tmp_path / "one_noflyback.tif", lay, header=text)
    ds = opened(one.paths[0])
    assert ds.info.num_volumes == 1 and ds.info.num_flyback == 0
    np.testing.assert_array_equal(ds.read(0)[0, 2], one.page(2))


def test_fewer_pages_than_a_volume_is_a_layout_error(tmp_path, opened):
    lay = SyntheticLayout(num_planes=4, num_volumes=0, extra_pages=3)
    truth = write_scanimage_tiff(tmp_path / "short.tif", lay)
    with pytest.raises(LayoutError, match="fewer than one volume"):
        opened(truth.paths[0])


def test_timestamp_fallback_warns(shared_data, opened):
    ds = opened(shared_data / "si38_Blank-IPA_1s_16r_032.tif")
    with pytest.warns(TimestampWarning, match="8.13802 Hz"):
        times = ds.timestamps()
    np.testing.assert_allclose(times, np.arange(30) / 8.13802083333333)


@pytest.mark.parametrize(
    "header",
    [
        "si2022_single.txt",
        "si2022_2ch.txt",
        "si2022_vol_2ch.txt",
        "si2022_split.txt",
        "si2022_frames_per_slice.txt",
        "si2022_frames_per_slice_1vol.txt",
    ],
)
def test_real_headers(tmp_path, shared_data, header, opened):
    """Synthetic pixels around each real ScanImage 2022 header: layout from its own keys."""
    path = shared_data / "scanimage-headers" / header
    text = path.read_text()
    # layouts the headers describe (channels, planes, F, flyback), with few volumes
    layouts = {
        "si2022_single.txt": SyntheticLayout(num_volumes=9, height=16, width=16),
        "si2022_2ch.txt": SyntheticLayout(channels=(1, 2), num_volumes=5, height=16, width=16),
        "si2022_vol_2ch.txt": SyntheticLayout(
            channels=(1, 2),
            num_planes=7,
            num_flyback=1,
            num_volumes=2,
            height=16,
            width=16,
            stale_num_slices=11,
        ),
        "si2022_split.txt": SyntheticLayout(
            num_planes=3,
            num_flyback=1,
            num_volumes=5,
            frames_per_file=6,
            height=16,
            width=16,
            stale_num_slices=11,
        ),
        "si2022_frames_per_slice.txt": SyntheticLayout(
            num_planes=7,
            frames_per_slice=20,
            num_flyback=1,
            num_volumes=2,
            height=8,
            width=8,
            stale_num_slices=11,
        ),
        "si2022_frames_per_slice_1vol.txt": SyntheticLayout(
            num_planes=7, frames_per_slice=20, num_volumes=1, height=8, width=8, stale_num_slices=11
        ),
    }
    lay = layouts[header]
    truth = write_scanimage_tiff(tmp_path / "real.tif", lay, header=text)
    ds = opened(truth.paths[0])
    assert ds.info.version == "2022.1"
    assert ds.info.num_planes == lay.num_planes
    assert ds.info.bidirectional is lay.bidirectional
    check_all_modes(ds, truth)


@pytest.mark.parametrize(
    ("plane", "mode"), [(None, "axis"), (1, "mean"), (None, "interleave"), (2, 1)]
)
def test_frames_lazy_array_matches_dask(tmp_path, plane, mode):
    lay = SyntheticLayout(
        channels=(1, 2),
        num_planes=3,
        frames_per_slice=2,
        num_flyback=1,
        num_volumes=5,
        height=12,
        width=10,
    )
    path = write_scanimage_tiff(tmp_path / "f.tif", lay).paths[0]
    with nsi.open_dataset(path) as ds:
        lazy = ds.frames(1, plane=plane, slice_sample=mode)
        whole = ds.array(1, plane=plane, slice_sample=mode).compute()
        assert lazy.shape == whole.shape and lazy.dtype == whole.dtype
        assert lazy.ndim == whole.ndim and lazy.size == whole.size and len(lazy) == len(whole)
        np.testing.assert_array_equal(np.asarray(lazy), whole)
        np.testing.assert_array_equal(lazy.to_dask().compute(), whole)
        keys = [
            3,
            -1,
            slice(1, None, 2),
            (2, Ellipsis, 4),
            (Ellipsis, 3, slice(2, 5)),
            np.array([4, 0, 2]),
            (slice(None), 0),
        ]
        for key in keys:
            np.testing.assert_array_equal(lazy[key], whole[key])
        with pytest.raises(IndexError):
            lazy[(0,) * (whole.ndim + 1)]
        with pytest.raises(IndexError):
            lazy[len(whole)]
