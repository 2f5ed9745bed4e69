"""Page index and page reads against tifffile, for both read paths and both byte orders."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

from napari_scanimage.errors import FormatError
from napari_scanimage.io.pages import PREAD_MIN_BYTES, PageReader, _runs
from napari_scanimage.io.tiff import index_pages


@pytest.mark.parametrize("shape", [(9, 13), (200, 256)])  # memory-map runs / preadv
@pytest.mark.parametrize("byteorder", ["<", ">"])
@pytest.mark.parametrize("bigtiff", [False, True])
def test_reads_match_tifffile(tmp_path, shape, byteorder, bigtiff):
    rng = np.random.default_rng(1)
    data = rng.integers(-30000, 30000, size=(12, *shape)).astype(np.int16)
    path = tmp_path / "x.tif"
    with tifffile.TiffWriter(path, bigtiff=bigtiff, byteorder=byteorder) as writer:
        for k, frame in enumerate(data):  # descriptions of varying length: irregular strides
            writer.write(
                frame, description="d" * (20 + 7 * (k % 3)), metadata=None, photometric="minisblack"
            )
    index = index_pages(path)
    assert index.direct and len(index) == 12 and index.dtype == np.int16
    pages = np.array([11, 0, 3, 4, 5, 6, 6, 2])
    out = np.empty((len(pages), *shape), np.int16)
    with PageReader(index) as reader:
        assert reader._pread is (data[0].nbytes >= PREAD_MIN_BYTES)  # with >= 4 pages
        reader.read_into(pages, out)
        assert reader.description(4) == "d" * 27
    np.testing.assert_array_equal(out, data[pages])


def test_runs_cover_every_offset():
    offsets = np.array([0, 10, 20, 25, 30, 35, 100, 90, 90])
    runs = _runs(offsets)
    got = [offsets[a] + s * k for a, b, s in runs for k in range(b - a)]
    np.testing.assert_array_equal(got, offsets)
    assert (0, 2, 10) in runs and (2, 5, 5) in runs


@pytest.mark.parametrize(
    "shape, pages", [((256, 256), [2]), ((256, 256), [0, 1, 2, 2, 1]), ((16, 16), [2])]
)
def test_file_shortened_while_open(tmp_path, shape, pages):
    """A typed error, not a crash (a mapped page past the end would raise SIGBUS)."""
    data = np.ones((3, *shape), np.uint16)
    path = tmp_path / "grow.tif"
    tifffile.imwrite(path, data, metadata=None, photometric="minisblack")
    index = index_pages(path)
    with PageReader(index) as reader:
        with open(path, "r+b") as fh:
            fh.truncate(int(index.data_offsets[2]) + 100)
        with pytest.raises(FormatError, match="page 2 ends early"):
            reader.read_into(np.array(pages), np.empty((len(pages), *shape), np.uint16))


@pytest.mark.parametrize("shape", [(20, 30), (300, 256)])  # memory map / preadv paths
@pytest.mark.parametrize("compression", [None, "zlib"])  # direct / tifffile paths
@pytest.mark.parametrize("byteorder", ["<", ">"])
def test_row_bands_equal_the_rows_of_whole_pages(tmp_path, shape, compression, byteorder):
    rng = np.random.default_rng(3)
    data = rng.integers(-3000, 3000, (40, *shape), dtype=np.int16)
    path = tmp_path / "pages.tif"
    tifffile.imwrite(
        path,
        data,
        byteorder=byteorder,
        compression=compression,
        photometric="minisblack",
        metadata=None,
    )
    index = index_pages(path)
    assert index.direct == (compression is None)
    pages = np.array([0, 1, 2, 3, 5, 39, 7, 8, 9, 10] + list(range(11, 39)), dtype=np.int64)
    with PageReader(index) as reader:
        for first, count in ((0, shape[0]), (3, 5), (shape[0] - 1, 1), (7, shape[0] - 9)):
            for some in (pages[:1], pages[:5], pages):
                out = np.empty((len(some), count, shape[1]), np.int16)
                reader.read_into(some, out, (first, count))
                np.testing.assert_array_equal(out, data[some, first : first + count])
