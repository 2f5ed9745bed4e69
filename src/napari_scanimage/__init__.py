"""napari-scanimage: lazy ScanImage TIFF and ScanImage-FLIM readers, for napari and for scripts.

Public API
----------
open_dataset
    Open a ScanImage recording (one file or a multi-file series) as a :class:`Dataset`.
Dataset
    Metadata, lazy dask arrays, timestamps and frame indices of one recording.
"""

from __future__ import annotations

from .errors import FormatError, LayoutError, ScanImageError, SelectionError

__version__ = "0.1.0"

__all__ = [
    "Dataset",
    "FormatError",
    "LayoutError",
    "ScanImageError",
    "SelectionError",
    "__version__",
    "open_dataset",
]


def __getattr__(name: str):  # lazy import keeps `import napari_scanimage` cheap
    if name in ("Dataset", "open_dataset"):
        from . import dataset

        return getattr(dataset, name)
    raise AttributeError(name)
