"""Selection dock: which channels, planes, slice samples (and `.siff` lifetimes) are shown.

:func:`apply_selection` does the work (also usable from scripts with a viewer); the dock is a
thin Qt form around it.  Layers are matched by dataset, channel and product ("intensity" or
"lifetime"): a matching layer gets its new data, scale and axis labels in place, even when the
number of axes changes (contrast, colormap and visibility kept); new channels are added and
deselected channels removed.  The rest of the recording's layers — registered images, summary
and lifetime-fraction images, ROIs — follow onto the new axes (:mod:`._family`); layers of
other files are never touched.

Files still being written: "Refresh" (:func:`refresh_layers`) reads the frames written since
the recordings were opened and lengthens their layers; "Auto-refresh" does so whenever a file
changes (checked every :data:`POLL_MS` ms).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from qtpy.QtCore import QTimer
from qtpy.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QWidget,
)

from .._core.dataset import Dataset
from ..errors import ScanImageError
from ..layer_axes import reachable_step
from ._dock import dock_layout
from ._family import (
    frozen,
    is_registered,
    members,
    reproject_field,
    reproject_planes,
    reproject_rois,
    roi_axes_of,
    set_layout,
)
from .reader import dataset_layers

__all__ = [
    "SelectionDock",
    "apply_selection",
    "current_dataset",
    "datasets_in",
    "file_stamps",
    "layer_key",
    "recordings_in",
    "refresh_layers",
]

POLL_MS = 2000  # auto-refresh: how often the files are checked for changes


def layer_key(layer) -> tuple[int, str] | None:
    """(channel, product) of a layer made by this plugin, else None."""
    meta = getattr(layer, "metadata", {}).get("scanimage")
    if not isinstance(meta, dict) or "channel" not in meta:
        return None
    return int(meta["channel"]), meta.get("product", "intensity")


def datasets_in(viewer) -> list[Dataset]:
    """Datasets shown by the viewer's layers, in layer order, each once."""
    found: list[Dataset] = []
    for layer in viewer.layers:
        ds = layer.metadata.get("scanimage_dataset")
        if isinstance(ds, Dataset) and all(ds is not d for d in found):
            found.append(ds)
    return found


def current_dataset(viewer, layer=None) -> Dataset | None:
    """The recording the docks work on: that of ``layer`` (an ROI layer records the recording
    it was made over), else of the active layer, else the first one shown.  For a multi-ROI
    recording this is a field: select a field's layer (or draw ROIs over it) to work on it.
    """
    for candidate in (layer, viewer.layers.selection.active):
        meta = getattr(candidate, "metadata", None) or {}
        if isinstance(meta.get("scanimage_dataset"), Dataset):
            return meta["scanimage_dataset"]
    found = datasets_in(viewer)
    return found[0] if found else None


def recordings_in(viewer) -> list[Dataset]:
    """Whole recordings shown by the viewer's layers (a multi-ROI recording once, not once
    per field), in layer order.
    """
    found: list[Dataset] = []
    for ds in datasets_in(viewer):
        if all(ds.whole is not d for d in found):
            found.append(ds.whole)
    return found


def _layers_of(viewer, dataset: Dataset) -> list:
    """The plugin's raw layers showing ``dataset`` (or, for a multi-ROI recording, its
    fields); registered layers are not among them.
    """
    return [
        layer
        for layer in viewer.layers
        if isinstance(ds := layer.metadata.get("scanimage_dataset"), Dataset)
        and ds.whole is dataset.whole
        and layer_key(layer)
        and not is_registered(layer)
    ]


def _field_key(meta: dict) -> tuple:
    return int(meta["channel"]), meta.get("product", "intensity"), meta.get("field")


def _layouts(viewer, dataset: Dataset) -> dict:
    """(ROI axis labels, single plane shown) of each field's first raw layer, by field name."""
    out: dict[str | None, tuple] = {}
    for layer in _layers_of(viewer, dataset):
        meta = layer.metadata["scanimage"]
        out.setdefault(meta.get("field"), (roi_axes_of(layer), meta.get("plane"), layer))
    return out


