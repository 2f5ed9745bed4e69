"""The Registration dock's views of a result: the shift, correlation and block-residual
plots, the QC summary image, the block field as a Vectors layer, and the raw / registered /
side-by-side view.

:class:`RegistrationViews` is a part of
:class:`~napari_scanimage.gui.registration.RegistrationDock` (the dock provides the widgets,
the viewer and the result); the numbers come from the library
(:mod:`napari_scanimage.analysis.block_qc`, :mod:`napari_scanimage.analysis.qc`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ..analysis import qc
from ..analysis.block_qc import residual_motion
from ._family import FLAG_COLOURS, field_on_axes, on_family_axes, set_field
from .roi_layers import image_layer_for

if TYPE_CHECKING:
    from ..analysis.registration import Registration

__all__ = ["PLANE_COLOURS", "SUMMARIES", "VECTOR_GAIN", "VIEWS", "RegistrationViews"]

VIEWS = ("raw", "registered", "side by side")
SUMMARIES = tuple(f"{kind} ({label})" for kind in qc.KINDS for label in ("raw", "registered"))
PLANE_COLOURS = (
    "#ff8c1a",
    "#4fa3ff",
    "#7bd651",
    "#e5484d",
    "#c27aff",
    "#f5d90a",
    "#14b8a6",
    "#f472b6",
)
VECTOR_GAIN = 10  # block residuals are a pixel or two: drawn this many times longer


class RegistrationViews:
    """Plots, QC image, block field and view switching of the Registration dock."""

    if TYPE_CHECKING:  # what the dock provides
        viewer: Any
        layers: list[Any]
        result: Registration | None
        qc_images: dict[str, Any]
        frame_flags: Any
        summary_box: Any
        view_box: Any
        plots: Any
        shift_plot: Any
        corr_plot: Any
        field_plot: Any
        _hidden: list[Any]

    def _show_field(self, ds, result: Registration, image, layer=None) -> bool:
        """The block field as a Vectors layer on ``image``'s axes (t, [z,] [sample,] y, x), over
        the registered mean image (the QC layer); coloured by block flag.  ``layer``: the
        field of an earlier result, given the new vectors in place.  False when ``image``'s
        axes cannot show it.
        """
        placed = field_on_axes(result, image)
        if placed is None:
            return False
        vec, axes = placed
        name = f"{result.channel} block field ×{VECTOR_GAIN}"
        # the registration it draws: the field follows a change of selection (._family)
        metadata = {
            "scanimage_family": ds,
            "scanimage_field_of": result,
            "scanimage_block_field": result.channel,
        }
        if layer is not None and layer in self.viewer.layers:
            layer = set_field(self.viewer, layer, vec, axes)
            layer.metadata = metadata
            layer.name = name
        else:
            layer = self.viewer.add_vectors(
                vec.data,
                name=name,
                length=VECTOR_GAIN,
                edge_width=max(1.0, result.frame_shape[1] / 250),
                edge_color=FLAG_COLOURS[np.clip(vec.flags, 0, 3)],
                vector_style="arrow",
                metadata=metadata,
                **axes,
            )
        if layer not in self.layers:
            self.layers.append(layer)
        qc_layer = next((x for x in self.layers if "scanimage_qc" in x.metadata), None)
        if qc_layer is not None:  # the field over the registered mean image
            self.set_summary("mean (registered)")
        return True

    def _summary_choice(self) -> tuple[str, str]:
        text = self.summary_box.currentText() or SUMMARIES[0]
        kind, label = text[:-1].rsplit(" (", 1)
        return kind, label

    def set_summary(self, text: str | None = None) -> None:
        """Show the chosen summary image ("<kind> (raw|registered)") in the QC layer."""
        layer = next((x for x in self.layers if "scanimage_qc" in x.metadata), None)
        if layer is None or layer not in self.viewer.layers or not self.qc_images:
            return
        if text is not None and text != self.summary_box.currentText():
            self.summary_box.setCurrentText(text)
            return  # the box's signal comes back here
        kind, label = self._summary_choice()
        planes = self.qc_images[label][kind]
        image = image_layer_for(self.viewer, layer.metadata["scanimage_family"])
        data, _ = on_family_axes(image, planes)
        layer.metadata = {
            **layer.metadata,
            "scanimage_planes": planes,
            "scanimage_qc": (kind, label),
        }
        layer.visible = True  # first: napari does not slice hidden layers
        layer.data = data
        layer.reset_contrast_limits(mode="data")  # of the whole (Z, Y, X) summary image

    def _flag_text(self, ds, result: Registration) -> str:
        flags = self.frame_flags
        if flags is None:
            return ""
        bad = np.flatnonzero(flags.any.any(axis=1))
        text = f"QC: {flags.summary()}"
        if bad.size:
            bound = result.settings.get("max_shift")
            text += (
                f" (bound ±{bound} px); time rows "
                + ", ".join(map(str, bad[:8]))
                + (" …" if bad.size > 8 else "")
                + " — marked ✕ on the shift plot; "
                "check them, or register again with a larger max shift"
            )
        return text

    def _plot(self, ds, result: Registration, image) -> None:
        import pyqtgraph as pg

        sample = "mean" if ds.info.frames_per_slice > 1 else 0
        time = np.asarray(ds.timestamps(0, slice_sample=sample), np.float64)[: result.num_times]
        shifts, corr, colours, corr_colours = {}, {}, [], []
        for z in range(result.num_planes):
            suffix = f" z{z}" if result.num_planes > 1 else ""
            colour = PLANE_COLOURS[z % len(PLANE_COLOURS)] if result.num_planes > 1 else None
            shifts[f"dy{suffix}"] = result.shifts[:, z, 0]
            shifts[f"dx{suffix}"] = result.shifts[:, z, 1]
            corr[f"r{suffix}"] = result.correlation[:, z]
            # one hue per plane; dy full, dx lighter (one plane: the two hues of before)
            if colour is None:
                colours += ["#ff8c1a", "#4fa3ff"]
                corr_colours.append("#ff8c1a")
            else:
                colours += [colour, colour]  # dx dashed (below)
                corr_colours.append(colour)
        for plot in (self.shift_plot, self.corr_plot):
            plot.image_layer = image
            plot.legend.setColumnCount(min(4, result.num_planes))
            plot.legend.setOffset((-5, 5))  # top right, a row per few planes
        self.shift_plot.set_curves(time, shifts, colours)
        self.corr_plot.set_curves(time, corr, corr_colours)
        at = self.plots.indexOf(self.field_plot)
        if result.piecewise:
            if at < 0:
                at = self.plots.addTab(self.field_plot, "block residuals")
                self.plots.setTabToolTip(
                    at, "RMS of the blocks' residual shifts after the rigid shift, per frame"
                )
            rms = residual_motion(result)
            self.field_plot.image_layer = image
            self.field_plot.set_curves(
                time,
                {
                    f"residual{' z' + str(z) if result.num_planes > 1 else ''}": rms[:, z]
                    for z in range(result.num_planes)
                },
                corr_colours,
            )
        elif at >= 0:
            self.plots.removeTab(at)
        if result.num_planes > 1:  # one hue per plane, dx dashed; a legend entry per plane
            from qtpy.QtCore import Qt

            legend = self.shift_plot.legend
            legend.clear()
            for z in range(result.num_planes):
                colour = colours[2 * z]
                self.shift_plot.curves[f"dx z{z}"].setPen(
                    pg.mkPen(colour, width=1.5, style=Qt.PenStyle.DashLine)
                )
                legend.addItem(self.shift_plot.curves[f"dy z{z}"], f"plane {z}")
            self.shift_plot.plot.setLabel("left", "shift (px): dy ─, dx ╌")
        for plot, values in (
            (self.shift_plot, result.shifts),
            (self.corr_plot, result.correlation),
        ):
            finite = np.asarray(values)[np.isfinite(values)]
            if finite.size:  # room above the curves for the legend
                lo, hi = float(finite.min()), float(finite.max())
                plot.plot.setYRange(lo, hi + 0.35 * max(hi - lo, 1e-3), padding=0.02)
        for item in getattr(self, "_flag_items", []):
            item.getViewBox() and item.getViewBox().removeItem(item)
        self._flag_items = []
        flags = self.frame_flags
        if flags is not None and len(time):
            flagged_t, flagged_z = np.nonzero(flags.any[: len(time)])
            for plot, ys in (
                (self.shift_plot, np.abs(result.shifts).max(axis=2)),
                (self.corr_plot, result.correlation),
            ):
                marks = pg.ScatterPlotItem(
                    time[flagged_t],
                    ys[flagged_t, flagged_z],
                    symbol="x",
                    size=10,
                    pen=pg.mkPen("#ff3030", width=2),
                    brush=None,
                )
                plot.plot.addItem(marks)
                self._flag_items.append(marks)

    def _show_hidden(self) -> None:
        for layer in self._hidden:
            if layer in self.viewer.layers:
                layer.visible = True
        self._hidden = []

    def set_view(self, view: str) -> None:
        """Show "raw", "registered" or "side by side" (napari's grid with the aligned channel's raw
        and registered layers only; the others are hidden until another view is chosen).
        """
        if view not in VIEWS:
            return
        if self.view_box.currentText() != view:
            self.view_box.blockSignals(True)
            self.view_box.setCurrentText(view)
            self.view_box.blockSignals(False)
        self._show_hidden()
        registered = [layer for layer in self.layers if "scanimage_raw" in layer.metadata]
        raw_names = {layer.metadata["scanimage_raw"] for layer in registered}
        for layer in self.viewer.layers:
            if layer.name in raw_names:
                layer.visible = view != "registered"
        for layer in registered:
            layer.visible = view != "raw"
        if view == "side by side" and self.result is not None:
            aligned = [
                layer for layer in registered if layer.name.startswith(f"{self.result.channel} ")
            ] or registered[:1]
            pair = {id(x) for x in aligned}
            pair |= {
                id(x)
                for x in self.viewer.layers
                if x.name in {a.metadata["scanimage_raw"] for a in aligned}
            }
            for layer in self.viewer.layers:
                if id(layer) not in pair and layer.visible:
                    layer.visible = False
                    self._hidden.append(layer)
        self.viewer.canvas.grid.enabled = view == "side by side"
