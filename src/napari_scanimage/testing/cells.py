"""A ScanImage recording of cells whose footprints and activity are known: the ground truth
that ROI detection is scored against.

Each plane holds non-overlapping somata (ellipses 8–14 px across by default) on a textured
background.  Most cells fire sparse calcium transients (Poisson events, exponential decay);
the others are bright but silent.  A smooth neuropil field fluctuates slowly, the whole field
can drift (whole-pixel shifts, known per frame), and every pixel is a Poisson photon count.
The movie is written as a real ScanImage TIFF by :func:`~.tiff.write_scanimage_tiff`, one
page at a time, so its size is not limited by memory.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import ndimage, sparse

from .tiff import SyntheticDataset, SyntheticLayout, write_scanimage_tiff

__all__ = ["CellMovie", "Score", "iou_matrix", "write_cell_movie"]

_BOOL = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class Score:
    """How well found ROIs match the active cells (one-to-one matches at IoU ≥ a bound).

    ROIs that match a silent cell count neither for nor against: finding a cell that is
    bright but silent is not an error.
    """

    matched: int
    found: int  # ROIs found, less those on silent cells
    true: int  # active cells

    @property
    def precision(self) -> float:
        """Fraction of the ROIs found that are active cells."""
        return self.matched / self.found if self.found else 1.0

    @property
    def recall(self) -> float:
        """Fraction of the active cells found."""
        return self.matched / self.true if self.true else 1.0

    @property
    def f1(self) -> float:
        """Harmonic mean of precision and recall."""
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


def iou_matrix(a: _BOOL, b: _BOOL) -> npt.NDArray[np.float64]:
    """Intersection over union of every mask of ``a`` (n, …) with every mask of ``b`` (m, …)."""
    fa = sparse.csr_matrix(np.asarray(a, bool).reshape(len(a), -1), dtype=np.float64)
    fb = sparse.csr_matrix(np.asarray(b, bool).reshape(len(b), -1), dtype=np.float64)
    inter = (fa @ fb.T).toarray()
    union = np.asarray(fa.sum(axis=1)) + np.asarray(fb.sum(axis=1)).T - inter
    out: npt.NDArray[np.float64] = np.where(union > 0, inter / np.maximum(union, 1), 0.0)
    return out


@dataclass
class CellMovie:
    """A cell movie written to disk and its truth.

    Attributes
    ----------
    written : SyntheticDataset
        The files (``written.paths[0]`` opens with :func:`~napari_scanimage.open_dataset`).
    masks : bool (n_cells, Y, X)
        Each cell's pixels (in the unmoved frame).
    planes : int (n_cells,)
        The plane of each cell.
    active : bool (n_cells,)
        Cells with at least one transient (the others are silent).
    activity : float32 (n_cells, T)
        Each cell's dF/F over time.
    shifts : int (T, 2)
        Displacement (y, x) of the content of each volume, in pixels.
    """

    written: SyntheticDataset
    masks: _BOOL
    planes: npt.NDArray[np.int64]
    active: _BOOL
    activity: npt.NDArray[np.float32]
    shifts: npt.NDArray[np.int64]

    @property
    def path(self) -> Path:
        """The recording's (first) file."""
        return self.written.paths[0]

    def plane_masks(self, plane: int, *, active_only: bool = True) -> _BOOL:
        """The masks (n, Y, X) of the cells of one plane (the active ones by default)."""
        keep = (self.planes == plane) & (self.active | (not active_only))
        out: _BOOL = self.masks[keep]
        return out

    def score(self, rois: Any, *, iou: float = 0.3, plane: int | None = None) -> Score:
        """Match ROIs (a RoiSet, or bool masks (n, Z, Y, X)) to the active cells one to one
        (best total IoU, each pair ≥ ``iou``); only cells and ROIs of ``plane`` if given.
        """
        from scipy.optimize import linear_sum_assignment

        Z = int(self.planes.max()) + 1 if len(self.planes) else 1
        shape = self.masks.shape[1:]
        if hasattr(rois, "masks"):
            found = rois.masks(shape, Z).toarray().reshape(len(rois), Z, *shape)
        else:
            found = np.asarray(rois, bool).reshape(-1, Z, *shape)
        truth = np.zeros((len(self.masks), Z, *shape), bool)
        truth[np.arange(len(self.masks)), self.planes] = self.masks
        if plane is not None:
            found = found[found[:, plane].any(axis=(1, 2))]
            keep = self.planes == plane
            truth, active = truth[keep], self.active[keep]
        else:
            active = self.active
        overlap = (
            iou_matrix(found, truth)
            if len(found) and len(truth)
            else np.zeros((len(found), len(truth)))
        )
        on_silent = (overlap[:, ~active] >= iou).any(axis=1)
        good = np.where(overlap[:, active] >= iou, overlap[:, active], 0.0)
        rows, cols = linear_sum_assignment(-good) if good.size else ([], [])
        matched = int(sum(good[r, c] > 0 for r, c in zip(rows, cols, strict=True)))
        hit = np.zeros(len(found), bool)
        hit[[r for r, c in zip(rows, cols, strict=True) if good[r, c] > 0]] = True
        unmatched_silent = int(np.count_nonzero(np.asarray(on_silent) & ~hit))
        return Score(matched, len(found) - unmatched_silent, int(active.sum()))


