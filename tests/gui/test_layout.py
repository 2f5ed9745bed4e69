"""The docks fit the screen: all seven in a 1920x1080 window (added from the Plugins menu) and
in the demo layout at 1280x800, with plots tall enough to read and axis labels not cut; a
multi-ROI recording opens with every field in view.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
import pytest
from qtpy.QtCore import QPointF, QRectF
from qtpy.QtWidgets import QApplication, QTableWidget

from napari_scanimage.gui._dock import dock_scroll
from napari_scanimage.gui.demo import add_docks, arrange_docks
from napari_scanimage.sample import sample_path

pytestmark = pytest.mark.gui

NAMES = ("Selection", "Metadata", "ROIs", "Registration", "FLIM", "Phasor", "Traces")


def _plots(widget) -> list[pg.PlotWidget]:
    return [p for p in widget.findChildren(pg.PlotWidget) if p.isVisibleTo(widget)]


def _cut_labels(plot: pg.PlotWidget) -> list[str]:
    """Axis labels whose text does not lie wholly inside their axis (cut by a short plot)."""
    cut = []
    for name in ("left", "bottom"):
        axis = plot.getAxis(name)
        if (
            not axis.isVisible()
            or not axis.label.isVisible()
            or not axis.label.toPlainText().strip()
        ):
            continue
        margin = axis.label.document().documentMargin()  # blank padding around the text
        text = axis.label.boundingRect().adjusted(margin, margin, -margin, -margin)
        label = axis.label.mapRectToScene(text)
        inside = axis.mapRectToScene(QRectF(0, 0, axis.size().width(), axis.size().height()))
        if not inside.adjusted(-1, -1, 1, 1).contains(label):
            cut.append(axis.label.toPlainText())
    return cut


def _check_docks(qtbot, frames: dict, min_plot: int) -> dict:
    """Raise each dock in turn (as a click on its tab does); return {name: [plot heights]}
    after checking the heights, axis labels and tables.
    """
    heights = {}
    for name, frame in frames.items():
        frame.raise_()
        qtbot.wait(50)
        inner = frame.widget()
        heights[name] = [p.height() for p in _plots(inner)]
        for plot in _plots(inner):
            assert plot.height() >= min_plot, (name, plot.height())
            assert _cut_labels(plot) == [], name
        for table in inner.findChildren(QTableWidget):
            row = table.verticalHeader().defaultSectionSize()
            assert table.viewport().height() >= 4 * row, (name, table.viewport().height())
        if min_plot >= 120:  # at 1080p no dock's controls are cut at the right edge
            scroll = dock_scroll(inner)
            assert scroll is None or not scroll.horizontalScrollBar().isVisible(), name
    return heights


def test_seven_docks_from_the_plugins_menu_fit_1080p(make_napari_viewer, qtbot):
    """Opened one by one from Plugins → ScanImage, the docks leave a window that fits a
    1920x1080 screen, and every plot is at least 120 px tall with its labels whole.
    """
    screen = QApplication.primaryScreen().geometry()
    assert (screen.width(), screen.height()) == (1920, 1080)  # pytest-xvfb's screen
    viewer = make_napari_viewer(show=True)
    viewer.open(str(sample_path("flim_2ch")), plugin="napari-scanimage")
    for name in NAMES:
        viewer.window.add_plugin_dock_widget("napari-scanimage", name)
        qtbot.wait(20)
    window = viewer.window._qt_window
    window.resize(1920, 1080)  # maximised (Xvfb has no window manager to do it)
    qtbot.wait(200)
    frame = window.frameGeometry()
    assert frame.width() <= 1920 and frame.height() <= 1080
    hint = window.minimumSizeHint()
    assert hint.width() <= 1920 and hint.height() <= 1080
    frames = {
        name: viewer.window.dock_widgets[f"{name} (napari-scanimage)"].parentWidget()
        for name in NAMES
    }
    # stacked seven high each would get ~130 px: the docks share two tab groups instead
    assert len({frozenset([f, *window.tabifiedDockWidgets(f)]) for f in frames.values()}) == 2
    heights = _check_docks(qtbot, frames, 120)
    assert len(heights["FLIM"]) == 2 and len(heights["Phasor"]) == 1
    assert heights["Traces"] and heights["Registration"]


def test_demo_layout_fits_1280x800(make_napari_viewer, qtbot):
    """The demo's layout in a 1280x800 window: the window is not held larger, and the plots
    are at least 100 px tall with their labels whole.
    """
    viewer = make_napari_viewer(show=True)
    viewer.open(str(sample_path("volume_2ch")), plugin="napari-scanimage")
    docks = add_docks(viewer)
    window = viewer.window._qt_window
    window.resize(1280, 800)
    qtbot.wait(100)
    arrange_docks(viewer, docks)
    qtbot.wait(200)
    assert (window.width(), window.height()) == (1280, 800)
    hint = window.minimumSizeHint()
    assert hint.width() <= 1280 and hint.height() <= 800
    frames = {name: dock.parentWidget() for name, dock in docks.items()}
    _check_docks(qtbot, frames, 100)
    # what the demo shows first: the traces under the canvas, the ROI list and, for a TIFF
    # recording, the registration (the decay fit for a .siff one)
    arrange_docks(viewer, docks)
    qtbot.wait(100)
    traces = docks["Traces"].plot
    assert traces.visibleRegion().boundingRect().height() >= 100
    assert docks["Registration"].shift_plot.plot.visibleRegion().boundingRect().height() >= 100


def test_multi_roi_recording_opens_with_every_field_in_view(make_napari_viewer, qtbot):
    """Napari fits the view to the first layer it adds; a multi-ROI recording's fields are
    all on the canvas after opening.
    """
    viewer = make_napari_viewer(show=True)
    viewer.window._qt_window.resize(1280, 800)
    qtbot.wait(50)
    viewer.open(str(sample_path("mroi_3field")), plugin="napari-scanimage")
    qtbot.wait(50)
    fields = {layer.metadata["scanimage"]["field"] for layer in viewer.layers}
    assert len(fields) == 3
    height, width = viewer.window._qt_viewer.canvas.size
    centre = np.asarray(viewer.scene.camera.center[-2:])
    half = np.array([height, width]) / (2 * viewer.scene.camera.zoom)
    for layer in viewer.layers:
        lo, hi = layer.extent.world[:, -2:]
        assert np.all(lo >= centre - half) and np.all(hi <= centre + half), layer.name
    # and the view is fitted, not merely zoomed out: the fields span most of the canvas
    lo = np.min([layer.extent.world[0, -1] for layer in viewer.layers])
    hi = np.max([layer.extent.world[1, -1] for layer in viewer.layers])
    assert (hi - lo) * viewer.scene.camera.zoom > 0.8 * width


def _legend_and_curves(plot: pg.PlotWidget, curves) -> tuple[QRectF, QRectF]:
    """The legend's scene rect and the scene rect the shown curves' data cover."""
    vb = plot.getPlotItem().vb
    data = QRectF()
    for curve in curves:
        if curve.isVisible():
            x, y = curve.getData()
            low = vb.mapViewToScene(QPointF(float(np.nanmin(x)), float(np.nanmin(y))))
            high = vb.mapViewToScene(QPointF(float(np.nanmax(x)), float(np.nanmax(y))))
            data = data.united(QRectF(low, high).normalized())
    return plot.getPlotItem().legend.sceneBoundingRect(), data.intersected(vb.sceneBoundingRect())


@pytest.mark.parametrize("count", [2, 30])
def test_traces_legend_leaves_the_curves_readable_at_1280x800(make_napari_viewer, qtbot, count):
    """In the demo layout at 1280x800 the Traces legend (2 or 30 ROIs) covers no curve and
    lies whole in the plot.
    """
    viewer = make_napari_viewer(show=True)
    viewer.open(str(sample_path("volume_2ch")), plugin="napari-scanimage")
    docks = add_docks(viewer)
    window = viewer.window._qt_window
    window.resize(1280, 800)
    qtbot.wait(100)
    arrange_docks(viewer, docks)
    layer = docks["ROIs"].new_layer()
    z = viewer.dims.current_step[list(viewer.dims.axis_labels).index("z")]
    lead = [0.0] * (layer.ndim - 3) + [float(z)]
    squares = [
        np.array([[*lead, y, x], [*lead, y, x + 6], [*lead, y + 6, x + 6], [*lead, y + 6, x]])
        for y, x in [(4 + 8 * (k // 6), 4 + 8 * (k % 6)) for k in range(count)]
    ]
    layer.add(squares, shape_type="rectangle")
    traces = docks["Traces"]
    traces.select_layer(layer)
    qtbot.wait(traces._timer.interval() + 50)
    qtbot.waitUntil(lambda: not traces.busy and not traces._timer.isActive(), timeout=60000)
    qtbot.wait(200)
    assert len(traces.legend.items) == count
    for stacked in (False, True):
        traces.set_stacked(stacked)
        qtbot.wait(100)
        legend, data = _legend_and_curves(traces.plot, traces.curves.values())
        assert not data.isEmpty()
        assert not legend.intersects(data), (stacked, legend, data)
        view = traces.plot.mapToScene(traces.plot.viewport().rect()).boundingRect()
        assert view.adjusted(-1, -1, 1, 1).contains(legend), (legend, view)


def _visible_world(viewer) -> tuple[np.ndarray, np.ndarray]:
    """The (y, x) world rectangle the canvas shows: its corners (lo, hi)."""
    height, width = viewer.window._qt_viewer.canvas.size
    centre = np.asarray(viewer.scene.camera.center[-2:])
    half = np.array([height, width]) / (2 * viewer.scene.camera.zoom)
    return centre - half, centre + half


def _show_at(viewer, docks: dict, qtbot, size: tuple[int, int]) -> None:
    """Show the window at ``size`` (maximised on that screen) and the demo's dock layout, as
    ``napari-scanimage demo`` does, and let the layout settle.
    """
    window = viewer.window._qt_window
    window.showMaximized()
    window.move(0, 0)
    window.resize(*size)  # Xvfb has no window manager to maximise it
    qtbot.wait(300)
    arrange_docks(viewer, docks)
    qtbot.wait(300)
    assert (window.width(), window.height()) == size


@pytest.mark.parametrize("size", [(1280, 800), (1920, 1080)])
def test_whole_frame_in_view_after_the_docks_are_added(make_napari_viewer, qtbot, size):
    """The docks take room from the canvas; once they are placed the view is fitted again, so
    the whole frame is on show, and fills most of the canvas.  A later zoom by the user is kept
    when the window is resized.
    """
    viewer = make_napari_viewer(show=True)
    viewer.open(str(sample_path("volume_2ch")), plugin="napari-scanimage")
    docks = add_docks(viewer)
    _show_at(viewer, docks, qtbot, size)
    lo, hi = _visible_world(viewer)
    extent = viewer.layers.extent.world[:, -2:]
    assert np.all(extent[0] >= lo - 1e-6) and np.all(extent[1] <= hi + 1e-6), (extent, lo, hi)
    height, width = viewer.window._qt_viewer.canvas.size
    span = (extent[1] - extent[0]) * viewer.scene.camera.zoom
    assert max(span[0] / height, span[1] / width) > 0.8
    # the user zooms in: resizing the window afterwards does not undo it
    viewer.scene.camera.zoom = 3 * viewer.scene.camera.zoom
    zoom = viewer.scene.camera.zoom
    viewer.window._qt_window.resize(size[0] - 100, size[1] - 50)
    qtbot.wait(200)
    assert viewer.scene.camera.zoom == pytest.approx(zoom)


def _item_scene_rect(widget) -> QRectF:
    """Where a widget of a dock lies, in the coordinates of ``plot``'s window (for overlaps)."""
    from qtpy.QtCore import QPoint

    top_left = widget.mapTo(widget.window(), QPoint(0, 0))
    return QRectF(top_left.x(), top_left.y(), widget.width(), widget.height())


