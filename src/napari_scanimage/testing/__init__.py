"""Ground-truth writers: ScanImage recordings whose every pixel and photon is known.

Each writer makes a small, valid file on disk together with a record of what it holds, so a
reader (this package's, or another one) can be checked value by value against the truth rather
than against a stored copy of its own output.  The byte layouts follow ``docs/formats.md``.

Modules
-------
:mod:`napari_scanimage.testing.tiff`
    ScanImage 2016+ BigTIFF: :class:`SyntheticLayout` (channels, planes, flyback, frames per
    slice, volumes, files), :func:`write_scanimage_tiff` (one file or a series; returns a
    :class:`SyntheticDataset`), :func:`page_content` (the pixels of raw page ``g``),
    :func:`scanimage_static_text` and :func:`roi_group_json` (the header blocks).
:mod:`napari_scanimage.testing.legacy`
    Classic TIFF of ScanImage 3.x, 4, 5.0 and 5.x (:data:`GENERATIONS`):
    :class:`LegacyLayout`, :func:`write_legacy_tiff` (returns a :class:`LegacyDataset`),
    :func:`legacy_description`.
:mod:`napari_scanimage.testing.mroi`
    Multi-ROI (mesoscope) BigTIFF: :class:`FieldSpec`, :data:`FIELDS`, :func:`write_mroi_tiff`
    (returns a :class:`SyntheticMroi` with each field's :class:`FieldTruth`),
    :func:`field_content`, :func:`roi_groups_json`.
:mod:`napari_scanimage.testing.cells`
    A ScanImage TIFF of cells with known footprints and calcium activity (neuropil, drift,
    Poisson noise): :func:`~.cells.write_cell_movie` (returns a :class:`~.cells.CellMovie`
    that scores found ROIs against the active cells).
:mod:`napari_scanimage.testing.siff`
    ScanImage-FLIM ``.siff`` (compressed or not) with Poisson photons drawn from known
    lifetimes: :func:`write_siff` (returns a :class:`SyntheticSiff` holding every photon),
    :func:`bin_probabilities` (the arrival-time model the photons are drawn from, in
    :mod:`napari_scanimage.testing.photons` with the rest of the photon model).

Examples
--------
>>> from napari_scanimage import open_dataset
>>> from napari_scanimage.testing import SyntheticLayout, page_content, write_scanimage_tiff
>>> truth = write_scanimage_tiff("rec.tif", SyntheticLayout())  # doctest: +SKIP
>>> open_dataset(truth.paths[0])  # pixels equal page_content(g, ...)  # doctest: +SKIP
"""

from __future__ import annotations

from .legacy import GENERATIONS, LegacyDataset, LegacyLayout, legacy_description, write_legacy_tiff
from .mroi import FIELDS, FieldSpec, FieldTruth, SyntheticMroi, field_content, write_mroi_tiff
from .photons import bin_probabilities
from .siff import SyntheticSiff, write_siff
from .tiff import (
    SyntheticDataset,
    SyntheticLayout,
    page_content,
    roi_group_json,
    scanimage_static_text,
    write_scanimage_tiff,
)

__all__ = [
    "FIELDS",
    "GENERATIONS",
    "FieldSpec",
    "FieldTruth",
    "LegacyDataset",
    "LegacyLayout",
    "SyntheticDataset",
    "SyntheticLayout",
    "SyntheticMroi",
    "SyntheticSiff",
    "bin_probabilities",
    "field_content",
    "legacy_description",
    "page_content",
    "roi_group_json",
    "scanimage_static_text",
    "write_legacy_tiff",
    "write_mroi_tiff",
    "write_scanimage_tiff",
    "write_siff",
]
