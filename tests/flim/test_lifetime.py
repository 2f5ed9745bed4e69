"""Lifetime and phasor traces of ROIs against corrosiffpy, phasorpy and the written photons."""

from __future__ import annotations

import csv
import types

import numpy as np
import pytest
from phasorpy.phasor import phasor_from_signal
from scipy import stats

import napari_scanimage as nsi
from napari_scanimage.analysis.registration import Registration
from napari_scanimage.analysis.traces import traces
from napari_scanimage.errors import EmptyRoiWarning, SelectionError
from napari_scanimage.flim.lifetime import lifetime_traces
from napari_scanimage.testing.siff import write_siff
from napari_scanimage.testing.tiff import SyntheticLayout

PLANAR = SyntheticLayout(
    channels=(1, 2), num_planes=1, num_flyback=0, num_volumes=25, height=16, width=24
)
VOLUME = SyntheticLayout(
    channels=(1, 2),
    num_planes=3,
    frames_per_slice=2,
    num_flyback=1,
    num_volumes=7,
    height=12,
    width=14,
)


class _Offset:
    """Stands in for siffpy's FLIMParams: corrosiffpy converts it to bins and reads the offset."""

    def __init__(self, bins: float):
        self.units = "countbins"
        self.tau_offset = bins

    def convert_units(self, units, *args, **kwargs):
        assert units == "countbins"
        return self


def planar_rois(shape):
    Y, X = shape
    yy, xx = np.mgrid[:Y, :X]
    rois = {
        "disc": (yy - 7) ** 2 + (xx - 9) ** 2 <= 20,
        "overlap": (yy - 9) ** 2 + (xx - 12) ** 2 <= 16,
        "border": (yy == 0) | (xx == X - 1),
        "random": np.random.default_rng(5).random((Y, X)) < 0.3,
        "empty": np.zeros((Y, X), bool),
    }
    return rois


@pytest.fixture(scope="module", params=["raw", "compressed"])
def planar(request, tmp_path_factory):
    path = tmp_path_factory.mktemp("lt") / f"planar_{request.param}.siff"
    return write_siff(
        path,
        PLANAR,
        compressed=request.param == "compressed",
        photons_per_frame=600,
        late_pages={3: 4, 10: 2},
        seed=4,
    )


@pytest.fixture(scope="module")
def volume(tmp_path_factory):
    path = tmp_path_factory.mktemp("lt") / "volume.siff"
    return write_siff(
        path, VOLUME, compressed=True, photons_per_frame=300, late_pages={8: 3}, seed=9
    )


def test_lifetime_equals_corrosiffpy(planar):
    corrosiffpy = pytest.importorskip("corrosiffpy")
    ref = corrosiffpy.open_file(str(planar.path))
    rois = planar_rois((16, 24))
    masks = np.stack(list(rois.values()))
    bw_ns = planar.bin_width_ps / 1000
    with nsi.open_dataset(planar.path) as ds:
        for c in range(2):
            pages = [int(p) + c for p in ds.frame_indices(0)]
            with pytest.warns(EmptyRoiWarning, match="empty"):
                got = lifetime_traces(ds, rois, channel=c)
            tau_ref, n_ref, _ = ref.sum_rois_flim(masks, None, frames=pages)
            assert got.values.shape == (5, 25) and got.counts.dtype == np.int64
            np.testing.assert_array_equal(got.counts, n_ref.astype(np.int64))
            np.testing.assert_allclose(
                got.values / bw_ns, tau_ref, rtol=0, atol=1e-9, equal_nan=True
            )
            assert np.isnan(got.values[4]).all() and (got.counts[4] == 0).all()
            assert np.isfinite(got.values[:4]).all() and (got.counts[:4] > 0).all()
            off_bins = 47.25
            with pytest.warns(EmptyRoiWarning):
                shifted = lifetime_traces(ds, rois, channel=c, irf_offset_ns=off_bins * bw_ns)
            tau_off, _, _ = ref.sum_rois_flim(masks, _Offset(off_bins), frames=pages)
            np.testing.assert_allclose(
                shifted.values / bw_ns, tau_off, rtol=0, atol=1e-9, equal_nan=True
            )
            fit = types.SimpleNamespace(irf_offset_ns=off_bins * bw_ns)  # a DecayFit's field
            with pytest.warns(EmptyRoiWarning):
                from_fit = lifetime_traces(ds, rois, channel=c, irf_offset_ns=fit)
            np.testing.assert_array_equal(from_fit.values, shifted.values)
            assert from_fit.irf_offset_ns == pytest.approx(off_bins * bw_ns)


