"""NWB export: written values read back with pynwb, schema validity, atomic failure."""

from __future__ import annotations

import os
import sys
from datetime import UTC, datetime

import numpy as np
import pytest

import napari_scanimage as nsi
from napari_scanimage import nwb as nwb_module
from napari_scanimage.errors import ScanImageError, SelectionError
from napari_scanimage.flim.lifetime import LifetimeTraces
from napari_scanimage.nwb import _parse_epoch, export_nwb, session_start
from napari_scanimage.testing.tiff import SyntheticLayout, write_scanimage_tiff

pynwb = pytest.importorskip("pynwb")

Y, X = 20, 24
VOLUME = SyntheticLayout(
    channels=(1, 2),
    channel_names=("Green", "Red"),
    num_planes=2,
    num_volumes=6,
    height=Y,
    width=X,
    frame_rate=20.0,
    z_step_um=4.0,
    fov_um=120.0,
)
PLANAR = SyntheticLayout(channels=(1, 3), num_volumes=7, height=Y, width=X, frame_rate=25.0)
EPOCH = datetime(2022, 5, 3, 10, 11, 12, 345000).astimezone(UTC)  # synthetic files' epoch


@pytest.fixture(scope="module")
def volume(tmp_path_factory):
    written = write_scanimage_tiff(tmp_path_factory.mktemp("nwb") / "vol.tif", VOLUME)
    with nsi.open_dataset(written.paths[0]) as ds:
        yield ds


@pytest.fixture(scope="module")
def planar(tmp_path_factory):
    written = write_scanimage_tiff(tmp_path_factory.mktemp("nwb") / "planar.tif", PLANAR)
    with nsi.open_dataset(written.paths[0]) as ds:
        yield ds


def box(y0, y1, x0, x1):
    m = np.zeros((Y, X), bool)
    m[y0:y1, x0:x1] = True
    return m


def volume_rois():
    plane1 = np.zeros((2, Y, X), bool)
    plane1[1] = box(2, 6, 3, 9)
    return nsi.RoiSet.from_masks(
        {"soma": box(8, 14, 10, 16), "plane 1 only": plane1, "edge": box(0, 3, 20, 24)}
    )


def read_back(path):
    io = pynwb.NWBHDF5IO(str(path), "r")
    return io, io.read()


def test_volumetric_export_round_trip(volume, tmp_path):
    rois = volume_rois()
    mean = nsi.traces(volume, rois, channel="Green", kind="mean")
    dff = nsi.traces(volume, rois, channel="Red", kind="dff")
    part = nsi.traces(volume, nsi.RoiSet([rois["edge"], rois["soma"]]), channel="Red", kind="sum")
    reg = nsi.register(volume, channel="Green")
    steps = []
    out = export_nwb(
        volume,
        tmp_path / "rec.nwb",
        rois=rois,
        traces=[mean, dff, part],
        registration=reg,
        identifier="abc",
        session_description="test",
        progress=lambda d, n: steps.append((d, n)),
    )
    assert out == tmp_path / "rec.nwb"
    assert sorted(os.listdir(tmp_path)) == ["rec.nwb"]  # no temporary left behind
    assert steps[0] == (0, 2) and steps[-1] == (2, 2)
    assert pynwb.validate(path=str(out)) == []

    io, f = read_back(out)
    with io:
        assert f.identifier == "abc" and f.session_description == "test"
        assert f.session_start_time == EPOCH
        assert len(f.devices) == 1
        times = volume.timestamps(0, slice_sample=0)
        for c, name in enumerate(("Green", "Red")):
            s = f.acquisition[f"TwoPhotonSeries {name}"]
            expected = volume.read(c)  # (T, Z, Y, X)
            assert s.data.shape == (6, X, Y, 2)  # (time, x, y, z)
            np.testing.assert_array_equal(s.data[:], expected.transpose(0, 3, 2, 1))
            assert s.data.dtype == expected.dtype
            np.testing.assert_allclose(s.timestamps[:], times)
            assert list(s.dimension[:]) == [X, Y, 2]
            plane = f.imaging_planes[f"ImagingPlane {name}"]
            assert s.imaging_plane is plane
            assert plane.imaging_rate == pytest.approx(10.0)  # volumes per second
            assert plane.indicator == "unknown" and plane.location == "unknown"
            assert np.isnan(plane.excitation_lambda)
            px_y, px_x = volume.info.pixel_size_um
            np.testing.assert_allclose(plane.grid_spacing[:], [px_x * 1e-6, px_y * 1e-6, 4e-6])
            np.testing.assert_allclose(
                s.field_of_view[:], [X * px_x * 1e-6, Y * px_y * 1e-6, 2 * 4e-6]
            )
        # frames 2, 3 are the second volume's planes 0, 1 of the channel-0 page sequence
        green = f.acquisition["TwoPhotonSeries Green"].data
        np.testing.assert_array_equal(green[1, :, :, 1], volume.read(0)[1, 1].T)

        ophys = f.processing["ophys"]
        ps = ophys["ImageSegmentation"]["PlaneSegmentation"]
        assert list(ps["roi_name"][:]) == rois.names
        masks = ps["image_mask"].data[:]
        assert masks.shape == (3, X, Y, 2)
        for k in range(3):
            np.testing.assert_array_equal(masks[k] > 0, rois.mask(k, (Y, X), 2).transpose(2, 1, 0))
        rrs = ophys["Fluorescence"]["mean Green"]
        np.testing.assert_array_equal(rrs.data[:], mean.values.T)
        np.testing.assert_allclose(rrs.timestamps[:], mean.time)
        assert list(rrs.rois.data[:]) == [0, 1, 2]
        assert rrs.rois.table is ps
        np.testing.assert_array_equal(ophys["DfOverF"]["dff Red"].data[:], dff.values.T)
        partial = ophys["Fluorescence"]["sum Red"]
        np.testing.assert_array_equal(partial.data[:], part.values.T)
        assert list(partial.rois.data[:]) == [2, 0]  # rows of "edge", "soma"

        mc = f.processing["motion correction"]
        np.testing.assert_array_equal(mc["shifts"].data[:], reg.shifts)
        assert mc["shifts"].unit == "pixels"
        np.testing.assert_array_equal(mc["correlation"].data[:], reg.correlation)
        np.testing.assert_allclose(mc["shifts"].timestamps[:], times)
        for z in range(2):
            np.testing.assert_array_equal(
                mc["reference images"][f"plane {z}"].data[:], reg.reference[z].T
            )


