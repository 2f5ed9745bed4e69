r"""Screenshots of the whole workflow, step by step, in real napari windows.

    xvfb-run -a -s "-screen 0 1920x1080x24" .venv/bin/python tools/workflow_screenshots.py \\
        OUT_DIR [WIDTHxHEIGHT]

The volumetric sample with all seven docks: three ROIs drawn (two on plane 2, one on all
planes), registration, the selection changed (mean, one plane, interleave, back), dF/F traces
with neuropil, the session saved and reopened in a new window; then the FLIM sample: a decay
fit, phasors and lifetime traces.  The window is maximised to the screen (or resized to
WIDTHxHEIGHT) and a PNG written after each step; napari notifications and Python warnings
over the run are counted and printed at the end.
"""

from __future__ import annotations

import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np


def _settle(docks: dict, timeout: float = 180.0) -> None:
    from qtpy.QtWidgets import QApplication

    deadline = time.monotonic() + timeout
    for _ in range(20):
        QApplication.processEvents()
        time.sleep(0.02)
    while time.monotonic() < deadline and (
        any(getattr(d, "busy", False) for d in docks.values()) or docks["Traces"]._timer.isActive()
    ):
        QApplication.processEvents()
        time.sleep(0.02)
    for _ in range(10):
        QApplication.processEvents()
        time.sleep(0.02)


def _window(viewer, docks, size):
    from qtpy.QtWidgets import QApplication

    from napari_scanimage.gui.demo import arrange_docks

    window = viewer.window._qt_window
    if size is None:  # the screen's size (Xvfb has no window manager to maximise)
        geometry = QApplication.primaryScreen().geometry()
        size = (geometry.width(), geometry.height())
    window.move(0, 0)
    window.resize(*size)
    for _ in range(20):
        QApplication.processEvents()
        time.sleep(0.02)
    arrange_docks(viewer, docks)
    for _ in range(20):
        QApplication.processEvents()
        time.sleep(0.02)


def _rect(z, y, x, h, w):
    return np.array([[z, 0, y, x], [z, 0, y, x + w], [z, 0, y + h, x + w], [z, 0, y + h, x]], float)


def run(out: Path, size: tuple[int, int] | None = None) -> list[str]:
    """Run the workflow, writing ``out/NN-step.png``; returns the notifications and warnings
    met.
    """
    import napari
    from napari.utils.notifications import notification_manager

    from napari_scanimage.gui.demo import add_docks
    from napari_scanimage.sample import sample_path
    from napari_scanimage.session import TraceSettings

    out.mkdir(parents=True, exist_ok=True)
    heard: list[str] = []
    notification_manager.notification_ready.connect(
        lambda n: heard.append(f"notification: {n.message}")
    )
    shots = iter(range(1, 100))

    def shoot(viewer, docks, name):
        _settle(docks)
        path = out / f"{next(shots):02d}-{name}.png"
        viewer.screenshot(str(path), canvas_only=False)
        print(f"wrote {path}")

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        viewer = napari.Viewer(title="workflow")
        viewer.open(str(sample_path("volume_2ch")), plugin="napari-scanimage")
        viewer.dims.set_current_step(1, 2)  # plane 2
        docks = add_docks(viewer)
        _window(viewer, docks, size)
        layer = docks["ROIs"].new_layer()
        layer.add(
            [_rect(2, 30, 40, 12, 14), _rect(2, 70, 20, 10, 10), _rect(0, 90, 90, 16, 12)],
            shape_type="rectangle",
        )
        docks["ROIs"].set_all_planes("roi 3", True)
        layer.mode = "pan_zoom"
        shoot(viewer, docks, "rois")
        docks["Registration"].parentWidget().raise_()
        docks["Registration"].run()
        shoot(viewer, docks, "registered")
        selection = docks["Selection"]
        selection.parentWidget().raise_()
        for name, plane, sample in (
            ("mean", "keep", "mean"),
            ("plane1", 1, None),
            ("interleave", "keep", "interleave"),
            ("back", None, "mean"),
        ):
            if plane != "keep":
                selection.plane.setCurrentIndex(
                    selection.plane.findData(plane) if plane is not None else 0
                )
            if sample is not None:
                selection.sample.setCurrentIndex(selection.sample.findData(sample))
            selection.apply()
            shoot(viewer, docks, f"selection-{name}")
        docks["Traces"].set_trace_settings(TraceSettings(kind="dff", neuropil=0.7))
        shoot(viewer, docks, "dff")
        session = Path(tempfile.mkdtemp()) / "workflow.nsession.json"
        docks["Traces"].save_session(session)
        viewer.close()

        viewer = napari.Viewer(title="workflow (session reopened)")
        viewer.open(str(session), plugin="napari-scanimage")
        docks = add_docks(viewer)
        _window(viewer, docks, size)
        shoot(viewer, docks, "session-reopened")
        viewer.close()

        viewer = napari.Viewer(title="workflow (FLIM)")
        viewer.open(str(sample_path("flim_2ch")), plugin="napari-scanimage")
        docks = add_docks(viewer)
        _window(viewer, docks, size)
        layer = docks["ROIs"].new_layer()
        layer.add(
            [np.array([[60.0, 60], [60, 100], [100, 100], [100, 60]])], shape_type="rectangle"
        )
        layer.mode = "pan_zoom"
        _settle(docks)
        flim = docks["FLIM"]
        flim.params.rois.value = "ROIs"
        flim.params.which.value = "all ROIs"
        flim.run()
        shoot(viewer, docks, "flim-fit")
        docks["Phasor"].parentWidget().raise_()
        docks["Phasor"].run()
        shoot(viewer, docks, "phasor")
        docks["Traces"].set_trace_settings(TraceSettings(kind="lifetime"))
        shoot(viewer, docks, "lifetime-traces")
        viewer.close()
    return heard + [f"{w.category.__name__}: {w.message}" for w in caught]


def main(argv: list[str]) -> int:
    out = Path(argv[0]) if argv else Path("workflow-screenshots")
    size = tuple(int(v) for v in argv[1].split("x")) if len(argv) > 1 else None
    messages = run(out, size)
    print(f"{len(messages)} notification(s) / warning(s):", *messages, sep="\n  ")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
