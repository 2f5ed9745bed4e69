"""ROI detection on generated recordings of cells with known footprints and activity."""

from __future__ import annotations

import numpy as np
import pytest

import napari_scanimage as nsi
from napari_scanimage.analysis.detection import detect_rois, estimate_diameter
from napari_scanimage.analysis.rois import RoiSet
from napari_scanimage.errors import SelectionError
from napari_scanimage.testing.cells import iou_matrix, write_cell_movie


@pytest.fixture(scope="module")
def planar(tmp_path_factory):
    return write_cell_movie(
        tmp_path_factory.mktemp("planar") / "cells.tif", num_frames=1500, size=128, seed=3
    )


def test_active_cells_found_with_defaults(planar, tmp_path):
    with nsi.open_dataset(planar.path) as ds:
        rois = nsi.detect_rois(ds)
        score = planar.score(rois)
        assert score.true >= 10
        assert score.f1 >= 0.8, (score.precision, score.recall)
        assert rois.names[:3] == ["cell 1", "cell 2", "cell 3"]
        assert all(r.kind == "mask" and r.plane is None for r in rois)
        f = rois.features
        assert set(f) == {"area", "score", "compactness", "diameter"}
        assert np.all(np.diff(f["score"]) <= 0)  # best first
        np.testing.assert_array_equal(f["area"], [r.mask.sum() for r in rois])
        assert np.all((f["compactness"] >= 0.6) & (f["compactness"] < 1.5))
        # the diameter estimated is that of the cells (8–14 px)
        assert 8 <= f["diameter"][0] <= 14
        # deterministic: the same ROIs again
        again = detect_rois(ds)
        assert again.names == rois.names
        assert (again.masks((128, 128), 1) != rois.masks((128, 128), 1)).nnz == 0
        # features kept in the ROI file
        rois.save(tmp_path / "found.json")
        loaded = RoiSet.load(tmp_path / "found.json")
        np.testing.assert_allclose(loaded.features["score"], f["score"])


def test_diameter_given_and_bad_requests(planar):
    with nsi.open_dataset(planar.path) as ds:
        rois = detect_rois(ds, diameter_px=11)
        assert planar.score(rois).f1 >= 0.8
        assert np.all(rois.features["diameter"] == 11)
        with pytest.raises(SelectionError, match="plane 2"):
            detect_rois(ds, plane=2)
        with pytest.raises(SelectionError, match="diameter"):
            detect_rois(ds, diameter_px=1)


def test_estimate_diameter_of_discs():
    yy, xx = np.mgrid[:128, :128]
    img = np.zeros((128, 128))
    for cy, cx in [(20, 20), (20, 80), (70, 40), (100, 100), (60, 100)]:
        img[(yy - cy) ** 2 + (xx - cx) ** 2 <= 6**2] = 1.0  # 12 px discs
    # a plain disc: its LoG scale times the edge factor (a correlation blob is smaller)
    d = estimate_diameter(img)
    assert 12 <= d <= 12 * 1.2 * 1.2


def test_volume_per_plane(tmp_path):
    movie = write_cell_movie(tmp_path / "vol.tif", num_frames=400, size=96, num_planes=2, seed=5)
    with nsi.open_dataset(movie.path) as ds:
        rois = detect_rois(ds)
        assert set(rois.planes) == {0, 1}
        for z in (0, 1):
            assert movie.score(rois, plane=z).f1 >= 0.8
        only = detect_rois(ds, plane=1)
        assert set(only.planes) == {1}
        assert movie.score(only, plane=1).f1 == movie.score(rois, plane=1).f1


def test_moving_recording_needs_its_registration(tmp_path):
    movie = write_cell_movie(
        tmp_path / "moving.tif", num_frames=600, size=128, drift_px=6.0, seed=7
    )
    assert np.abs(movie.shifts).max() >= 5
    with nsi.open_dataset(movie.path) as ds:
        registration = nsi.register(ds)
        registered = movie.score(detect_rois(ds, registration=registration))
        raw = movie.score(detect_rois(ds))
        assert registered.f1 >= 0.8
        assert registered.f1 > raw.f1 + 0.1


