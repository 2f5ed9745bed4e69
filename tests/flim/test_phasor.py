"""Per-pixel histograms, phasor images, calibration and lifetime colours (flim.pixels,
flim.phasor, flim.phasor_plot, flim.colormaps).
"""

from __future__ import annotations

import numpy as np
import pytest
from phasorpy.phasor import phasor_from_signal

from napari_scanimage.analysis.registration import Registration
from napari_scanimage.errors import SelectionError
from napari_scanimage.flim import (
    DecayFit,
    PhasorImage,
    Reference,
    apparent_lifetimes,
    filter_phasor,
    fraction_image,
    histogram_phasor,
    intensity_modulated,
    lifetime_image,
    lifetime_ticks,
    mean_phasor,
    phasor_bounds,
    phasor_census,
    phasor_histogram,
    phasor_image,
    pixel_histograms,
    semicircle_distance,
    turbo,
)
from napari_scanimage.testing.siff import write_siff
from napari_scanimage.testing.tiff import SyntheticLayout

BIN_PS, PERIOD_PS = 20.0, 12500.0  # write_siff defaults: 625 bins per 80 MHz period
FREQ = 1e6 / PERIOD_PS


def _truth_histograms(truth, pages, length):
    """(len(pages) groups pooled) per-pixel histograms from the ground-truth photons."""
    pix, tau, page = truth._truth()
    keep = np.isin(page, pages)
    npix = truth.layout.height * truth.layout.width
    flat = np.bincount(
        pix[keep].astype(np.int64) * length + tau[keep].astype(np.int64), minlength=npix * length
    )
    return flat.reshape(truth.layout.height, truth.layout.width, length)


@pytest.mark.parametrize("compressed", [False, True])
def test_pixel_histograms_equal_ground_truth(tmp_path, compressed, opened):
    lay = SyntheticLayout(
        channels=(1, 2),
        num_planes=2,
        frames_per_slice=2,
        num_flyback=1,
        num_volumes=4,
        height=12,
        width=10,
    )
    late = {lay.page_index(1, 1, 0, 1): 7}
    truth = write_siff(
        tmp_path / "f.siff",
        lay,
        compressed=compressed,
        photons_per_frame=900,
        late_pages=late,
        seed=3,
    )
    ds = opened(truth.path)
    times, c = [1, 3], 1
    h = pixel_histograms(ds, c, times=times)
    assert h.counts.dtype == np.uint32 and h.counts.ndim == 4 and h.dropped == 0
    L = h.counts.shape[-1]
    assert L > truth.num_bins  # the late photons are kept, not wrapped
    for z in range(2):
        pages = [lay.page_index(t, z, f, c) for t in times for f in range(2)]
        np.testing.assert_array_equal(h.counts[z], _truth_histograms(truth, pages, L))
    one = pixel_histograms(ds, c, times=times, plane=1)
    np.testing.assert_array_equal(one.counts, h.counts[1])
    n_period = 625
    drop = pixel_histograms(ds, c, times=times, beyond_period="drop")
    np.testing.assert_array_equal(drop.counts, h.counts[..., :n_period])
    assert drop.dropped == int(h.counts[..., n_period:].sum()) >= 7
    wrap = pixel_histograms(ds, c, times=times, beyond_period="wrap")
    folded = h.counts[..., :n_period].astype(np.int64)
    for k in range(n_period, L):
        folded[..., k % n_period] += h.counts[..., k]
    np.testing.assert_array_equal(wrap.counts, folded)
    coarse = pixel_histograms(ds, c, times=times, bin_factor=4, beyond_period="drop")
    assert coarse.bin_width_ps == 4 * BIN_PS and coarse.counts.shape[-1] == 157
    padded = np.pad(drop.counts, [(0, 0)] * 3 + [(0, 3)])
    np.testing.assert_array_equal(coarse.counts, padded.reshape(*padded.shape[:3], 157, 4).sum(-1))
    with pytest.raises(SelectionError):
        pixel_histograms(ds, c, beyond_period="fold")


