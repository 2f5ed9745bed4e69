"""napari-scanimage: lazy ScanImage TIFF and ScanImage-FLIM readers, for napari and for scripts.

Public API
----------
open_dataset
    Open a ScanImage recording (one file or a multi-file series) as a :class:`Dataset`.
Dataset
    Metadata, lazy dask arrays, timestamps and frame indices of one recording; for `.siff`
    files also photons, arrival-time histograms, mask sums and lifetime images.
FlimSettings, PhotonSums, Event
    What ``Dataset.flim``, ``Dataset.photon_sums`` and ``Dataset.events`` return.
RoiSet
    Named, coloured ROIs (from masks, napari layers, JSON or ImageJ files) and their masks.
traces
    Every ROI's mean, sum or dF/F over time in one pass (a ``Traces`` result).
register, Registration
    Rigid motion registration (subpixel phase correlation) and its result, applied lazily
    with ``Dataset.array(..., registration=)`` and ``traces(..., registration=)``.
"""

from __future__ import annotations

from .errors import FormatError, LayoutError, ReadError, SaveError, ScanImageError, SelectionError

__version__ = "0.1.0"

__all__ = [
    "Dataset",
    "Event",
    "FlimSettings",
    "FormatError",
    "LayoutError",
    "PhotonSums",
    "Registration",
    "ReadError",
    "RoiSet",
    "SaveError",
    "ScanImageError",
    "SelectionError",
    "__version__",
    "open_dataset",
    "register",
    "traces",
]


def __getattr__(name: str):  # lazy import keeps `import napari_scanimage` cheap
    if name in ("Dataset", "open_dataset"):
        from ._core import dataset

        return getattr(dataset, name)
    if name in ("Event", "PhotonSums"):
        from ._core import photons

        return getattr(photons, name)
    if name == "RoiSet":
        from .analysis.rois import RoiSet

        return RoiSet
    if name in ("register", "Registration"):
        from .analysis import registration

        return getattr(registration, name)
    if name == "traces":
        from .analysis.traces import traces

        return traces
    if name == "FlimSettings":
        from .io.siff_settings import FlimSettings

        return FlimSettings
    raise AttributeError(name)
