"""Detection and import in the ROI dock, in a real viewer: detect → accept two → traces."""

from __future__ import annotations

import numpy as np
import pytest
from qtpy.QtCore import Qt

from napari_scanimage.analysis.rois import RoiSet
from napari_scanimage.gui.roi_layers import layer_rois
from napari_scanimage.gui.rois import RoiDock
from napari_scanimage.gui.traces import TracePlotDock
from napari_scanimage.testing.cells import write_cell_movie

pytestmark = pytest.mark.gui


@pytest.fixture
def cells_viewer(make_napari_viewer, tmp_path):
    movie = write_cell_movie(tmp_path / "cells.tif", num_frames=600, size=96, seed=4)
    viewer = make_napari_viewer()
    viewer.open(str(movie.path), plugin="napari-scanimage")
    return viewer, movie


def click_legend_sample(qtbot, traces, k):
    sample = traces.legend.items[k][0]
    pos = traces.plot.mapFromScene(sample.sceneBoundingRect().center())
    qtbot.mouseClick(traces.plot.viewport(), Qt.MouseButton.LeftButton, pos=pos)
    settle(qtbot, traces)


def settle(qtbot, traces):
    qtbot.wait(traces._timer.interval() + 50)
    qtbot.waitUntil(lambda: not traces.busy and not traces._timer.isActive(), timeout=20000)


def test_detect_accept_two_traces_show_those_two(cells_viewer, qtbot, tmp_path):
    viewer, movie = cells_viewer
    dock = RoiDock(viewer)
    qtbot.addWidget(dock)
    traces = TracePlotDock(viewer)
    qtbot.addWidget(traces)
    panel = dock.detection
    assert panel.detect_button.isEnabled() and panel.channel_box.count() == 1
    assert not panel.accept_button.isEnabled()  # nothing to curate yet
    with qtbot.waitSignal(panel.detect().finished, timeout=60000):
        pass
    layer = dock.layer
    assert layer.name == "detected" and layer.__class__.__name__ == "Labels"
    n = dock.table.rowCount()
    assert movie.score(dock.roi_set()).recall == 1.0  # every active cell listed
    # listed best first, with their scores, coloured as drawn ROIs
    scores = [float(dock.table.item(k, 5).text()) for k in range(n)]
    assert scores == sorted(scores, reverse=True) and not dock.table.isColumnHidden(5)
    from napari_scanimage.analysis.colours import palette

    assert dock.roi_set().colours == palette(n)
    np.testing.assert_allclose(dock.roi_set().features["score"], scores, rtol=1e-2)
    # candidates: no trace shown until accepted
    traces.select_layer(layer)
    settle(qtbot, traces)
    assert not any(c.isVisible() for c in traces.curves.values())
    dock.table.selectRow(0)
    panel.accept_button.click()
    dock.table.selectRow(2)
    panel.accept_button.click()
    settle(qtbot, traces)
    shown = [name for name, c in traces.curves.items() if c.isVisible()]
    assert shown == ["cell 1", "cell 3"]
    assert "2 of" in panel.status.text()
    # the legend lists the accepted ROIs only, not the candidates left
    assert [label.text for _, label in traces.legend.items] == ["cell 1", "cell 3"]
    # an accepted ROI hidden from the legend keeps its (greyed) entry
    traces.resize(700, 400)
    traces.show()
    qtbot.waitExposed(traces)
    qtbot.wait(50)
    click_legend_sample(qtbot, traces, 1)
    assert [label.text for _, label in traces.legend.items] == ["cell 1", "cell 3"]
    assert not traces.curves["cell 3"].isVisible()
    assert traces.legend.items[1][1].opts["color"] == "#777777"
    click_legend_sample(qtbot, traces, 1)
    assert traces.curves["cell 3"].isVisible()
    # saving writes the accepted ROIs, and says the candidates were left out
    saved = tmp_path / "rois.json"
    dock.save(saved)
    assert RoiSet.load(saved).names == ["cell 1", "cell 3"]
    assert f"{n - 2} candidate" in dock.status.text()
    # a session keeps the same ROIs
    assert traces.session().roi_set.names == ["cell 1", "cell 3"]
    traces.save_session(tmp_path / "s.nsession.json")
    assert f"{n - 2} candidate" in traces.status.text()
    # their traces are those of the ROIs' pixels: the accepted cells' activity
    assert all(np.isfinite(traces.curves[name].yData).all() for name in shown)
    # reject removes an ROI from the layer and the list
    dock.table.selectRow(1)
    panel.reject_button.click()
    assert dock.table.rowCount() == n - 1
    assert "cell 2" not in dock.roi_set().names