def test_score_counts_matches_one_to_one(planar):
    truth = planar.masks[planar.active]
    exact = planar.score(truth[:, None])
    assert exact.f1 == 1.0
    half = planar.score(np.concatenate([truth[: len(truth) // 2], truth[:2]])[:, None])
    assert half.matched == len(truth) // 2 and half.found == len(truth) // 2 + 2
    assert iou_matrix(truth[:1], truth[:1])[0, 0] == 1.0


def test_no_cells_on_the_frame_edges_of_a_moving_sample():
    """The sample moves a little: content crossing the frame's edges flickers together, which
    once gave most ROIs, centred on the edge rows and columns.
    """
    from napari_scanimage.sample import sample_path

    with nsi.open_dataset(sample_path("volume_2ch")) as ds:
        rois = detect_rois(ds)
    Y, X = ds.info.frame_shape
    assert len(rois) >= 3
    for roi in rois:
        ys, xs = np.nonzero(roi.mask)
        assert 3 <= ys.mean() <= Y - 4 and 3 <= xs.mean() <= X - 4, roi.name


@pytest.fixture(scope="module")
def drifting(tmp_path_factory):
    return write_cell_movie(
        tmp_path_factory.mktemp("drift") / "cells.tif",
        num_frames=400,
        size=128,
        drift_px=6.0,
        seed=4,
    )


@pytest.mark.parametrize("piecewise", [False, True], ids=["rigid", "piecewise"])
def test_registration_keeps_the_cells(drifting, piecewise):
    """Registered frames are empty along the edges part of the time (0 brought in); those
    strips once flickered together, took over the diameter estimate and the neuropil means,
    and detection found fewer cells with a registration than without.
    """
    with nsi.open_dataset(drifting.path) as ds:
        kw = {"piecewise": True, "block_size": 32} if piecewise else {}
        registration = nsi.register(ds, **kw)
        registered = drifting.score(detect_rois(ds, registration=registration))
        raw = drifting.score(detect_rois(ds))
    assert registered.f1 >= 0.8, registered
    assert registered.matched >= raw.matched, (registered, raw)


def test_valid_margin_is_where_registered_frames_are_empty(drifting):
    from napari_scanimage.analysis.detection import valid_margin

    with nsi.open_dataset(drifting.path) as ds:
        registration = nsi.register(ds, piecewise=True, block_size=32)
    top, bottom, left, right = valid_margin(registration)
    # brute force over the whole displacement field of every frame
    Y, X = registration.frame_shape
    yy, xx = np.mgrid[:Y, :X]
    want = [0, 0, 0, 0]
    for t in range(registration.num_times):
        dy, dx = registration.displacement(t, 0)
        for k, out in enumerate((yy + dy < 0, yy + dy > Y - 1, xx + dx < 0, xx + dx > X - 1)):
            if out.any():
                at = (yy if k < 2 else xx)[out]
                want[k] = max(want[k], int(at.max()) + 1 if k % 2 == 0 else Y - int(at.min()))
    assert [top, bottom, left, right] == want
    assert max(want) >= 3
    assert valid_margin(None) == (0, 0, 0, 0)


def test_sample_cells_found_with_and_without_registration():
    """The bundled sample is nearly free of noise: neighbouring pixels correlate almost
    everywhere and registration (fractional shifts, empty edges) pushed the image further
    towards 1, so few cells stood out.  On registered frames the most active cells of each
    plane are found, and about as many cells as without a registration.
    """
    from napari_scanimage.sample import active_cells, sample_path

    with nsi.open_dataset(sample_path("volume_2ch")) as ds:
        found = {
            "raw": detect_rois(ds),
            "rigid": detect_rois(ds, registration=nsi.register(ds, channel="Green")),
            "piecewise": detect_rois(
                ds, registration=nsi.register(ds, channel="Green", piecewise=True, block_size=32)
            ),
        }
    for name in ("rigid", "piecewise"):
        rois = found[name]
        assert len(rois) >= len(found["raw"]) - 3, (name, len(rois), len(found["raw"]))
        for z in range(4):
            centres = [r.mask.nonzero() for r in rois if r.plane == z]
            centres = np.array([(ys.mean(), xs.mean()) for ys, xs in centres])
            for cy, cx, _ in active_cells("volume_2ch", count=3, plane=z):
                assert np.hypot(*(centres - (cy, cx)).T).min() <= 5, (name, z, cy, cx)
    assert len(found["raw"]) >= 40  # of 100 cells (some silent)
