"""Piecewise-rigid registrations applied on read: TIFF frames warped by the interpolated field,
`.siff` photons moved by the field rounded at their pixel — against brute-force NumPy.
"""

from __future__ import annotations

import numpy as np
import pytest

import napari_scanimage as nsi
from napari_scanimage._core.shifting import apply_shifts
from napari_scanimage.analysis.piecewise import block_grid
from napari_scanimage.analysis.registration import Registration
from napari_scanimage.analysis.traces import traces
from napari_scanimage.flim.lifetime import lifetime_traces
from napari_scanimage.flim.pixels import pixel_histograms
from napari_scanimage.testing.siff import write_siff
from napari_scanimage.testing.tiff import SyntheticLayout, write_scanimage_tiff

T, Z, F, Y, X = 4, 2, 2, 40, 48
BLOCK = (16, 16)
LAYOUT = SyntheticLayout(
    channels=(1,), num_planes=Z, frames_per_slice=F, num_volumes=T, height=Y, width=X
)


def piecewise_registration(seed=0, rigid=2.0, residual=1.5, bidi_phase=0.0) -> Registration:
    """Random rigid shifts and block residuals on the grid ``register`` uses for BLOCK."""
    rng = np.random.default_rng(seed)
    sy, sx = block_grid(Y, BLOCK[0]), block_grid(X, BLOCK[1])
    centres = np.zeros((len(sy), len(sx), 2))
    centres[..., 0] = (sy + (BLOCK[0] - 1) / 2)[:, None]
    centres[..., 1] = (sx + (BLOCK[1] - 1) / 2)[None, :]
    shifts = rng.uniform(-rigid, rigid, (T, Z, 2))
    return Registration(
        shifts,
        np.ones((T, Z)),
        np.zeros((Z, Y, X), np.float32),
        bidi_phase=bidi_phase,
        block_shifts=rng.uniform(-residual, residual, (T, Z, len(sy), len(sx), 2)),
        block_centers=centres,
    )


def brute_bilinear(frame, d):
    """``out[y, x] = frame[y + d0, x + d1]``, bilinear, pixels outside the frame 0."""
    out = np.zeros(frame.shape)
    for y in range(frame.shape[0]):
        for x in range(frame.shape[1]):
            sy, sx = y + d[0, y, x], x + d[1, y, x]
            y0, x0 = int(np.floor(sy)), int(np.floor(sx))
            for yy, wy in ((y0, 1 - (sy - y0)), (y0 + 1, sy - y0)):
                for xx, wx in ((x0, 1 - (sx - x0)), (x0 + 1, sx - x0)):
                    if 0 <= yy < frame.shape[0] and 0 <= xx < frame.shape[1]:
                        out[y, x] += wy * wx * frame[yy, xx]
    return out


def brute_nearest(frame, d):
    """``out[y, x] = frame[round(y + d0), round(x + d1)]``, 0 outside."""
    out = np.zeros_like(frame)
    for y in range(frame.shape[0]):
        for x in range(frame.shape[1]):
            sy, sx = int(np.round(y + d[0, y, x])), int(np.round(x + d[1, y, x]))
            if 0 <= sy < frame.shape[0] and 0 <= sx < frame.shape[1]:
                out[y, x] = frame[sy, sx]
    return out


@pytest.fixture(scope="module")
def tiff(tmp_path_factory):
    written = write_scanimage_tiff(tmp_path_factory.mktemp("pw") / "pw.tif", LAYOUT)
    with nsi.open_dataset(written.paths[0]) as ds:
        yield ds


