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
from typing import Any

import numpy as np
from qtpy.QtCore import QTimer
from qtpy.QtWidgets import (
    QApplication,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
)

from ..analysis.qc import iter_summary_images
from ..analysis.rois import Roi, RoiSet
from ..analysis.traces import Traces, iter_traces
from ..errors import ScanImageError
from ..flim.lifetime import LifetimeTraces, lifetime_traces
from ..session import TraceSettings
from ._labels import is_labels, label_values
from ._params import set_choices
from ._report import report_failure
from ._worker import WorkerDock
from .plot import PlotDock
from .roi_layers import (
    accepted_rows,
    image_layer_for,
    layer_rois,
    on_roi_axes,
    roi_axes,
    set_trace_shown,
    trace_shown,
)
from .trace_form import (
    METRICS,
    PHOTON_KINDS,
    apply_settings,
    settings_of,
    trace_form,
    trace_options,
)
from .trace_sessions import TraceSessions

__all__ = ["TracePlotDock", "roi_signature"]

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


def _run(
    dataset, rois, channel, kind, slice_sample, registration=None, irf_offset_ns=0.0, options=None
):
    """Worker body: yields (done, total); returns Traces (LifetimeTraces for photon kinds).
    ``options``: the percentile / window_s / neuropil / neuropil_radii of :func:`iter_traces`.
    """
    if kind in PHOTON_KINDS:
        yield 0, 1
        out = lifetime_traces(
            dataset,
            rois,
            channel=channel,
            kind=kind,
            registration=registration,
            irf_offset_ns=irf_offset_ns,
        )
        yield 1, 1
        return out
    return (
        yield from iter_traces(
            dataset,
            rois,
            channel=channel,
            kind=kind,
            slice_sample=slice_sample,
            registration=registration,
            **(options or {}),
        )
    )


