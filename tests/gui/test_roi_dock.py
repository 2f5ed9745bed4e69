"""ROI dock in a real viewer: list ↔ layer, rename, planes, delete, save / load."""

from __future__ import annotations

import numpy as np
import pytest
from qtpy.QtCore import Qt

from napari_scanimage.analysis.rois import RoiSet
from napari_scanimage.gui.rois import RoiDock
from napari_scanimage.testing.tiff import SyntheticLayout, write_scanimage_tiff

pytestmark = pytest.mark.gui

LAYOUT = SyntheticLayout(
    channels=(1, 2),
    channel_names=("Green", "Red"),
    num_planes=3,
    num_flyback=1,
    num_volumes=4,
    height=24,
    width=32,
)


@pytest.fixture
def viewer_with_recording(make_napari_viewer, tmp_path):
    written = write_scanimage_tiff(tmp_path / "rec.tif", LAYOUT)
    viewer = make_napari_viewer()
    viewer.open(str(written.paths[0]), plugin="napari-scanimage")
    return viewer


def square(z, y, x, size=5):
    return np.array([[z, y, x], [z, y, x + size], [z, y + size, x + size], [z, y + size, x]], float)


def test_roi_dock_lists_edits_and_round_trips(viewer_with_recording, qtbot, tmp_path):
    viewer = viewer_with_recording
    dock = RoiDock(viewer)
    qtbot.addWidget(dock)
    layer = dock.new_layer()
    assert layer.ndim == 3 and dock.layer is layer  # z, y, x: shown at every time
    layer.add([square(1, 2, 3), square(2, 10, 12, 6)], shape_type="rectangle")
    assert dock.table.rowCount() == 2
    assert [dock.table.item(k, 0).text() for k in range(2)] == ["roi 1", "roi 2"]
    assert [dock.table.item(k, 1).text() for k in range(2)] == ["1", "2"]  # drawn planes
    dock.rename("roi 2", "cell A")
    dock.set_all_planes("roi 1", True)
    rois = dock.roi_set()
    assert rois.names == ["roi 1", "cell A"] and rois.planes == [None, 2]
    masks = rois.masks((24, 32), 3).toarray().reshape(2, 3, 24, 32)
    assert masks[0].all(axis=0).sum() == masks[0][0].sum() > 0  # every plane
    assert masks[1][2].sum() > 0 and masks[1][:2].sum() == 0  # plane 2 only
    # select in the list → highlighted in the layer, and back
    dock.table.selectRow(1)
    assert layer.selected_data == {1}
    layer.selected_data = {0}
    layer.events.highlight()
    assert {i.row() for i in dock.table.selectedIndexes()} == {0}
    path = tmp_path / "rois.json"
    dock.save(path)
    loaded = dock.load(path)
    assert roi_names_of(loaded) == ["roi 1", "cell A"]
    again = RoiSet.load(path, frame_shape=(24, 32), num_planes=3)
    np.testing.assert_array_equal(
        again.masks((24, 32), 3).toarray(), rois.masks((24, 32), 3).toarray()
    )
    # delete
    dock.layer_box.setCurrentIndex(0)
    dock.table.selectRow(0)
    dock.delete_selected()
    assert dock.table.rowCount() == 1 and dock.table.item(0, 0).text() == "cell A"


def roi_names_of(layer):
    return list(layer.features["name"])


def test_loading_rois_of_another_frame_shape_is_refused(viewer_with_recording, qtbot, tmp_path):
    other = RoiSet.from_masks({"x": np.ones((10, 10), bool)})
    path = tmp_path / "other.json"
    other.save(path)
    dock = RoiDock(viewer_with_recording)
    qtbot.addWidget(dock)
    with pytest.raises(Exception, match="10×10|10x10|frame"):
        dock.load(path)


