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
    """Napari's test fixtures block plugin discovery; register our installed manifest."""
    import npe2

    manifest = npe2.PluginManifest.from_distribution("napari-scanimage")
    if manifest.name not in npe2pm:
        npe2pm.register(manifest)
    return manifest


# The open-files checks of tests/conftest.py do not run here (same names, overridden): a
# napari viewer owns the datasets behind its layers, and they stay open until the layer is
# removed or the viewer closes, which napari's viewer fixture does after these checks.
@pytest.fixture(autouse=True)
def no_files_left_open():
    yield


@pytest.fixture(scope="module", autouse=True)
def no_files_left_open_by_module():
    yield