def apply_selection(
    viewer,
    dataset: Dataset,
    *,
    channels: Sequence[int] | None = None,
    plane: int | None = None,
    slice_sample=None,
    lifetime: bool = False,
    bin_width_ps: float | None = None,
) -> list:
    """Show ``dataset`` with this selection; returns its raw layers in order.

    The whole family of the recording follows (see :mod:`._family`): raw and registered
    images get their new data and axes in place, per-plane images and ROIs are moved onto the
    new axes (each ROI on its plane), so the viewer never shows layers on different axes.
    New channels are added after that, deselected ones removed last.  Nothing is drawn
    until all is done.
    """
    with frozen():
        return _apply(
            viewer,
            dataset,
            channels=channels,
            plane=plane,
            slice_sample=slice_sample,
            lifetime=lifetime,
            bin_width_ps=bin_width_ps,
        )


def _apply(
    viewer, dataset: Dataset, *, channels, plane, slice_sample, lifetime, bin_width_ps
) -> list:
    if bin_width_ps is not None and dataset.is_siff and bin_width_ps != dataset.flim.bin_width_ps:
        dataset.set_bin_width_ps(bin_width_ps)
    specs = dataset_layers(
        dataset, channels=channels, plane=plane, slice_sample=slice_sample, lifetime=lifetime
    )
    before = _layouts(viewer, dataset)
    family = members(viewer, dataset, before[next(iter(before))][0] if before else [])
    existing = {
        _field_key(layer.metadata["scanimage"]): layer for layer in _layers_of(viewer, dataset)
    }
    registered = {
        _field_key(layer.metadata["scanimage"]): layer
        for layer in family["registered"]
        if "scanimage" in layer.metadata
    }
    shown: list = [None] * len(specs)
    # 1. every existing image in place, so the family changes axes together
    for k, (data, kwargs, _) in enumerate(specs):
        key = _field_key(kwargs["metadata"]["scanimage"])
        layer = existing.pop(key, None)
        axes = {
            name: kwargs.get(name, (0.0,) * data.ndim)
            for name in ("scale", "translate", "axis_labels", "units")
        }
        if layer is not None:
            set_layout(layer, data, **axes)
            layer.metadata = kwargs["metadata"]
            shown[k] = layer
        reg = registered.pop(key, None)
        if reg is not None:
            meta = kwargs["metadata"]["scanimage"]
            result = reg.metadata["scanimage_registration"]
            ds = kwargs["metadata"]["scanimage_dataset"]
            redone = ds.frames(
                meta["channel"],
                plane=meta.get("plane"),
                slice_sample=meta.get("slice_sample", 0),
                product=meta.get("product", "intensity"),
                registration=result,
            )
            redone.on_error = getattr(data, "on_error", None)
            set_layout(reg, redone, **axes)
            reg.metadata = {**reg.metadata, "scanimage": dict(meta), "scanimage_dataset": ds}
    # 2. per-plane images and ROIs onto the new axes of their field
    after = _layouts(viewer, dataset)
    messages = []
    for layer in family["planes"] + family["rois"]:
        ds = layer.metadata.get("scanimage_dataset", layer.metadata.get("scanimage_family"))
        field = getattr(getattr(ds, "selected_field", None), "name", None)
        if field not in before or field not in after:
            field = next(iter(before), None)
        if field not in before or field not in after:
            continue
        old, new = before[field][:2], after[field][:2]
        image = after[field][2]
        if layer in family["planes"]:
            reproject_planes(layer, old, new, image, dataset.info.num_planes)
        else:
            messages.append(reproject_rois(viewer, layer, old, new, image))
    for layer in family["fields"]:  # block fields: drawn again on their image's axes
        ds = layer.metadata["scanimage_family"]
        image = next(
            (x for x in shown if x is not None and x.metadata["scanimage_dataset"] is ds), None
        )
        if image is not None:
            reproject_field(viewer, layer, image)
        else:  # none of its images stays: its axes are unknown until they are added
            viewer.layers.remove(layer)
    # 3. new channels (adding a layer repaints: the family is consistent by now)
    for k, (data, kwargs, _) in enumerate(specs):
        if shown[k] is not None:
            continue
        previous = [layer for layer in shown[:k] if layer is not None]
        if previous:
            position = viewer.layers.index(previous[-1]) + 1
        else:
            rest = [
                viewer.layers.index(x)
                for x in (*existing.values(), *(x for x in shown if x is not None))
            ]
            position = min(rest) if rest else len(viewer.layers)
        new = viewer.add_image(data, **kwargs)
        viewer.layers.move(viewer.layers.index(new), position)
        shown[k] = new
    # 4. channels (or lifetimes) no longer selected, and their registered layers
    for layer in (*existing.values(), *registered.values()):
        viewer.layers.remove(layer)
    text = "; ".join(m for m in messages if m)
    if text:
        from napari.utils.notifications import show_info

        show_info(text)
    return shown