def test_labels_layer_rois(viewer_with_recording, qtbot, tmp_path):
    viewer = viewer_with_recording
    data = np.zeros((3, 24, 32), np.int32)  # (z, y, x): aligned with the recording's planes
    data[1, 2:6, 3:9] = 2
    data[0, 10:14, 10:20] = 5
    data[2, 10:14, 10:20] = 5
    labels = viewer.add_labels(data, name="cells")
    dock = RoiDock(viewer)
    qtbot.addWidget(dock)
    dock.layer_box.setCurrentIndex(dock._shapes.index(labels))
    assert dock.layer is labels
    assert [dock.table.item(k, 0).text() for k in range(2)] == ["label 2", "label 5"]
    assert [dock.table.item(k, 1).text() for k in range(2)] == ["1", "0, 2"]
    dock.rename("label 2", "soma")
    rois = dock.roi_set()
    assert rois.names == ["soma", "label 5"]
    dense = rois.masks((24, 32), 3).toarray().reshape(2, 3, 24, 32)
    np.testing.assert_array_equal(dense[0], data == 2)
    np.testing.assert_array_equal(dense[1], data == 5)
    dock.table.selectRow(1)
    assert labels.selected_label == 5
    labels.selected_label = 2
    assert {i.row() for i in dock.table.selectedIndexes()} == {0}
    path = tmp_path / "labels.json"
    dock.save(path)
    loaded = dock.load(path)  # mask ROIs come back as a Labels layer
    assert loaded.__class__.__name__ == "Labels" and dock.layer is loaded
    again = dock.roi_set()
    assert again.names == ["soma", "label 5"]
    assert (again.masks((24, 32), 3) != rois.masks((24, 32), 3)).nnz == 0
    dock.layer_box.setCurrentIndex(dock._shapes.index(labels))
    dock.table.selectRow(1)
    dock.delete_selected()
    assert dock.table.rowCount() == 1 and not (np.asarray(labels.data) == 5).any()


def test_new_rois_get_distinct_colours_shown_everywhere(viewer_with_recording, qtbot, tmp_path):
    """Each ROI drawn takes the next palette colour: in the layer, the list, the names on the
    canvas, the trace plot and the saved file; names can be hidden; a freed colour comes
    back.
    """
    from napari_scanimage.analysis.colours import palette
    from napari_scanimage.gui.traces import TracePlotDock

    viewer = viewer_with_recording
    dock = RoiDock(viewer)
    qtbot.addWidget(dock)
    traces = TracePlotDock(viewer)
    qtbot.addWidget(traces)
    layer = dock.new_layer()
    for k in range(8):  # one at a time, as drawn, with the layer's current colour
        layer.add([square(1, 1 + 2 * k, 1 + 3 * k, 3)], shape_type="rectangle")
    want = palette(8)
    assert len(set(want)) == 8
    edges = [
        "#{:02x}{:02x}{:02x}".format(*(round(255 * c) for c in rgba[:3]))
        for rgba in layer.edge_color
    ]
    assert edges == want
    assert [dock.table.item(k, 3).background().color().name() for k in range(8)] == want
    assert dock.roi_set().colours == want
    # names on the canvas, in the ROI's colour; hidden and shown again with the checkbox
    assert list(layer.text.values) == [f"roi {k + 1}" for k in range(8)]
    np.testing.assert_allclose(
        layer.text.color._values[:, :3], layer.edge_color[:, :3], atol=1 / 255
    )
    assert layer.text.visible and dock.names_box.isChecked()
    dock.names_box.setChecked(False)
    assert not layer.text.visible
    dock.names_box.setChecked(True)
    assert layer.text.visible
    # a colour chosen in napari's layer controls is the ROI's colour from then on
    layer.selected_data = {6}
    layer.current_edge_color = "#ffffff"
    assert dock.table.item(6, 3).background().color().name() == "#ffffff"
    assert dock.roi_set().colours[6] == "#ffffff"
    layer.current_edge_color = want[6]
    layer.selected_data = set()
    # the trace plot draws each curve in its ROI's colour
    qtbot.wait(traces._timer.interval() + 50)
    qtbot.waitUntil(
        lambda: not traces.busy and not traces._timer.isActive() and len(traces.curves) == 8,
        timeout=20000,
    )
    assert [c.opts["pen"].color().name() for c in traces.curves.values()] == want
    # saved and loaded with their colours
    path = tmp_path / "rois.json"
    dock.save(path)
    assert RoiSet.load(path).colours == want
    loaded = dock.load(path)
    assert [dock.table.item(k, 3).background().color().name() for k in range(8)] == want
    assert dock.layer is loaded and list(loaded.features["colour"]) == want
    # delete the third: the next ROI drawn takes its colour
    dock.layer_box.setCurrentIndex(dock._shapes.index(layer))
    dock.table.selectRow(2)
    dock.delete_selected()
    layer.selected_data = set()
    layer.add([square(2, 15, 20, 3)], shape_type="rectangle")
    assert dock.roi_set().colours == want[:2] + want[3:] + [want[2]]


