"""Phasor dock (`.siff`): every pixel's phasor (g, s) as a photon-weighted 2-D histogram under
the universal semicircle, with circular cursors; "Labels from cursors" turns the pixels inside
each cursor into a Labels layer (ROIs for traces and fits).

The phasors are computed in a worker by the library's
:func:`~napari_scanimage.analysis.phasor.phasor_image`.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from qtpy.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from ..analysis.phasor import PhasorImage, cursor_labels, phasor_image
from ..analysis.rois import PALETTE
from ._worker import WorkerDock
from ._family import derived_metadata
from .rois import image_layer_for, on_roi_axes, roi_axes

__all__ = ["PhasorDock"]

GRID = 200  # histogram cells along g (0…1) and s (0…0.6)
S_MAX = 0.6


def _phasor_job(ds, channel, harmonic):
    yield 0, 1
    out = phasor_image(ds, channel, harmonic=harmonic)
    yield 1, 1
    return out


class PhasorDock(WorkerDock, QWidget):
    """Phasor plot of the recording's pixels with cursors that make Labels."""

    def __init__(self, napari_viewer):
        super().__init__()
        self.viewer = napari_viewer
        self.channel_box = QComboBox()
        self.harmonic = QSpinBox()
        self.harmonic.setRange(1, 8)
        self.harmonic.setPrefix("harmonic ")
        self.compute_button = QPushButton("Compute")
        self.cancel_button = QPushButton("Cancel")
        self.add_cursor_button = QPushButton("Add cursor")
        self.labels_button = QPushButton("Labels from cursors")
        self.progress = QProgressBar()
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.plot = pg.PlotWidget(background="k")
        self.plot.setLabel("bottom", "g")
        self.plot.setLabel("left", "s")
        self.plot.setAspectLocked(True)
        for axis in ("left", "bottom"):
            self.plot.getAxis(axis).enableAutoSIPrefix(False)
        self.density = pg.ImageItem()
        self.density.setRect(0.0, 0.0, 1.0, S_MAX)
        self.plot.addItem(self.density)
        angle = np.linspace(0, np.pi, 181)
        self.plot.plot(0.5 + 0.5 * np.cos(angle), 0.5 * np.sin(angle),
                       pen=pg.mkPen("#ffffff", width=1))
        row = QHBoxLayout()
        for w in (self.channel_box, self.harmonic, self.compute_button, self.cancel_button):
            row.addWidget(w)
        cursors = QHBoxLayout()
        for w in (self.add_cursor_button, self.labels_button):
            cursors.addWidget(w)
        layout = QVBoxLayout(self)
        layout.addLayout(row)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        layout.addWidget(self.plot, 1)
        layout.addLayout(cursors)
        self.image: PhasorImage | None = None
        self.cursors: list[pg.CircleROI] = []
        self._set_busy(False)
        self.compute_button.clicked.connect(self.run)
        self.cancel_button.clicked.connect(lambda: self._worker and self._worker.quit())
        self.add_cursor_button.clicked.connect(lambda: self.add_cursor())
        self.labels_button.clicked.connect(self.make_labels)
        napari_viewer.layers.events.inserted.connect(self._refresh)
        napari_viewer.layers.events.removed.connect(self._refresh)
        self._refresh()

    def _refresh(self, event=None) -> None:
        self._follow_siff()

    def _set_busy(self, busy: bool) -> None:
        super()._set_busy(busy)
        self.compute_button.setEnabled(not busy)

    def run(self) -> None:
        ds = self.dataset
        if ds is None or not ds.is_siff or self.busy:
            return
        self.status.setText("computing phasors…")
        self.start_worker(_phasor_job, ds, max(self.channel_box.currentIndex(), 0),
                          self.harmonic.value(), returned=self.show_image, what="phasor")

    def show_image(self, image: PhasorImage) -> None:
        """Draw the photon-weighted phasor histogram of ``image``."""
        self.image = image
        g, s, w = (np.asarray(a).ravel() for a in (image.g, image.s, image.mean))
        ok = np.isfinite(g) & np.isfinite(s)
        hist, _, _ = np.histogram2d(g[ok], s[ok], bins=(GRID, int(GRID * S_MAX)),
                                    range=((0, 1), (0, S_MAX)), weights=w[ok])
        self.density.setImage(np.log1p(hist), autoLevels=True)
        self.density.setRect(0.0, 0.0, 1.0, S_MAX)
        self.status.setText(f"{int(ok.sum())} pixels with photons; {image.frequency_mhz:.4g} MHz,"
                            f" harmonic {image.harmonic}")

    def add_cursor(self, g: float | None = None, s: float | None = None,
                   radius: float = 0.05) -> pg.CircleROI:
        """A movable circular cursor (default: at the photon-weighted mean phasor)."""
        if g is None or s is None:
            g, s = 0.5, 0.3
            if self.image is not None:
                w = np.asarray(self.image.mean, np.float64)
                ok = np.isfinite(self.image.g) & np.isfinite(self.image.s) & (w > 0)
                if ok.any():
                    g = float(np.average(self.image.g[ok], weights=w[ok]))
                    s = float(np.average(self.image.s[ok], weights=w[ok]))
        colour = PALETTE[len(self.cursors) % len(PALETTE)]
        roi = pg.CircleROI((g - radius, s - radius), (2 * radius, 2 * radius),
                           pen=pg.mkPen(colour, width=2))
        self.plot.addItem(roi)
        self.cursors.append(roi)
        return roi

    def cursor_params(self) -> list[tuple[float, float, float]]:
        """(g, s, radius) of each cursor."""
        out = []
        for roi in self.cursors:
            (x, y), (w, h) = roi.pos(), roi.size()
            out.append((float(x + w / 2), float(y + h / 2), float(w / 2)))
        return out

    def make_labels(self):
        """A Labels layer: the pixels whose phasor lies in cursor k get label k + 1."""
        if self.image is None or not self.cursors:
            self.status.setText("compute the phasors and add a cursor first")
            return None
        labels = cursor_labels(self.image, self.cursor_params())
        image = image_layer_for(self.viewer, self.dataset)
        axes = roi_axes(image)
        kwargs = {}
        if self.dataset is not None:  # follows selection changes (see ._family)
            kwargs["metadata"] = derived_metadata(self.dataset, labels)
        if axes:
            labels = on_roi_axes(labels, axes, reduce=np.max)
            kwargs.update({k: v for k, v in axes.items() if k != "ndim"})
        layer = self.viewer.add_labels(labels, name="phasor cursors", **kwargs)
        counts = np.bincount(labels.ravel(), minlength=len(self.cursors) + 1)[1:]
        self.status.setText("pixels per cursor: " + ", ".join(map(str, counts)))
        return layer
