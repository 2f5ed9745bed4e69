"""FLIM dock (`.siff`): the arrival-time histogram of the chosen ROIs (log scale) with a decay
fit, its weighted residuals, reduced χ² and a parameter table, a warning when the fit is
degenerate; fits saved and loaded as JSON.  The pooled lifetime image gets a colour bar in the
dock (its lifetime range in ns), the fraction image napari's colour bar of the layer.

The histogram and the fit run in a worker (the library's ``Dataset.histogram`` and
:func:`~napari_scanimage.flim.fitting.fit_decay`), so the viewer stays responsive.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyqtgraph as pg
from qtpy.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QWidget,
)

from ..errors import ScanImageError
from ..flim import (
    DecayFit,
    fit_decay,
    intensity_modulated,
    lifetime_image,
    phasor_image,
    turbo,
)
from ._dock import PLOT_MIN_HEIGHT, dock_layout, show_rows
from ._family import derived_metadata
from ._params import Params, button, check, choice, int_spin, set_choices
from ._report import report_failure
from ._worker import WorkerDock
from .roi_layers import image_layer_for, layer_rois, on_roi_axes, roi_axes

__all__ = ["FlimDock"]

WHOLE = "(whole frame)"
SELECTED, ALL = "selected ROIs", "all ROIs"
PARAMS = ("taus_ns", "fractions", "irf_offset_ns", "irf_width_ns", "background")


def _fit_job(ds, mask, kwargs):
    """Worker body: histogram (step 1), then the fit (step 2) as
    ``fit_dataset_decay(ds, mask=mask, **kwargs)`` does; returns (histogram, fit).
    """
    fit_kwargs = dict(kwargs)
    channel = fit_kwargs.pop("channel")
    yield 0, 2
    hist = ds.histogram(channel, mask=mask)
    yield 1, 2
    flim = ds.flim
    fit = fit_decay(
        hist, bin_width_ps=flim.bin_width_ns * 1000.0, period_ps=flim.laser_period_ps, **fit_kwargs
    )
    yield 2, 2
    return hist, fit


def _image_job(ds, channel, irf_offset_ns):
    """Worker body: pooled lifetime and counts per pixel, and their intensity-modulated RGB."""
    yield 0, 1
    tau, counts = lifetime_image(ds, channel, irf_offset_ns=irf_offset_ns)
    finite = tau[np.isfinite(tau)]
    lo, hi = np.percentile(finite, (2, 98)) if finite.size else (0.0, 1.0)
    rgb = intensity_modulated(
        tau,
        counts,
        tau_range=(float(lo), float(max(hi, lo + 1e-3))),
        count_range=(0.0, float(np.percentile(counts, 99.5)) or 1.0),
    )
    yield 1, 1
    return rgb, (float(lo), float(hi))


def _fraction_job(ds, channel, fit):
    """Worker body: per-pixel fraction of the fit's short-lifetime component (phasors
    calibrated with the fit's IRF).
    """
    yield 0, 1
    image = phasor_image(ds, channel, calibration=fit)
    fraction = np.clip(image.fraction(fit.taus_ns[0], fit.taus_ns[1]), 0.0, 1.0)
    yield 1, 1
    return fraction.astype(np.float32)


def parameter_rows(fit: DecayFit) -> list[tuple[str, str, str]]:
    """(name, value, ± standard error) rows for the table, units in the names."""
    rows = []
    for name in PARAMS:
        value, err = getattr(fit, name), fit.stderr.get(name)
        values = value if isinstance(value, (tuple, list)) else (value,)
        errs = err if isinstance(err, (tuple, list)) else (err,) * len(values)
        for k, v in enumerate(values):
            label = name if len(values) == 1 else f"{name}[{k + 1}]"
            e = errs[k] if k < len(errs) else None
            rows.append(
                (label, f"{v:.4g}", "" if e is None or not np.isfinite(e) else f"± {e:.2g}")
            )
    rows.append(("mean tau (intensity-weighted) ns", f"{fit.mean_tau_ns:.4g}", ""))
    rows.append(
        (
            "reduced chi2",
            f"{fit.reduced_chi2:.4g}",
            f"{fit.deviance:.1f} / {fit.degrees_of_freedom} dof",
        )
    )
    return rows


class FlimDock(WorkerDock, QWidget):
    """Decay histogram of ROIs with a multi-exponential fit."""

    def __init__(self, napari_viewer):
        super().__init__()
        self.viewer = napari_viewer
        fit_button, cancel_button = button("Fit"), button("Cancel")
        self.params = Params(
            [
                [
                    choice(
                        "rois",
                        [WHOLE],
                        tooltip=f"the ROI layer whose ROIs pool the photons; {WHOLE}: every pixel",
                    ),
                    choice(
                        "which",
                        [SELECTED, ALL],
                        tooltip=(
                            "selected ROIs: the shapes selected in the ROI layer; with none "
                            "selected (or a Labels layer) every ROI of the layer is used. "
                            "(whole frame): every pixel"
                        ),
                    ),
                    choice("channel", tooltip="channel whose arrival times are fitted"),
                ],
                [
                    int_spin(
                        "n_exp",
                        1,
                        3,
                        2,
                        prefix="components: ",
                        tooltip="exponential components of the decay model",
                    ),
                    check("background", "background", True, "fit a constant background too"),
                    fit_button,
                    cancel_button,
                ],
            ]
        )
        self.fit_button = fit_button.native
        self.cancel_button = cancel_button.native
        self.save_button = QPushButton("Save fit…")
        self.load_button = QPushButton("Load fit…")
        self.fraction_button = QPushButton("Fraction image")
        self.fraction_button.setToolTip(
            "after a 2-component fit: each pixel's photon fraction "
            "of the shorter lifetime τ1 (from its phasor calibrated "
            "by the fit's IRF), 0 to 1"
        )
        self.fraction_button.setEnabled(False)
        self.image_button = QPushButton("Lifetime image")
        self.image_button.setToolTip(
            "pooled over time: colour = lifetime (minus the fitted IRF "
            "offset), brightness = photons"
        )
        self.progress = QProgressBar()
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.summary = QLabel("")  # the current fit, kept while the status reports other work
        self.summary.setWordWrap(True)
        self.warning = QLabel("")
        self.warning.setWordWrap(True)
        self.warning.setStyleSheet("color: #ffb000")
        self.warning.setVisible(False)
        self.colorbar = pg.PlotWidget(background="k")
        self.colorbar.setFixedHeight(56)
        self.colorbar.setMouseEnabled(x=False, y=False)
        self.colorbar.hideAxis("left")
        self.colorbar.getAxis("bottom").enableAutoSIPrefix(False)
        self.colorbar.setLabel("bottom", "lifetime (ns)")
        self.colorbar_image = pg.ImageItem()
        self.colorbar.addItem(self.colorbar_image)
        self.colorbar.setVisible(False)
        self.colorbar_range: tuple[float, float] | None = None
        self.roi_note = WHOLE
        self.plot = pg.PlotWidget(background="k")
        self.plot.setLogMode(y=True)
        self.plot.setLabel("left", "photons")
        self.plot.setLabel("bottom", "arrival time (ns)")
        self.data_curve = self.plot.plot(
            [], [], pen=None, symbol="o", symbolSize=3, symbolBrush="#4fa3ff", symbolPen=None
        )
        self.fit_curve = self.plot.plot([], [], pen=pg.mkPen("#ff8c1a", width=2))
        self.residuals = pg.PlotWidget(background="k")
        self.residuals.setLabel("left", "residual (σ)")
        self.residuals.setXLink(self.plot)
        self.residual_curve = self.residuals.plot([], [], pen=pg.mkPen("#aaaaaa"))
        self.table = QTableWidget(0, 3)
        self.table.setHorizontalHeaderLabels(["parameter", "value", "± std. error"])
        header = self.table.verticalHeader()
        if header is not None:
            header.setVisible(False)
        file_row = QHBoxLayout()
        for w in (self.save_button, self.load_button, self.image_button, self.fraction_button):
            file_row.addWidget(w)
        for w in (self.plot, self.residuals):
            w.setMinimumHeight(PLOT_MIN_HEIGHT)
        show_rows(self.table, 4)
        layout = dock_layout(self)
        layout.addWidget(self.params.native)
        layout.addLayout(file_row)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        layout.addWidget(self.summary)
        layout.addWidget(self.warning)
        layout.addWidget(self.colorbar)
        layout.addWidget(self.plot, 2)
        layout.addWidget(self.residuals, 1)
        layout.addWidget(self.table, 1)
        self.fit: DecayFit | None = None
        self.hist: np.ndarray | None = None
        self._layers: list = []
        self._set_busy(False)
        self.fit_button.clicked.connect(self.run)
        self.image_button.clicked.connect(self.lifetime_layer)
        self.fraction_button.clicked.connect(self.fraction_layer)
        self.cancel_button.clicked.connect(self.cancel)
        self.save_button.clicked.connect(lambda: self._file_dialog("save"))
        self.load_button.clicked.connect(lambda: self._file_dialog("load"))
        napari_viewer.layers.events.inserted.connect(self._refresh)
        napari_viewer.layers.events.removed.connect(self._refresh)
        self._refresh()

    def _refresh(self, event=None) -> None:
        self._follow_siff()
        layers = [
            layer
            for layer in self.viewer.layers
            if layer.__class__.__name__ in ("Shapes", "Labels")
        ]
        set_choices(self.params.rois, [WHOLE] + [layer.name for layer in layers])
        self._layers = layers
        image = image_layer_for(self.viewer, self.dataset)
        fit = image.metadata.get("scanimage_decay_fit") if image is not None else None
        if fit is not None and fit is not self.fit and not self.busy:  # a session's fit
            self.show_fit(None, fit)

    def mask(self):
        """Union of the chosen ROIs' masks ((Z, Y, X)), or None for the whole frame.

        "selected ROIs" with no shape selected (or on a Labels layer) uses every ROI of the
        layer; :attr:`roi_note` says which were used.
        """
        ds = self.dataset
        name = self.params.rois.value
        layer = next((x for x in self._layers if x.name == name), None)
        self.roi_note = WHOLE
        if layer is None or ds is None:
            return None
        rois = layer_rois(layer, ds, image_layer_for(self.viewer, ds))
        rows = list(range(len(rois)))
        self.roi_note = f"all {len(rows)} ROI(s) of {layer.name}"
        if self.params.which.value == SELECTED:
            if layer.__class__.__name__ == "Shapes" and layer.selected_data:
                rows = sorted(layer.selected_data)
                self.roi_note = f"{len(rows)} selected ROI(s) of {layer.name}"
            elif layer.__class__.__name__ == "Shapes":
                self.roi_note += " (none selected, so all are used)"
            else:
                self.roi_note += " (a Labels layer has no selection, so all are used)"
        info = ds.info
        masks = rois.masks(info.frame_shape, info.num_planes)[rows]
        if masks.shape[0] == 0:
            raise ScanImageError(f"{layer.name} has no ROIs: draw some or choose {WHOLE}")
        dense = np.asarray(masks.sum(axis=0)).reshape(info.num_planes, *info.frame_shape) > 0
        return dense

    # -- running ----------------------------------------------------------------------------
    def channel_index(self) -> int:
        """The index of the form's channel (0 before a recording is open)."""
        ds, name = self.dataset, self.params.channel.value
        names = list(ds.info.channel_names) if ds is not None else []
        return names.index(name) if name in names else 0

    def fit_kwargs(self) -> dict:
        """The form as keyword arguments of
        :func:`~napari_scanimage.flim.fitting.fit_dataset_decay` besides the mask of the chosen
        ROIs (:meth:`mask`): ``channel``, ``n_exp``, ``background``.
        """
        params = self.params.asdict()
        return {
            "channel": self.channel_index(),
            "n_exp": params["n_exp"],
            "background": params["background"],
        }

    def run(self) -> None:
        ds = self.dataset
        if ds is None or not ds.is_siff or self.busy:
            return
        try:
            mask = self.mask()
        except (ScanImageError, ValueError) as exc:
            self.status.setText(str(exc))
            return
        self.status.setText(f"fitting {self.roi_note}…")
        self.start_worker(
            _fit_job,
            ds,
            mask,
            self.fit_kwargs(),
            returned=lambda out: self.show_fit(*out),
            what="fit",
        )

    def lifetime_layer(self) -> None:
        """Add an intensity-modulated lifetime image layer (computed in a worker)."""
        ds = self.dataset
        if ds is None or not ds.is_siff or self.busy:
            return
        channel = self.channel_index()
        offset = self.fit.irf_offset_ns if self.fit is not None else 0.0
        name = f"{ds.info.channel_names[channel]} lifetime (intensity-modulated)"
        self.start_worker(
            _image_job,
            ds,
            channel,
            offset,
            what="lifetime image",
            returned=lambda out: self._add_rgb(ds, name, *out),
        )

    def fraction_layer(self) -> None:
        """Add the two-component fraction image of the current fit (computed in a worker)."""
        ds, fit = self.dataset, self.fit
        if ds is None or fit is None or fit.n_exp != 2 or self.busy:
            self.status.setText("fit two components first")
            return
        channel = self.channel_index()
        name = f"{ds.info.channel_names[channel]} fraction of τ = {fit.taus_ns[0]:.2f} ns"
        self.start_worker(
            _fraction_job,
            ds,
            channel,
            fit,
            what="fraction image",
            returned=lambda out: self._add_fraction(ds, name, fit, out),
        )

    def _add_fraction(self, ds, name: str, fit: DecayFit, fraction: np.ndarray) -> None:
        """Show the fraction image with napari's colour bar and describe it in the status."""
        layer = self._add_image(ds, name, fraction)
        layer.colorbar.visible = True
        finite = fraction[np.isfinite(fraction)]
        median = (
            f"median {np.median(finite):.2f} over {finite.size} pixels with photons"
            if finite.size
            else "no pixel has photons"
        )
        self.status.setText(
            f"{name}: each pixel's photon fraction of the short component τ1 = "
            f"{fit.taus_ns[0]:.2f} ns (the rest is τ2 = {fit.taus_ns[1]:.2f} ns) from its "
            f"IRF-calibrated phasor, 0–1 (black: all τ2, bright: all τ1; colour bar on the "
            f"canvas); {median}"
        )

    def _add_image(self, ds, name: str, planes: np.ndarray):
        axes = roi_axes(image_layer_for(self.viewer, ds))
        kwargs = {"metadata": derived_metadata(ds, planes)}  # follows selection changes
        if axes:
            planes = on_roi_axes(planes, axes, reduce=np.nanmean)
            kwargs.update(scale=axes["scale"], units=axes["units"], axis_labels=axes["axis_labels"])
        if name in self.viewer.layers:
            self.viewer.layers.remove(name)
        return self.viewer.add_image(
            planes, name=name, colormap="magma", contrast_limits=(0, 1), **kwargs
        )

    def _add_rgb(self, ds, name: str, rgb: np.ndarray, tau_range) -> None:
        """Show (Y, X, 3) or (Z, Y, X, 3) colours on the recording's axes after time."""
        axes = roi_axes(image_layer_for(self.viewer, ds))
        kwargs = {}
        if axes:
            planes = rgb if rgb.ndim == 4 else rgb[None]
            labels = list(axes["axis_labels"])
            if "z" not in labels:
                planes = planes.mean(axis=0, keepdims=True)
            shape = [planes.shape[0] if a == "z" else 1 for a in labels[:-2]]
            rgb = planes.reshape(*shape, *planes.shape[1:])
            kwargs = dict(scale=axes["scale"], units=axes["units"], axis_labels=labels)
        if name in self.viewer.layers:
            self.viewer.layers.remove(name)
        self.viewer.add_image(rgb, name=name, rgb=True, **kwargs)
        self.show_colorbar(*tau_range)
        self.status.setText(
            f"{name}: colour = lifetime {tau_range[0]:.2f}–{tau_range[1]:.2f} ns "
            f"(2nd–98th percentile; colour bar below), brightness = photons"
        )

    def show_colorbar(self, lo: float, hi: float) -> None:
        """The lifetime image's colour scale (Turbo) from ``lo`` to ``hi`` ns in the dock."""
        colours = turbo(np.linspace(0.0, 1.0, 256))
        self.colorbar_image.setImage((colours[:, None, :] * 255).astype(np.uint8), levels=(0, 255))
        self.colorbar_image.setRect(lo, 0.0, hi - lo, 1.0)
        self.colorbar.setXRange(lo, hi, padding=0)
        self.colorbar.setYRange(0.0, 1.0, padding=0)
        self.colorbar_range = (float(lo), float(hi))
        self.colorbar.setVisible(True)

    def cancel(self) -> None:
        if self._worker is not None:
            self._worker.quit()
            self.status.setText("cancelled; the previous fit is kept")

    def _set_busy(self, busy: bool) -> None:
        super()._set_busy(busy)
        self.fit_button.setEnabled(not busy)

    def show_fit(self, hist: np.ndarray | None, fit: DecayFit) -> None:
        """Draw ``hist`` (if given), the fit and its residuals; fill the table."""
        self.fit = fit
        self.fraction_button.setEnabled(fit.n_exp == 2)
        image = image_layer_for(self.viewer, self.dataset)
        if image is not None:  # lifetimes in the trace plot use this fit's IRF offset
            image.metadata = {**image.metadata, "scanimage_decay_fit": fit}
        bin_ns = fit.bin_width_ps / 1000.0
        if hist is not None:
            self.hist = np.asarray(hist, np.float64)
        lo, hi = fit.fit_range
        bins = np.arange(lo, hi)
        t = (bins + 0.5) * bin_ns
        model = fit.model(bins)
        if self.hist is not None and len(self.hist) >= hi:
            y = self.hist[lo:hi]
            shown = y > 0  # log axis: empty bins are not drawn
            self.data_curve.setData(t[shown], y[shown])
            with np.errstate(invalid="ignore", divide="ignore"):
                res = np.where(model > 0, (y - model) / np.sqrt(model), 0.0)
            self.residual_curve.setData(t, res)
        positive = model > 0
        self.fit_curve.setData(t[positive], model[positive])
        rows = parameter_rows(fit)
        self.table.setRowCount(len(rows))
        for r, row in enumerate(rows):
            for c, text in enumerate(row):
                self.table.setItem(r, c, QTableWidgetItem(text))
        taus = ", ".join(f"{v:.3g}" for v in fit.taus_ns)
        where = f" of {self.roi_note}" if hist is not None else " (loaded)"
        text = (
            f"fit: τ = {taus} ns; {int(fit.total)} photons{where}; reduced χ² "
            f"{fit.reduced_chi2:.3g} (deviance {fit.deviance:.1f} / "
            f"{fit.degrees_of_freedom} degrees of freedom)"
        )
        self.summary.setText(text)
        self.status.setText("fitted" if hist is not None else "loaded the fit")
        problems = fit.warnings()
        self.warning.setText("⚠ unreliable fit: " + "; ".join(problems) if problems else "")
        self.warning.setVisible(bool(problems))

    # -- files ------------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        if self.fit is None:
            raise ScanImageError("nothing to save yet: fit first")
        return self.fit.save(path)

    def load(self, path: str | Path) -> DecayFit:
        fit = DecayFit.load(path)
        self.show_fit(None, fit)
        return fit

    def _file_dialog(self, what: str) -> None:
        try:
            if what == "save":
                path, _ = QFileDialog.getSaveFileName(
                    self, "Save fit", "decay_fit.json", "Decay fit (*.json)"
                )
                if path:
                    self.save(path)
                    self.status.setText(f"saved {Path(path).name}")
            else:
                path, _ = QFileDialog.getOpenFileName(self, "Load fit", "", "Decay fit (*.json)")
                if path:
                    self.load(path)
        except (ScanImageError, OSError, ValueError) as exc:
            report_failure(self.status, what, exc)