def test_registered_histograms_match_masked_histograms(tmp_path, opened):
    lay = SyntheticLayout(num_volumes=5, height=16, width=14)
    motion = np.array([[0, 0], [1, -2], [-2, 1], [3, 0], [0, 2]])
    truth = write_siff(tmp_path / "m.siff", lay, photons_per_frame=3000, motion=motion)
    ds = opened(truth.path)
    reg = Registration(
        motion[:, None, :].astype(float), np.ones((5, 1)), np.zeros((1, 16, 14), np.float32)
    )
    h = pixel_histograms(ds, registration=reg)
    L = h.counts.shape[-1]
    total = ds.histogram(registration=reg)
    np.testing.assert_array_equal(h.counts.sum(axis=(0, 1)), total[:L])
    assert h.dropped == int(truth.photon_counts.sum()) - int(total.sum())
    for y, x in [(0, 0), (5, 7), (15, 13), (8, 1)]:
        mask = np.zeros((16, 14), bool)
        mask[y, x] = True
        ref = ds.histogram(mask=mask, registration=reg)
        np.testing.assert_array_equal(h.counts[y, x], ref[:L])
    life, n = lifetime_image(ds, registration=reg)
    np.testing.assert_array_equal(n, h.counts.sum(-1))
    mean = (h.counts * np.arange(L)).sum(-1) / np.maximum(n, 1) * BIN_PS / 1000
    np.testing.assert_allclose(life[n > 0], mean[n > 0], rtol=1e-12)


def test_phasor_equals_phasorpy_on_the_histograms(tmp_path, opened):
    lay = SyntheticLayout(num_volumes=3, height=20, width=16)
    truth = write_siff(tmp_path / "p.siff", lay, photons_per_frame=1500, seed=5)
    ds = opened(truth.path)
    for harmonic in (1, 2):
        im = phasor_image(ds, harmonic=harmonic, min_photons=4)
        pages = [lay.page_index(t, 0, 0, 0) for t in range(3)]
        hist = _truth_histograms(truth, pages, 625).astype(np.float64)
        centres = (np.arange(625) + 0.5) * BIN_PS  # 625 whole bins per period here
        phases = 2 * np.pi * harmonic * centres / PERIOD_PS
        mean, g, s = phasor_from_signal(hist, sample_phase=phases)
        np.testing.assert_allclose(im.mean, mean * 625, rtol=1e-12)
        ok = im.mean >= 4
        assert ok.any() and (~ok).any()
        np.testing.assert_allclose(im.g[ok], g[ok], rtol=0, atol=1e-9)
        np.testing.assert_allclose(im.s[ok], s[ok], rtol=0, atol=1e-9)
        assert np.isnan(im.g[~ok]).all() and np.isnan(im.s[~ok]).all()
    with pytest.raises(SelectionError):
        phasor_image(ds, beyond_period="keep")


def _pooled(im):
    w = np.where(np.isfinite(im.g), im.mean, 0.0)
    return np.nansum(im.g * w) / w.sum(), np.nansum(im.s * w) / w.sum()


