"""Multi-ROI (mesoscope) recordings: field geometry, field views and reads against the ground
truth of synthetic mROI files; registration and traces per field; malformed ROI metadata.
"""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest

import napari_scanimage as nsi
from napari_scanimage.analysis.registration import register
from napari_scanimage.analysis.traces import traces
from napari_scanimage.errors import FormatError, LayoutError, MroiWarning, SelectionError
from napari_scanimage.io.mroi import stitch
from napari_scanimage.testing.mroi import (
    FIELDS,
    FieldSpec,
    roi_groups_json,
    write_mroi_tiff,
)
from napari_scanimage.testing.tiff import write_scanimage_tiff

DISCRETE = (
    FIELDS[0],
    FieldSpec("middle", 32, 40, (0.0, 0.25), (2.0, 2.5), zs=(5.0,)),
    FieldSpec("off", 16, 16, (0.0, 3.0), (1.0, 1.0), enable=False),
    FIELDS[2],
)


@pytest.fixture(scope="module")
def mroi(tmp_path_factory):
    truth = write_mroi_tiff(tmp_path_factory.mktemp("mroi") / "meso.tif")
    with warnings.catch_warnings():
        warnings.simplefilter("error", MroiWarning)  # geometry and timing agree: no warning
        ds = nsi.open_dataset(truth.path)
        _ = ds.fields
    yield ds, truth
    ds.close()


@pytest.fixture(scope="module")
def discrete(tmp_path_factory):
    truth = write_mroi_tiff(
        tmp_path_factory.mktemp("mroi") / "discrete.tif",
        DISCRETE,
        frames_per_slice=2,
        num_volumes=3,
        scanfields_as_list=True,
    )
    with nsi.open_dataset(truth.path) as ds:
        yield ds, truth


def test_geometry_matches_ground_truth(mroi):
    ds, truth = mroi
    assert ds.info.mroi and ds.info.bidirectional
    assert ds.info.frame_shape == truth.page_shape == (124, 64)
    geo = ds.mroi_geometry
    assert (geo.fly_to_lines, geo.fly_to_lines_geometric, geo.fly_to_lines_timing) == (6, 6.0, 6)
    assert geo.plane_zs == (0.0, 5.0, 10.0)
    assert [f.name for f in ds.fields] == ["left", "middle", "right"]
    for f, t in zip(ds.fields, truth.fields, strict=True):
        assert (f.index, f.width, f.height, f.x_offset) == (t.index, t.width, t.height, 0)
        assert f.row_offsets == t.row_offsets == ((0, 54, 100)[t.index],) * 3
        assert f.planes == (0, 1, 2)
        assert f.center_xy_um == pytest.approx(t.center_xy_um, abs=1e-9)
        assert f.size_xy_um == pytest.approx(t.size_xy_um, abs=1e-9)
        assert f.pixel_size_um == pytest.approx(t.pixel_size_um, abs=1e-12)
    assert ds.fields[0].pixel_size_um == pytest.approx((0.9375, 0.9375))
    assert ds.fields[2].pixel_size_um == pytest.approx((1.125, 1.125))
    assert ds.fields[1].top_left_um == pytest.approx((3.75 - 18.75, -15.0))


def test_field_reads_equal_ground_truth(mroi):
    ds, truth = mroi
    T = ds.layout.num_volumes
    for k, f in enumerate(truth.fields):
        view = ds.field(k)
        assert view is ds.field(f.name)  # cached, by index or name
        assert view.selected_field.name == f.name and view.fields == ()
        assert view.info.frame_shape == (f.height, f.width)
        assert view.info.pixel_size_um == pytest.approx(f.pixel_size_um)
        assert view.info.bidirectional and view.layout == ds.layout
        for c in range(2):
            full = ds.read(c, field=k)
            assert full.shape == (T, 3, f.height, f.width) and full.dtype == np.int16
            lazy = ds.frames(c, field=k)
            dask = ds.array(c, field=k)
            for t in (0, 2, T - 1):
                for z in range(3):
                    want = truth.field_frame(k, t, z, c)
                    np.testing.assert_array_equal(full[t, z], want)
                    np.testing.assert_array_equal(lazy[t, z], want)
                    np.testing.assert_array_equal(view.read(c, plane=z, times=[t])[0], want)
                    assert want.min() >= 0  # fly-to lines (-2) never read
            np.testing.assert_array_equal(dask.compute(), full)
    # the whole pages are unchanged by field views
    g = truth.layout.page_index(1, 2, 0, 1)
    page = ds.read(1, plane=2, times=[1])[0]
    np.testing.assert_array_equal(page, truth.page(g))
    assert (page[48:54] == -2).all() and (page[94:100] == -2).all()  # fly-to lines
    assert not page[54:94, 32:].any()  # "middle" is zero-padded on the right
    # time stamps are the recording's
    np.testing.assert_array_equal(ds.field(1).timestamps(0), ds.timestamps(0))


