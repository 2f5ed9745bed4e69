"""Multi-ROI (mesoscope) geometry: where each scanfield lies in a page and in the sample.

With ``SI.hRoiManager.mroiEnable`` every page stacks the fields scanned at its plane
vertically, in the order of ``RoiGroups.imagingRoiGroup.rois``, separated by dead fly-to lines;
every field starts at column 0 (narrower fields are zero-padded on the right).  Planes that scan
fewer lines than the tallest plane are padded at the bottom (docs/formats.md §1.6).

Supported
---------
- ``rois`` and ``scanfields`` as a dict (one) or a list; ``zs`` as a number or a list.
- One scanfield, ``discretePlaneMode`` false: the field is scanned at every plane.
- ``discretePlaneMode`` true: only at the planes whose z (``SI.hStackManager.zs``, one value per
  slice) equals one of the roi's ``zs``.
- Several scanfields with identical geometry (pixels, centre, size, rotation): at every plane
  between the lowest and highest scanfield z (discrete: at the scanfield zs only).
- Disabled rois or scanfields (``enable`` false) are not scanned.

Refused (:class:`~napari_scanimage.errors.LayoutError`)
-------------------------------------------------------
- Several scanfields whose geometry differs (ScanImage interpolates them through z; one field
  of fixed shape cannot represent that).
- Fields wider or (stacked with their fly-to lines) taller than the page.

Missing or malformed ROI metadata (no scanfields, zero or negative sizes) raise
:class:`~napari_scanimage.errors.FormatError`.

Fly-to lines between fields: the geometric estimate ``(page_height − Σ heights) / (n − 1)`` from
the plane that stacks the most lines is used; the timing estimate
``round(SI.hScan2D.flytoTimePerScanfield / SI.hRoiManager.linePeriod)`` is only checked
against it (a :class:`~napari_scanimage.errors.MroiWarning` when they disagree; rounding up, and
up to an even count for bidirectional scans, are accepted as agreeing).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, cast

import numpy as np
import numpy.typing as npt

from ..errors import FormatError, LayoutError, MroiWarning

__all__ = ["Field", "MroiGeometry", "mroi_geometry", "plane_zs", "stitch"]

_Z_TOL = 1e-3  # µm: a roi z and a plane z within this are the same plane


@dataclass(frozen=True)
class Field:
    """One imaging ROI of a multi-ROI recording, as it lies in the pages and in the sample.

    Attributes
    ----------
    name : str
        The roi's name (unique within the recording; ``"ROI <n>"`` when unnamed).
    index : int
        Position in :attr:`Dataset.fields`.
    roi_index : int
        Position in ``RoiGroups.imagingRoiGroup.rois`` (disabled rois included).
    width, height : int
        Pixels (``pixelResolutionXY``).
    row_offsets : tuple of (int or None)
        Per plane: the page row where the field starts; None where it is not scanned.
    x_offset : int
        Page column where the field starts (always 0: fields are left-aligned).
    center_xy_um, size_xy_um : (float, float)
        Centre and size in the sample, µm, ScanImage's (x, y) order (scan degrees ×
        ``SI.objectiveResolution``).
    center_xy_deg, size_xy_deg : (float, float)
        The same in scan degrees, as stored.
    pixel_size_um : (float, float)
        (y, x) µm per pixel.
    rotation_degrees : float
        ``rotationDegrees`` of the scanfield (recorded; images are not rotated).
    """

    name: str
    index: int
    roi_index: int
    width: int
    height: int
    row_offsets: tuple[int | None, ...]
    center_xy_um: tuple[float, float]
    size_xy_um: tuple[float, float]
    center_xy_deg: tuple[float, float]
    size_xy_deg: tuple[float, float]
    pixel_size_um: tuple[float, float]
    rotation_degrees: float = 0.0
    x_offset: int = 0

    @property
    def shape(self) -> tuple[int, int]:
        """(height, width) in pixels."""
        return (self.height, self.width)

    @property
    def planes(self) -> tuple[int, ...]:
        """Planes at which the field is scanned."""
        return tuple(z for z, r in enumerate(self.row_offsets) if r is not None)

    @property
    def top_left_um(self) -> tuple[float, float]:
        """(y, x) µm of the field's top-left corner (the outer edge of its first pixel)."""
        (cx, cy), (sx, sy) = self.center_xy_um, self.size_xy_um
        return (cy - sy / 2, cx - sx / 2)

    def page_slices(self, plane: int) -> tuple[slice, slice] | None:
        """(rows, columns) of the field in a page of ``plane``; None when not scanned there."""
        r = self.row_offsets[plane]
        if r is None:
            return None
        return (slice(r, r + self.height), slice(self.x_offset, self.x_offset + self.width))


