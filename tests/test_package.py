"""The package namespace: lazy loading, ``dir``, the version, and a cheap ``import``."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys

import napari_scanimage as nsi


def _run(code: str) -> str:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return out.stdout.strip()


def test_import_is_cheap():
    """``import napari_scanimage`` loads no array, compiler or GUI library."""
    heavy = ("dask", "numba", "napari", "scipy", "xarray", "qtpy", "tifffile")
    loaded = _run(
        "import sys, napari_scanimage; "
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {heavy!r}))"
    )
    assert loaded == "[]"


def test_sub_packages_load_on_first_use():
    """``nsi.flim`` without ``import napari_scanimage.flim`` first (a fresh interpreter)."""
    out = _run(
        "import napari_scanimage as nsi; print(nsi.flim.phasor_image.__name__, "
        "nsi.analysis.__name__, nsi.testing.tiff.SyntheticLayout.__name__)"
    )
    assert out == "phasor_image napari_scanimage.analysis SyntheticLayout"


def test_dir_lists_the_public_names():
    names = dir(nsi)
    for name in (*nsi.__all__, "flim", "analysis", "io", "testing", "session"):
        assert name in names
        if name != "gui":  # every listed name resolves
            assert getattr(nsi, name) is not None
    assert nsi.open_dataset.__module__ == "napari_scanimage._core.dataset"
    assert nsi.is_scanimage.__name__ == "is_scanimage"


def test_unknown_name_is_an_attribute_error():
    try:
        nsi.no_such_name  # noqa: B018
    except AttributeError as exc:
        assert "no_such_name" in str(exc)
    else:
        raise AssertionError("no AttributeError")


def test_version_comes_from_the_package_metadata():
    assert nsi.__version__ == importlib.metadata.version("napari-scanimage")
