"""Trace plot dock: one curve per ROI of a Shapes / Labels layer, in the ROI's colour.

Traces are computed in a worker thread (progress bar, cancel) with the same
:func:`~napari_scanimage.analysis.traces.iter_traces` the library and CLI use, with the dock's
settings (neuropil subtraction, dF/F baseline: :class:`~napari_scanimage.session.TraceSettings`,
read and set with :meth:`TracePlotDock.trace_settings` / :meth:`~TracePlotDock.set_trace_settings`).
Each ROI's trace is cached under its geometry and the settings, so editing one ROI recomputes
only that one (all of them with neuropil subtraction: the annuli leave other ROIs out);
renaming, recolouring, hiding or stacking recomputes nothing.  Export as tidy CSV or copy to
the clipboard; "Mean image" adds the recording's mean image to draw ROIs on.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
from qtpy.QtCore import QTimer
from qtpy.QtWidgets import (
    QApplication,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSpinBox,
)

from ..analysis.qc import iter_summary_images
from ..analysis.rois import Roi, RoiSet
from ..analysis.traces import Traces, iter_traces
from ..errors import ScanImageError
from ..flim.lifetime import LifetimeTraces, lifetime_traces
from ..session import TraceSettings
from ._labels import is_labels, label_values
from ._report import report_failure
from ._worker import WorkerDock
from .plot import PlotDock
from .roi_layers import image_layer_for, layer_rois, on_roi_axes, roi_axes, set_trace_shown, trace_shown

__all__ = ["TracePlotDock", "roi_signature"]

METRICS = {"mean": "mean", "sum": "sum", "dF/F": "dff", "lifetime (ns)": "lifetime",
           "phasor g": "phasor", "phasor s": "phasor"}
PHOTON_KINDS = ("lifetime", "phasor")  # `.siff` only; drawn with their confidence band
DEBOUNCE_MS = 200


def roi_signature(roi: Roi) -> str:
    """What a trace depends on (geometry, plane, width), not the name or colour."""
    h = hashlib.blake2b(digest_size=16)
    h.update(f"{roi.kind}|{roi.plane}|{roi.width}".encode())
    if roi.vertices is not None:
        h.update(np.ascontiguousarray(roi.vertices, np.float64).tobytes())
    if roi.mask is not None:
        h.update(repr(np.shape(roi.mask)).encode())
        h.update(np.packbits(np.asarray(roi.mask, bool)).tobytes())
    return h.hexdigest()


def _run(dataset, rois, channel, kind, slice_sample, registration=None, irf_offset_ns=0.0,
         options=None):
    """Worker body: yields (done, total); returns Traces (LifetimeTraces for photon kinds).
    ``options``: the percentile / window_s / neuropil / neuropil_radii of :func:`iter_traces`."""
    if kind in PHOTON_KINDS:
        yield 0, 1
        out = lifetime_traces(dataset, rois, channel=channel, kind=kind,
                              registration=registration, irf_offset_ns=irf_offset_ns)
        yield 1, 1
        return out
    return (yield from iter_traces(dataset, rois, channel=channel, kind=kind,
                                   slice_sample=slice_sample, registration=registration,
                                   **(options or {})))


def _spin(cls, low, high, value, step, tip, suffix="", decimals=None):
    box = cls()
    box.setRange(low, high)
    box.setSingleStep(step)
    if decimals is not None:
        box.setDecimals(decimals)
    box.setValue(value)
    box.setSuffix(suffix)
    box.setToolTip(tip)
    box.setKeyboardTracking(False)  # typing "15" is one change, not "1" then "15"
    return box


class TracePlotDock(WorkerDock, PlotDock):
    """Traces of the ROIs in a Shapes or Labels layer, linked to the viewer's time."""

    def __init__(self, napari_viewer):
        super().__init__(napari_viewer, y_label="mean", scroll=True)
        self.layer_box = QComboBox()
        self.channel_box = QComboBox()
        self.metric_box = QComboBox()
        self.metric_box.addItems([m for m in METRICS if METRICS[m] not in PHOTON_KINDS])
        self.registered = QCheckBox("registered")
        self.registered.setToolTip("traces of the registered frames (after Registration)")
        self.registered.setChecked(True)
        self.export_button = QPushButton("CSV…")
        self.copy_button = QPushButton("Copy")
        self.open_session_button = QPushButton("Open session…")
        self.session_button = QPushButton("Save session…")
        self.session_button.setToolTip("recording, ROIs, registration, fit and trace settings, "
                                       "to replay with 'napari-scanimage traces SESSION'")
        self.neuropil_box = QCheckBox("neuropil")
        self.neuropil_box.setToolTip("subtract coefficient × the mean of an annulus around "
                                     "each ROI (other ROIs left out)")
        self.neuropil_coef = _spin(QDoubleSpinBox, 0.0, 2.0, 0.7, 0.05,
                                   "neuropil coefficient", decimals=2)
        self.neuropil_coef.setPrefix("× ")
        self.neuropil_inner = _spin(QSpinBox, 0, 50, 2, 1, "annulus: from this many pixels "
                                    "out of the ROI…", " px")
        self.neuropil_inner.setPrefix("ring ")
        self.neuropil_outer = _spin(QSpinBox, 1, 100, 8, 1, "…to this many (pixels)", " px")
        self.neuropil_outer.setPrefix("– ")
        self.percentile = _spin(QDoubleSpinBox, 0.0, 100.0, 8.0, 1.0,
                                "dF/F baseline F0: this percentile of the trace", decimals=1)
        self.percentile.setPrefix("F0 p")
        self.window = _spin(QDoubleSpinBox, 0.0, 3600.0, 0.0, 5.0,
                            "F0 over a running window of this many seconds (0: whole trace)",
                            " s", decimals=1)
        self.window.setPrefix("win ")
        self.window.setSpecialValueText("win: all")
        self.stacked_box = QCheckBox("stacked")
        self.stacked_box.setToolTip("draw the traces one above the other")
        self.mean_button = QPushButton("Mean image")
        self.mean_button.setToolTip("add the mean image of the selected channel (registered "
                                    "when shown so) as a layer to draw ROIs on")
        self.cancel_button = QPushButton("Cancel")
        self.progress = QProgressBar()
        self.progress.setMaximumHeight(12)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        top = QHBoxLayout()
        for w in (self.layer_box, self.channel_box, self.metric_box):
            top.addWidget(w, 1)
        top.addWidget(self.registered)
        options = QHBoxLayout()
        for w in (self.neuropil_box, self.neuropil_coef, self.neuropil_inner,
                  self.neuropil_outer, self.percentile, self.window, self.stacked_box,
                  self.mean_button):
            options.addWidget(w)
        bottom = QHBoxLayout()
        for w in (self.progress, self.cancel_button, self.export_button, self.copy_button,
                  self.open_session_button, self.session_button):
            bottom.addWidget(w)
        self.layout_.insertLayout(0, top)
        self.layout_.insertLayout(1, options)
        self.layout_.addLayout(bottom)
        self.layout_.addWidget(self.status)
        self._set_busy(False)
        self._layers: list = []
        self._layer = None
        self._cache: dict[tuple, dict] = {}  # key → {"values", "per_plane" or band and photons}
        self._times: dict[tuple, np.ndarray] = {}
        self._worker = None
        self._pending: tuple | None = None
        self.result: Traces | None = None
        self.computed_rois = 0  # ROIs computed (not taken from the cache) since creation
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(DEBOUNCE_MS)
        self._timer.timeout.connect(self.refresh)
        self.layer_box.currentIndexChanged.connect(self._choose_layer)
        self.channel_box.currentIndexChanged.connect(self.schedule)
        self.metric_box.currentIndexChanged.connect(self.schedule)
        self.registered.toggled.connect(self.schedule)
        self.neuropil_box.toggled.connect(self._settings_changed)
        for box in (self.neuropil_coef, self.neuropil_inner, self.neuropil_outer,
                    self.percentile, self.window):  # valueChanged: on release / Enter
            box.valueChanged.connect(self._settings_changed)
        self.metric_box.currentIndexChanged.connect(self._enable_options)
        self.stacked_box.toggled.connect(self.set_stacked)
        self.mean_button.clicked.connect(self.add_mean_image)
        self._mean_worker = None
        self.export_button.clicked.connect(self._export_dialog)
        self.copy_button.clicked.connect(self.copy_to_clipboard)
        self.session_button.clicked.connect(self._session_dialog)
        self.open_session_button.clicked.connect(self._open_session_dialog)
        self.cancel_button.clicked.connect(self.cancel)
        napari_viewer.layers.events.inserted.connect(self._refresh_layers)
        napari_viewer.layers.events.removed.connect(self._refresh_layers)
        self._refresh_layers()
        self._enable_options()

    # -- settings ---------------------------------------------------------------------------
    def _enable_options(self, index=None) -> None:
        kind = METRICS.get(self.metric_box.currentText(), "mean")
        neuropil = kind in ("mean", "dff")  # sums and photon metrics take none
        self.neuropil_box.setEnabled(neuropil)
        for box in (self.neuropil_coef, self.neuropil_inner, self.neuropil_outer):
            box.setEnabled(neuropil and self.neuropil_box.isChecked())
        for box in (self.percentile, self.window):
            box.setEnabled(kind == "dff")

    def _settings_changed(self, value=None) -> None:
        self._enable_options()
        self.schedule()

    def trace_settings(self) -> TraceSettings:
        """The dock's settings (every control) as the session stores them."""
        kind = METRICS.get(self.metric_box.currentText(), "mean")
        window = self.window.value()
        channel = self.channel_box.currentText() or None
        return TraceSettings(kind=kind, channel=channel, percentile=self.percentile.value(),
                             window_s=window if window > 0 else None,
                             neuropil=self.neuropil_coef.value()
                             if self.neuropil_box.isChecked() else None,
                             neuropil_radii=(self.neuropil_inner.value(),
                                             self.neuropil_outer.value()),
                             stacked=self.stacked_box.isChecked())

    def set_trace_settings(self, settings: TraceSettings) -> None:
        """Set every control from ``settings`` (one recomputation follows)."""
        boxes = (self.metric_box, self.channel_box, self.neuropil_box, self.neuropil_coef,
                 self.neuropil_inner, self.neuropil_outer, self.percentile, self.window)
        for box in boxes:  # one refresh at the end, not one per control
            box.blockSignals(True)
        try:
            names = [m for m in METRICS if METRICS[m] == settings.kind]
            if names and self.metric_box.findText(names[0]) < 0:
                raise ScanImageError(f"the {settings.kind!r} traces need a .siff recording")
            if names:
                self.metric_box.setCurrentText(names[0])
            channel = settings.channel
            if isinstance(channel, str) and self.channel_box.findText(channel) >= 0:
                self.channel_box.setCurrentText(channel)
            elif isinstance(channel, int) and 0 <= channel < self.channel_box.count():
                self.channel_box.setCurrentIndex(channel)
            self.neuropil_box.setChecked(settings.neuropil is not None)
            if settings.neuropil is not None:
                self.neuropil_coef.setValue(settings.neuropil)
            self.neuropil_inner.setValue(settings.neuropil_radii[0])
            self.neuropil_outer.setValue(settings.neuropil_radii[1])
            self.percentile.setValue(settings.percentile)
            self.window.setValue(settings.window_s or 0.0)
        finally:
            for box in boxes:
                box.blockSignals(False)
        self.stacked_box.setChecked(bool(getattr(settings, "stacked", False)))
        self._label_axis()
        self._enable_options()
        self.schedule()

    def _label_axis(self) -> None:
        step = self.stack_step()
        stacked = f" (stacked {step:.3g} apart)" if self.stacked_box.isChecked() and step \
            else ""
        self.plot.setLabel("left", self.metric_box.currentText() + stacked)

    def set_stacked(self, stacked: bool) -> None:
        """Stacked display (no recomputation); the checkbox follows."""
        if self.stacked_box.isChecked() != bool(stacked):
            self.stacked_box.setChecked(bool(stacked))  # comes back here
            return
        super().set_stacked(stacked)
        self._label_axis()

    def _options(self, kind: str) -> dict:
        """iter_traces keywords for ``kind`` (only those that change its result)."""
        out = {}
        if kind in ("mean", "dff") and self.neuropil_box.isChecked():
            out.update(neuropil=self.neuropil_coef.value(),
                       neuropil_radii=(self.neuropil_inner.value(),
                                       self.neuropil_outer.value()))
        if kind == "dff":
            window = self.window.value()
            out.update(percentile=self.percentile.value(),
                       window_s=window if window > 0 else None)
        return out

    # -- sources ----------------------------------------------------------------------------
    def _refresh_layers(self, event=None) -> None:
        layers = [layer for layer in self.viewer.layers
                  if layer.__class__.__name__ in ("Shapes", "Labels")]
        ds = self.dataset
        names = list(ds.info.channel_names) if ds is not None else []
        if [self.channel_box.itemText(i) for i in range(self.channel_box.count())] != names:
            self.channel_box.blockSignals(True)
            self.channel_box.clear()
            self.channel_box.addItems(names)
            self.channel_box.blockSignals(False)
        self.layer_box.blockSignals(True)
        self.layer_box.clear()
        self.layer_box.addItems([layer.name for layer in layers])
        if self._layer in layers:
            self.layer_box.setCurrentIndex(layers.index(self._layer))
        self.layer_box.blockSignals(False)
        self._layers = layers
        metrics = [m for m in METRICS if ds is not None and ds.is_siff
                   or METRICS[m] not in PHOTON_KINDS]
        if [self.metric_box.itemText(i) for i in range(self.metric_box.count())] != metrics:
            current = self.metric_box.currentText()
            self.metric_box.blockSignals(True)
            self.metric_box.clear()
            self.metric_box.addItems(metrics)
            if current in metrics:
                self.metric_box.setCurrentText(current)
            self.metric_box.blockSignals(False)
        self.registered.setVisible(self.registration() is not None)
        self._choose_layer()

    def _choose_layer(self, index=None) -> None:
        i = self.layer_box.currentIndex()
        layer = self._layers[i] if 0 <= i < len(self._layers) else None
        if layer is not self._layer:
            for name in ("data", "paint", "features", "edge_color", "highlight",
                         "selected_label"):
                if self._layer is not None and hasattr(self._layer.events, name):
                    getattr(self._layer.events, name).disconnect(self.schedule)
            self._layer = layer
            for name in ("data", "paint", "features", "edge_color", "highlight",
                         "selected_label"):
                if layer is not None and hasattr(layer.events, name):
                    getattr(layer.events, name).connect(self.schedule)
        self.schedule()

    def registration(self):
        """The registration shown in the viewer (by the Registration dock), if any."""
        for layer in self.viewer.layers:
            reg = layer.metadata.get("scanimage_registration")
            if reg is not None:
                return reg
        return None

    def irf_offset_ns(self) -> float:
        """IRF offset of the decay fit shown by the FLIM dock (0: lifetimes are mean arrival
        times)."""
        for layer in self.viewer.layers:
            fit = layer.metadata.get("scanimage_decay_fit")
            if fit is not None:
                return float(fit.irf_offset_ns)
        return 0.0

    def select_layer(self, layer) -> None:
        self.layer_box.setCurrentIndex(self._layers.index(layer))

    # -- computing --------------------------------------------------------------------------
    def schedule(self, event=None) -> None:
        """Recompute after edits settle (a drag emits many events)."""
        self._timer.start()

    def _request(self):
        """(dataset, RoiSet, channel, kind, slice_sample, image layer) for the current state."""
        ds, layer = self.dataset, self._layer
        if ds is None or layer is None:
            return None
        image = image_layer_for(self.viewer, ds)
        rois = layer_rois(layer, ds, image)
        if not len(rois):
            return None
        meta = image.metadata.get("scanimage", {}) if image is not None else {}
        sample = meta.get("slice_sample", "mean")
        sample = "mean" if sample in (None, "axis") else sample
        channel = max(self.channel_box.currentIndex(), 0)
        reg = self.registration() if self.registered.isChecked() else None
        return ds, rois, channel, METRICS[self.metric_box.currentText()], sample, image, reg

    def refresh(self) -> None:
        """Compute the traces missing from the cache (in a worker), then draw."""
        try:
            request = self._request()
        except (ScanImageError, ValueError) as exc:
            self.status.setText(f"ROIs cannot be used: {exc}")
            return
        if request is None:
            self.set_curves(np.zeros(0), {})
            self.result = None
            self.status.setText("draw ROIs in a Shapes or Labels layer over a recording")
            return
        ds, rois, channel, kind, sample, image, reg = request
        self.image_layer = image
        self._label_axis()
        offset = self.irf_offset_ns() if kind in PHOTON_KINDS else 0.0
        options = self._options(kind)
        settings = (id(ds), channel, kind, sample, None if reg is None else id(reg), offset,
                    tuple(sorted(options.items())))
        signatures = [roi_signature(r) for r in rois]
        if "neuropil" in options:  # each annulus leaves every other ROI out
            together = hashlib.blake2b("".join(signatures).encode(), digest_size=8).hexdigest()
            signatures = [f"{sig}+{together}" for sig in signatures]
        keys = [(sig, *settings) for sig in signatures]
        missing = [k for k, key in enumerate(keys) if key not in self._cache]
        if not missing:
            self._draw(rois, keys, settings)
            return
        if self._worker is not None:  # a newer request replaces the running one
            self._pending = request
            self._worker.quit()
            return
        subset = RoiSet([rois[k] for k in missing], frame_shape=rois.frame_shape,
                        num_planes=rois.num_planes)
        if "neuropil" in dict(settings[6]):  # the annuli need every ROI's mask
            subset, missing = rois, list(range(len(rois)))
        self._start(ds, subset, [keys[k] for k in missing], channel, kind, sample, settings, reg)

    def _start(self, ds, subset, keys, channel, kind, sample, settings, reg) -> None:
        self.status.setText(f"computing {len(subset)} trace(s)…")

        def returned(result):
            for k, key in enumerate(keys):
                if kind in PHOTON_KINDS:
                    self._cache[key] = {"values": result.values[k], "low": result.ci_low[k],
                                        "high": result.ci_high[k], "counts": result.counts[k]}
                else:
                    self._cache[key] = {"values": result.values[k],
                                        "per_plane": result.per_plane[k]}
            self._times[settings] = result.time
            self.computed_rois += len(keys)

        def finished():
            pending, self._pending = self._pending, None
            cancelled, self._cancelled = self._cancelled, False
            if cancelled and pending is None:  # the user's Cancel: keep what is drawn
                return
            self.refresh()  # draws, or computes what changed meanwhile

        self._cancelled = False

        self.start_worker(_run, ds, subset, channel, kind, sample, reg, settings[5],
                          dict(settings[6]), returned=returned,
                          finished=finished, what="traces")

    def cancel(self) -> None:
        """Stop the running computation; what is cached stays."""
        if self._worker is not None:
            self._pending = None
            self._cancelled = True
            self._worker.quit()
            self.status.setText("cancelled")

    def _draw(self, rois: RoiSet, keys: list[tuple], settings: tuple) -> None:
        time = self._times[settings]
        kind = settings[2]
        entries = [self._cache[key] for key in keys]

        def stacked(name, empty_shape):
            return np.stack([e[name] for e in entries]) if entries else np.zeros(empty_shape)

        ds = self.dataset
        channel = ds.info.channel_names[settings[1]] if ds is not None else ""
        T = len(time)
        bands = None
        if kind in PHOTON_KINDS:
            shape = (0, T, 2) if kind == "phasor" else (0, T)
            values, low, high = (stacked(n, shape) for n in ("values", "low", "high"))
            self.result = LifetimeTraces(values, stacked("counts", (0, T)), low, high,
                                         rois.names, time, channel, kind)
            if kind == "phasor":  # g or s
                c = 0 if self.metric_box.currentText() == "phasor g" else 1
                values, low, high = values[..., c], low[..., c], high[..., c]
            bands = {n: (lo, hi) for n, lo, hi in zip(rois.names, low, high, strict=True)}
        else:
            values = stacked("values", (0, T))
            self.result = Traces(values, rois.names, time, channel, kind,
                                 stacked("per_plane", (0, T, 1)))
        layer = self._layer
        shown = trace_shown(layer)
        hidden = {n for n, s in zip(rois.names, shown, strict=False) if not s}
        self.set_curves(time, dict(zip(rois.names, values, strict=True)), rois.colours,
                        bands=bands, hidden=hidden, highlighted=self._selected_names(rois))
        self._label_axis()
        self.status.setText(f"{len(rois)} ROI(s), {channel}, {self.metric_box.currentText()}")

    def _selected_names(self, rois: RoiSet) -> set[str]:
        """Names of the ROIs selected in the layer (drawn highlighted)."""
        layer = self._layer
        if layer is None:
            return set()
        if is_labels(layer):
            values = label_values(layer)
            label = layer.selected_label
            return {rois.names[values.index(label)]} if label in values and \
                len(values) == len(rois) else set()
        return {rois.names[k] for k in layer.selected_data if k < len(rois)}

    def curve_toggled(self, name: str, visible: bool) -> None:
        """A legend click hid / showed a curve: the ROI layer (and the ROI list) follow."""
        if self.result is not None and name in self.result.names and self._layer is not None:
            set_trace_shown(self._layer, self.result.names.index(name), visible)

    def curve_chosen(self, name: str) -> None:
        """A click on a legend name selects that ROI in the layer (highlighted there, in the
        ROI list and in the plot)."""
        if self.result is None or name not in self.result.names or self._layer is None:
            return
        k = self.result.names.index(name)
        if is_labels(self._layer):
            self._layer.selected_label = label_values(self._layer)[k]
        else:
            self._layer.selected_data = {k}
            self._layer.events.highlight()

    # -- mean image -------------------------------------------------------------------------
    def add_mean_image(self):
        """Compute (in a worker) the mean image of the selected channel — of the registered
        frames when the traces use them — and add it as a layer under the ROI layers;
        returns the worker (None when there is no recording or one is running)."""
        ds = self.dataset
        if ds is None or self._mean_worker is not None:
            if ds is None:
                self.status.setText("open a recording first")
            return None
        from napari.qt.threading import create_worker

        channel = max(self.channel_box.currentIndex(), 0)
        reg = self.registration() if self.registered.isChecked() else None
        image = image_layer_for(self.viewer, ds)
        name = f"mean {ds.info.channel_names[channel]}" + (" (registered)" if reg else "")
        worker = create_worker(iter_summary_images, ds, channel=channel, registration=reg,
                               _start_thread=False)
        self._mean_worker = worker
        self.mean_button.setEnabled(False)
        self.status.setText("computing the mean image…")

        def returned(images):
            axes = roi_axes(image)
            data = images["mean"] if not axes else on_roi_axes(images["mean"], axes,
                                                                 reduce=np.mean)
            axes.pop("ndim", None)
            if name in self.viewer.layers:
                self.viewer.layers[name].data = data
                layer = self.viewer.layers[name]
            else:
                layer = self.viewer.add_image(data, name=name, colormap="gray", **axes)
                rois = [i for i, lay in enumerate(self.viewer.layers)
                        if lay.__class__.__name__ in ("Shapes", "Labels")]
                here = self.viewer.layers.index(layer)
                if rois and min(rois) < here:  # ROIs stay drawn on top
                    self.viewer.layers.move(here, min(rois))
            self.mean_layer = layer
            self.status.setText(f"added {name}: draw ROIs on it")

        def errored(exc):
            report_failure(self.status, "the mean image", exc)

        def finished():
            self._mean_worker = None
            self.mean_button.setEnabled(True)

        worker.returned.connect(returned)
        worker.errored.connect(errored)
        worker.finished.connect(finished)
        QTimer.singleShot(0, worker.start)
        return worker

    # -- export -----------------------------------------------------------------------------
    def export_csv(self, path: str | Path) -> Path:
        if self.result is None:
            raise ScanImageError("no traces to export yet")
        return self.result.to_csv(path)

    def copy_to_clipboard(self) -> str:
        text = self.result.csv_text() if self.result is not None else ""
        QApplication.clipboard().setText(text)
        return text

    def session(self):
        """A :class:`~napari_scanimage.session.Session` of what the plot shows."""
        from ..session import Session

        request = self._request()
        if request is None:
            raise ScanImageError("nothing to save: open a recording and draw ROIs first")
        ds, rois, channel, kind, sample, image, reg = request
        fit = None
        if kind in PHOTON_KINDS:
            for layer in self.viewer.layers:
                fit = layer.metadata.get("scanimage_decay_fit") or fit
        trace = self.trace_settings()
        trace.channel = None  # the session's channel
        return Session(sources=list(ds.paths), channel=channel, slice_sample=sample,
                       roi_set=rois, registration_result=reg, decay_fit=fit, trace=trace)

    def save_session(self, path: str | Path) -> Path:
        out = self.session().save(path)
        self.status.setText(f"saved session {Path(path).name}")
        return out

    def _session_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save session", "session.json",
                                              "Session (*.json)")
        if path:
            try:
                self.save_session(path)
            except (ScanImageError, OSError) as exc:
                report_failure(self.status, "saving the session", exc)

    def _open_session_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open session", "", "Session (*.json)")
        if path:
            try:  # the plugin's session reader: the recording's layers and the ROIs
                self.viewer.open(path, plugin="napari-scanimage")
            except (ScanImageError, OSError, ValueError) as exc:
                report_failure(self.status, "opening the session", exc)

    def _export_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export traces", "traces.csv", "CSV (*.csv)")
        if path:
            try:
                self.export_csv(path)
                self.status.setText(f"wrote {Path(path).name}")
            except (ScanImageError, OSError) as exc:
                report_failure(self.status, "export", exc)