def test_planar_export_one_channel(planar, tmp_path):
    rois = nsi.RoiSet.from_masks({"a": box(1, 5, 1, 5), "b": box(10, 18, 4, 12)})
    mean = nsi.traces(planar, rois, channel=1, kind="mean")
    life = LifetimeTraces(
        np.array([[1.5, 2.0, np.nan], [3.0, 2.5, 2.25]]),
        np.ones((2, 3), np.int64),
        np.zeros((2, 3)),
        np.zeros((2, 3)),
        ["b", "a"],
        np.array([0.0, 0.5, 1.0]),
        "Channel 3",
        "lifetime",
    )
    gs = np.arange(12, dtype=np.float64).reshape(2, 3, 2) / 12
    phasor = LifetimeTraces(
        gs,
        np.ones((2, 3), np.int64),
        gs,
        gs,
        ["a", "b"],
        np.array([0.0, 0.5, 1.0]),
        "Channel 3",
        "phasor",
        harmonic=2,
    )
    start = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    out = export_nwb(
        planar,
        tmp_path / "p.nwb",
        channels=["Channel 3"],
        rois=rois,
        traces=[mean, life, phasor],
        session_start_time=start,
        indicator="GCaMP8m",
        location="V1",
        excitation_nm=920,
    )
    assert pynwb.validate(path=str(out)) == []
    io, f = read_back(out)
    with io:
        assert f.session_start_time == start
        assert list(f.acquisition) == ["TwoPhotonSeries Channel 3"]
        s = f.acquisition["TwoPhotonSeries Channel 3"]
        assert s.data.shape == (7, X, Y)  # (time, x, y)
        np.testing.assert_array_equal(s.data[:], planar.read(1).transpose(0, 2, 1))
        np.testing.assert_allclose(s.timestamps[:], planar.timestamps(0, slice_sample=0))
        plane = s.imaging_plane
        assert (plane.indicator, plane.location, plane.excitation_lambda) == (
            "GCaMP8m",
            "V1",
            920.0,
        )
        assert plane.imaging_rate == pytest.approx(25.0)
        ps = f.processing["ophys"]["ImageSegmentation"]["PlaneSegmentation"]
        assert ps.imaging_plane is plane
        masks = ps["image_mask"].data[:]
        assert masks.shape == (2, X, Y)
        np.testing.assert_array_equal(masks[0] > 0, box(1, 5, 1, 5).T)
        np.testing.assert_array_equal(masks[1] > 0, box(10, 18, 4, 12).T)
        np.testing.assert_array_equal(
            f.processing["ophys"]["Fluorescence"]["mean Channel 3"].data[:], mean.values.T
        )
        lt = f.processing["ophys"]["lifetime"]
        assert lt.unit == "ns"
        np.testing.assert_array_equal(lt.data[:], life.values.T)
        assert list(lt.rois.data[:]) == [1, 0]
        np.testing.assert_allclose(lt.timestamps[:], [0.0, 0.5, 1.0])
        for k, part in enumerate("gs"):
            np.testing.assert_array_equal(
                f.processing["ophys"][f"phasor {part}"].data[:], gs[..., k].T
            )


