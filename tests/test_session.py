"""Session files: round trip, relocation, and typed errors for bad or incomplete sessions."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

import napari_scanimage as nsi
from napari_scanimage._core.reading import close_readers
from napari_scanimage.errors import FormatError, ScanImageError
from napari_scanimage.flim import DecayFit
from napari_scanimage.session import MissingFileError, Session, TraceSettings
from napari_scanimage.testing.tiff import SyntheticLayout, write_scanimage_tiff


def _rois():
    mask = np.zeros((32, 48), bool)
    mask[4:12, 6:20] = True
    by_mask = nsi.RoiSet.from_masks({"cell": mask}, source="rec.tif")
    square = nsi.RoiSet.from_layer(
        [np.array([[14.0, 20.0], [14, 40], [28, 40], [28, 20]])],
        shape_types="polygon",
        names=["square"],
        frame_shape=(32, 48),
    )
    return nsi.RoiSet([*by_mask, *square], frame_shape=(32, 48))


@pytest.fixture
def project(tmp_path):
    folder = tmp_path / "project"
    folder.mkdir()
    truth = write_scanimage_tiff(
        folder / "rec.tif",
        SyntheticLayout(channels=(1, 2), num_planes=2, num_volumes=5, frame_rate=20.0),
    )
    with nsi.open_dataset(truth.paths[0]) as ds:
        reg = nsi.register(ds, channel=1)
    fit = DecayFit(
        taus_ns=(0.8, 3.2),
        fractions=(0.4, 0.6),
        irf_offset_ns=0.75,
        irf_width_ns=0.12,
        background=0.01,
        total=1e4,
        bin_width_ps=20.0,
        period_ps=12500.0,
        n_exp=2,
        deviance=101.5,
        fit_range=(3, 110),
    )
    session = Session(
        sources=[truth.paths[0]],
        channel="Channel 2",
        plane=1,
        slice_sample="mean",
        roi_set=_rois(),
        registration_result=reg,
        decay_fit=fit,
        trace=TraceSettings(kind="dff", percentile=20.0, window_s=0.2, neuropil=0.7),
    )
    path = session.save(folder / "analysis.json")
    yield folder, path, session
    close_readers(truth.paths)  # layers read from the session keep their readers


def test_round_trip(project):
    folder, path, saved = project
    doc = json.loads(path.read_text())
    assert (doc["format"], doc["version"]) == ("napari-scanimage-session", 1)
    assert doc["sources"] == ["rec.tif"]
    assert doc["registration"] == "analysis.registration.npz"
    assert doc["decay_fit"] == "analysis.decayfit.json"
    assert (folder / "analysis.registration.npz").is_file()
    loaded = Session.load(path)
    assert loaded.sources == [folder / "rec.tif"]
    assert (loaded.channel, loaded.plane, loaded.slice_sample) == ("Channel 2", 1, "mean")
    assert loaded.trace == saved.trace
    assert loaded.trace.neuropil_radii == (2, 8)
    assert loaded.rois().names == ["cell", "square"]
    for name in ("cell", "square"):
        np.testing.assert_array_equal(
            loaded.rois().mask(name, (32, 48), 2), saved.rois().mask(name, (32, 48), 2)
        )
    reg, reg0 = loaded.registration(), saved.registration()
    np.testing.assert_array_equal(reg.shifts, reg0.shifts)
    np.testing.assert_array_equal(reg.reference, reg0.reference)
    assert loaded.decay_fit == saved.decay_fit
    assert loaded.decay_fit.irf_offset_ns == 0.75


def test_piecewise_registration_round_trip(project, tmp_path):
    folder, _, saved = project
    with nsi.open_dataset(saved.sources[0]) as ds:
        reg = nsi.register(ds, channel=1, piecewise=True, block_size=16)
    session = Session(sources=saved.sources, registration_result=reg)
    path = session.save(folder / "piecewise.json")
    loaded = Session.load(path).registration()
    assert loaded.piecewise
    for name in ("shifts", "block_shifts", "block_centers", "block_correlation", "block_flags"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(reg, name))
    np.testing.assert_array_equal(loaded.displacement(2, 1), reg.displacement(2, 1))


def test_run_traces_matches_library(project):
    _, path, _ = project
    session = Session.load(path)
    got = session.run_traces()
    with nsi.open_dataset(session.sources[0]) as ds:
        want = nsi.traces(
            ds,
            session.rois(),
            channel="Channel 2",
            kind="dff",
            slice_sample="mean",
            percentile=20.0,
            window_s=0.2,
            neuropil=0.7,
            registration=session.registration(),
        )
    assert got.kind == "dff" and got.names == ["cell", "square"]
    np.testing.assert_array_equal(got.values, want.values)
    np.testing.assert_array_equal(got.time, want.time)


def test_moved_folder_still_loads(project, tmp_path):
    folder, path, _ = project
    before = Session.load(path).run_traces()
    moved = tmp_path / "elsewhere" / "copy"
    shutil.copytree(folder, moved)
    shutil.rmtree(folder)
    session = Session.load(moved / "analysis.json")
    assert session.sources == [moved / "rec.tif"]
    np.testing.assert_array_equal(session.run_traces().values, before.values)


def test_missing_recording(project):
    folder, path, _ = project
    (folder / "rec.tif").unlink()
    with pytest.raises(MissingFileError, match=r"refers to the recording .*rec\.tif") as err:
        Session.load(path)
    assert isinstance(err.value, ScanImageError) and "\n" not in str(err.value)
    assert Session.load(path, require_sources=False).rois().names == ["cell", "square"]


def test_missing_sidecar(project):
    folder, path, _ = project
    (folder / "analysis.registration.npz").unlink()
    with pytest.raises(MissingFileError, match="analysis.registration.npz, which is not next"):
        Session.load(path)


def test_bad_json(tmp_path):
    path = tmp_path / "s.json"
    path.write_text("{not json")
    with pytest.raises(FormatError, match="not a session file"):
        Session.load(path)
    path.write_text(json.dumps({"format": "napari-scanimage-rois", "version": 1}))
    with pytest.raises(FormatError, match="not a napari-scanimage session file"):
        Session.load(path)
    path.write_text(
        json.dumps({"format": "napari-scanimage-session", "version": 1, "sources": "rec.tif"})
    )
    with pytest.raises(FormatError, match="malformed session"):
        Session.load(path)


def test_future_version(project):
    _, path, _ = project
    doc = json.loads(path.read_text())
    doc["version"] = 2
    path.write_text(json.dumps(doc))
    with pytest.raises(FormatError, match="version 2; .* reads versions 1–1: update it"):
        Session.load(path)


def test_save_is_relative_and_atomic(project):
    folder, path, session = project
    session.trace = TraceSettings(kind="sum")
    session.save(path)
    assert Session.load(path).trace.kind == "sum"
    assert sorted(p.name for p in folder.iterdir()) == [
        "analysis.decayfit.json",
        "analysis.json",
        "analysis.registration.npz",
        "rec.tif",
    ]


def test_session_reader_takes_only_session_files(tmp_path, project):
    from napari_scanimage.gui.session_reader import get_session_reader, read_session

    _, path, session = project
    assert get_session_reader(str(path)) is read_session
    layers = read_session(str(path))
    assert [kw["name"] for _, kw, _ in layers] == [
        "Channel 1",
        "Channel 2",
        "Channel 1 registered",
        "Channel 2 registered",
        "ROI masks",
        "ROIs",
    ]  # the session's registration and its mask ROI ("cell") are restored too
    assert all(kw["metadata"]["scanimage"]["plane"] == 1 for _, kw, _ in layers[:4])
    assert layers[2][1]["metadata"]["scanimage_registration"] is not None
    masks, kw, kind = layers[-2]
    assert kind == "labels" and kw["metadata"]["roi_names"] == {1: "cell"}
    np.testing.assert_array_equal(masks > 0, session.roi_set.mask("cell", (32, 48), 2)[1])
    shapes, kw, kind = layers[-1]
    assert kind == "shapes" and kw["features"]["name"] == ["square"]  # outlines only
    np.testing.assert_allclose(shapes[0][:, -2:], session.roi_set["square"].vertices)

    (tmp_path / "other.json").write_text('{"a": 1}')
    (tmp_path / "broken.json").write_bytes(b"\x00 not json")
    assert get_session_reader(str(tmp_path / "other.json")) is None
    assert get_session_reader(str(tmp_path / "broken.json")) is None
    assert get_session_reader(str(tmp_path / "missing.json")) is None
    assert get_session_reader([str(tmp_path / "other.json")]) is None
    assert get_session_reader(str(tmp_path / "x.tif")) is None


def test_session_file_names(tmp_path):
    """Sessions are named <stem>.nsession.json; the sidecars take the stem alone; whether a
    file is a session is decided by its content.
    """
    from napari_scanimage.session import is_session_file, session_file

    assert session_file(tmp_path / "a.json").name == "a.nsession.json"
    assert session_file(tmp_path / "a").name == "a.nsession.json"
    assert session_file(tmp_path / "a.NSESSION.JSON").name == "a.NSESSION.JSON"
    truth = write_scanimage_tiff(tmp_path / "rec.tif", SyntheticLayout(num_volumes=3))
    with nsi.open_dataset(truth.paths[0]) as ds:
        reg = nsi.register(ds)
    path = Session(sources=[truth.paths[0]], registration_result=reg).save(
        tmp_path / "a.nsession.json"
    )
    doc = json.loads(path.read_text())
    assert doc["registration"] == "a.registration.npz"
    assert is_session_file(path) and not is_session_file(tmp_path / "a.registration.npz")
    (tmp_path / "other.json").write_text("[1, 2]")
    assert not is_session_file(tmp_path / "other.json")


def test_view_round_trip(tmp_path):
    """What the viewer showed (channels, sample mode, lifetimes) comes back; older files
    without it read as before.
    """
    truth = write_scanimage_tiff(
        tmp_path / "rec.tif", SyntheticLayout(channels=(1, 2), num_volumes=3, frames_per_slice=2)
    )
    path = Session(
        sources=[truth.paths[0]],
        plane=1,
        shown_channels=[1],
        shown_slice_sample="axis",
        lifetime=True,
    ).save(tmp_path / "v.nsession.json")
    got = Session.load(path)
    assert (got.plane, got.shown_channels, got.shown_slice_sample, got.lifetime) == (
        1,
        [1],
        "axis",
        True,
    )
    doc = json.loads(path.read_text())
    for key in ("shown_channels", "shown_slice_sample", "lifetime"):
        del doc["selection"][key]
    path.write_text(json.dumps(doc))
    old = Session.load(path)
    assert (old.shown_channels, old.shown_slice_sample, old.lifetime) == (None, None, False)
    doc["selection"]["shown_channels"] = ["x"]
    path.write_text(json.dumps(doc))
    with pytest.raises(FormatError, match="shown_channels"):
        Session.load(path)