def test_frames_warped_by_the_field_equal_brute_force(tiff):
    R = piecewise_registration()
    raw = tiff.read(0, slice_sample="axis")
    got = tiff.read(0, slice_sample="axis", registration=R)  # TIFF default: bilinear
    assert got.dtype == np.float32 and got.shape == raw.shape
    whole = tiff.read(0, slice_sample="axis", registration=R, shift_mode="integer")
    assert whole.dtype == raw.dtype
    for t in range(T):
        for z in range(Z):
            d = R.displacement(t, z)
            for f in range(F):
                expect = brute_bilinear(raw[t, z, f].astype(np.float64), d)
                # (float32 field and coordinates: steep synthetic edges differ a little)
                np.testing.assert_allclose(got[t, z, f], expect, rtol=1e-5, atol=0.2)
                np.testing.assert_array_equal(whole[t, z, f], brute_nearest(raw[t, z, f], d))
    # lazy arrays and dask give the same; dask names know the field
    np.testing.assert_array_equal(
        tiff.frames(0, registration=R)[2], tiff.read(0, registration=R)[2]
    )
    arr = tiff.array(0, registration=R)
    np.testing.assert_array_equal(arr.compute(), tiff.read(0, registration=R))
    assert arr.name != tiff.array(0, registration=piecewise_registration(seed=1)).name
    same_rigid = Registration(  # the same rigid part, another block field
        R.shifts,
        R.correlation,
        R.reference,
        block_shifts=R.block_shifts + 0.5,
        block_centers=R.block_centers,
    )
    assert arr.name != tiff.array(0, registration=same_rigid).name


def test_constant_field_equals_rigid_shift(tiff):
    """Sign convention: block residuals c on top of rigid shifts s act as rigid shifts s + c."""
    R = piecewise_registration(residual=0.0)
    c = np.array([0.7, -1.2])
    const = Registration(
        R.shifts,
        R.correlation,
        R.reference,
        block_shifts=np.broadcast_to(c, R.block_shifts.shape).copy(),
        block_centers=R.block_centers,
    )
    np.testing.assert_allclose(
        const.displacement(1, 1), np.broadcast_to((R.shifts[1, 1] + c)[:, None, None], (2, Y, X))
    )
    rigid = Registration(R.shifts + c, R.correlation, R.reference)
    np.testing.assert_allclose(rigid.displacement(1, 1), const.displacement(1, 1))
    raw = tiff.read(0, slice_sample="axis")
    expect = apply_shifts(raw, (R.shifts + c)[:, :, None], "bilinear")
    np.testing.assert_allclose(
        tiff.read(0, slice_sample="axis", registration=const), expect, rtol=1e-5, atol=0.2
    )  # float32 coordinates on steep synthetic edges


def test_traces_of_piecewise_registered_frames(tiff):
    R = piecewise_registration(seed=3)
    yy, xx = np.mgrid[:Y, :X]
    masks = {"disc": (yy - 20) ** 2 + (xx - 24) ** 2 <= 36, "edge": xx < 4}
    frames = tiff.read(0, slice_sample=0, registration=R).astype(np.float64)
    expect = np.array(
        [[fr[np.broadcast_to(m, fr.shape)].sum() for fr in frames] for m in masks.values()]
    )
    got = traces(tiff, masks, kind="sum", slice_sample=0, registration=R)
    np.testing.assert_allclose(got.values, expect, rtol=1e-9)


# -- .siff photons -----------------------------------------------------------------------------
SIFF = SyntheticLayout(
    channels=(1,),
    num_planes=Z,
    frames_per_slice=F,
    num_flyback=1,
    num_volumes=T,
    height=Y,
    width=X,
)


@pytest.fixture(scope="module", params=["raw", "compressed"])
def siff(request, tmp_path_factory):
    sim = write_siff(
        tmp_path_factory.mktemp("pwsiff") / "pw.siff",
        SIFF,
        compressed=request.param == "compressed",
        photons_per_frame=400,
        seed=6,
    )
    with nsi.open_dataset(sim.path) as ds:
        yield sim, ds


def moved_photons(sim, R, t, z, f, p):
    """Registered (y, x, tau) of one page's photons, brute force: each photon moves by the
    field rounded at its (bidirectionally corrected) pixel; those leaving the frame dropped.
    """
    y, x, tau = sim.photons(SIFF.page_index(t, z, f, 0))
    d = np.round(R.displacement(t, z)).astype(int)
    out = [], [], []
    for yi, xi, ti in zip(y.tolist(), x.tolist(), tau.tolist(), strict=True):
        xc = xi - p * (yi % 2)
        if not 0 <= xc < X:
            continue
        qy, qx = yi - d[0, yi, xc], xc - d[1, yi, xc]
        if 0 <= qy < Y and 0 <= qx < X:
            for a, v in zip(out, (qy, qx, ti), strict=True):
                a.append(v)
    return tuple(np.array(a, np.int64) for a in out)