@dataclass(frozen=True)
class MroiGeometry:
    """All fields of a multi-ROI recording and how the pages hold them.

    ``fly_to_lines`` is the count used (geometric estimate, or the timing estimate when no
    plane scans two fields); ``fly_to_lines_timing`` is the timing estimate (None without
    ``flytoTimePerScanfield`` / ``linePeriod``).
    """

    fields: tuple[Field, ...]
    page_shape: tuple[int, int]
    fly_to_lines: int
    fly_to_lines_geometric: float | None
    fly_to_lines_timing: int | None
    plane_zs: tuple[float, ...]


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def _flag(value: Any, default: bool) -> bool:
    if value is None:
        return default
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true")
    if isinstance(value, list):
        return bool(value) and _flag(value[0], default)
    return bool(value)


def _numbers(value: Any) -> list[float]:
    out: list[float] = []
    for v in _as_list(value):
        if isinstance(v, list):
            out += _numbers(v)
        elif isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
            out.append(float(v))  # (Inf and NaN, which JSON readers accept, are no numbers here)
    return out


def _pair(sf: Mapping[str, Any], key: str, where: str, positive: bool) -> tuple[float, float]:
    value = _numbers(sf.get(key))
    if len(value) != 2 or not all(math.isfinite(v) for v in value):
        raise FormatError(
            f"{where}: scanfield {key} is {sf.get(key)!r}, not two numbers; the "
            "ROI metadata are incomplete"
        )
    if positive and min(value) <= 0:
        raise FormatError(f"{where}: scanfield {key} is {value}; sizes must be positive")
    return (value[0], value[1])


