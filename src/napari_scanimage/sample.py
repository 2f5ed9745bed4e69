"""Sample recordings generated on first use into a cache folder.

Functions
---------
sample_path
    Path of a sample recording, written (once) with :mod:`napari_scanimage.testing.tiff`
    (``volume_2ch``: ScanImage TIFF) or :mod:`napari_scanimage.testing.siff`
    (``flim_2ch``: planar ScanImage-FLIM ``.siff``) or :mod:`napari_scanimage.testing.mroi`
    (``mroi_3field``: a multi-ROI ScanImage TIFF with three fields).
cache_dir
    Folder holding generated samples (``$NAPARI_SCANIMAGE_CACHE`` overrides it).

The content looks like tissue: cells with calcium-like transients in a green channel, a static
red structural channel, mild motion and shot noise.  In the FLIM sample the green cell bodies
have a 2.6 ns lifetime and the green background 0.9 ns; red photons have 1.6 ns.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import ndimage

from ._atomic import replacing
from .testing.siff import write_siff
from .testing.tiff import SyntheticLayout, write_scanimage_tiff

__all__ = ["SAMPLES", "active_cells", "cache_dir", "sample_path"]

SAMPLES = {
    "volume_2ch": SyntheticLayout(
        channels=(1, 2),
        channel_names=("Green", "Red"),
        num_planes=4,
        frames_per_slice=2,
        num_flyback=1,
        num_volumes=40,
        height=128,
        width=128,
        frame_rate=60.0,
        z_step_um=10.0,
        fov_um=300.0,
        bidirectional=True,
    ),
    "flim_2ch": SyntheticLayout(
        channels=(1, 2),
        channel_names=("Green", "Red"),
        num_volumes=360,
        height=256,
        width=256,
        frame_rate=30.0,
        fov_um=250.0,
        bidirectional=True,
    ),
    # multi-ROI: three fields cut from one 2-plane tissue canvas at 1 µm per pixel
    "mroi_3field": SyntheticLayout(
        channels=(1, 2),
        channel_names=("Green", "Red"),
        num_planes=2,
        num_flyback=1,
        num_volumes=30,
        height=150,
        width=330,
        frame_rate=30.0,
        z_step_um=10.0,
        bidirectional=True,
    ),
}
FLIM_TAUS_NS = ((0.9, 2.6), (1.6,))  # green: background, cell bodies; red
# (name, top, left, height, width) of the multi-ROI sample's fields on its canvas, pixels
MROI_FIELDS = (("left", 10, 4, 128, 96), ("middle", 0, 112, 150, 96), ("right", 30, 224, 90, 100))


def cache_dir() -> Path:
    """The folder sample recordings are written to (created when missing).

    ``$NAPARI_SCANIMAGE_CACHE`` when set, else ``napari-scanimage`` in ``$XDG_CACHE_HOME``
    (default ``~/.cache``).
    """
    env = os.environ.get("NAPARI_SCANIMAGE_CACHE")
    base = Path(env) if env else Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    folder = base if env else base / "napari-scanimage"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


FloatArray = npt.NDArray[np.float64]


class _Tissue:
    """Deterministic page content for a sample layout."""

    def __init__(self, layout: SyntheticLayout, seed: int = 7):
        rng = np.random.default_rng(seed)
        self.layout = layout
        H, W, Z = layout.height, layout.width, layout.num_planes
        n_samples = layout.num_volumes * layout.frames_per_slice + 1
        # per plane: blobs (cells, Y·X), traces (cells, samples), baseline (cells,)
        self.cells: list[tuple[FloatArray, FloatArray, FloatArray]] = []
        self.centres: list[tuple[FloatArray, ...]] = []  # per plane: (cy, cx, radius) of each cell
        yy, xx = np.mgrid[:H, :W]
        background = ndimage.gaussian_filter(rng.normal(size=(Z, H, W)), (0, 6, 6))
        self.background: FloatArray = 300 + 2000 * (background - background.min()) / np.ptp(
            background
        )
        for _plane in range(Z):
            n = 25
            cy, cx = rng.uniform(8, H - 8, n), rng.uniform(8, W - 8, n)
            radius = rng.uniform(2.5, 4.5, n)
            blobs = np.exp(
                -(
                    ((yy[None] - cy[:, None, None]) ** 2 + (xx[None] - cx[:, None, None]) ** 2)
                    / (2 * radius[:, None, None] ** 2)
                )
            )
            spikes = rng.random((n, n_samples)) < 0.03
            kernel = np.exp(-np.arange(40) / 8.0)
            traces = np.array([np.convolve(s, kernel)[:n_samples] for s in spikes]) * 3000
            self.cells.append((blobs.reshape(n, -1), traces, rng.uniform(800, 2000, n)))
            self.centres.append((cy, cx, radius))
        drift = rng.normal(size=(layout.num_volumes + 1, 2))
        self.shifts = np.round(ndimage.gaussian_filter1d(drift, 3, axis=0) * 4).astype(int)
        self.rng_seed = seed

    def page(self, g: int) -> npt.NDArray[Any]:
        lay = self.layout
        C, F, Z = lay.num_channels, lay.frames_per_slice, lay.num_planes
        t, rest = divmod(g, lay.pages_per_volume)
        frame, c = divmod(rest, C)
        z, f = divmod(frame, F)
        H, W = lay.height, lay.width
        rng = np.random.default_rng((self.rng_seed, g))
        if z >= Z:  # flyback frame: dim, blurred
            return (rng.poisson(200, (H, W))).astype(lay.dtype)
        blobs, traces, baseline = self.cells[z]
        if c == 0:
            weights = baseline * 0.6 + traces[:, t * F + f]
            image: FloatArray = self.background[z] * 0.5 + (weights @ blobs).reshape(H, W)
        else:
            image = self.background[z] + (baseline @ blobs).reshape(H, W) * 0.8
        image = np.roll(image, tuple(self.shifts[t]), axis=(0, 1))
        return np.minimum(rng.poisson(np.maximum(image, 0) * 0.5) * 2, 32000).astype(lay.dtype)


class _FlimTissue:
    """Expected photons per pixel and page of a planar 2-channel FLIM sample: Gaussian cells,
    green calcium transients (spikes * exponential kernel), static red, smooth drift of up to 3
    pixels.  About 0.08 photons per pixel and frame on average, a few in active cells.

    Ground truth: ``cell_labels`` (Y, X) (0 background, k: cell k-1), ``lifetime_map`` (1 in
    cell bodies), ``traces`` (cells, T) added green rate at a cell's centre, ``shifts`` (T, 2).
    """

    def __init__(self, layout: SyntheticLayout, seed: int = 11, n_cells: int = 60):
        rng = np.random.default_rng(seed)
        self.layout = layout
        T, H, W = layout.num_volumes, layout.height, layout.width
        yy, xx = np.mgrid[:H, :W]
        cy, cx = rng.uniform(10, H - 10, n_cells), rng.uniform(10, W - 10, n_cells)
        radius = rng.uniform(4.0, 6.5, n_cells)
        self.centres: list[tuple[FloatArray, ...]] = [(cy, cx, 0.6 * radius)]  # one plane
        d2 = (yy[None] - cy[:, None, None]) ** 2 + (xx[None] - cx[:, None, None]) ** 2
        blobs = np.exp(-d2 / (2 * (0.6 * radius[:, None, None]) ** 2))  # 0.25 at the edge
        self.cell_labels = np.where(blobs.max(0) > 0.25, blobs.argmax(0) + 1, 0)
        self.lifetime_map = (self.cell_labels > 0).astype(np.uint8)  # index into FLIM_TAUS_NS
        texture = ndimage.gaussian_filter(rng.normal(size=(2, H, W)), (0, 8, 8))
        texture = (texture - texture.min()) / np.ptp(texture)
        blobs = blobs.reshape(n_cells, -1)
        self.cell, self.pixel = np.nonzero(blobs > 1e-3)  # sparse blobs: a fast rate()
        self.weight = blobs[self.cell, self.pixel]
        self.baseline = rng.uniform(0.25, 0.45, n_cells)
        spikes = rng.random((n_cells, T)) < 0.5 / layout.frame_rate  # 0.5 spikes/s
        kernel = np.exp(-np.arange(int(3 * layout.frame_rate)) / (0.6 * layout.frame_rate))
        amplitude = rng.uniform(0.6, 1.2, (n_cells, 1))
        self.traces = np.array([np.convolve(s, kernel)[:T] for s in spikes]) * amplitude
        self.green: FloatArray = 0.02 + 0.05 * texture[0] + (self.baseline @ blobs).reshape(H, W)
        self.red: FloatArray = 0.02 + 0.05 * texture[1] + 0.45 * blobs.sum(0).reshape(H, W)
        drift = ndimage.gaussian_filter1d(rng.normal(size=(T, 2)), 12, axis=0)
        self.shifts = np.round(drift * (3.0 / np.abs(drift).max(0))).astype(np.int64)

    def rate(self, g: int) -> FloatArray:
        """Expected photon counts (Y, X) of page g (unshifted; write_siff applies the drift)."""
        t, c = divmod(g, self.layout.num_channels)  # planar: one page per channel and volume
        if c:
            return self.red
        extra = np.bincount(self.pixel, self.weight * self.traces[self.cell, t],
                            minlength=self.green.size)  # fmt: skip
        return self.green + extra.reshape(self.green.shape)


def active_cells(
    name: str = "volume_2ch", count: int = 4, plane: int = 0
) -> list[tuple[float, float, float]]:
    """(y, x, radius) of the ``count`` most active cells of a sample's ``plane`` (for demo ROIs),
    away from the frame edges.
    """
    layout = SAMPLES[name]
    tissue: _Tissue | _FlimTissue
    if name == "flim_2ch":
        tissue = _FlimTissue(layout)
        traces = tissue.traces
    else:
        tissue = _Tissue(layout)
        traces = tissue.cells[plane][1]
    cy, cx, radius = tissue.centres[plane]
    margin = 12
    inside = (
        (cy > margin) & (cy < layout.height - margin) & (cx > margin) & (cx < layout.width - margin)
    )
    order = [k for k in np.argsort(-traces.std(axis=1)) if inside[k]]
    chosen: list[int] = []
    for k in order:  # skip cells overlapping one already chosen
        if all(np.hypot(cy[k] - cy[j], cx[k] - cx[j]) > radius[k] + radius[j] for j in chosen):
            chosen.append(k)
        if len(chosen) == count:
            break
    return [(float(cy[k]), float(cx[k]), float(radius[k])) for k in chosen]


def _write_tiff(path: str, layout: SyntheticLayout) -> None:
    write_scanimage_tiff(path, layout, content=_Tissue(layout).page)


def _write_flim(path: str, layout: SyntheticLayout) -> None:
    tissue = _FlimTissue(layout)
    write_siff(path, layout, rate_map=tissue.rate, lifetime_map=tissue.lifetime_map,
               motion=tissue.shifts, taus_ns=FLIM_TAUS_NS, irf_offset_ns=0.5, keep_truth=False,
               seed=11)  # fmt: skip


def _write_mroi(path: str, canvas: SyntheticLayout) -> None:
    """Fields of a tissue canvas (1 µm per pixel), written as a multi-ROI recording whose
    fields lie where they were cut from.
    """
    import functools

    from .testing.mroi import OBJECTIVE_RESOLUTION, FieldSpec, write_mroi_tiff

    page = functools.lru_cache(maxsize=4)(_Tissue(canvas, seed=5).page)
    deg = 1.0 / OBJECTIVE_RESOLUTION  # one pixel (1 µm) in scan degrees
    cy, cx = canvas.height / 2, canvas.width / 2
    specs = tuple(
        FieldSpec(
            name, w, h, ((left + w / 2 - cx) * deg, (top + h / 2 - cy) * deg), (w * deg, h * deg)
        )
        for name, top, left, h, w in MROI_FIELDS
    )

    def pixels(g: int, k: int) -> npt.NDArray[Any]:
        _, top, left, h, w = MROI_FIELDS[k]
        return page(g)[top : top + h, left : left + w]

    write_mroi_tiff(
        path,
        specs,
        pixels=pixels,
        fly_to_lines=8,
        channels=canvas.channels,
        channel_names=canvas.channel_names,
        num_planes=canvas.num_planes,
        num_flyback=canvas.num_flyback,
        num_volumes=canvas.num_volumes,
        frame_rate=canvas.frame_rate,
        z_step_um=canvas.z_step_um,
        bidirectional=canvas.bidirectional,
    )


_FILES = {
    "volume_2ch": ("volume_2ch_v1.tif", _write_tiff),
    "flim_2ch": ("flim_2ch_v1.siff", _write_flim),
    "mroi_3field": ("mroi_3field_v1.tif", _write_mroi),
}


def sample_path(name: str = "volume_2ch") -> Path:
    """Path of sample ``name``; written on first use (atomically, so never half a file)."""
    layout = SAMPLES[name]
    filename, write = _FILES[name]
    target = cache_dir() / filename
    if not target.exists():
        with replacing(target) as tmp:
            write(tmp, layout)
    return target
