"""napari sample data: generated ScanImage recordings."""

from __future__ import annotations

from ..sample import sample_path
from .reader import read_scanimage

__all__ = ["volumetric_sample"]


def volumetric_sample() -> list[tuple]:
    """Volumetric 2-channel ScanImage TIFF with flyback and 2 frames per slice."""
    return read_scanimage(str(sample_path("volume_2ch")))
