"""Legacy ScanImage classic TIFF: SI 3.x (``state.``), SI 4 (``scanimage.SI4.``), SI 5.0
(``scanimage.SI5.``) and SI 5.1/2015 (``scanimage.SI.``), incl. files past 2 GB.

Every layout is written by :mod:`napari_scanimage.testing.legacy` and checked three ways:
the info from its own keys, pixels against the ground truth and against tifffile (walking the
IFD chain itself), and timestamps against the written ones (or derived with a warning).
"""

from __future__ import annotations

import os
import warnings

import numpy as np
import pytest
import tifffile

from napari_scanimage.errors import TimestampWarning
from napari_scanimage.io.scanimage import (
    acquisition_info,
    parse_frame_description,
    read_static_metadata,
)
from napari_scanimage.io.tiff import index_pages
from napari_scanimage.testing.legacy import LegacyLayout, legacy_description, write_legacy_tiff


def _tifffile_pages(path) -> np.ndarray:
    """All pages by tifffile, walking the IFD chain (its ScanImage shortcut assumes equally
    spaced pages, which these files need not have).
    """
    with tifffile.TiffFile(path, is_scanimage=False) as tif:
        return np.stack([page.asarray() for page in tif.pages])


def _open_clean(opened, path):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return opened(path)


def _check_pixels(ds, truth) -> None:
    """Every channel, plane and frame-per-slice sample equals the truth and tifffile's pages."""
    lay = truth.layout
    theirs = _tifffile_pages(truth.path)
    assert len(theirs) == lay.total_pages
    np.testing.assert_array_equal(theirs, truth.pages(np.arange(lay.total_pages)))
    for c in range(lay.num_channels):
        for f in range(lay.frames_per_slice):
            got = ds.read(c, slice_sample=f)
            np.testing.assert_array_equal(got, truth.channel(c, sample=f))
            idx = [
                [lay.page_index(t, z, f, c) for z in range(lay.num_planes)]
                for t in range(lay.num_volumes)
            ]
            expected = theirs[np.asarray(idx)]
            np.testing.assert_array_equal(got, expected[:, 0] if lay.num_planes == 1 else expected)
        np.testing.assert_array_equal(
            ds.read(lay.names[c], plane=-1), truth.channel(c, plane=lay.num_planes - 1)
        )
    assert ds.read(0).dtype == np.dtype(lay.dtype)


def _check_info(info, lay: LegacyLayout, generation: str, version: str) -> None:
    assert (info.generation, info.version) == (generation, version)
    assert info.channel_ids == lay.channels and info.channel_names == lay.names
    assert (info.num_planes, info.frames_per_slice, info.num_flyback, info.num_volumes) == (
        lay.num_planes,
        lay.frames_per_slice,
        lay.num_flyback,
        lay.num_volumes,
    )
    assert info.frame_rate == pytest.approx(lay.frame_rate)
    assert info.volume_rate == pytest.approx(lay.volume_rate)
    assert info.log_average_factor == lay.average
    assert info.bidirectional is lay.bidirectional
    assert info.frame_shape == (lay.height, lay.width) and info.dtype == np.dtype(lay.dtype)
    planar = lay.num_planes == 1
    assert info.stack_mode == (None if planar else "fast" if lay.is_fast else "slow")


def _check_written_times(ds, truth) -> None:
    lay = truth.layout
    for z in range(lay.num_planes):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            times = ds.timestamps(z)
        np.testing.assert_allclose(times, truth.timestamps(z), atol=1e-6)
        assert not np.allclose(
            times, ds.frame_indices(z) // lay.num_channels * lay.average / lay.frame_rate
        )  # read, not derived from the rate


def _check_derived_times(ds, truth) -> None:
    """No per-frame timestamps: saved frame number × averaged frames / frame rate, warned."""
    lay = truth.layout
    for z in range(lay.num_planes):
        with pytest.warns(TimestampWarning, match=f"{lay.frame_rate:g} Hz"):
            times = ds.timestamps(z, slice_sample=0)
        pages = [lay.page_index(t, z, 0, 0) for t in range(lay.num_volumes)]
        np.testing.assert_allclose(
            times, np.asarray(pages) // lay.num_channels * lay.average / lay.frame_rate
        )


