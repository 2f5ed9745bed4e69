"""Metadata dock: the recording's static ScanImage metadata, ROI groups, and the description of
the frame under the time slider, in one searchable tree.
"""

from __future__ import annotations

import numpy as np
from qtpy.QtCore import QTimer
from qtpy.QtWidgets import QLabel, QLineEdit, QTreeWidget, QTreeWidgetItem

from .._core.dataset import Dataset
from ..errors import ScanImageError
from ._dock import dock_layout, show_rows
from ._idle import IdleWhenHidden

__all__ = ["MetadataDock", "current_page", "format_value"]

_MAX_TEXT = 300


def format_value(value) -> str:
    """Short display text of a parsed metadata value."""
    if isinstance(value, np.ndarray):
        value = value.tolist()
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= _MAX_TEXT else text[: _MAX_TEXT - 1] + "…"


def _data_point(viewer, layer) -> np.ndarray:
    """The viewer's point in ``layer``'s data coordinates.  Layers made by this plugin carry
    only a scale (and maybe a translation): that is computed directly, since napari's general
    ``world_to_data`` costs milliseconds per slider step.
    """
    point = np.asarray(viewer.dims.point, dtype=float)[-layer.ndim :]
    affine, rotate = np.asarray(layer.affine.affine_matrix), np.asarray(layer.rotate)
    if (
        np.array_equal(affine, np.eye(len(affine)))
        and np.array_equal(rotate, np.eye(len(rotate)))
        and not np.any(layer.shear)
        and len(point) == layer.ndim
    ):
        return (point - np.asarray(layer.translate)) / np.asarray(layer.scale)
    return np.asarray(layer.world_to_data(viewer.dims.point), dtype=float)


def current_page(viewer, layer) -> int | None:
    """Global raw page shown by ``layer`` at the viewer's current position (the first sample's
    page for "mean"), or None for layers not made by this plugin.
    """
    meta = layer.metadata.get("scanimage") if layer is not None else None
    ds = layer.metadata.get("scanimage_dataset") if layer is not None else None
    if not isinstance(meta, dict) or not isinstance(ds, Dataset):
        return None
    sel = ds.selection(
        meta["channel"], plane=meta.get("plane"), slice_sample=meta.get("slice_sample", 0)
    )
    labels = sel.axis_labels()[:-2]
    coords = _data_point(viewer, layer)[: len(labels)]
    lead = np.round(coords).astype(int)
    shape = sel.leading_shape(ds.layout)
    lead = np.clip(lead, 0, np.asarray(shape) - 1)
    pages = sel.pages_at(ds.layout, np.array([lead[0]]))[0]  # (nz, nf)
    z = int(lead[labels.index("z")]) if "z" in labels else 0
    f = int(lead[labels.index("sample")]) if "sample" in labels else 0
    return int(pages[min(z, pages.shape[0] - 1), min(f, pages.shape[1] - 1)])


def _add_tree(parent: QTreeWidgetItem, value) -> None:
    if isinstance(value, dict):
        for key, sub in value.items():
            item = QTreeWidgetItem(
                parent, [str(key), "" if isinstance(sub, (dict, list)) else format_value(sub)]
            )
            _add_tree(item, sub)
    elif isinstance(value, list) and value and all(isinstance(v, (dict, list)) for v in value):
        for i, sub in enumerate(value):
            _add_tree(QTreeWidgetItem(parent, [f"[{i}]", ""]), sub)