def _place_cells(
    rng: np.random.Generator, shape: tuple[int, int], n: int, diameters: tuple[float, float]
) -> list[tuple[float, float, float, float, float]]:
    """(cy, cx, ry, rx, angle) of up to ``n`` ellipses that do not touch each other."""
    Y, X = shape
    cells: list[tuple[float, float, float, float, float]] = []
    for _ in range(n * 50):
        if len(cells) == n:
            break
        d = rng.uniform(*diameters)
        ratio = rng.uniform(0.8, 1.0)
        ry, rx = d / 2, d / 2 * ratio
        cy, cx = rng.uniform(d, Y - d), rng.uniform(d, X - d)
        if all(np.hypot(cy - c[0], cx - c[1]) > ry + c[2] + 2 for c in cells):
            cells.append((cy, cx, ry, rx, rng.uniform(0, np.pi)))
    return cells


def _ellipse(shape: tuple[int, int], cy: float, cx: float, ry: float, rx: float,
             angle: float) -> npt.NDArray[np.float64]:  # fmt: skip
    """Distance-like radius of each pixel: ≤ 1 inside the ellipse."""
    yy, xx = np.mgrid[: shape[0], : shape[1]].astype(np.float64)
    dy, dx = yy - cy, xx - cx
    c, s = np.cos(angle), np.sin(angle)
    u, v = c * dy + s * dx, -s * dy + c * dx
    out: npt.NDArray[np.float64] = np.sqrt((u / ry) ** 2 + (v / rx) ** 2)
    return out


