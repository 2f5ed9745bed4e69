"""napari sample data: generated ScanImage recordings."""

from __future__ import annotations

from ..sample import sample_path
from .reader import read_scanimage

__all__ = ["flim_sample", "mroi_sample", "volumetric_sample"]


def volumetric_sample() -> list[tuple]:
    """Volumetric 2-channel ScanImage TIFF with flyback and 2 frames per slice."""
    return read_scanimage(str(sample_path("volume_2ch")))


def flim_sample() -> list[tuple]:
    """Planar 2-channel ScanImage-FLIM `.siff` (photon counts; green cells 2.6 ns, green
    background 0.9 ns, red 1.6 ns) with calcium-like transients and mild motion.
    """
    return read_scanimage(str(sample_path("flim_2ch")))


def mroi_sample() -> list[tuple]:
    """Multi-ROI ScanImage TIFF: three fields of one tissue, 2 channels, 2 planes; each field
    is a layer placed where it was scanned.
    """
    return read_scanimage(str(sample_path("mroi_3field")))
