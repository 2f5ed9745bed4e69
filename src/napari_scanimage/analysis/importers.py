"""ROIs found by other tools — suite2p, CaImAn, cellpose — read as mask ROIs (an
:class:`Imported` set, which ``RoiSet.from_suite2p`` / ``from_caiman`` / ``from_cellpose``
turn into a :class:`~napari_scanimage.analysis.rois.RoiSet`).

read_suite2p
    A suite2p plane folder: ``stat.npy`` (``ypix``, ``xpix``, weights ``lam``),
    ``iscell.npy`` and ``ops.npy`` (``Ly``, ``Lx``).
read_caiman
    A CaImAn HDF5 results file: ``estimates/A`` (sparse CSC, Fortran-order pixels), ``dims``
    and ``estimates/idx_components``.
read_cellpose
    A cellpose ``*_seg.npy`` (a dict with ``masks``) or a label image (.png / .tif).

suite2p's and cellpose's .npy files are pickles: they are read with a restricted unpickler
(:mod:`._safe_pickle`) that builds arrays, numbers, text, containers and dates only.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ..errors import FormatError
from ._safe_pickle import load_npy
from .colours import palette
from .shapes import Roi

__all__ = ["Imported", "mask_rois", "read_caiman", "read_cellpose", "read_suite2p"]

_BOOL = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class Imported:
    """Mask ROIs read from a file: the arguments of a ``RoiSet``."""

    rois: list[Roi]
    frame_shape: tuple[int, ...] | None
    num_planes: int | None
    source: str | None


def mask_rois(
    masks: Sequence[_BOOL],
    names: Sequence[str],
    *,
    planes: Sequence[int | None] | None = None,
    features: Sequence[Mapping[str, float]] | None = None,
    num_planes: int | None = None,
    source: str | None = None,
) -> Imported:
    """Mask ROIs (each bool (Y, X), or (Z, Y, X)) in palette colours, with their planes
    (None: a 2-D mask covers every plane) and features.
    """
    colours = palette(len(masks))
    rois = [
        Roi(
            str(names[k]),
            "mask",
            plane=None if planes is None else planes[k],
            colour=colours[k],
            mask=np.asarray(m, bool),
            features=None if features is None else dict(features[k]),
        )
        for k, m in enumerate(masks)
    ]
    shape = tuple(np.shape(masks[0])[-2:]) if len(masks) else None
    return Imported(rois, shape, num_planes, source)


def _need(path: Path, what: str) -> Path:
    if not path.is_file():
        raise FormatError(f"{path.parent.name or path.parent}: no {path.name} ({what})")
    return path


def _field(item: Any, key: str, k: int, name: str) -> Any:
    try:
        return item[key]
    except (KeyError, TypeError, IndexError):
        raise FormatError(f"{name}: ROI {k} has no {key!r}") from None


def read_suite2p(
    plane_folder: str | os.PathLike[str], *, include_rejected: bool = False
) -> Imported:
    """ROIs of a suite2p plane folder (``…/suite2p/plane0``).

    Parameters
    ----------
    plane_folder : path
        Folder holding ``stat.npy`` and ``ops.npy`` (and ``iscell.npy``; without it every ROI
        counts as a cell).
    include_rejected : bool
        Also the ROIs suite2p's classifier rejected (named "suite2p k (rejected)").

    Returns
    -------
    Imported
        One mask ROI per suite2p ROI ("suite2p k", k its index in ``stat.npy``), with the
        features ``area`` (pixels), ``score`` (the cell probability) and ``compactness``
        (when suite2p gives it).  On a plane ``planeN`` of a multi-plane run they belong to
        plane N.
    """
    folder = Path(plane_folder)
    stat = load_npy(_need(folder / "stat.npy", "suite2p's ROI statistics"))
    ops = load_npy(_need(folder / "ops.npy", "suite2p's settings, with the frame size"))
    if not isinstance(ops, Mapping) or "Ly" not in ops or "Lx" not in ops:
        raise FormatError(f"{folder.name}/ops.npy holds no frame size (Ly, Lx)")
    Y, X = int(ops["Ly"]), int(ops["Lx"])
    stat = list(np.asarray(stat, dtype=object).ravel())
    iscell_path = folder / "iscell.npy"
    if iscell_path.is_file():
        iscell = np.asarray(load_npy(iscell_path), np.float64).reshape(len(stat), -1)
    else:
        iscell = np.ones((len(stat), 2))
    plane: int | None = None
    if int(ops.get("nplanes", 1)) > 1:
        match = re.fullmatch(r"plane(\d+)", folder.name)
        plane = int(ops.get("iplane", match.group(1) if match else 0))
    masks, names, features = [], [], []
    for k, item in enumerate(stat):
        cell = bool(iscell[k, 0])
        if not cell and not include_rejected:
            continue
        ypix = np.asarray(_field(item, "ypix", k, "stat.npy"), np.int64).ravel()
        xpix = np.asarray(_field(item, "xpix", k, "stat.npy"), np.int64).ravel()
        lam = np.asarray(item.get("lam", np.ones(len(ypix))), np.float64).ravel()
        if ypix.shape != xpix.shape or lam.shape != ypix.shape:
            raise FormatError(f"stat.npy: ROI {k} has ypix, xpix and lam of different lengths")
        inside = (ypix >= 0) & (ypix < Y) & (xpix >= 0) & (xpix < X)
        if not inside.all():
            raise FormatError(f"stat.npy: ROI {k} has pixels outside the {Y}×{X} frame")
        mask = np.zeros((Y, X), bool)
        mask[ypix[lam > 0], xpix[lam > 0]] = True
        masks.append(mask)
        names.append(f"suite2p {k}" + ("" if cell else " (rejected)"))
        f = {"area": float(mask.sum()), "score": float(iscell[k, -1])}
        if "compact" in item:
            f["compactness"] = float(item["compact"])
        features.append(f)
    return mask_rois(
        masks, names, planes=[plane] * len(masks), features=features, source=str(folder)
    )


def _h5py() -> Any:
    try:
        import h5py  # type: ignore[import-untyped]  # (h5py ships no type information)
    except ImportError:
        raise ModuleNotFoundError(
            "reading CaImAn results needs h5py: pip install 'napari-scanimage[nwb]' "
            "(or pip install h5py)"
        ) from None
    return h5py


def read_caiman(hdf5_path: str | os.PathLike[str], *, threshold: float = 0.2) -> Imported:
    """ROIs of a CaImAn results file (``cnm.save(...)``, HDF5).

    A mask is where a footprint (a column of ``estimates/A``) exceeds ``threshold`` × its
    maximum; only the components in ``estimates/idx_components`` when it is there.  ROIs are
    named "caiman k" (k the component's index) with features ``area`` and ``score`` (CaImAn's
    ``SNR_comp`` when saved, else the footprint's maximum).
    """
    h5py = _h5py()
    path = Path(hdf5_path)
    if not 0 <= threshold < 1:
        raise FormatError(f"threshold {threshold} is not in [0, 1)")
    try:
        fh = h5py.File(path, "r")
    except OSError as exc:
        raise FormatError(f"{path.name} is not an HDF5 file ({exc})") from None
    with fh:
        if "estimates/A" not in fh or "dims" not in fh:
            raise FormatError(
                f"{path.name} holds no CaImAn footprints (estimates/A and dims); save the "
                "results with cnm.save('….hdf5')"
            )
        dims = tuple(int(d) for d in np.asarray(fh["dims"]).ravel())
        A = _footprints(fh["estimates/A"], path.name)
        keep = _numeric(fh, "estimates/idx_components")
        snr = _numeric(fh, "estimates/SNR_comp")
    npix = int(np.prod(dims))
    if A.shape[0] != npix or len(dims) not in (2, 3):
        raise FormatError(f"{path.name}: footprints of {A.shape[0]} pixels; dims are {dims}")
    A = A.tocsc()
    components = np.arange(A.shape[1]) if keep is None else np.asarray(keep, np.int64).ravel()
    if components.size and (components.min() < 0 or components.max() >= A.shape[1]):
        raise FormatError(f"{path.name}: idx_components names components that are not in A")
    masks, names, features = [], [], []
    for k in components.tolist():
        lo, hi = A.indptr[k], A.indptr[k + 1]
        values, rows = A.data[lo:hi], A.indices[lo:hi]
        top = float(values.max()) if len(values) else 0.0
        flat = np.zeros(npix, bool)
        flat[rows[values > threshold * top]] = top > 0
        mask = flat.reshape(dims, order="F")  # CaImAn flattens pixels in Fortran order
        masks.append(mask)
        names.append(f"caiman {k}")
        score = float(snr.ravel()[k]) if snr is not None and snr.size > k else top
        features.append({"area": float(mask.sum()), "score": score})
    return mask_rois(
        masks,
        names,
        features=features,
        num_planes=dims[0] if len(dims) == 3 else None,
        source=str(path),
    )


def _numeric(fh: Any, key: str) -> npt.NDArray[Any] | None:
    """A numeric dataset, or None when absent (CaImAn stores a missing value as text)."""
    if key not in fh or not hasattr(fh[key], "dtype") or fh[key].dtype.kind not in "iuf":
        return None
    return np.asarray(fh[key][()])


def _footprints(node: Any, name: str) -> Any:
    from scipy import sparse

    if hasattr(node, "keys"):  # a sparse matrix: data / indices / indptr / shape
        try:
            parts = [np.asarray(node[k][()]) for k in ("data", "indices", "indptr", "shape")]
        except KeyError:
            raise FormatError(f"{name}: estimates/A lacks data, indices, indptr or shape") from None
        data, indices, indptr, shape = parts
        try:
            return sparse.csc_matrix((data, indices, indptr), shape=tuple(int(s) for s in shape))
        except ValueError as exc:
            raise FormatError(f"{name}: estimates/A is not a sparse matrix ({exc})") from None
    return sparse.csc_matrix(np.asarray(node[()], np.float64))


def read_cellpose(path: str | os.PathLike[str]) -> Imported:
    """ROIs of a cellpose result: a ``*_seg.npy`` file (its ``masks``) or a label image
    (.png, .tif): one ROI per label value, named "cellpose v", with the feature ``area``.
    A 3-D label image (Z, Y, X) gives ROIs on the planes they cover.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".npy":
        doc = load_npy(path)
        if not isinstance(doc, Mapping) or "masks" not in doc:
            raise FormatError(f"{path.name} holds no cellpose 'masks'")
        labels = np.asarray(doc["masks"])
    elif suffix in (".tif", ".tiff"):
        import tifffile

        labels = np.asarray(tifffile.imread(path))
    elif suffix == ".png":
        from PIL import Image

        with Image.open(path) as img:
            labels = np.asarray(img)
    else:
        raise FormatError(f"{path.name}: expected a cellpose _seg.npy, .png or .tif file")
    if labels.dtype.kind not in "iu" or labels.ndim not in (2, 3):
        raise FormatError(
            f"{path.name}: labels of shape {labels.shape} and type {labels.dtype}; expected "
            "integer labels (Y, X) or (Z, Y, X)"
        )
    values = [int(v) for v in np.unique(labels) if v != 0]
    masks = [labels == v for v in values]
    return mask_rois(
        masks,
        [f"cellpose {v}" for v in values],
        features=[{"area": float(m.sum())} for m in masks],
        num_planes=labels.shape[0] if labels.ndim == 3 else None,
        source=str(path),
    )