def test_import_buttons_read_and_refuse_with_messages(cells_viewer, qtbot, tmp_path):
    viewer, movie = cells_viewer
    dock = RoiDock(viewer)
    qtbot.addWidget(dock)
    labels = np.zeros((96, 96), np.uint16)
    labels[movie.masks[0]] = 5
    labels[movie.masks[1]] = 9
    np.save(tmp_path / "rec_seg.npy", {"masks": labels}, allow_pickle=True)
    layer = dock.detection.import_rois("cellpose", tmp_path / "rec_seg.npy")
    assert dock.layer is layer and dock.roi_set().names == ["cellpose 5", "cellpose 9"]
    dense = dock.roi_set().masks((96, 96), 1).toarray().reshape(2, 96, 96)
    np.testing.assert_array_equal(dense, movie.masks[:2])
    # another frame shape: refused, said in the status line
    small = np.zeros((50, 50), np.uint16)
    small[10:20, 10:20] = 1
    np.save(tmp_path / "small_seg.npy", {"masks": small}, allow_pickle=True)
    from napari_scanimage.errors import SelectionError

    with pytest.raises(SelectionError, match="50×50"):
        dock.detection.import_rois("cellpose", tmp_path / "small_seg.npy")
    message = dock.detection.report_error("cellpose import", SelectionError("50×50 frames"))
    assert "50×50" in message and "50×50" in dock.detection.status.text()
    assert RoiSet.from_cellpose(tmp_path / "rec_seg.npy").names == dock.roi_set().names


def test_detection_panel_fits_the_roi_dock_at_1280x800(make_napari_viewer, qtbot):
    """Shown with the "Detect…" button, the panel's controls fit the dock's width (its first
    form, one row of labelled settings, needed a sideways scroll bar).
    """
    from napari_scanimage.gui._dock import dock_scroll
    from napari_scanimage.gui.demo import add_docks, arrange_docks
    from napari_scanimage.sample import sample_path

    viewer = make_napari_viewer(show=True)
    viewer.open(str(sample_path("volume_2ch")), plugin="napari-scanimage")
    docks = add_docks(viewer)
    window = viewer.window._qt_window
    window.resize(1280, 800)
    qtbot.wait(100)
    arrange_docks(viewer, docks)
    dock = docks["ROIs"]
    assert not dock.detection.isVisible()
    dock.detect_toggle.click()
    qtbot.wait(200)
    assert dock.detection.isVisible() and dock.detection.detect_button.isVisible()
    assert not dock_scroll(dock).horizontalScrollBar().isVisible()
    # the diameter box shows its whole text ("diameter auto" was cut to "meter auto")
    spin = dock.detection.diameter
    edit = spin.lineEdit()
    assert edit.fontMetrics().horizontalAdvance(edit.text()) <= edit.width()
    assert [a.text() for a in dock.detection.import_actions.values()] == [
        "suite2p…",
        "CaImAn…",
        "cellpose…",
    ]


def test_session_holds_drawn_and_accepted_detected_rois(cells_viewer, qtbot, tmp_path):
    """Drawn outlines and accepted detected masks live in two layers; the session saved from
    the Traces dock holds both (a review found only the traced layer's ROIs came back) and
    reopens them in a Shapes and a Labels layer.
    """
    viewer, movie = cells_viewer
    dock = RoiDock(viewer)
    qtbot.addWidget(dock)
    traces = TracePlotDock(viewer)
    qtbot.addWidget(traces)
    drawn = dock.new_layer()
    drawn.add(
        [
            np.array([[5, 5], [5, 15], [15, 15], [15, 5]]),
            np.array([[30, 30], [30, 40], [40, 40], [40, 30]]),
        ],
        shape_type="rectangle",
    )
    with qtbot.waitSignal(dock.detection.detect().finished, timeout=60000):
        pass
    n = dock.table.rowCount()
    dock.table.selectRow(0)
    dock.detection.accept_button.click()
    traces.select_layer(drawn)
    settle(qtbot, traces)
    drawn_names = layer_rois(drawn, None).names
    path = traces.save_session(tmp_path / "both.nsession.json")
    from napari_scanimage.session import Session

    saved = Session.load(path).roi_set
    assert saved.names == [*drawn_names, "cell 1"]
    assert [r.vertices is None for r in saved] == [False, False, True]
    assert f"{n - 1} candidate" in traces.status.text()
    # reopened: outlines and the mask in layers of their own
    viewer.layers.clear()
    viewer.open(str(path), plugin="napari-scanimage")
    kinds = sorted(
        (
            layer.__class__.__name__,
            len(layer.data) if layer.__class__.__name__ == "Shapes" else int(layer.data.max()),
        )
        for layer in viewer.layers
        if layer.__class__.__name__ in ("Shapes", "Labels")
    )
    assert kinds == [("Labels", 1), ("Shapes", 2)]