def file_stamps(dataset: Dataset) -> tuple:
    """(size, modification time) of the dataset's files and of their folder (new files of a
    split acquisition change it): what auto-refresh compares.  OSError when a file is gone.
    """
    stamps = []
    for p in (*dataset.paths, dataset.paths[0].parent):
        st = os.stat(p)
        stamps.append((st.st_size, st.st_mtime_ns))
    return tuple(stamps)


def refresh_layers(viewer, dataset: Dataset) -> int:
    """Read what was written to ``dataset``'s files since it was opened (or last refreshed)
    and give its layers the new, longer data; returns the time points added.

    Each layer keeps its selection (channel, plane, slice sample, product) and look; the
    viewer keeps its time step, or follows the new frames when it was on the last one.
    Registered layers (made from a registration of the earlier frames) are left as they are.

    Raises
    ------
    ScanImageError
        From :meth:`Dataset.refresh` (file shortened, replaced or gone); nothing is changed.
    """
    added = dataset.refresh()
    if not added:
        return 0
    layers = _layers_of(viewer, dataset)
    dims = viewer.dims
    at_end = {}
    for layer in layers:
        axis = dims.ndim - layer.ndim  # layers are aligned on their last axes
        at_end[axis] = dims.current_step[axis] >= dims.nsteps[axis] - 1
    for layer in layers:
        meta = layer.metadata["scanimage"]
        data = layer.metadata["scanimage_dataset"].frames(
            meta["channel"],
            plane=meta.get("plane"),
            slice_sample=meta.get("slice_sample", 0),
            product=meta.get("product", "intensity"),
        )
        data.on_error = getattr(layer.data, "on_error", None)  # failed reads: as before
        layer.data = data
        labels = list(layer.axis_labels)
        if "t" in labels:  # the last frame stays reachable (see reachable_step)
            scale = list(layer.scale)
            k = labels.index("t")
            scale[k] = reachable_step(scale[k], data.shape[k])
            layer.scale = scale
    for axis, follow in at_end.items():
        if follow:
            dims.set_current_step(axis, dims.nsteps[axis] - 1)
    return added