def test_field_absent_on_some_planes(discrete):
    ds, truth = discrete
    assert [f.name for f in ds.fields] == ["left", "middle", "right"]  # "off" is disabled
    assert [f.row_offsets for f in ds.fields] == [(0, 0, 0), (None, 54, None), (54, 100, 54)]
    assert [f.row_offsets for f in truth.fields] == [f.row_offsets for f in ds.fields]
    assert ds.fields[1].planes == (1,) and ds.fields[1].roi_index == 1
    assert ds.fields[2].roi_index == 3
    assert ds.mroi_geometry.fly_to_lines == 6 and ds.mroi_geometry.plane_zs == (0.0, 5.0, 10.0)
    for k in range(3):
        data = ds.read(0, field=k, slice_sample="axis")  # (T, Z, F, Y, X)
        for t in range(3):
            for z in range(3):
                for s in range(2):
                    np.testing.assert_array_equal(data[t, z, s], truth.field_frame(k, t, z, 0, s))
    middle = ds.read(1, field="middle", slice_sample="mean")
    assert not middle[:, [0, 2]].any()  # not scanned there: zeros
    np.testing.assert_array_equal(
        middle[2, 1],
        (truth.field_frame(1, 2, 1, 1, 0).astype(np.float32) + truth.field_frame(1, 2, 1, 1, 1))
        / 2,
    )


def test_geometry_and_timing_disagree(tmp_path):
    truth = write_mroi_tiff(
        tmp_path / "late.tif", timing_fly_to_lines=3, num_planes=1, num_volumes=2, num_flyback=0
    )
    with nsi.open_dataset(truth.path) as ds:
        with pytest.warns(MroiWarning, match="6 fly-to lines .* but 3 from the timing"):
            fields = ds.fields
        assert [f.row_offsets for f in fields] == [(0,), (54,), (100,)]
        assert ds.mroi_geometry.fly_to_lines_timing == 3
        for k in range(3):
            np.testing.assert_array_equal(
                ds.read(1, field=k, times=[1])[0], truth.field_frame(k, 1, 0, 1)
            )


def test_single_roi_and_identical_scanfields(tmp_path):
    one = write_mroi_tiff(
        tmp_path / "one.tif",
        (FIELDS[1],),
        scanfields_as_list=True,
        num_planes=1,
        num_volumes=2,
        num_flyback=0,
    )
    assert json.loads(one.roi_json)["RoiGroups"]["imagingRoiGroup"]["rois"]["name"] == "middle"
    with nsi.open_dataset(one.path) as ds:
        (f,) = ds.fields
        assert f.row_offsets == (0,) and ds.mroi_geometry.fly_to_lines == 6  # from the timing
        np.testing.assert_array_equal(
            ds.read(0, field=0), np.stack([one.field_frame(0, t, 0, 0) for t in range(2)])
        )
    # a roi with two scanfields of the same geometry at z 0 and 5: scanned from 0 to 5 µm
    spec = FieldSpec("deep", 48, 24, (3.0, 0.0), (3.6, 1.8), zs=(0.0, 5.0))
    doc = json.loads(roi_groups_json((FIELDS[0], spec)))
    roi = doc["RoiGroups"]["imagingRoiGroup"]["rois"][1]
    roi["discretePlaneMode"], roi["zs"] = 0, [0.0, 5.0]
    roi["scanfields"] = [roi["scanfields"], dict(roi["scanfields"])]
    two = write_mroi_tiff(
        tmp_path / "two.tif", (FIELDS[0], spec), roi_json=json.dumps(doc), num_volumes=2
    )
    with nsi.open_dataset(two.path) as ds:
        assert ds.fields[1].row_offsets == (54, 54, None)
        np.testing.assert_array_equal(
            ds.read(1, field="deep", times=[1])[0],
            np.stack([two.field_frame(1, 1, z, 1) for z in range(3)]),
        )
    # ... and with different geometry: interpolated through z, refused
    roi["scanfields"][1]["sizeXY"] = [3.0, 1.8]
    bad = write_mroi_tiff(
        tmp_path / "interp.tif",
        (FIELDS[0], spec),
        roi_json=json.dumps(doc),
        num_volumes=1,
        num_flyback=0,
    )
    with nsi.open_dataset(bad.path) as ds, pytest.raises(LayoutError, match="interpolates"):
        _ = ds.fields


