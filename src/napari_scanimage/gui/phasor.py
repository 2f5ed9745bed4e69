"""Phasor dock (`.siff`): every pixel's phasor (g, s) as a photon-weighted 2-D histogram with
the universal semicircle, with circular cursors; "Labels from cursors" turns the pixels inside
each cursor into a Labels layer (ROIs for traces and fits).

Phasors are calibrated by default with the instrument response of the FLIM dock's decay fit
(or, without one, of a fit of the channel's pooled decay), or with a reference of known
lifetime; a median filter and a photon threshold clean them, and the status line says how
many pixels were left out and why.  The computation runs in a worker (the library's
:func:`~napari_scanimage.flim.phasor.phasor_image`).
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from qtpy.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QWidget,
)

from ..analysis.colours import PALETTE
from ..flim import (
    DecayFit,
    PhasorCensus,
    PhasorImage,
    Reference,
    cursor_labels,
    filter_phasor,
    fit_dataset_decay,
    lifetime_ticks,
    mean_phasor,
    phasor_bounds,
    phasor_census,
    phasor_histogram,
    phasor_image,
)
from ._dock import PLOT_MIN_HEIGHT, dock_layout
from ._family import derived_metadata
from ._params import Params, button, choice, float_spin, int_spin, set_choices, text
from ._worker import WorkerDock
from .roi_layers import image_layer_for, on_roi_axes, roi_axes

__all__ = ["PhasorDock"]

GRID = 200  # histogram cells along the longer side of the plot
FIT, REFERENCE, RAW = "IRF of the FLIM fit", "reference lifetime", "none (raw)"


def _phasor_job(ds, channel, harmonic, how, fit, ref_channel, ref_tau):
    """Worker body: the calibration (a decay fit when none is given), then the phasors.
    Returns (raw PhasorImage, calibration note).
    """
    yield 0, 2
    calibration, note = None, "uncalibrated (raw phasors include the instrument delay)"
    if how == FIT:
        if fit is None:
            fit = fit_dataset_decay(ds, channel, n_exp=2)
            source = "a 2-component fit of the channel's pooled decay"
        else:
            source = "the FLIM dock's fit"
        calibration = fit
        note = (
            f"calibrated by the IRF of {source} ({fit.irf_offset_ns:.3f} ns, σ "
            f"{fit.irf_width_ns:.3f} ns)"
        )
    elif how == REFERENCE:
        calibration = Reference(ds.histogram(ref_channel), float(ref_tau))
        note = (
            f"calibrated by channel {ds.info.channel_names[ref_channel]} as a reference of "
            f"{ref_tau:.3g} ns"
        )
    yield 1, 2
    out = phasor_image(ds, channel, harmonic=harmonic, calibration=calibration)
    yield 2, 2
    return out, note


class PhasorDock(WorkerDock, QWidget):
    """Calibrated phasor plot of the recording's pixels with cursors that make Labels."""

    def __init__(self, napari_viewer):
        super().__init__()
        self.viewer = napari_viewer
        compute_button, cancel_button = button("Compute"), button("Cancel")
        self.params = Params(
            [
                [
                    (choice("channel", tooltip="channel whose arrival times give the phasors"), 0),
                    int_spin(
                        "harmonic",
                        1,
                        8,
                        1,
                        prefix="harmonic ",
                        tooltip="harmonic of the laser frequency",
                    ),
                    compute_button,
                    cancel_button,
                ],
                [
                    choice(
                        "calibration",
                        [FIT, REFERENCE, RAW],
                        tooltip=(
                            "remove the instrument response: with the Gaussian IRF of the FLIM "
                            "dock's fit (a fit of this channel's pooled decay when there is "
                            "none), with a reference channel of known single lifetime, or not "
                            "at all"
                        ),
                    ),
                    int_spin(
                        "min_photons",
                        0,
                        10_000_000,
                        10,
                        prefix="min photons ",
                        tooltip="pixels with fewer photons are left out (and counted)",
                    ),
                ],
                [  # a row of its own, so that the dock fits its column's width
                    int_spin(
                        "median_size",
                        1,
                        9,
                        3,
                        step=2,
                        prefix="median ",
                        tooltip="size of the median filter on g and s (1: none)",
                    ),
                    int_spin(
                        "median_repeat",
                        0,
                        5,
                        1,
                        suffix="×",
                        tooltip="times the median filter runs (0: none)",
                    ),
                ],
                [
                    text("reference channel"),  # shown for the reference calibration only
                    choice(
                        "reference_channel", tooltip="channel whose pooled decay is the reference"
                    ),
                    text("of known lifetime"),
                    (
                        float_spin(
                            "reference_tau",
                            0.01,
                            100.0,
                            4.0,
                            suffix=" ns",
                            tooltip="known single lifetime of the reference",
                        ),
                        1,
                    ),
                ],
            ]
        )
        self.compute_button = compute_button.native
        self.cancel_button = cancel_button.native
        self.reference_row = self.params[3].native
        self.add_cursor_button = QPushButton("Add cursor")
        self.labels_button = QPushButton("Labels from cursors")
        self.progress = QProgressBar()
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.plot = pg.PlotWidget(background="k")
        self.plot.setLabel("bottom", "g")
        self.plot.setLabel("left", "s")
        self.plot.setAspectLocked(True, ratio=1.0)
        self.plot.setMinimumHeight(180)  # below this the locked aspect squeezes the semicircle
        self.plot.setToolTip(
            "phasor density; dots on the semicircle: single lifetimes (ns); + the mean phasor"
        )
        for axis in ("left", "bottom"):
            self.plot.getAxis(axis).enableAutoSIPrefix(False)
        self.density = pg.ImageItem()
        self.plot.addItem(self.density)
        angle = np.linspace(0, np.pi, 181)
        self.semicircle = self.plot.plot(
            0.5 + 0.5 * np.cos(angle), 0.5 * np.sin(angle), pen=pg.mkPen("#ffffff", width=1)
        )
        self.ticks = self.plot.plot(
            [], [], pen=None, symbol="o", symbolSize=5, symbolBrush="#ffffff", symbolPen=None
        )
        self.tick_labels: list[pg.TextItem] = []
        self.mean_marker = self.plot.plot(
            [], [], pen=None, symbol="+", symbolSize=14, symbolPen=pg.mkPen("#00ff66", width=2)
        )
        self.bounds = (-0.05, 1.05, -0.05, 0.6)
        self.plot.setRange(xRange=self.bounds[:2], yRange=self.bounds[2:], padding=0)
        cursors = QHBoxLayout()
        for w in (self.add_cursor_button, self.labels_button):
            cursors.addWidget(w)
        self.plot.setMinimumHeight(2 * PLOT_MIN_HEIGHT)  # the semicircle, not a sliver
        layout = dock_layout(self)
        layout.addWidget(self.params.native)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        layout.addWidget(self.plot, 1)
        layout.addLayout(cursors)
        self.raw: PhasorImage | None = None  # as computed (calibrated, unfiltered)
        self.image: PhasorImage | None = None  # filtered and thresholded: what is plotted
        self.census: PhasorCensus | None = None
        self.calibration_note = ""
        self.cursors: list[pg.CircleROI] = []
        self._set_busy(False)
        self._calibration_changed()
        self.compute_button.clicked.connect(self.run)
        self.cancel_button.clicked.connect(lambda: self._worker and self._worker.quit())
        self.add_cursor_button.clicked.connect(lambda: self.add_cursor())
        self.labels_button.clicked.connect(self.make_labels)
        self.params.calibration.changed.connect(self._calibration_changed)
        for name in ("min_photons", "median_size", "median_repeat"):
            getattr(self.params, name).changed.connect(self.refilter)
        napari_viewer.layers.events.inserted.connect(self._refresh)
        napari_viewer.layers.events.removed.connect(self._refresh)
        self._refresh()

    def _refresh(self, event=None) -> None:
        self._follow_siff()
        set_choices(self.params.reference_channel, self.params.channel.choices)

    def _calibration_changed(self, *_) -> None:
        self.reference_row.setVisible(self.params.calibration.value == REFERENCE)

    def _set_busy(self, busy: bool) -> None:
        super()._set_busy(busy)
        self.compute_button.setEnabled(not busy)

    def decay_fit(self) -> DecayFit | None:
        """The FLIM dock's latest fit of this recording (kept on its image layer), if any."""
        layer = image_layer_for(self.viewer, self.dataset)
        fit = None if layer is None else layer.metadata.get("scanimage_decay_fit")
        return fit if isinstance(fit, DecayFit) else None

    def run(self) -> None:
        ds = self.dataset
        if ds is None or not ds.is_siff or self.busy:
            return
        kwargs = self.phasor_kwargs()
        how = kwargs["calibration"]
        fit = self.decay_fit() if how == FIT else None
        self.status.setText(
            "fitting the decay for the calibration, then computing phasors…"
            if how == FIT and fit is None
            else "computing phasors…"
        )
        self.start_worker(
            _phasor_job,
            ds,
            kwargs["channel"],
            kwargs["harmonic"],
            how,
            fit,
            kwargs["reference_channel"],
            kwargs["reference_tau"],
            returned=lambda out: self.show_image(*out),
            what="phasor",
        )

    def phasor_kwargs(self) -> dict:
        """The form's phasor parameters: ``channel`` and ``reference_channel`` (indices),
        ``harmonic`` (of :func:`~napari_scanimage.flim.phasor.phasor_image`), ``calibration``
        (one of the calibration choices) and ``reference_tau`` (ns).
        """
        params = self.params.asdict()
        ds = self.dataset
        names = list(ds.info.channel_names) if ds is not None else []
        kwargs = {k: params[k] for k in ("harmonic", "calibration", "reference_tau")}
        for key in ("channel", "reference_channel"):
            kwargs[key] = names.index(params[key]) if params[key] in names else 0
        return kwargs

    def filter_kwargs(self) -> dict:
        """The form's cleaning of the phasors: keyword arguments of
        :func:`~napari_scanimage.flim.phasor.filter_phasor`.
        """
        params = self.params.asdict()
        return {k: params[k] for k in ("min_photons", "median_size", "median_repeat")}

    def show_image(self, image: PhasorImage, note: str = "") -> None:
        """Filter ``image`` with the dock's median filter and threshold and plot it."""
        self.raw = image
        self.calibration_note = note or {"none": "uncalibrated"}.get(
            image.calibration, image.calibration
        )
        self.refilter()

    def refilter(self, *_) -> None:
        """Re-apply the threshold and median filter to the computed phasors and redraw."""
        if self.raw is None:
            return
        self.image = filter_phasor(self.raw, **self.filter_kwargs())
        self.bounds = phasor_bounds(self.image.g, self.image.s)
        self.census = phasor_census(self.image, self.bounds)
        g0, g1, s0, s1 = self.bounds
        hist = phasor_histogram(self.image, self.bounds, GRID)
        self.density.setImage(np.log1p(hist), autoLevels=True)
        self.density.setRect(g0, s0, g1 - g0, s1 - s0)
        self.plot.setRange(xRange=(g0, g1), yRange=(s0, s1), padding=0)
        gm, sm, tau_phase, tau_mod = mean_phasor(self.image)
        self.mean_marker.setData([gm] if np.isfinite(gm) else [], [sm] if np.isfinite(sm) else [])
        image = self.image
        median = (
            f"median {image.median[0]}×{image.median[0]} ×{image.median[1]}"
            if image.median[1]
            else "no median filter"
        )
        mean = "" if not np.isfinite(gm) else f"; mean (+): τφ {tau_phase:.2f}, τm {tau_mod:.2f} ns"
        # short enough for a 400-pixel dock; what the dots mean is in the plot's tooltip
        self.plot.setLabel(
            "bottom", f"g  ({image.frequency_mhz:.4g} MHz, harmonic {image.harmonic})"
        )
        self._draw_ticks(image.frequency_mhz * image.harmonic)
        self.status.setText(f"{self.calibration_note}; {median}. {self.census.describe()}{mean}")

    def _draw_ticks(self, frequency_mhz: float) -> None:
        """Single lifetimes marked (and labelled in ns) on the semicircle."""
        taus, g, s = lifetime_ticks(frequency_mhz)
        self.ticks.setData(g, s)
        for item in self.tick_labels:
            self.plot.removeItem(item)
        self.tick_labels = []
        for tau, x, y in zip(taus, g, s, strict=True):
            label = pg.TextItem(f"{tau:g}", color="#cccccc", anchor=(0.5, 1.1))
            label.setPos(float(x), float(y))
            self.plot.addItem(label)
            self.tick_labels.append(label)

    def add_cursor(
        self, g: float | None = None, s: float | None = None, radius: float = 0.05
    ) -> pg.CircleROI:
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
        roi = pg.CircleROI(
            (g - radius, s - radius), (2 * radius, 2 * radius), pen=pg.mkPen(colour, width=2)
        )
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