class TracePlotDock(WorkerDock, PlotDock, TraceSessions):
    """Traces of the ROIs in a Shapes or Labels layer, linked to the viewer's time."""

    def __init__(self, napari_viewer):
        super().__init__(napari_viewer, y_label="mean", scroll=True, legend_beside=True)
        self.params = trace_form()
        self.export_button = QPushButton("CSV…")
        self.copy_button = QPushButton("Copy")
        self.open_session_button = QPushButton("Open session…")
        self.session_button = QPushButton("Save session…")
        self.session_button.setToolTip(
            "recording, ROIs, registration, fit and trace settings, "
            "to replay with 'napari-scanimage traces SESSION'"
        )
        self.mean_button = self.params[2][-1].native
        self.cancel_button = QPushButton("Cancel")
        self.progress = QProgressBar()
        self.progress.setMaximumHeight(12)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        bottom = QHBoxLayout()
        for w in (
            self.progress,
            self.cancel_button,
            self.export_button,
            self.copy_button,
            self.open_session_button,
            self.session_button,
        ):
            bottom.addWidget(w)
        self.layout_.insertWidget(0, self.params.native)
        self.layout_.addLayout(bottom)
        self.layout_.addWidget(self.status)
        self._set_busy(False)
        self._layers: list = []
        self._layer = None
        self._rows: list[int] = []  # the layer row of each traced ROI (see _request)
        self._adopted: list = []  # the trace settings of sessions already set
        self._cache: dict[tuple, dict] = {}  # key → {"values", "per_plane" or band and photons}
        self._times: dict[tuple, np.ndarray] = {}
        self._worker = None
        self._pending: tuple | None = None
        self._cancelled = False
        self.result: Traces | LifetimeTraces | None = None
        self.computed_rois = 0  # ROIs computed (not taken from the cache) since creation
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(DEBOUNCE_MS)
        self._timer.timeout.connect(self.refresh)
        params = self.params
        params.rois.changed.connect(self._choose_layer)
        for name in ("channel", "metric", "registered"):
            getattr(params, name).changed.connect(self.schedule)
        for name in (
            "neuropil",
            "neuropil_coef",
            "neuropil_inner",
            "neuropil_outer",
            "percentile",
            "window_s",
        ):  # spin boxes: on release / Enter
            getattr(params, name).changed.connect(self._settings_changed)
        params.metric.changed.connect(self._enable_options)
        params.stacked.changed.connect(self.set_stacked)
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
        params = self.params
        kind = METRICS.get(params.metric.value, "mean")
        neuropil = kind in ("mean", "dff")  # sums and photon metrics take none
        params.neuropil.enabled = neuropil
        for name in ("neuropil_coef", "neuropil_inner", "neuropil_outer"):
            getattr(params, name).enabled = neuropil and params.neuropil.value
        for name in ("percentile", "window_s"):
            getattr(params, name).enabled = kind == "dff"

    def _settings_changed(self, value=None) -> None:
        self._enable_options()
        self.schedule()

    def trace_settings(self) -> TraceSettings:
        """The dock's settings (every control) as the session stores them."""
        return settings_of(self.params)

    def set_trace_settings(self, settings: TraceSettings) -> None:
        """Set every control from ``settings`` (one recomputation follows)."""
        apply_settings(self.params, settings)
        self._label_axis()
        self._enable_options()
        self.schedule()

    def _label_axis(self) -> None:
        step = self.stack_step()
        stacked = f" (stacked {step:.3g} apart)" if self.params.stacked.value and step else ""
        self.plot.setLabel("left", str(self.params.metric.value) + stacked)

    def set_stacked(self, stacked: bool) -> None:
        """Stacked display (no recomputation); the checkbox follows."""
        if self.params.stacked.value != bool(stacked):
            self.params.stacked.value = bool(stacked)  # comes back here
            return
        super().set_stacked(stacked)
        self._label_axis()

    def _options(self, kind: str) -> dict[str, Any]:
        """iter_traces keywords for ``kind`` from the form (only those that change its
        result).
        """
        return trace_options(self.params, kind)

    def channel_index(self) -> int:
        """The index of the form's channel (0 before a recording is open)."""
        choices = self.params.channel.choices
        value = self.params.channel.value
        return choices.index(value) if value in choices else 0

    # -- sources ----------------------------------------------------------------------------
    def _refresh_layers(self, event=None) -> None:
        layers = [
            layer
            for layer in self.viewer.layers
            if layer.__class__.__name__ in ("Shapes", "Labels")
        ]
        ds = self.dataset
        names = list(ds.info.channel_names) if ds is not None else []
        params = self.params
        metrics = [
            m for m in METRICS if ds is not None and ds.is_siff or METRICS[m] not in PHOTON_KINDS
        ]
        with (
            params.channel.changed.blocked(),
            params.rois.changed.blocked(),
            params.metric.changed.blocked(),
        ):
            set_choices(params.channel, names)
            set_choices(params.rois, [layer.name for layer in layers])
            if self._layer is not None and self._layer in layers:
                params.rois.value = self._layer.name
            set_choices(params.metric, metrics)  # the current one stays when it is there
        self._layers = layers
        params.registered.native.setVisible(self.registration() is not None)
        self._choose_layer()
        self._adopt_session()

    def _choose_layer(self, index=None) -> None:
        name = self.params.rois.value
        layer = next((x for x in self._layers if x.name == name), None)
        if layer is not self._layer:
            for name in ("data", "paint", "features", "edge_color", "highlight", "selected_label"):
                if self._layer is not None and hasattr(self._layer.events, name):
                    getattr(self._layer.events, name).disconnect(self.schedule)
            self._layer = layer
            for name in ("data", "paint", "features", "edge_color", "highlight", "selected_label"):
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
        times).
        """
        for layer in self.viewer.layers:
            fit = layer.metadata.get("scanimage_decay_fit")
            if fit is not None:
                return float(fit.irf_offset_ns)
        return 0.0

    def select_layer(self, layer) -> None:
        self.params.rois.value = layer.name

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
        # detected candidates awaiting review get no trace (nor a legend entry, nor a place
        # in a session); ``_rows`` maps each traced ROI to its row in the layer
        self._rows = accepted_rows(layer)
        if len(self._rows) < len(rois):
            rois = RoiSet(
                [rois[k] for k in self._rows],
                frame_shape=rois.frame_shape,
                num_planes=rois.num_planes,
                source=rois.source,
            )
        if not len(rois):
            return None
        meta = image.metadata.get("scanimage", {}) if image is not None else {}
        sample = meta.get("slice_sample", "mean")
        sample = "mean" if sample in (None, "axis") else sample
        channel = self.channel_index()
        reg = self.registration() if self.params.registered.value else None
        return ds, rois, channel, METRICS[self.params.metric.value], sample, image, reg

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
            waiting = self._layer is not None and len(self._rows) < len(
                label_values(self._layer) if is_labels(self._layer) else self._layer.data
            )
            self.status.setText(
                "select detected ROIs in the ROI list and Accept them to see their traces"
                if waiting
                else "draw ROIs in a Shapes or Labels layer over a recording"
            )
            return
        ds, rois, channel, kind, sample, image, reg = request
        self.image_layer = image
        self._label_axis()
        offset = self.irf_offset_ns() if kind in PHOTON_KINDS else 0.0
        options = self._options(kind)
        settings = (
            id(ds),
            channel,
            kind,
            sample,
            None if reg is None else id(reg),
            offset,
            tuple(sorted(options.items())),
        )
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
        subset = RoiSet(
            [rois[k] for k in missing], frame_shape=rois.frame_shape, num_planes=rois.num_planes
        )
        if "neuropil" in dict(settings[6]):  # the annuli need every ROI's mask
            subset, missing = rois, list(range(len(rois)))
        self._start(ds, subset, [keys[k] for k in missing], channel, kind, sample, settings, reg)

    def _start(self, ds, subset, keys, channel, kind, sample, settings, reg) -> None:
        self.status.setText(f"computing {len(subset)} trace(s)…")

        def returned(result):
            for k, key in enumerate(keys):
                if kind in PHOTON_KINDS:
                    self._cache[key] = {
                        "values": result.values[k],
                        "low": result.ci_low[k],
                        "high": result.ci_high[k],
                        "counts": result.counts[k],
                    }
                else:
                    self._cache[key] = {
                        "values": result.values[k],
                        "per_plane": result.per_plane[k],
                    }
            self._times[settings] = result.time
            self.computed_rois += len(keys)

        def finished():
            pending, self._pending = self._pending, None
            cancelled, self._cancelled = self._cancelled, False
            if cancelled and pending is None:  # the user's Cancel: keep what is drawn
                return
            self.refresh()  # draws, or computes what changed meanwhile

        self._cancelled = False

        self.start_worker(
            _run,
            ds,
            subset,
            channel,
            kind,
            sample,
            reg,
            settings[5],
            dict(settings[6]),
            returned=returned,
            finished=finished,
            what="traces",
        )

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
            self.result = LifetimeTraces(
                values, stacked("counts", (0, T)), low, high, rois.names, time, channel, kind
            )
            if kind == "phasor":  # g or s
                c = 0 if self.params.metric.value == "phasor g" else 1
                values, low, high = values[..., c], low[..., c], high[..., c]
            bands = {n: (lo, hi) for n, lo, hi in zip(rois.names, low, high, strict=True)}
        else:
            values = stacked("values", (0, T))
            self.result = Traces(
                values, rois.names, time, channel, kind, stacked("per_plane", (0, T, 1))
            )
        layer = self._layer
        shown = trace_shown(layer)
        shown = [shown[k] for k in self._rows if k < len(shown)]
        hidden = {n for n, s in zip(rois.names, shown, strict=False) if not s}
        self.set_curves(
            time,
            dict(zip(rois.names, values, strict=True)),
            rois.colours,
            bands=bands,
            hidden=hidden,
            highlighted=self._selected_names(rois),
        )
        self._label_axis()
        self.status.setText(f"{len(rois)} ROI(s), {channel}, {self.params.metric.value}")

    def _selected_names(self, rois: RoiSet) -> set[str]:
        """Names of the ROIs selected in the layer (drawn highlighted)."""
        layer = self._layer
        if layer is None:
            return set()
        rows = self._rows
        if is_labels(layer):
            values = label_values(layer)
            label = layer.selected_label
            row = values.index(label) if label in values else -1
            return {rois.names[rows.index(row)]} if row in rows[: len(rois)] else set()
        return {rois.names[rows.index(k)] for k in layer.selected_data if k in rows[: len(rois)]}

    def curve_toggled(self, name: str, visible: bool) -> None:
        """A legend click hid / showed a curve: the ROI layer (and the ROI list) follow."""
        if self.result is not None and name in self.result.names and self._layer is not None:
            set_trace_shown(self._layer, self._rows[self.result.names.index(name)], visible)

    def curve_chosen(self, name: str) -> None:
        """A click on a legend name selects that ROI in the layer (highlighted there, in the
        ROI list and in the plot).
        """
        if self.result is None or name not in self.result.names or self._layer is None:
            return
        k = self._rows[self.result.names.index(name)]
        if is_labels(self._layer):
            self._layer.selected_label = label_values(self._layer)[k]
        else:
            self._layer.selected_data = {k}
            self._layer.events.highlight()

    # -- mean image -------------------------------------------------------------------------
    def add_mean_image(self):
        """Compute (in a worker) the mean image of the selected channel — of the registered
        frames when the traces use them — and add it as a layer under the ROI layers;
        returns the worker (None when there is no recording or one is running).
        """
        ds = self.dataset
        if ds is None or self._mean_worker is not None:
            if ds is None:
                self.status.setText("open a recording first")
            return None
        from napari.qt.threading import create_worker

        channel = self.channel_index()
        reg = self.registration() if self.params.registered.value else None
        image = image_layer_for(self.viewer, ds)
        name = f"mean {ds.info.channel_names[channel]}" + (" (registered)" if reg else "")
        worker = create_worker(
            iter_summary_images, ds, channel=channel, registration=reg, _start_thread=False
        )
        self._mean_worker = worker
        self.mean_button.setEnabled(False)
        self.status.setText("computing the mean image…")

        def returned(images):
            axes = roi_axes(image)
            data = images["mean"] if not axes else on_roi_axes(images["mean"], axes, reduce=np.mean)
            axes.pop("ndim", None)
            if name in self.viewer.layers:
                self.viewer.layers[name].data = data
                layer = self.viewer.layers[name]
            else:
                layer = self.viewer.add_image(data, name=name, colormap="gray", **axes)
                rois = [
                    i
                    for i, lay in enumerate(self.viewer.layers)
                    if lay.__class__.__name__ in ("Shapes", "Labels")
                ]
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
        clipboard = QApplication.clipboard()
        if clipboard is not None:
            clipboard.setText(text)
        return text

    def _export_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export traces", "traces.csv", "CSV (*.csv)")
        if path:
            try:
                self.export_csv(path)
                self.status.setText(f"wrote {Path(path).name}")
            except (ScanImageError, OSError) as exc:
                report_failure(self.status, "export", exc)