def test_single_exponential_lies_on_the_semicircle(tmp_path, opened):
    lay = SyntheticLayout(num_volumes=4, height=32, width=32)
    raw = write_siff(
        tmp_path / "a.siff",
        lay,
        photons_per_frame=40000,
        taus_ns=((2.5,),),
        irf_offset_ns=0.0,
        irf_width_ns=0.0,
        keep_truth=False,
    )
    im = phasor_image(opened(raw.path))
    phase_tau, mod_tau = apparent_lifetimes(*_pooled(im), FREQ)
    assert phase_tau == pytest.approx(2.5, rel=0.03) and mod_tau == pytest.approx(2.5, rel=0.03)
    # per pixel: the median is on the semicircle too
    per_pixel = apparent_lifetimes(im.g, im.s, FREQ)[0]
    assert np.nanmedian(per_pixel) == pytest.approx(2.5, rel=0.03)

    irf = {"irf_offset_ns": 1.3, "irf_width_ns": 0.15}
    sample = write_siff(
        tmp_path / "b.siff",
        lay,
        photons_per_frame=40000,
        taus_ns=((2.5,),),
        keep_truth=False,
        **irf,
    )
    ds = opened(sample.path)
    assert apparent_lifetimes(*_pooled(phasor_image(ds)), FREQ)[0] > 4  # delayed by the IRF
    fit = DecayFit(
        taus_ns=(2.5,),
        fractions=(1.0,),
        background=0.0,
        total=1.0,
        bin_width_ps=BIN_PS,
        period_ps=PERIOD_PS,
        **irf,
    )
    by_fit = phasor_image(ds, calibration=fit)
    assert by_fit.calibration == "fit"
    taus = apparent_lifetimes(*_pooled(by_fit), FREQ)
    np.testing.assert_allclose(taus, 2.5, rtol=0.03)
    ref = write_siff(
        tmp_path / "r.siff",
        lay,
        photons_per_frame=40000,
        taus_ns=((1.0,),),
        keep_truth=False,
        seed=9,
        **irf,
    )
    ref_hist = opened(ref.path).histogram()
    by_ref = phasor_image(ds, calibration=Reference(ref_hist, 1.0))
    assert by_ref.calibration == "reference"
    np.testing.assert_allclose(
        by_ref.apparent_lifetimes()[0][by_ref.mean > 0].mean(), 2.5, rtol=0.05
    )
    np.testing.assert_allclose(apparent_lifetimes(*_pooled(by_ref), FREQ), 2.5, rtol=0.03)
    # the reference's own phasor lands on its lifetime
    _, rg, rs = histogram_phasor(ref_hist, bin_width_ps=BIN_PS, laser_period_ps=PERIOD_PS)
    assert np.hypot(rg, rs) < 1.0


def test_fraction_image_recovers_two_lifetime_map(tmp_path, opened):
    lay = SyntheticLayout(num_volumes=6, height=24, width=24)
    lmap = np.zeros((24, 24), np.int64)
    lmap[:, 12:] = 1
    lmap[8:16, 4:8] = 1
    irf = {"irf_offset_ns": 0.8, "irf_width_ns": 0.1}
    truth = write_siff(
        tmp_path / "l.siff",
        lay,
        photons_per_frame=30000,
        taus_ns=((0.6, 3.0),),
        lifetime_map=lmap,
        keep_truth=False,
        **irf,
    )
    ds = opened(truth.path)
    fit = DecayFit(
        taus_ns=(0.6, 3.0),
        fractions=(0.5, 0.5),
        background=0.0,
        total=1.0,
        bin_width_ps=BIN_PS,
        period_ps=PERIOD_PS,
        **irf,
    )
    im = phasor_image(ds, calibration=fit, min_photons=20)
    frac = im.fraction(0.6, 3.0)
    np.testing.assert_array_equal(frac, fraction_image(im.g, im.s, 0.6, 3.0, FREQ))
    known = (lmap == 0).astype(float)
    ok = np.isfinite(frac)
    assert ok.mean() > 0.5
    assert np.abs(frac[ok] - known[ok]).mean() < 0.05
    assert np.nanmean(frac[lmap == 0]) == pytest.approx(1.0, abs=0.05)
    assert np.nanmean(frac[lmap == 1]) == pytest.approx(0.0, abs=0.05)
    # a pixel block mixing both lifetimes: the pooled phasor gives its photon fraction
    block = (slice(4, 20), slice(8, 16))
    w = np.where(ok, im.mean, 0)[block]
    g = np.nansum(im.g[block] * w) / w.sum()
    s = np.nansum(im.s[block] * w) / w.sum()
    expect = (w * known[block]).sum() / w.sum()
    assert fraction_image(g, s, 0.6, 3.0, FREQ) == pytest.approx(expect, abs=0.05)