def brute_force(sim, rois3, channel, num_bins_period):
    """Per ROI and volume from the written photons: n, mean bin, CI half-width (bins), folded
    histogram over the period.
    """
    lay = sim.layout
    R, T = len(rois3), lay.num_volumes
    n = np.zeros((R, T), np.int64)
    mean = np.full((R, T), np.nan)
    half = np.full((R, T), np.nan)
    hist = np.zeros((R, T, num_bins_period))
    for t in range(T):
        taus = [[] for _ in range(R)]
        for z in range(lay.num_planes):
            for f in range(lay.frames_per_slice):
                y, x, tau = sim.photons(lay.page_index(t, z, f, channel))
                for r, m in enumerate(rois3):
                    taus[r].append(tau[m[z][y, x]])
        for r in range(R):
            a = np.concatenate(taus[r]).astype(np.float64)
            n[r, t] = a.size
            hist[r, t] = np.bincount(
                a.astype(np.int64) % num_bins_period, minlength=num_bins_period
            )
            if a.size:
                mean[r, t] = a.mean()
            if a.size > 1:
                half[r, t] = stats.t.ppf(0.975, a.size - 1) * a.std(ddof=1) / np.sqrt(a.size)
    return n, mean, half, hist


def test_volume_lifetime_and_phasor_brute_force(volume):
    Y, X = 12, 14
    rng = np.random.default_rng(2)
    rois = {
        "flat": rng.random((Y, X)) < 0.5,  # every plane
        "planes": rng.random((3, Y, X)) < 0.4,  # its own pixels per plane
        "only_z1": np.zeros((3, Y, X), bool),
    }
    rois["only_z1"][1, 2:9, 3:10] = True
    rois3 = [np.broadcast_to(m, (3, Y, X)) for m in rois.values()]
    N = round(volume.laser_period_ps / volume.bin_width_ps)
    assert N * volume.bin_width_ps == volume.laser_period_ps
    n, mean, half, hist = brute_force(volume, rois3, 1, N)
    assert n.min() > 10 and hist[..., :].sum() == n.sum()
    bw_ns = volume.bin_width_ps / 1000
    with nsi.open_dataset(volume.path) as ds:
        lt = lifetime_traces(ds, rois, channel=1, irf_offset_ns=0.5)
        np.testing.assert_array_equal(lt.counts, n)
        np.testing.assert_allclose(lt.values, mean * bw_ns - 0.5, rtol=0, atol=1e-9)
        np.testing.assert_allclose(lt.ci_high - lt.values, half * bw_ns, rtol=1e-9)
        np.testing.assert_allclose(lt.values - lt.ci_low, half * bw_ns, rtol=1e-9)
        np.testing.assert_allclose(lt.time, ds.timestamps(0, slice_sample="mean"))
        assert lt.channel == ds.info.channel_names[1] and lt.kind == "lifetime"
        # the folded histograms also come from the dataset's own masked histograms
        for r, m in enumerate(rois3):
            h = ds.histogram(1, mask=np.ascontiguousarray(m), per_frame=True).astype(float)
            folded = np.zeros((h.shape[0], N))
            np.add.at(folded, (slice(None), np.arange(h.shape[1]) % N), h)
            np.testing.assert_array_equal(folded, hist[r])
        for harmonic in (1, 2):
            ph = lifetime_traces(ds, rois, channel=1, kind="phasor", harmonic=harmonic)
            _, g, s = phasor_from_signal(hist, axis=-1, harmonic=harmonic)
            assert ph.values.shape == (3, 7, 2) and ph.harmonic == harmonic
            np.testing.assert_allclose(ph.values[..., 0], g, rtol=0, atol=1e-9)
            np.testing.assert_allclose(ph.values[..., 1], s, rtol=0, atol=1e-9)
            np.testing.assert_array_equal(ph.counts, n)
            k = np.arange(N)
            for comp, fn in ((0, np.cos), (1, np.sin)):  # CI from the photons' spread
                w = fn(2 * np.pi * harmonic * k / N)
                m1 = (hist * w).sum(-1) / n
                var = ((hist * w * w).sum(-1) - n * m1**2) / (n - 1)
                want = stats.t.ppf(0.975, n - 1) * np.sqrt(var / n)
                np.testing.assert_allclose(
                    ph.ci_high[..., comp] - ph.values[..., comp], want, rtol=1e-7
                )


