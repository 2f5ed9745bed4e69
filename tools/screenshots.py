"""Regenerate the documentation screenshots from real napari windows.

    python tools/screenshots.py [OUT_DIR [NAME.png ...]]     # default: docs/images, all

Each view is built the way a user would get it (sample data, the plugin's docks, a selection
applied through the dock's code path) and rendered whole; a virtual X server is started when
there is no display.  ``scripts/screenshots.sh`` runs this in the project environment.
"""

from __future__ import annotations

import sys
from pathlib import Path

__all__ = ["VIEWS", "render"]


def _volume(viewer, docks) -> None:
    viewer.dims.set_current_step(0, 5)
    docks["Metadata"].tree.topLevelItem(0).setExpanded(True)


def _flim(viewer, docks) -> None:
    dock = docks["Selection"]
    dock.lifetime.setChecked(True)
    dock.apply()
    viewer.layers["Red"].visible = False
    viewer.layers["Red lifetime"].visible = False
    viewer.layers["Green"].visible = False
    viewer.dims.set_current_step(0, 120)
    viewer.layers.selection.active = viewer.layers["Green lifetime"]
    docks["Metadata"].search.setText("hAcq")
    docks["Metadata"].parentWidget().raise_()  # the acquisition keys, in the setup tabs
    flim = docks["FLIM"]  # a decay fit of the whole frame, shown in its tab
    flim.parentWidget().raise_()
    flim.run()
    _wait(flim)


def _wait(dock, timeout: float = 120.0) -> None:
    import time

    from qtpy.QtWidgets import QApplication

    deadline = time.monotonic() + timeout
    while dock.busy and time.monotonic() < deadline:
        QApplication.processEvents()
        time.sleep(0.02)


def _registration(viewer, docks) -> None:
    dock = docks["Registration"]
    dock.parentWidget().raise_()
    dock.run()
    _wait(dock)
    viewer.dims.set_current_step(0, 20)
    viewer.reset_view()
    for layer in viewer.layers:
        if layer.name == "Green local correlation (registered)":
            layer.visible = True
            viewer.layers.selection.active = layer


def _mroi(viewer, docks) -> None:
    for layer in viewer.layers:  # the green fields, tiled where they were scanned
        layer.visible = layer.name.startswith("Green")
    viewer.dims.set_current_step(0, 12)
    viewer.reset_view()
    viewer.layers.selection.active = viewer.layers["Green middle"]


#: file name → (sample, how to set the view up, window size): a 1080p screen, and the demo
#: again on a 1280x800 one
VIEWS = {
    "demo.png": ("volume_2ch", _volume, (1920, 1080)),
    "demo-1280x800.png": ("volume_2ch", _volume, (1280, 800)),
    "flim.png": ("flim_2ch", _flim, (1920, 1080)),
    "registration.png": ("volume_2ch", _registration, (1920, 1080)),
    "mroi.png": ("mroi_3field", _mroi, (1920, 1080)),
}


def render(out_dir: str | Path = "docs/images", names=None) -> list[Path]:
    """Write the screenshots (all, or those in ``names``) into ``out_dir``."""
    from virtual_display import virtual_display  # tools/, next to this script

    from napari_scanimage.gui.demo import arrange_docks, build_viewer, settle

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    with virtual_display("1920x1080x24"):
        for name, (sample, setup, size) in VIEWS.items():
            if names is not None and name not in names:
                continue
            viewer, docks = build_viewer(show=True, sample=sample, with_docks=True)
            viewer.window.resize(*size)  # maximised on a screen of that size
            settle(docks)
            arrange_docks(viewer, docks)
            settle(docks)
            viewer.reset_view()  # fitted to the canvas of this window size
            setup(viewer, docks)
            settle(docks)
            path = out_dir / name
            viewer.screenshot(str(path), canvas_only=False)
            viewer.close()
            written.append(path)
    return written


if __name__ == "__main__":
    for p in render(sys.argv[1] if len(sys.argv) > 1 else "docs/images", sys.argv[2:] or None):
        print(f"wrote {p}")
