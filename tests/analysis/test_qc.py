"""Summary images against brute-force NumPy."""

from __future__ import annotations

import numpy as np
import pytest

import napari_scanimage as nsi
from napari_scanimage.analysis import qc
from napari_scanimage.testing.tiff import SyntheticLayout, write_scanimage_tiff

LAYOUT = SyntheticLayout(
    channels=(1, 2),
    channel_names=("Green", "Red"),
    num_planes=2,
    frames_per_slice=2,
    num_flyback=1,
    num_volumes=9,
    height=12,
    width=14,
)


def brute_local_corr(frames):  # (T, Y, X)
    T, Y, X = frames.shape
    out = np.zeros((Y, X))
    for y in range(Y):
        for x in range(X):
            rs = []
            for dy in (-1, 0, 1):
                for dx in (-1, 0, 1):
                    yy, xx = y + dy, x + dx
                    if (dy or dx) and 0 <= yy < Y and 0 <= xx < X:
                        a, b = frames[:, y, x], frames[:, yy, xx]
                        rs.append(0.0 if a.std() == 0 or b.std() == 0 else np.corrcoef(a, b)[0, 1])
            out[y, x] = np.mean(rs)
    return out


def test_summary_images_equal_brute_force(tmp_path, monkeypatch):
    written = write_scanimage_tiff(tmp_path / "rec.tif", LAYOUT)
    monkeypatch.setattr(qc, "BLOCK_BYTES", 2 * 2 * 12 * 14 * 8)  # 2 volumes per block
    with nsi.open_dataset(written.paths[0]) as ds:
        frames = ds.read("Red", slice_sample="mean").astype(np.float64)  # (T, Z, Y, X)
        seen = []
        got = qc.summary_images(ds, channel="Red", progress=lambda d, t: seen.append((d, t)))
    assert seen[-1] == (5, 5) and set(got) == set(qc.KINDS)
    np.testing.assert_allclose(got["mean"], frames.mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(got["max"], frames.max(axis=0), rtol=1e-6)
    np.testing.assert_allclose(got["std"], frames.std(axis=0), rtol=1e-4)
    for z in range(2):
        np.testing.assert_allclose(
            got["local correlation"][z], brute_local_corr(frames[:, z]), atol=1e-4
        )


def test_constant_pixels_give_zero_correlation(tmp_path):
    layout = SyntheticLayout(channels=(1,), num_volumes=4, height=6, width=7)
    written = write_scanimage_tiff(
        tmp_path / "flat.tif", layout, content=lambda g: np.full((6, 7), 100, np.int16)
    )
    with nsi.open_dataset(written.paths[0]) as ds:
        got = qc.summary_images(ds)
    assert got["mean"].shape == (1, 6, 7) and np.all(got["std"] == 0)
    assert np.all(got["local correlation"] == 0)
    assert got["max"].max() == pytest.approx(100)


def test_flag_frames_at_the_shift_bound_and_low_correlation():
    rng = np.random.default_rng(0)
    T, Z = 60, 3
    shifts = rng.uniform(-3, 3, size=(T, Z, 2))  # true drift within 3 px
    corr = 0.9 + 0.01 * rng.standard_normal((T, Z))
    shifts[17, 1] = (-4.1, -10.0)  # locked onto the edge of a ±10 px search
    shifts[40, 0] = (9.6, 0.2)  # within the half pixel of subpixel refinement
    corr[33, 2] = 0.55  # a frame that did not match
    flags = qc.flag_frames(shifts, corr, max_shift=10)
    assert flags.at_bound.shape == (T, Z)
    assert set(zip(*np.nonzero(flags.at_bound), strict=True)) == {(17, 1), (40, 0)}
    assert set(zip(*np.nonzero(flags.low_correlation), strict=True)) == {(33, 2)}
    assert np.flatnonzero(flags.any.any(axis=1)).tolist() == [17, 33, 40]
    assert flags.summary() == (
        "2 frame(s) with a shift at the search bound, 1 with an outlying low correlation"
    )
    clean = qc.flag_frames(np.zeros((T, Z, 2)), np.full((T, Z), 0.95), max_shift=None)
    assert not clean.any.any() and clean.summary() == "no frames flagged"


def test_flag_frames_ignores_planes_left_out_without_warnings():
    """Registering one plane of several leaves the others' correlations NaN: no flags there,
    and no 'All-NaN slice' warning.
    """
    import warnings

    from napari_scanimage.analysis.qc import flag_frames

    corr = np.full((20, 3), np.nan)
    corr[:, 1] = 0.9
    corr[7, 1] = 0.2
    shifts = np.zeros((20, 3, 2))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        flags = flag_frames(shifts, corr, max_shift=10)
    assert flags.low_correlation[:, [0, 2]].sum() == 0
    assert np.flatnonzero(flags.low_correlation[:, 1]).tolist() == [7]
    assert not flags.at_bound.any()
