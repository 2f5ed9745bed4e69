"""Coordinate maths for showing one recording under different selections (napari-free).

A recording's layers are laid out on named axes: images on ("t", ["z"], ["sample"], "y",
"x"), ROIs and per-plane images (summary, lifetime fraction, cursor labels) on the axes after
time.  Choosing another plane or slice-sample mode changes those axes; the functions here move
ROI vertices, label masks and per-plane images from one layout to the other, keeping each ROI
on the plane it was drawn on, and pick a time step the viewer can reach the last frame with.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

__all__ = ["full_planes", "plane_of", "project_planes", "reachable_step", "reproject_vertices"]


def reachable_step(step: float, n: int) -> float:
    """A time step next to ``step`` whose ``n`` steps span exactly ``n - 1`` of them.

    napari counts the steps of an axis as ``int(extent / step) + 1`` with ``extent = (n - 1)
    * step`` in float64; for some lengths and rates that quotient falls just below ``n - 1``
    (1000 frames at 30 Hz: 998.9999…) and the last frame is out of reach.  The step returned
    keeps only as many significant bits as make ``(n - 1) * step`` exact (53 less the bits of
    ``n - 1``), so the quotient is exactly ``n - 1``; it differs from ``step`` by less than
    ``2**-(53 - bits)`` relative (below 1e-9 for a million frames): times shown stay right.
    """
    step = float(step)
    if n <= 1 or not math.isfinite(step) or step <= 0:
        return step
    bits = 53 - int(n - 1).bit_length()
    mantissa, exponent = math.frexp(step)
    return math.ldexp(round(mantissa * 2.0**bits) / 2.0**bits, exponent)


def plane_of(point: Sequence[float], labels: Sequence[str], shown_plane: int | None) -> int | None:
    """The plane of a point given on ``labels`` axes: its rounded z coordinate where the layout
    has a z axis, else the single plane shown (None when that is not known).
    """
    labels = list(labels)
    if "z" in labels:
        return int(np.round(point[labels.index("z")]))
    return shown_plane


def reproject_vertices(
    vertices: np.ndarray,
    old_labels: Sequence[str],
    new_labels: Sequence[str],
    *,
    old_plane: int | None,
    new_plane: int | None,
    all_planes: bool = False,
) -> np.ndarray | None:
    """An ROI's vertices moved from the ``old_labels`` layout to ``new_labels``.

    ``old_plane`` / ``new_plane`` are the single planes shown (None: all planes, or the
    recording has one).  y and x are kept; the plane becomes the z coordinate where the new
    layout has one; a sample coordinate is kept where both layouts have a sample axis, else 0.
    Returns None when the ROI lies on a plane the new layout does not show (an "all planes"
    ROI is shown on any plane).
    """
    vertices = np.asarray(vertices, dtype=np.float64)
    old_labels, new_labels = list(old_labels), list(new_labels)
    plane = plane_of(vertices[0], old_labels, old_plane) if len(vertices) else old_plane
    if (
        "z" not in new_labels
        and new_plane is not None
        and plane is not None
        and plane != new_plane
        and not all_planes
    ):
        return None
    out = np.zeros((len(vertices), len(new_labels)))
    for k, name in enumerate(new_labels):
        if name in ("y", "x"):
            out[:, k] = vertices[:, old_labels.index(name)]
        elif name == "z":
            out[:, k] = plane if plane is not None else (new_plane or 0)
        elif name in old_labels:
            out[:, k] = vertices[:, old_labels.index(name)]
    return out


def project_planes(planes: np.ndarray, labels: Sequence[str], plane: int | None) -> np.ndarray:
    """Per-plane images ``(Z, Y, X, ...)`` laid out on ROI axes ``labels`` (…, "y", "x").

    With a z axis every plane is kept; without one the single plane shown (``plane``) is
    taken — not a mean over planes — or the only plane of a one-plane recording.  Other
    leading axes (sample) get length 1; trailing axes after x (RGB) are kept.
    """
    planes = np.asarray(planes)
    labels = list(labels)
    if "z" not in labels:
        k = plane if plane is not None and plane < len(planes) else 0
        planes = planes[k : k + 1]
    shape = [planes.shape[0] if a == "z" else 1 for a in labels[:-2]]
    return planes.reshape(*shape, *planes.shape[1:])


def full_planes(
    data: np.ndarray,
    labels: Sequence[str],
    plane: int | None,
    num_planes: int,
    into: np.ndarray | None = None,
) -> np.ndarray:
    """The inverse of :func:`project_planes` for a label mask: ``(Z, Y, X)`` with the planes
    the layout shows taken from ``data`` (the maximum over a sample axis) and the others from
    ``into`` (zeros when not given).
    """
    data = np.asarray(data)
    labels = list(labels)
    lead = [k for k, a in enumerate(labels[:-2]) if a != "z"]
    if lead:
        data = data.max(axis=tuple(lead))
    out = (
        np.zeros((num_planes, *data.shape[-2:]), dtype=data.dtype)
        if into is None
        else np.array(into, copy=True)
    )
    if "z" in labels:
        out[: len(data)] = data[:num_planes]
    else:
        out[plane if plane is not None else 0] = data
    return out
