"""Sample recordings generated on first use into a cache folder.

Functions
---------
sample_path
    Path of a sample recording, written (once) with :mod:`napari_scanimage.io.synthetic`.
cache_dir
    Folder holding generated samples (``$NAPARI_SCANIMAGE_CACHE`` overrides it).

The content looks like tissue: cells with calcium-like transients in a green channel, a static
red structural channel, mild motion and shot noise.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
from scipy import ndimage

from .io.synthetic import SyntheticLayout, write_scanimage_tiff

__all__ = ["SAMPLES", "cache_dir", "sample_path"]

SAMPLES = {
    "volume_2ch": SyntheticLayout(
        channels=(1, 2), channel_names=("Green", "Red"), num_planes=4, frames_per_slice=2,
        num_flyback=1, num_volumes=40, height=128, width=128, frame_rate=60.0, z_step_um=10.0,
        fov_um=300.0, bidirectional=True),
}


def cache_dir() -> Path:
    env = os.environ.get("NAPARI_SCANIMAGE_CACHE")
    base = Path(env) if env else Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    folder = base if env else base / "napari-scanimage"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


class _Tissue:
    """Deterministic page content for a sample layout."""

    def __init__(self, layout: SyntheticLayout, seed: int = 7):
        rng = np.random.default_rng(seed)
        self.layout = layout
        H, W, Z = layout.height, layout.width, layout.num_planes
        n_samples = layout.num_volumes * layout.frames_per_slice + 1
        self.cells = []
        yy, xx = np.mgrid[:H, :W]
        background = ndimage.gaussian_filter(rng.normal(size=(Z, H, W)), (0, 6, 6))
        self.background = 300 + 2000 * (background - background.min()) / np.ptp(background)
        for _plane in range(Z):
            n = 25
            cy, cx = rng.uniform(8, H - 8, n), rng.uniform(8, W - 8, n)
            radius = rng.uniform(2.5, 4.5, n)
            blobs = np.exp(-(((yy[None] - cy[:, None, None]) ** 2 + (xx[None] - cx[:, None, None])
                              ** 2) / (2 * radius[:, None, None] ** 2)))
            spikes = rng.random((n, n_samples)) < 0.03
            kernel = np.exp(-np.arange(40) / 8.0)
            traces = np.array([np.convolve(s, kernel)[:n_samples] for s in spikes]) * 3000
            self.cells.append((blobs.reshape(n, -1), traces, rng.uniform(800, 2000, n)))
        drift = rng.normal(size=(layout.num_volumes + 1, 2))
        self.shifts = np.round(ndimage.gaussian_filter1d(drift, 3, axis=0) * 4).astype(int)
        self.rng_seed = seed

    def page(self, g: int) -> np.ndarray:
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
            image = self.background[z] * 0.5 + (weights @ blobs).reshape(H, W)
        else:
            image = self.background[z] + (baseline @ blobs).reshape(H, W) * 0.8
        image = np.roll(image, tuple(self.shifts[t]), axis=(0, 1))
        return np.minimum(rng.poisson(np.maximum(image, 0) * 0.5) * 2, 32000).astype(lay.dtype)


def sample_path(name: str = "volume_2ch") -> Path:
    """Path of sample ``name``; written on first use (atomically, so never half a file)."""
    layout = SAMPLES[name]
    target = cache_dir() / f"{name}_v1.tif"
    if not target.exists():
        tissue = _Tissue(layout)
        fd, tmp = tempfile.mkstemp(suffix=".tif", dir=target.parent)
        os.close(fd)
        try:
            write_scanimage_tiff(tmp, layout, content=tissue.page)
            os.replace(tmp, target)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    return target