def _axis_rect_in_window(plot: pg.PlotWidget, name: str) -> QRectF:
    """The axis' label and ticks (its whole item), in window coordinates."""
    from qtpy.QtCore import QPoint

    axis = plot.getAxis(name)
    scene = axis.mapRectToScene(QRectF(0, 0, axis.size().width(), axis.size().height()))
    view = plot.mapFromScene(scene).boundingRect()
    top_left = plot.viewport().mapTo(plot.window(), QPoint(view.x(), view.y()))
    return QRectF(top_left.x(), top_left.y(), view.width(), view.height())


@pytest.mark.parametrize("size", [(1280, 800), (1920, 1080)])
def test_phasor_axis_label_whole_and_clear_of_the_buttons(make_napari_viewer, qtbot, size):
    """After a phasor is computed the g axis carries the frequency and harmonic; the label lies
    whole inside its axis and the cursor buttons do not cover the axis.
    """
    viewer = make_napari_viewer(show=True)
    viewer.open(str(sample_path("flim_2ch")), plugin="napari-scanimage")
    docks = add_docks(viewer)
    _show_at(viewer, docks, qtbot, size)
    phasor = docks["Phasor"]
    phasor.parentWidget().raise_()
    qtbot.wait(50)
    phasor.run()
    qtbot.waitUntil(lambda: phasor.image is not None and not phasor.busy, timeout=60_000)
    qtbot.wait(200)
    label = phasor.plot.getAxis("bottom").label.toPlainText()
    assert "MHz" in label and "harmonic 1" in label, label
    assert _cut_labels(phasor.plot) == []
    axis = _axis_rect_in_window(phasor.plot, "bottom")
    for button in (phasor.add_cursor_button, phasor.labels_button):
        assert button.isVisible()
        assert not _item_scene_rect(button).intersects(axis), (button.text(), axis)
    # the plot's widgets are laid out one under the other, not drawn over one another
    plot = _item_scene_rect(phasor.plot)
    for widget in (phasor.status, phasor.add_cursor_button):
        assert not _item_scene_rect(widget).intersects(plot), widget
    if size[1] >= 1080:  # there the whole plot, axis included, is on show without scrolling
        shown = _item_scene_rect(dock_scroll(phasor).viewport())
        assert shown.contains(axis), (axis, shown)


@pytest.mark.parametrize("size", [(1280, 800), (1920, 1080)])
def test_selection_dock_controls_all_on_show(make_napari_viewer, qtbot, size):
    """In the demo layout the Selection dock shows every control, the Auto-refresh check box
    included, without scrolling.
    """
    viewer = make_napari_viewer(show=True)
    viewer.open(str(sample_path("volume_2ch")), plugin="napari-scanimage")
    docks = add_docks(viewer)
    _show_at(viewer, docks, qtbot, size)
    selection = docks["Selection"]
    selection.parentWidget().raise_()
    qtbot.wait(100)
    scroll = dock_scroll(selection)
    shown = _item_scene_rect(scroll.viewport())
    for widget in (selection.apply_button, selection.refresh_button, selection.auto_refresh):
        assert shown.contains(_item_scene_rect(widget)), (widget, shown)
    assert not scroll.verticalScrollBar().isVisible(), scroll.viewport().height()
