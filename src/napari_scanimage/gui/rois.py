"""ROI dock: the ROIs of a Shapes (or Labels) layer as a list — name, plane, colour — kept in
step with the layer; rename, delete, select ↔ highlight, "all planes", save / load (JSON) and
ImageJ export.

ROI names and the all-planes flag live in the Shapes layer's ``features`` ("name",
"all_planes"), so they travel with the shapes; :func:`layer_rois` turns a layer into a
:class:`~napari_scanimage.analysis.rois.RoiSet` for traces, saving and exports.
"""

from __future__ import annotations

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

from ..analysis.colours import next_colour, palette, to_hex
from ..analysis.rois import RoiSet
from ..errors import ScanImageError
from ._dock import dock_layout, show_rows
from ._labels import (
    HIDDEN_KEY,
    delete_labels,
    is_labels,
    label_colours,
    label_names,
    label_values,
    mask_layer_data,
    rename_label,
    use_palette,
)
from ._report import report_failure
from .selection import current_dataset

__all__ = ["RoiDock", "image_layer_for", "layer_rois", "roi_names", "set_trace_shown",
           "trace_shown"]


def image_layer_for(viewer, dataset=None):
    """The first image layer of ``dataset`` (or of any recording) in the viewer."""
    for layer in viewer.layers:
        ds = layer.metadata.get("scanimage_dataset")
        if ds is not None and (dataset is None or ds is dataset):
            return layer
    return None


def roi_names(layer) -> list[str]:
    """Names of a Shapes layer's ROIs ("roi k" where the features have none)."""
    n = len(layer.data)
    names = list(layer.features["name"]) if "name" in layer.features else []
    return [str(names[k]) if k < len(names) and isinstance(names[k], str) and names[k]
            else f"roi {k + 1}" for k in range(n)]


def _flags(layer) -> list[bool]:
    """The "all planes" flag of each shape (False where unset: new shapes get NaN)."""
    values = list(layer.features["all_planes"]) if "all_planes" in layer.features else []
    return [k < len(values) and isinstance(values[k], (bool, np.bool_)) and bool(values[k])
            for k in range(len(layer.data))]


def _colours(layer) -> list[str]:
    """The edge colour ("#rrggbb") of each shape."""
    rgba = np.asarray(layer.edge_color).reshape(-1, 4)[:len(layer.data)]
    return [to_hex(c) for c in rgba]


def trace_shown(layer) -> list[bool]:
    """Whether each ROI's trace is shown (in the order of :func:`layer_rois`); a hidden ROI
    keeps its trace, only the plot leaves it out."""
    if layer is None:
        return []
    if is_labels(layer):
        hidden = layer.metadata.get(HIDDEN_KEY, set())
        return [v not in hidden for v in label_values(layer)]
    values = list(layer.features["show"]) if "show" in layer.features else []
    return [not (k < len(values) and isinstance(values[k], (bool, np.bool_))
                 and not values[k]) for k in range(len(layer.data))]


def set_trace_shown(layer, k: int, shown: bool) -> None:
    """Show or hide the trace of the ``k``-th ROI of ``layer``; the ROI and trace docks
    follow (the layer emits its data / paint event)."""
    if trace_shown(layer)[k] == bool(shown):
        return
    if is_labels(layer):
        value = label_values(layer)[k]
        hidden = set(layer.metadata.get(HIDDEN_KEY, set()))
        hidden = hidden - {value} if shown else hidden | {value}
        layer.metadata = {**layer.metadata, HIDDEN_KEY: hidden}
        layer.events.paint()
        return
    features = layer.features.copy()
    features["show"] = trace_shown(layer)
    features.loc[k, "show"] = bool(shown)
    layer.features = features
    layer.events.data(value=layer.data)


def style_roi_layer(layer) -> None:
    """ROI names on the canvas, in each ROI's colour (the ``name`` / ``colour`` features)."""
    if is_labels(layer) or "{name}" in str(getattr(layer.text.string, "format", "")):
        return
    visible = bool(layer.metadata.get("roi_names_shown", True))
    layer.text = {"string": "{name}", "color": {"feature": "colour"}, "size": 9,
                  "anchor": "upper_left", "visible": visible}


def roi_axes(image) -> dict:
    """Axes, scale and units for an ROI layer over ``image``: every axis after time (z, y, x
    or y, x; with several samples per slice also that axis, between z and y), since napari
    aligns layers by their trailing axes.  ROIs then show at every time point."""
    if image is None:
        return {}
    labels = tuple(image.axis_labels)
    first = labels.index("t") + 1 if "t" in labels else 0
    keep = list(range(min(first, image.ndim - 2), image.ndim))
    return dict(ndim=len(keep), scale=[image.scale[k] for k in keep],
                translate=[image.translate[k] for k in keep],  # (multi-ROI fields: placed)
                axis_labels=[labels[k] for k in keep], units=[image.units[k] for k in keep])


