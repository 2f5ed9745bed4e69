"""Registration dock: estimate rigid or piecewise-rigid motion in a worker (progress, cancel),
then show registered layers next to the raw ones, shift and correlation plots linked to the
time slider, and before/after summary images (mean, max, std, local correlation) as layers.
A piecewise result also shows its block field as a Vectors layer over the mean image (it
follows the time slider) and the residual motion per frame as a plot.

Cancelling leaves everything as it was.  The computation is the library's
:func:`~napari_scanimage.analysis.registration.iter_register` and
:func:`~napari_scanimage.analysis.qc.iter_summary_images`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from qtpy.QtCore import QTimer
from qtpy.QtWidgets import (
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from ..analysis import qc
from ..analysis.block_qc import residual_motion
from ..analysis.registration import Registration, iter_register
from ..errors import ScanImageError
from ._dock import dock_layout
from ._family import (
    derived_metadata,
    field_on_axes,
    is_registered,
    on_family_axes,
    set_layout,
)
from ._params import Params, check, choice, float_spin, int_spin, set_choices, text
from ._report import report_failure
from ._worker import WorkerDock, labelled
from .plot import PlotDock
from .registration_views import SUMMARIES, VECTOR_GAIN, VIEWS, RegistrationViews
from .roi_layers import image_layer_for
from .selection import layer_key, recordings_in

__all__ = ["RegistrationDock"]


def _stages(ds, kwargs):
    """Worker body: registration (``iter_register(ds, **kwargs)``), then summary images before
    and after; yields (stage, done, total), returns (Registration, {"raw": images,
    "registered": images}).
    """
    result = yield from labelled(iter_register(ds, **kwargs), "registering")
    images = {}
    for label, reg in (("raw", None), ("registered", result)):
        images[label] = yield from labelled(
            qc.iter_summary_images(ds, channel=kwargs["channel"], registration=reg),
            f"summary images ({label})",
        )
    return result, images


def _row(*widgets) -> QWidget:
    box = QWidget()
    row = QHBoxLayout(box)
    row.setContentsMargins(0, 0, 0, 0)
    for w in widgets:
        row.addWidget(w, 1 if isinstance(w, QComboBox) else 0)
    return box


def registration_form() -> Params:
    """The registration parameters: what is aligned (channel, plane) and the settings of
    :func:`~napari_scanimage.analysis.registration.register`.
    """
    return Params(
        [
            [
                text("align on"),
                choice(
                    "channel",
                    tooltip="channel the shifts are estimated on (they apply to every channel)",
                ),
                choice(
                    "plane",
                    [("all planes", None)],
                    tooltip="register every plane, or one (the others get zero shifts)",
                ),
            ],
            [
                text("reference frames"),
                (
                    int_spin(
                        "reference_frames",
                        1,
                        100000,
                        200,
                        tooltip="frames, spread evenly over the recording, that each plane's "
                        "reference is built from",
                    ),
                    1,
                ),
            ],
            [
                text("max shift (px)"),
                (
                    float_spin(
                        "max_shift",
                        0,
                        10000,
                        0,
                        special="auto",
                        tooltip="0 = auto: a tenth of the frame",
                    ),
                    1,
                ),
                (
                    int_spin(
                        "block_size",
                        0,
                        4096,
                        0,
                        special="auto blocks",
                        suffix=" px blocks",
                        step=32,
                        tooltip="block side for piecewise registration; auto: 128 px "
                        "(half the frame on frames under 256 px)",
                    ),
                    1,
                ),
            ],
            [
                check("subpixel", "subpixel", True, "subpixel shifts (else whole pixels)"),
                check(
                    "bidi",
                    "bidirectional",
                    False,
                    "bidirectional phase: estimate the odd-line offset of "
                    "bidirectional scanning and correct it before estimating shifts",
                ),
                check(
                    "piecewise",
                    "piecewise",
                    False,
                    "piecewise-rigid: also a residual shift per block of the frame (a smooth "
                    "field, for tissue that does not move as one piece); slower",
                ),
            ],
        ],
        align_labels=True,
    )


class RegistrationDock(RegistrationViews, WorkerDock, QWidget):
    """Run, inspect, save and load motion registration of the recording in the viewer."""

    def __init__(self, napari_viewer):
        super().__init__()
        self.viewer = napari_viewer
        self.params = registration_form()
        self.view_box = QComboBox()
        self.view_box.addItems(VIEWS)
        self.view_box.setEnabled(False)
        self.summary_box = QComboBox()  # the one QC layer shows the summary image chosen here
        self.summary_box.addItems(SUMMARIES)
        self.summary_box.setEnabled(False)
        self.summary_box.setToolTip(
            "summary image shown in the QC layer: raw vs registered "
            "local correlation shows sharp cells when aligned"
        )
        self.run_button = QPushButton("Register")
        self.cancel_button = QPushButton("Cancel")
        self.save_button = QPushButton("Save shifts…")
        self.load_button = QPushButton("Load shifts…")
        self.progress = QProgressBar()
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.flags = QLabel("")
        self.flags.setWordWrap(True)
        show = QLabel("show")  # in the form's label column
        show.setMinimumWidth(self.params.label_width)
        form = QVBoxLayout()  # two rows, so that the dock fits its column's width
        form.addWidget(_row(show, self.view_box))
        qc_label = QLabel("QC image")
        qc_label.setMinimumWidth(self.params.label_width)
        form.addWidget(_row(qc_label, self.summary_box))
        buttons = QVBoxLayout()
        for pair in ((self.run_button, self.cancel_button), (self.save_button, self.load_button)):
            row = QHBoxLayout()
            for b in pair:
                row.addWidget(b)
            buttons.addLayout(row)
        self.shift_plot = PlotDock(napari_viewer, y_label="shift (px)")
        self.corr_plot = PlotDock(napari_viewer, y_label="correlation")
        self.field_plot = PlotDock(napari_viewer, y_label="residual (px)")
        self.plots = QTabWidget()
        self.plots.addTab(self.shift_plot, "shifts")
        self.plots.addTab(self.corr_plot, "correlation")
        self.plots.setTabToolTip(1, "correlation of each frame with the reference")
        layout = dock_layout(self)
        layout.addWidget(self.params.native)
        layout.addLayout(form)
        layout.addLayout(buttons)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        layout.addWidget(self.flags)
        layout.addWidget(self.plots, 1)
        self.result: Registration | None = None
        self.layers: list = []  # layers this dock added (registered and summary images)
        self.qc_images: dict = {}  # "raw" / "registered" → {kind: (Z, Y, X)}
        self.frame_flags: qc.FrameFlags | None = None
        self._recording = None  # the whole recording the result is of
        self._hidden: list = []  # layers hidden by "side by side", shown again after it
        self._worker = None
        self._set_busy(False)
        self.run_button.clicked.connect(self.run)
        self.cancel_button.clicked.connect(self.cancel)
        self.save_button.clicked.connect(lambda: self._file_dialog("save"))
        self.load_button.clicked.connect(lambda: self._file_dialog("load"))
        self.view_box.currentTextChanged.connect(self.set_view)
        self.summary_box.currentTextChanged.connect(self.set_summary)
        napari_viewer.layers.events.inserted.connect(self._refresh)
        napari_viewer.layers.events.removed.connect(self._refresh)
        self._refresh()

    def _refresh(self, event=None) -> None:
        ds = self.dataset
        self.setEnabled(ds is not None)
        names = list(ds.info.channel_names) if ds is not None else []
        set_choices(self.params.channel, names)
        set_choices(
            self.params.plane,
            [("all planes", None)]
            + [(f"plane {z}", z) for z in range(ds.info.num_planes if ds is not None else 0)],
        )
        # a new list: show_result may be walking the old one while a layer goes
        self.layers = [layer for layer in self.layers if layer in self.viewer.layers]
        self.layers += [  # a block field redrawn on new axes by a change of selection
            layer
            for layer in self.viewer.layers
            if self.result is not None
            and layer.metadata.get("scanimage_field_of") is self.result
            and layer not in self.layers
        ]
        if self._recording is not None and all(
            r is not self._recording for r in recordings_in(self.viewer)
        ):
            self._reset()  # the recording's layers are gone: so is its result
        if ds is not None:  # after the layers being added now (a session opened) are in
            QTimer.singleShot(0, self._adopt)

    def _reset(self) -> None:
        """Forget the result: status, plots, QC and views as before any registration."""
        self._show_hidden()
        for layer in self.layers:
            if layer in self.viewer.layers:
                self.viewer.layers.remove(layer)
        self.layers = []
        self.result = None
        self._recording = None
        self.qc_images = {}
        self.frame_flags = None
        self.status.setText("")
        self.flags.setText("")
        for plot in (self.shift_plot, self.corr_plot, self.field_plot):
            plot.set_curves(np.zeros(0), {})
            plot.image_layer = None
            plot.plot.enableAutoRange()
        self.shift_plot.plot.setLabel("left", "shift (px)")  # not the per-plane legend's
        for item in getattr(self, "_flag_items", []):
            item.getViewBox() and item.getViewBox().removeItem(item)
        self._flag_items: list = []
        if (at := self.plots.indexOf(self.field_plot)) >= 0:
            self.plots.removeTab(at)
        self.view_box.blockSignals(True)
        self.view_box.setCurrentText("raw")
        self.view_box.blockSignals(False)
        self.view_box.setEnabled(False)
        self.summary_box.setEnabled(False)
        self.viewer.canvas.grid.enabled = False

    def _adopt(self) -> None:
        """Registered layers added by others (a session opened) become this dock's result."""
        ds = self.dataset
        found = [
            layer
            for layer in self.viewer.layers
            if is_registered(layer)
            and layer.metadata.get("scanimage_dataset") is ds
            and layer not in self.layers
        ]
        if ds is None or not found or self._worker is not None:
            return
        result = found[0].metadata["scanimage_registration"]
        self.layers += [x for x in found if x.metadata["scanimage_registration"] is result]
        if result is self.result:
            return
        self.result = result
        self._recording = ds.whole
        self.frame_flags = qc.flag_frames(
            result.shifts, result.correlation, result.settings.get("max_shift")
        )
        image = image_layer_for(self.viewer, ds)
        self._plot(ds, result, image)
        if result.piecewise and image is not None:
            self._show_field(ds, result, image)
        self.view_box.setEnabled(True)
        self.view_box.blockSignals(True)
        self.view_box.setCurrentText("registered")
        self.view_box.blockSignals(False)
        self.status.setText(f"registration of the session (on {result.channel})")
        self.flags.setText(self._flag_text(ds, result))

    def _raw_layers(self, ds) -> list:
        return [
            layer
            for layer in self.viewer.layers
            if layer.metadata.get("scanimage_dataset") is ds
            and layer_key(layer)
            and not is_registered(layer)
        ]

    # -- running ----------------------------------------------------------------------------
    def register_kwargs(self) -> dict:
        """The form as keyword arguments of
        :func:`~napari_scanimage.analysis.registration.register` (``channel``, ``planes``,
        ``reference_frames``, ``max_shift``, ``subpixel``, ``bidi``, ``piecewise``,
        ``block_size``).
        """
        kwargs = self.params.asdict()
        plane = kwargs.pop("plane")
        kwargs["planes"] = None if plane is None else [plane]
        kwargs["max_shift"] = kwargs["max_shift"] or None  # 0: automatic
        kwargs["block_size"] = kwargs["block_size"] or None  # 0: automatic
        if kwargs["channel"] is None:  # no recording yet
            kwargs["channel"] = 0
        return kwargs

    def settings(self) -> dict:
        """The registration settings of the form (not what is aligned)."""
        kwargs = self.register_kwargs()
        keys = ("reference_frames", "max_shift", "subpixel", "bidi", "piecewise", "block_size")
        return {k: kwargs[k] for k in keys}

    def run(self) -> None:
        """Register in a worker; on success show the results (replacing earlier ones)."""
        ds = self.dataset
        if ds is None or self._worker is not None:
            return
        self.start_worker(
            _stages,
            ds,
            self.register_kwargs(),
            returned=lambda out: self._returned(ds, out),
            what="registration",
        )

    def _returned(self, ds, out: tuple) -> None:
        if all(r is not ds.whole for r in recordings_in(self.viewer)):
            self.status.setText("the recording was closed while registering: result dropped")
            return
        self.show_result(ds, *out)

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
    def _own_layers(self, ds) -> list:
        """Registered, QC and block field layers of ``ds`` in the viewer (this dock's, or of a
        session opened): what a new result replaces.
        """
        return [
            layer
            for layer in self.viewer.layers
            if layer in self.layers
            or (is_registered(layer) and layer.metadata.get("scanimage_dataset") is ds)
            or (
                "scanimage_field_of" in layer.metadata
                and layer.metadata.get("scanimage_family") is ds
            )
        ]

    def show_result(self, ds, result: Registration, images: dict | None = None) -> None:
        """Registered layers, plots, flagged frames and (if given) one QC layer showing the
        summary image chosen in the dock, for ``result``.

        The layers of an earlier result are given the new data in place (they keep their
        place, colormap and contrast), so registering again with other settings never adds a
        second copy; those the new result has no use for go.
        """
        active = self.viewer.layers.selection.active
        self._show_hidden()
        old = self._own_layers(ds)
        self.result = result
        self._recording = ds.whole
        raw = self._raw_layers(ds)
        image = image_layer_for(self.viewer, ds)
        self.qc_images = dict(images or {})
        registered = {x.metadata.get("scanimage_raw"): x for x in old if is_registered(x)}
        qc_layer = next((x for x in old if "scanimage_qc" in x.metadata), None)
        field = next((x for x in old if "scanimage_field_of" in x.metadata), None)
        placed = field_on_axes(result, image) if result.piecewise and image is not None else None
        keep = {id(registered.get(layer.name)) for layer in raw}
        if self.qc_images and image is not None:
            keep.add(id(qc_layer))
        if placed is not None:
            keep.add(id(field))
        for layer in old:  # first: nothing is drawn with the old result's leftovers
            if id(layer) not in keep and layer in self.viewer.layers:
                self.viewer.layers.remove(layer)
        layers = []
        for layer in raw:
            meta = layer.metadata["scanimage"]
            data = ds.frames(
                meta["channel"],
                plane=meta.get("plane"),
                slice_sample=meta.get("slice_sample", 0),
                product=meta.get("product", "intensity"),
                registration=result,
            )
            data.on_error = getattr(layer.data, "on_error", None)  # failed reads: as the raw
            # the raw layer's selection: the layer is rebuilt when the selection changes
            metadata = {
                "scanimage": dict(meta),
                "scanimage_dataset": ds,
                "scanimage_registration": result,
                "scanimage_raw": layer.name,
            }
            axes = dict(
                scale=list(layer.scale),
                translate=list(layer.translate),
                axis_labels=list(layer.axis_labels),
                units=list(layer.units),
            )
            same = registered.get(layer.name)
            if same is not None:
                set_layout(same, data, **axes)
                same.metadata = metadata
                layers.append(same)
                continue
            layers.append(
                self.viewer.add_image(
                    data,
                    name=f"{layer.name} registered",
                    colormap=layer.colormap,
                    contrast_limits=layer.contrast_limits,
                    blending=layer.blending,
                    metadata=metadata,
                    **axes,
                )
            )
        if self.qc_images and image is not None:
            kind, label = self._summary_choice()
            planes = self.qc_images[label][kind]
            data, kw = on_family_axes(image, planes)
            metadata = derived_metadata(ds, planes, scanimage_qc=(kind, label))
            if qc_layer is not None:
                set_layout(qc_layer, data, **kw)
                qc_layer.metadata = metadata
                qc_layer.name = f"{result.channel} QC"
            else:
                qc_layer = self.viewer.add_image(
                    data,
                    name=f"{result.channel} QC",
                    visible=False,
                    colormap="gray",
                    metadata=metadata,
                    **kw,
                )
            layers.append(qc_layer)
        self.layers = layers
        self.summary_box.setEnabled(bool(self.qc_images))
        if qc_layer is not None and qc_layer in self.layers and qc_layer.visible:
            self.set_summary()  # the new summary image's contrast
        if placed is not None:
            self._show_field(ds, result, image, field)
        if active is not None and active in self.viewer.layers:  # the user's layer stays active
            self.viewer.layers.selection.active = active
        self.frame_flags = qc.flag_frames(
            result.shifts, result.correlation, result.settings.get("max_shift")
        )
        self._plot(ds, result, image)
        self.view_box.setEnabled(True)
        self.set_view(
            self.view_box.currentText() if self.view_box.currentText() != "raw" else "registered"
        )
        moved = np.abs(result.shifts).max() if result.shifts.size else 0.0
        text = (
            f"registered on {result.channel}: shifts up to {moved:.1f} px, "
            f"median correlation {np.nanmedian(result.correlation):.2f}"
        )
        if result.piecewise:
            text += (
                f"; block residuals {np.nanmedian(residual_motion(result)):.2f} px RMS (median)"
                + (
                    f", drawn ×{VECTOR_GAIN}"
                    if placed is not None
                    else " (the block field is drawn on layers with a time axis only)"
                )
            )
        self.status.setText(text)
        self.flags.setText(self._flag_text(ds, result))

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
        result.check_fits(
            ds.selection(0, slice_sample=sample).num_times(ds.layout),
            info.num_planes,
            info.frame_shape,
        )
        self.show_result(ds, result)
        return result

    def _file_dialog(self, what: str) -> None:
        try:
            if what == "save":
                path, _ = QFileDialog.getSaveFileName(
                    self, "Save shifts", "shifts.npz", "Registration (*.npz)"
                )
                if path:
                    self.save(path)
            else:
                path, _ = QFileDialog.getOpenFileName(
                    self, "Load shifts", "", "Registration (*.npz)"
                )
                if path:
                    self.load(path)
        except (ScanImageError, OSError, ValueError) as exc:
            report_failure(self.status, what, exc)
