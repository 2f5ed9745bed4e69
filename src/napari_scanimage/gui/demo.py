"""``napari-scanimage demo``: napari with the sample data and the plugin's docks."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np

__all__ = ["add_demo_rois", "add_docks", "arrange_docks", "build_viewer", "run_demo"]


def add_docks(viewer) -> dict:
    """Add every dock of the plugin to ``viewer``; returns {name: widget}."""
    from .flim import FlimDock
    from .metadata import MetadataDock
    from .phasor import PhasorDock
    from .registration import RegistrationDock
    from .rois import RoiDock
    from .selection import SelectionDock
    from .traces import TracePlotDock

    docks = {
        "Selection": SelectionDock(viewer),
        "Metadata": MetadataDock(viewer),
        "ROIs": RoiDock(viewer),
        "Registration": RegistrationDock(viewer),
        "FLIM": FlimDock(viewer),
        "Phasor": PhasorDock(viewer),
        "Traces": TracePlotDock(viewer),
    }
    from qtpy.QtCore import Qt, QTimer

    from ._dock import fit_view_as_canvas_settles, join_group

    window = viewer.window._qt_window
    fit_view_as_canvas_settles(viewer)  # the docks narrow the canvas: fit the frame again
    # the right-hand docks run the full height; the traces share the canvas's width only
    window.setCorner(Qt.Corner.BottomRightCorner, Qt.DockWidgetArea.RightDockWidgetArea)
    window.setCorner(Qt.Corner.BottomLeftCorner, Qt.DockWidgetArea.LeftDockWidgetArea)
    for name, widget in docks.items():  # on the right each dock joins its group's tabs (._dock)
        viewer.window.add_dock_widget(
            widget, name=name, area="bottom" if name == "Traces" else "right"
        )
        join_group(widget)
    QTimer.singleShot(0, lambda: arrange_docks(viewer, docks))
    return docks


def arrange_docks(viewer, docks: dict) -> None:
    """The demo layout for the window's present size: the ROI list and the decay fit (the
    registration for TIFF recordings) on show, the setup docks over a third of the height (or
    what the ROI list needs), the traces under the canvas.
    """
    from qtpy.QtCore import Qt

    from ._dock import dock_scroll
    from .selection import datasets_in

    window = viewer.window._qt_window
    frames = {name: widget.parentWidget() for name, widget in docks.items()}
    frames["ROIs"].raise_()
    analysis = "FLIM" if any(ds.is_siff for ds in datasets_in(viewer)) else "Registration"
    frames[analysis].raise_()
    height = window.height()
    # a third of the height, or what the tallest of the ROI list and the Selection's controls
    # needs not to scroll (and its title bar)
    needed = 0
    for name in ("Selection", "ROIs"):
        scroll = dock_scroll(docks[name]) if name in docks else None
        if scroll is not None:
            needed = max(needed, scroll.contents.minimumSizeHint().height())
    setup = max(height // 3, needed + 60)
    window.resizeDocks(
        [frames["ROIs"], frames[analysis]], [setup, height - setup], Qt.Orientation.Vertical
    )
    window.resizeDocks([frames["Traces"]], [max(height // 3, 260)], Qt.Orientation.Vertical)


def add_demo_rois(viewer, docks: dict, sample: str) -> None:
    """An ROI layer with ellipses on the most active cells of the plane on show."""
    from ..analysis.colours import PALETTE
    from ..sample import active_cells
    from .roi_layers import image_layer_for, plane_axis

    if sample == "mroi_3field":  # cells are in canvas coordinates; fields are cut from it
        return
    image = image_layer_for(viewer)
    labels = list(image.axis_labels)
    plane = 0
    if "z" in labels:
        plane = int(viewer.dims.current_step[viewer.dims.ndim - image.ndim + labels.index("z")])
    layer = docks["ROIs"].new_layer()
    axis = plane_axis(image, layer.ndim)
    shapes = []
    for cy, cx, r in active_cells(sample, 4, plane):
        r = 1.8 * r
        corners = np.array([[cy - r, cx - r], [cy - r, cx + r], [cy + r, cx + r], [cy + r, cx - r]])
        front = np.zeros((4, layer.ndim - 2))
        if axis is not None:
            front[:, axis] = plane
        shapes.append(np.hstack([front, corners]))
    layer.add(shapes, shape_type="ellipse", edge_color=list(PALETTE[: len(shapes)]))
    layer.mode = "pan_zoom"


def build_viewer(show: bool = True, sample: str = "volume_2ch", with_docks: bool = False):
    """A napari viewer with a sample recording open and the plugin's docks added (returned
    too, as ``(viewer, docks)``, with ``with_docks``).
    """
    import napari

    from ..sample import sample_path

    viewer = napari.Viewer(title="napari-scanimage demo", show=show)
    viewer.open(str(sample_path(sample)), plugin="napari-scanimage")
    viewer.dims.ndisplay = 2
    viewer.dims.set_current_step(0, 5)
    docks = add_docks(viewer)
    add_demo_rois(viewer, docks, sample)
    return (viewer, docks) if with_docks else viewer


def settle(docks: dict | None = None, timeout: float = 60.0) -> None:
    """Process events until the traces are drawn (screenshots show finished docks)."""
    from qtpy.QtWidgets import QApplication

    deadline = time.monotonic() + timeout
    for _ in range(25):
        QApplication.processEvents()
        time.sleep(0.02)
    traces = (docks or {}).get("Traces")
    while (
        traces is not None
        and time.monotonic() < deadline
        and (traces.busy or traces._timer.isActive())
    ):
        QApplication.processEvents()
        time.sleep(0.02)
    QApplication.processEvents()


def has_display() -> bool:
    """Whether Qt can open a window here: always on macOS and Windows; on Linux and other X11
    systems only with an X or Wayland display (without one Qt aborts the process).
    """
    if sys.platform == "darwin" or sys.platform.startswith("win"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def run_demo(screenshot: str | None = None, sample: str = "volume_2ch") -> int:
    """Show napari with ``sample`` open and the plugin's docks (until the window is closed),
    or with ``screenshot`` write a picture of the window there instead; returns the exit
    status (2: no display to draw on).
    """
    if screenshot is None:
        import napari

        build_viewer(sample=sample)
        napari.run()
        return 0
    if not has_display():
        print(
            "napari-scanimage demo: error: no display to draw the window on (DISPLAY is not "
            "set): run `bash scripts/demo.sh --screenshot OUT.png`, which starts a virtual X "
            "server, or `xvfb-run -a -s '-screen 0 1600x1000x24' napari-scanimage demo "
            "--screenshot OUT.png`",
            file=sys.stderr,
        )
        return 2
    viewer, docks = build_viewer(show=True, sample=sample, with_docks=True)
    viewer.window.resize(1500, 950)
    settle(docks)
    arrange_docks(viewer, docks)
    settle(docks)
    Path(screenshot).parent.mkdir(parents=True, exist_ok=True)
    viewer.screenshot(screenshot, canvas_only=False)
    viewer.close()
    print(f"screenshot written to {screenshot}")
    return 0