# -- SI 3.x ----------------------------------------------------------------------------------
def test_si3_planar_two_channels_averaged(tmp_path, opened):
    lay = LegacyLayout("SI3", channels=(1, 2), num_volumes=6, average=2, bidirectional=False)
    truth = write_legacy_tiff(tmp_path / "si3.tif", lay)
    assert read_static_metadata(truth.path).generation == "SI3"
    ds = _open_clean(opened, truth.path)
    _check_info(ds.info, lay, "SI3", "3.8")
    assert ds.info.volume_rate == pytest.approx(5.0)  # 10 Hz, 2 frames averaged per page
    assert ds.info.pixel_size_um is None and ds.info.z_step_um is None
    _check_pixels(ds, truth)
    _check_derived_times(ds, truth)
    assert ds.frame_description(3) == {}  # SI 3 pages repeat the static header only


def test_si3_stack_with_frames_per_slice(tmp_path, opened):
    # numAvgFramesSave 1 with the stale `averaging = 1` a real 3.8 header can carry: not averaged
    lay = LegacyLayout("SI3", channels=(2,), num_planes=3, frames_per_slice=2, num_volumes=1)
    assert "state.acq.averaging=1" in legacy_description(lay, 0)
    truth = write_legacy_tiff(tmp_path / "stack.tif", lay)
    ds = _open_clean(opened, truth.path)
    _check_info(ds.info, lay, "SI3", "3.8")
    assert ds.info.z_step_um == pytest.approx(2.5) and ds.info.channel_names == ("Channel 2",)
    assert ds.read(0, slice_sample="axis").shape == (1, 3, 2, lay.height, lay.width)
    _check_pixels(ds, truth)
    _check_derived_times(ds, truth)


def test_si3_stack_averaged(tmp_path, opened):
    """NumberOfFrames 6 per slice averaged in threes: 2 saved frames per slice."""
    lay = LegacyLayout(
        "SI3", channels=(1, 2), num_planes=2, frames_per_slice=2, average=3, num_volumes=1
    )
    truth = write_legacy_tiff(tmp_path / "avg.tif", lay)
    ds = _open_clean(opened, truth.path)
    assert ds.metadata["state.acq.numberOfFrames"] == 6
    _check_info(ds.info, lay, "SI3", "3.8")
    _check_pixels(ds, truth)
    _check_derived_times(ds, truth)


def test_si3_old_averaging_flag_without_num_avg_frames_save(tmp_path, opened):
    """Before numAvgFramesSave, ``averaging = 1`` saved one average of all frames per slice."""
    lay = LegacyLayout(
        "SI3",
        num_planes=3,
        average=4,
        num_volumes=1,
        header_overrides=(
            ("state.acq.numAvgFramesSave", None),
            ("state.acq.numAvgFramesSaveGUI", None),
            ("state.acq.averaging", "1"),
        ),
    )
    truth = write_legacy_tiff(tmp_path / "old.tif", lay)
    ds = _open_clean(opened, truth.path)
    assert "state.acq.numAvgFramesSave" not in ds.metadata
    _check_info(ds.info, lay, "SI3", "3.8")
    _check_pixels(ds, truth)


def test_si38_real_file_legacy_facts(shared_data, opened):
    """The real 3.8 file: facts the other real-file tests do not cover."""
    ds = _open_clean(opened, shared_data / "si38_Blank-IPA_1s_16r_032.tif")
    info = ds.info
    assert ds.metadata["state.acq.numAvgFramesSave"] == 1 and info.log_average_factor == 1
    assert info.volume_rate == pytest.approx(8.13802083333333)
    assert info.pixel_size_um is None  # zoomFactor 1.6 but no scan-angle calibration
    assert info.z_step_um is None and info.stack_mode is None and info.frames_per_file is None
    assert (info.lines_per_frame, info.pixels_per_line) == (64, 64)
    assert ds.frame_description(0) == {}
    with tifffile.TiffFile(ds.paths[0], is_scanimage=False) as tif:
        pages = np.stack([p.asarray() for p in tif.pages])
    np.testing.assert_array_equal(ds.read("Channel 2", times=[0, 29]), pages[[0, 29]])


# -- SI 4 ------------------------------------------------------------------------------------
def test_si4_planar_two_channels_averaged(tmp_path, opened):
    lay = LegacyLayout("SI4", channels=(1, 2), num_volumes=5, average=2)
    truth = write_legacy_tiff(tmp_path / "si4.tif", lay)
    assert read_static_metadata(truth.path).generation == "SI4"
    ds = _open_clean(opened, truth.path)
    _check_info(ds.info, lay, "SI4", "4")
    assert ds.metadata["SI4.channelsSave"] == [[1], [2]]
    _check_pixels(ds, truth)
    _check_derived_times(ds, truth)  # SI 4 frames carry a tag, no timestamp
    assert ds.frame_description(2)["frameNumbers"] == "00000002"
    assert "SI4.channelsSave" not in ds.frame_description(2)