def test_confidence_intervals_cover_the_truth(tmp_path):
    lay = SyntheticLayout(
        channels=(1,), num_planes=1, num_flyback=0, num_volumes=300, height=8, width=8
    )
    sim = write_siff(
        tmp_path / "const.siff",
        lay,
        photons_per_frame=480,
        taus_ns=((2.2,),),
        compressed=True,
        seed=21,
    )
    expected = sim.expected_histogram(0)
    k = np.arange(len(expected))
    true_bins = (k * expected).sum() / expected.sum()
    omega = 2 * np.pi * sim.bin_width_ps / sim.laser_period_ps
    true_g = (np.cos(omega * k) * expected).sum() / expected.sum()
    yy, xx = np.mgrid[:8, :8]
    rois = {f"q{i}": ((yy < 4) == (i // 2 == 0)) & ((xx < 4) == (i % 2 == 0)) for i in range(4)}
    with nsi.open_dataset(sim.path) as ds:
        lt = lifetime_traces(ds, rois, irf_offset_ns=0.0)
        ph = lifetime_traces(ds, rois, kind="phasor")
    true_ns = true_bins * sim.bin_width_ps / 1000
    assert lt.counts.min() > 30
    covered = (lt.ci_low <= true_ns) & (true_ns <= lt.ci_high)
    assert 0.9 <= covered.mean() <= 0.99, covered.mean()
    covered_g = (ph.ci_low[..., 0] <= true_g) & (true_g <= ph.ci_high[..., 0])
    assert 0.9 <= covered_g.mean() <= 0.99, covered_g.mean()
    assert abs(np.average(lt.values, weights=lt.counts) - true_ns) < 0.02


def test_bin_volumes_pool_photons(planar):
    rois = {k: v for k, v in planar_rois((16, 24)).items() if k != "empty"}
    with nsi.open_dataset(planar.path) as ds:
        one = lifetime_traces(ds, rois, times=slice(2, 22))
        three = lifetime_traces(ds, rois, times=slice(2, 22), bin_volumes=3)
        ph1 = lifetime_traces(ds, rois, kind="phasor", times=slice(2, 22))
        ph3 = lifetime_traces(ds, rois, kind="phasor", times=slice(2, 22), bin_volumes=3)
    group = np.arange(20) // 3  # 7 groups, the last of two volumes
    assert three.values.shape == (4, 7)
    n = np.stack([np.bincount(group, weights=c) for c in one.counts])
    np.testing.assert_array_equal(three.counts, n)
    w = np.stack(
        [np.bincount(group, weights=c * v) for c, v in zip(one.counts, one.values, strict=True)]
    )
    np.testing.assert_allclose(three.values, w / n, rtol=1e-12)
    np.testing.assert_allclose(
        three.time, np.bincount(group, weights=one.time) / np.bincount(group), rtol=1e-12
    )
    g = np.stack(
        [
            np.bincount(group, weights=c * v)
            for c, v in zip(ph1.counts, ph1.values[..., 0], strict=True)
        ]
    )
    np.testing.assert_allclose(ph3.values[..., 0], g / n, rtol=0, atol=1e-12)
    assert (three.ci_high - three.ci_low).mean() < (one.ci_high - one.ci_low).mean()


def test_registration_passes_through(planar):
    rois = {k: v for k, v in planar_rois((16, 24)).items() if k != "empty"}
    masks = np.stack(list(rois.values()))
    rng = np.random.default_rng(8)
    shifts = rng.integers(-3, 4, (25, 1, 2)).astype(float)
    reg = Registration(shifts, np.ones((25, 1)), np.zeros((1, 16, 24), np.float32))
    with nsi.open_dataset(planar.path) as ds:
        got = lifetime_traces(ds, rois, registration=reg)
        plain = lifetime_traces(ds, rois)
        sums = ds.photon_sums(masks, 0, registration=reg)
        ph = lifetime_traces(ds, rois, kind="phasor", registration=reg)
    np.testing.assert_array_equal(got.counts, sums.counts[..., 0])
    np.testing.assert_allclose(got.values, sums.mean_arrival_ns(), rtol=0, atol=1e-12)
    assert not np.array_equal(got.counts, plain.counts)
    np.testing.assert_array_equal(ph.counts, got.counts)


def test_traces_delegates_and_tiff_is_refused(planar, tmp_path):
    from napari_scanimage.testing.tiff import write_scanimage_tiff

    rois = {"a": np.ones((16, 24), bool)}
    with nsi.open_dataset(planar.path) as ds:
        via = traces(ds, rois, kind="phasor", harmonic=2, bin_volumes=5)
        direct = lifetime_traces(ds, rois, kind="phasor", harmonic=2, bin_volumes=5)
        np.testing.assert_array_equal(via.values, direct.values)
        lt = traces(ds, rois, kind="lifetime", irf_offset_ns=0.25, times=[1, 4])
        assert lt.values.shape == (1, 2) and lt.irf_offset_ns == 0.25
        with pytest.raises(SelectionError, match="kind"):
            lifetime_traces(ds, rois, kind="tau")
        with pytest.raises(SelectionError, match="bin_volumes"):
            lifetime_traces(ds, rois, bin_volumes=0)
        with pytest.raises(SelectionError, match="harmonic"):
            lifetime_traces(ds, rois, kind="phasor", harmonic=0)
        with pytest.raises(SelectionError, match="registration is for 3 time points"):
            lifetime_traces(
                ds,
                rois,
                registration=Registration(
                    np.zeros((3, 1, 2)), np.ones((3, 1)), np.zeros((1, 16, 24), np.float32)
                ),
            )
    written = write_scanimage_tiff(tmp_path / "a.tif", SyntheticLayout(num_volumes=2))
    with nsi.open_dataset(written.paths[0]) as ds:
        Y, X = ds.info.frame_shape
        for kind in ("lifetime", "phasor"):
            with pytest.raises(SelectionError, match="photon arrival times"):
                traces(ds, {"a": np.ones((Y, X), bool)}, kind=kind)


def test_csv(planar, tmp_path):
    rois = {"a": np.ones((16, 24), bool), "b": planar_rois((16, 24))["disc"]}
    with nsi.open_dataset(planar.path) as ds:
        lt = lifetime_traces(ds, rois, channel=1, times=slice(0, 4))
        ph = lifetime_traces(ds, rois, kind="phasor", times=slice(0, 3), harmonic=2)
    path = lt.to_csv(tmp_path / "lt.csv")
    with open(path, newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == [
        "time_s",
        "roi",
        "channel",
        "metric",
        "value",
        "ci_low",
        "ci_high",
        "photons",
    ]
    assert len(rows) == 1 + 2 * 4
    r = rows[1 + 4 + 2]  # ROI b, time 2
    assert r[1:4] == ["b", lt.channel, "lifetime_ns"]
    assert float(r[0]) == lt.time[2] and float(r[4]) == lt.values[1, 2]
    assert (float(r[5]), float(r[6]), int(r[7])) == (
        lt.ci_low[1, 2],
        lt.ci_high[1, 2],
        lt.counts[1, 2],
    )
    rows = list(csv.reader(ph.to_csv(tmp_path / "ph.csv").read_text().splitlines()))
    assert len(rows) == 1 + 2 * 2 * 3
    assert {r[3] for r in rows[1:]} == {"phasor_g_h2", "phasor_s_h2"}
    s_row = [r for r in rows if r[1] == "a" and r[3] == "phasor_s_h2"][1]
    assert float(s_row[4]) == ph.values[0, 1, 1]
