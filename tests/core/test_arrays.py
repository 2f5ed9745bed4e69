"""Every channel in one array: dims, sizes, to_dask and to_xarray against the writers' truth."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

import napari_scanimage as nsi
from napari_scanimage.testing.mroi import write_mroi_tiff
from napari_scanimage.testing.siff import write_siff
from napari_scanimage.testing.tiff import SyntheticLayout, write_scanimage_tiff

PLANAR = SyntheticLayout(
    channels=(1, 2),
    channel_names=("Green", "Red"),
    num_volumes=5,
    height=16,
    width=24,
    fov_um=96.0,
    frame_rate=20.0,
)
VOLUME = SyntheticLayout(
    channels=(1, 3),
    num_planes=3,
    num_flyback=2,
    num_volumes=4,
    height=8,
    width=12,
    z_step_um=2.5,
    fov_um=48.0,
)
SAMPLES = SyntheticLayout(
    channels=(1, 2),
    num_planes=2,
    frames_per_slice=3,
    num_flyback=1,
    num_volumes=3,
    height=8,
    width=8,
)


def stacked(ds, **kwargs) -> np.ndarray:
    """What ``to_dask`` must equal: each channel's ``array`` stacked on axis 1."""
    return np.stack([ds.array(c, **kwargs).compute() for c in range(ds.info.num_channels)], axis=1)


def test_planar_sizes_have_no_z(tmp_path):
    truth = write_scanimage_tiff(tmp_path / "p.tif", PLANAR)
    with nsi.open_dataset(truth.paths[0]) as ds:
        assert ds.dims == ("T", "C", "Y", "X")
        assert ds.sizes == {"T": 5, "C": 2, "Y": 16, "X": 24}
        assert ds.shape == (5, 2, 16, 24) and ds.ndim == 4 and ds.dtype == np.int16
        data = ds.to_dask()
        assert data.shape == ds.shape and data.dtype == ds.dtype
        got = data.compute()
        np.testing.assert_array_equal(got, stacked(ds))
        np.testing.assert_array_equal(got[3, 1], truth.page(truth.page_index(3, 0, 0, 1)))


def test_volume_with_flyback(tmp_path):
    truth = write_scanimage_tiff(tmp_path / "v.tif", VOLUME)
    with nsi.open_dataset(truth.paths[0]) as ds:
        assert ds.sizes == {"T": 4, "C": 2, "Z": 3, "Y": 8, "X": 12}  # flyback left out
        got = ds.to_dask().compute()
        np.testing.assert_array_equal(got, stacked(ds))
        np.testing.assert_array_equal(got[2, 1, 2], truth.page(truth.page_index(2, 2, 0, 1)))
        one = ds.to_dask(plane=-1)
        assert one.shape == (4, 2, 8, 12)
        np.testing.assert_array_equal(one.compute(), got[:, :, 2])


@pytest.mark.parametrize("mode", [0, 2, "mean", "interleave", "axis"])
def test_frames_per_slice_modes(tmp_path, mode):
    truth = write_scanimage_tiff(tmp_path / "f.tif", SAMPLES)
    with nsi.open_dataset(truth.paths[0]) as ds:
        assert ds.sizes == {"T": 3, "C": 2, "Z": 2, "Y": 8, "X": 8}  # sample 0 by default
        data = ds.to_dask(slice_sample=mode)
        dims = tuple(a.dim for a in ds.axes(slice_sample=mode))
        expected_dims = {"axis": ("T", "C", "Z", "F", "Y", "X")}.get(mode, ds.dims)
        assert dims == expected_dims and data.ndim == len(dims)
        assert data.shape[0] == (9 if mode == "interleave" else 3)
        np.testing.assert_array_equal(data.compute(), stacked(ds, slice_sample=mode))
        if mode == "axis":  # (t, c, z, f) is page t·PPV + (z·F + f)·C + c
            np.testing.assert_array_equal(
                data[1, 1, 1, 2].compute(), truth.page(truth.page_index(1, 1, 2, 1))
            )


def test_multi_roi_field_view(tmp_path):
    truth = write_mroi_tiff(tmp_path / "meso.tif", num_volumes=2)
    with nsi.open_dataset(truth.path) as ds:
        view = ds.field("middle")
        f = truth.fields[1]
        assert view.sizes == {"T": 2, "C": 2, "Z": 3, "Y": f.height, "X": f.width}
        got = ds.to_dask(field="middle").compute()
        np.testing.assert_array_equal(got, stacked(view))
        np.testing.assert_array_equal(got[1, 1, 2], truth.field_frame(1, 1, 2, 1))
        # the whole recording: whole pages
        assert ds.sizes["Y"] == truth.page_shape[0] and ds.sizes["X"] == truth.page_shape[1]
        x = ds.to_xarray(field="middle")  # y/x where the field lies in the sample (µm)
        py, px = f.pixel_size_um
        top = f.center_xy_um[1] - f.size_xy_um[1] / 2
        left = f.center_xy_um[0] - f.size_xy_um[0] / 2
        np.testing.assert_allclose(x["Y"].values, top + py / 2 + py * np.arange(f.height))
        np.testing.assert_allclose(x["X"].values, left + px / 2 + px * np.arange(f.width))
        assert x.attrs["field"]["name"] == "middle" and x.name == "meso middle"