class MetadataDock(IdleWhenHidden):
    """Searchable tree: current frame description, static SI.* metadata by module, ROI groups."""

    def __init__(self, napari_viewer):
        super().__init__()
        self.viewer = napari_viewer
        self.search = QLineEdit()
        self.search.setPlaceholderText("search keys and values…")
        self.search.setClearButtonEnabled(True)
        self.title = QLabel("")
        self.tree = QTreeWidget()
        self.tree.setHeaderLabels(["key", "value"])
        self.tree.setColumnWidth(0, 230)
        show_rows(self.tree, 6)
        layout = dock_layout(self)
        layout.addWidget(self.search)
        layout.addWidget(self.title)
        layout.addWidget(self.tree)
        self._dataset: Dataset | None = None
        self._frame_root: QTreeWidgetItem | None = None
        self._frame_items: dict[str, QTreeWidgetItem] = {}
        self._page: int | None = None
        self.search.textChanged.connect(self._filter)
        # the frame description is read after the step, once per burst of slider moves
        self._frame_timer = QTimer(self)
        self._frame_timer.setSingleShot(True)
        self._frame_timer.setInterval(0)
        self._frame_timer.timeout.connect(self._update_frame)
        napari_viewer.dims.events.current_step.connect(self._schedule_frame)
        napari_viewer.layers.selection.events.active.connect(self._follow_layer)
        napari_viewer.layers.events.inserted.connect(self._follow_layer)
        napari_viewer.layers.events.removed.connect(self._follow_layer)
        self._follow_layer()

    def _layer(self):
        active = self.viewer.layers.selection.active
        candidates = [active] if active is not None else []
        candidates += list(self.viewer.layers)
        for layer in candidates:
            if isinstance(layer.metadata.get("scanimage_dataset"), Dataset):
                return layer
        return None

    def _follow_layer(self, event=None) -> None:
        layer = self._layer()
        ds = layer.metadata["scanimage_dataset"] if layer is not None else None
        if ds is not self._dataset:
            self._dataset = ds
            self._build(ds)
        self._update_frame()

    def _build(self, ds: Dataset | None) -> None:
        self.tree.clear()
        self._frame_items = {}
        self._page = None
        if ds is None:
            self.title.setText("open a ScanImage recording to see its metadata")
            self._frame_root = None
            return
        self.title.setText(f"{ds.paths[0].name}: ScanImage {ds.info.version or '?'}")
        self._frame_root = QTreeWidgetItem(self.tree, ["frame", ""])
        self._frame_root.setExpanded(True)
        static = QTreeWidgetItem(self.tree, ["static", f"{len(ds.metadata)} keys"])
        modules: dict[str, QTreeWidgetItem] = {}
        for key, value in ds.metadata.items():
            if key == "RoiGroups":
                continue
            module, _, leaf = key.rpartition(".")
            parent = modules.get(module)
            if parent is None:
                parent = modules[module] = QTreeWidgetItem(static, [module or "(top)", ""])
            QTreeWidgetItem(parent, [leaf, format_value(value)])
        static.setExpanded(True)
        if "RoiGroups" in ds.metadata:
            _add_tree(QTreeWidgetItem(self.tree, ["ROI groups", ""]), ds.metadata["RoiGroups"])
        self._filter(self.search.text())

    def catch_up(self) -> None:
        self._update_frame()

    def _schedule_frame(self, event=None) -> None:
        if not self.hidden:
            self._frame_timer.start()

    def _update_frame(self, event=None) -> None:
        if self.hidden:
            return
        layer = self._layer()
        if layer is None or self._frame_root is None or self._dataset is None:
            return
        try:
            page = current_page(self.viewer, layer)
            if page is None or page == self._page:
                return
            values = self._dataset.frame_description(page)
        except (ScanImageError, OSError, ValueError) as exc:
            self._frame_root.setText(1, f"unavailable: {exc}")
            return
        self._page = page
        self._frame_root.setText(1, f"raw page {page} ({layer.name})")
        for key, value in values.items():
            item = self._frame_items.get(key)
            if item is None:
                item = self._frame_items[key] = QTreeWidgetItem(self._frame_root, [key, ""])
            item.setText(1, format_value(value))
        for key, item in self._frame_items.items():
            if key not in values:
                item.setText(1, "")

    @property
    def page(self) -> int | None:
        """Raw page whose description is shown."""
        return self._page

    def value_of(self, key: str) -> str | None:
        """Displayed value of a static key (``SI.…``) or a frame key, else None."""
        if key in self._frame_items:
            return self._frame_items[key].text(1)
        module, _, leaf = key.rpartition(".")
        for item in self.tree.findItems(leaf, _match_recursive(), 0):
            parent = item.parent()
            if parent is not None and parent.text(0) == (module or "(top)"):
                return item.text(1)
        return None

    def _filter(self, text: str) -> None:
        needle = text.strip().lower()

        def visit(item: QTreeWidgetItem | None, inside_hit: bool) -> bool:
            if item is None:
                return False
            own = not needle or needle in item.text(0).lower() or needle in item.text(1).lower()
            hit = inside_hit or own  # a matching module shows all its keys
            child_hit = False
            for i in range(item.childCount()):
                child_hit |= visit(item.child(i), hit)
            item.setHidden(not (hit or child_hit))
            if needle and child_hit:
                item.setExpanded(True)
            return hit or child_hit

        for i in range(self.tree.topLevelItemCount()):
            visit(self.tree.topLevelItem(i), False)


def _match_recursive():
    from qtpy.QtCore import Qt

    return Qt.MatchFlag.MatchExactly | Qt.MatchFlag.MatchRecursive
