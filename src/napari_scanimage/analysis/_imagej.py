"""ImageJ / Fiji ROI files (through roifile) ↔ :class:`~.rois.Roi`.

ImageJ coordinates are pixel corners (the centre of pixel (0, 0) is at 0.5, 0.5); ours are pixel
centres, so x and y shift by 0.5.  An ROI's plane is ImageJ's 1-based z position (0 = every
plane); its name, colour and stroke width travel too.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
import numpy.typing as npt
from roifile import ROI_OPTIONS, ROI_TYPE, ImagejRoi, roiread

from ..errors import FormatError
from .colours import PALETTE
from .shapes import Roi, warn_skipped

_OUTLINE = {
    "polygon": ROI_TYPE.POLYGON,
    "rectangle": ROI_TYPE.POLYGON,
    "ellipse": ROI_TYPE.POLYGON,
    "path": ROI_TYPE.POLYLINE,
    "line": ROI_TYPE.POLYLINE,
}
ELLIPSE_POINTS = 72


def _ellipse_outline(v: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    centre = v.mean(axis=0)
    a, b = (v[1] - v[0]) / 2, (v[3] - v[0]) / 2
    t = np.linspace(0, 2 * np.pi, ELLIPSE_POINTS, endpoint=False)
    out: npt.NDArray[np.float64] = centre + np.cos(t)[:, None] * a + np.sin(t)[:, None] * b
    return out


def mask_outline(mask: npt.ArrayLike) -> tuple[npt.NDArray[np.float64], int | None] | None:
    """A polygon (y, x) around a mask ROI's pixels and its plane (None for a 2-D mask), or None
    when one polygon cannot hold it exactly (several pieces, holes, several planes, empty).

    The outline is scikit-image's contour at level 0.5 (``skimage.measure.find_contours``),
    half a pixel outside the mask's pixel centres; it is kept only if it rasterises back to the
    mask exactly.
    """
    from skimage.measure import find_contours

    from .shapes import rasterise

    m = np.asarray(mask, bool)
    plane: int | None = None
    if m.ndim == 3:
        planes = np.flatnonzero(m.reshape(len(m), -1).any(axis=1))
        if len(planes) != 1:
            return None
        plane = int(planes[0])
        m = m[plane]
    if m.ndim != 2 or not m.any():
        return None
    padded = np.pad(m, 1).astype(np.float64)  # closed contours also at the frame's edges
    contours = find_contours(padded, 0.5)  # type: ignore[no-untyped-call]
    if len(contours) != 1:
        return None
    outline = np.asarray(contours[0], np.float64)[:-1] - 1.0  # closed: last point = first
    if not np.array_equal(rasterise("polygon", outline, (m.shape[0], m.shape[1])), m):
        return None
    return outline, plane


def encode(rois: Iterable[Roi]) -> bytes:
    """The bytes of an ImageJ ROI zip holding ``rois``."""
    import io
    import zipfile

    skipped: list[str] = []
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for k, r in enumerate(rois):
            kind, plane = r.kind, r.plane
            if r.kind == "mask" or r.vertices is None:
                traced = mask_outline(r.mask) if r.mask is not None else None
                if traced is None:
                    skipped.append(r.name)
                    continue
                v, kind = traced[0], "polygon"
                plane = traced[1] if traced[1] is not None else r.plane
            else:
                v = _ellipse_outline(r.vertices) if r.kind == "ellipse" else r.vertices
            xy = v[:, ::-1] + 0.5
            roi = ImagejRoi.frompoints(xy, name=r.name)
            roi.roitype = _OUTLINE[kind]
            roi.options |= ROI_OPTIONS.SUB_PIXEL_RESOLUTION
            roi.stroke_color = b"\xff" + bytes.fromhex(r.colour.lstrip("#")[:6])
            if kind in ("path", "line"):
                roi.stroke_width = max(1, int(round(r.width)))
                roi.float_stroke_width = float(r.width)
            if plane is not None:
                roi.z_position = plane + 1
            zf.writestr(f"{k + 1:04d}-{_safe(r.name)}.roi", roi.tobytes())
    warn_skipped(
        skipped,
        "mask (Labels) ROIs that no single outline holds (several pieces, holes or planes)",
    )
    return out.getvalue()


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name)[:60] or "roi"


def decode(path: Path) -> list[Roi]:
    """ROIs of an ImageJ .zip or .roi file (polygons, rectangles, ovals and lines)."""
    try:
        found = roiread(path)
    except Exception as exc:  # roifile raises ValueError/struct errors on foreign bytes
        raise FormatError(f"{path.name} is not an ImageJ ROI file ({exc})") from None
    found = found if isinstance(found, list) else [found]
    rois: list[Roi] = []
    skipped: list[str] = []
    names: set[str] = set()
    for k, roi in enumerate(found):
        name = roi.name or f"roi {k + 1}"
        while name in names:
            name += "'"
        names.add(name)
        colour = (
            "#" + bytes(roi.stroke_color)[1:4].hex()
            if any(bytes(roi.stroke_color))
            else PALETTE[k % len(PALETTE)]
        )
        plane = int(roi.z_position) - 1 if roi.z_position > 0 else None
        t = roi.roitype
        x0: float
        y0: float
        x1: float
        y1: float
        if t == ROI_TYPE.RECT:
            x0, y0, x1, y1 = roi.left, roi.top, roi.right, roi.bottom
            if roi.options & ROI_OPTIONS.SUB_PIXEL_RESOLUTION and roi.widthd > 0:
                x0, y0 = roi.xd, roi.yd
                x1, y1 = x0 + roi.widthd, y0 + roi.heightd
            yx = np.array([[y0, x0], [y0, x1], [y1, x1], [y1, x0]], np.float64) - 0.5
            kind = "rectangle"
        elif t == ROI_TYPE.OVAL:
            x0, y0, x1, y1 = roi.left, roi.top, roi.right, roi.bottom
            yx = np.array([[y0, x0], [y0, x1], [y1, x1], [y1, x0]], np.float64) - 0.5
            kind = "ellipse"
        elif t in (ROI_TYPE.POLYGON, ROI_TYPE.FREEHAND, ROI_TYPE.TRACED):
            yx = np.asarray(roi.coordinates(), np.float64)[:, ::-1] - 0.5
            kind = "polygon"
        elif t in (ROI_TYPE.POLYLINE, ROI_TYPE.FREELINE, ROI_TYPE.LINE):
            if t == ROI_TYPE.LINE:
                yx = np.array([[roi.y1, roi.x1], [roi.y2, roi.x2]], np.float64) - 0.5
            else:
                yx = np.asarray(roi.coordinates(), np.float64)[:, ::-1] - 0.5
            kind = "path"
        else:
            skipped.append(name)
            continue
        width = float(roi.float_stroke_width or roi.stroke_width or 1.0)
        rois.append(Roi(name, kind, yx, plane, colour, width))
    warn_skipped(skipped, "ImageJ ROI types other than polygon, rectangle, oval and line")
    return rois
