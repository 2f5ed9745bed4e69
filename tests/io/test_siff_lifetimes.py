"""Lifetime images in one compiled pass equal the per-pixel photon sums divided, bit for bit."""

from __future__ import annotations

import numpy as np
import pytest

import napari_scanimage as nsi
from napari_scanimage.errors import FormatError
from napari_scanimage.io import _siff_kernels  # noqa: F401 - loaded: every job compiles
from napari_scanimage.io.siff import SiffReader
from napari_scanimage.io.siff_lifetimes import lifetime_frames
from napari_scanimage.io.tiff import index_pages
from napari_scanimage.testing.siff import write_siff
from napari_scanimage.testing.tiff import SyntheticLayout

LAYOUT = SyntheticLayout(
    channels=(1, 2), num_planes=2, num_flyback=1, num_volumes=7, height=18, width=30
)


def divided(reader: SiffReader, pages: np.ndarray, scale: float) -> np.ndarray:
    """What lifetime images were made from: int64 sums per pixel, divided as float32."""
    counts, sums = reader.pixel_sums(pages, np.arange(len(pages)), len(pages))
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.true_divide(sums, counts, dtype=np.float32)
    out *= np.float32(scale)
    return out


def same_bits(a: np.ndarray, b: np.ndarray) -> None:
    assert a.shape == b.shape and a.dtype == b.dtype == np.float32
    np.testing.assert_array_equal(np.isnan(a), np.isnan(b))
    ok = ~np.isnan(a)
    np.testing.assert_array_equal(a[ok].view(np.uint32), b[ok].view(np.uint32))


@pytest.mark.parametrize("compressed", [False, True])
def test_lifetime_frames_equal_divided_sums(tmp_path, compressed):
    sim = write_siff(tmp_path / "l.siff", LAYOUT, compressed=compressed, seed=5,
                     photons_per_frame=300.0)  # fmt: skip
    index = index_pages(sim.path)
    pages = np.array([0, 3, 1, 13, 12, len(index) - 1, 4])  # any order, flyback pages too
    scale = 0.0123
    for engine in ("numba", "numpy"):
        with SiffReader(index, engine=engine) as reader:
            out = np.empty((len(pages), LAYOUT.height, LAYOUT.width), np.float32)
            lifetime_frames(reader, pages, scale, out)
            same_bits(out, divided(reader, pages, scale))
            assert np.isnan(out[-1]).all()  # the flyback page: no photons
    with nsi.open_dataset(sim.path) as ds:
        for plane in (None, 1):
            lazy = ds.frames(1, plane=plane, product="lifetime")[2:6]
            with SiffReader(index) as reader:
                pg = ds.selection(1, plane=plane).pages_at(ds.layout, np.arange(2, 6))
                expected = divided(reader, pg.reshape(-1), ds.flim.bin_width_ns)
            same_bits(lazy.reshape(expected.shape), expected)


def test_lifetime_frames_report_corrupt_pages(tmp_path):
    sim = write_siff(tmp_path / "c.siff", LAYOUT, compressed=True, seed=6)
    index = index_pages(sim.path)
    with SiffReader(index, engine="numba") as reader:
        start = int(reader.rasters[2])
    data = bytearray(sim.path.read_bytes())
    data[start : start + 2] = (60000).to_bytes(2, "little")  # raster total ≠ photon count
    sim.path.write_bytes(bytes(data))
    with SiffReader(index_pages(sim.path), engine="numba") as reader:
        out = np.empty((1, LAYOUT.height, LAYOUT.width), np.float32)
        with pytest.raises(FormatError, match="page 2 has an intensity raster"):
            lifetime_frames(reader, np.array([2]), 1.0, out)
