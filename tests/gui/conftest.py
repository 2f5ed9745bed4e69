"""GUI fixtures: napari's test plugin manager with this plugin's real manifest registered."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def scanimage_plugin(npe2pm):
    """napari's test fixtures block plugin discovery; register our installed manifest."""
    import npe2

    manifest = npe2.PluginManifest.from_distribution("napari-scanimage")
    if manifest.name not in npe2pm._manifests:
        npe2pm.register(manifest)
    return manifest
