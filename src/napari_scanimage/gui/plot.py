"""A pyqtgraph plot linked to the viewer's time axis (the base of the plugin's plot docks).

Curves are kept by name and updated in place (``set_curves``); a vertical cursor line follows
the viewer's time slider — moving only the line, never redrawing curves — and a click on the
plot moves the slider to the nearest time point.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyqtgraph as pg
from qtpy.QtCore import Qt
from qtpy.QtWidgets import QVBoxLayout, QWidget

from ._dock import PLOT_MIN_HEIGHT, dock_layout
from ._idle import IdleWhenHidden

__all__ = ["PlotDock", "time_axis"]


def time_axis(viewer, image_layer) -> tuple[int, float] | None:
    """(world axis, step in world units) of ``image_layer``'s time axis, or None."""
    if image_layer is None or "t" not in tuple(image_layer.axis_labels):
        return None
    k = tuple(image_layer.axis_labels).index("t")
    world = viewer.dims.ndim - image_layer.ndim + k
    return world, float(image_layer.scale[k])


class PlotDock(IdleWhenHidden, QWidget):
    """A plot whose x axis is the recording's time (s), with a cursor at the viewer's time."""

    def __init__(self, napari_viewer, *, y_label: str = "", x_label: str = "time (s)",
                 scroll: bool = False):
        super().__init__()
        self.viewer = napari_viewer
        pg.setConfigOptions(antialias=False)
        self.plot = pg.PlotWidget(background="k")
        self.plot.setLabel("bottom", x_label)
        self.plot.setLabel("left", y_label)
        self.plot.showGrid(x=True, y=True, alpha=0.2)
        self.plot.getAxis("left").enableAutoSIPrefix(False)  # 0.4, not "400 m"
        self.plot.setMinimumHeight(PLOT_MIN_HEIGHT)
        self.legend = self.plot.addLegend(offset=(5, 5), labelTextSize="8pt")
        self.cursor = pg.InfiniteLine(angle=90, movable=False,
                                      pen=pg.mkPen("#ffffff", width=1, style=Qt.PenStyle.DashLine))
        self.plot.addItem(self.cursor, ignoreBounds=True)
        self.curves: dict[str, pg.PlotDataItem] = {}
        self.bands: list = []
        self.x = np.zeros(0)
        self.image_layer = None
        # a dock of its own scrolls (see ._dock); a plot inside another dock does not
        self.layout_ = dock_layout(self) if scroll else QVBoxLayout(self)
        self.layout_.setContentsMargins(2, 2, 2, 2)
        self.layout_.addWidget(self.plot, 1)
        self.plot.scene().sigMouseClicked.connect(self._clicked)
        napari_viewer.dims.events.current_step.connect(self._move_cursor)

    # -- curves -----------------------------------------------------------------------------
    def set_curves(self, x: np.ndarray, curves: dict[str, np.ndarray],
                   colours: Sequence[str] | None = None,
                   bands: dict[str, tuple[np.ndarray, np.ndarray]] | None = None) -> None:
        """Show these curves (name → y over ``x``), reusing the existing curve items in order;
        the legend is rebuilt only when the names change."""
        self.x = np.asarray(x, np.float64)
        items = list(self.curves.values())
        new: dict[str, pg.PlotDataItem] = {}
        for k, (name, y) in enumerate(curves.items()):
            pen = pg.mkPen(colours[k] if colours is not None else pg.intColor(k), width=1.5)
            if k < len(items):
                item = items[k]
                item.setData(self.x, y)
                item.setPen(pen)
            else:
                item = self.plot.plot(self.x, y, pen=pen)
            item.opts["name"] = name
            new[name] = item
        for item in items[len(new):]:
            self.plot.removeItem(item)
        if list(new) != list(self.curves):
            self.legend.clear()
            for name, item in new.items():
                self.legend.addItem(item, name)
        self.curves = new
        self._set_bands(bands or {}, colours)
        self._move_cursor()

    def _set_bands(self, bands: dict, colours) -> None:
        """Shaded (low, high) bands under the curves of the same names (confidence)."""
        for item in self.bands:
            self.plot.removeItem(item)
        self.bands = []
        names = list(self.curves)
        for name, (low, high) in bands.items():
            k = names.index(name) if name in names else 0
            colour = pg.mkColor(colours[k] if colours is not None else pg.intColor(k))
            colour.setAlpha(60)
            ok = np.isfinite(low) & np.isfinite(high)
            lo = pg.PlotDataItem(self.x[ok], np.asarray(low)[ok])
            hi = pg.PlotDataItem(self.x[ok], np.asarray(high)[ok])
            fill = pg.FillBetweenItem(lo, hi, brush=pg.mkBrush(colour))
            self.plot.addItem(fill)
            self.bands.append(fill)

    # -- time link --------------------------------------------------------------------------
    def _time_axis(self):
        return time_axis(self.viewer, self.image_layer)

    def current_row(self) -> int | None:
        """Time row the viewer shows (in the image layer's frames), or None."""
        found = self._time_axis()
        if found is None:
            return None
        axis, step = found
        return int(round(float(self.viewer.dims.point[axis]) / step)) if step else 0

    def catch_up(self) -> None:
        self._move_cursor()

    def _move_cursor(self, event=None) -> None:
        if self.hidden:
            return
        row = self.current_row()
        if row is None or not len(self.x):
            self.cursor.setVisible(False)
            return
        self.cursor.setVisible(True)
        self.cursor.setValue(float(self.x[min(max(row, 0), len(self.x) - 1)]))

    def go_to_time(self, seconds: float) -> int | None:
        """Move the viewer to the time point nearest ``seconds``; returns its row."""
        found = self._time_axis()
        if found is None or not len(self.x):
            return None
        row = int(np.argmin(np.abs(self.x - seconds)))
        axis, step = found
        self.viewer.dims.set_point(axis, row * step)
        return row

    def _clicked(self, event) -> None:
        if event.button() != Qt.MouseButton.LeftButton:
            return
        vb = self.plot.getPlotItem().vb
        if not vb.sceneBoundingRect().contains(event.scenePos()):
            return
        self.go_to_time(vb.mapSceneToView(event.scenePos()).x())