def on_roi_axes(planes: np.ndarray, axes: dict, reduce=np.max) -> np.ndarray:
    """Per-plane images (Z, Y, X) — or one (Y, X) — laid out on the :func:`roi_axes` ``axes``
    (a length-1 sample axis where there is one; planes reduced with ``reduce`` when the
    recording has no z axis)."""
    planes = planes if planes.ndim == 3 else planes[None]
    labels = list(axes["axis_labels"])
    if "z" not in labels:
        planes = reduce(planes, axis=0, keepdims=True)
    shape = [planes.shape[0] if a == "z" else 1 for a in labels[:-2]]
    return planes.reshape(*shape, *planes.shape[-2:])


def _fixed(text: str) -> QTableWidgetItem:
    item = QTableWidgetItem(text)
    item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsEditable)
    return item


def _plane_text(roi) -> str:
    if roi.kind == "mask" and roi.mask is not None and roi.mask.ndim == 3:
        planes = np.flatnonzero(roi.mask.reshape(roi.mask.shape[0], -1).any(axis=1))
        return ", ".join(map(str, planes))
    return "all" if roi.plane is None else str(roi.plane)


def plane_axis(image_layer, ndim: int) -> int | None:
    """Axis of a ``ndim``-D ROI layer that lies on the image's plane axis (napari aligns
    layers by their trailing axes), or None."""
    labels = tuple(image_layer.axis_labels) if image_layer is not None else ()
    if "z" in labels:
        axis = labels.index("z") + ndim - len(labels)
        return axis if 0 <= axis < ndim - 2 else None
    return None


def layer_rois(layer, dataset, image_layer=None) -> RoiSet:
    """RoiSet of a Shapes or Labels layer for ``dataset`` (frame shape and planes from it;
    without a dataset, the ROIs as drawn)."""
    info = dataset.info if dataset is not None else None
    kwargs = dict(frame_shape=info.frame_shape, num_planes=info.num_planes,
                  source=str(dataset.paths[0])) if info is not None else {}
    if is_labels(layer):
        values = label_values(layer)
        data = np.asarray(layer.data)
        axis = plane_axis(image_layer, layer.ndim)
        if axis is not None:  # planes third from last; other leading axes are pooled
            data = np.moveaxis(data, axis, -3)
        return RoiSet.from_layer(data, names=label_names(layer, values),
                                 colours=label_colours(layer, values), **kwargs)
    n = len(layer.data)
    all_planes = _flags(layer)
    axis = plane_axis(image_layer, layer.ndim)
    planes = []
    for k, verts in enumerate(layer.data):
        if all_planes[k]:
            planes.append(None)
        elif axis is not None and info is not None and info.num_planes > 1:
            planes.append(int(np.clip(np.round(np.asarray(verts)[0, axis]), 0,
                                      info.num_planes - 1)))
        else:
            planes.append(None)
    colours = _colours(layer)
    return RoiSet.from_layer([np.asarray(v)[:, -2:] for v in layer.data],
                             shape_types=list(layer.shape_type), planes=planes,
                             edge_widths=list(np.broadcast_to(layer.edge_width, (n,))),
                             names=roi_names(layer), colours=colours, **kwargs)


