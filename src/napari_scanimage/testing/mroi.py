"""Write synthetic multi-ROI (mesoscope) ScanImage 2016+ BigTIFFs with known field content.

Each page stacks the fields scanned at its plane from the top, in roi order, separated by
``fly_to_lines`` dead lines (filled with the bits :data:`FLY_TO_VALUE`, -2 as int16, which no
field pixel has); fields are left-aligned and
zero-padded on the right, planes with fewer lines are zero-padded at the bottom, flyback pages
hold :data:`FLYBACK_VALUE`.  The header has ``SI.hRoiManager.mroiEnable = true``, a RoiGroups
JSON describing the fields, ``SI.objectiveResolution``, ``SI.hRoiManager.linePeriod`` and
``SI.hScan2D.flytoTimePerScanfield`` (by default consistent with ``fly_to_lines``).

Field pixel (y, x) of field k in global raw page g::

    (g * 7919 + k * 4099 + y * 131 + x * 3 + 1) mod 32768      (int16 or uint16)
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .tiff import SyntheticLayout, scanimage_static_text, write_pages

__all__ = ["FIELDS", "FLYBACK_VALUE", "FLY_TO_VALUE", "FieldSpec", "FieldTruth",
           "SyntheticMroi", "field_content", "write_mroi_tiff"]  # fmt: skip

FLY_TO_VALUE = 0xFFFE  # uint16 bits of fly-to lines: outside every field's values
FLYBACK_VALUE = 7
OBJECTIVE_RESOLUTION = 15.0  # µm per scan degree
LINE_PERIOD = 4.0e-5  # s


@dataclass(frozen=True)
class FieldSpec:
    """One imaging roi: pixels (w, h), centre and size in scan degrees (x, y order).

    ``zs`` None: one scanfield, scanned at every plane; else ``discretePlaneMode`` at these
    z (µm).  ``enable`` False: a disabled roi (written to the JSON, never scanned).
    """

    name: str
    width: int
    height: int
    center_deg: tuple[float, float]
    size_deg: tuple[float, float]
    zs: tuple[float, ...] | None = None
    enable: bool = True
    rotation_degrees: float = 0.0


#: three fields side by side: 64×48 and 32×40 at 0.9375 µm per pixel, 48×24 at 1.125 µm
FIELDS = (
    FieldSpec("left", 64, 48, (-3.0, 0.0), (4.0, 3.0)),
    FieldSpec("middle", 32, 40, (0.0, 0.25), (2.0, 2.5)),
    FieldSpec("right", 48, 24, (3.0, 0.0), (3.6, 1.8)),
)


@dataclass(frozen=True)
class FieldTruth:
    """Where a written field is: page rows per plane (None: absent) and its sample geometry."""

    name: str
    index: int
    width: int
    height: int
    row_offsets: tuple[int | None, ...]
    center_xy_um: tuple[float, float]
    size_xy_um: tuple[float, float]
    pixel_size_um: tuple[float, float]  # (y, x)

    @property
    def planes(self) -> tuple[int, ...]:
        """Planes the field is scanned at."""
        return tuple(z for z, r in enumerate(self.row_offsets) if r is not None)


def field_content(g: int, k: int, height: int, width: int, dtype: str = "int16") -> np.ndarray:
    """Ground-truth pixels of field k (index among the written fields) in raw page g."""
    y = np.arange(height, dtype=np.int64)[:, None]
    x = np.arange(width, dtype=np.int64)[None, :]
    return ((g * 7919 + k * 4099 + y * 131 + x * 3 + 1) % 32768).astype(dtype)


@dataclass
class SyntheticMroi:
    """A multi-ROI file written by :func:`write_mroi_tiff` and its ground truth."""

    path: pathlib.Path
    layout: SyntheticLayout
    fields: tuple[FieldTruth, ...]
    fly_to_lines: int
    fly_to_lines_timing: int
    plane_zs: tuple[float, ...]
    static_text: str
    roi_json: str
    pixels: Callable[[int, int], np.ndarray] | None = None

    def field_pixels(self, g: int, k: int) -> np.ndarray:
        """Ground-truth pixels of field k in raw page g (where it is scanned)."""
        f = self.fields[k]
        if self.pixels is not None:
            return np.asarray(self.pixels(g, k)).astype(self.layout.dtype, copy=False)
        return field_content(g, k, f.height, f.width, self.layout.dtype)

    @property
    def page_shape(self) -> tuple[int, int]:
        """(height, width) of the pages."""
        return (self.layout.height, self.layout.width)

    def page(self, g: int) -> np.ndarray:
        """Ground-truth whole page g."""
        lay = self.layout
        k = g % lay.pages_per_volume
        frame = k // lay.num_channels
        if frame >= lay.num_planes * lay.frames_per_slice:
            return np.full(self.page_shape, FLYBACK_VALUE, lay.dtype)
        z = frame // lay.frames_per_slice
        out = np.zeros(self.page_shape, lay.dtype)
        # (field, its first row) of the fields scanned at plane z
        here = [(f, r) for f in self.fields if (r := f.row_offsets[z]) is not None]
        fly = np.array([FLY_TO_VALUE], np.uint16).view(lay.dtype)[0]
        for (a, ra), (_, rb) in zip(here[:-1], here[1:], strict=False):
            out[ra + a.height : rb] = fly
        for f, r in here:
            out[r : r + f.height, : f.width] = self.field_pixels(g, f.index)
        return out

    def field_frame(self, k: int, t: int, z: int, c: int, f: int = 0) -> np.ndarray:
        """Ground truth of field k at volume t, plane z, channel c, sample f (zeros where the
        field is not scanned).
        """
        fld = self.fields[k]
        g = self.layout.page_index(t, z, f, c)
        if fld.row_offsets[z] is None:
            return np.zeros((fld.height, fld.width), self.layout.dtype)
        return self.field_pixels(g, k)


def _roi(spec: FieldSpec, as_list: bool) -> dict[str, Any]:
    scanfield = {
        "ver": 1, "classname": "scanimage.mroi.scanfield.fields.RotatedRectangle",
        "name": "", "centerXY": list(spec.center_deg), "sizeXY": list(spec.size_deg),
        "rotationDegrees": spec.rotation_degrees, "enable": 1,
        "pixelResolutionXY": [spec.width, spec.height],
        "pixelToRefTransform": [[spec.size_deg[0] / spec.width, 0, 0],
                                [0, spec.size_deg[1] / spec.height, 0], [0, 0, 1]],
    }  # fmt: skip
    zs = list(spec.zs) if spec.zs is not None else None
    discrete = zs is not None
    return {"ver": 1, "classname": "scanimage.mroi.Roi", "name": spec.name,
            "zs": 0 if zs is None else zs[0] if len(zs) == 1 else zs,
            "discretePlaneMode": int(discrete), "enable": int(spec.enable),
            "scanfields": [scanfield] if as_list else scanfield}  # fmt: skip


def roi_groups_json(fields: tuple[FieldSpec, ...], *, scanfields_as_list: bool = False) -> str:
    """``{"RoiGroups": ...}`` JSON of the imaging rois (one roi: ``rois`` is an object, as
    MATLAB writes a 1×1 struct array).
    """
    rois = [_roi(s, scanfields_as_list) for s in fields]
    group = {"ver": 1, "classname": "scanimage.mroi.RoiGroup", "name": "MROI Imaging ROI Group",
             "rois": rois[0] if len(rois) == 1 else rois}  # fmt: skip
    return json.dumps({"RoiGroups": {"imagingRoiGroup": group, "photostimRoiGroups": None,
                                     "integrationRoiGroup": None}}, indent=1)  # fmt: skip


def write_mroi_tiff(
    path: str | os.PathLike[str],
    fields: tuple[FieldSpec, ...] = FIELDS,
    *,
    fly_to_lines: int = 6,
    timing_fly_to_lines: int | None = None,
    scanfields_as_list: bool = False,
    roi_json: str | None = None,
    page_height: int | None = None,
    pixels: Callable[[int, int], np.ndarray] | None = None,
    **layout_kwargs: Any,
) -> SyntheticMroi:
    """Write one multi-ROI ScanImage BigTIFF.

    Parameters
    ----------
    path : path-like
    fields : tuple of FieldSpec
        The imaging rois in order (default :data:`FIELDS`).
    fly_to_lines : int
        Dead lines between consecutive fields of a page.
    timing_fly_to_lines : int, optional
        Fly-to lines the header's ``flytoTimePerScanfield / linePeriod`` gives (default
        ``fly_to_lines``; another value makes geometry and timing disagree).
    scanfields_as_list : bool
        Write each roi's ``scanfields`` as a one-element list instead of an object.
    roi_json : str, optional
        RoiGroups JSON to write instead of the one describing ``fields`` (malformed-metadata
        tests); the pixels still follow ``fields``.
    page_height : int, optional
        Page height (default: the tallest plane's fields and fly-to lines).
    pixels : callable, optional
        ``pixels(g, k) -> (height, width)`` array of field k in raw page g; default
        :func:`field_content`.
    **layout_kwargs
        :class:`SyntheticLayout` fields (channels, num_planes, num_volumes, ...); height and
        width are derived.

    Returns
    -------
    SyntheticMroi
    """
    kw = {"channels": (1, 2), "channel_names": ("Green", "Red"), "num_planes": 3,
          "num_flyback": 1, "num_volumes": 4, "bidirectional": True, "z_step_um": 5.0,
          "frame_rate": 10.0, **layout_kwargs}  # fmt: skip
    base = SyntheticLayout(**{**kw, "height": 1, "width": 1})
    Z = base.num_planes
    plane_z = tuple(float(i * base.z_step_um) for i in range(Z)) if Z > 1 else (0.0,)
    scanned = [s for s in fields if s.enable]
    planes_of = [
        [z for z in range(Z) if s.zs is None or any(abs(plane_z[z] - v) < 1e-6 for v in s.zs)]
        for s in scanned
    ]
    offsets: list[list[int | None]] = [[None] * Z for _ in scanned]
    tallest = 0
    for z in range(Z):
        row = 0
        for k, s in enumerate(scanned):
            if z in planes_of[k]:
                offsets[k][z] = row
                row += s.height + fly_to_lines
        tallest = max(tallest, row - fly_to_lines if row else 0)
    height = page_height or tallest
    width = max(s.width for s in scanned)
    layout = dataclasses.replace(base, height=height, width=width)
    truths = tuple(
        FieldTruth(s.name, k, s.width, s.height, tuple(offsets[k]),
                   (s.center_deg[0] * OBJECTIVE_RESOLUTION, s.center_deg[1] * OBJECTIVE_RESOLUTION),
                   (s.size_deg[0] * OBJECTIVE_RESOLUTION, s.size_deg[1] * OBJECTIVE_RESOLUTION),
                   (s.size_deg[1] * OBJECTIVE_RESOLUTION / s.height,
                    s.size_deg[0] * OBJECTIVE_RESOLUTION / s.width))
        for k, s in enumerate(scanned))  # fmt: skip
    timing = fly_to_lines if timing_fly_to_lines is None else timing_fly_to_lines
    fly_time = (timing - 0.2) * LINE_PERIOD if timing else 0.0
    text = scanimage_static_text(layout)
    values = dict(line.split(" = ", 1) for line in text.strip("\n").split("\n"))
    values.update(
        {
            "SI.hRoiManager.mroiEnable": "true",
            "SI.objectiveResolution": f"{OBJECTIVE_RESOLUTION:g}",
            "SI.hRoiManager.linePeriod": f"{LINE_PERIOD:g}",
            "SI.hScan2D.flytoTimePerScanfield": f"{fly_time:.9g}",
        }
    )
    text = "".join(f"{k} = {values[k]}\n" for k in sorted(values))
    roi = (
        roi_json
        if roi_json is not None
        else roi_groups_json(fields, scanfields_as_list=scanfields_as_list)
    )
    truth = SyntheticMroi(
        pathlib.Path(path), layout, truths, fly_to_lines, timing, plane_z, text, roi, pixels
    )
    with open(path, "wb") as fh:
        write_pages(
            fh,
            layout,
            0,
            layout.total_pages,
            text.encode("ascii") + b"\x00",
            roi.encode("ascii") + b"\x00",
            truth.page,
        )
    return truth