def write_cell_movie(
    path: str | os.PathLike[str],
    *,
    num_frames: int = 1500,
    size: int = 256,
    num_planes: int = 1,
    cells_per_plane: int | None = None,
    diameters: tuple[float, float] = (8.0, 14.0),
    active_fraction: float = 0.8,
    event_rate_hz: float = 0.15,
    tau_s: float = 0.8,
    brightness: float = 40.0,
    neuropil: float = 0.3,
    drift_px: float = 0.0,
    frame_rate: float = 30.0,
    seed: int = 0,
) -> CellMovie:
    """Write a synthetic recording of cells with known footprints and activity.

    Parameters
    ----------
    path : path
        The TIFF file to write.
    num_frames : int
        Volumes (frames of a planar recording).
    size : int
        Frame edge, pixels (frames are square).
    num_planes : int
        Planes per volume (each with its own cells).
    cells_per_plane : int, optional
        Default: one per 1 100 pixels of frame (60 on 256×256).
    diameters : (float, float)
        Range of cell diameters, pixels.
    active_fraction : float
        Fraction of cells that fire; the rest are silent.
    event_rate_hz, tau_s : float
        Mean rate of calcium events of an active cell and their decay time constant.
    brightness : float
        Mean photons per pixel of the background; resting cells are 1.2–1.8× as bright,
        an event adds 1–3× a cell's resting brightness (decaying).
    neuropil : float
        Amplitude of the slow neuropil fluctuation, relative to the background.
    drift_px : float
        Largest displacement of the field (a slow drift plus jitter), pixels; 0: still.
    frame_rate : float
        Volumes per second (written in the header and timestamps).
    seed : int
        Everything random follows from it.

    Returns
    -------
    CellMovie
    """
    rng = np.random.default_rng(seed)
    Z, T = int(num_planes), int(num_frames)
    n_per = int(cells_per_plane or max(1, size * size // 1100))
    pad = int(np.ceil(drift_px)) + 1
    big = (size + 2 * pad, size + 2 * pad)
    masks, planes, scenes, footprints, rest = [], [], [], [], []
    for z in range(Z):
        tex = ndimage.gaussian_filter(rng.normal(size=big), 8)
        tex = 1 + 0.4 * tex / max(float(np.abs(tex).max()), 1e-9)
        scenes.append(brightness * tex)
        field = ndimage.gaussian_filter(rng.normal(size=big), 25)
        footprints.append(1 + field / max(float(np.abs(field).max()), 1e-9))
        for cy, cx, ry, rx, angle in _place_cells(rng, (size, size), n_per, diameters):
            r = _ellipse(big, cy + pad, cx + pad, ry, rx, angle)
            masks.append(r[pad:-pad, pad:-pad] <= 1.0)
            # (r - 1) · radius: pixels outside the outline; the edge falls off over a pixel
            rest.append(((r - 1) * (ry + rx) / 2, rng.uniform(1.2, 1.8), z))
            planes.append(z)
    n = len(masks)
    active = rng.random(n) < active_fraction
    activity = np.zeros((n, T), np.float32)
    decay = np.exp(-np.arange(T) / (tau_s * frame_rate))
    for i in np.flatnonzero(active):
        events = np.zeros(T)
        k = max(1, rng.poisson(event_rate_hz * T / frame_rate))
        at = rng.integers(0, T, k)
        np.add.at(events, at, rng.uniform(1.0, 3.0, k))
        activity[i] = np.convolve(events, decay)[:T]
    # cells: soft-edged footprints (1 inside, falling to 0 over a pixel), as sparse columns
    cols = [np.clip(0.5 - out, 0, 1).ravel() * level * brightness for out, level, _ in rest]
    A = [sparse.csc_matrix(np.stack([c for c, (_, _, z2) in zip(cols, rest, strict=True)
                                     if z2 == z], axis=1)) if z in planes else None
         for z in range(Z)]  # fmt: skip
    which = [np.flatnonzero(np.asarray(planes) == z) for z in range(Z)]
    slow = ndimage.gaussian_filter1d(rng.normal(size=(Z, T)), 2 * frame_rate, axis=1)
    slow *= neuropil / max(float(np.abs(slow).max()), 1e-9)
    walk = ndimage.gaussian_filter1d(rng.normal(size=(T, 2)).cumsum(axis=0), frame_rate, axis=0)
    walk -= walk.mean(axis=0)
    scale = drift_px / max(float(np.abs(walk).max()), 1e-9)
    shifts = np.round(walk * scale).astype(np.int64) if drift_px > 0 else np.zeros((T, 2), int)
    shifts = np.clip(shifts, -pad, pad)

    def content(g: int) -> npt.NDArray[np.int16]:
        vol, z = divmod(g, Z)
        img = scenes[z] * (1 + slow[z, vol] * footprints[z])
        if A[z] is not None:
            img = img + (A[z] @ (1 + activity[which[z], vol])).reshape(big)
        dy, dx = shifts[vol]
        crop = img[pad - dy : pad - dy + size, pad - dx : pad - dx + size]
        page_rng = np.random.default_rng((seed, g))
        counts: npt.NDArray[np.int16] = np.minimum(page_rng.poisson(crop), 32767).astype(np.int16)
        return counts

    layout = SyntheticLayout(
        num_planes=Z, num_volumes=T, height=size, width=size, frame_rate=frame_rate
    )
    written = write_scanimage_tiff(path, layout, content=content)
    return CellMovie(
        written,
        np.asarray(masks, bool).reshape(n, size, size),
        np.asarray(planes, np.int64),
        active,
        activity,
        shifts,
    )