def test_si4_volumetric_with_flyback_discard(tmp_path, opened):
    lay = LegacyLayout(
        "SI4",
        channels=(1, 2),
        num_planes=4,
        num_flyback=2,
        num_volumes=3,
        frame_rate=12.0,
        dtype="uint16",
    )
    truth = write_legacy_tiff(tmp_path / "vol.tif", lay)
    ds = _open_clean(opened, truth.path)
    _check_info(ds.info, lay, "SI4", "4")
    assert ds.info.volume_rate == pytest.approx(1 / ds.metadata["SI4.fastZPeriod"])
    assert ds.info.z_step_um == pytest.approx(2.5)
    _check_pixels(ds, truth)
    flyback = {
        t * lay.pages_per_volume + lay.num_channels * lay.num_planes + k
        for t in range(lay.num_volumes)
        for k in range(lay.num_channels * 2)
    }
    used = {int(p) for z in range(4) for p in ds.frame_indices(z)}
    assert used.isdisjoint(flyback)
    _check_derived_times(ds, truth)


def test_si4_slow_stack(tmp_path, opened):
    lay = LegacyLayout(
        "SI4", num_planes=3, frames_per_slice=2, num_volumes=1, fast_z=False, average=2
    )
    truth = write_legacy_tiff(tmp_path / "slow.tif", lay)
    ds = _open_clean(opened, truth.path)
    assert ds.metadata["SI4.acqNumFrames"] == 4 and ds.metadata["SI4.fastZEnable"] == 0
    _check_info(ds.info, lay, "SI4", "4")
    _check_pixels(ds, truth)


# -- SI 5 ------------------------------------------------------------------------------------
def test_si5_planar_two_named_channels_averaged(tmp_path, opened):
    lay = LegacyLayout(
        "SI5", channels=(1, 3), channel_names=("GCaMP", "tdTomato"), num_volumes=7, average=3
    )
    truth = write_legacy_tiff(tmp_path / "si5.tif", lay)
    assert read_static_metadata(truth.path).generation == "SI5"
    ds = _open_clean(opened, truth.path)
    _check_info(ds.info, lay, "SI5", "5.1")
    assert ds.info.channel_names == ("GCaMP", "tdTomato")
    assert "frameTimestamps_sec" not in ds.metadata  # frame lines are not static metadata
    _check_pixels(ds, truth)
    _check_written_times(ds, truth)
    desc = ds.frame_description(4)
    assert desc["frameNumbers"] == "3" and "SI.hChannels.channelSave" not in desc


def test_si5_fast_z_with_flyback(tmp_path, opened):
    lay = LegacyLayout(
        "SI5",
        channels=(1, 2),
        channel_names=("green", "red"),
        num_planes=3,
        num_flyback=2,
        num_volumes=4,
        dtype="uint16",
    )
    truth = write_legacy_tiff(tmp_path / "vol.tif", lay)
    ds = _open_clean(opened, truth.path)
    _check_info(ds.info, lay, "SI5", "5.1")
    assert ds.info.volume_rate == pytest.approx(ds.metadata["SI.hRoiManager.scanVolumeRate"])
    assert ds.metadata["SI.hFastZ.numVolumes"] == 4
    _check_pixels(ds, truth)
    _check_written_times(ds, truth)


def test_si5_fast_z_ignores_stale_frames_per_slice(tmp_path, opened):
    """Fast z scans each slice once per volume whatever framesPerSlice still says."""
    lay = LegacyLayout(
        "SI5",
        num_planes=4,
        num_flyback=1,
        num_volumes=3,
        header_overrides=(
            ("scanimage.SI.hStackManager.framesPerSlice", "100"),
            ("scanimage.SI.hStackManager.numSlices", "9"),
        ),
    )  # slicesPerAcq is the one used
    truth = write_legacy_tiff(tmp_path / "stale.tif", lay)
    ds = _open_clean(opened, truth.path)
    _check_info(ds.info, lay, "SI5", "5.1")
    _check_pixels(ds, truth)


