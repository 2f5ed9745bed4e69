"""ROI masks as one sparse matrix, from a :class:`~napari_scanimage.analysis.rois.RoiSet` or
from plain boolean masks: what traces and lifetime traces sum photons or pixels over.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
from scipy import sparse

from ..errors import SelectionError

if TYPE_CHECKING:
    from .rois import RoiSet

__all__ = ["roi_masks"]


def roi_masks(
    rois: RoiSet | Mapping[str, npt.ArrayLike], frame_shape: tuple[int, int], num_planes: int
) -> tuple[sparse.csr_matrix, list[str]]:
    """The mask matrix (ROIs × plane·Y·X, bool) and names of ROIs given either way.

    Parameters
    ----------
    rois : RoiSet or dict of {name: bool (Y, X) or (Z, Y, X) array}
        A (Y, X) mask covers the same pixels in every plane.
    frame_shape : (int, int)
    num_planes : int

    Returns
    -------
    masks : scipy.sparse.csr_matrix
    names : list of str

    Raises
    ------
    SelectionError
        A mask of another shape than the frames, no ROIs, or neither kind of input.
    """
    if hasattr(rois, "masks") and hasattr(rois, "names"):
        m = sparse.csr_matrix(rois.masks(frame_shape, num_planes), dtype=bool)
        names = list(rois.names)
    elif isinstance(rois, Mapping):
        names, rows = [], []
        npix = frame_shape[0] * frame_shape[1]
        for name, mask in rois.items():
            a = np.asarray(mask, dtype=bool)
            if a.shape == frame_shape:  # every plane: the same pixels at each plane's offset
                flat = np.flatnonzero(a)
                cols = (flat[None, :] + npix * np.arange(num_planes)[:, None]).ravel()
            elif a.shape == (num_planes, *frame_shape):
                cols = np.flatnonzero(a)
            else:
                raise SelectionError(
                    f"mask {name!r} has shape {np.shape(mask)}; frames are "
                    f"{frame_shape} with {num_planes} plane(s)"
                )
            names.append(str(name))
            rows.append(cols)
        if not rows:
            raise SelectionError("no ROIs given")
        indptr = np.concatenate([[0], np.cumsum([len(c) for c in rows])])
        m = sparse.csr_matrix(
            (np.ones(int(indptr[-1]), bool), np.concatenate(rows), indptr),
            shape=(len(rows), num_planes * npix),
        )
    else:
        raise SelectionError(f"rois must be a RoiSet or a dict of masks, got {type(rois)}")
    if m.shape[1] != num_planes * frame_shape[0] * frame_shape[1]:
        raise SelectionError(
            f"ROI masks cover {m.shape[1]} pixels; the recording has "
            f"{num_planes} plane(s) of {frame_shape}"
        )
    return m, names