def test_lifetime_image_equals_ground_truth(tmp_path, opened):
    lay = SyntheticLayout(num_planes=2, num_volumes=3, height=10, width=12)
    truth = write_siff(tmp_path / "t.siff", lay, photons_per_frame=150, empty_pages=[2])
    ds = opened(truth.path)
    fit = DecayFit(
        taus_ns=(1.0,),
        fractions=(1.0,),
        irf_offset_ns=0.25,
        irf_width_ns=0.1,
        background=0.0,
        total=1.0,
        bin_width_ps=BIN_PS,
        period_ps=PERIOD_PS,
    )
    life, n = lifetime_image(ds, times=[0, 2], irf_offset_ns=fit)
    pix, tau, page = truth._truth()
    for z in range(2):
        pages = [lay.page_index(t, z, 0, 0) for t in (0, 2)]
        keep = np.isin(page, pages)
        cnt = np.bincount(pix[keep], minlength=120).reshape(10, 12)
        tot = np.bincount(pix[keep], weights=tau[keep], minlength=120).reshape(10, 12)
        np.testing.assert_array_equal(n[z], cnt)
        assert (cnt == 0).any()
        assert np.isnan(life[z][cnt == 0]).all()
        np.testing.assert_allclose(
            life[z][cnt > 0], tot[cnt > 0] / cnt[cnt > 0] * BIN_PS / 1000 - 0.25, rtol=1e-12
        )
    life1, n1 = lifetime_image(ds, times=[0, 2], plane=1)
    np.testing.assert_array_equal(n1, n[1])


def test_intensity_modulated_colours():
    life = np.array([[1.0, 2.0, 3.0], [np.nan, 2.0, 9.0]])
    counts = np.array([[0, 10, 20], [20, 20, 5]])
    rgb = intensity_modulated(life, counts, tau_range=(1.0, 3.0))
    assert rgb.shape == (2, 3, 3) and rgb.dtype == np.float32
    np.testing.assert_array_equal(rgb[0, 0], 0)  # no photons: black
    np.testing.assert_array_equal(rgb[1, 0], 0)  # no lifetime: black
    np.testing.assert_allclose(rgb[0, 2], turbo(1.0), rtol=1e-6)  # max counts: full colour
    np.testing.assert_allclose(rgb[1, 1], turbo(0.5), rtol=1e-6)
    np.testing.assert_allclose(rgb[0, 1], 0.5 * turbo(0.5), rtol=1e-6)
    np.testing.assert_allclose(rgb[1, 2], 0.25 * turbo(1.0), rtol=1e-6)  # clipped lifetime
    gray = intensity_modulated(
        life, counts, tau_range=(1.0, 3.0), colormap="gray", count_range=(0, 10)
    )
    np.testing.assert_allclose(gray[0, 1], [0.5, 0.5, 0.5])
    table = intensity_modulated(life, counts, tau_range=(1.0, 3.0), colormap=[[0, 0, 0], [1, 0, 0]])
    np.testing.assert_allclose(table[1, 1], [0.5, 0, 0])
    # turbo: dark at 0, bright green-yellow in the middle, dark red at 1
    lo, mid, hi = turbo([0.0, 0.5, 1.0])
    assert lo.sum() < 0.5 and mid[1] > 0.9 and hi[0] > 0.4 > hi[1] + hi[2]
    with pytest.raises(SelectionError):
        intensity_modulated(life, counts, tau_range=(3.0, 1.0))


def _noisy_image(seed=0):
    from phasorpy.lifetime import phasor_from_lifetime

    rng = np.random.default_rng(seed)
    g0, s0 = phasor_from_lifetime(80.0, 2.0)
    mean = rng.poisson(20, (3, 16, 16)).astype(np.float64)
    g = g0 + rng.normal(0, 0.1, mean.shape)
    s = s0 + rng.normal(0, 0.1, mean.shape)
    mean[0, 0, :4] = 0
    g[0, 0, :4] = s[0, 0, :4] = np.nan
    return PhasorImage(mean, g, s, 80.0, 1, "fit")