def _bad(tmp_path, name, edit=None, fields=FIELDS, raw=None):
    doc = json.loads(roi_groups_json(fields))
    if edit is not None:
        edit(doc["RoiGroups"]["imagingRoiGroup"]["rois"])
    text = raw if raw is not None else json.dumps(doc)
    truth = write_mroi_tiff(
        tmp_path / f"{name}.tif", roi_json=text, num_planes=1, num_volumes=1, num_flyback=0
    )
    return nsi.open_dataset(truth.path)


@pytest.mark.parametrize(
    ("name", "edit", "error", "match"),
    [
        ("no_scanfields", lambda rois: rois[1].pop("scanfields"), FormatError, "no scanfields"),
        (
            "empty_scanfields",
            lambda rois: rois[1].update(scanfields=[]),
            FormatError,
            "no scanfields",
        ),
        (
            "zero_size",
            lambda rois: rois[0]["scanfields"].update(sizeXY=[0, 3.0]),
            FormatError,
            "sizeXY is .* must be positive",
        ),
        (
            "zero_pixels",
            lambda rois: rois[2]["scanfields"].update(pixelResolutionXY=[48, 0]),
            FormatError,
            "pixelResolutionXY",
        ),
        ("no_centre", lambda rois: rois[2]["scanfields"].pop("centerXY"), FormatError, "centerXY"),
        (
            "infinite_centre",
            lambda rois: rois[2]["scanfields"].update(centerXY=[math.inf, 0.0]),
            FormatError,
            "centerXY",
        ),
        (
            "nan_pixels",
            lambda rois: rois[0]["scanfields"].update(pixelResolutionXY=[math.nan, 48]),
            FormatError,
            "pixelResolutionXY",
        ),
        (
            "too_tall",
            lambda rois: rois[1]["scanfields"].update(pixelResolutionXY=[32, 90]),
            LayoutError,
            "lines tall together but pages have 124",
        ),
        (
            "too_wide",
            lambda rois: rois[1]["scanfields"].update(pixelResolutionXY=[80, 40]),
            LayoutError,
            "80 pixels wide but pages are 64",
        ),
    ],
)
def test_bad_roi_groups(tmp_path, name, edit, error, match):
    with _bad(tmp_path, name, edit) as ds:
        assert ds.info.frame_shape == (124, 64)  # the recording opens; whole pages read
        ds.read(0, times=[0])
        with pytest.raises(error, match=match):
            _ = ds.fields
        with pytest.raises(error, match=match):
            ds.read(0, field=0)


def test_missing_roi_groups(tmp_path):
    with (
        _bad(tmp_path, "none", raw="{}") as ds,
        pytest.raises(FormatError, match="imagingRoiGroup"),
    ):
        _ = ds.fields
    with (
        _bad(tmp_path, "all_off", lambda rois: [r.update(enable=0) for r in rois]) as ds,
        pytest.raises(LayoutError, match="no enabled imaging roi"),
    ):
        _ = ds.fields


def test_field_selection_errors(mroi, tmp_path):
    ds, _ = mroi
    with pytest.raises(SelectionError, match="no field named 'nope'.*'left', 'middle'"):
        ds.field("nope")
    with pytest.raises(SelectionError, match="field 3 does not exist"):
        ds.read(0, field=3)
    assert ds.field(-1) is ds.field(2)
    with pytest.raises(SelectionError, match="already a view"):
        ds.field(0).field(1)
    plain = write_scanimage_tiff(tmp_path / "plain.tif", num_volumes=2)
    with nsi.open_dataset(plain.paths[0]) as ds2:
        assert ds2.fields == () and ds2.mroi_geometry is None
        with pytest.raises(SelectionError, match="not a multi-ROI recording"):
            ds2.frames(0, field=0)


def test_stitch_places_fields(mroi):
    ds, truth = mroi
    canvas, origin, pixel = stitch(ds, 1, plane=2, times=[0, 3])
    assert pixel == pytest.approx((0.9375, 0.9375))
    assert origin == pytest.approx((-22.5, -75.0))  # top of "left", left edge of "left"
    assert canvas.shape == (2, 48, 157)  # 45 µm × (−75 … 72 µm)
    left = truth.field_frame(0, 3, 2, 1)
    np.testing.assert_array_equal(canvas[1, :48, :64], left)
    middle = truth.field_frame(1, 0, 2, 1)  # top at y −15 µm = canvas row 8, x −15 = col 64
    np.testing.assert_array_equal(canvas[0, 8:48, 64:96], middle)
    right = truth.field_frame(2, 0, 2, 1)  # 1.125 µm pixels at (−13.5, 18) µm: nearest
    rows = (np.arange(29) * 0.9375 / 1.125).astype(int)
    cols = (np.arange(58) * 0.9375 / 1.125).astype(int)
    np.testing.assert_array_equal(canvas[0, 10:39, 99:157], right[rows[:, None], cols])
    assert not canvas[0, :8, 64:96].any() and not canvas[0, 39:, 99:].any()  # uncovered: 0


