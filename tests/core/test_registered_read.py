"""Registration applied on read: TIFF pixels, `.siff` photons (exact) and ROI traces, against
ground truth written with known motion.
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest

import napari_scanimage as nsi
from napari_scanimage._core import photons as core_photons
from napari_scanimage._core.shifting import apply_shifts, correct_bidi
from napari_scanimage.analysis.registration import Registration
from napari_scanimage.analysis.traces import traces
from napari_scanimage.errors import SelectionError
from napari_scanimage.io.siff import SiffReader
from napari_scanimage.testing.siff import write_siff
from napari_scanimage.testing.tiff import SyntheticLayout, write_scanimage_tiff

T, Z, F, C, Y, X = 5, 2, 2, 2, 20, 26
LAYOUT = SyntheticLayout(
    channels=(1, 2),
    num_planes=Z,
    frames_per_slice=F,
    num_flyback=1,
    num_volumes=T,
    height=Y,
    width=X,
)
# (dy, dx) of every volume and plane: content moved down/right by these
MOTION = np.array(
    [[[0, 0], [1, -2]], [[2, 3], [-1, 0]], [[-3, 1], [0, 4]], [[1, 1], [2, -3]], [[0, -4], [-2, 2]]]
)
BASE = np.random.default_rng(3).integers(10, 3000, (Z, C, F, Y, X)).astype(np.int16)


def registration(shifts, bidi_phase=0.0, shape=(Y, X)) -> Registration:
    shifts = np.asarray(shifts, np.float64)
    return Registration(
        shifts,
        np.ones(shifts.shape[:2]),
        np.zeros((shifts.shape[1], *shape), np.float32),
        bidi_phase=bidi_phase,
    )


def moved(image: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """Content displaced by (dy, dx): ``out[y, x] = image[y - dy, x - dx]``, 0 outside."""
    out = np.zeros_like(image)
    out[max(dy, 0) : Y + min(dy, 0), max(dx, 0) : X + min(dx, 0)] = image[
        max(-dy, 0) : Y - max(dy, 0), max(-dx, 0) : X - max(dx, 0)
    ]
    return out


def content(g: int) -> np.ndarray:
    k = g % LAYOUT.pages_per_volume
    frame, c = divmod(k, C)
    if frame >= Z * F:  # flyback
        return np.full((Y, X), 7, np.int16)
    z, f = divmod(frame, F)
    return moved(BASE[z, c, f], *MOTION[g // LAYOUT.pages_per_volume, z])


def valid(dy: int, dx: int) -> np.ndarray:
    """Registered pixels whose source lies in the frame."""
    yy, xx = np.mgrid[:Y, :X]
    return (yy + dy >= 0) & (yy + dy < Y) & (xx + dx >= 0) & (xx + dx < X)


@pytest.fixture(scope="module")
def tiff(tmp_path_factory):
    written = write_scanimage_tiff(
        tmp_path_factory.mktemp("reg") / "moved.tif", LAYOUT, content=content
    )
    with nsi.open_dataset(written.paths[0]) as ds:
        yield ds


@pytest.mark.parametrize("mode", ["integer", "bilinear", "fourier"])
def test_true_shifts_undo_the_motion(tiff, mode):
    R = registration(MOTION)
    for c in range(C):
        axis = tiff.read(c, slice_sample="axis", registration=R, shift_mode=mode)
        assert axis.shape == (T, Z, F, Y, X)
        assert axis.dtype == (np.int16 if mode == "integer" else np.float32)
        for t in range(T):
            for z in range(Z):
                ok = valid(*MOTION[t, z])
                for f in range(F):
                    np.testing.assert_allclose(
                        axis[t, z, f][ok], BASE[z, c, f][ok], atol=0 if mode != "fourier" else 2e-2
                    )
                    if mode == "integer":
                        assert (axis[t, z, f][~ok] == 0).all()
        got = tiff.read(c, slice_sample="mean", registration=R, shift_mode=mode)
        np.testing.assert_allclose(got, axis.astype(np.float64).mean(axis=2), atol=2e-2)
        for z in range(Z):
            np.testing.assert_array_equal(
                tiff.read(c, plane=z, slice_sample=1, registration=R, shift_mode=mode),
                axis[:, z, 1],
            )


def test_default_mode_and_interleave(tiff):
    R = registration(MOTION)
    got = tiff.read(1, slice_sample="interleave", registration=R)  # TIFF default: bilinear
    assert got.dtype == np.float32 and got.shape == (T * F, Z, Y, X)
    axis = tiff.read(1, slice_sample="axis", registration=R, shift_mode="integer")
    for r in range(T * F):  # row r is sample r % F of volume r // F
        np.testing.assert_array_equal(got[r], axis[r // F, :, r % F])
    rows = tiff.read(1, slice_sample="interleave", registration=R, times=[7, 2])
    np.testing.assert_array_equal(rows, got[[7, 2]])


def test_fractional_shifts_and_bidi_follow_apply_shifts(tiff):
    shifts = np.random.default_rng(1).uniform(-3, 3, (T, Z, 2))
    R = registration(shifts, bidi_phase=1.5)
    raw = tiff.read(0, slice_sample="axis")
    for mode in ("bilinear", "fourier"):
        got = tiff.read(0, slice_sample="axis", registration=R, shift_mode=mode)
        expect = apply_shifts(correct_bidi(raw, 1.5), shifts[:, :, None], mode)
        np.testing.assert_allclose(got, expect, rtol=1e-6, atol=1e-3)
    got = tiff.read(0, slice_sample="axis", registration=R, shift_mode="integer")
    expect = apply_shifts(correct_bidi(raw, 2.0), np.round(shifts)[:, :, None])
    np.testing.assert_array_equal(got, expect)  # integer: shifts and phase rounded, exact


def test_lazy_arrays_equal_read(tiff):
    R = registration(MOTION)
    expect = tiff.read(0, registration=R)
    arr = tiff.array(0, registration=R)
    assert arr.dtype == np.float32
    np.testing.assert_array_equal(arr.compute(), expect)
    np.testing.assert_array_equal(arr.compute(scheduler="processes"), expect)
    pickle.loads(pickle.dumps(arr))
    frames = tiff.frames(0, registration=R)
    assert frames.shape == expect.shape and frames.dtype == expect.dtype
    np.testing.assert_array_equal(frames[2], expect[2])
    np.testing.assert_array_equal(frames[[4, 0]], expect[[4, 0]])
    np.testing.assert_array_equal(frames[1:4, 1, 3:9], expect[1:4, 1, 3:9])
    np.testing.assert_array_equal(frames.to_dask().compute(), expect)
    # dask names: same registration, same name; other shifts or mode, another name
    assert tiff.array(0, registration=R).name == arr.name
    assert tiff.array(0, registration=registration(MOTION)).name == arr.name
    assert tiff.array(0, registration=R, shift_mode="integer").name != arr.name
    assert tiff.array(0, registration=registration(MOTION + 1)).name != arr.name
    assert tiff.array(0).name != arr.name
    np.testing.assert_array_equal(tiff.array(0).compute(), tiff.read(0))  # unregistered


def test_registration_must_fit(tiff):
    with pytest.raises(SelectionError, match="time points"):
        tiff.read(0, registration=registration(MOTION[:4]))
    with pytest.raises(SelectionError, match="plane"):
        tiff.array(0, registration=registration(MOTION[:, :1]))
    with pytest.raises(SelectionError):
        tiff.frames(0, registration=registration(MOTION, shape=(Y, X + 1)))
    with pytest.raises(SelectionError, match="shift_mode"):
        tiff.read(0, registration=registration(MOTION), shift_mode="cubic")


def brute_sums(ds, masks, R, mode):
    frames = ds.read(0, slice_sample=0, registration=R, shift_mode=mode).astype(np.float64)
    return np.array(
        [[frame[np.broadcast_to(m, frame.shape)].sum() for frame in frames] for m in masks.values()]
    )


def test_traces_of_registered_frames(tiff):
    yy, xx = np.mgrid[:Y, :X]
    per_plane = np.zeros((Z, Y, X), bool)
    per_plane[1, 4:9, 6:15] = True
    masks = {"disc": (yy - 10) ** 2 + (xx - 12) ** 2 <= 16, "edge": xx < 3, "plane 1": per_plane}
    R = registration(MOTION)
    got = traces(tiff, masks, kind="sum", slice_sample=0, registration=R, shift_mode="integer")
    np.testing.assert_array_equal(got.values, brute_sums(tiff, masks, R, "integer"))
    Rf = registration(MOTION + np.random.default_rng(2).uniform(-0.5, 0.5, MOTION.shape))
    expect = brute_sums(tiff, masks, Rf, "bilinear")
    got = traces(tiff, masks, kind="sum", slice_sample=0, registration=Rf)
    np.testing.assert_allclose(got.values, expect, rtol=1e-9)
    got = traces(tiff, masks, kind="sum", slice_sample=0, registration=Rf, scheduler="threads")
    np.testing.assert_allclose(got.values, expect, rtol=1e-9)
    unregistered = traces(tiff, masks, kind="sum", slice_sample=0)
    assert not np.array_equal(unregistered.values, expect)


# -- .siff: photons moved exactly ---------------------------------------------------------------
SIFF = SyntheticLayout(
    channels=(1, 2),
    num_planes=Z,
    frames_per_slice=F,
    num_flyback=1,
    num_volumes=T,
    height=Y,
    width=X,
)
ROLL = np.array([[0, 0], [2, -1], [-3, 2], [1, 3], [0, -2]])  # the writer's per-volume np.roll


@pytest.fixture(scope="module", params=["raw", "compressed"])
def siff(request, tmp_path_factory):
    sim = write_siff(
        tmp_path_factory.mktemp("regsiff") / "moved.siff",
        SIFF,
        compressed=request.param == "compressed",
        photons_per_frame=250,
        motion=ROLL,
        seed=4,
    )
    with nsi.open_dataset(sim.path) as ds:
        yield sim, ds


def siff_registration(bidi_phase=0.0, jitter=0.0):
    """Per-plane shifts: the writer's motion, plus a different offset per plane."""
    shifts = ROLL[:, None, :] + np.array([[0, 0], [1, -1]])[None]
    return registration(shifts + jitter, bidi_phase=bidi_phase)