class SelectionDock(QWidget):
    """Channels, plane, slice-sample mode, lifetime layers and bin width of one dataset."""

    def __init__(self, napari_viewer):
        super().__init__()
        self.viewer = napari_viewer
        self.dataset_box = QComboBox()
        self.channels = QListWidget()
        self.channels.setSelectionMode(QAbstractItemView.SelectionMode.MultiSelection)
        self._fit_channel_rows()
        self.plane = QComboBox()
        self.sample = QComboBox()
        self.lifetime = QCheckBox("lifetime layers (mean arrival time, ns)")
        self.bin_width = QDoubleSpinBox()
        self.bin_width.setRange(0.1, 10000.0)
        self.bin_width.setDecimals(2)
        self.bin_width.setSuffix(" ps")
        self.bin_width.setSpecialValueText("— (TIFF)")
        self.apply_button = QPushButton("Apply")
        self.refresh_button = QPushButton("Refresh")
        self.refresh_button.setToolTip(
            "read the frames written since the recordings were opened (files still being written)"
        )
        self.auto_refresh = QCheckBox("Auto-refresh")
        self.auto_refresh.setToolTip(
            f"for files still being written: check them every {POLL_MS / 1000:g} s and read "
            "new frames as they are written"
        )
        self.status = QLabel("")
        self.status.setWordWrap(True)
        form = self._form = QFormLayout()
        form.addRow("recording", self.dataset_box)
        form.addRow("channels", self.channels)
        form.addRow("plane", self.plane)
        form.addRow("slice sample", self.sample)
        form.addRow("", self.lifetime)
        form.addRow("arrival bin", self.bin_width)
        layout = dock_layout(self)
        layout.addLayout(form)
        # on one row: the dock shows all its controls in a third of a 1280x800 window
        buttons = QHBoxLayout()
        buttons.addWidget(self.apply_button)
        buttons.addWidget(self.refresh_button)
        buttons.addWidget(self.auto_refresh)
        layout.addLayout(buttons)
        layout.addWidget(self.status)
        self._datasets: list[Dataset] = []
        self.dataset_box.currentIndexChanged.connect(self._load_dataset)
        self.apply_button.clicked.connect(self.apply)
        self.refresh_button.clicked.connect(self.refresh_files)
        self._timer = QTimer(self)
        self._timer.setInterval(POLL_MS)
        self._timer.timeout.connect(self._poll_files)
        self._stamps: dict[int, tuple] = {}
        self.auto_refresh.toggled.connect(self._set_auto_refresh)
        napari_viewer.layers.events.inserted.connect(self._refresh)
        napari_viewer.layers.events.removed.connect(self._refresh)
        self._refresh()
        if not self._datasets:
            self._load_dataset()

    def _fit_channel_rows(self) -> None:
        """The channel list as tall as its channels (two to four rows; more scroll), not a
        fixed block that pushes the controls below it out of a short dock.
        """
        count = self.channels.count()
        row = self.channels.sizeHintForRow(0) if count else -1
        if row <= 0:
            row = self.channels.fontMetrics().height() + 4
        rows = min(max(count, 2), 4)
        self.channels.setFixedHeight(rows * row + 2 * self.channels.frameWidth() + 2)

    @property
    def dataset(self) -> Dataset | None:
        i = self.dataset_box.currentIndex()
        return self._datasets[i] if 0 <= i < len(self._datasets) else None

    def _refresh(self, event=None) -> None:
        datasets = recordings_in(self.viewer)
        if [id(d) for d in datasets] == [id(d) for d in self._datasets]:
            return
        current = self.dataset
        self._datasets = datasets
        self.dataset_box.blockSignals(True)
        self.dataset_box.clear()
        self.dataset_box.addItems([d.paths[0].name for d in datasets])
        if current is not None and any(current is d for d in datasets):
            self.dataset_box.setCurrentIndex([id(d) for d in datasets].index(id(current)))
        self.dataset_box.blockSignals(False)
        self._load_dataset()

    def _load_dataset(self, index: int | None = None) -> None:
        ds = self.dataset
        self.setEnabled(ds is not None)
        self.channels.clear()
        self.plane.clear()
        self.sample.clear()
        if ds is None:
            self.status.setText("open a ScanImage recording to choose what is shown")
            return
        info = ds.info
        shown = {layer_key(layer) for layer in _layers_of(self.viewer, ds)}
        for c, name in enumerate(info.channel_names):
            item = QListWidgetItem(name)
            self.channels.addItem(item)
            item.setSelected((c, "intensity") in shown or not shown)
        self._fit_channel_rows()
        self.plane.addItem("all planes", None)
        for z in range(info.num_planes):
            self.plane.addItem(f"plane {z}", z)
        self.plane.setEnabled(info.num_planes > 1)
        for f in range(info.frames_per_slice):
            self.sample.addItem(f"sample {f}", f)
        for mode in ("mean", "interleave", "axis"):
            self.sample.addItem(mode, mode)
        self.sample.setEnabled(info.frames_per_slice > 1)
        current = self._current_selection(ds)
        if current is not None:
            plane, mode = current
            self.plane.setCurrentIndex(self.plane.findData(plane) if plane is not None else 0)
            self.sample.setCurrentIndex(max(self.sample.findData(mode), 0))
        self.lifetime.setEnabled(ds.is_siff)
        self.bin_width.setEnabled(ds.is_siff)
        if hasattr(self._form, "setRowVisible"):  # Qt >= 6.4; TIFF recordings have no lifetimes
            self._form.setRowVisible(self.lifetime, ds.is_siff)
            self._form.setRowVisible(self.bin_width, ds.is_siff)
        self.lifetime.setChecked(any(key and key[1] == "lifetime" for key in shown))
        self.bin_width.setValue(
            ds.flim.bin_width_ps or 20.0 if ds.is_siff else self.bin_width.minimum()
        )
        self.status.setText(repr(ds).strip("<>"))

    def _current_selection(self, ds: Dataset):
        for layer in _layers_of(self.viewer, ds):
            meta = layer.metadata["scanimage"]
            return meta.get("plane"), meta.get("slice_sample")
        return None

    def apply(self) -> list:
        """Show the dataset with the form's selection (layers updated in place)."""
        ds = self.dataset
        if ds is None:
            return []
        channels = sorted(self.channels.row(item) for item in self.channels.selectedItems())
        if not channels:
            self.status.setText("select at least one channel")
            return []
        try:
            layers = apply_selection(
                self.viewer,
                ds,
                channels=channels,
                plane=self.plane.currentData(),
                slice_sample=self.sample.currentData() if ds.info.frames_per_slice > 1 else 0,
                lifetime=self.lifetime.isChecked() and ds.is_siff,
                bin_width_ps=self.bin_width.value() if ds.is_siff else None,
            )
        except (ScanImageError, ValueError) as exc:
            self.status.setText(f"could not apply: {exc}")
            return []
        self.status.setText(f"showing {len(layers)} layer(s) of {ds.paths[0].name}")
        return layers

    # -- files still being written -----------------------------------------------------
    def refresh_files(self) -> int:
        """Refresh every recording shown in the viewer (see :func:`refresh_layers`);
        returns the time points added to all of them.
        """
        total = 0
        for ds in recordings_in(self.viewer):
            try:
                added = refresh_layers(self.viewer, ds)
                self._stamps[id(ds)] = file_stamps(ds)
            except Exception as exc:  # reported, never raised into Qt
                self._refresh_failed(ds, exc)
                continue
            total += added
        if self.dataset is not None and total:
            self.status.setText(f"{total} new time point(s); " + repr(self.dataset).strip("<>"))
        return total

    def _set_auto_refresh(self, on: bool) -> None:
        if on:
            self._stamps = {}
            for ds in recordings_in(self.viewer):
                try:
                    self._stamps[id(ds)] = file_stamps(ds)
                except OSError:
                    pass  # the first poll reports it
            self._timer.start()
        else:
            self._timer.stop()

    def _poll_files(self) -> None:
        """Timer: refresh the recordings whose files changed since the last look."""
        changed = []
        for ds in recordings_in(self.viewer):
            try:
                stamps = file_stamps(ds)
            except OSError as exc:
                self._refresh_failed(ds, exc)
                return
            if stamps != self._stamps.get(id(ds)):
                changed.append(ds)
        added = 0
        for ds in changed:
            try:
                added += refresh_layers(self.viewer, ds)
                self._stamps[id(ds)] = file_stamps(ds)
            except Exception as exc:  # reported, never raised into Qt
                self._refresh_failed(ds, exc)
                return
        if added and self.dataset is not None:
            self.status.setText(f"{added} new time point(s); " + repr(self.dataset).strip("<>"))

    def _refresh_failed(self, ds: Dataset, exc: Exception) -> None:
        """Tell the user, and stop auto-refresh (it would only fail again)."""
        from napari.utils.notifications import show_error, show_warning

        stopped = self.auto_refresh.isChecked()
        self.auto_refresh.setChecked(False)
        gone = not all(p.exists() for p in ds.paths)
        message = (
            f"{ds.paths[0].name}: could not refresh"
            + (" (a file of the recording is gone)" if gone else "")
            + f": {exc}"
            + ("; auto-refresh stopped" if stopped else "")
        )
        self.status.setText(message)
        if isinstance(exc, ScanImageError) and not gone:  # shortened or replaced: reopen
            show_warning(message)
        else:
            show_error(message)