class RoiDock(QWidget):
    """List of the ROIs of a Shapes or Labels layer, kept in step with it."""

    def __init__(self, napari_viewer):
        super().__init__()
        self.viewer = napari_viewer
        self.layer_box = QComboBox()
        self.new_button = QPushButton("New ROI layer")
        self.table = QTableWidget(0, 5)
        self.table.setHorizontalHeaderLabels(["name", "plane", "all planes", "colour", "trace"])
        self.table.horizontalHeaderItem(4).setToolTip("show this ROI's trace in the plot")
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.table.verticalHeader().setVisible(False)
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
        buttons = QHBoxLayout()
        for b in (self.delete_button, self.save_button, self.load_button, self.imagej_button):
            buttons.addWidget(b)
        layout = dock_layout(self)
        layout.addLayout(top)
        layout.addWidget(self.table)
        layout.addLayout(buttons)
        layout.addWidget(self.status)
        self._layer = None
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
        layer, else the first shown."""
        return current_dataset(self.viewer, self._layer)

    def _refresh_layers(self, event=None) -> None:
        shapes = [layer for layer in self.viewer.layers
                  if layer.__class__.__name__ in ("Shapes", "Labels")]
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
            pairs = ((old.events.data, self._sync_table),
                     *(() if is_labels(old) else ((old.events.edge_color, self._sync_table),)),
                     (old.events.paint if is_labels(old) else old.events.highlight,
                      self._sync_table if is_labels(old) else self._select_rows),
                     *(((old.events.selected_label, self._select_rows),) if is_labels(old)
                       else ()))
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
        (:func:`roi_axes`): ROIs belong to a plane, not to a time."""
        ds = self.dataset
        kwargs = roi_axes(image_layer_for(self.viewer, ds))
        layer = self.viewer.add_shapes(name="ROIs", edge_width=1.5, edge_color=palette(1)[0],
                                       face_color="transparent", **kwargs)
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
        The next shape drawn is already in the next colour."""
        layer = self._layer
        n = len(layer.data)
        names = roi_names(layer)
        taken: set[str] = set()
        for k, name in enumerate(names):  # new shapes get a fresh, unique name
            while name in taken:
                name = f"roi {k + 1 + len(taken)}"
            names[k] = name
            taken.add(name)
        all_planes = _flags(layer)
        given = list(layer.features["name"]) if "name" in layer.features else []
        edges = _colours(layer)
        old = [k < len(given) and isinstance(given[k], str) and bool(given[k]) for k in range(n)]
        colours = [edges[k] if old[k] else None for k in range(n)]
        for k in range(n):  # a shape just drawn keeps its colour only if no other ROI has it
            if colours[k] is None:
                unique = edges[k] not in colours and edges[k] not in edges[k + 1:]
                colours[k] = edges[k] if unique else \
                    next_colour([c for c in colours if c is not None])
        shown = trace_shown(layer)
        features = layer.features.copy() if len(layer.features) == n else None
        import pandas as pd

        columns = {"name": names, "all_planes": all_planes, "colour": colours, "show": shown}
        features = pd.DataFrame(columns) if features is None else features.assign(**columns)
        features = features.astype({"name": object, "colour": object, "all_planes": bool,
                                    "show": bool})
        if colours != edges and n:
            layer.edge_color = colours
        layer.features = features
        # what the next shape drawn gets (its feature is empty until it is listed here)
        # (an empty name marks it new)
        upcoming = next_colour(colours)
        layer.feature_defaults = {"name": "", "all_planes": False, "colour": upcoming,
                                  "show": True}
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
            flags = _flags(layer) if not is_labels(layer) else \
                [p is None for p in self._rois.planes]
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
            self.status.setText(f"{len(self._rois)} ROI(s) in {layer.name}")
        finally:
            self._updating = False

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
        row = self._rois.names.index(old)
        self.table.item(row, 0).setText(new)

    def set_trace_shown(self, name: str, shown: bool) -> None:
        """Tick / untick ROI ``name``'s trace column, as a user would."""
        row = self._rois.names.index(name)
        self.table.item(row, 4).setCheckState(Qt.CheckState.Checked if shown
                                              else Qt.CheckState.Unchecked)

    def set_all_planes(self, name: str, value: bool) -> None:
        row = self._rois.names.index(name)
        self.table.item(row, 2).setCheckState(Qt.CheckState.Checked if value
                                              else Qt.CheckState.Unchecked)

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
    def roi_set(self) -> RoiSet:
        if self._layer is None or self.dataset is None:
            raise ScanImageError("no ROI layer or no recording open")
        return layer_rois(self._layer, self.dataset, image_layer_for(self.viewer, self.dataset))

    def save(self, path: str | Path) -> None:
        rois = self.roi_set()
        rois.save(path)
        self.status.setText(f"saved {len(rois)} ROI(s) to {Path(path).name}")

    def export_imagej(self, path: str | Path) -> None:
        self.roi_set().to_imagej(path)
        self.status.setText(f"exported ImageJ ROIs to {Path(path).name}")

    def load(self, path: str | Path):
        """Load ROIs (JSON or ImageJ) into a new ROI layer; refused with a message when they
        do not fit the recording."""
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
        step = list(self.viewer.dims.current_step)[-layer.ndim:]
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
            layer.add(data, shape_type=types, edge_color=[r.colour for r in rois
                                                          if r.vertices is not None])
        finally:
            self._updating = False
        import pandas as pd

        kept = [r for r in rois if r.vertices is not None]
        layer.features = pd.DataFrame({"name": [r.name for r in kept],
                                       "all_planes": [r.plane is None for r in kept],
                                       "colour": [r.colour for r in kept],
                                       "show": [True] * len(kept)})
        self._sync_table()
        return layer

    def _load_masks(self, masks: RoiSet, info, name: str):
        """A Labels layer on the ROI axes (see :func:`roi_axes`) holding mask ROIs."""
        data, names = mask_layer_data(masks, info.frame_shape, info.num_planes)
        kwargs = roi_axes(image_layer_for(self.viewer, self.dataset))
        if kwargs:
            data = on_roi_axes(data, kwargs, reduce=np.max)
            kwargs.pop("ndim")
        layer = self.viewer.add_labels(data, name=f"{name} labels", **kwargs)
        layer.metadata = {**layer.metadata, "roi_names": names}
        use_palette(layer, {k + 1: r.colour for k, r in enumerate(masks)})
        self._refresh_layers()
        self.layer_box.setCurrentIndex(self._shapes.index(layer))
        return layer

    def _file_dialog(self, what: str) -> None:
        try:
            if what == "load":
                path, _ = QFileDialog.getOpenFileName(self, "Load ROIs", "",
                                                      "ROIs (*.json *.zip *.roi)")
                if path:
                    self.load(path)
            elif what == "save":
                path, _ = QFileDialog.getSaveFileName(self, "Save ROIs", "rois.json",
                                                      "ROIs (*.json)")
                if path:
                    self.save(path)
            else:
                path, _ = QFileDialog.getSaveFileName(self, "Export ImageJ ROIs", "rois.zip",
                                                      "ImageJ ROI zip (*.zip)")
                if path:
                    self.export_imagej(path)
        except (ScanImageError, OSError, ValueError) as exc:
            report_failure(self.status, what, exc)
