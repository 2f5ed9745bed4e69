"""Trace plot dock in a real viewer: curves equal the library's traces, cursor ↔ time slider,
per-ROI recompute, export."""

from __future__ import annotations

import csv
import io

import numpy as np
import pytest
from qtpy.QtCore import QPointF, Qt

import napari_scanimage as nsi
from napari_scanimage.gui.rois import RoiDock
from napari_scanimage.gui.traces import TracePlotDock
from napari_scanimage.testing.tiff import SyntheticLayout, write_scanimage_tiff

pytestmark = pytest.mark.gui

LAYOUT = SyntheticLayout(channels=(1, 2), channel_names=("Green", "Red"), num_planes=3,
                         num_flyback=1, num_volumes=12, height=24, width=32)


@pytest.fixture
def setup(make_napari_viewer, qtbot, tmp_path):
    written = write_scanimage_tiff(tmp_path / "rec.tif", LAYOUT)
    viewer = make_napari_viewer()
    viewer.open(str(written.paths[0]), plugin="napari-scanimage")
    rois = RoiDock(viewer)
    qtbot.addWidget(rois)
    layer = rois.new_layer()
    dock = TracePlotDock(viewer)
    qtbot.addWidget(dock)
    return viewer, rois, layer, dock


def rect(z, y, x, h, w):
    return np.array([[z, y, x], [z, y, x + w], [z, y + h, x + w], [z, y + h, x]], float)


def settle(qtbot, dock):
    qtbot.wait(dock._timer.interval() + 50)
    qtbot.waitUntil(lambda: not dock.busy and not dock._timer.isActive(), timeout=20000)


def brute(path, masks, channel=0):
    with nsi.open_dataset(path) as ds:
        frames = ds.read(channel).astype(np.float64)  # (T, Z, Y, X)
        t = ds.timestamps(0)
    return t, np.array([[f[m].mean() for f in frames] for m in masks])


