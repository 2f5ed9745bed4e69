"""Files from an independent writer, with their ground truth (shared/data/independent)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from napari_scanimage.errors import IncompleteVolumeWarning


@pytest.fixture(scope="module")
def series(shared_data):
    folder = shared_data / "independent" / "tiff_vol2ch_F2_B3"
    if not folder.is_dir():
        pytest.skip(f"independent sample files not found at {folder}")
    return folder


def test_independent_series(series, opened):
    truth = np.load(series / "truth.npz")
    with pytest.warns(IncompleteVolumeWarning, match="7 of 22 pages"):
        ds = opened(series / "vol2ch_00001_00002.tif")
    with ds:
        info = ds.info
        assert [p.name for p in ds.paths] == [f"vol2ch_00001_0000{k}.tif" for k in (1, 2, 3)]
        assert info.channel_names == ("Green", "Red")
        assert info.channel_ids == (1, 3)
        assert (info.num_planes, info.frames_per_slice, info.num_flyback) == (4, 2, 3)
        assert info.num_volumes == 5
        assert info.frame_shape == (40, 56)
        for c, name in enumerate(("Green", "Red")):
            expected = truth[f"channel{c}_axis"]
            np.testing.assert_array_equal(ds.array(name, slice_sample="axis").compute(), expected)
            np.testing.assert_array_equal(ds.read(c, slice_sample=1), expected[:, :, 1])
            np.testing.assert_array_equal(
                ds.read(c, plane=2, slice_sample="interleave"), expected[:, 2].reshape(10, 40, 56)
            )
        np.testing.assert_allclose(ds.timestamps(), truth["timestamps_last_plane"], atol=1e-9)
        np.testing.assert_array_equal(ds.frame_indices(), truth["frame_indices_last_plane"])


def test_si38_real_file(shared_data, opened):
    import tifffile

    path = shared_data / "si38_Blank-IPA_1s_16r_032.tif"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a clean open: no warnings
        ds = opened(path)
    info = ds.info
    assert info.generation == "SI3" and info.version == "3.8"
    assert info.channel_names == ("Channel 2",) and info.channel_ids == (2,)
    assert (info.num_volumes, info.num_planes, info.frames_per_slice) == (30, 1, 1)
    assert info.frame_rate == pytest.approx(8.13802083333333)
    assert info.bidirectional is True
    assert info.frame_shape == (64, 64) and info.dtype == np.uint16
    np.testing.assert_array_equal(ds.array().compute(), tifffile.imread(path))
    assert ds.metadata["state.acq.numberOfFrames"] == 30
