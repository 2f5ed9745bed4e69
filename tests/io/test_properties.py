"""Property-based tests (hypothesis) of the readers.

- Header and frame-description parsers take any text: a value or a typed error, never a crash.
- Any ScanImage layout our writer can describe reads back exactly (pages checked against the
  writer's ground truth and against tifffile).
- Any text in the static header, and any cut of a file, opens to correct data or raises a
  :class:`ScanImageError`.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import tifffile
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import napari_scanimage as nsi
from napari_scanimage.errors import ScanImageError
from napari_scanimage.io.scanimage import parse_frame_description, parse_value
from napari_scanimage.testing.tiff import SyntheticLayout, write_scanimage_tiff

FILES = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

matlab_like = st.one_of(
    st.text(max_size=60),
    st.text(alphabet="[]{}';, 0123456789.-+eEInfNaN\"truefals", max_size=60),
)


@given(matlab_like)
@settings(max_examples=500, deadline=None)
def test_parse_value_never_raises(text):
    value = parse_value(text)
    assert value is None or isinstance(value, (bool, int, float, str, list, dict))
    if text.strip() == "":
        assert value is None


@given(
    st.lists(st.integers(-(10**6), 10**6), min_size=1, max_size=8), st.sampled_from([" ", ",", ";"])
)
def test_parse_value_numeric_vectors_exact(values, sep):
    text = "[" + sep.join(str(v) for v in values) + "]"
    assert np.ravel(parse_value(text)).tolist() == values


@given(st.text(max_size=300))
@settings(max_examples=300, deadline=None)
def test_parse_frame_description_never_raises(text):
    out = parse_frame_description(text)
    assert isinstance(out, dict)
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in out.items())


@st.composite
def layouts(draw) -> SyntheticLayout:
    """Any layout the writer can describe; planar layouts have no flyback or samples."""
    planes = draw(st.integers(1, 3))
    volumetric = planes > 1
    return SyntheticLayout(
        channels=draw(st.sampled_from([(1,), (2,), (1, 2), (1, 3, 4)])),
        num_planes=planes,
        frames_per_slice=draw(st.integers(1, 3)) if volumetric else 1,
        num_flyback=draw(st.integers(0, 2)) if volumetric else 0,
        num_volumes=draw(st.integers(1, 3)),
        height=draw(st.integers(1, 12)),
        width=draw(st.integers(1, 12)),
        dtype=draw(st.sampled_from(["int16", "uint16"])),
    )


@given(layouts())
@FILES
def test_any_layout_reads_back_exactly(tmp_path_factory, lay):
    path = tmp_path_factory.mktemp("lay") / "rec.tif"
    truth = write_scanimage_tiff(path, lay)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = nsi.open_dataset(path)
    with ds:
        assert ds.info.num_channels == len(lay.channels)
        assert ds.info.num_planes == lay.num_planes
        assert ds.layout.num_volumes == lay.num_volumes
        assert ds.info.frame_shape == (lay.height, lay.width)
        with tifffile.TiffFile(path) as tif:
            pages = np.stack([p.asarray() for p in tif.pages])
        for c in range(len(lay.channels)):
            got = ds.read(c, slice_sample="axis" if lay.frames_per_slice > 1 else 0)
            if lay.num_planes == 1:
                got = got[:, None, None]
            elif lay.frames_per_slice == 1:
                got = got[:, :, None]
            for t in range(lay.num_volumes):
                for z in range(lay.num_planes):
                    for f in range(lay.frames_per_slice if lay.num_planes > 1 else 1):
                        g = truth.page_index(t, z, f, c)
                        np.testing.assert_array_equal(got[t, z, f], truth.page(g))
                        np.testing.assert_array_equal(got[t, z, f], pages[g])


@pytest.fixture(scope="module")
def small_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("cut") / "rec.tif"
    truth = write_scanimage_tiff(
        path,
        SyntheticLayout(
            channels=(1, 2), num_planes=2, num_flyback=1, num_volumes=3, height=8, width=8
        ),
    )
    return path, truth


@given(st.data())
@FILES
def test_any_cut_opens_complete_volumes_or_refuses(small_file, tmp_path_factory, data):
    path, truth = small_file
    raw = path.read_bytes()
    cut = data.draw(st.integers(0, len(raw)), label="cut")
    target = tmp_path_factory.mktemp("c") / "cut.tif"
    target.write_bytes(raw[:cut])
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = nsi.open_dataset(target)
    except ScanImageError:
        return
    with ds:
        n = ds.layout.num_volumes
        assert 1 <= n <= 3
        got = ds.read(1)
        for t in range(n):
            for z in range(2):
                np.testing.assert_array_equal(got[t, z], truth.page(truth.page_index(t, z, 0, 1)))


@given(st.data())
@FILES
def test_any_header_value_opens_or_refuses(small_file, tmp_path_factory, data):
    """Replace one value of the static header text (same length, so offsets hold) by any
    printable text: the file opens with consistent data or raises a ScanImageError.
    """
    path, truth = small_file
    raw = bytearray(path.read_bytes())
    text_start = 32
    n_text = int.from_bytes(raw[24:28], "little")
    text = raw[text_start : text_start + n_text].decode("ascii")
    lines = [i for i, line in enumerate(text.split("\n")) if " = " in line]
    k = data.draw(st.sampled_from(lines), label="line")
    parts = text.split("\n")
    key, _, value = parts[k].partition(" = ")
    new = data.draw(
        st.text(
            alphabet=st.characters(min_codepoint=32, max_codepoint=126),
            min_size=len(value),
            max_size=len(value),
        ),
        label="value",
    )
    parts[k] = f"{key} = {new}"
    raw[text_start : text_start + n_text] = "\n".join(parts).encode("ascii")
    target = tmp_path_factory.mktemp("h") / "head.tif"
    target.write_bytes(bytes(raw))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = nsi.open_dataset(target)
            with ds:
                for c in range(ds.info.num_channels):
                    arr = ds.read(c)
                    assert arr.shape[0] == ds.layout.num_volumes
                    assert arr.shape[-2:] == (8, 8)
                    # every page read is one of the file's pages
                    flat = arr.reshape(-1, 8, 8)
                    pages = {truth.page(g).tobytes() for g in range(truth.total_pages)}
                    assert all(f.tobytes() in pages for f in flat)
    except ScanImageError:
        pass