# -- registration and traces per field --------------------------------------------------------
MOTION = np.array([[0, 0], [2, -1], [-1, 3], [3, 2], [-2, -2], [1, 0], [0, -3], [-3, 1]])


def _texture(h, w, seed):
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    img = ndimage.gaussian_filter(rng.normal(size=(h + 16, w + 16)), 2.0)
    img = 1000 + 400 * img / img.std()
    return img


def _window(img, h, w, dy, dx):
    """Content displaced by (dy, dx) (down/right), cut from a texture with an 8-pixel margin."""
    return np.round(img[8 - dy : 8 - dy + h, 8 - dx : 8 - dx + w]).astype(np.int16)


@pytest.fixture(scope="module")
def moving(tmp_path_factory):
    textures = [_texture(f.height, f.width, 40 + k) for k, f in enumerate(FIELDS)]
    C = 2

    def pixels(g, k):
        t, c = divmod(g, C)
        f = FIELDS[k]
        img = _window(textures[k], f.height, f.width, *MOTION[t])
        return img if c == 0 else (img // 2 + 10).astype(np.int16)

    folder = tmp_path_factory.mktemp("moving")
    truth = write_mroi_tiff(
        folder / "moving.tif", pixels=pixels, num_planes=1, num_flyback=0, num_volumes=len(MOTION)
    )
    with nsi.open_dataset(truth.path) as ds:
        yield ds, truth, folder


def test_register_and_traces_per_field(moving):
    ds, truth, folder = moving
    T = len(MOTION)
    for k in (0, 2):
        view = ds.field(k)
        f = truth.fields[k]
        frames = np.stack([truth.field_frame(k, t, 0, 0) for t in range(T)])
        # the same algorithm on a plain file holding exactly the field's frames
        plain = write_scanimage_tiff(
            folder / f"field{k}.tif",
            num_volumes=T,
            height=f.height,
            width=f.width,
            content=lambda g, a=frames: a[g],
        )
        with nsi.open_dataset(plain.paths[0]) as ref_ds:
            want = register(ref_ds, subpixel=False, max_shift=4)
            rois = {
                "a": np.zeros((f.height, f.width), bool),
                "b": np.zeros((f.height, f.width), bool),
            }
            rois["a"][5:15, 6:20] = True
            rois["b"][10:20, 20:30] = True
            want_traces = traces(ref_ds, rois, kind="mean")
        reg = register(view, subpixel=False, max_shift=4)
        np.testing.assert_array_equal(reg.shifts, want.shifts)
        np.testing.assert_array_equal(reg.reference, want.reference)
        err = reg.shifts[:, 0] - MOTION
        assert np.abs(err - err[0]).max() <= 1  # the written motion (to a whole pixel)
        # traces: brute force over the ground truth, raw and registered
        got = traces(view, rois, kind="mean")
        np.testing.assert_array_equal(got.values, want_traces.values)
        for name, row in zip(got.names, got.values, strict=True):
            np.testing.assert_allclose(row, frames[:, rois[name]].mean(axis=1), rtol=1e-12)
        red = traces(ds.field(k), rois, channel="Red", registration=reg, shift_mode="integer")
        registered = ds.read("Red", field=k, registration=reg, shift_mode="integer")
        for t in range(T):
            dy, dx = (int(v) for v in reg.shifts[t, 0])
            red_t = truth.field_frame(k, t, 0, 1)
            moved = np.zeros_like(red_t)  # registered[y, x] = frame[y + dy, x + dx], else 0
            ys, xs = np.mgrid[: f.height, : f.width]
            inside = (ys + dy >= 0) & (ys + dy < f.height) & (xs + dx >= 0) & (xs + dx < f.width)
            moved[inside] = red_t[(ys + dy)[inside], (xs + dx)[inside]]
            np.testing.assert_array_equal(registered[t], moved)
            for name, row in zip(red.names, red.values, strict=True):
                assert row[t] == pytest.approx(moved[rois[name]].mean(), rel=1e-12)