@pytest.mark.parametrize("p", [0, 1])
def test_siff_photons_move_by_the_rounded_field(siff, p):
    sim, ds = siff
    R = piecewise_registration(seed=4, bidi_phase=p)
    photons = {
        (t, z, f): moved_photons(sim, R, t, z, f, p)
        for t in range(T)
        for z in range(Z)
        for f in range(F)
    }
    L = ds.flim.num_bins
    mask = np.random.default_rng(1).random((Y, X)) < 0.4
    per = np.zeros((T, L), np.uint64)
    for (t, _, _), (y, x, tau) in photons.items():
        per[t] += np.bincount(tau[mask[y, x]], minlength=L)[:L].astype(np.uint64)
    np.testing.assert_array_equal(ds.histogram(0, mask=mask, registration=R), per.sum(axis=0))
    np.testing.assert_array_equal(
        ds.histogram(0, mask=mask, registration=R, per_frame=True, times=[2, 0]), per[[2, 0]]
    )
    masks = np.stack([mask, ~mask])
    sums = ds.photon_sums(masks, 0, registration=R)
    n = np.zeros((2, T, Z), np.int64)
    s = np.zeros((2, T, Z), np.int64)
    for (t, z, _), (y, x, tau) in photons.items():
        for r, m in enumerate(masks):
            n[r, t, z] += m[y, x].sum()
            s[r, t, z] += tau[m[y, x]].sum()
    np.testing.assert_array_equal(sums.counts, n)
    np.testing.assert_array_equal(sums.arrival_sums, s)
    lt = lifetime_traces(ds, {"in": mask, "out": ~mask}, registration=R)
    np.testing.assert_array_equal(lt.counts, n.sum(axis=2))
    bw = ds.flim.bin_width_ns
    np.testing.assert_allclose(lt.values, s.sum(axis=2) / n.sum(axis=2) * bw, rtol=1e-9)
    # per-pixel histograms (phasors, decay images) move the same photons
    hist = pixel_histograms(ds, 0, registration=R)
    expect_hist = np.zeros((Z, Y, X, hist.counts.shape[-1]), np.uint32)
    kept = 0
    for (_, z, _), (y, x, tau) in photons.items():
        np.add.at(expect_hist, (z, y, x, tau), 1)
        kept += len(y)
    np.testing.assert_array_equal(hist.counts, expect_hist)
    total = sum(len(sim.photons(SIFF.page_index(*k, 0))[0]) for k in photons)
    assert int(hist.counts.sum()) == kept < total  # some photons left the frame:
    assert hist.dropped == total - kept  # counted as dropped
    if p:
        return
    # images: counts (read) and mean arrival times (lifetime) of the moved photons
    counts = np.zeros((T, Z, F, Y * X))
    arrivals = np.zeros_like(counts)
    for (t, z, f), (y, x, tau) in photons.items():
        counts[t, z, f] = np.bincount(y * X + x, minlength=Y * X)
        arrivals[t, z, f] = np.bincount(y * X + x, weights=tau, minlength=Y * X)
    counts = counts.reshape(T, Z, F, Y, X)
    arrivals = arrivals.reshape(T, Z, F, Y, X)
    intensity = ds.read(0, slice_sample="axis", registration=R)  # .siff default: integer
    assert intensity.dtype == np.uint16
    np.testing.assert_array_equal(intensity, counts)
    with np.errstate(invalid="ignore", divide="ignore"):
        expect = (arrivals[:, :, 0] * bw / counts[:, :, 0]).astype(np.float32)
    lifetime = ds.lifetime_array(0, registration=R).compute()
    np.testing.assert_allclose(lifetime, expect, rtol=1e-6)
    assert int(counts.sum()) < sum(
        len(sim.photons(g)[0]) for g in range(SIFF.total_pages) if g % SIFF.pages_per_volume < Z * F
    )
