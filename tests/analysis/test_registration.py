"""Rigid registration: phase correlation against known subpixel shifts and scikit-image, and
``register`` on ScanImage files written with known motion.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import fft, ndimage

import napari_scanimage as nsi
from napari_scanimage._core.shifting import correct_bidi
from napari_scanimage.analysis._phasecorr import (
    bidi_phase,
    estimate_shifts,
    make_reference,
    shift_image,
    taper,
)
from napari_scanimage.analysis.registration import Registration, register
from napari_scanimage.errors import SelectionError
from napari_scanimage.testing.tiff import SyntheticLayout, write_scanimage_tiff

PAD = 12


def texture(shape, seed=0):
    """Smooth random texture plus Gaussian blobs ('cells'), >= 0."""
    rng = np.random.default_rng(seed)
    Y, X = shape
    img = ndimage.gaussian_filter(rng.normal(size=shape), 4) * 40
    img += ndimage.gaussian_filter(rng.normal(size=shape), 1.5) * 10
    yy, xx = np.mgrid[:Y, :X]
    for _ in range(Y * X // 300):
        cy, cx, r = rng.uniform(0, Y), rng.uniform(0, X), rng.uniform(2, 5)
        img += rng.uniform(1, 3) * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r * r))
    return img - img.min()


class Scene:
    """A texture larger than the frame; ``frame(dy, dx)`` is its centre with the content moved
    by (dy, dx) pixels (exact subpixel Fourier shift of the larger image, then cropped).
    """

    def __init__(self, size, seed=0, scale=100.0, offset=100.0):
        big = texture((size + 2 * PAD, size + 2 * PAD), seed) * scale + offset
        self.spec = fft.fft2(big)
        self.ky = fft.fftfreq(big.shape[0])[:, None]
        self.kx = fft.fftfreq(big.shape[1])[None, :]

    def frame(self, dy, dx):
        ramp = np.exp(-2j * np.pi * (self.ky * dy + self.kx * dx))
        return fft.ifft2(self.spec * ramp).real[PAD:-PAD, PAD:-PAD]


def movie(n, size, shifts, *, seed=0, noise=True, bleach=0.0):
    """(n, size, size) float32 frames moved by ``shifts`` (n, 2), with Poisson + Gaussian noise
    and an exponential intensity decay (bleaching) by ``bleach`` e-folds over the movie.
    """
    scene = Scene(size, seed)
    rng = np.random.default_rng(seed + 1)
    out = np.empty((n, size, size), np.float32)
    for i, (dy, dx) in enumerate(shifts):
        img = scene.frame(dy, dx) * np.exp(-bleach * i / n)
        if noise:
            img = rng.poisson(np.maximum(img, 0)) + rng.normal(0, 5, img.shape)
        out[i] = img
    return out


def rms(a):
    return float(np.sqrt(np.mean(np.square(a))))


# -- phase correlation ---------------------------------------------------------------------
def test_skimage_sign_convention():
    skreg = pytest.importorskip("skimage.registration")
    ref = texture((64, 64), 3)
    moved = np.roll(ref, (2, -1), axis=(0, 1))  # content moved down 2, left 1
    sk = skreg.phase_cross_correlation(ref, moved, upsample_factor=20)[0]
    np.testing.assert_allclose(sk, [-2, 1], atol=1e-6)  # skimage: the shift that undoes it
    ours, peak = estimate_shifts(moved, ref, max_shift=5)
    np.testing.assert_allclose(ours, [2, -1], atol=0.05)  # ours: the displacement itself
    assert peak > 0.9


def test_subpixel_accuracy_beats_skimage():
    skreg = pytest.importorskip("skimage.registration")
    rng = np.random.default_rng(3)
    n = 40
    true = rng.uniform(-6, 6, (n + 1, 2))
    true[0] = 0
    frames = movie(n + 1, 96, true, bleach=1.0)
    ref, frames, true = frames[0], frames[1:], true[1:]
    shifts, peak = estimate_shifts(frames, ref, max_shift=12)
    ours = rms(shifts - true)
    assert ours <= 0.1
    sk = np.array([skreg.phase_cross_correlation(ref, f, upsample_factor=20)[0] for f in frames])
    theirs = rms(-sk - true)
    assert ours <= theirs
    assert np.all((peak > 0.3) & (peak < 1.05))
    # whole pixels only: the nearest integers (up to ±1 where the true shift is near a half)
    whole, _ = estimate_shifts(frames, ref, max_shift=12, subpixel=False)
    assert np.array_equal(whole, np.round(whole))
    assert np.all(np.abs(whole - true) <= 0.5 + 0.1)


def test_identical_frames_peak_one_and_single_frame():
    ref = texture((64, 80), 1) * 50
    shift, peak = estimate_shifts(ref, ref, max_shift=6)
    assert shift.shape == (2,) and np.all(np.abs(shift) < 1e-3)
    assert peak == pytest.approx(1.0, abs=0.01)
    shifts, peaks = estimate_shifts(
        np.stack([ref, ref]).astype(np.uint16), ref, max_shift=6, workers=1
    )
    assert shifts.shape == (2, 2) and peaks.shape == (2,)
    assert np.all(np.abs(shifts) < 1e-3)
    empty = estimate_shifts(np.zeros((0, 64, 80)), ref, max_shift=6)
    assert empty[0].shape == (0, 2) and empty[1].shape == (0,)


def test_max_shift_bound():
    scene = Scene(64, 2)
    ref = scene.frame(0, 0)
    frames = np.stack([scene.frame(7.3, -6.6), scene.frame(-8, 2), scene.frame(1.2, 0.4)])
    shifts, _ = estimate_shifts(frames, ref, max_shift=3)
    assert np.all(np.abs(shifts) <= 3)
    np.testing.assert_allclose(shifts[2], [1.2, 0.4], atol=0.1)
    shifts, _ = estimate_shifts(frames, ref, max_shift=10)
    np.testing.assert_allclose(shifts, [[7.3, -6.6], [-8, 2], [1.2, 0.4]], atol=0.1)


def test_taper_and_shift_image():
    w = taper((32, 40))
    assert w.shape == (32, 40) and w.dtype == np.float32
    assert w.max() == 1 and w.min() > 0 and w[16, 20] == 1 and w[0, 0] < 0.01
    img = texture((32, 40), 4)
    np.testing.assert_allclose(
        shift_image(img, (2, -3)), np.roll(img, (2, -3), axis=(0, 1)), atol=1e-3 * img.max()
    )
    smooth = ndimage.gaussian_filter(img, 2, mode="wrap")  # nothing at the Nyquist frequency
    back = shift_image(shift_image(smooth, (0.4, -1.7)), (-0.4, 1.7))
    np.testing.assert_allclose(back, smooth, atol=1e-3 * smooth.max())


def test_make_reference_recovers_shifts():
    rng = np.random.default_rng(8)
    true = rng.normal(0, 2.5, (60, 2))
    frames = movie(60, 80, true, seed=5, bleach=0.5)
    ref = make_reference(frames, max_shift=10)
    assert ref.shape == (80, 80) and ref.dtype == np.float32
    shifts, peak = estimate_shifts(frames, ref, max_shift=10)
    offset = np.mean(shifts - true, axis=0)  # the reference sits near the frames' mean position
    assert np.all(np.abs(offset) < 1.0)
    assert rms(shifts - true - offset) <= 0.1


# -- bidirectional phase -------------------------------------------------------------------
@pytest.mark.parametrize("k", [2, -3])
def test_bidi_phase_found_and_corrected(k):
    truth = movie(8, 96, np.zeros((8, 2)), seed=2)
    scanned = truth.copy()
    scanned[:, 1::2] = np.roll(truth[:, 1::2], k, axis=2)  # odd rows' content moved by k
    p = bidi_phase(scanned)
    assert p == pytest.approx(k, abs=0.2)
    fixed = correct_bidi(scanned, round(p))
    assert fixed.dtype == scanned.dtype
    m = abs(k)
    np.testing.assert_array_equal(fixed[..., m:-m], truth[..., m:-m])
    edge = fixed[:, 1::2, -k:] if k > 0 else fixed[:, 1::2, :-k]
    assert np.all(edge == 0)  # pixels brought in from outside the row
    assert bidi_phase(truth) == pytest.approx(0, abs=0.2)


def test_correct_bidi_fractional():
    frames = np.tile(np.arange(10, dtype=np.float32) * 3, (2, 4, 1))  # 2 frames, 4 rows
    out = correct_bidi(frames, 1.5)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out[:, 0::2], frames[:, 0::2])
    np.testing.assert_allclose(
        out[:, 1::2, :8], np.broadcast_to((np.arange(8) + 1.5) * 3, (2, 2, 8))
    )
    np.testing.assert_allclose(out[:, 1::2, 8], 0.5 * 27)  # half of the last pixel, half 0
    np.testing.assert_array_equal(out[:, 1::2, 9], 0)
    np.testing.assert_array_equal(correct_bidi(frames, 0), frames)


# -- register() on ScanImage files ---------------------------------------------------------
Z, T, S = 3, 30, 80
VOLUMETRIC = SyntheticLayout(
    channels=(1, 2),
    channel_names=("Green", "Red"),
    num_planes=Z,
    frames_per_slice=2,
    num_flyback=1,
    num_volumes=T,
    height=S,
    width=S,
    dtype="int16",
)
PLANAR = SyntheticLayout(channels=(1,), num_volumes=40, height=S, width=S + 16, dtype="uint16")
BIDI_K = 2


def _volumetric_content(true):
    scenes = [Scene(S, seed=10 + z, scale=60, offset=300) for z in range(Z)]
    lay = VOLUMETRIC

    def content(g):
        t, rest = divmod(g, lay.pages_per_volume)
        frame, c = divmod(rest, lay.num_channels)
        z, _ = divmod(frame, lay.frames_per_slice)
        if z >= Z:  # flyback
            return np.full((S, S), 50, np.int16)
        img = scenes[z].frame(*true[t, z])
        if c == 1:  # red: bleaching, Poisson noise
            img = np.random.default_rng(g).poisson(img * 0.5 * np.exp(-t / T))
        return np.round(img).astype(np.int16)  # green: clean

    return content


@pytest.fixture(scope="module")
def volumetric(tmp_path_factory):
    rng = np.random.default_rng(21)
    true = rng.uniform(-4, 4, (T, Z, 2))  # per volume and plane
    written = write_scanimage_tiff(
        tmp_path_factory.mktemp("reg") / "vol.tif", VOLUMETRIC, content=_volumetric_content(true)
    )
    with nsi.open_dataset(written.paths[0]) as ds:
        yield ds, true


@pytest.fixture(scope="module")
def planar(tmp_path_factory):
    rng = np.random.default_rng(22)
    true = rng.uniform(-3, 3, (PLANAR.num_volumes, 2))
    scene = Scene(S + 16, seed=30, scale=60, offset=300)

    def content(g):
        img = scene.frame(*true[g])[:S]
        img = np.random.default_rng(g).poisson(img)
        img[1::2] = np.roll(img[1::2], BIDI_K, axis=1)  # bidirectional scan offset
        return img.astype(np.uint16)

    written = write_scanimage_tiff(
        tmp_path_factory.mktemp("reg") / "planar.tif", PLANAR, content=content
    )
    with nsi.open_dataset(written.paths[0]) as ds:
        yield ds, true


def centred_error(shifts, true):
    """Shift errors with the common offset (reference vs. truth) removed."""
    err = shifts - true
    return err - err.mean(axis=0)


def test_register_volumetric(volumetric):
    ds, true = volumetric
    steps = []
    reg = register(
        ds, channel="Green", reference_frames=20, progress=lambda d, n: steps.append((d, n))
    )
    assert steps[0][0] == 0 and steps[-1][0] == steps[-1][1] and len(steps) == steps[-1][1] + 1
    assert reg.shifts.shape == (T, Z, 2) and reg.correlation.shape == (T, Z)
    assert reg.reference.shape == (Z, S, S) and reg.reference.dtype == np.float32
    assert reg.channel == "Green" and reg.bidi_phase == 0.0
    assert reg.source == str(ds.paths[0])
    assert reg.settings["slice_sample"] == "mean" and reg.settings["planes"] == [0, 1, 2]
    json.dumps(reg.settings)
    assert rms(centred_error(reg.shifts, true)) <= 0.1
    assert np.all(reg.correlation > 0.9)  # clean frames
    red = register(ds, channel=1, block_frames=7)  # noisy and bleaching; several blocks
    assert red.channel == "Red"
    assert rms(centred_error(red.shifts, true)) <= 0.1
    assert np.all((red.correlation > 0.2) & (red.correlation < 1.05))
    whole = register(ds, channel="Green", subpixel=False, max_shift=2)
    assert np.array_equal(whole.shifts, np.round(whole.shifts))
    assert np.all(np.abs(whole.shifts) <= 2) and whole.settings["max_shift"] == 2


def test_register_some_planes(volumetric):
    ds, true = volumetric
    reg = register(ds, planes=[-2], reference_frames=10)
    assert reg.settings["planes"] == [1]
    assert np.all(reg.shifts[:, [0, 2]] == 0) and np.all(np.isnan(reg.correlation[:, [0, 2]]))
    assert rms(centred_error(reg.shifts[:, 1], true[:, 1])) <= 0.1
    assert np.all(np.isfinite(reg.correlation[:, 1]))
    assert reg.reference.shape == (Z, S, S) and np.all(reg.reference[0] > 0)  # plain mean


def test_register_planar_bidi(planar):
    ds, true = planar
    plain = register(ds)
    assert plain.shifts.shape == (PLANAR.num_volumes, 1, 2)
    assert plain.reference.shape == (1, S, S + 16) and plain.bidi_phase == 0
    reg = register(ds, bidi=True, max_shift=6)
    assert reg.bidi_phase == pytest.approx(BIDI_K, abs=0.2)
    assert reg.settings["bidi"] is True
    assert rms(centred_error(reg.shifts[:, 0], true)) <= 0.1
    assert np.median(reg.correlation) > np.median(plain.correlation)


def test_register_save_load_round_trip(planar, tmp_path):
    ds, _ = planar
    reg = register(ds, bidi=True, reference_frames=15)
    back = Registration.load(reg.save(tmp_path / "reg.npz"))
    for name in ("shifts", "correlation", "reference"):
        a, b = getattr(reg, name), getattr(back, name)
        assert a.dtype == b.dtype and np.array_equal(a, b, equal_nan=True)
    assert (back.channel, back.bidi_phase, back.settings, back.source) == (
        reg.channel,
        reg.bidi_phase,
        reg.settings,
        reg.source,
    )


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"channel": 2}, "channel 2 does not exist.*2 channel"),
        ({"channel": "Blue"}, "no channel named 'Blue'"),
        ({"max_shift": 0.5}, "max_shift is 0.5.*at least 1"),
        ({"planes": [3]}, "plane 3 does not exist.*3 plane"),
        ({"planes": []}, "planes is empty"),
        ({"reference_frames": 0}, "reference_frames is 0"),
        ({"block_frames": 0}, "block_frames is 0"),
    ],
)
def test_register_bad_input(volumetric, kwargs, match):
    ds, _ = volumetric
    with pytest.raises(SelectionError, match=match):
        register(ds, **kwargs)
