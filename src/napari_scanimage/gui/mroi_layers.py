"""napari layers of multi-ROI (mesoscope) recordings: one image layer per (channel, field).

Each field layer holds a field view of the recording (:meth:`Dataset.field`), so every dock
works on that field.  Its ``scale`` is the field's pixel size and its ``translate`` puts the
field where it lies in the sample: napari draws pixel centres at ``translate + i · scale``, so
``translate`` is the field's top-left corner (from ``centerXY − sizeXY / 2`` ×
``SI.objectiveResolution``) plus half a pixel, and each field's pixels cover exactly its
scanned area: fields tile at their physical positions.  At planes where a field is not scanned
its layer shows zeros.
"""

from __future__ import annotations

import warnings

from ..errors import MroiWarning, ScanImageError
from ..io.mroi import Field

__all__ = ["field_translate", "shown_fields"]


def shown_fields(dataset) -> tuple[Field, ...]:
    """The fields to show as separate layers; empty (whole pages shown) for recordings that
    are not multi-ROI, field views, `.siff` recordings and unusable ROI metadata (warned).
    """
    if dataset.selected_field is not None or not dataset.info.mroi:
        return ()
    if dataset.is_siff:
        warnings.warn(
            f"{dataset.paths[0].name}: fields of multi-ROI .siff recordings are not "
            "split; whole pages are shown",
            MroiWarning,
            stacklevel=3,
        )
        return ()
    try:
        return dataset.fields
    except ScanImageError as exc:
        warnings.warn(f"{exc}; whole pages are shown", MroiWarning, stacklevel=3)
        return ()


def field_translate(field: Field, labels: tuple[str, ...]) -> tuple[float, ...]:
    """Layer ``translate`` of ``field`` for axes ``labels``: 0 except y and x (µm)."""
    top, left = field.top_left_um
    py, px = field.pixel_size_um
    at = {"y": top + py / 2, "x": left + px / 2}
    return tuple(at.get(a, 0.0) for a in labels)
