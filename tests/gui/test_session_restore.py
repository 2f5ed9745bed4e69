"""A session reopened in a new viewer restores the whole analysis: selection, ROIs (outlines
and masks, names, colours), registration, trace settings and decay fit; the traces shown equal
those the command line computes from the session file.
"""

from __future__ import annotations

import csv

import numpy as np
import pytest

from napari_scanimage.cli import main
from napari_scanimage.gui.flim import FlimDock
from napari_scanimage.gui.registration import RegistrationDock
from napari_scanimage.gui.rois import RoiDock
from napari_scanimage.gui.selection import apply_selection
from napari_scanimage.gui.traces import TracePlotDock
from napari_scanimage.sample import sample_path
from napari_scanimage.session import Session, TraceSettings

pytestmark = pytest.mark.gui


def settle(qtbot, *docks):
    qtbot.wait(300)
    qtbot.waitUntil(
        lambda: all(not d.busy and not d._timer.isActive() for d in docks), timeout=120000
    )


def cli_values(session_path, tmp_path) -> dict[str, np.ndarray]:
    out = tmp_path / "cli.csv"
    assert main(["traces", str(session_path), "--out", str(out)]) == 0
    values: dict[str, list[float]] = {}
    with out.open() as fh:
        for row in csv.DictReader(fh):
            values.setdefault(row["roi"], []).append(float(row["value"]))
    return {k: np.array(v) for k, v in values.items()}


def rect(z, y, x, h, w):
    return np.array([[z, y, x], [z, y, x + w], [z, y + h, x + w], [z, y + h, x]], float)


def test_volume_session_reopens_whole(make_napari_viewer, qtbot, tmp_path):
    viewer = make_napari_viewer()
    viewer.open(str(sample_path("volume_2ch")), plugin="napari-scanimage")
    rois, reg, traces = RoiDock(viewer), RegistrationDock(viewer), TracePlotDock(viewer)
    for dock in (rois, reg, traces):
        qtbot.addWidget(dock)
    layer = rois.new_layer()  # on (z, sample, y, x)
    assert list(layer.axis_labels) == ["z", "sample", "y", "x"]
    layer.add(
        [
            np.insert(rect(2, 30, 40, 12, 14), 1, 0, axis=1),
            np.insert(rect(2, 70, 20, 10, 10), 1, 0, axis=1),
            np.insert(rect(0, 90, 90, 16, 12), 1, 0, axis=1),
        ],
        shape_type="rectangle",
    )
    rois.rename("roi 1", "cell A")
    rois.set_all_planes("roi 3", True)
    ds = viewer.layers["Green"].metadata["scanimage_dataset"]
    settle(qtbot, traces)
    reg.run()
    qtbot.waitUntil(lambda: reg.result is not None and not reg.busy, timeout=120000)
    apply_selection(viewer, ds, slice_sample="mean")
    traces.set_trace_settings(
        TraceSettings(kind="dff", percentile=15.0, neuropil=0.6, neuropil_radii=(1, 6))
    )
    settle(qtbot, traces)
    saved_rois = rois.roi_set()
    saved_values = traces.result.values.copy()
    path = traces.save_session(tmp_path / "volume.nsession.json")
    shifts = reg.result.shifts.copy()
    viewer.close()

    fresh = make_napari_viewer()
    early = TracePlotDock(fresh)  # a dock opened before the session
    qtbot.addWidget(early)
    fresh.open(str(path), plugin="napari-scanimage")
    names = [x.name for x in fresh.layers]
    assert names == ["Green", "Red", "Green registered", "Red registered", "ROIs"]
    assert [fresh.layers[n].visible for n in names[:4]] == [False, False, True, True]
    for n in names[:4]:  # the selection: mean of the samples, all planes
        meta = fresh.layers[n].metadata["scanimage"]
        assert (meta["slice_sample"], meta["plane"]) == ("mean", None)
        assert list(fresh.layers[n].axis_labels) == ["t", "z", "y", "x"]
    restored_reg = fresh.layers["Green registered"].metadata["scanimage_registration"]
    np.testing.assert_array_equal(restored_reg.shifts, shifts)
    shapes = fresh.layers["ROIs"]
    assert list(shapes.features["name"]) == saved_rois.names == ["cell A", "roi 2", "roi 3"]
    assert list(shapes.features["all_planes"]) == [False, False, True]
    late_rois, late_reg, late_traces = (
        RoiDock(fresh),
        RegistrationDock(fresh),
        TracePlotDock(fresh),
    )  # docks opened after the session
    for dock in (late_rois, late_reg, late_traces):
        qtbot.addWidget(dock)
    settle(qtbot, early, late_traces)
    again = late_rois.roi_set()
    assert again.names == saved_rois.names and again.colours == saved_rois.colours
    assert again.planes == saved_rois.planes == [2, 2, None]
    assert late_reg.result is restored_reg and late_reg.view_box.isEnabled()
    want = TraceSettings(
        kind="dff", channel="Green", percentile=15.0, neuropil=0.6, neuropil_radii=(1, 6)
    )
    cli = cli_values(path, tmp_path)
    for dock in (early, late_traces):
        assert dock.trace_settings() == want and dock.params.registered.value
        assert dock.result.names == saved_rois.names
        np.testing.assert_allclose(dock.result.values, saved_values, atol=1e-9, rtol=0)
        for k, name in enumerate(dock.result.names):
            np.testing.assert_allclose(dock.result.values[k], cli[name], atol=1e-9, rtol=0)
    assert Session.load(path).slice_sample == "mean"