def test_siff_photon_counts(tmp_path):
    lay = SyntheticLayout(channels=(1, 2), num_planes=2, num_volumes=3, height=8, width=10)
    sim = write_siff(tmp_path / "s.siff", lay, photons_per_frame=300)
    with nsi.open_dataset(sim.path) as ds:
        assert ds.dims == ("T", "C", "Z", "Y", "X") and ds.dtype == np.uint16
        got = ds.to_dask().compute()
        assert got.shape == ds.shape == (3, 2, 2, 8, 10)
        np.testing.assert_array_equal(got, stacked(ds))
        assert got.sum() > 0
        x = ds.to_xarray()
        assert x.attrs["flim"]["num_bins"] == ds.flim.num_bins
        json.dumps(x.attrs, allow_nan=False)


def test_to_xarray_coordinates_and_attrs(tmp_path):
    truth = write_scanimage_tiff(tmp_path / "v.tif", VOLUME)
    with nsi.open_dataset(truth.paths[0]) as ds:
        x = ds.to_xarray()
        assert x.dims == ds.dims and x.shape == ds.shape
        assert type(x.data).__module__.startswith("dask")  # lazy: nothing read yet
        assert list(x["C"].values) == ["Channel 1", "Channel 3"]
        # volume start times: frame (t · frames per volume) ÷ frame rate, from the file
        frames_per_volume = VOLUME.num_planes + VOLUME.num_flyback
        np.testing.assert_allclose(
            x["T"].values, np.arange(4) * frames_per_volume / VOLUME.frame_rate, atol=1e-6
        )  # written with 6 decimals
        assert x["T"].attrs == {"units": "s", "source": "frameTimestamps_sec"}
        np.testing.assert_allclose(x["Z"].values, [0.0, 2.5, 5.0])
        np.testing.assert_allclose(x["Y"].values, np.arange(8) * 6.0)  # 48 µm / 8 rows
        np.testing.assert_allclose(x["X"].values, np.arange(12) * 4.0)
        assert x["Y"].attrs["units"] == "µm" and x["Z"].attrs["units"] == "µm"
        attrs = json.loads(json.dumps(x.attrs, allow_nan=False))
        assert attrs["acquisition"]["num_planes"] == 3
        assert attrs["acquisition"]["channel_names"] == ["Channel 1", "Channel 3"]
        assert attrs["acquisition"]["dtype"] == "int16"
        assert attrs["files"] == [str(truth.paths[0])]
        np.testing.assert_array_equal(
            x.sel(C="Channel 3").isel(T=2, Z=1).values, truth.page(truth.page_index(2, 1, 0, 1))
        )
        one = ds.to_xarray(plane=2)
        assert one.dims == ("T", "C", "Y", "X") and float(one["Z"]) == 5.0
        np.testing.assert_allclose(
            one["T"].values, (np.arange(4) * frames_per_volume + 2) / VOLUME.frame_rate, atol=1e-6
        )


def test_to_xarray_interleave_times(tmp_path):
    truth = write_scanimage_tiff(tmp_path / "f.tif", SAMPLES)
    with nsi.open_dataset(truth.paths[0]) as ds:
        x = ds.to_xarray(plane=1, slice_sample="interleave")
        per_volume = SAMPLES.frames_per_volume
        expected = [
            (t * per_volume + 1 * 3 + f) / SAMPLES.frame_rate for t in range(3) for f in range(3)
        ]
        np.testing.assert_allclose(x["T"].values, expected, atol=1e-6)
        axis = ds.to_xarray(slice_sample="axis")
        assert axis.dims == ("T", "C", "Z", "F", "Y", "X")
        np.testing.assert_array_equal(axis["F"].values, [0, 1, 2])


def test_unknown_steps_are_pixels(shared_data):
    """ScanImage 3.8 does not store the pixel size: coordinates are pixel indices."""
    with nsi.open_dataset(shared_data / "si38_Blank-IPA_1s_16r_032.tif") as ds:
        assert ds.info.pixel_size_um is None
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # the derived times are said in attrs, not warned
            x = ds.to_xarray()
        assert x.dims == ("T", "C", "Y", "X")
        np.testing.assert_array_equal(x["Y"].values, np.arange(64))
        assert x["Y"].attrs["units"] == "pixel" and x["X"].attrs["units"] == "pixel"
        assert x["T"].attrs == {"units": "s", "source": "frame number / frame rate"}
        np.testing.assert_allclose(np.diff(x["T"].values), 1 / ds.info.volume_rate)
        assert [(a.dim, a.unit) for a in ds.axes(channels=False)] == [
            ("T", "s"),
            ("Y", "pixel"),
            ("X", "pixel"),
        ]


def test_planar_recordings_have_no_stack_mode(tmp_path):
    planar = write_scanimage_tiff(tmp_path / "p.tif", PLANAR)
    volume = write_scanimage_tiff(tmp_path / "v.tif", VOLUME)
    with nsi.open_dataset(planar.paths[0]) as p, nsi.open_dataset(volume.paths[0]) as v:
        assert p.info.stack_mode is None  # the header still says stackMode = 'fast'
        assert v.info.stack_mode == "fast"


def test_si3_planar_has_no_stack_mode(shared_data):
    with nsi.open_dataset(shared_data / "si38_Blank-IPA_1s_16r_032.tif") as ds:
        assert ds.info.num_planes == 1 and ds.info.stack_mode is None
