"""Registration dock: estimate rigid motion in a worker (progress, cancel), then show registered
layers next to the raw ones, shift and correlation plots linked to the time slider, and
before/after summary images (mean, max, std, local correlation) as layers.

Cancelling leaves everything as it was.  The computation is the library's
:func:`~napari_scanimage.analysis.registration.iter_register` and
:func:`~napari_scanimage.analysis.qc.iter_summary_images`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QTabWidget,
    QWidget,
)

from ..analysis import qc
from ..analysis.registration import Registration, iter_register
from ..errors import ScanImageError
from ._dock import dock_layout
from ._report import report_failure
from ._worker import WorkerDock, labelled
from .plot import PlotDock
from .rois import image_layer_for, on_roi_axes, roi_axes
from .selection import layer_key

__all__ = ["RegistrationDock"]

VIEWS = ("raw", "registered", "side by side")


def _stages(ds, channel, planes, settings):
    """Worker body: registration, then summary images before and after; yields
    (stage, done, total), returns (Registration, {"raw": images, "registered": images})."""
    result = yield from labelled(iter_register(ds, channel=channel, planes=planes, **settings),
                                 "registering")
    images = {}
    for label, reg in (("raw", None), ("registered", result)):
        images[label] = yield from labelled(
            qc.iter_summary_images(ds, channel=channel, registration=reg),
            f"summary images ({label})")
    return result, images


def _row(*widgets) -> QWidget:
    box = QWidget()
    row = QHBoxLayout(box)
    row.setContentsMargins(0, 0, 0, 0)
    for w in widgets:
        row.addWidget(w, 1 if isinstance(w, (QComboBox, QSpinBox, QDoubleSpinBox)) else 0)
    return box


class RegistrationDock(WorkerDock, QWidget):
    """Run, inspect, save and load motion registration of the recording in the viewer."""

    def __init__(self, napari_viewer):
        super().__init__()
        self.viewer = napari_viewer
        self.channel_box = QComboBox()
        self.plane_box = QComboBox()
        self.reference_spin = QSpinBox()
        self.reference_spin.setRange(1, 100000)
        self.reference_spin.setValue(200)
        self.max_shift_spin = QDoubleSpinBox()
        self.max_shift_spin.setRange(0, 10000)
        self.max_shift_spin.setSpecialValueText("auto")
        self.max_shift_spin.setToolTip("0 = auto: a tenth of the frame")
        self.subpixel = QCheckBox("subpixel")
        self.subpixel.setChecked(True)
        self.bidi = QCheckBox("bidirectional phase")
        self.view_box = QComboBox()
        self.view_box.addItems(VIEWS)
        self.view_box.setEnabled(False)
        self.run_button = QPushButton("Register")
        self.cancel_button = QPushButton("Cancel")
        self.save_button = QPushButton("Save shifts…")
        self.load_button = QPushButton("Load shifts…")
        self.progress = QProgressBar()
        self.status = QLabel("")
        self.status.setWordWrap(True)
        form = QFormLayout()
        form.addRow("align on", _row(self.channel_box, self.plane_box))
        form.addRow("reference frames", _row(self.reference_spin, QLabel("max shift (px)"),
                                             self.max_shift_spin))
        form.addRow("", _row(self.subpixel, self.bidi))
        form.addRow("show", self.view_box)
        buttons = QHBoxLayout()
        for b in (self.run_button, self.cancel_button, self.save_button, self.load_button):
            buttons.addWidget(b)
        self.shift_plot = PlotDock(napari_viewer, y_label="shift (px)")
        self.corr_plot = PlotDock(napari_viewer, y_label="correlation")
        self.plots = QTabWidget()
        self.plots.addTab(self.shift_plot, "shifts")
        self.plots.addTab(self.corr_plot, "correlation with the reference")
        layout = dock_layout(self)
        layout.addLayout(form)
        layout.addLayout(buttons)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        layout.addWidget(self.plots, 1)
        self.result: Registration | None = None
        self.layers: list = []  # layers this dock added (registered and summary images)
        self._worker = None
        self._set_busy(False)
        self.run_button.clicked.connect(self.run)
        self.cancel_button.clicked.connect(self.cancel)
        self.save_button.clicked.connect(lambda: self._file_dialog("save"))
        self.load_button.clicked.connect(lambda: self._file_dialog("load"))
        self.view_box.currentTextChanged.connect(self.set_view)
        napari_viewer.layers.events.inserted.connect(self._refresh)
        napari_viewer.layers.events.removed.connect(self._refresh)
        self._refresh()

    def _refresh(self, event=None) -> None:
        ds = self.dataset
        self.setEnabled(ds is not None)
        names = list(ds.info.channel_names) if ds is not None else []
        if [self.channel_box.itemText(i) for i in range(self.channel_box.count())] != names:
            self.channel_box.clear()
            self.channel_box.addItems(names)
            self.plane_box.clear()
            self.plane_box.addItems(["all planes"] + [f"plane {z}" for z in
                                                      range(ds.info.num_planes if ds else 0)])
        self.layers[:] = [layer for layer in self.layers if layer in self.viewer.layers]

    def _raw_layers(self, ds) -> list:
        return [layer for layer in self.viewer.layers
                if layer.metadata.get("scanimage_dataset") is ds and layer_key(layer)]

    # -- running ----------------------------------------------------------------------------
    def settings(self) -> dict:
        shift = self.max_shift_spin.value()
        return {"reference_frames": self.reference_spin.value(),
                "max_shift": shift if shift > 0 else None,
                "subpixel": self.subpixel.isChecked(), "bidi": self.bidi.isChecked()}

    def run(self) -> None:
        """Register in a worker; on success show the results (replacing earlier ones)."""
        ds = self.dataset
        if ds is None or self._worker is not None:
            return
        channel = max(self.channel_box.currentIndex(), 0)
        k = self.plane_box.currentIndex()
        planes = None if k <= 0 else [k - 1]
        self.start_worker(_stages, ds, channel, planes, self.settings(),
                          returned=lambda out: self.show_result(ds, *out), what="registration")

    def cancel(self) -> None:
        """Stop the running registration; earlier results stay as they are."""
        if self._worker is not None:
            self._worker.quit()
            self.status.setText("cancelled; earlier results are unchanged")

    def _set_busy(self, busy: bool) -> None:
        super()._set_busy(busy)
        self.run_button.setEnabled(not busy)
        self.load_button.setEnabled(not busy)

    # -- results ----------------------------------------------------------------------------
    def show_result(self, ds, result: Registration, images: dict | None = None) -> None:
        """Registered layers, plots and (if given) summary-image layers for ``result``."""
        for layer in self.layers:
            if layer in self.viewer.layers:
                self.viewer.layers.remove(layer)
        self.layers = []
        self.result = result
        raw = self._raw_layers(ds)
        for layer in raw:
            meta = layer.metadata["scanimage"]
            data = ds.frames(meta["channel"], plane=meta.get("plane"),
                             slice_sample=meta.get("slice_sample", 0),
                             product=meta.get("product", "intensity"), registration=result)
            data.on_error = getattr(layer.data, "on_error", None)  # failed reads: as the raw
            self.layers.append(self.viewer.add_image(
                data, name=f"{layer.name} registered", scale=layer.scale,
                translate=layer.translate, axis_labels=layer.axis_labels, units=layer.units,
                colormap=layer.colormap, contrast_limits=layer.contrast_limits,
                blending=layer.blending,
                metadata={"scanimage_registration": result, "scanimage_raw": layer.name}))
        image = image_layer_for(self.viewer, ds)
        axes = roi_axes(image)
        if images and axes:
            kw = {k: v for k, v in axes.items() if k != "ndim"}
            for kind in qc.KINDS:
                for label in ("raw", "registered"):
                    data = on_roi_axes(images[label][kind], axes, reduce=np.mean)
                    self.layers.append(self.viewer.add_image(
                        data, name=f"{result.channel} {kind} ({label})", visible=False,
                        colormap="gray", metadata={"scanimage_qc": (kind, label)}, **kw))
        self._plot(ds, result, image)
        self.view_box.setEnabled(True)
        self.set_view(self.view_box.currentText() if self.view_box.currentText() != "raw"
                      else "registered")
        moved = np.abs(result.shifts).max() if result.shifts.size else 0.0
        self.status.setText(f"registered on {result.channel}: shifts up to {moved:.1f} px, "
                            f"median correlation {np.nanmedian(result.correlation):.2f}")

    def _plot(self, ds, result: Registration, image) -> None:
        sample = "mean" if ds.info.frames_per_slice > 1 else 0
        time = np.asarray(ds.timestamps(0, slice_sample=sample), np.float64)[:result.num_times]
        shifts, corr, colours = {}, {}, []
        for z in range(result.num_planes):
            suffix = f" z{z}" if result.num_planes > 1 else ""
            shifts[f"dy{suffix}"] = result.shifts[:, z, 0]
            shifts[f"dx{suffix}"] = result.shifts[:, z, 1]
            corr[f"r{suffix}"] = result.correlation[:, z]
            colours += ["#ff8c1a", "#4fa3ff"]
        for plot in (self.shift_plot, self.corr_plot):
            plot.image_layer = image
        self.shift_plot.set_curves(time, shifts, colours)
        self.corr_plot.set_curves(time, corr)

    def set_view(self, view: str) -> None:
        """"raw", "registered" or "side by side" (napari's grid)."""
        if view not in VIEWS:
            return
        if self.view_box.currentText() != view:
            self.view_box.blockSignals(True)
            self.view_box.setCurrentText(view)
            self.view_box.blockSignals(False)
        registered = [layer for layer in self.layers if "scanimage_raw" in layer.metadata]
        raw_names = {layer.metadata["scanimage_raw"] for layer in registered}
        for layer in self.viewer.layers:
            if layer.name in raw_names:
                layer.visible = view != "registered"
        for layer in registered:
            layer.visible = view != "raw"
        self.viewer.canvas.grid.enabled = view == "side by side"

    # -- files ------------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        if self.result is None:
            raise ScanImageError("nothing to save yet: run or load a registration first")
        out = self.result.save(path)
        self.status.setText(f"saved shifts to {Path(path).name}")
        return out

    def load(self, path: str | Path) -> Registration:
        """Load shifts saved earlier and show them (refused if they do not fit)."""
        ds = self.dataset
        if ds is None:
            raise ScanImageError("open a recording first")
        result = Registration.load(path)
        info = ds.info
        sample = "mean" if info.frames_per_slice > 1 else 0
        result.check_fits(ds.selection(0, slice_sample=sample).num_times(ds.layout),
                          info.num_planes, info.frame_shape)
        self.show_result(ds, result)
        return result

    def _file_dialog(self, what: str) -> None:
        try:
            if what == "save":
                path, _ = QFileDialog.getSaveFileName(self, "Save shifts", "shifts.npz",
                                                      "Registration (*.npz)")
                if path:
                    self.save(path)
            else:
                path, _ = QFileDialog.getOpenFileName(self, "Load shifts", "",
                                                      "Registration (*.npz)")
                if path:
                    self.load(path)
        except (ScanImageError, OSError, ValueError) as exc:
            report_failure(self.status, what, exc)
