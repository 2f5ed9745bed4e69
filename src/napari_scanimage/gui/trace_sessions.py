"""Sessions from the Traces dock: save what the plot and the viewer show, open a session file,
and take over the trace settings a reopened session put on its ROI layer.

:class:`TraceSessions` is a part of :class:`~napari_scanimage.gui.traces.TracePlotDock`; the
session itself (:class:`~napari_scanimage.session.Session`) does the reading and writing.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from qtpy.QtWidgets import QFileDialog, QWidget

from ..errors import ScanImageError
from ._labels import is_labels, label_values
from ._report import report_failure
from .roi_layers import accepted_rows, layer_rois

if TYPE_CHECKING:
    from ..analysis.rois import RoiSet
    from ..session import Session, TraceSettings

__all__ = ["TraceSessions"]


class TraceSessions:
    """Session saving and opening of the Traces dock (the dock provides the attributes)."""

    if TYPE_CHECKING:  # what the dock provides
        viewer: Any
        status: Any
        params: Any
        _layers: list[Any]
        _adopted: list[Any]

        def _request(self) -> Any: ...
        def trace_settings(self) -> TraceSettings: ...
        def set_trace_settings(self, settings: TraceSettings) -> None: ...
        def select_layer(self, layer: Any) -> None: ...

    def session(self) -> Session:
        """A :class:`~napari_scanimage.session.Session` of what the plot shows (and of what
        the viewer shows: channels, plane, slice-sample mode, lifetimes, the decay fit).
        """
        from ..session import Session

        request = self._request()
        if request is None:
            raise ScanImageError("nothing to save: open a recording and draw ROIs first")
        ds, rois, channel, kind, sample, image, reg = request
        rois = self._recording_rois(ds, rois, image)
        fit = image.metadata.get("scanimage_decay_fit") if image is not None else None
        for layer in self.viewer.layers:  # (a fit shown on another layer of the recording)
            if fit is None and layer.metadata.get("scanimage_dataset") is ds:
                fit = layer.metadata.get("scanimage_decay_fit")
        meta = image.metadata.get("scanimage", {}) if image is not None else {}
        raw = [
            layer.metadata["scanimage"]
            for layer in self.viewer.layers
            if layer.metadata.get("scanimage_dataset") is ds
            and "scanimage_registration" not in layer.metadata
            and isinstance(layer.metadata.get("scanimage"), dict)
            and "channel" in layer.metadata["scanimage"]
        ]
        shown = sorted({int(m["channel"]) for m in raw})
        trace = self.trace_settings()
        trace.channel = None  # the session's channel
        return Session(
            sources=list(ds.paths),
            channel=channel,
            slice_sample=sample,
            plane=meta.get("plane"),
            roi_set=rois,
            registration_result=reg,
            decay_fit=fit,
            trace=trace,
            shown_channels=None if shown == list(range(ds.info.num_channels)) else shown,
            shown_slice_sample=meta.get("slice_sample"),
            lifetime=any(m.get("product") == "lifetime" for m in raw),
        )

    def _other_roi_layers(self, ds: Any) -> list[Any]:
        """The viewer's other Shapes / Labels layers of ROIs of recording ``ds``."""
        traced = getattr(self, "_layer", None)
        return [
            layer
            for layer in self._layers
            if layer is not traced and layer.metadata.get("scanimage_dataset") is ds
        ]

    def _recording_rois(self, ds: Any, traced: RoiSet, image: Any) -> RoiSet:
        """The traced layer's ROIs, then the accepted ROIs of the recording's other ROI
        layers (drawn outlines and detected masks live in separate layers; a session holds
        them all and reopens outlines and masks in layers of their own).  Names already
        taken get a suffix.
        """
        from ..analysis.rois import RoiSet

        kept = list(traced)
        names = {r.name for r in kept}
        for layer in self._other_roi_layers(ds):
            try:
                other = layer_rois(layer, ds, image)
            except (ScanImageError, ValueError):
                continue  # not ROIs of this recording's frames
            for k in accepted_rows(layer):
                roi, n = other[k], 2
                name = roi.name
                while name in names:
                    name, n = f"{roi.name} ({n})", n + 1
                names.add(name)
                kept.append(replace(roi, name=name) if name != roi.name else roi)
        if len(kept) == len(traced):
            return traced
        return RoiSet(
            kept,
            frame_shape=traced.frame_shape,
            num_planes=traced.num_planes,
            source=traced.source,
        )

    def save_session(self, path: str | Path) -> Path:
        session = self.session()
        out = session.save(path)
        # detected candidates not accepted are not traced, so not in the session either
        layers = [getattr(self, "_layer", None)]
        layers += self._other_roi_layers(getattr(self, "dataset", None))
        left = sum(len(label_values(x)) - len(accepted_rows(x)) for x in layers if is_labels(x))
        note = f" ({left} candidate(s) not accepted left out)" if left > 0 else ""
        self.status.setText(f"saved session {Path(path).name}{note}")
        return out

    def _adopt_session(self) -> None:
        """Trace settings a session put on a layer (``scanimage_trace_settings``): set once
        per session opened, with that layer's ROIs shown.
        """
        for layer in self.viewer.layers:
            settings = layer.metadata.get("scanimage_trace_settings")
            if settings is None or any(settings is done for done in self._adopted):
                continue
            self._adopted.append(settings)
            if layer in self._layers:
                self.select_layer(layer)
            self.params.registered.value = True
            try:
                self.set_trace_settings(settings)
            except ScanImageError as exc:
                report_failure(self.status, "the session's trace settings", exc)

    def _session_dialog(self) -> None:
        from ..session import session_file

        path, _ = QFileDialog.getSaveFileName(
            cast(QWidget, self),
            "Save session",
            "session.nsession.json",
            "Session (*.nsession.json)",
        )
        if path:
            try:
                self.save_session(session_file(path))
            except (ScanImageError, OSError) as exc:
                report_failure(self.status, "saving the session", exc)

    def _open_session_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            cast(QWidget, self), "Open session", "", "Session (*.nsession.json *.json)"
        )
        if path:
            try:
                self.open_session(path)
            except (ScanImageError, OSError, ValueError) as exc:
                report_failure(self.status, "opening the session", exc)

    def open_session(self, path: str | Path) -> list:
        """Open a session file (any name: older sessions end in plain ``.json``) in the
        viewer, as *File → Open* does for ``*.nsession.json``; returns the layers added.
        """
        from napari.layers import Layer

        from .session_reader import get_session_reader

        reader = get_session_reader(path)
        if reader is None:
            raise ScanImageError(f"{Path(path).name} is not a napari-scanimage session")
        added = []
        for data, kwargs, kind in reader(path):
            added.append(self.viewer.add_layer(Layer.create(data, kwargs, kind)))
        self.status.setText(f"opened session {Path(path).name}")
        return added
