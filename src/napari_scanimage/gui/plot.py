"""A pyqtgraph plot linked to the viewer's time axis (the base of the plugin's plot docks).

Curves are kept by name and updated in place (``set_curves``); a vertical cursor line follows
the viewer's time slider — moving only the line, never redrawing curves — and a click on the
plot moves the slider to the nearest time point.  With ``legend_beside`` the legend stands
beside the view box (never over the curves), in as many columns as the plot's height asks, up
to a third of its width; names that do not fit are counted ("+ 12 more").  Otherwise it sits
in the view box's top-left corner (for a few curves with room above them).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyqtgraph as pg
from qtpy.QtCore import Qt
from qtpy.QtWidgets import QSizePolicy, QVBoxLayout

from ._dock import PLOT_MIN_HEIGHT, dock_layout
from ._idle import IdleWhenHidden

__all__ = ["PlotDock", "stack_offsets", "time_axis"]


def time_axis(viewer, image_layer) -> tuple[int, float] | None:
    """(world axis, step in world units) of ``image_layer``'s time axis, or None."""
    if image_layer is None or "t" not in tuple(image_layer.axis_labels):
        return None
    k = tuple(image_layer.axis_labels).index("t")
    world = viewer.dims.ndim - image_layer.ndim + k
    return world, float(image_layer.scale[k])


def stack_offsets(curves: dict[str, np.ndarray], hidden=frozenset()) -> dict[str, float]:
    """Offsets lifting each shown curve above the next (the first on top), one robust range
    (1st–99th percentile of the widest curve) × 1.2 apart; hidden curves take no place.
    """
    shown = [n for n in curves if n not in hidden]
    spans = [
        np.subtract(*np.nanpercentile(curves[n], [99, 1]))
        for n in shown
        if np.isfinite(curves[n]).any()
    ]
    step = 1.2 * max(spans, default=0.0)
    step = step if np.isfinite(step) and step > 0 else 1.0
    return {n: (len(shown) - 1 - k) * step for k, n in enumerate(shown)}


