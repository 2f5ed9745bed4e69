"""Broken, foreign and incomplete files: typed errors, warnings, and the readable pages."""

from __future__ import annotations

import struct
import warnings

import numpy as np
import pytest
import tifffile

import napari_scanimage as nsi
from napari_scanimage.errors import (
    FormatError,
    IncompleteVolumeWarning,
    SeriesWarning,
    TruncatedFileWarning,
)
from napari_scanimage.io.tiff import index_pages
from napari_scanimage.testing.tiff import SyntheticLayout, write_scanimage_tiff


@pytest.fixture
def planar(tmp_path):
    return write_scanimage_tiff(
        tmp_path / "planar.tif", SyntheticLayout(channels=(1, 2), num_volumes=10)
    )


def _ifd_offsets(path) -> list[int]:
    with tifffile.TiffFile(path) as tif:
        return [p.offset for p in tif.pages]


def test_truncated_last_page_keeps_complete_pages(planar, tmp_path, opened):
    data = planar.paths[0].read_bytes()
    cut = tmp_path / "cut.tif"
    cut.write_bytes(data[:-100])  # inside the last page's pixels
    with (
        pytest.warns(TruncatedFileWarning, match="ends inside page 19"),
        pytest.warns(IncompleteVolumeWarning, match="1 of 2 pages"),
    ):
        ds = opened(cut)
    assert ds.info.num_volumes == 9  # the last frame (2 channel pages) lost one page
    np.testing.assert_array_equal(ds.read(1)[8], planar.page(17))


def test_truncated_inside_an_ifd(planar, tmp_path):
    offsets = _ifd_offsets(planar.paths[0])
    cut = tmp_path / "cut_ifd.tif"
    cut.write_bytes(planar.paths[0].read_bytes()[: offsets[7] + 30])
    with pytest.warns(TruncatedFileWarning, match="7 complete pages"):
        index = index_pages(cut)
    assert len(index) == 7


def test_truncated_exactly_at_a_page_boundary(planar, tmp_path, opened):
    offsets = _ifd_offsets(planar.paths[0])
    cut = tmp_path / "cut_boundary.tif"
    cut.write_bytes(planar.paths[0].read_bytes()[: offsets[12]])
    with pytest.warns(TruncatedFileWarning):
        ds = opened(cut)
    assert ds.info.num_volumes == 6
    np.testing.assert_array_equal(ds.read(0)[5], planar.page(10))


def test_corrupt_ifd_offset_names_file_and_page(planar, tmp_path, opened):
    offsets = _ifd_offsets(planar.paths[0])
    data = bytearray(planar.paths[0].read_bytes())
    with tifffile.TiffFile(planar.paths[0]) as tif:
        n_tags = len(tif.pages[4].tags)
    next_field = offsets[4] + 8 + 20 * n_tags
    assert struct.unpack_from("<Q", data, next_field)[0] == offsets[5]
    struct.pack_into("<Q", data, next_field, 2**40)
    bad = tmp_path / "bad_offset.tif"
    bad.write_bytes(bytes(data))
    with pytest.raises(FormatError, match=r"bad_offset\.tif: page 5: IFD offset"):
        opened(bad)


def test_ifd_loop_is_detected(planar, tmp_path):
    offsets = _ifd_offsets(planar.paths[0])
    data = bytearray(planar.paths[0].read_bytes())
    with tifffile.TiffFile(planar.paths[0]) as tif:
        n_tags = len(tif.pages[6].tags)
    struct.pack_into("<Q", data, offsets[6] + 8 + 20 * n_tags, offsets[2])
    bad = tmp_path / "loop.tif"
    bad.write_bytes(bytes(data))
    with pytest.raises(FormatError, match="loops back"):
        index_pages(bad)


def test_corrupt_header_length(planar, tmp_path, opened):
    data = bytearray(planar.paths[0].read_bytes())
    struct.pack_into("<I", data, 24, 2**31)  # static text length beyond the file
    bad = tmp_path / "bad_header.tif"
    bad.write_bytes(bytes(data))
    with pytest.raises(FormatError, match=r"bad_header\.tif: ScanImage header block declares"):
        opened(bad)


def test_not_scanimage_tiff(tmp_path, opened):
    plain = tmp_path / "plain.tif"
    tifffile.imwrite(plain, np.zeros((3, 8, 8), np.uint8), photometric="minisblack")
    with pytest.raises(FormatError, match="not written by ScanImage"):
        opened(plain)
    text = tmp_path / "notes.tif"
    text.write_text("hello")
    with pytest.raises(FormatError, match="not a TIFF file"):
        opened(text)
    empty = tmp_path / "empty.tif"
    empty.write_bytes(b"")
    with pytest.raises(FormatError):
        opened(empty)
    with pytest.raises(FormatError, match="no such file"):
        opened(tmp_path / "missing.tif", file_paths=[tmp_path / "missing.tif"])


