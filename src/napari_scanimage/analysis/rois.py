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
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, overload

import numpy as np
import numpy.typing as npt
from scipy import sparse

from .._atomic import atomic_write, check_header
from ..errors import FormatError, SelectionError
from .colours import PALETTE, to_hex
from .shapes import KINDS, Roi, shape_text

__all__ = ["Roi", "RoiSet", "KINDS", "FORMAT", "VERSION"]

FORMAT = "napari-scanimage-rois"
VERSION = 1
# ROI colours: "#rrggbb" or RGB(A) floats in 0..1 (as napari layers give them)
Colour = str | Sequence[float] | npt.NDArray[np.floating]


class RoiSet(Sequence[Roi]):
    """An ordered set of uniquely named ROIs.

    Build one with :meth:`from_masks`, :meth:`from_layer`, :meth:`load` or :meth:`from_imagej`;
    ``masks(frame_shape, num_planes)`` gives the sparse mask matrix traces use.
    """

    def __init__(
        self,
        rois: Sequence[Roi] = (),
        *,
        frame_shape: Sequence[int] | None = None,
        num_planes: int | None = None,
        source: str | None = None,
    ) -> None:
        self._rois = list(rois)
        names = [r.name for r in self._rois]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise SelectionError(f"ROI names must be unique; repeated: {', '.join(dupes)}")
        for r in self._rois:
            if r.kind not in KINDS:
                raise SelectionError(
                    f"ROI {r.name!r} has kind {r.kind!r}; expected one of {', '.join(KINDS)}"
                )
        self.frame_shape: tuple[int, ...] | None = (
            None if frame_shape is None else tuple(int(s) for s in frame_shape)
        )
        self.num_planes = None if num_planes is None else int(num_planes)
        self.source = source

    # -- sequence ---------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._rois)

    @overload
    def __getitem__(self, key: int | str) -> Roi: ...
    @overload
    def __getitem__(self, key: slice) -> list[Roi]: ...
    def __getitem__(self, key: int | str | slice) -> Roi | list[Roi]:
        """An ROI by position or name, or a list of ROIs by slice."""
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
        """The ROIs' names, in order."""
        return [r.name for r in self._rois]

    @property
    def planes(self) -> list[int | None]:
        """The plane of each ROI (None: every plane)."""
        return [r.plane for r in self._rois]

    @property
    def colours(self) -> list[str]:
        """The ROIs' colours ("#rrggbb")."""
        return [r.colour for r in self._rois]

    @property
    def features(self) -> dict[str, npt.NDArray[np.float64]]:
        """Per-ROI numbers by name ({"area": float64 (n,), "score": …}); NaN where an ROI
        lacks one (ROIs drawn by hand have none).
        """
        keys = sorted({k for r in self._rois for k in (r.features or {})})
        return {
            k: np.array([float((r.features or {}).get(k, np.nan)) for r in self._rois])
            for k in keys
        }

    # -- construction -----------------------------------------------------------------------
    @classmethod
    def from_masks(
        cls,
        masks: Mapping[str, npt.ArrayLike],
        *,
        colours: Sequence[str] | None = None,
        source: str | None = None,
    ) -> RoiSet:
        """ROIs from {name: bool mask (Y, X) — every plane — or (Z, Y, X) — its planes}."""
        rois: list[Roi] = []
        shapes: set[tuple[int, ...]] = set()
        depths: list[int] = []  # planes of the 3-D masks
        for k, (name, mask) in enumerate(masks.items()):
            m = np.asarray(mask).astype(bool)
            if m.ndim not in (2, 3):
                raise SelectionError(
                    f"mask {name!r} has shape {m.shape}; expected (Y, X) or (Z, Y, X)"
                )
            shapes.add(m.shape[-2:])
            plane = None
            if m.ndim == 3:
                depths.append(m.shape[0])
                planes = np.flatnonzero(m.reshape(m.shape[0], -1).any(axis=1))
                plane = int(planes[0]) if len(planes) == 1 else None
            colour = colours[k] if colours is not None else PALETTE[k % len(PALETTE)]
            rois.append(Roi(str(name), "mask", plane=plane, colour=colour, mask=m))
        if len(shapes) > 1:
            raise SelectionError(f"masks of different frame shapes: {sorted(shapes)}")
        num_planes = max(depths, default=None)
        return cls(
            rois, frame_shape=shapes.pop() if shapes else None, num_planes=num_planes, source=source
        )

    @classmethod
    def from_layer(
        cls,
        data: Sequence[npt.ArrayLike] | npt.NDArray[Any],
        *,
        shape_types: Sequence[str] | str | None = None,
        edge_widths: Sequence[float] | float = 1.0,
        planes: Sequence[int | None] | None = None,
        names: Sequence[str] | Mapping[int, str] | None = None,
        colours: Sequence[Colour] | Mapping[int, Colour] | None = None,
        frame_shape: tuple[int, int] | None = None,
        num_planes: int | None = None,
        source: str | None = None,
    ) -> RoiSet:
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
        types = (
            [shape_types] * n
            if isinstance(shape_types, str)
            else list(shape_types)
            if shape_types is not None
            else ["polygon"] * n
        )
        widths = np.broadcast_to(np.asarray(edge_widths, np.float64), (n,))
        if len(types) != n:
            raise SelectionError(f"{n} shapes but {len(types)} shape types")
        rois: list[Roi] = []
        for k, verts in enumerate(shapes):
            if verts.ndim != 2 or verts.shape[1] < 2:
                raise SelectionError(
                    f"shape {k} has vertices of shape {verts.shape}; expected "
                    "(N, 2) or more columns"
                )
            kind = types[k]
            if kind not in KINDS[:-1]:
                raise SelectionError(
                    f"shape {k} is a {kind!r}; ROIs can be {', '.join(KINDS[:-1])}"
                )
            name = names[k] if names is not None else f"roi {k + 1}"
            colour = colours[k] if colours is not None else PALETTE[k % len(PALETTE)]
            plane = planes[k] if planes is not None else None
            rois.append(
                Roi(
                    str(name),
                    kind,
                    verts[:, -2:].copy(),
                    None if plane is None else int(plane),
                    to_hex(colour),
                    float(widths[k]),
                )
            )
        return cls(rois, frame_shape=frame_shape, num_planes=num_planes, source=source)

    @classmethod
    def _from_labels(
        cls,
        labels: npt.NDArray[Any],
        names: Sequence[str] | Mapping[int, str] | None,
        colours: Sequence[Colour] | Mapping[int, Colour] | None,
        frame_shape: Sequence[int] | None,
        num_planes: int | None,
        source: str | None,
    ) -> RoiSet:
        a = np.asarray(labels)
        if frame_shape is not None and a.shape[-2:] != tuple(frame_shape):
            raise SelectionError(
                f"labels of {shape_text(a.shape[-2:])} pixels; the frames are"
                f" {shape_text(frame_shape)}"
            )
        if a.ndim == 2:
            per_plane = a[None]
        elif num_planes is not None and num_planes > 1 and a.shape[-3] == num_planes:
            per_plane = _pool_labels(a.reshape(-1, *a.shape[-3:]))  # one plane axis
        else:  # no plane axis: labels on every leading axis are pooled
            per_plane = _pool_labels(a.reshape(-1, 1, *a.shape[-2:]))
        values = [int(v) for v in np.unique(per_plane) if v != 0]
        masks: dict[str, npt.NDArray[np.bool_]] = {}
        chosen: list[str] = []
        for k, value in enumerate(values):  # names / colours: by position or {value: ...}
            m = per_plane == value
            name = (
                names.get(value)
                if isinstance(names, Mapping)
                else names[k]
                if names is not None and k < len(names)
                else None
            )
            masks[str(name or f"label {value}")] = m[0] if per_plane.shape[0] == 1 else m
            colour = (
                colours.get(value)
                if isinstance(colours, Mapping)
                else colours[k]
                if colours is not None and k < len(colours)
                else None
            )
            chosen.append(to_hex(colour) if colour is not None else PALETTE[k % len(PALETTE)])
        out = cls.from_masks(masks, colours=chosen, source=source)
        out.num_planes = num_planes if num_planes is not None else out.num_planes
        out.frame_shape = tuple(a.shape[-2:])
        return out

    # -- masks ------------------------------------------------------------------------------
    def masks(self, frame_shape: Sequence[int], num_planes: int = 1) -> sparse.csr_matrix:
        """Sparse bool (n_rois, num_planes·Y·X): row r holds ROI r's pixels in every plane it
        belongs to (all planes when ``plane`` is None).
        """
        Y, X = (int(s) for s in frame_shape)
        npix = Y * X
        cols = []
        for roi in self._rois:
            if roi.plane is not None and not 0 <= roi.plane < num_planes:
                raise SelectionError(
                    f"ROI {roi.name!r} is on plane {roi.plane}; the recording "
                    f"has {num_planes} plane(s)"
                )
            if roi.kind == "mask" and roi.mask is not None and roi.mask.ndim == 3:
                m = np.asarray(roi.mask, bool)
                if m.shape != (num_planes, Y, X):
                    raise SelectionError(
                        f"ROI {roi.name!r} is a mask of shape {m.shape}; the "
                        f"recording has {num_planes} plane(s) of "
                        f"{shape_text((Y, X))}"
                    )
                cols.append(np.flatnonzero(m))
                continue
            flat = np.flatnonzero(roi.pixels((Y, X)))
            if roi.plane is None:
                cols.append((flat[None, :] + npix * np.arange(num_planes)[:, None]).ravel())
            else:
                cols.append(flat + npix * roi.plane)
        indptr = np.concatenate([[0], np.cumsum([len(c) for c in cols])]).astype(np.int64)
        indices = np.concatenate(cols).astype(np.int64) if cols else np.zeros(0, np.int64)
        return sparse.csr_matrix(
            (np.ones(len(indices), bool), indices, indptr), shape=(len(cols), num_planes * npix)
        )

    def mask(
        self, key: int | str, frame_shape: Sequence[int], num_planes: int = 1
    ) -> npt.NDArray[np.bool_]:
        """Dense bool (num_planes, Y, X) mask of one ROI (by index or name)."""
        k = self.names.index(key) if isinstance(key, str) else int(key)
        row = RoiSet([self._rois[k]]).masks(frame_shape, num_planes)
        dense: npt.NDArray[np.bool_] = row.toarray()  # scipy.sparse is untyped
        return dense.reshape(num_planes, *frame_shape)

    def renamed(self, old: str, new: str) -> RoiSet:
        """The same ROIs with ROI ``old`` named ``new``."""
        rois = [replace(r, name=new) if r.name == old else r for r in self._rois]
        return RoiSet(
            rois, frame_shape=self.frame_shape, num_planes=self.num_planes, source=self.source
        )

    # -- files ------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The ROIs as a JSON-serialisable document (format tag and version first)."""
        return {
            "format": FORMAT,
            "version": VERSION,
            "source": self.source,
            "frame_shape": None if self.frame_shape is None else list(self.frame_shape),
            "num_planes": self.num_planes,
            "rois": [_roi_to_dict(r) for r in self._rois],
        }

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the ROIs as versioned JSON, atomically (the old file stays until replaced)."""
        path = Path(path)
        text = json.dumps(self.to_dict(), indent=1)
        atomic_write(path, text.encode())
        return path

    @classmethod
    def load(
        cls,
        path: str | os.PathLike[str],
        *,
        frame_shape: Sequence[int] | None = None,
        num_planes: int | None = None,
    ) -> RoiSet:
        """Read a file written by :meth:`save`; with ``frame_shape`` / ``num_planes`` (those of
        the recording they are meant for) ROIs drawn on other frames are refused.
        """
        path = Path(path)
        try:
            doc = json.loads(path.read_bytes())
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise FormatError(f"{path.name} is not an ROI file (not JSON: {exc})") from None
        out = cls.from_dict(doc, path.name)
        out.check_fits(path.name, frame_shape, num_planes)
        return out

    @classmethod
    def from_dict(cls, doc: Any, name: str = "ROIs") -> RoiSet:
        """The inverse of :meth:`to_dict` (FormatError naming ``name`` when it is not one)."""
        check_header(doc, FORMAT, VERSION, name, "ROI file")
        try:
            return cls(
                [_roi_from_dict(d) for d in doc["rois"]],
                frame_shape=doc.get("frame_shape"),
                num_planes=doc.get("num_planes"),
                source=doc.get("source"),
            )
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, SelectionError):
                raise
            raise FormatError(f"{name}: malformed ROI entry ({exc!r})") from None

    def check_fits(
        self, what: str, frame_shape: Sequence[int] | None, num_planes: int | None
    ) -> None:
        """Raise SelectionError (naming ``what``) unless these ROIs fit frames of
        ``frame_shape`` and a recording of ``num_planes`` planes (None: not checked).
        """
        if (
            frame_shape is not None
            and self.frame_shape is not None
            and tuple(frame_shape) != self.frame_shape
        ):
            raise SelectionError(
                f"the ROIs in {what} were drawn on "
                f"{shape_text(self.frame_shape)} frames; this recording has "
                f"{shape_text(frame_shape)} frames — open the recording they "
                "belong to"
            )
        if num_planes is not None:
            high = [r.name for r in self._rois if r.plane is not None and r.plane >= num_planes]
            if high:
                raise SelectionError(
                    f"ROI(s) {', '.join(high)} in {what} are on planes the "
                    f"recording does not have ({num_planes} plane(s))"
                )

    def to_imagej(self, path: str | os.PathLike[str]) -> Path:
        """Write an ImageJ / Fiji ROI zip.  ImageJ's coordinates are pixel corners: x + 0.5,
        y + 0.5.  Mask ROIs go as the polygon around their pixels when one polygon holds them
        exactly (one piece, no holes, one plane); others are skipped, with a warning.
        """
        from . import _imagej

        path = Path(path)
        data = _imagej.encode(self._rois)
        atomic_write(path, data)
        return path

    @classmethod
    def from_suite2p(
        cls,
        plane_folder: str | os.PathLike[str],
        *,
        include_rejected: bool = False,
        frame_shape: Sequence[int] | None = None,
        num_planes: int | None = None,
    ) -> RoiSet:
        """ROIs of a suite2p plane folder (``stat.npy``, ``iscell.npy``, ``ops.npy``); only
        the ROIs suite2p classed as cells unless ``include_rejected``.  See
        :func:`~napari_scanimage.analysis.importers.read_suite2p`.
        """
        from .importers import read_suite2p

        got = read_suite2p(plane_folder, include_rejected=include_rejected)
        out = cls(got.rois, frame_shape=got.frame_shape, num_planes=got.num_planes)
        out.source = got.source
        out.check_fits(Path(plane_folder).name, frame_shape, num_planes)
        return out

    @classmethod
    def from_caiman(
        cls,
        hdf5_path: str | os.PathLike[str],
        *,
        threshold: float = 0.2,
        frame_shape: Sequence[int] | None = None,
        num_planes: int | None = None,
    ) -> RoiSet:
        """ROIs of a CaImAn results file (HDF5): each accepted footprint where it exceeds
        ``threshold`` × its maximum.  See
        :func:`~napari_scanimage.analysis.importers.read_caiman`.
        """
        from .importers import read_caiman

        got = read_caiman(hdf5_path, threshold=threshold)
        out = cls(got.rois, frame_shape=got.frame_shape, num_planes=got.num_planes)
        out.source = got.source
        out.check_fits(Path(hdf5_path).name, frame_shape, num_planes)
        return out

    @classmethod
    def from_cellpose(
        cls,
        path: str | os.PathLike[str],
        *,
        frame_shape: Sequence[int] | None = None,
        num_planes: int | None = None,
    ) -> RoiSet:
        """ROIs of a cellpose ``*_seg.npy`` or label image (.png / .tif): one per label.  See
        :func:`~napari_scanimage.analysis.importers.read_cellpose`.
        """
        from .importers import read_cellpose

        got = read_cellpose(path)
        out = cls(got.rois, frame_shape=got.frame_shape, num_planes=got.num_planes)
        out.source = got.source
        out.check_fits(Path(path).name, frame_shape, num_planes)
        return out

    @classmethod
    def from_imagej(
        cls,
        path: str | os.PathLike[str],
        *,
        frame_shape: Sequence[int] | None = None,
        num_planes: int | None = None,
    ) -> RoiSet:
        """Read an ImageJ ROI zip or .roi file."""
        from . import _imagej

        out = cls(
            _imagej.decode(Path(path)), frame_shape=frame_shape, num_planes=num_planes, source=None
        )
        out.check_fits(Path(path).name, None, num_planes)
        return out


def _roi_to_dict(r: Roi) -> dict[str, Any]:
    d: dict[str, Any] = {
        "name": r.name,
        "kind": r.kind,
        "plane": r.plane,
        "colour": r.colour,
        "width": r.width,
    }
    if r.features:
        d["features"] = {str(k): float(v) for k, v in r.features.items()}
    if r.kind == "mask":
        m = np.asarray(r.mask, bool)
        d["mask"] = {"shape": list(m.shape), "indices": np.flatnonzero(m).tolist()}
    else:
        d["vertices"] = np.asarray(r.vertices, np.float64).tolist()
    return d


def _roi_from_dict(d: Mapping[str, Any]) -> Roi:
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
        return Roi(
            str(d["name"]),
            kind,
            None,
            d.get("plane"),
            str(d.get("colour", PALETTE[0])),
            float(d.get("width", 1.0)),
            m.reshape(shape),
            _features_from(d),
        )
    verts = np.asarray(d["vertices"], np.float64).reshape(-1, 2)
    plane = d.get("plane")
    return Roi(
        str(d["name"]),
        str(kind),
        verts,
        None if plane is None else int(plane),
        str(d.get("colour", PALETTE[0])),
        float(d.get("width", 1.0)),
        features=_features_from(d),
    )


def _features_from(d: Mapping[str, Any]) -> dict[str, float] | None:
    given = d.get("features")
    if given is None:
        return None
    return {str(k): float(v) for k, v in dict(given).items()}


def _pool_labels(stack: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """(K, Z, Y, X) labels drawn at several times → (Z, Y, X): a pixel keeps its label wherever
    one was painted (the last nonzero one wins where they disagree).
    """
    out: npt.NDArray[Any] = np.zeros(stack.shape[1:], stack.dtype)
    for layer in stack:
        out = np.where(layer != 0, layer, out)
    return out
