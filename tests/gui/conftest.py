"""GUI fixtures: napari's test plugin manager with this plugin's real manifest registered."""

from __future__ import annotations

import os
import sys

import pytest


@pytest.fixture(scope="session", autouse=True)
def x_display() -> str:
    """The X display, checked before anything creates the QApplication.

    Without one Qt aborts the whole test process, which is much harder to read.
    """
    display = os.environ.get("DISPLAY", "")
    if sys.platform.startswith("linux") and not display:
        pytest.fail(
            "no X display: pytest-xvfb did not start Xvfb (is Xvfb installed? run "
            "scripts/setup.sh, and don't pass --no-xvfb)",
            pytrace=False,
        )
    return display


@pytest.fixture(autouse=True)
def scanimage_plugin(npe2pm):
    """napari's test fixtures block plugin discovery; register our installed manifest."""
    import npe2

    manifest = npe2.PluginManifest.from_distribution("napari-scanimage")
    if manifest.name not in npe2pm:
        npe2pm.register(manifest)
    return manifest