def test_missing_file_in_series_is_named(tmp_path, opened):
    truth = write_scanimage_tiff(
        tmp_path / "run.tif", SyntheticLayout(num_volumes=12, frames_per_file=3)
    )
    assert len(truth.paths) == 4
    truth.paths[2].unlink()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = opened(truth.paths[0])
    messages = [str(w.message) for w in caught if issubclass(w.category, SeriesWarning)]
    assert any("missing file(s) run_00001_00003.tif" in m for m in messages)
    assert any(
        "not continuous" in m
        and "run_00001_00002.tif ends at frame 6" in m
        and "run_00001_00004.tif starts at 10" in m
        for m in messages
    )
    assert ds.info.num_volumes == 9


def test_extra_files_are_named_and_ignored(tmp_path, opened):
    truth = write_scanimage_tiff(
        tmp_path / "run.tif", SyntheticLayout(num_volumes=6, frames_per_file=3)
    )
    (tmp_path / "run_00001_00002 (copy).tif").write_bytes(truth.paths[1].read_bytes())
    with pytest.warns(SeriesWarning, match=r"do not follow the series naming.*\(copy\)"):
        ds = opened(truth.paths[1])
    assert [p.name for p in ds.paths] == ["run_00001_00001.tif", "run_00001_00002.tif"]


def test_explicit_file_list_overrides_discovery(tmp_path, opened):
    truth = write_scanimage_tiff(
        tmp_path / "run.tif", SyntheticLayout(num_volumes=9, frames_per_file=3)
    )
    ds = opened(truth.paths[0], file_paths=truth.paths[:2])
    assert ds.info.num_volumes == 6
    np.testing.assert_array_equal(ds.read(0)[5], truth.page(5))


def test_series_order_is_numeric_beyond_five_digits(tmp_path, opened):
    """ScanImage widens the file counter past 99999: order by number, not by text."""
    truth = write_scanimage_tiff(
        tmp_path / "run.tif", SyntheticLayout(num_volumes=3, frames_per_file=1)
    )
    last = truth.paths[-1].rename(tmp_path / "run_00001_100000.tif")
    (tmp_path / "run_00001_00003.tif").unlink(missing_ok=True)
    truth.paths[1].rename(tmp_path / "run_00001_99999.tif")
    with pytest.warns(SeriesWarning, match="missing"):
        ds = opened(last)
    assert [p.name for p in ds.paths] == [
        "run_00001_00001.tif",
        "run_00001_99999.tif",
        "run_00001_100000.tif",
    ]
    np.testing.assert_array_equal(ds.read(0)[2], truth.page(2))


def test_compressed_pages_fall_back_to_tifffile(tmp_path):
    """Pages that are not plain strips are decoded by tifffile with the same result."""
    truth = write_scanimage_tiff(tmp_path / "src.tif", SyntheticLayout(num_volumes=4))
    with tifffile.TiffFile(truth.paths[0]) as tif:
        pages = [p.asarray() for p in tif.pages]
        description = tif.pages[0].description
    comp = tmp_path / "zlib.tif"
    with tifffile.TiffWriter(comp) as writer:
        for page in pages:
            writer.write(page, compression="zlib", description=description, metadata=None)
    index = index_pages(comp)
    assert not index.direct and len(index) == 4
    from napari_scanimage.io.pages import PageReader

    out = np.empty((4, 32, 48), np.int16)
    with PageReader(index) as reader:
        reader.read_into(np.arange(4), out)
    np.testing.assert_array_equal(out, np.stack(pages))


def test_siff_page_data_past_the_end_is_a_format_error(tmp_path, opened):
    """A page whose photon strip lies outside the file is refused when the file is indexed
    (the compiled loops never see it).
    """
    import tifffile

    from napari_scanimage.testing.siff import write_siff
    from napari_scanimage.testing.tiff import SyntheticLayout as _Layout

    sim = write_siff(
        tmp_path / "bad.siff",
        _Layout(channels=(1,), num_volumes=4, height=16, width=16),
        photons_per_frame=50,
    )
    with tifffile.TiffFile(sim.path) as tif:
        tag = tif.pages[0].tags["StripOffsets"]
        at, size = tag.valueoffset, 8 if tif.is_bigtiff else 4
    data = bytearray(sim.path.read_bytes())
    data[at : at + size] = (1 << 40).to_bytes(size, "little")
    sim.path.write_bytes(bytes(data))
    with pytest.raises(
        nsi.FormatError, match="page 0: its data .* lie outside the file|ends before its first page"
    ):
        opened(sim.path)