def test_filter_phasor_is_phasorpys_median_then_threshold():
    from phasorpy.phasor import phasor_filter_median, phasor_threshold

    image = _noisy_image()
    got = filter_phasor(image, min_photons=18, median_size=3, median_repeat=2)
    m, g, s = phasor_filter_median(image.mean, image.g, image.s, size=3, repeat=2, skip_axis=0)
    _, g, s = phasor_threshold(m, g, s, mean_min=18)
    np.testing.assert_array_equal(got.g, g)
    np.testing.assert_array_equal(got.s, s)
    np.testing.assert_array_equal(got.mean, image.mean)
    assert got.threshold == 18 and got.median == (3, 2) and got.calibration == "fit"
    # the filter narrows the spread of the noisy phasors
    assert np.nanstd(got.g) < 0.6 * np.nanstd(image.g)
    with pytest.raises(SelectionError):
        filter_phasor(image, median_size=0)


def test_census_counts_every_pixel_by_reason():
    mean = np.array([0.0, 5.0, 50.0, 50.0, 50.0, 50.0, 50.0])
    g = np.array([np.nan, np.nan, np.nan, 0.5, 0.9, 2.5, 0.5])
    s = np.array([np.nan, np.nan, np.nan, 0.45, 0.6, 0.1, 0.52])
    image = PhasorImage(mean, g, s, 80.0, 1, "fit", threshold=10)
    census = phasor_census(image, (-0.05, 1.05, -0.05, 0.8), tolerance=0.05)
    assert (
        census.pixels,
        census.no_photons,
        census.below_threshold,
        census.undefined,
        census.outside_plot,
        census.plotted,
    ) == (7, 1, 1, 1, 1, 3)
    assert census.on_semicircle == 2  # (0.5, 0.45) inside, (0.5, 0.52) within 0.05
    assert census.semicircle_fraction == pytest.approx(2 / 3)
    text = census.describe()
    assert "3 / 7 pixels plotted, 66.7 % on/inside" in text
    assert "1 below the photon threshold" in text
    assert "1 outside the plot" in text
    # the default bounds include every finite phasor up to the limit (1.5)
    bounds = phasor_bounds(g, s)
    assert bounds[0] <= 0 and bounds[1] == 1.5 and bounds[3] >= 0.6
    assert phasor_census(image).outside_plot == 1  # g = 2.5
    assert phasor_bounds([1.2], [0.7])[1:] == pytest.approx((1.22, -0.05, 0.72))


def test_semicircle_distance_and_histogram():
    from phasorpy.lifetime import phasor_from_lifetime, phasor_semicircle

    sg, ss = phasor_semicircle(64)
    np.testing.assert_allclose(semicircle_distance(sg, ss), 0.0, atol=1e-12)
    assert semicircle_distance(0.5, 0.25) == pytest.approx(-0.25)
    assert semicircle_distance(0.5, -0.1) == pytest.approx(0.1)
    g, s = phasor_from_lifetime(80.0, [0.5, 4.0])
    image = PhasorImage(np.array([10.0, 30.0]), g, s, 80.0, 1)
    hist = phasor_histogram(image, (0.0, 1.0, 0.0, 0.5), cells=100)
    assert hist.shape == (100, 50) and hist.sum() == 40.0  # square cells, photon-weighted


def test_lifetime_ticks_on_the_semicircle():
    taus, g, s = lifetime_ticks(80.0, (0.5, 2.0))
    np.testing.assert_allclose(semicircle_distance(g, s), 0.0, atol=1e-12)
    np.testing.assert_allclose(apparent_lifetimes(g, s, 80.0)[0], taus)


def test_mean_phasor_lifetimes():
    from phasorpy.lifetime import phasor_from_lifetime

    g, s = phasor_from_lifetime(80.0, np.array([1.0, 3.0]))
    image = PhasorImage(np.array([1.0, 3.0]), g, s, 80.0, 1)
    gm, sm, tp, tm = mean_phasor(image, mask=[True, False])
    assert (gm, sm) == pytest.approx((g[0], s[0])) and (tp, tm) == pytest.approx((1.0, 1.0))
    gm, sm, _, _ = mean_phasor(image)
    assert gm == pytest.approx(0.25 * g[0] + 0.75 * g[1])
    assert np.isnan(mean_phasor(image, mask=[False, False])[0])