def test_curves_cursor_click_edit_export(setup, qtbot, tmp_path, make_napari_viewer):
    viewer, rois, layer, dock = setup
    make_viewer = make_napari_viewer
    layer.add([rect(1, 2.5, 3.5, 5, 6), rect(2, 10.5, 12.5, 6, 6)], shape_type="rectangle",
              edge_color=["#ff0000", "#00ff00"])
    settle(qtbot, dock)
    assert list(dock.curves) == ["roi 1", "roi 2"] and dock.computed_rois == 2
    m = np.zeros((2, 3, 24, 32), bool)
    m[0, 1, 3:8, 4:10] = True  # rectangle corners at pixel edges → pixel centres inside
    m[1, 2, 11:17, 13:19] = True
    t, want = brute(layer_path(viewer), m)
    for k, name in enumerate(["roi 1", "roi 2"]):
        x, y = dock.curves[name].getData()
        np.testing.assert_allclose(x, t)
        np.testing.assert_allclose(y, want[k], rtol=1e-12)
    assert dock.curves["roi 1"].opts["pen"].color().name() == "#ff0000"
    # time slider → cursor (the curves' data stay the same objects)
    before = dock.curves["roi 1"].getData()[1]
    axis = list(viewer.dims.axis_labels).index("t")
    step = viewer.layers["Green"].scale[0]
    viewer.dims.set_point(axis, 7 * step)
    assert dock.cursor.value() == pytest.approx(t[7])
    assert dock.curves["roi 1"].getData()[1] is before
    # a click on the plot → the slider
    dock.resize(600, 400)
    dock.show()
    qtbot.waitExposed(dock)
    qtbot.wait(50)
    vb = dock.plot.getPlotItem().vb
    clicks = []
    dock.plot.scene().sigMouseClicked.connect(lambda ev: clicks.append(ev.scenePos()))
    scene = vb.mapViewToScene(QPointF(t[4], float(want[0].mean())))
    pos = dock.plot.mapFromScene(scene)
    qtbot.mouseClick(dock.plot.viewport(), Qt.MouseButton.LeftButton, pos=pos)
    assert len(clicks) == 1
    assert viewer.dims.current_step[axis] == 4
    assert dock.cursor.value() == pytest.approx(t[4])
    # a closed (hidden) dock idles while the slider moves and catches up when shown
    dock.hide()
    viewer.dims.set_point(axis, 2 * step)
    assert dock.cursor.value() == pytest.approx(t[4])
    dock.show()
    assert dock.cursor.value() == pytest.approx(t[2])
    # editing one ROI recomputes only that one; renaming recomputes nothing
    data = list(layer.data)
    data[1] = rect(2, 0.5, 0.5, 4, 4)
    layer.data = data
    assert list(layer.shape_type) == ["rectangle", "rectangle"]
    settle(qtbot, dock)
    assert dock.computed_rois == 3
    m[1] = False
    m[1, 2, 1:5, 1:5] = True
    _, want = brute(layer_path(viewer), m)
    np.testing.assert_allclose(dock.curves[dock.result.names[1]].getData()[1], want[1],
                               rtol=1e-12)
    rois.rename("roi 1", "cell")
    settle(qtbot, dock)
    assert list(dock.curves) == ["cell", dock.result.names[1]] and dock.computed_rois == 3
    assert [label.text for _, label in dock.legend.items] == list(dock.curves)
    # dF/F and the export
    dock.metric_box.setCurrentText("dF/F")
    settle(qtbot, dock)
    with nsi.open_dataset(layer_path(viewer)) as ds:
        lib = nsi.traces(ds, dict(zip(dock.result.names, m, strict=True)), kind="dff")
    np.testing.assert_allclose(dock.result.values, lib.values, rtol=1e-12)
    path = dock.export_csv(tmp_path / "out.csv")
    rows = list(csv.DictReader(path.open()))
    assert len(rows) == 2 * 12 and rows[0]["metric"] == "dff" and rows[0]["channel"] == "Green"
    assert float(rows[13]["value"]) == lib.values[1, 1]
    text = dock.copy_to_clipboard()
    assert list(csv.reader(io.StringIO(text)))[0] == ["time_s", "roi", "channel", "metric",
                                                       "value"]
    from qtpy.QtWidgets import QApplication

    assert QApplication.clipboard().text() == text
    # a session saved here replays through the command line to the same traces
    from napari_scanimage.cli import main

    session = dock.save_session(tmp_path / "session.json")
    replay = tmp_path / "replay.csv"
    assert main(["traces", str(session), "--out", str(replay)]) == 0
    assert replay.read_bytes().decode() == dock.result.csv_text()
    # ... and opens in a fresh viewer (File → Open) with its ROIs
    from napari_scanimage.gui.session_reader import get_session_reader

    assert get_session_reader(str(path)) is None  # a CSV, not a session
    fresh = make_viewer()
    fresh.open(str(session), plugin="napari-scanimage")
    assert [layer.name for layer in fresh.layers] == ["Green", "Red", "ROIs"]
    restored = fresh.layers["ROIs"]
    assert list(restored.features["name"]) == dock.result.names
    np.testing.assert_allclose(restored.data[1][:, -2:], layer.data[1][:, -2:])


def layer_path(viewer):
    return viewer.layers["Green"].metadata["scanimage"]["path"]


def test_channel_labels_and_cancel(setup, qtbot):
    viewer, rois, layer, dock = setup
    layer.add([rect(0, 2.5, 3.5, 5, 6)], shape_type="rectangle")
    settle(qtbot, dock)
    dock.channel_box.setCurrentText("Red")
    settle(qtbot, dock)
    m = np.zeros((1, 3, 24, 32), bool)
    m[0, 0, 3:8, 4:10] = True
    _, want = brute(layer_path(viewer), m, channel=1)
    np.testing.assert_allclose(dock.result.values, want, rtol=1e-12)
    assert dock.result.channel == "Red"
    # Labels: a painted label becomes a curve
    labels = viewer.add_labels(np.zeros((24, 32), np.int32), name="cells")
    labels.data[5:9, 5:9] = 2
    dock.select_layer(labels)
    settle(qtbot, dock)
    assert list(dock.curves) == ["label 2"]
    # cancel leaves the cached traces and no worker
    dock.metric_box.setCurrentText("sum")
    dock.refresh()
    dock.cancel()
    settle(qtbot, dock)
    assert not dock.busy
