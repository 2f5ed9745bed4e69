"""``napari-scanimage demo``: napari with the sample data and the plugin's docks."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

__all__ = ["add_docks", "build_viewer", "run_demo", "virtual_display"]


class virtual_display:
    """Start Xvfb for the duration of a ``with`` block when there is no display."""

    def __init__(self, size: str = "1600x1000x24"):
        self.size = size
        self.proc: subprocess.Popen | None = None
        self.previous = os.environ.get("DISPLAY")

    def __enter__(self) -> virtual_display:
        if self.previous:
            return self
        xvfb = shutil.which("Xvfb")
        if xvfb is None:
            raise RuntimeError("no display and no Xvfb: install it (apt-get install xvfb) or run "
                               "scripts/demo.sh, which does")
        for number in range(99, 199):
            if not Path(f"/tmp/.X11-unix/X{number}").exists() and \
                    not Path(f"/tmp/.X{number}-lock").exists():
                break
        self.proc = subprocess.Popen([xvfb, f":{number}", "-screen", "0", self.size, "-nolisten",
                                      "tcp"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while not Path(f"/tmp/.X11-unix/X{number}").exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("Xvfb did not start")
            time.sleep(0.05)
        os.environ["DISPLAY"] = f":{number}"
        return self

    def __exit__(self, *exc) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(5)
            os.environ.pop("DISPLAY", None)


def add_docks(viewer) -> dict:
    """Add every dock of the plugin to ``viewer``; returns {name: widget}."""
    from .metadata import MetadataDock
    from .selection import SelectionDock

    docks = {"Selection": SelectionDock(viewer), "Metadata": MetadataDock(viewer)}
    for name, widget in docks.items():
        viewer.window.add_dock_widget(widget, name=name, area="right")
    return docks


def build_viewer(show: bool = True, sample: str = "volume_2ch", with_docks: bool = False):
    """A napari viewer with a sample recording open and the plugin's docks added (returned
    too, as ``(viewer, docks)``, with ``with_docks``)."""
    import napari

    from ..sample import sample_path

    viewer = napari.Viewer(title="napari-scanimage demo", show=show)
    viewer.open(str(sample_path(sample)), plugin="napari-scanimage")
    viewer.dims.ndisplay = 2
    viewer.dims.set_current_step(0, 5)
    docks = add_docks(viewer)
    return (viewer, docks) if with_docks else viewer


def run_demo(screenshot: str | None = None, sample: str = "volume_2ch") -> int:
    if screenshot is None:
        import napari

        build_viewer(sample=sample)
        napari.run()
        return 0
    with virtual_display():
        from qtpy.QtWidgets import QApplication

        viewer = build_viewer(show=True, sample=sample)
        viewer.window.resize(1500, 950)
        for _ in range(20):
            QApplication.processEvents()
            time.sleep(0.02)
        Path(screenshot).parent.mkdir(parents=True, exist_ok=True)
        viewer.screenshot(screenshot, canvas_only=False)
        viewer.close()
    print(f"screenshot written to {screenshot}")
    return 0
