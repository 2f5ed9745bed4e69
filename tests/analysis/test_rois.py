"""ROI model: rasterising outlines (against scikit-image / brute force), masks per plane, JSON and
ImageJ files.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import roifile
from skimage import draw

import napari_scanimage as nsi
from napari_scanimage.analysis.rois import Roi, RoiSet
from napari_scanimage.analysis.shapes import rasterise
from napari_scanimage.errors import FormatError, ScanImageWarning, SelectionError

Y, X, Z = 40, 50, 3


def test_polygon_matches_scikit_image():
    rng = np.random.default_rng(1)
    for _ in range(20):
        centre = rng.uniform(8, 32, 2)
        angles = np.sort(rng.uniform(0, 2 * np.pi, 7))
        radii = rng.uniform(3, 12, 7)
        verts = centre + np.c_[radii * np.sin(angles), radii * np.cos(angles)] + 0.013
        want = draw.polygon2mask((Y, X), verts)
        np.testing.assert_array_equal(rasterise("polygon", verts, (Y, X)), want)


def test_rectangle_border_and_outside():
    rect = np.array([[-3.5, 45.5], [-3.5, 60.5], [4.5, 60.5], [4.5, 45.5]])  # off the corner
    m = rasterise("rectangle", rect, (Y, X))
    want = np.zeros((Y, X), bool)
    want[0:5, 46:50] = True
    np.testing.assert_array_equal(m, want)
    assert not rasterise("polygon", rect + 100, (Y, X)).any()


def test_ellipse_matches_scikit_image_rotated():
    cy, cx, ry, rx, theta = 20.3, 24.7, 6.2, 11.4, 0.4
    # napari's box corners of an ellipse: centre ± the half-axes
    a = np.array([-np.sin(theta), np.cos(theta)]) * rx  # x half-axis rotated by theta
    b = np.array([np.cos(theta), np.sin(theta)]) * ry
    c = np.array([cy, cx])
    corners = np.array([c - a - b, c + a - b, c + a + b, c - a + b])
    got = rasterise("ellipse", corners, (Y, X))
    rr, cc = draw.ellipse(cy, cx, ry, rx, shape=(Y, X), rotation=theta)
    want = np.zeros((Y, X), bool)
    want[rr, cc] = True
    assert (got != want).sum() <= 2  # boundary ties only
    assert abs(got.sum() - np.pi * rx * ry) < 0.05 * np.pi * rx * ry


def test_path_with_width_brute_force():
    verts = np.array([[5.2, 3.1], [5.2, 30.3], [25.7, 30.3]])
    got = rasterise("path", verts, (Y, X), width=3.0)
    yy, xx = np.mgrid[:Y, :X]
    near = (np.abs(yy - 5.2) <= 1.5) & (xx >= 3.1 - 1.5) & (xx <= 30.3 + 1.5)
    near |= (np.abs(xx - 30.3) <= 1.5) & (yy >= 5.2 - 1.5) & (yy <= 25.7 + 1.5)
    # the square corners of `near` are farther than 1.5 from the path ends: remove them
    d_end = np.minimum(np.hypot(yy - 5.2, xx - 3.1), np.hypot(yy - 25.7, xx - 30.3))
    near &= ~((xx < 3.1) & (d_end > 1.5)) & ~((yy > 25.7) & (d_end > 1.5))
    corner = (yy < 5.2) & (xx > 30.3) & (np.hypot(yy - 5.2, xx - 30.3) > 1.5)
    near &= ~corner
    np.testing.assert_array_equal(got, near)


def make_set():
    rect = np.array([[2.5, 3.5], [2.5, 9.5], [7.5, 9.5], [7.5, 3.5]])
    tri = np.array([[10.2, 10.1], [20.3, 12.2], [14.1, 25.7]])
    path = np.array([[30.0, 5.0], [30.0, 20.0]])
    blob = np.zeros((Z, Y, X), bool)
    blob[2, 30:35, 30:38] = True
    return RoiSet(
        [
            Roi("rect", "rectangle", rect, None, "#ff0000"),
            Roi("tri", "polygon", tri, 1, "#00ff00"),
            Roi("line", "path", path, 0, "#0000ff", width=2.0),
            Roi("blob", "mask", None, 2, "#ffffff", mask=blob),
        ],
        frame_shape=(Y, X),
        num_planes=Z,
        source="rec.tif",
    )


def test_masks_per_plane_and_all_planes():
    rois = make_set()
    m = rois.masks((Y, X), Z).toarray().reshape(4, Z, Y, X)
    rect = rasterise("rectangle", rois["rect"].vertices, (Y, X))
    assert rect.sum() == 5 * 6
    for z in range(Z):
        np.testing.assert_array_equal(m[0, z], rect)  # all planes
    assert m[1, 1].sum() > 0 and m[1, [0, 2]].sum() == 0
    assert m[2, 0].sum() == 16 * 3 + 2 and m[2, 1:].sum() == 0  # 3 rows + round caps
    np.testing.assert_array_equal(m[3], rois["blob"].mask)
    np.testing.assert_array_equal(rois.mask("tri", (Y, X), Z), m[1])
    with pytest.raises(SelectionError, match="plane 2; the recording has 2"):
        RoiSet([rois["blob"].__class__("p", "polygon", rois["tri"].vertices, 2)]).masks((Y, X), 2)


def test_traces_from_roiset_equal_dict_masks(tmp_path):
    from napari_scanimage.testing.tiff import SyntheticLayout, write_scanimage_tiff

    layout = SyntheticLayout(
        channels=(1,), num_planes=Z, num_flyback=0, num_volumes=5, height=Y, width=X
    )
    written = write_scanimage_tiff(tmp_path / "rec.tif", layout)
    rois = make_set()
    dense = rois.masks((Y, X), Z).toarray().reshape(4, Z, Y, X)
    with nsi.open_dataset(written.paths[0]) as ds:
        a = nsi.traces(ds, rois, kind="sum")
        b = nsi.traces(ds, dict(zip(rois.names, dense, strict=True)), kind="sum")
        frames = ds.read(0).astype(np.float64)
    np.testing.assert_array_equal(a.values, b.values)
    np.testing.assert_array_equal(a.values[1], frames[:, dense[1]].sum(axis=1))


def test_save_load_round_trip_exact(tmp_path):
    rois = make_set()
    path = tmp_path / "rois.json"
    rois.save(path)
    doc = json.loads(path.read_text())
    assert doc["format"] == "napari-scanimage-rois" and doc["version"] == 1
    assert doc["frame_shape"] == [Y, X] and doc["source"] == "rec.tif"
    back = RoiSet.load(path, frame_shape=(Y, X), num_planes=Z)
    assert back.names == rois.names and back.planes == rois.planes
    assert back.colours == rois.colours and [r.width for r in back] == [r.width for r in rois]
    for a, b in zip(rois, back, strict=True):
        assert a.kind == b.kind
        if a.vertices is not None:
            assert np.array_equal(a.vertices, b.vertices)  # bit-exact floats
    assert (back.masks((Y, X), Z) != rois.masks((Y, X), Z)).nnz == 0
    assert [p.name for p in tmp_path.iterdir()] == ["rois.json"]  # no temporary left


def test_load_refuses_other_frames_and_bad_files(tmp_path):
    path = RoiSet.from_masks({"x": np.ones((10, 10), bool)}).save(tmp_path / "r.json")
    with pytest.raises(SelectionError, match="drawn on 10×10 frames; this recording has 40×50"):
        RoiSet.load(path, frame_shape=(Y, X))
    make_set().save(tmp_path / "s.json")
    with pytest.raises(SelectionError, match="tri, blob .*1 plane"):
        RoiSet.load(tmp_path / "s.json", frame_shape=(Y, X), num_planes=1)
    (tmp_path / "bad.json").write_bytes(b"\x00\x01 not json")
    with pytest.raises(FormatError, match="not JSON"):
        RoiSet.load(tmp_path / "bad.json")
    (tmp_path / "other.json").write_text('{"a": 1}')
    with pytest.raises(FormatError, match="not a napari-scanimage ROI file"):
        RoiSet.load(tmp_path / "other.json")
    doc = json.loads((tmp_path / "s.json").read_text())
    doc["version"] = 99
    (tmp_path / "new.json").write_text(json.dumps(doc))
    with pytest.raises(FormatError, match="version 99"):
        RoiSet.load(tmp_path / "new.json")
    doc["version"] = 1
    doc["rois"][0].pop("vertices")
    (tmp_path / "broken.json").write_text(json.dumps(doc))
    with pytest.raises(FormatError, match="malformed"):
        RoiSet.load(tmp_path / "broken.json")
    with pytest.raises(SelectionError, match="unique"):
        RoiSet([Roi("a", "polygon", np.zeros((3, 2))), Roi("a", "polygon", np.zeros((3, 2)))])


def test_from_layer_shapes_and_labels():
    verts = [
        np.array([[0, 1, 2.5, 3.5], [0, 1, 2.5, 9.5], [0, 1, 7.5, 9.5], [0, 1, 7.5, 3.5]]),
        np.array([[0, 0, 30.0, 5.0], [0, 0, 30.0, 20.0]]),
    ]
    rois = RoiSet.from_layer(
        verts,
        shape_types=["rectangle", "path"],
        edge_widths=[1, 2],
        planes=[1, None],
        colours=[[1, 0, 0, 1], "#00ff00"],
        frame_shape=(Y, X),
        num_planes=Z,
    )
    assert rois.names == ["roi 1", "roi 2"] and rois.planes == [1, None]
    assert rois.colours == ["#ff0000", "#00ff00"] and rois[1].width == 2.0
    m = rois.masks((Y, X), Z).toarray().reshape(2, Z, Y, X)
    assert m[0, 1].sum() == 30 and m[0, [0, 2]].sum() == 0 and m[1].sum() == (3 * 16 + 2) * 3
    with pytest.raises(SelectionError, match="'point'"):
        RoiSet.from_layer([verts[0]], shape_types=["point"])
    labels = np.zeros((Y, X), np.int32)
    labels[1:4, 1:4] = 3
    labels[10:12, 20:30] = 7
    two_d = RoiSet.from_layer(labels, frame_shape=(Y, X), num_planes=Z)
    assert two_d.names == ["label 3", "label 7"] and two_d.planes == [None, None]
    assert two_d.masks((Y, X), Z).sum() == (9 + 20) * Z
    stack = np.zeros((4, Z, Y, X), np.uint8)  # (t, z, y, x): painted at t=2, plane 1
    stack[2, 1, 5:8, 5:8] = 1
    vol = RoiSet.from_layer(stack, frame_shape=(Y, X), num_planes=Z)
    assert vol.planes == [1]
    dense = vol.masks((Y, X), Z).toarray().reshape(Z, Y, X)
    assert dense[1, 5:8, 5:8].all() and dense.sum() == 9
    with pytest.raises(SelectionError, match="labels of 5×5"):
        RoiSet.from_layer(np.ones((5, 5), np.int32), frame_shape=(Y, X))


def test_imagej_round_trip_and_coordinates(tmp_path):
    rois = make_set()
    path = tmp_path / "rois.zip"
    rois.to_imagej(path)  # the mask ROI "blob" (one piece, one plane) goes as its outline
    raw = roifile.roiread(path)  # read by roifile itself: ImageJ pixel-corner coordinates
    assert [r.name for r in raw] == ["rect", "tri", "line", "blob"]
    np.testing.assert_allclose(raw[0].coordinates(), rois["rect"].vertices[:, ::-1] + 0.5)
    assert raw[1].z_position == 2 and raw[0].z_position == 0 and raw[3].z_position == 3
    back = RoiSet.from_imagej(path, frame_shape=(Y, X), num_planes=Z)
    assert back.names == ["rect", "tri", "line", "blob"] and back.planes == [None, 1, 0, 2]
    assert back.colours == ["#ff0000", "#00ff00", "#0000ff", "#ffffff"]
    assert back["line"].width == 2.0 and back["blob"].kind == "polygon"
    want = rois.masks((Y, X), Z)[:4]
    assert (back.masks((Y, X), Z) != want).nnz == 0  # the blob's pixels exactly


def test_imagej_mask_outlines_from_contours(tmp_path):
    """Mask (Labels) ROIs are written as the contour around their pixels when one polygon
    holds them exactly; masks in pieces or with holes are skipped with a warning.
    """
    disk = np.zeros((Y, X), bool)
    rr, cc = draw.disk((20, 25), 7.3, shape=(Y, X))
    disk[rr, cc] = True
    edge = np.zeros((Y, X), bool)
    edge[:6, X - 4 :] = True  # touches the frame's corner
    pieces = np.zeros((Y, X), bool)
    pieces[2:5, 2:5] = pieces[10:13, 10:13] = True
    ring = disk.copy()
    ring[18:23, 23:28] = False  # a hole
    rois = RoiSet.from_masks({"disk": disk, "edge": edge, "pieces": pieces, "ring": ring})
    path = tmp_path / "masks.zip"
    with pytest.warns(ScanImageWarning, match="pieces, ring"):
        rois.to_imagej(path)
    back = RoiSet.from_imagej(path, frame_shape=(Y, X))
    assert back.names == ["disk", "edge"]
    np.testing.assert_array_equal(back.mask("disk", (Y, X))[0], disk)
    np.testing.assert_array_equal(back.mask("edge", (Y, X))[0], edge)


def test_imagej_rect_and_oval_written_by_roifile(tmp_path):
    rect = roifile.ImagejRoi(
        roitype=roifile.ROI_TYPE.RECT, left=3, top=2, right=9, bottom=6, name="r"
    )
    oval = roifile.ImagejRoi(
        roitype=roifile.ROI_TYPE.OVAL, left=10, top=10, right=20, bottom=30, name="o"
    )
    roifile.roiwrite(tmp_path / "fiji.zip", [rect, oval])
    rois = RoiSet.from_imagej(tmp_path / "fiji.zip")
    m = rois.mask("r", (Y, X))[0]
    want = np.zeros((Y, X), bool)
    want[2:6, 3:9] = True  # ImageJ: pixels 3..8 × 2..5
    np.testing.assert_array_equal(m, want)
    o = rois.mask("o", (Y, X))[0]
    yy, xx = np.mgrid[:Y, :X]
    np.testing.assert_array_equal(o, ((yy - 19.5) / 10) ** 2 + ((xx - 14.5) / 5) ** 2 <= 1)
    (tmp_path / "junk.zip").write_bytes(b"PK junk")
    with pytest.raises(FormatError, match="not an ImageJ ROI file"):
        RoiSet.from_imagej(tmp_path / "junk.zip")


def test_palette_stays_distinguishable_for_24_rois():
    import itertools

    from napari_scanimage.analysis.colours import lab_distance, lab_of, next_colour, palette

    colours = palette(24)
    assert len(set(colours)) == 24 and all(len(c) == 7 and c[0] == "#" for c in colours)
    # every pair clearly apart (ΔE76 > 25; ~2 is just noticeable)
    assert min(lab_distance(a, b) for a, b in itertools.combinations(colours, 2)) > 25
    lab = lab_of(colours)
    assert (lab[:, 0] >= 55).all()  # bright enough to see on a dark image
    assert lab_distance("#ffffff", "#000000") == pytest.approx(100, abs=0.01)
    assert palette(30)[:24] == colours  # a longer palette starts with the same colours
    # the next ROI takes the first colour not in use (a deleted ROI's colour comes back)
    assert next_colour([]) == colours[0]
    assert next_colour(colours[:5]) == colours[5]
    assert next_colour([colours[0], colours[2]]) == colours[1]
    assert next_colour([c.upper() for c in colours[:3]]) == colours[3]
