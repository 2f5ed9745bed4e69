"""Named axes of a recording's arrays: dims, sizes, physical steps and units, in one place.

``Dataset.dims`` / ``sizes``, ``to_dask``, ``to_xarray`` coordinates and the napari layers'
``scale`` / ``units`` / ``axis_labels`` all come from :func:`selection_axes`, so a script and
the viewer never disagree about what an axis is or how long a step along it is.

Dims (upper case, the vocabulary of nd2 and bioio) and napari labels (lower case):

===  ==========  =====================================================================
dim  label       meaning
===  ==========  =====================================================================
T    ``t``       time points: volumes (frames when planar; T·F with ``"interleave"``)
C    --          channels (``to_dask`` / ``to_xarray`` only; napari shows one layer each)
Z    ``z``       planes; only for volumetric recordings when no ``plane`` is picked
F    ``sample``  frames of one slice; only with ``slice_sample="axis"``
Y    ``y``       rows (of the page, or of a multi-ROI field)
X    ``x``       columns
===  ==========  =====================================================================

Axes that do not exist in a recording are left out (as nd2 does): a planar recording has no Z.
T, C, Y and X are always present.

Classes
-------
Axis
    One axis: dim, napari label, size, step and unit, coordinate of the first index.

Functions
---------
selection_axes
    The axes of one selection (plane, slice-sample mode), with or without the channel axis.
acquisition_attrs
    A JSON-friendly dict of what the recording is (``to_xarray`` attrs).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from .layout import Layout, Selection, SliceSample

if TYPE_CHECKING:
    from ..io.acquisition import AcquisitionInfo
    from ..io.mroi import Field
    from ..io.siff_settings import FlimSettings

__all__ = ["PIXEL", "Axis", "acquisition_attrs", "selection_axes"]

#: unit of an axis whose physical step the file does not state (napari's own default unit)
PIXEL = "pixel"
_DIM_OF_LABEL = {"t": "T", "z": "Z", "sample": "F", "y": "Y", "x": "X"}


@dataclass(frozen=True)
class Axis:
    """One axis of an array read from a recording.

    Attributes
    ----------
    dim : str
        ``"T"``, ``"C"``, ``"Z"``, ``"F"``, ``"Y"`` or ``"X"``.
    label : str
        The napari axis label (``"t"``, ``"c"``, ``"z"``, ``"sample"``, ``"y"``, ``"x"``).
    size : int
    scale : float
        Step between neighbouring indices, in ``unit``.
    unit : str
        ``"s"``, ``"µm"``, or ``"pixel"`` when the file does not state the step (scale 1).
    origin : float
        Coordinate of index 0: 0, except Y and X of a multi-ROI field (the centre of its first
        pixel in the sample, µm).
    """

    dim: str
    label: str
    size: int
    scale: float
    unit: str
    origin: float = 0.0

    @property
    def coords(self) -> np.ndarray:
        """Coordinate of every index, ``origin + index * scale`` (float64)."""
        return self.origin + np.arange(self.size, dtype=np.float64) * self.scale


def _step(value: float | None, unit: str) -> tuple[float, str]:
    """(step, unit) when the file states a positive step, else (1, pixel)."""
    if value is not None and np.isfinite(value) and value > 0:
        return float(value), unit
    return 1.0, PIXEL


def selection_axes(
    info: AcquisitionInfo,
    layout: Layout,
    frame_shape: Sequence[int],
    *,
    plane: int | None = None,
    slice_sample: SliceSample = 0,
    channels: bool = True,
    field: Field | None = None,
) -> tuple[Axis, ...]:
    """The axes of the array one selection reads, in order.

    Parameters
    ----------
    info : AcquisitionInfo
        The recording's (or field view's) acquisition info: rates, pixel size, z step, names.
    layout : Layout
        Its page layout (sizes of T, Z, F).
    frame_shape : (int, int)
        Rows and columns of a frame (of the page, or of the field for a field view).
    plane : int, optional
        One plane (no Z axis); None keeps every plane of a volumetric recording.
    slice_sample : int or {"mean", "interleave", "axis"}
        As for ``Dataset.array``: ``"axis"`` adds F after Z, ``"interleave"`` makes T·F time
        points at F times the rate.
    channels : bool
        Include the channel axis C after T (``to_dask``); False for one channel (``array``,
        napari layers).
    field : Field, optional
        The multi-ROI field the frames are of: Y and X start at its position in the sample.

    Returns
    -------
    tuple of Axis
        ``(T, [C], [Z], [F], Y, X)``.

    Raises
    ------
    SelectionError
        ``plane`` or ``slice_sample`` does not exist in this recording.
    """
    selection = Selection.make(layout, 0, plane, slice_sample)
    sizes = (*selection.leading_shape(layout), *frame_shape)
    t_step, t_unit = _step(1.0 / info.volume_rate if info.volume_rate else None, "s")
    if slice_sample == "interleave" and t_unit == "s":
        t_step /= layout.frames_per_slice  # the samples of a slice follow one another
    pixel = info.pixel_size_um or (None, None)
    steps = {
        "t": (t_step, t_unit),
        "z": _step(info.z_step_um, "µm"),
        "sample": (1.0, PIXEL),
        "y": _step(pixel[0], "µm"),
        "x": _step(pixel[1], "µm"),
    }
    origins = {}
    if field is not None:  # pixel centres in the sample, as the viewer places the field
        top, left = field.top_left_um
        origins = {"y": top + field.pixel_size_um[0] / 2, "x": left + field.pixel_size_um[1] / 2}
    axes = [
        Axis(_DIM_OF_LABEL[label], label, int(size), *steps[label], origin=origins.get(label, 0.0))
        for label, size in zip(selection.axis_labels(), sizes, strict=True)
    ]
    if channels:
        axes.insert(1, Axis("C", "c", layout.num_channels, 1.0, ""))
    return tuple(axes)


def _plain(value: Any) -> Any:
    """``value`` with tuples, NumPy scalars and dtypes turned into JSON types."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.dtype):
        return value.str if value.byteorder not in "=|" else value.name
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None  # JSON has no inf / NaN
    return value


def acquisition_attrs(
    info: AcquisitionInfo,
    paths: Sequence[object],
    *,
    flim: FlimSettings | None = None,
    field: Field | None = None,
) -> dict[str, Any]:
    """What the recording is, as a dict that ``json.dumps`` accepts.

    Parameters
    ----------
    info : AcquisitionInfo
    paths : sequence of path-like
        The recording's files in order.
    flim : FlimSettings, optional
        `.siff` recordings: the arrival-time bins.
    field : Field, optional
        The multi-ROI field of a field view.

    Returns
    -------
    dict
        ``{"source", "files", "acquisition": {AcquisitionInfo fields, "num_channels"},
        ["flim"], ["field"]}``.
    """
    acquisition = dataclasses.asdict(info)
    acquisition["num_channels"] = info.num_channels
    attrs: dict[str, Any] = {
        "source": str(paths[0]),
        "files": [str(p) for p in paths],
        "acquisition": acquisition,
    }
    if flim is not None:
        attrs["flim"] = dataclasses.asdict(flim)
    if field is not None:
        attrs["field"] = {
            "name": field.name,
            "index": field.index,
            "center_xy_um": field.center_xy_um,
            "size_xy_um": field.size_xy_um,
            "pixel_size_um": field.pixel_size_um,
        }
    plain: dict[str, Any] = _plain(attrs)
    return plain