def test_flim_session_restores_fit_masks_and_plane(make_napari_viewer, qtbot, tmp_path):
    viewer = make_napari_viewer()
    viewer.open(str(sample_path("flim_2ch")), plugin="napari-scanimage")
    flim, traces = FlimDock(viewer), TracePlotDock(viewer)
    for dock in (flim, traces):
        qtbot.addWidget(dock)
    masks = np.zeros((256, 256), np.int32)
    masks[40:70, 50:90] = 1
    masks[150:190, 120:150] = 2
    labels = viewer.add_labels(masks, name="cells")
    labels.metadata = {**labels.metadata, "roi_names": {1: "soma", 2: "dendrite"}}
    flim._refresh()
    flim.params.rois.value = "cells"
    flim.params.which.value = "all ROIs"
    flim.run()
    qtbot.waitUntil(lambda: flim.fit is not None and not flim.busy, timeout=120000)
    fit = flim.fit
    traces._refresh_layers()
    traces.select_layer(labels)
    traces.set_trace_settings(TraceSettings(kind="lifetime"))
    settle(qtbot, traces)
    saved_rois = traces.session().roi_set
    colours = saved_rois.colours
    path = traces.save_session(tmp_path / "flim.nsession.json")
    viewer.close()

    fresh = make_napari_viewer()
    fresh.open(str(path), plugin="napari-scanimage")
    assert [x.name for x in fresh.layers] == ["Green", "Red", "ROI masks"]
    restored = fresh.layers["Green"].metadata["scanimage_decay_fit"]
    assert restored == fit
    flim2, traces2 = FlimDock(fresh), TracePlotDock(fresh)
    for dock in (flim2, traces2):
        qtbot.addWidget(dock)
    settle(qtbot, traces2)
    assert flim2.fit == fit and flim2.table.rowCount() > 0
    mask_layer = fresh.layers["ROI masks"]
    np.testing.assert_array_equal(np.asarray(mask_layer.data), masks)
    got = traces2.session().roi_set
    assert got.names == ["soma", "dendrite"] and got.colours == colours
    assert traces2.trace_settings().kind == "lifetime"
    cli = cli_values(path, tmp_path)
    for k, name in enumerate(traces2.result.names):
        np.testing.assert_allclose(
            traces2.result.values[k], cli[name], atol=1e-9, rtol=0, equal_nan=True
        )


def test_session_reader_claims_sessions_only(tmp_path, npe2pm, scanimage_plugin):
    """npe2 offers the reader for ``*.nsession.json`` only, and the reader checks the content:
    a plain ROI JSON or another JSON is left to other readers.
    """
    from napari_scanimage.gui.session_reader import get_session_reader
    from napari_scanimage.testing.tiff import SyntheticLayout, write_scanimage_tiff

    truth = write_scanimage_tiff(tmp_path / "rec.tif", SyntheticLayout(num_volumes=3))
    import napari_scanimage as nsi

    rois = nsi.RoiSet.from_layer(
        [np.array([[2.0, 2], [2, 9], [9, 9]])], shape_types="polygon", frame_shape=(32, 32)
    )
    session = Session(sources=[truth.paths[0]], roi_set=rois).save(tmp_path / "a.nsession.json")
    plain_rois = rois.save(tmp_path / "rois.json")
    other = tmp_path / "other.json"
    other.write_text('{"format": "something else"}')
    fake = tmp_path / "fake.nsession.json"
    fake.write_text('{"format": "something else"}')

    def offered(path):
        return [r.plugin_name for r in npe2pm.iter_compatible_readers([str(path)])]

    assert "napari-scanimage" in offered(session)
    for path in (plain_rois, other):
        assert "napari-scanimage" not in offered(path)
        assert get_session_reader(str(path)) is None
    assert get_session_reader(str(fake)) is None  # the name alone is not enough
    assert get_session_reader(str(session)) is not None
    from npe2.io_utils import _read

    layers = _read([str(session)], plugin_name="napari-scanimage", stack=False, _pm=npe2pm)
    assert [kw["name"] for _, kw, _ in layers] == ["Channel 1", "ROIs"]


def test_open_session_button_reads_older_plain_json_sessions(make_napari_viewer, qtbot, tmp_path):
    """Sessions saved before the .nsession.json name (plain .json) still open from the Traces
    dock; a JSON that is not a session is refused with a message naming it.
    """
    import napari_scanimage as nsi
    from napari_scanimage.errors import ScanImageError
    from napari_scanimage.testing.tiff import SyntheticLayout, write_scanimage_tiff

    truth = write_scanimage_tiff(tmp_path / "rec.tif", SyntheticLayout(num_volumes=4))
    rois = nsi.RoiSet.from_layer(
        [np.array([[2.0, 2], [2, 9], [9, 9], [9, 2]])],
        shape_types="polygon",
        names=["cell"],
        frame_shape=(32, 32),
    )
    old = Session(sources=[truth.paths[0]], roi_set=rois, trace=TraceSettings(kind="sum")).save(
        tmp_path / "old.json"
    )
    viewer = make_napari_viewer()
    dock = TracePlotDock(viewer)
    qtbot.addWidget(dock)
    added = dock.open_session(old)
    assert [x.name for x in added] == ["Channel 1", "ROIs"]
    settle(qtbot, dock)
    assert dock.trace_settings().kind == "sum" and dock.result.names == ["cell"]
    with pytest.raises(ScanImageError, match="rois.json is not a napari-scanimage session"):
        dock.open_session(rois.save(tmp_path / "rois.json"))