class PlotDock(IdleWhenHidden):
    """A plot whose x axis is the recording's time (s), with a cursor at the viewer's time."""

    def __init__(
        self,
        napari_viewer,
        *,
        y_label: str = "",
        x_label: str = "time (s)",
        scroll: bool = False,
        legend_beside: bool = False,
    ):
        super().__init__()
        self.viewer = napari_viewer
        pg.setConfigOptions(antialias=False)
        self.plot = pg.PlotWidget(background="k")
        self.plot.setLabel("bottom", x_label)
        self.plot.setLabel("left", y_label)
        self.plot.showGrid(x=True, y=True, alpha=0.2)
        self.plot.getAxis("left").enableAutoSIPrefix(False)  # 0.4, not "400 m"
        self.plot.setMinimumHeight(PLOT_MIN_HEIGHT)
        self.legend_beside = legend_beside
        self._legend_grid: tuple = ()  # (entries, rows, columns) the legend is laid out for
        if legend_beside:
            self._legend_beside()
        else:
            self.legend = self.plot.addLegend(offset=(5, 5), labelTextSize="8pt")
        self.legend.sigSampleClicked.connect(self._legend_sample_clicked)
        self.offsets: dict[str, float] = {}
        self.time_cursor = pg.InfiniteLine(
            angle=90, movable=False, pen=pg.mkPen("#ffffff", width=1, style=Qt.PenStyle.DashLine)
        )
        self.plot.addItem(self.time_cursor, ignoreBounds=True)
        self.curves: dict[str, pg.PlotDataItem] = {}
        self.bands: list = []
        self.times = np.zeros(0)
        self.image_layer = None
        # a dock of its own scrolls (see ._dock); a plot inside another dock does not
        self.layout_ = dock_layout(self) if scroll else QVBoxLayout(self)
        self.layout_.setContentsMargins(2, 2, 2, 2)
        self.layout_.addWidget(self.plot, 1)
        self.plot.scene().sigMouseClicked.connect(self._clicked)
        napari_viewer.dims.events.current_step.connect(self._move_cursor)

    # -- curves -----------------------------------------------------------------------------
    def set_curves(
        self,
        x: np.ndarray,
        curves: dict[str, np.ndarray],
        colours: Sequence[str] | None = None,
        bands: dict[str, tuple[np.ndarray, np.ndarray]] | None = None,
        hidden: set[str] | frozenset = frozenset(),
        highlighted: set[str] | frozenset = frozenset(),
    ) -> None:
        """Show these curves (name → y over ``x``), reusing the existing curve items in order;
        the legend is rebuilt only when the names change.  ``hidden`` curves keep their
        legend entry (click it to show them again); ``highlighted`` ones are drawn thicker,
        on top.  With :attr:`stacked` each shown curve is lifted by an offset
        (:attr:`offsets`) so they do not overlap.
        """
        self.times = np.asarray(x, np.float64)
        self._shown = (self.times, dict(curves), colours, bands, set(hidden), set(highlighted))
        items = list(self.curves.values())
        new: dict[str, pg.PlotDataItem] = {}
        self.offsets = stack_offsets(curves, hidden) if self.stacked else {}
        for k, (name, y) in enumerate(curves.items()):
            bold = name in highlighted
            pen = pg.mkPen(
                colours[k] if colours is not None else pg.intColor(k), width=3.0 if bold else 1.5
            )
            y = np.asarray(y, np.float64) + self.offsets.get(name, 0.0)
            if k < len(items):
                item = items[k]
                item.setData(self.times, y)
                item.setPen(pen)
            else:
                item = self.plot.plot(self.times, y, pen=pen)
            item.opts["name"] = name
            item.setVisible(name not in hidden)
            item.setZValue(2 if bold else 1)
            new[name] = item
        for item in items[len(new) :]:
            self.plot.removeItem(item)
        if list(new) != list(self.curves):
            self.legend.clear()
            for name, item in new.items():
                self.legend.addItem(item, name)
                label = self.legend.items[-1][1]
                label.mouseClickEvent = lambda ev, n=name: self._legend_name_clicked(ev, n)
            self._legend_grid = ()
        for sample, label in self.legend.items:  # hidden curves: greyed legend names
            label.setAttr("color", "#777777" if not sample.item.isVisible() else "#dddddd")
            label.setText(label.text)
        self.curves = new
        self._lay_out_legend()
        # stacked: the names at their baselines (values are then read as offsets)
        self.plot.getAxis("left").setTicks(
            [[(lift, name) for name, lift in self.offsets.items()]] if self.offsets else None
        )
        self._set_bands(bands or {}, colours)
        self._move_cursor()

    def _legend_beside(self) -> None:
        """The legend in a fourth column of the plot's grid, right of the view box and
        top-aligned: over the view box it would hide the curves of a short plot.
        """
        self.legend = pg.LegendItem(labelTextSize="8pt", horSpacing=2, verSpacing=-4)
        self.legend.layout.setContentsMargins(4, 0, 0, 0)
        item = self.plot.getPlotItem()
        item.legend = self.legend  # (where pyqtgraph's plot items look for a legend)
        item.layout.addItem(self.legend, 2, 3)
        item.layout.setAlignment(self.legend, Qt.AlignmentFlag.AlignTop)
        fixed = QSizePolicy.Policy.Fixed  # its entries' size, not the view box's height
        self.legend.setSizePolicy(fixed, fixed)
        self.more = pg.LabelItem("", size="8pt", color="#aaaaaa", justify="left")
        self.more.setToolTip("the ROI list shows and hides every trace")
        item.vb.sigResized.connect(lambda *_: self._lay_out_legend())

    def _lay_out_legend(self) -> None:
        """Entries column by column, as many rows as the view box is tall, at most a third
        of the plot's width; the rest counted in a last "+ n more" line.
        """
        if not self.legend_beside:
            return
        entries = self.legend.items
        vb = self.plot.getPlotItem().vb
        row = max([20.0] + [label.preferredHeight() for _, label in entries]) - 4
        column = 22 + max([0.0] + [label.preferredWidth() for _, label in entries])
        rows = max(int((vb.height() + 4) // row), 1)
        columns = max(int(self.plot.width() / 3 // column), 1)
        if len(entries) <= rows * columns:
            columns = -(-len(entries) // rows)  # all shown: only the columns needed
        fits = len(entries) if len(entries) <= rows * columns else rows * columns - 1
        grid = (len(entries), rows, columns)
        if grid == self._legend_grid:
            return
        self._legend_grid = grid
        layout = self.legend.layout
        for i in range(layout.count() - 1, -1, -1):
            layout.removeAt(i)
        middle = Qt.AlignmentFlag.AlignVCenter
        for k, (sample, label) in enumerate(entries):
            sample.setVisible(k < fits)
            label.setVisible(k < fits)
            if k < fits:
                layout.addItem(sample, k % rows, 2 * (k // rows), middle)
                layout.addItem(label, k % rows, 2 * (k // rows) + 1, middle)
        self.more.setVisible(fits < len(entries))
        if fits < len(entries):
            self.more.setText(f"+ {len(entries) - fits} more")
            layout.addItem(self.more, fits % rows, 2 * (fits // rows), 1, 2)
        layout.invalidate()
        self.legend.updateGeometry()

    def stack_step(self) -> float:
        """The distance between stacked curves (0 when not stacked)."""
        lifts = sorted(set(self.offsets.values()))
        return lifts[1] - lifts[0] if len(lifts) > 1 else 0.0

    @property
    def stacked(self) -> bool:
        return getattr(self, "_stacked", False)

    def set_stacked(self, stacked: bool) -> None:
        """Draw the curves one above the other (or all on one baseline)."""
        self._stacked = bool(stacked)
        if getattr(self, "_shown", None) is not None:
            x, curves, colours, bands, hidden, highlighted = self._shown
            self.set_curves(x, curves, colours, bands, hidden, highlighted)

    def shown_data(self, name: str) -> np.ndarray:
        """The values of curve ``name`` as computed (the stacking offset taken off)."""
        return self.curves[name].getData()[1] - self.offsets.get(name, 0.0)

    def _legend_sample_clicked(self, item) -> None:
        """A click on a legend sample toggled its curve (pyqtgraph); tell the subclass."""
        name = item.opts.get("name")
        if name in self.curves:
            self.curve_toggled(name, item.isVisible())

    def _legend_name_clicked(self, event, name: str) -> None:
        if event.button() == Qt.MouseButton.LeftButton:
            event.accept()
            self.curve_chosen(name)

    def curve_toggled(self, name: str, visible: bool) -> None:
        """The user showed / hid curve ``name`` from the legend (override to follow)."""

    def curve_chosen(self, name: str) -> None:
        """The user clicked curve ``name``'s legend name (override to highlight it)."""

    def _set_bands(self, bands: dict, colours) -> None:
        """Shaded (low, high) bands under the curves of the same names (confidence)."""
        for item in self.bands:
            self.plot.removeItem(item)
        self.bands = []
        names = list(self.curves)
        for name, (low, high) in bands.items():
            k = names.index(name) if name in names else 0
            if name in names and not self.curves[name].isVisible():
                continue
            lift = self.offsets.get(name, 0.0)
            low, high = np.asarray(low) + lift, np.asarray(high) + lift
            colour = pg.mkColor(colours[k] if colours is not None else pg.intColor(k))
            colour.setAlpha(60)
            ok = np.isfinite(low) & np.isfinite(high)
            lo = pg.PlotDataItem(self.times[ok], np.asarray(low)[ok])
            hi = pg.PlotDataItem(self.times[ok], np.asarray(high)[ok])
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
        if row is None or not len(self.times):
            self.time_cursor.setVisible(False)
            return
        self.time_cursor.setVisible(True)
        self.time_cursor.setValue(float(self.times[min(max(row, 0), len(self.times) - 1)]))

    def go_to_time(self, seconds: float) -> int | None:
        """Move the viewer to the time point nearest ``seconds``; returns its row."""
        found = self._time_axis()
        if found is None or not len(self.times):
            return None
        row = int(np.argmin(np.abs(self.times - seconds)))
        axis, step = found
        self.viewer.dims.set_point(axis, row * step)
        return row

    def _clicked(self, event) -> None:
        if event.button() != Qt.MouseButton.LeftButton:
            return
        vb = self.plot.getPlotItem().vb
        if not vb.sceneBoundingRect().contains(
            event.scenePos()
        ) or self.legend.sceneBoundingRect().contains(event.scenePos()):
            return  # legend clicks show / hide / highlight curves
        self.go_to_time(vb.mapSceneToView(event.scenePos()).x())