def plane_zs(
    values: Mapping[str, Any], num_planes: int, frames_per_slice: int = 1
) -> tuple[float, ...]:
    """The z (µm) of each plane from ``SI.hStackManager.zs`` (which repeats each slice's z once
    per frame when frames per slice > 1); planar recordings without ``zs``: (0.0,).
    """
    for key in ("SI.hStackManager.zs", "SI.hStackManager.zsRelative"):
        zs = _numbers(values.get(key))
        if len(zs) == num_planes * frames_per_slice and frames_per_slice > 1:
            return tuple(zs[::frames_per_slice])
        if len(zs) == num_planes:
            return tuple(zs)
        if zs and len(zs) % num_planes == 0 and num_planes > 1:
            return tuple(zs[:: len(zs) // num_planes])
        if num_planes == 1 and zs:
            return (zs[0],)
    if num_planes == 1:
        return (0.0,)
    raise FormatError(
        f"SI.hStackManager.zs does not give one z per plane for {num_planes} "
        "planes; the planes of discrete-plane rois cannot be matched"
    )


def _roi_planes(
    roi: Mapping[str, Any], n_fields: int, zs: Sequence[float] | None, where: str, num_planes: int
) -> list[int]:
    """Planes at which ``roi`` (with ``n_fields`` enabled scanfields) is scanned."""
    discrete = _flag(roi.get("discretePlaneMode"), False)
    roi_zs = _numbers(roi.get("zs"))
    if not discrete and n_fields == 1:
        return list(range(num_planes))
    if zs is None:
        raise FormatError(
            f"{where}: the roi is scanned at given z only, but the plane zs "
            "(SI.hStackManager.zs) are missing"
        )
    if not roi_zs:
        raise FormatError(f"{where}: the roi has no zs; its planes cannot be determined")
    z = np.asarray(zs, dtype=float)
    if discrete:
        return [k for k in range(num_planes) if any(abs(z[k] - r) <= _Z_TOL for r in roi_zs)]
    lo, hi = min(roi_zs) - _Z_TOL, max(roi_zs) + _Z_TOL
    return [k for k in range(num_planes) if lo <= z[k] <= hi]


def mroi_geometry(
    metadata: Mapping[str, Any],
    *,
    num_planes: int,
    page_shape: tuple[int, int],
    frames_per_slice: int = 1,
    bidirectional: bool = False,
    source: str = "",
) -> MroiGeometry:
    """Fields of a multi-ROI recording from its static metadata.

    Parameters
    ----------
    metadata : mapping
        ``SI.…`` values plus ``RoiGroups`` (as :attr:`Dataset.metadata` gives them).
    num_planes, frames_per_slice : int
        Planes per volume and saved frames per slice (to read one z per plane from ``zs``).
    page_shape : (int, int)
        (height, width) of the pages on disk.
    bidirectional : bool
        Bidirectional scanning (an even fly-to count then agrees with the timing).
    source : str
        File name for messages.

    Raises
    ------
    FormatError
        ROI metadata missing or malformed.
    LayoutError
        Geometry the pages cannot hold, or interpolated scanfields (not supported).
    """
    where = source or "recording"
    groups = metadata.get("RoiGroups")
    group = groups.get("imagingRoiGroup") if isinstance(groups, Mapping) else None
    if not isinstance(group, Mapping):
        raise FormatError(
            f"{where}: multi-ROI recording without RoiGroups.imagingRoiGroup in "
            "its header; the fields cannot be located"
        )
    rois = _as_list(group.get("rois"))
    if not rois:
        raise FormatError(f"{where}: RoiGroups.imagingRoiGroup has no rois")
    objres = _numbers(metadata.get("SI.objectiveResolution"))
    um_per_deg = objres[0] if objres and objres[0] > 0 else None
    if um_per_deg is None:
        warnings.warn(
            f"{where}: no SI.objectiveResolution; field positions and pixel sizes "
            "are given in scan degrees, not µm",
            MroiWarning,
            stacklevel=3,
        )
        um_per_deg = 1.0
    page_h, page_w = (int(n) for n in page_shape)
    needs_z = any(
        _flag(r.get("discretePlaneMode"), False) or len(_as_list(r.get("scanfields"))) > 1
        for r in rois
        if isinstance(r, Mapping)
    )
    try:
        zs: tuple[float, ...] | None = plane_zs(metadata, num_planes, frames_per_slice)
    except FormatError:
        if needs_z:
            raise
        zs = None

    parsed = []  # (roi index, name, (w, h), centre, size, rotation, planes)
    for i, roi in enumerate(rois):
        here = f"{where}: imaging roi {i + 1}"
        if not isinstance(roi, Mapping):
            raise FormatError(f"{here} is not an object in the ROI metadata")
        if not _flag(roi.get("enable"), True):
            continue
        name = roi.get("name")
        name = name.strip() if isinstance(name, str) and name.strip() else f"ROI {i + 1}"
        here = f"{where}: imaging roi {i + 1} ({name!r})"
        if "scanfields" not in roi or not _as_list(roi.get("scanfields")):
            raise FormatError(f"{here} has no scanfields; the ROI metadata are incomplete")
        fields = [
            sf
            for sf in _as_list(roi["scanfields"])
            if not isinstance(sf, Mapping) or _flag(sf.get("enable"), True)
        ]
        if not fields:
            continue
        geoms = []
        for sf in fields:
            if not isinstance(sf, Mapping):
                raise FormatError(f"{here}: a scanfield is not an object")
            res = _pair(sf, "pixelResolutionXY", here, positive=True)
            if not all(float(v).is_integer() for v in res):
                raise FormatError(f"{here}: pixelResolutionXY {list(res)} is not whole pixels")
            rotations = _numbers(sf.get("rotationDegrees")) or [0.0]
            geoms.append(
                (
                    (int(res[0]), int(res[1])),
                    _pair(sf, "centerXY", here, False),
                    _pair(sf, "sizeXY", here, True),
                    rotations[0],
                )
            )
        if any(g != geoms[0] for g in geoms[1:]):
            raise LayoutError(
                f"{here} has {len(geoms)} scanfields of different geometry, which "
                "ScanImage interpolates through z; such rois are not supported "
                "(open the pages whole, without fields)"
            )
        planes = _roi_planes(roi, len(fields), zs, here, num_planes)
        if not planes:
            warnings.warn(
                f"{here}: its zs {_numbers(roi.get('zs'))} match no plane "
                f"{list(zs or [])}; it is not in the recording",
                MroiWarning,
                stacklevel=3,
            )
            continue
        (w, h), centre, size, rot = geoms[0]
        if w > page_w:
            raise LayoutError(
                f"{here} is {w} pixels wide but pages are {page_w}; the ROI "
                "metadata do not belong to these pages"
            )
        parsed.append((i, name, (w, h), centre, size, rot, planes))
    if not parsed:
        raise LayoutError(f"{where}: no enabled imaging roi is scanned at any plane")

    # fly-to lines: the plane stacking the most lines fills the page exactly
    per_plane = [[p for p in parsed if z in p[6]] for z in range(num_planes)]
    estimates = []
    for z, on_plane in enumerate(per_plane):
        total = sum(p[2][1] for p in on_plane)
        if total > page_h:
            raise LayoutError(
                f"{where}: the fields of plane {z} are {total} lines tall "
                f"together but pages have {page_h}; the ROI metadata do not "
                "belong to these pages"
            )
        if len(on_plane) > 1:
            estimates.append((page_h - total) / (len(on_plane) - 1))
    geometric = min(estimates) if estimates else None
    timing = None
    line_period = _numbers(metadata.get("SI.hRoiManager.linePeriod"))
    fly_time = _numbers(metadata.get("SI.hScan2D.flytoTimePerScanfield"))
    ratio = None
    if line_period and fly_time and line_period[0] > 0 and fly_time[0] >= 0:
        ratio = fly_time[0] / line_period[0]
        timing = int(round(ratio))
    if geometric is None:
        fly = timing or 0
    else:
        fly = int(math.floor(geometric))
        if fly != geometric:
            warnings.warn(
                f"{where}: the fields leave {geometric:g} lines per gap, not a whole "
                f"number; using {fly} fly-to lines",
                MroiWarning,
                stacklevel=3,
            )
        if ratio is not None:
            up = math.ceil(ratio - 1e-9)
            agree = {timing, up, up + (up % 2) if bidirectional else up}
            if fly not in agree:
                warnings.warn(
                    f"{where}: {fly} fly-to lines between fields from the page "
                    f"geometry, but {timing} from the timing (flytoTimePerScanfield "
                    f"{fly_time[0]:g} s / linePeriod {line_period[0]:g} s); using "
                    f"the geometry",
                    MroiWarning,
                    stacklevel=3,
                )

    names: dict[str, int] = {}
    out = []
    for k, (i, name, (w, h), centre, size, rot, planes) in enumerate(parsed):
        names[name] = names.get(name, 0) + 1
        unique = name if names[name] == 1 else f"{name} ({names[name]})"
        offsets: list[int | None] = []
        for z in range(num_planes):
            if z not in planes:
                offsets.append(None)
                continue
            before = [p for p in per_plane[z] if p[0] < i]
            offsets.append(sum(p[2][1] + fly for p in before))
        size_um = (size[0] * um_per_deg, size[1] * um_per_deg)
        out.append(
            Field(
                name=unique,
                index=k,
                roi_index=i,
                width=w,
                height=h,
                row_offsets=tuple(offsets),
                center_xy_um=(centre[0] * um_per_deg, centre[1] * um_per_deg),
                size_xy_um=size_um,
                center_xy_deg=centre,
                size_xy_deg=size,
                pixel_size_um=(size_um[1] / h, size_um[0] / w),
                rotation_degrees=float(rot),
            )
        )
    return MroiGeometry(
        tuple(out), (page_h, page_w), fly, geometric, timing, tuple(zs) if zs is not None else ()
    )


class FieldSource(Protocol):
    """What :func:`stitch` reads: a multi-ROI recording (a ``Dataset``)."""

    @property
    def paths(self) -> Sequence[Path]:
        """The recording's files."""
        ...

    @property
    def fields(self) -> tuple[Field, ...]:
        """Its multi-ROI fields."""
        ...

    def read(
        self,
        channel: int | str = 0,
        *,
        plane: int | None = None,
        times: slice | Sequence[int] | None = None,
        field: int | str | None = None,
    ) -> npt.NDArray[Any]:
        """Pixels of one field (see ``Dataset.read``)."""
        ...


def stitch(
    dataset: FieldSource,
    channel: int | str = 0,
    *,
    plane: int | None = None,
    times: slice | Sequence[int] | None = None,
    fill: float = 0,
) -> tuple[npt.NDArray[Any], tuple[float, float], tuple[float, float]]:
    """Fields of a multi-ROI recording placed on one canvas at their positions in the sample.

    The canvas uses the finest field pixel size; a field with another pixel size is resampled
    by nearest neighbour.  Overlaps: later fields win.

    Parameters
    ----------
    dataset : Dataset
    channel : int or str
    plane : int, optional
        One plane (planar recordings: ignored); None keeps all planes.
    times : slice or sequence of int, optional
        Time rows to read (default all).
    fill : float
        Value of canvas pixels no field covers (a field not scanned at a plane is 0 there).

    Returns
    -------
    canvas : numpy.ndarray
        (T, [Z,] Y, X), the dtype of the fields' data.
    origin_um : (float, float)
        (y, x) µm of the canvas's top-left corner.
    pixel_um : (float, float)
        (y, x) µm per canvas pixel.
    """
    fields = dataset.fields
    if not fields:
        from ..errors import SelectionError

        raise SelectionError(
            f"{dataset.paths[0].name} is not a multi-ROI recording; there is nothing to stitch"
        )
    py = min(f.pixel_size_um[0] for f in fields)
    px = min(f.pixel_size_um[1] for f in fields)
    top = min(f.top_left_um[0] for f in fields)
    left = min(f.top_left_um[1] for f in fields)
    bottom = max(f.top_left_um[0] + f.size_xy_um[1] for f in fields)
    right = max(f.top_left_um[1] + f.size_xy_um[0] for f in fields)
    ny, nx = int(round((bottom - top) / py)), int(round((right - left) / px))
    canvas: npt.NDArray[Any] | None = None
    for f in fields:
        data = dataset.read(channel, plane=plane, times=times, field=f.index)
        if canvas is None:
            canvas = np.full((*data.shape[:-2], ny, nx), fill, dtype=data.dtype)
        y0 = int(round((f.top_left_um[0] - top) / py))
        x0 = int(round((f.top_left_um[1] - left) / px))
        hy = int(round(f.size_xy_um[1] / py))
        hx = int(round(f.size_xy_um[0] / px))
        rows = np.minimum((np.arange(hy) * py / f.pixel_size_um[0]).astype(int), f.height - 1)
        cols = np.minimum((np.arange(hx) * px / f.pixel_size_um[1]).astype(int), f.width - 1)
        hy, hx = min(hy, ny - y0), min(hx, nx - x0)
        canvas[..., y0 : y0 + hy, x0 : x0 + hx] = data[..., rows[:hy, None], cols[None, :hx]]
    # (made with the first field: there is at least one)
    return cast("npt.NDArray[Any]", canvas), (top, left), (py, px)
