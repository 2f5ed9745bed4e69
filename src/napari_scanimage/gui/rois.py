"""ROI dock: the ROIs of a Shapes (or Labels) layer as a list — name, plane, colour — kept in
step with the layer; rename, delete, select ↔ highlight, "all planes", save / load (JSON) and
ImageJ export.

How a layer's ROIs are read (names, colours, flags, the layer's axes) is in
:mod:`napari_scanimage.gui.roi_layers`.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
from qtpy.QtCore import Qt
from qtpy.QtGui import QColor
from qtpy.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QWidget,
)

from ..analysis.colours import next_colour, palette
from ..analysis.rois import RoiSet
from ..errors import ScanImageError
from ._dock import dock_layout, show_rows
from ._labels import (
    delete_labels,
    is_labels,
    label_values,
    mask_layer_data,
    rename_label,
    use_palette,
)
from ._report import report_failure
from .roi_detect import FEATURES_KEY, DetectPanel
from .roi_layers import (
    accepted_rows,
    all_planes_flags,
    edge_colours,
    features_table,
    image_layer_for,
    layer_rois,
    on_roi_axes,
    plane_axis,
    roi_axes,
    roi_names,
    set_trace_shown,
    style_roi_layer,
    trace_shown,
)
from .selection import current_dataset

__all__ = ["RoiDock"]


def _fixed(text: str) -> QTableWidgetItem:
    item = QTableWidgetItem(text)
    item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsEditable)
    return item


def _plane_text(roi) -> str:
    if roi.kind == "mask" and roi.mask is not None and roi.mask.ndim == 3:
        planes = np.flatnonzero(roi.mask.reshape(roi.mask.shape[0], -1).any(axis=1))
        return ", ".join(map(str, planes))
    return "all" if roi.plane is None else str(roi.plane)


class RoiDock(QWidget):
    """List of the ROIs of a Shapes or Labels layer, kept in step with it."""

    def __init__(self, napari_viewer):
        super().__init__()
        self.viewer = napari_viewer
        self.layer_box = QComboBox()
        self.new_button = QPushButton("New ROI layer")
        self.table = QTableWidget(0, 6)
        self.table.setHorizontalHeaderLabels(
            ["name", "plane", "all planes", "colour", "trace", "score"]
        )
        trace = QTableWidgetItem("trace")
        trace.setToolTip("show this ROI's trace in the plot")
        self.table.setHorizontalHeaderItem(4, trace)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        header, rows = self.table.horizontalHeader(), self.table.verticalHeader()
        assert header is not None and rows is not None  # (a table has both headers)
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        rows.setVisible(False)
        show_rows(self.table, 4)
        self.delete_button = QPushButton("Delete")
        self.save_button = QPushButton("Save…")
        self.load_button = QPushButton("Load…")
        self.imagej_button = QPushButton("ImageJ zip…")
        self.names_box = QCheckBox("names")
        self.names_box.setToolTip("show the ROI names on the canvas")
        self.names_box.setChecked(True)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        top = QHBoxLayout()
        top.addWidget(self.layer_box, 1)
        top.addWidget(self.names_box)
        top.addWidget(self.new_button)
        # detection, curation and import: shown on demand, so the list keeps its height
        self.detect_toggle = QPushButton("Detect…")
        self.detect_toggle.setCheckable(True)
        self.detect_toggle.setToolTip("find cells automatically, or import ROIs of other tools")
        top.addWidget(self.detect_toggle)
        buttons = QHBoxLayout()
        for b in (self.delete_button, self.save_button, self.load_button, self.imagej_button):
            buttons.addWidget(b)
        layout = dock_layout(self)
        layout.addLayout(top)
        layout.addWidget(self.table)
        layout.addLayout(buttons)
        layout.addWidget(self.status)
        self._layer = None
        self.detection = DetectPanel(self)  # detect, accept / reject, import
        self.detection.setVisible(False)
        self.detect_toggle.toggled.connect(self.detection.setVisible)
        layout.addWidget(self.detection)
        self._updating = False
        self.layer_box.currentIndexChanged.connect(self._choose_layer)
        self.new_button.clicked.connect(self.new_layer)
        self.names_box.toggled.connect(self.show_names)
        self.delete_button.clicked.connect(self.delete_selected)
        self.save_button.clicked.connect(lambda: self._file_dialog("save"))
        self.load_button.clicked.connect(lambda: self._file_dialog("load"))
        self.imagej_button.clicked.connect(lambda: self._file_dialog("imagej"))
        self.table.itemChanged.connect(self._item_changed)
        self.table.itemSelectionChanged.connect(self._select_shapes)
        napari_viewer.layers.events.inserted.connect(self._refresh_layers)
        napari_viewer.layers.events.removed.connect(self._refresh_layers)
        self._refresh_layers()

    # -- layers ---------------------------------------------------------------------------
    @property
    def layer(self):
        return self._layer

    @property
    def dataset(self):
        """The recording (or multi-ROI field) of the listed ROI layer, else of the active
        layer, else the first shown.
        """
        return current_dataset(self.viewer, self._layer)

    def _refresh_layers(self, event=None) -> None:
        shapes = [
            layer
            for layer in self.viewer.layers
            if layer.__class__.__name__ in ("Shapes", "Labels")
        ]
        self.layer_box.blockSignals(True)
        self.layer_box.clear()
        self.layer_box.addItems([layer.name for layer in shapes])
        if self._layer is not None and self._layer in shapes:
            self.layer_box.setCurrentIndex(shapes.index(self._layer))
        self.layer_box.blockSignals(False)
        self._shapes = shapes
        self._choose_layer()

    def _choose_layer(self, index=None) -> None:
        i = self.layer_box.currentIndex()
        layer = self._shapes[i] if 0 <= i < len(self._shapes) else None
        if layer is self._layer:
            return
        for old, connect in ((self._layer, False), (layer, True)):
            if old is None:
                continue
            pairs = (
                (old.events.data, self._sync_table),
                *(() if is_labels(old) else ((old.events.edge_color, self._sync_table),)),
                (
                    old.events.paint if is_labels(old) else old.events.highlight,
                    self._sync_table if is_labels(old) else self._select_rows,
                ),
                *(((old.events.selected_label, self._select_rows),) if is_labels(old) else ()),
            )
            for emitter, slot in pairs:
                emitter.connect(slot) if connect else emitter.disconnect(slot)
        self._layer = layer
        if layer is not None:
            if is_labels(layer):
                use_palette(layer)
            else:
                self._updating = True
                try:
                    self._ensure_features()
                    style_roi_layer(layer)
                finally:
                    self._updating = False
            self.names_box.setEnabled(not is_labels(layer))
            self.names_box.blockSignals(True)
            self.names_box.setChecked(is_labels(layer) or bool(layer.text.visible))
            self.names_box.blockSignals(False)
        self._sync_table()

    def show_names(self, shown: bool = True) -> None:
        """Show or hide the ROI names on the canvas."""
        layer = self._layer
        if layer is None or is_labels(layer):
            return
        layer.metadata = {**layer.metadata, "roi_names_shown": bool(shown)}
        layer.text.visible = bool(shown)
        self.names_box.blockSignals(True)
        self.names_box.setChecked(bool(shown))
        self.names_box.blockSignals(False)

    def new_layer(self):
        """Add an empty ROI Shapes layer on the recording's axes after time
        (:func:`roi_axes`): ROIs belong to a plane, not to a time.
        """
        ds = self.dataset
        kwargs = roi_axes(image_layer_for(self.viewer, ds))
        layer = self.viewer.add_shapes(
            name="ROIs",
            edge_width=1.5,
            edge_color=palette(1)[0],
            face_color="transparent",
            **kwargs,
        )
        if ds is not None:  # the docks then work on this recording (or field) for it
            layer.metadata["scanimage_dataset"] = ds
        layer.mode = "add_polygon"
        self._refresh_layers()
        self.layer_box.setCurrentIndex(self._shapes.index(layer))
        return layer

    # -- table <-> layer ------------------------------------------------------------------
    def _ensure_features(self) -> None:
        """Give every shape a unique name and each new shape the next palette colour unless
        its own is unique (the ``name`` / ``all_planes`` / ``colour`` / ``show`` features; the
        edge colour is the ROI's colour, so a colour set in napari's layer controls is kept).
        The next shape drawn is already in the next colour.
        """
        layer = self._layer
        if layer is None:
            return
        n = len(layer.data)
        names = roi_names(layer)
        taken: set[str] = set()
        for k, name in enumerate(names):  # new shapes get a fresh, unique name
            while name in taken:
                name = f"roi {k + 1 + len(taken)}"
            names[k] = name
            taken.add(name)
        all_planes = all_planes_flags(layer)
        given = list(layer.features["name"]) if "name" in layer.features else []
        edges = edge_colours(layer)
        old = [k < len(given) and isinstance(given[k], str) and bool(given[k]) for k in range(n)]
        given_colours = [edges[k] if old[k] else None for k in range(n)]
        for k in range(n):  # a shape just drawn keeps its colour only if no other ROI has it
            if given_colours[k] is None:
                unique = edges[k] not in given_colours and edges[k] not in edges[k + 1 :]
                given_colours[k] = (
                    edges[k] if unique else next_colour([c for c in given_colours if c is not None])
                )
        colours = [c for c in given_colours if c is not None]  # (every shape has one now)
        shown = trace_shown(layer)
        columns = {"name": names, "all_planes": all_planes, "colour": colours, "show": shown}
        features = (
            layer.features.assign(**columns)
            if len(layer.features) == n
            else features_table(columns)
        )
        features = features.astype(
            {"name": object, "colour": object, "all_planes": bool, "show": bool}
        )
        if colours != edges and n:
            layer.edge_color = colours
        layer.features = features
        # what the next shape drawn gets (its feature is empty until it is listed here)
        # (an empty name marks it new)
        upcoming = next_colour(colours)
        layer.feature_defaults = {"name": "", "all_planes": False, "colour": upcoming, "show": True}
        with layer.block_update_properties():  # (not a recolouring of the selected shapes)
            layer.current_edge_color = upcoming

    def _sync_table(self, event=None) -> None:
        if self._updating:
            return
        self._updating = True
        try:
            layer = self._layer
            self.table.setRowCount(0)
            self._rois = RoiSet()
            if layer is None:
                self.status.setText("choose or create a Shapes (or Labels) layer for ROIs")
                return
            if not is_labels(layer):
                self._ensure_features()
            ds = self.dataset
            try:
                self._rois = layer_rois(layer, ds, image_layer_for(self.viewer, ds))
            except (ScanImageError, ValueError) as exc:
                self.status.setText(f"ROIs cannot be used: {exc}")
                return
            flags = (
                all_planes_flags(layer)
                if not is_labels(layer)
                else [p is None for p in self._rois.planes]
            )
            shown = trace_shown(layer)
            self.table.setRowCount(len(self._rois))
            for k, roi in enumerate(self._rois):
                self.table.setItem(k, 0, QTableWidgetItem(roi.name))
                self.table.setItem(k, 1, _fixed(_plane_text(roi)))
                check = _fixed("")
                if not is_labels(layer):  # a label's planes are where it is painted
                    check.setFlags(check.flags() | Qt.ItemFlag.ItemIsUserCheckable)
                check.setCheckState(Qt.CheckState.Checked if flags[k] else Qt.CheckState.Unchecked)
                self.table.setItem(k, 2, check)
                colour = _fixed("")
                colour.setBackground(QColor(roi.colour))
                colour.setToolTip(roi.colour)
                self.table.setItem(k, 3, colour)
                show = _fixed("")
                show.setFlags(show.flags() | Qt.ItemFlag.ItemIsUserCheckable)
                show.setCheckState(Qt.CheckState.Checked if shown[k] else Qt.CheckState.Unchecked)
                self.table.setItem(k, 4, show)
            self._show_scores(layer)
            self.status.setText(f"{len(self._rois)} ROI(s) in {layer.name}")
        finally:
            self._updating = False
            if hasattr(self, "detection"):
                self.detection.refresh()

    def _show_scores(self, layer) -> None:
        """The score column: detected / imported ROIs' scores (hidden for other layers)."""
        features = layer.metadata.get(FEATURES_KEY) if is_labels(layer) else None
        self.table.setColumnHidden(5, not features)
        if not features:
            return
        for k, value in enumerate(label_values(layer)):
            score = features.get(value, {}).get("score")
            self.table.setItem(k, 5, _fixed("" if score is None else f"{score:.3g}"))

    def _item_changed(self, item: QTableWidgetItem) -> None:
        if self._updating or self._layer is None:
            return
        k = item.row()
        names = self._rois.names
        if item.column() == 4:
            set_trace_shown(self._layer, k, item.checkState() == Qt.CheckState.Checked)
            self._sync_table()
            return
        if item.column() == 0 and is_labels(self._layer):
            new = item.text().strip()
            if not new or new in set(names) - {names[k]}:
                self.status.setText(f"name {new!r} is empty or taken")
                self._sync_table()
                return
            rename_label(self._layer, label_values(self._layer)[k], new)
            self._layer.events.paint()  # listeners (trace plot) refresh
            self._sync_table()
            return
        features = self._layer.features.copy()
        if item.column() == 0:
            new = item.text().strip()
            if not new or new in set(names) - {names[k]}:
                self.status.setText(f"name {new!r} is empty or taken")
                self._sync_table()
                return
            features.loc[k, "name"] = new
        elif item.column() == 2:
            features.loc[k, "all_planes"] = item.checkState() == Qt.CheckState.Checked
        else:
            return
        self._layer.features = features
        self._layer.events.data(value=self._layer.data)  # listeners (trace plot) refresh
        self._sync_table()

    def rename(self, old: str, new: str) -> None:
        self._cell(old, 0).setText(new)

    def set_trace_shown(self, name: str, shown: bool) -> None:
        """Tick / untick ROI ``name``'s trace column, as a user would."""
        self._cell(name, 4).setCheckState(
            Qt.CheckState.Checked if shown else Qt.CheckState.Unchecked
        )

    def set_all_planes(self, name: str, value: bool) -> None:
        self._cell(name, 2).setCheckState(
            Qt.CheckState.Checked if value else Qt.CheckState.Unchecked
        )

    def _cell(self, name: str, column: int) -> QTableWidgetItem:
        """The table cell of ROI ``name`` in ``column``."""
        item = self.table.item(self._rois.names.index(name), column)
        if item is None:  # (every listed ROI has all its cells)
            raise LookupError(f"no cell {column} for ROI {name!r}")
        return item

    def _select_shapes(self) -> None:
        if self._updating or self._layer is None:
            return
        rows = sorted({i.row() for i in self.table.selectedIndexes()})
        if is_labels(self._layer):
            if rows:
                self._layer.selected_label = label_values(self._layer)[rows[0]]
            return
        self._layer.selected_data = set(rows)

    def _select_rows(self, event=None) -> None:
        if self._layer is None:
            return
        if is_labels(self._layer):
            values = label_values(self._layer)
            label = self._layer.selected_label
            selected = {values.index(label)} if label in values else set()
        else:
            selected = set(self._layer.selected_data)
        current = {i.row() for i in self.table.selectedIndexes()}
        if selected == current:
            return
        self._updating = True
        try:
            self.table.clearSelection()
            for row in sorted(selected):
                if row < self.table.rowCount():
                    self.table.selectRow(row)
        finally:
            self._updating = False

    def delete_selected(self) -> None:
        if self._layer is None:
            return
        rows = sorted({i.row() for i in self.table.selectedIndexes()})
        if rows and is_labels(self._layer):
            values = label_values(self._layer)
            delete_labels(self._layer, [values[r] for r in rows])
        elif rows:
            self._layer.selected_data = set(rows)
            self._layer.remove_selected()

    # -- files ----------------------------------------------------------------------------
    def roi_set(self, accepted_only: bool = False) -> RoiSet:
        """The listed layer's ROIs (only those accepted — no detected candidate awaiting
        review — with ``accepted_only``).
        """
        if self._layer is None or self.dataset is None:
            raise ScanImageError("no ROI layer or no recording open")
        rois = layer_rois(self._layer, self.dataset, image_layer_for(self.viewer, self.dataset))
        features = self._layer.metadata.get(FEATURES_KEY) if is_labels(self._layer) else None
        values = label_values(self._layer) if is_labels(self._layer) else []
        rows = accepted_rows(self._layer) if accepted_only else list(range(len(rois)))
        if features or len(rows) < len(rois):
            # detected / imported ROIs keep their features (in saved files too)
            kept = [
                replace(rois[k], features=features.get(values[k])) if features else rois[k]
                for k in rows
            ]
            rois = RoiSet(
                kept,
                frame_shape=rois.frame_shape,
                num_planes=rois.num_planes,
                source=rois.source,
            )
        return rois

    def _accepted(self) -> tuple[RoiSet, str]:
        """The ROIs a file gets (candidates left out) and a note of how many were left out."""
        rois = self.roi_set(accepted_only=True)
        left = len(label_values(self._layer)) - len(rois) if is_labels(self._layer) else 0
        if left and not len(rois):
            raise ScanImageError(
                f"no accepted ROIs to save: {left} detected candidate(s) await review — "
                "select rows and Accept them first"
            )
        return rois, f" ({left} candidate(s) not accepted left out)" if left else ""

    def _left_out(self) -> str:
        """The save dialogs' note: detected candidates not accepted are not written."""
        layer = self._layer
        if not is_labels(layer):
            return ""
        left = len(label_values(layer)) - len(accepted_rows(layer))
        return f" — accepted ROIs only ({left} candidate(s) left out)" if left else ""

    def save(self, path: str | Path) -> None:
        """Write the accepted ROIs (drawn, imported, and detected ones accepted) to JSON."""
        rois, note = self._accepted()
        rois.save(path)
        self.status.setText(f"saved {len(rois)} ROI(s) to {Path(path).name}{note}")

    def export_imagej(self, path: str | Path) -> None:
        rois, note = self._accepted()
        rois.to_imagej(path)
        self.status.setText(f"exported ImageJ ROIs to {Path(path).name}{note}")

    def load(self, path: str | Path):
        """Load ROIs (JSON or ImageJ) into a new ROI layer; refused with a message when they
        do not fit the recording.
        """
        ds = self.dataset
        info = ds.info if ds is not None else None
        kwargs = dict(frame_shape=info.frame_shape, num_planes=info.num_planes) if info else {}
        path = Path(path)
        reader = RoiSet.from_imagej if path.suffix.lower() in (".zip", ".roi") else RoiSet.load
        rois = reader(path, **kwargs)
        masks = RoiSet([r for r in rois if r.vertices is None])
        if len(masks) and info is not None:  # mask ROIs go to a Labels layer
            self._load_masks(masks, info, path.stem)
        if len(masks) == len(rois):
            return self._layer
        layer = self.new_layer()
        image = image_layer_for(self.viewer, ds)
        axis = plane_axis(image, layer.ndim)
        step = list(self.viewer.dims.current_step)[-layer.ndim :]
        data, types = [], []
        for roi in rois:
            if roi.vertices is None:
                continue  # mask ROIs have no outline to draw
            lead = np.array([step[: layer.ndim - 2]] * len(roi.vertices), dtype=float)
            if axis is not None and roi.plane is not None:
                lead[:, axis] = roi.plane
            data.append(np.hstack([lead, roi.vertices]))
            types.append({"mask": "polygon", "line": "path"}.get(roi.kind, roi.kind))
        self._updating = True
        try:
            layer.add(
                data,
                shape_type=types,
                edge_color=[r.colour for r in rois if r.vertices is not None],
            )
        finally:
            self._updating = False
        kept = [r for r in rois if r.vertices is not None]
        layer.features = features_table(
            {
                "name": [r.name for r in kept],
                "all_planes": [r.plane is None for r in kept],
                "colour": [r.colour for r in kept],
                "show": [True] * len(kept),
            }
        )
        self._sync_table()
        return layer

    def add_mask_layer(self, rois: RoiSet, name: str):
        """A Labels layer (label k + 1 for the k-th ROI, in its colour) holding mask ROIs of
        the dock's recording; it becomes the listed layer.
        """
        ds = self.dataset
        if ds is None:
            raise ScanImageError("open a recording first")
        return self._load_masks(rois, ds.info, name, suffix="")

    def _load_masks(self, masks: RoiSet, info, name: str, suffix: str = " labels"):
        """A Labels layer on the ROI axes (see :func:`roi_axes`) holding mask ROIs."""
        data, names = mask_layer_data(masks, info.frame_shape, info.num_planes)
        kwargs = roi_axes(image_layer_for(self.viewer, self.dataset))
        if kwargs:
            data = on_roi_axes(data, kwargs, reduce=np.max)
            kwargs.pop("ndim")
        layer = self.viewer.add_labels(data, name=f"{name}{suffix}", **kwargs)
        layer.metadata = {**layer.metadata, "roi_names": names}
        if self.dataset is not None:  # ROIs of this recording (sessions gather them)
            layer.metadata["scanimage_dataset"] = self.dataset
        use_palette(layer, {k + 1: r.colour for k, r in enumerate(masks)})
        self._refresh_layers()
        self.layer_box.setCurrentIndex(self._shapes.index(layer))
        return layer

    def _file_dialog(self, what: str) -> None:
        try:
            if what == "load":
                path, _ = QFileDialog.getOpenFileName(
                    self, "Load ROIs", "", "ROIs (*.json *.zip *.roi)"
                )
                if path:
                    self.load(path)
            elif what == "save":
                path, _ = QFileDialog.getSaveFileName(
                    self, f"Save ROIs{self._left_out()}", "rois.json", "ROIs (*.json)"
                )
                if path:
                    self.save(path)
            else:
                path, _ = QFileDialog.getSaveFileName(
                    self,
                    f"Export ImageJ ROIs{self._left_out()}",
                    "rois.zip",
                    "ImageJ ROI zip (*.zip)",
                )
                if path:
                    self.export_imagej(path)
        except (ScanImageError, OSError, ValueError) as exc:
            report_failure(self.status, what, exc)