def test_si5_slow_stack(tmp_path, opened):
    lay = LegacyLayout("SI5", num_planes=2, frames_per_slice=3, num_volumes=1, fast_z=False)
    truth = write_legacy_tiff(tmp_path / "slow.tif", lay)
    ds = _open_clean(opened, truth.path)
    _check_info(ds.info, lay, "SI5", "5.1")
    _check_pixels(ds, truth)
    times = ds.timestamps(1, slice_sample="axis")
    np.testing.assert_allclose(times.ravel(), [lay.frame_time(k) for k in (3, 4, 5)], atol=1e-6)


def test_si50_flat_keys_volumetric(tmp_path, opened):
    """SI 5.0: ``scanimage.SI5.`` keys and ``Frame Timestamp(s)`` lines."""
    lay = LegacyLayout(
        "SI5.0", channels=(1, 2), num_planes=3, num_flyback=1, num_volumes=3, average=1
    )
    truth = write_legacy_tiff(tmp_path / "si50.tif", lay)
    ds = _open_clean(opened, truth.path)
    _check_info(ds.info, lay, "SI5", "5.0")
    _check_pixels(ds, truth)
    _check_written_times(ds, truth)
    assert ds.frame_description(0)["Frame Number"] == ds.frame_description(0)["frameNumbers"]


def test_si50_planar_averaged_big_endian(tmp_path, opened):
    lay = LegacyLayout("SI5.0", channels=(2,), num_volumes=5, average=4, byteorder=">")
    truth = write_legacy_tiff(tmp_path / "be.tif", lay)
    assert index_pages(truth.path).byteorder == ">"
    ds = _open_clean(opened, truth.path)
    _check_info(ds.info, lay, "SI5", "5.0")
    _check_pixels(ds, truth)
    _check_written_times(ds, truth)


def test_legacy_frame_descriptions_hold_only_frame_lines():
    lay = LegacyLayout("SI5", channels=(1, 2))
    text = legacy_description(lay, 4)
    values = parse_frame_description(text)
    assert values["frameTimestamps_sec"] == f"{lay.frame_time(4):.6f}"
    assert not any(k.startswith(("SI.", "scanimage")) for k in values)


def test_si4_si5_info_without_fast_z_flag_takes_keys_as_they_stand(tmp_path):
    lay = LegacyLayout(
        "SI4",
        num_planes=3,
        num_flyback=1,
        num_volumes=2,
        header_overrides=(("scanimage.SI4.fastZEnable", None),),
    )
    truth = write_legacy_tiff(tmp_path / "noflag.tif", lay)
    info = acquisition_info(read_static_metadata(truth.path))
    assert (info.num_planes, info.frames_per_slice, info.num_flyback) == (3, 1, 1)


# -- classic TIFF past 2 GB ------------------------------------------------------------------
@pytest.mark.parametrize("byteorder", ["<", ">"])
def test_classic_tiff_past_2gb_reads_offsets_unsigned(tmp_path, byteorder, opened):
    """Pages (IFDs, descriptions and strips) beyond 2**31 and up to just below 2**32, in a
    sparse file: offsets must be read as unsigned 32-bit values.
    """
    lay = LegacyLayout(
        "SI5", channels=(1, 2), num_volumes=12, height=16, width=24, byteorder=byteorder
    )
    path = tmp_path / "big.tif"
    jumps = {8: 2**31 + 4096, 16: 2**32 - 2**20}
    try:
        truth = write_legacy_tiff(path, lay, page_offsets=jumps)
    except OSError as exc:  # a file system without sparse files or room
        pytest.skip(f"cannot write a sparse 4 GB file here: {exc}")
    try:
        assert os.path.getsize(path) > 2**32 - 2**20
        ix = index_pages(path)
        assert not ix.bigtiff and len(ix) == lay.total_pages
        np.testing.assert_array_equal(ix.data_offsets, truth.data_offsets)
        assert ix.data_offsets[8] > 2**31 and ix.data_offsets[-1] > 2**32 - 2**20
        assert truth.ifd_offsets[8] > 2**31
        assert (ix.description_offsets[8:] > 2**31).all()
        ds = _open_clean(opened, path)
        _check_info(ds.info, lay, "SI5", "5.1")
        _check_pixels(ds, truth)
        _check_written_times(ds, truth)
        np.testing.assert_array_equal(ds.read(1, times=slice(7, 9)), truth.channel(1)[7:9])
    finally:
        path.unlink()