def test_trace_shown_from_the_roi_list_and_labels_colours(viewer_with_recording, qtbot):
    from napari_scanimage.analysis.colours import palette
    from napari_scanimage.gui.traces import TracePlotDock

    viewer = viewer_with_recording
    dock = RoiDock(viewer)
    qtbot.addWidget(dock)
    traces = TracePlotDock(viewer)
    qtbot.addWidget(traces)
    layer = dock.new_layer()
    layer.add([square(1, 2, 3), square(2, 10, 12, 6)], shape_type="rectangle")

    def settle():
        qtbot.wait(traces._timer.interval() + 50)
        qtbot.waitUntil(lambda: not traces.busy and not traces._timer.isActive(), timeout=20000)

    settle()
    assert [c.isVisible() for c in traces.curves.values()] == [True, True]
    dock.set_trace_shown("roi 2", False)  # untick the trace column
    settle()
    assert [c.isVisible() for c in traces.curves.values()] == [True, False]
    assert dock.table.item(1, 4).checkState() == Qt.CheckState.Unchecked
    assert list(layer.features["show"]) == [True, False]
    # a row selected in the list: its ROI selected in the layer, its curve drawn thicker
    dock.table.selectRow(0)
    settle()
    assert [c.opts["pen"].widthF() for c in traces.curves.values()] == [3.0, 1.5]
    # Labels: label v has the v-th palette colour in the layer, the list and the traces
    data = np.zeros((3, 24, 32), np.int32)
    data[1, 2:6, 3:9] = 1
    data[0, 10:14, 10:20] = 3
    labels = viewer.add_labels(data, name="cells")
    dock.layer_box.setCurrentIndex(dock._shapes.index(labels))
    want = [palette(3)[0], palette(3)[2]]
    assert [dock.table.item(k, 3).background().color().name() for k in range(2)] == want
    assert dock.roi_set().colours == want
    traces.select_layer(labels)
    settle()
    assert [c.opts["pen"].color().name() for c in traces.curves.values()] == want
    dock.set_trace_shown("label 3", False)
    settle()
    assert [c.isVisible() for c in traces.curves.values()] == [True, False]


def test_rectangles_drawn_with_the_mouse_take_successive_colours(
    make_napari_viewer, qtbot, tmp_path
):
    """Drawn on the canvas with the mouse: each rectangle is in its own colour while drawn
    and after.
    """
    from qtpy.QtCore import QPoint
    from qtpy.QtTest import QTest

    from napari_scanimage.analysis.colours import palette

    layout = SyntheticLayout(
        channels=(1,), channel_names=("Green",), num_planes=1, num_volumes=3, height=64, width=64
    )
    written = write_scanimage_tiff(tmp_path / "flat.tif", layout)
    viewer = make_napari_viewer(show=True)
    viewer.open(str(written.paths[0]), plugin="napari-scanimage")
    dock = RoiDock(viewer)
    qtbot.addWidget(dock)
    layer = dock.new_layer()
    layer.mode = "add_rectangle"
    canvas = viewer.window._qt_viewer.canvas.native
    qtbot.waitExposed(canvas)
    want = palette(4)
    for k in range(4):
        assert layer.current_edge_color.startswith(want[k])  # the colour it is drawn in
        a = QPoint(int(canvas.width() * (0.3 + 0.1 * k)), int(canvas.height() * (0.3 + 0.1 * k)))
        QTest.mousePress(canvas, Qt.MouseButton.LeftButton, pos=a)
        for t in range(1, 6):
            QTest.mouseMove(canvas, QPoint(a.x() + 5 * t, a.y() + 5 * t))
            qtbot.wait(5)
        QTest.mouseRelease(canvas, Qt.MouseButton.LeftButton, pos=QPoint(a.x() + 25, a.y() + 25))
        qtbot.wait(20)
    assert len(layer.data) == 4 and list(layer.shape_type) == ["rectangle"] * 4
    assert dock.roi_set().colours == want
    assert [dock.table.item(k, 3).background().color().name() for k in range(4)] == want
