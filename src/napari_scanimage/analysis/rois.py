"""ROIs: named, coloured regions drawn on a recording, and their pixel masks.

An ROI is an outline (polygon, rectangle, ellipse, or a path with a width) in pixel
coordinates (y, x) — pixel centres at integers, as in napari — or a pixel mask (from a Labels
layer).  In volumetric data an ROI belongs to one plane (``plane``, where it was drawn) or, with
``plane=None``, to every plane.  A pixel belongs to an outline ROI when its centre lies inside.

:class:`RoiSet` turns ROIs into one sparse mask matrix (ROIs × plane·Y·X) for
:func:`~napari_scanimage.analysis.traces.traces`, and saves / loads them as a versioned JSON
file (written atomically) or as an ImageJ ROI zip for Fiji.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

import numpy as np
from scipy import sparse

from .._atomic import atomic_write, check_header
from ..errors import FormatError, ScanImageWarning, SelectionError

__all__ = ["Roi", "RoiSet", "KINDS", "FORMAT", "VERSION", "PALETTE", "palette", "next_colour",
           "lab_distance"]

KINDS = ("polygon", "rectangle", "ellipse", "path", "line", "mask")
FORMAT = "napari-scanimage-rois"
VERSION = 1


def _srgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """CIELAB (D65) of sRGB colours in 0..1, shape (..., 3)."""
    c = np.asarray(rgb, np.float64)
    lin = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    m = np.array([[0.4124564, 0.3575761, 0.1804375],
                  [0.2126729, 0.7151522, 0.0721750],
                  [0.0193339, 0.1191920, 0.9503041]])
    xyz = lin @ m.T / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > (6 / 29) ** 3, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]),
                     200 * (f[..., 1] - f[..., 2])], axis=-1)


def _rgb(colour: str) -> np.ndarray:
    h = colour.lstrip("#")
    return np.array([int(h[i:i + 2], 16) for i in (0, 2, 4)], np.float64) / 255


def lab_distance(a: str, b: str) -> float:
    """Perceptual distance (CIE76 ΔE) between two "#rrggbb" colours: about 2 is just
    noticeable, above 20 the colours are clearly told apart."""
    return float(np.linalg.norm(_srgb_to_lab(_rgb(a)) - _srgb_to_lab(_rgb(b))))


@lru_cache(maxsize=1)
def _palette_table(n: int = 64) -> tuple[str, ...]:
    """``n`` colours picked greedily, each the farthest (in CIELAB) from those before it,
    among bright, saturated sRGB colours (L* 55–92, chroma ≥ 35: visible on dark and grey
    images and on the dark theme)."""
    levels = np.linspace(0, 1, 12)
    grid = np.stack(np.meshgrid(levels, levels, levels, indexing="ij"), -1).reshape(-1, 3)
    lab = _srgb_to_lab(grid)
    chroma = np.hypot(lab[:, 1], lab[:, 2])  # greys would vanish on grey images
    keep = (lab[:, 0] >= 55) & (lab[:, 0] <= 92) & (chroma >= 35)
    grid, lab = grid[keep], lab[keep]
    first = int(np.argmin(np.linalg.norm(grid - _rgb("#ffd700"), axis=1)))  # gold first
    chosen = [first]
    nearest = np.linalg.norm(lab - lab[first], axis=1)
    while len(chosen) < n:
        k = int(np.argmax(nearest))
        chosen.append(k)
        nearest = np.minimum(nearest, np.linalg.norm(lab - lab[k], axis=1))
    return tuple("#%02x%02x%02x" % tuple(int(round(255 * c)) for c in grid[k])
                 for k in chosen)


def palette(n: int) -> list[str]:
    """The first ``n`` ROI colours ("#rrggbb"): the k-th ROI drawn gets the k-th.

    Each colour is the one farthest (CIELAB) from all before it, so any first ``n`` are as
    distinct as they can be (24 colours stay > 25 ΔE apart); past 64 they repeat."""
    table = _palette_table()
    return [table[k % len(table)] for k in range(int(n))]


def next_colour(used: Iterable[str]) -> str:
    """The first palette colour not in ``used`` (so a deleted ROI's colour is reused)."""
    taken = {str(c).lower() for c in used}
    for colour in _palette_table():
        if colour not in taken:
            return colour
    return palette(len(taken) + 1)[-1]


PALETTE = tuple(palette(24))


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
    """

    name: str
    kind: str
    vertices: np.ndarray | None = None
    plane: int | None = None
    colour: str = PALETTE[0]
    width: float = 1.0
    mask: np.ndarray | None = None

    def pixels(self, frame_shape: tuple[int, int]) -> np.ndarray:
        """Boolean (Y, X) mask of an outline ROI (or a 2-D mask ROI) on frames of this shape."""
        if self.kind == "mask":
            m = np.asarray(self.mask, bool)
            if m.shape[-2:] != tuple(frame_shape):
                raise SelectionError(f"ROI {self.name!r} is a mask of {_shape_text(m.shape[-2:])}"
                                     f" pixels; the frames are {_shape_text(frame_shape)}")
            return m if m.ndim == 2 else m.any(axis=0)
        return rasterise(self.kind, self.vertices, frame_shape, self.width)


def _shape_text(shape) -> str:
    return "×".join(str(int(s)) for s in shape)


def rasterise(kind: str, vertices: np.ndarray, frame_shape: tuple[int, int],
              width: float = 1.0) -> np.ndarray:
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
    yy, xx = np.mgrid[y0:y1 + 1, x0:x1 + 1].astype(np.float64)
    if kind in ("polygon", "rectangle"):
        inside = _in_polygon(v, yy, xx)
    elif kind == "ellipse":
        inside = _in_ellipse(v, yy, xx)
    elif kind in ("path", "line"):
        inside = _near_path(v, yy, xx, width / 2)
    else:
        raise SelectionError(f"ROI kind {kind!r} is not one of {', '.join(KINDS)}")
    out[y0:y1 + 1, x0:x1 + 1] = inside
    return out


def _in_polygon(v: np.ndarray, yy: np.ndarray, xx: np.ndarray) -> np.ndarray:
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


def _segment_distance(ya, xa, yb, xb, yy, xx) -> np.ndarray:
    dy, dx = yb - ya, xb - xa
    length2 = dy * dy + dx * dx
    t = np.zeros(yy.shape) if length2 == 0 else \
        np.clip(((yy - ya) * dy + (xx - xa) * dx) / length2, 0.0, 1.0)
    return np.hypot(yy - (ya + t * dy), xx - (xa + t * dx))


def _near_path(v: np.ndarray, yy: np.ndarray, xx: np.ndarray, half: float) -> np.ndarray:
    near = np.zeros(yy.shape, bool)
    for i in range(max(len(v) - 1, 1)):
        a, b = v[i], v[min(i + 1, len(v) - 1)]
        near |= _segment_distance(a[0], a[1], b[0], b[1], yy, xx) <= half + 1e-9
    return near


def _in_ellipse(v: np.ndarray, yy: np.ndarray, xx: np.ndarray) -> np.ndarray:
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
    return u * u + w * w <= 1.0 + 1e-12


class RoiSet(Sequence):
    """An ordered set of uniquely named ROIs.

    Build one with :meth:`from_masks`, :meth:`from_layer`, :meth:`load` or :meth:`from_imagej`;
    ``masks(frame_shape, num_planes)`` gives the sparse mask matrix traces use.
    """

    def __init__(self, rois: Sequence[Roi] = (), *, frame_shape: tuple[int, int] | None = None,
                 num_planes: int | None = None, source: str | None = None):
        self._rois = list(rois)
        names = [r.name for r in self._rois]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise SelectionError(f"ROI names must be unique; repeated: {', '.join(dupes)}")
        for r in self._rois:
            if r.kind not in KINDS:
                raise SelectionError(f"ROI {r.name!r} has kind {r.kind!r}; expected one of "
                                     f"{', '.join(KINDS)}")
        self.frame_shape = None if frame_shape is None else tuple(int(s) for s in frame_shape)
        self.num_planes = None if num_planes is None else int(num_planes)
        self.source = source

    # -- sequence ---------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._rois)

    def __getitem__(self, key):
        if isinstance(key, str):
            for r in self._rois:
                if r.name == key:
                    return r
            raise KeyError(key)
        return self._rois[key]

    def __iter__(self) -> Iterator[Roi]:
        return iter(self._rois)

    def __repr__(self) -> str:
        more = "…" if len(self) > 5 else ""
        return f"RoiSet({len(self)} ROIs: {', '.join(self.names[:5])}{more})"

    @property
    def names(self) -> list[str]:
        return [r.name for r in self._rois]

    @property
    def planes(self) -> list[int | None]:
        return [r.plane for r in self._rois]

    @property
    def colours(self) -> list[str]:
        return [r.colour for r in self._rois]

    # -- construction -----------------------------------------------------------------------
    @classmethod
    def from_masks(cls, masks: Mapping[str, np.ndarray], *, colours: Sequence[str] | None = None,
                   source: str | None = None) -> RoiSet:
        """ROIs from {name: bool mask (Y, X) — every plane — or (Z, Y, X) — its planes}."""
        rois, shapes = [], set()
        for k, (name, mask) in enumerate(masks.items()):
            m = np.asarray(mask).astype(bool)
            if m.ndim not in (2, 3):
                raise SelectionError(f"mask {name!r} has shape {m.shape}; expected (Y, X) or "
                                     "(Z, Y, X)")
            shapes.add(m.shape[-2:])
            planes = np.flatnonzero(m.reshape(m.shape[0], -1).any(axis=1)) if m.ndim == 3 else []
            plane = int(planes[0]) if m.ndim == 3 and len(planes) == 1 else None
            colour = colours[k] if colours is not None else PALETTE[k % len(PALETTE)]
            rois.append(Roi(str(name), "mask", plane=plane, colour=colour, mask=m))
        if len(shapes) > 1:
            raise SelectionError(f"masks of different frame shapes: {sorted(shapes)}")
        num_planes = max((r.mask.shape[0] for r in rois if r.mask.ndim == 3), default=None)
        return cls(rois, frame_shape=shapes.pop() if shapes else None, num_planes=num_planes,
                   source=source)

    @classmethod
    def from_layer(cls, data, *, shape_types: Sequence[str] | str | None = None,
                   edge_widths: Sequence[float] | float = 1.0,
                   planes: Sequence[int | None] | None = None,
                   names: Sequence[str] | None = None, colours: Sequence[str] | None = None,
                   frame_shape: tuple[int, int] | None = None, num_planes: int | None = None,
                   source: str | None = None) -> RoiSet:
        """ROIs from a napari layer's data.

        ``data`` is a Shapes layer's list of vertex arrays (the last two columns are y, x)
        with their ``shape_types``, or a Labels layer's integer array — (Y, X) for every plane,
        or (…, Z, Y, X) with ``num_planes`` planes (labels on other leading axes are pooled);
        for labels, ``names`` and ``colours`` may be dicts keyed by label value.
        """
        if isinstance(data, np.ndarray) and data.dtype.kind in "iub" and data.ndim >= 2:
            return cls._from_labels(data, names, colours, frame_shape, num_planes, source)
        shapes = [np.asarray(d, np.float64) for d in data]
        n = len(shapes)
        types = [shape_types] * n if isinstance(shape_types, str) else \
            list(shape_types) if shape_types is not None else ["polygon"] * n
        widths = np.broadcast_to(np.asarray(edge_widths, np.float64), (n,))
        if len(types) != n:
            raise SelectionError(f"{n} shapes but {len(types)} shape types")
        rois = []
        for k, verts in enumerate(shapes):
            if verts.ndim != 2 or verts.shape[1] < 2:
                raise SelectionError(f"shape {k} has vertices of shape {verts.shape}; expected "
                                     "(N, 2) or more columns")
            kind = types[k]
            if kind not in KINDS[:-1]:
                raise SelectionError(f"shape {k} is a {kind!r}; ROIs can be "
                                     f"{', '.join(KINDS[:-1])}")
            name = names[k] if names is not None else f"roi {k + 1}"
            colour = colours[k] if colours is not None else PALETTE[k % len(PALETTE)]
            plane = planes[k] if planes is not None else None
            rois.append(Roi(str(name), kind, verts[:, -2:].copy(), None if plane is None
                            else int(plane), _hex(colour), float(widths[k])))
        return cls(rois, frame_shape=frame_shape, num_planes=num_planes, source=source)

    @classmethod
    def _from_labels(cls, labels, names, colours, frame_shape, num_planes, source) -> RoiSet:
        a = np.asarray(labels)
        if frame_shape is not None and a.shape[-2:] != tuple(frame_shape):
            raise SelectionError(f"labels of {_shape_text(a.shape[-2:])} pixels; the frames are"
                                 f" {_shape_text(frame_shape)}")
        if a.ndim == 2:
            per_plane = a[None]
        elif num_planes is not None and num_planes > 1 and a.shape[-3] == num_planes:
            per_plane = _pool_labels(a.reshape(-1, *a.shape[-3:]))  # one plane axis
        else:  # no plane axis: labels on every leading axis are pooled
            per_plane = _pool_labels(a.reshape(-1, 1, *a.shape[-2:]))
        values = [int(v) for v in np.unique(per_plane) if v != 0]
        masks, chosen = {}, []
        for k, value in enumerate(values):  # names / colours: by position or {value: ...}
            m = per_plane == value
            name = names.get(value) if isinstance(names, Mapping) else \
                names[k] if names is not None and k < len(names) else None
            masks[str(name or f"label {value}")] = m[0] if per_plane.shape[0] == 1 else m
            colour = colours.get(value) if isinstance(colours, Mapping) else \
                colours[k] if colours is not None and k < len(colours) else None
            chosen.append(_hex(colour) if colour is not None else PALETTE[k % len(PALETTE)])
        out = cls.from_masks(masks, colours=chosen, source=source)
        out.num_planes = num_planes if num_planes is not None else out.num_planes
        out.frame_shape = tuple(a.shape[-2:])
        return out

    # -- masks ------------------------------------------------------------------------------
    def masks(self, frame_shape: tuple[int, int], num_planes: int = 1) -> sparse.csr_matrix:
        """Sparse bool (n_rois, num_planes·Y·X): row r holds ROI r's pixels in every plane it
        belongs to (all planes when ``plane`` is None)."""
        Y, X = (int(s) for s in frame_shape)
        npix = Y * X
        cols = []
        for roi in self._rois:
            if roi.plane is not None and not 0 <= roi.plane < num_planes:
                raise SelectionError(f"ROI {roi.name!r} is on plane {roi.plane}; the recording "
                                     f"has {num_planes} plane(s)")
            if roi.kind == "mask" and np.ndim(roi.mask) == 3:
                m = np.asarray(roi.mask, bool)
                if m.shape != (num_planes, Y, X):
                    raise SelectionError(f"ROI {roi.name!r} is a mask of shape {m.shape}; the "
                                         f"recording has {num_planes} plane(s) of "
                                         f"{_shape_text((Y, X))}")
                cols.append(np.flatnonzero(m))
                continue
            flat = np.flatnonzero(roi.pixels((Y, X)))
            if roi.plane is None:
                cols.append((flat[None, :] + npix * np.arange(num_planes)[:, None]).ravel())
            else:
                cols.append(flat + npix * roi.plane)
        indptr = np.concatenate([[0], np.cumsum([len(c) for c in cols])]).astype(np.int64)
        indices = np.concatenate(cols).astype(np.int64) if cols else np.zeros(0, np.int64)
        return sparse.csr_matrix((np.ones(len(indices), bool), indices, indptr),
                                 shape=(len(cols), num_planes * npix))

    def mask(self, key: int | str, frame_shape: tuple[int, int], num_planes: int = 1
             ) -> np.ndarray:
        """Dense bool (num_planes, Y, X) mask of one ROI (by index or name)."""
        k = self.names.index(key) if isinstance(key, str) else int(key)
        row = RoiSet([self._rois[k]]).masks(frame_shape, num_planes)
        return row.toarray().reshape(num_planes, *frame_shape)

    def renamed(self, old: str, new: str) -> RoiSet:
        rois = [replace(r, name=new) if r.name == old else r for r in self._rois]
        return RoiSet(rois, frame_shape=self.frame_shape, num_planes=self.num_planes,
                      source=self.source)

    # -- files ------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {"format": FORMAT, "version": VERSION, "source": self.source,
                "frame_shape": None if self.frame_shape is None else list(self.frame_shape),
                "num_planes": self.num_planes,
                "rois": [_roi_to_dict(r) for r in self._rois]}

    def save(self, path: str | os.PathLike) -> Path:
        """Write the ROIs as versioned JSON, atomically (the old file stays until replaced)."""
        path = Path(path)
        text = json.dumps(self.to_dict(), indent=1)
        atomic_write(path, text.encode())
        return path

    @classmethod
    def load(cls, path: str | os.PathLike, *, frame_shape: tuple[int, int] | None = None,
             num_planes: int | None = None) -> RoiSet:
        """Read a file written by :meth:`save`; with ``frame_shape`` / ``num_planes`` (those of
        the recording they are meant for) ROIs drawn on other frames are refused."""
        path = Path(path)
        try:
            doc = json.loads(path.read_bytes())
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise FormatError(f"{path.name} is not an ROI file (not JSON: {exc})") from None
        out = cls.from_dict(doc, path.name)
        out._check_fits(path.name, frame_shape, num_planes)
        return out

    @classmethod
    def from_dict(cls, doc, name: str = "ROIs") -> RoiSet:
        """The inverse of :meth:`to_dict` (FormatError naming ``name`` when it is not one)."""
        check_header(doc, FORMAT, VERSION, name, "ROI file")
        try:
            return cls([_roi_from_dict(d) for d in doc["rois"]],
                       frame_shape=doc.get("frame_shape"), num_planes=doc.get("num_planes"),
                       source=doc.get("source"))
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, SelectionError):
                raise
            raise FormatError(f"{name}: malformed ROI entry ({exc!r})") from None

    def _check_fits(self, what: str, frame_shape, num_planes) -> None:
        if frame_shape is not None and self.frame_shape is not None and \
                tuple(frame_shape) != self.frame_shape:
            raise SelectionError(f"the ROIs in {what} were drawn on "
                                 f"{_shape_text(self.frame_shape)} frames; this recording has "
                                 f"{_shape_text(frame_shape)} frames — open the recording they "
                                 "belong to")
        if num_planes is not None:
            high = [r.name for r in self._rois if r.plane is not None and r.plane >= num_planes]
            if high:
                raise SelectionError(f"ROI(s) {', '.join(high)} in {what} are on planes the "
                                     f"recording does not have ({num_planes} plane(s))")

    def to_imagej(self, path: str | os.PathLike) -> Path:
        """Write an ImageJ / Fiji ROI zip (mask ROIs have no outline and are skipped, with a
        warning).  ImageJ's coordinates are pixel corners: x + 0.5, y + 0.5."""
        from . import _imagej

        path = Path(path)
        data = _imagej.encode(self._rois)
        atomic_write(path, data)
        return path

    @classmethod
    def from_imagej(cls, path: str | os.PathLike, *, frame_shape: tuple[int, int] | None = None,
                    num_planes: int | None = None) -> RoiSet:
        """Read an ImageJ ROI zip or .roi file."""
        from . import _imagej

        out = cls(_imagej.decode(Path(path)), frame_shape=frame_shape, num_planes=num_planes,
                  source=None)
        out._check_fits(Path(path).name, None, num_planes)
        return out


def _hex(colour) -> str:
    if isinstance(colour, str):
        return colour
    rgb = np.asarray(colour, np.float64).ravel()[:3]
    r, g, b = (int(round(255 * c)) for c in np.clip(rgb, 0, 1))
    return f"#{r:02x}{g:02x}{b:02x}"


def _roi_to_dict(r: Roi) -> dict:
    d = {"name": r.name, "kind": r.kind, "plane": r.plane, "colour": r.colour,
         "width": r.width}
    if r.kind == "mask":
        m = np.asarray(r.mask, bool)
        d["mask"] = {"shape": list(m.shape), "indices": np.flatnonzero(m).tolist()}
    else:
        d["vertices"] = np.asarray(r.vertices, np.float64).tolist()
    return d


def _roi_from_dict(d: dict) -> Roi:
    kind = d["kind"]
    if kind == "mask":
        shape = tuple(int(s) for s in d["mask"]["shape"])
        if len(shape) not in (2, 3) or min(shape) < 1:
            raise ValueError(f"mask shape {shape}")
        m = np.zeros(int(np.prod(shape)), bool)
        idx = np.asarray(d["mask"]["indices"], np.int64)
        if idx.size and (idx.min() < 0 or idx.max() >= m.size):
            raise ValueError("mask index outside its shape")
        m[idx] = True
        return Roi(str(d["name"]), kind, None, d.get("plane"), str(d.get("colour", PALETTE[0])),
                   float(d.get("width", 1.0)), m.reshape(shape))
    verts = np.asarray(d["vertices"], np.float64).reshape(-1, 2)
    plane = d.get("plane")
    return Roi(str(d["name"]), str(kind), verts, None if plane is None else int(plane),
               str(d.get("colour", PALETTE[0])), float(d.get("width", 1.0)))


def _pool_labels(stack: np.ndarray) -> np.ndarray:
    """(K, Z, Y, X) labels drawn at several times → (Z, Y, X): a pixel keeps its label wherever
    one was painted (the last nonzero one wins where they disagree)."""
    out = np.zeros(stack.shape[1:], stack.dtype)
    for layer in stack:
        out = np.where(layer != 0, layer, out)
    return out


def warn_skipped(names: list[str], why: str) -> None:
    if names:
        warnings.warn(f"ROI(s) {', '.join(names)} skipped: {why}", ScanImageWarning,
                      stacklevel=3)