def test_frames_written_in_buffers(volume, tmp_path, monkeypatch):
    frame = X * Y * 2 * volume.info.dtype.itemsize  # one volume in NWB order
    monkeypatch.setattr(nwb_module, "CHUNK_BYTES", frame)
    monkeypatch.setattr(nwb_module, "BUFFER_BYTES", 2 * frame)
    seen = []
    real = nwb_module._frames_iterator

    def spying(array, progress):
        it = real(array, progress)
        get = it._get_data

        def recording(selection):
            seen.append(selection[0])
            return get(selection)

        it._get_data = recording
        return it

    monkeypatch.setattr(nwb_module, "_frames_iterator", spying)
    steps = []
    out = export_nwb(
        volume, tmp_path / "b.nwb", channels=[1], progress=lambda d, n: steps.append((d, n))
    )
    assert [(s.start, s.stop) for s in seen] == [(0, 2), (2, 4), (4, 6)]  # never all frames
    assert steps == [(0, 3), (1, 3), (2, 3), (3, 3)]
    io, f = read_back(out)
    with io:
        s = f.acquisition["TwoPhotonSeries Red"]
        assert s.data.chunks == (1, X, Y, 2)
        np.testing.assert_array_equal(s.data[:], volume.read(1).transpose(0, 3, 2, 1))


def test_failure_leaves_no_partial_file(volume, tmp_path):
    target = tmp_path / "rec.nwb"

    def failing(done, total):
        if done:
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        export_nwb(volume, target, progress=failing)
    assert os.listdir(tmp_path) == []

    target.write_bytes(b"previous export")
    with pytest.raises(RuntimeError, match="disk full"):
        export_nwb(volume, target, progress=failing)
    assert target.read_bytes() == b"previous export"
    assert os.listdir(tmp_path) == ["rec.nwb"]

    with pytest.raises(TypeError):  # shifts h5py cannot store: the writer fails mid-file
        export_nwb(volume, target, registration=_UnwritableRegistration())
    assert target.read_bytes() == b"previous export"
    assert os.listdir(tmp_path) == ["rec.nwb"]


class _UnwritableRegistration:
    """Fits the recording, but its shifts are Python objects HDF5 cannot hold."""

    channel, bidi_phase, num_planes = "Green", 0.0, 2
    shifts = np.full((6, 2, 2), object(), dtype=object)
    correlation = np.ones((6, 2))
    reference = np.zeros((2, Y, X), np.float32)

    def check_fits(self, num_times, num_planes, frame_shape):
        pass


def test_target_that_cannot_be_replaced(volume, tmp_path):
    folder = tmp_path / "rec.nwb"
    (folder / "inside").mkdir(parents=True)  # a folder where the file should go
    with pytest.raises(OSError):
        export_nwb(volume, folder)
    assert sorted(os.listdir(tmp_path)) == ["rec.nwb"]
    assert os.listdir(folder) == ["inside"]


@pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() == 0, reason="permissions do not bind root"
)
def test_read_only_folder(volume, tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        with pytest.raises(OSError):
            export_nwb(volume, folder / "rec.nwb")
        assert os.listdir(folder) == []
    finally:
        folder.chmod(0o700)


def test_inputs_that_do_not_fit(volume, planar, tmp_path):
    rois = volume_rois()
    mean = nsi.traces(volume, rois, kind="mean")
    with pytest.raises(SelectionError, match="rois"):
        export_nwb(volume, tmp_path / "x.nwb", traces=mean)
    with pytest.raises(SelectionError, match="no ROI"):
        export_nwb(volume, tmp_path / "x.nwb", traces=mean, rois=nsi.RoiSet([rois["soma"]]))
    with pytest.raises(SelectionError, match="registration"):
        export_nwb(planar, tmp_path / "x.nwb", registration=nsi.register(volume))
    with pytest.raises(SelectionError, match="Blue"):
        export_nwb(volume, tmp_path / "x.nwb", channels=["Blue"])
    assert os.listdir(tmp_path) == []


def test_missing_pynwb_says_how_to_install(volume, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "pynwb", None)  # import pynwb → ImportError
    with pytest.raises(ScanImageError, match=r'pip install "napari-scanimage\[nwb\]"'):
        export_nwb(volume, tmp_path / "x.nwb")
    assert os.listdir(tmp_path) == []


def test_session_start(volume, monkeypatch):
    assert session_start(volume) == EPOCH
    assert _parse_epoch("[2021 12 31 23 59 59.5]") == datetime(
        2021, 12, 31, 23, 59, 59, 500000
    ).astimezone(UTC)
    assert _parse_epoch("1700000000123456789") == datetime(
        2023, 11, 14, 22, 13, 20, 123457, tzinfo=UTC
    )
    assert _parse_epoch([2020, 2, 29, 1, 2, 3.0]) == datetime(2020, 2, 29, 1, 2, 3).astimezone(UTC)
    assert _parse_epoch("not a date") is None
    monkeypatch.setattr(volume, "frame_description", lambda page: {})
    mtime = datetime.fromtimestamp(os.stat(volume.paths[0]).st_mtime, tz=UTC)
    assert session_start(volume) == mtime
    assert session_start(volume).tzinfo is not None