def moved_photons(sim, g, shift, p):
    """Registered (y, x, tau) of page g's photons, those that stay inside the frame."""
    y, x, tau = sim.photons(g)
    x = x - p * (y % 2 == 1)  # bidirectional correction of odd rows, then the shift
    y, x = y - int(shift[0]), x - int(shift[1])
    keep = (
        (y >= 0) & (y < Y) & (x >= 0) & (x < X) & (x + int(shift[1]) >= 0) & (x + int(shift[1]) < X)
    )
    return y[keep], x[keep], tau[keep]


def brute_photons(sim, R, channel, p=0):
    """Per (t, z, f): registered photon lists."""
    shifts = np.round(R.shifts).astype(int)
    return {
        (t, z, f): moved_photons(sim, SIFF.page_index(t, z, f, channel), shifts[t, z], p)
        for t in range(T)
        for z in range(Z)
        for f in range(F)
    }


@pytest.mark.parametrize(("p", "compiled"), [(0, False), (1, False), (1, True)])
def test_siff_histograms_and_sums_are_exact(siff, p, compiled, monkeypatch):
    sim, ds = siff
    monkeypatch.setattr(SiffReader, "compiled", lambda self, pages: compiled)
    R = siff_registration(bidi_phase=p)
    rng = np.random.default_rng(5)
    mask2 = rng.random((Y, X)) < 0.3
    mask3 = rng.random((Z, Y, X)) < 0.5
    for c in range(C):
        photons = brute_photons(sim, R, c, p)
        L = ds.flim.num_bins
        for mask in (mask2, mask3, None):
            per = np.zeros((T, L), np.uint64)
            for (t, z, _), (y, x, tau) in photons.items():
                inside = (
                    np.ones(len(y), bool)
                    if mask is None
                    else np.broadcast_to(mask, (Z, Y, X))[z][y, x]
                )
                per[t] += np.bincount(tau[inside], minlength=L)[:L].astype(np.uint64)
            np.testing.assert_array_equal(
                ds.histogram(c, mask=mask, registration=R), per.sum(axis=0)
            )
            np.testing.assert_array_equal(
                ds.histogram(c, mask=mask, registration=R, per_frame=True, times=[3, 1]),
                per[[3, 1]],
            )
        masks = np.stack([mask2, ~mask2, np.zeros((Y, X), bool)])
        got = ds.photon_sums(masks, c, registration=R)
        n = np.zeros((3, T, Z), np.int64)
        s = np.zeros((3, T, Z), np.int64)
        for (t, z, _), (y, x, tau) in photons.items():
            for r, m in enumerate(masks):
                inside = m[y, x]
                n[r, t, z] += inside.sum()
                s[r, t, z] += tau[inside].sum()
        np.testing.assert_array_equal(got.counts, n)
        np.testing.assert_array_equal(got.arrival_sums, s)
        if c == 0:  # several kernel calls (one group per call) give the same
            with monkeypatch.context() as m:
                m.setattr(core_photons, "_TABLE_BYTES", 1)
                again = ds.photon_sums(masks, c, registration=R)
                np.testing.assert_array_equal(again.counts, n)
                np.testing.assert_array_equal(again.arrival_sums, s)
                np.testing.assert_array_equal(
                    ds.histogram(c, mask=None, registration=R), per.sum(axis=0)
                )
    # fractional shifts: rounded, as Registration.integer()
    Rj = siff_registration(bidi_phase=p, jitter=0.3)
    np.testing.assert_array_equal(
        ds.histogram(0, mask=mask2, registration=Rj),
        ds.histogram(0, mask=mask2, registration=Rj.integer()),
    )
    with pytest.raises(SelectionError):
        ds.histogram(0, registration=registration(ROLL[:, None]))


