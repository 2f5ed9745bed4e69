"""Piecewise-rigid registration: recovery of known smooth warps, the displacement field, the
block grid, save/load (versions 1 and 2) and bad input.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

import napari_scanimage as nsi
from napari_scanimage.analysis.piecewise import block_grid, block_size_for
from napari_scanimage.analysis.registration import Registration, register
from napari_scanimage.errors import FormatError, SelectionError
from napari_scanimage.testing.tiff import write_scanimage_tiff
from napari_scanimage.testing.warps import warped_movie

S, N = 192, 16


def write(path, frames):
    pages = np.clip(np.round(frames), 0, 65535).astype(np.uint16)
    n, Y, X = pages.shape
    written = write_scanimage_tiff(
        path,
        channels=(1,),
        num_volumes=n,
        height=Y,
        width=X,
        dtype="uint16",
        content=lambda g: pages[g],
    )
    return written.paths[0]


@pytest.fixture(scope="module")
def warped(tmp_path_factory):
    movie = warped_movie(N, (S, S), seed=2, rigid_max=3, field_max=2.5, mean_photons=200)
    path = write(tmp_path_factory.mktemp("pw") / "warped.tif", movie.frames)
    with nsi.open_dataset(path) as ds:
        yield ds, movie


def interior_rms(reg, truth):
    """RMS length of the displacement error in the interior (an eighth of the frame in from
    each edge), up to the reference's own fixed field (the mean error over time).
    """
    est = np.stack([reg.displacement(t) for t in range(len(truth))])
    err = est - truth
    err -= err.mean(axis=0)
    b = truth.shape[-1] // 8
    return float(np.sqrt(np.mean(np.sum(err[:, :, b:-b, b:-b] ** 2, axis=1))))


def test_recovers_a_known_smooth_warp(warped):
    ds, movie = warped
    rigid = register(ds)
    reg = register(ds, piecewise=True, block_size=64)
    assert reg.piecewise and not rigid.piecewise
    assert reg.block_shifts.shape == (N, 1, 4, 4, 2) and reg.block_shifts.dtype == np.float64
    assert reg.block_centers.shape == (4, 4, 2)
    np.testing.assert_array_equal(reg.block_centers[:, 0, 0], block_grid(S, 64) + 31.5)
    assert reg.block_correlation.shape == reg.block_flags.shape == (N, 1, 4, 4)
    assert reg.settings["piecewise"] is True and reg.settings["block_size"] == [64, 64]
    json.dumps(reg.settings)
    err_rigid = interior_rms(rigid, movie.displacement)
    err = interior_rms(reg, movie.displacement)
    assert err_rigid >= 0.6  # one shift per frame leaves the warp
    assert err <= 0.2 and err <= err_rigid / 4
    # the rigid part is the rigid registration's, up to where the (sharpened) reference sits
    diff = reg.shifts - rigid.shifts
    assert np.abs(diff - diff.mean(axis=0)).max() <= 0.25  # (whole-frame mean of a warp)


def test_blocks_without_signal_borrow_or_fall_back(tmp_path):
    movie = warped_movie(8, (128, 128), seed=3, rigid_max=2, field_max=1.0, mean_photons=None)
    frames = movie.frames.copy()
    frames[:, :48, :48] = 50.0  # a flat corner: nothing to correlate on
    with nsi.open_dataset(write(tmp_path / "flat.tif", frames)) as ds:
        reg = register(ds, piecewise=True, block_size=32)
    flags = reg.block_flags[:, 0]
    assert np.all(flags[:, 0, 0] > 0)  # the corner block borrowed or fell back
    assert np.all(flags[:, 2:, 2:] == 0)  # textured blocks use their own peak
    fell = flags == 3
    np.testing.assert_array_equal(reg.block_shifts[:, 0][fell], 0.0)  # the rigid shift
    assert np.all(np.abs(reg.block_shifts) <= 2.5)


def test_block_size_adapts_to_the_frame():
    assert block_size_for((512, 512), None) == (128, 128)
    assert block_size_for((512, 160), None) == (128, 80)
    assert block_size_for((40, 24), None) == (20, 16)
    assert block_size_for((64, 64), 64) == (64, 64)
    assert list(block_grid(512, 128)) == [0, 96, 192, 288, 384]
    assert list(block_grid(64, 64)) == [0]


def test_field_stays_near_the_block_shifts_out_to_the_edges():
    """Residuals of ±1.5 px gave displacements of up to 30 px at the frame's edges when the
    spline went on with its end slopes; past the outer block centres the field now holds the
    end values, and nowhere strays far from the block shifts.
    """
    from napari_scanimage._core.warping import block_field

    size, block = 128, 32
    starts = block_grid(size, block)
    centre = starts + (block - 1) / 2
    centres = np.stack(np.meshgrid(centre, centre, indexing="ij"), axis=-1)
    b = np.random.default_rng(0).uniform(-1.5, 1.5, (50, len(centre), len(centre), 2))
    field = block_field(b, centres, (size, size), np.float64)  # (50, 2, Y, X)
    assert np.abs(field).max() <= 2.5 * 1.5
    first, last = int(np.ceil(centre[0])), int(np.floor(centre[-1]))  # 16, 111
    np.testing.assert_allclose(field[..., :first, :], np.repeat(field[..., :1, :], first, -2))
    np.testing.assert_allclose(
        field[..., last + 1 :], np.repeat(field[..., -1:], size - last - 1, -1)
    )


def test_displacement_rigid_and_piecewise():
    shifts = np.array([[[1.5, -2.0]], [[0.0, 3.0]]])
    reg = Registration(shifts, np.ones((2, 1)), np.zeros((1, 30, 40), np.float32))
    d = reg.displacement(1)
    assert d.shape == (2, 30, 40) and d.dtype == np.float64
    np.testing.assert_array_equal(d[0], 0.0)
    np.testing.assert_array_equal(d[1], 3.0)
    centres = np.stack(np.meshgrid([7.0, 21.0], [9.0, 29.0], indexing="ij"), axis=-1)
    blocks = np.zeros((2, 1, 2, 2, 2))
    blocks[0, 0, 1, 0] = (1.0, -0.5)  # the lower-left block's content moved further
    pw = Registration(
        shifts, np.ones((2, 1)), reg.reference, block_shifts=blocks, block_centers=centres
    )
    # at a block centre: the rigid shift plus that block's residual
    d = pw.displacement(0, 0)
    np.testing.assert_allclose(d[:, 21, 9], [2.5, -2.5], atol=1e-9)
    np.testing.assert_allclose(d[:, 7, 9], [1.5, -2.0], atol=1e-9)
    np.testing.assert_allclose(d[:, 14, 19], [1.75, -2.125], atol=1e-9)  # bilinear between
    # past the outer centres the values at the centres are held
    np.testing.assert_allclose(d[:, 21:, :10], np.broadcast_to([[[2.5]], [[-2.5]]], (2, 9, 10)))
    np.testing.assert_allclose(d[:, :8, 29:], np.broadcast_to([[[1.5]], [[-2.0]]], (2, 8, 11)))
    np.testing.assert_allclose(pw.displacement(1), reg.displacement(1))
    np.testing.assert_allclose(pw.displacement(-2), pw.displacement(0))
    with pytest.raises(SelectionError, match="time row 2"):
        pw.displacement(2)


def test_save_load_round_trip_and_version_1_files(warped, tmp_path):
    ds, _ = warped
    reg = register(ds, piecewise=True, block_size=(64, 96), reference_frames=8)
    assert reg.block_shifts.shape[2:4] == (4, 3)
    path = reg.save(tmp_path / "pw.npz")
    with np.load(path) as z:
        assert json.loads(bytes(z["header"]).decode())["version"] == 2
    back = Registration.load(path)
    assert back.piecewise
    for name in (
        "shifts",
        "correlation",
        "reference",
        "block_shifts",
        "block_centers",
        "block_correlation",
        "block_flags",
    ):
        a, b = getattr(reg, name), getattr(back, name)
        assert a.dtype == b.dtype and np.array_equal(a, b, equal_nan=True), name
    np.testing.assert_array_equal(back.displacement(3), reg.displacement(3))
    rigid = Registration(reg.shifts, reg.correlation, reg.reference, channel="Ch1")
    with np.load(rigid.save(tmp_path / "rigid.npz")) as z:  # rigid: still version 1
        assert json.loads(bytes(z["header"]).decode())["version"] == 1
        assert "block_shifts" not in z.files
    # a file written by an earlier version (version 1, no block arrays)
    header = {
        "format": "napari-scanimage-registration",
        "version": 1,
        "channel": "Ch1",
        "bidi_phase": 0.5,
        "settings": {"method": "phase correlation"},
        "source": None,
    }
    old = tmp_path / "old.npz"
    np.savez(
        old,
        header=np.frombuffer(json.dumps(header).encode(), np.uint8),
        shifts=reg.shifts,
        correlation=reg.correlation,
        reference=reg.reference,
    )
    loaded = Registration.load(old)
    assert not loaded.piecewise and loaded.block_shifts is None and loaded.bidi_phase == 0.5
    np.testing.assert_array_equal(loaded.displacement(0)[0], reg.shifts[0, 0, 0])
    bad = tmp_path / "bad.npz"
    np.savez(
        bad,
        header=np.frombuffer(json.dumps({**header, "version": 2}).encode(), np.uint8),
        shifts=reg.shifts,
        correlation=reg.correlation,
        reference=reg.reference,
        block_shifts=np.zeros((2, 2)),
        block_centers=reg.block_centers,
    )
    with pytest.raises(FormatError, match="block_shifts must be"):
        Registration.load(bad)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"block_size": 400}, "block height 400 px does not fit frames of 192×192"),
        ({"block_size": (64, 8)}, "block width 8 px does not fit"),
        ({"block_size": (64,)}, "block_size must be an integer or \\(height, width\\)"),
        ({"block_size": 40.5}, "block_size must be an integer"),
        ({"block_size": "big"}, "block_size must be an integer"),
    ],
)
def test_bad_block_size(warped, kwargs, match):
    ds, _ = warped
    with pytest.raises(SelectionError, match=match):
        register(ds, piecewise=True, **kwargs)


def test_bad_block_arrays():
    shifts = np.zeros((3, 1, 2))
    ref = np.zeros((1, 32, 32), np.float32)
    centres = np.stack(np.meshgrid([8.0, 24.0], [8.0, 24.0], indexing="ij"), axis=-1)
    with pytest.raises(SelectionError, match="block_shifts must be \\(T, Z, NBY, NBX, 2\\)"):
        Registration(
            shifts,
            np.ones((3, 1)),
            ref,
            block_shifts=np.zeros((2, 1, 2, 2, 2)),
            block_centers=centres,
        )
    with pytest.raises(SelectionError, match="block_centers must be"):
        Registration(
            shifts,
            np.ones((3, 1)),
            ref,
            block_shifts=np.zeros((3, 1, 2, 2, 2)),
            block_centers=centres[:1],
        )
    with pytest.raises(SelectionError, match="regular grid"):
        Registration(
            shifts,
            np.ones((3, 1)),
            ref,
            block_shifts=np.zeros((3, 1, 2, 2, 2)),
            block_centers=centres[::-1],
        )
    with pytest.raises(SelectionError, match="without block_shifts"):
        Registration(shifts, np.ones((3, 1)), ref, block_centers=centres)
    with pytest.raises(SelectionError, match="too small for piecewise"):
        block_size_for((12, 40), None)
