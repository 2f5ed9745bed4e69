"""The multi-ROI sample: three fields cut from one tissue canvas, written as a multi-ROI
recording; split and stitched, the fields give back the canvas where they were cut.
"""

from __future__ import annotations

import numpy as np
import pytest

import napari_scanimage as nsi
from napari_scanimage import sample
from napari_scanimage.io.mroi import stitch


@pytest.fixture(scope="module")
def mroi(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("NAPARI_SCANIMAGE_CACHE", str(tmp_path_factory.mktemp("cache")))
        with nsi.open_dataset(sample.sample_path("mroi_3field")) as ds:
            yield ds


def test_fields_are_the_canvas_where_they_were_cut(mroi):
    canvas_layout = sample.SAMPLES["mroi_3field"]
    tissue = sample._Tissue(canvas_layout, seed=5)
    assert [f.name for f in mroi.fields] == [f[0] for f in sample.MROI_FIELDS]
    assert "(3 multi-ROI fields)" in repr(mroi) and "field 'left'" in repr(mroi.field(0))
    left_edge = min(left for _, _, left, _, _ in sample.MROI_FIELDS)
    top_edge = min(top for _, top, _, _, _ in sample.MROI_FIELDS)
    for t, z, c in ((0, 0, 0), (7, 1, 0), (29, 1, 1)):
        g = canvas_layout.page_index(t, z, 0, c)
        truth = tissue.page(g)
        for k, (_, top, left, h, w) in enumerate(sample.MROI_FIELDS):
            got = mroi.read(c, plane=z, times=[t], field=k)[0]
            np.testing.assert_array_equal(got, truth[top : top + h, left : left + w])
        # stitched at 1 µm per pixel: every field at its place on one canvas
        canvas, origin_um, pixel_um = stitch(mroi, c, plane=z, times=[t])
        assert pixel_um == (1.0, 1.0)
        canvas = canvas.reshape(canvas.shape[-2:])
        for _, top, left, h, w in sample.MROI_FIELDS:
            y, x = top - top_edge, left - left_edge
            np.testing.assert_array_equal(
                canvas[y : y + h, x : x + w], truth[top : top + h, left : left + w]
            )
    # fields 1 µm apart in the sample are 1 µm apart in their positions
    first, second = mroi.fields[0], mroi.fields[1]
    gap = second.top_left_um[1] - (first.top_left_um[1] + first.width * first.pixel_size_um[1])
    assert gap == pytest.approx(
        sample.MROI_FIELDS[1][2] - (sample.MROI_FIELDS[0][2] + sample.MROI_FIELDS[0][4])
    )