def test_siff_images_move_whole_photons(siff):
    sim, ds = siff
    R = siff_registration()
    photons = brute_photons(sim, R, 1)
    counts = np.zeros((T, Z, F, Y * X))
    sums = np.zeros_like(counts)
    for (t, z, f), (y, x, tau) in photons.items():
        counts[t, z, f] = np.bincount(y * X + x, minlength=Y * X)
        sums[t, z, f] = np.bincount(y * X + x, weights=tau, minlength=Y * X)
    counts, sums = counts.reshape(T, Z, F, Y, X), sums.reshape(T, Z, F, Y, X)
    intensity = ds.read(1, slice_sample="axis", registration=R)  # .siff default: integer
    assert intensity.dtype == np.uint16
    np.testing.assert_array_equal(intensity, counts)
    bw = ds.flim.bin_width_ns
    with np.errstate(invalid="ignore", divide="ignore"):
        for mode, n, s in [
            (0, counts[:, :, 0], sums[:, :, 0]),
            ("mean", counts.sum(axis=2), sums.sum(axis=2)),
        ]:
            lifetime = ds.lifetime_array(1, slice_sample=mode, registration=R).compute()
            np.testing.assert_allclose(lifetime, (s * bw / n).astype(np.float32), rtol=1e-6)
        frames = ds.frames(1, product="lifetime", registration=R)
        np.testing.assert_allclose(frames[3], (sums[3, :, 0] * bw / counts[3, :, 0]), rtol=1e-6)
    with pytest.raises(SelectionError, match="whole pixels"):
        ds.frames(1, product="lifetime", registration=R, shift_mode="bilinear")
    got = ds.lifetime_array(1, registration=R).compute(scheduler="processes")
    np.testing.assert_array_equal(np.isnan(got), counts[:, :, 0] == 0)
