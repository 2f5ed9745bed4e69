"""One ROI: its kind, outline and colour, and the pixels it covers on a frame.

An ROI is an outline (polygon, rectangle, ellipse, or a path with a width) in pixel
coordinates (y, x) — pixel centres at integers, as in napari — or a pixel mask (from a Labels
layer).  A pixel belongs to an outline ROI when its centre lies inside.  Sets of ROIs, their
mask matrices and files are in :mod:`napari_scanimage.analysis.rois`.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import cast

import numpy as np
import numpy.typing as npt

from ..errors import ScanImageWarning, SelectionError
from .colours import FIRST

__all__ = ["KINDS", "Roi", "rasterise", "shape_text", "warn_skipped"]

KINDS = ("polygon", "rectangle", "ellipse", "path", "line", "mask")
_F64 = npt.NDArray[np.float64]
_BOOL = npt.NDArray[np.bool_]


@dataclass(frozen=True, eq=False)
class Roi:
    """One ROI.

    Attributes
    ----------
    name : str
    kind : {"polygon", "rectangle", "ellipse", "path", "line", "mask"}
    vertices : float64 (N, 2) or None
        (y, x) outline in pixels; None for a mask ROI.
    plane : int or None
        The plane it belongs to; None = every plane.
    colour : str
        "#rrggbb".
    width : float
        Stroke width of a path / line ROI (pixels it covers across).
    mask : bool (Y, X) or (Z, Y, X), or None
        The pixels of a mask ROI (3-D: its pixels in each plane).
    features : dict of str to float, or None
        Numbers that describe the ROI (a detector's ``area``, ``score``, ``compactness``;
        an imported tool's own measures), kept in ROI files.
    """

    name: str
    kind: str
    vertices: _F64 | None = None
    plane: int | None = None
    colour: str = FIRST
    width: float = 1.0
    mask: _BOOL | None = None
    features: Mapping[str, float] | None = None

    def pixels(self, frame_shape: tuple[int, int]) -> _BOOL:
        """Boolean (Y, X) mask of an outline ROI (or a 2-D mask ROI) on frames of this shape."""
        if self.kind == "mask":
            m = np.asarray(self.mask, bool)
            if m.shape[-2:] != tuple(frame_shape):
                raise SelectionError(
                    f"ROI {self.name!r} is a mask of {shape_text(m.shape[-2:])}"
                    f" pixels; the frames are {shape_text(frame_shape)}"
                )
            # a 3-D mask reduced over its planes is a (Y, X) array, never a scalar
            return m if m.ndim == 2 else cast("_BOOL", m.any(axis=0))
        if self.vertices is None:
            raise SelectionError(f"ROI {self.name!r} ({self.kind}) has no outline vertices")
        return rasterise(self.kind, self.vertices, frame_shape, self.width)


def shape_text(shape: Iterable[int]) -> str:
    """``"512×512"``: a frame shape as the messages show it."""
    return "×".join(str(int(s)) for s in shape)


def rasterise(
    kind: str, vertices: npt.ArrayLike, frame_shape: tuple[int, int], width: float = 1.0
) -> _BOOL:
    """Pixels (Y, X) whose centres lie inside an outline (or within width/2 of a path)."""
    Y, X = (int(s) for s in frame_shape)
    v = np.asarray(vertices, np.float64).reshape(-1, 2)
    out = np.zeros((Y, X), bool)
    if len(v) == 0 or not np.isfinite(v).all():
        return out
    pad = width / 2 if kind in ("path", "line") else 0.0
    y0, x0 = np.floor(v.min(axis=0) - pad).astype(int)
    y1, x1 = np.ceil(v.max(axis=0) + pad).astype(int)
    y0, x0, y1, x1 = max(y0, 0), max(x0, 0), min(y1, Y - 1), min(x1, X - 1)
    if y1 < y0 or x1 < x0:
        return out  # entirely outside the frame
    yy, xx = np.mgrid[y0 : y1 + 1, x0 : x1 + 1].astype(np.float64)
    if kind in ("polygon", "rectangle"):
        inside = _in_polygon(v, yy, xx)
    elif kind == "ellipse":
        inside = _in_ellipse(v, yy, xx)
    elif kind in ("path", "line"):
        inside = _near_path(v, yy, xx, width / 2)
    else:
        raise SelectionError(f"ROI kind {kind!r} is not one of {', '.join(KINDS)}")
    out[y0 : y1 + 1, x0 : x1 + 1] = inside
    return out


def _in_polygon(v: _F64, yy: _F64, xx: _F64) -> _BOOL:
    """Even-odd rule at each (yy, xx); points on an edge count as inside."""
    inside = np.zeros(yy.shape, bool)
    on_edge = np.zeros(yy.shape, bool)
    n = len(v)
    for i in range(n):
        (ya, xa), (yb, xb) = v[i], v[(i + 1) % n]
        crosses = (ya > yy) != (yb > yy)
        with np.errstate(divide="ignore", invalid="ignore"):
            x_at = xa + (yy - ya) * (xb - xa) / (yb - ya)
        inside ^= crosses & (xx < x_at)
        on_edge |= _segment_distance(ya, xa, yb, xb, yy, xx) <= 1e-9
    return inside | on_edge


def _segment_distance(ya: float, xa: float, yb: float, xb: float, yy: _F64, xx: _F64) -> _F64:
    dy, dx = yb - ya, xb - xa
    length2 = dy * dy + dx * dx
    t = (
        np.zeros(yy.shape)
        if length2 == 0
        else np.clip(((yy - ya) * dy + (xx - xa) * dx) / length2, 0.0, 1.0)
    )
    out: _F64 = np.hypot(yy - (ya + t * dy), xx - (xa + t * dx))
    return out


def _near_path(v: _F64, yy: _F64, xx: _F64, half: float) -> _BOOL:
    near = np.zeros(yy.shape, bool)
    for i in range(max(len(v) - 1, 1)):
        a, b = v[i], v[min(i + 1, len(v) - 1)]
        near |= _segment_distance(a[0], a[1], b[0], b[1], yy, xx) <= half + 1e-9
    return near


def _in_ellipse(v: _F64, yy: _F64, xx: _F64) -> _BOOL:
    """Ellipse inscribed in the (possibly rotated) box of four corners, as napari stores it."""
    if len(v) != 4:
        raise SelectionError(f"an ellipse ROI needs the 4 corners of its box, got {len(v)}")
    centre = v.mean(axis=0)
    a = (v[1] - v[0]) / 2  # half-axis along the first edge
    b = (v[3] - v[0]) / 2  # half-axis along the second edge
    na, nb = float(a @ a), float(b @ b)
    if na == 0 or nb == 0:
        return np.zeros(yy.shape, bool)
    py, px = yy - centre[0], xx - centre[1]
    u = (py * a[0] + px * a[1]) / na
    w = (py * b[0] + px * b[1]) / nb
    inside: _BOOL = u * u + w * w <= 1.0 + 1e-12
    return inside


def warn_skipped(names: list[str], why: str) -> None:
    """Warn once about the ROIs (by name) that were skipped, and why."""
    if names:
        warnings.warn(f"ROI(s) {', '.join(names)} skipped: {why}", ScanImageWarning, stacklevel=3)
