"""napari-scanimage: lazy ScanImage TIFF and ScanImage-FLIM readers, for napari and for scripts.

Public API
----------
open_dataset
    Open a ScanImage recording (one file or a multi-file series) as a :class:`Dataset`.
is_scanimage
    Whether a path is a ScanImage TIFF or `.siff` file (a header check that never raises).
Dataset
    Metadata, lazy arrays (``array``, every channel in ``to_dask`` / ``to_xarray``, their
    ``dims`` / ``sizes``), timestamps and frame indices of one recording; for `.siff` files
    also photons, arrival-time histograms, mask sums and lifetime images.
FlimSettings, PhotonSums, Event
    What ``Dataset.flim``, ``Dataset.photon_sums`` and ``Dataset.events`` return.
RoiSet
    Named, coloured ROIs (from masks, napari layers, JSON or ImageJ files) and their masks.
traces
    Every ROI's mean, sum or dF/F over time in one pass (a ``Traces`` result).
detect_rois
    Active cells found automatically (a ``RoiSet`` of mask ROIs with features), from the
    recording's summary images in one pass.
register, Registration
    Rigid motion registration (subpixel phase correlation) and its result, applied lazily
    with ``Dataset.array(..., registration=)`` and ``traces(..., registration=)``.

Sub-packages
------------
``analysis``, ``flim``, ``io``, ``testing``, ``session``, ``errors``, ``nwb``, ``sample``,
``gui`` load on first use (``import napari_scanimage as nsi; nsi.flim.phasor_image``), so
``import napari_scanimage`` itself stays cheap: it loads no dask, NumPy-heavy or GUI module.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .errors import FormatError, LayoutError, ReadError, SaveError, ScanImageError, SelectionError

if TYPE_CHECKING:  # what type checkers and IDEs see; at run time these load on first use
    from . import analysis as analysis
    from . import errors as errors
    from . import flim as flim
    from . import gui as gui
    from . import io as io
    from . import nwb as nwb
    from . import sample as sample
    from . import session as session
    from . import testing as testing
    from ._core.dataset import Dataset, open_dataset
    from ._core.photons import Event, PhotonSums
    from ._core.probe import is_scanimage
    from .analysis.detection import detect_rois
    from .analysis.registration import Registration, register
    from .analysis.rois import RoiSet
    from .analysis.traces import traces
    from .io.siff_settings import FlimSettings

    __version__: str

__all__ = [
    "Dataset",
    "Event",
    "FlimSettings",
    "FormatError",
    "LayoutError",
    "PhotonSums",
    "ReadError",
    "Registration",
    "RoiSet",
    "SaveError",
    "ScanImageError",
    "SelectionError",
    "__version__",
    "detect_rois",
    "is_scanimage",
    "open_dataset",
    "register",
    "traces",
]

# public name -> module that defines it (loaded on first access)
_LAZY_NAMES = {
    "Dataset": "._core.dataset",
    "open_dataset": "._core.dataset",
    "is_scanimage": "._core.probe",
    "Event": "._core.photons",
    "PhotonSums": "._core.photons",
    "RoiSet": ".analysis.rois",
    "detect_rois": ".analysis.detection",
    "register": ".analysis.registration",
    "Registration": ".analysis.registration",
    "traces": ".analysis.traces",
    "FlimSettings": ".io.siff_settings",
}
_SUBMODULES = ("analysis", "errors", "flim", "gui", "io", "nwb", "sample", "session", "testing")


def __getattr__(name: str) -> Any:
    if name in _LAZY_NAMES:
        value = getattr(importlib.import_module(_LAZY_NAMES[name], __name__), name)
    elif name in _SUBMODULES:
        value = importlib.import_module(f".{name}", __name__)
    elif name == "__version__":
        value = _version()
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*__all__, *_SUBMODULES})


def _version() -> str:
    """The installed distribution's version (pyproject.toml is the one place it is set)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("napari-scanimage")
    except PackageNotFoundError:  # run from a source tree that is not installed
        return "0+unknown"
