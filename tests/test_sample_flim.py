"""The FLIM sample (planar 2-channel `.siff`, generated on first use) and the ``rate_map`` /
``lifetime_map`` options of the synthetic `.siff` writer behind it.
"""

from __future__ import annotations

import os
import time

import numpy as np
import pytest
from scipy import ndimage, stats

from napari_scanimage import sample
from napari_scanimage._core.reading import close_readers
from napari_scanimage.testing.siff import write_siff
from napari_scanimage.testing.tiff import SyntheticLayout

GENERATION_LIMIT_S = 6.0 if os.environ.get("CI") else 3.0
MAX_BYTES = 50_000_000


@pytest.fixture(scope="module")
def flim(tmp_path_factory):
    """(path, generation seconds, cache folder) of the sample in a fresh cache."""
    cache = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("NAPARI_SCANIMAGE_CACHE", str(cache))
        # CPU time of this process, not wall time: other processes on a loaded machine do not
        # count against the limit
        start = time.process_time()
        path = sample.sample_path("flim_2ch")
        yield path, time.process_time() - start, cache
    close_readers([path])  # the sample's layers (napari owns them) keep their readers


@pytest.fixture(scope="module")
def tissue():
    return sample._FlimTissue(sample.SAMPLES["flim_2ch"])


def test_generated_fast_small_and_planar_two_channel_siff(flim, opened):
    path, seconds, cache = flim
    assert seconds < GENERATION_LIMIT_S, f"generation took {seconds:.2f} s"
    assert path == cache / "flim_2ch_v1.siff" and os.listdir(cache) == [path.name]
    assert path.stat().st_size < MAX_BYTES
    ds = opened(path)
    lay = sample.SAMPLES["flim_2ch"]
    assert ds.is_siff and ds.info.channel_names == ("Green", "Red")
    assert ds.info.num_planes == 1 and ds.info.num_volumes == lay.num_volumes
    green = np.asarray(ds.read("Green"))
    assert green.shape == (lay.num_volumes, lay.height, lay.width)
    # a FLIM photon budget: most pixels 0-2 photons per frame, a few at most in cells
    assert (green <= 2).mean() > 0.99 and 0.02 < green.mean() < 0.3 and green.max() < 30


def test_second_call_reuses_the_file(flim, monkeypatch):
    path, _, _ = flim
    before = path.stat().st_mtime_ns
    monkeypatch.setenv("NAPARI_SCANIMAGE_CACHE", str(path.parent))

    def fail(*args, **kwargs):
        raise AssertionError("the sample was written again")

    monkeypatch.setattr(sample, "write_siff", fail)
    assert sample.sample_path("flim_2ch") == path
    assert path.stat().st_mtime_ns == before


def core_and_background(tissue):
    """Cell cores and background far from cells: robust to the drift (<= 3 px)."""
    cells = tissue.lifetime_map.astype(bool)
    return ndimage.binary_erosion(cells, iterations=3), ~ndimage.binary_dilation(
        cells, iterations=4
    )


def test_green_has_two_lifetimes_red_one(flim, tissue, opened):
    ds = opened(flim[0])
    core, background = core_and_background(tissue)
    assert core.sum() > 500 and background.sum() > 10_000

    def mean_arrival(channel):
        sums = ds.photon_sums(np.stack([core, background]), channel)
        n, s = sums.counts.sum(axis=(1, 2)), sums.arrival_sums.sum(axis=(1, 2))
        return s / n * sums.bin_width_ps / 1000.0

    green, red = mean_arrival("Green"), mean_arrival("Red")
    assert green[0] - green[1] > 1.0  # cell bodies 2.6 ns, background 0.9 ns
    assert abs(red[0] - red[1]) < 0.1  # one lifetime everywhere
    tau = np.asarray(ds.lifetime_array("Green")[:60], np.float64)  # per-pixel lifetime images
    assert np.nanmean(tau[:, core]) - np.nanmean(tau[:, background]) > 1.0


def test_green_cells_show_calcium_transients(flim, tissue, opened):
    ds = opened(flim[0])
    core, _ = core_and_background(tissue)
    labels = np.unique(tissue.cell_labels[core])
    masks = np.stack([core & (tissue.cell_labels == k) for k in labels])
    traces = ds.photon_sums(masks, "Green").counts[:, :, 0].astype(float)  # (cells, T)
    ratio = traces.max(axis=1) / np.maximum(np.median(traces, axis=1), 1)
    assert ratio.max() > 1.5
    truth = tissue.traces[labels - 1]
    corr = [np.corrcoef(a, b)[0, 1] for a, b in zip(traces, truth, strict=True) if b.std() > 0]
    assert max(corr) > 0.8  # the photons follow the cells' transients
    red = ds.photon_sums(masks, "Red").counts[:, :, 0].astype(float)
    assert np.median(red.std(axis=1) / np.sqrt(red.mean(axis=1))) < 1.3  # static: shot noise


def test_flim_sample_gives_green_and_red_layers(flim):
    from napari_scanimage.gui.sample_data import flim_sample

    layers = flim_sample()
    assert [kw["name"] for _, kw, _ in layers] == ["Green", "Red"]
    assert all(kind == "image" for _, _, kind in layers)
    assert layers[0][0].shape == (360, 256, 256)


def test_failed_write_leaves_no_file(tmp_path, monkeypatch):
    monkeypatch.setenv("NAPARI_SCANIMAGE_CACHE", str(tmp_path))

    def half_write(path, *args, **kwargs):
        with open(path, "wb") as fh:
            fh.write(b"II+\x00" + b"\x00" * 1000)
        raise RuntimeError("disk full")

    monkeypatch.setattr(sample, "write_siff", half_write)
    with pytest.raises(RuntimeError, match="disk full"):
        sample.sample_path("flim_2ch")
    assert os.listdir(tmp_path) == []


def test_tiff_sample_keeps_its_file_name(tmp_path, monkeypatch):
    monkeypatch.setenv("NAPARI_SCANIMAGE_CACHE", str(tmp_path))
    monkeypatch.setattr(
        sample, "write_scanimage_tiff", lambda path, *a, **k: open(path, "wb").close()
    )
    assert sample.sample_path("volume_2ch") == tmp_path / "volume_2ch_v1.tif"
    assert os.listdir(tmp_path) == ["volume_2ch_v1.tif"]


# --- write_siff(rate_map=..., lifetime_map=...) ---------------------------------------------

LAY = SyntheticLayout(channels=(1, 2), num_volumes=400, height=12, width=16)


def ramp_rate(g):
    """Channel 0: a left-to-right ramp (column 0 dark); channel 1: flat, brighter odd volumes."""
    t, c = divmod(g, 2)
    x = np.broadcast_to(np.arange(16) / 5.0, (12, 16))
    return x if c == 0 else np.full((12, 16), 1.0 + t % 2)


def test_rate_map_gives_poisson_counts_per_pixel(tmp_path, opened):
    s = write_siff(tmp_path / "r.siff", LAY, rate_map=ramp_rate, late_pages={5: 4}, seed=2)
    assert s.rate_maps is None and s.lifetime_map is None
    green = s.intensity(0)[:, 0].astype(float)  # (T, Y, X)
    assert green[:, :, 0].sum() == 0  # zero rate: no photon
    total, expected = green.sum(axis=0)[:, 1:], LAY.num_volumes * ramp_rate(0)[:, 1:]
    chi2 = (((total - expected) ** 2) / expected).sum()
    assert stats.chi2.sf(chi2, total.size) > 1e-3
    assert green.var(axis=0).mean() / green.mean(axis=0).mean() == pytest.approx(1.0, abs=0.1)
    red = s.intensity(1)[:, 0].sum(axis=(1, 2))
    assert red[1::2].mean() / red[::2].mean() == pytest.approx(2.0, rel=0.02)
    assert s.late_counts[5] == 4 and s.histogram(0)[s.num_bins :].sum() == 0
    ds = opened(s.path)
    np.testing.assert_array_equal(ds.read(0), s.intensity(0)[:, 0])


def test_lifetime_map_routes_photons_and_moves_with_motion(tmp_path):
    lmap = np.zeros((12, 16), np.uint8)
    lmap[3:8, 4:10] = 1
    motion = np.stack([np.arange(400) % 3, -(np.arange(400) % 2)], axis=1)
    s = write_siff(tmp_path / "l.siff", LAY, rate_map=lambda g: np.ones((12, 16)),
                   lifetime_map=lmap, motion=motion, taus_ns=((0.5, 2.0), (1.5,)),
                   late_pages={9: 3}, seed=4)  # fmt: skip
    np.testing.assert_array_equal(s.lifetime_map, lmap)
    C, K = s.component_counts.shape
    assert (C, K) == (2, 2) and s.component_counts[1, 1] == 0  # one-lifetime channel: its last
    # every channel-0 photon's lifetime follows the (rolled) map at its pixel
    parts = [(g // 2, *s.photons(g)) for g in range(0, s.total_pages, 2)]
    t = np.concatenate([np.full(p[1].size, p[0]) for p in parts])
    y, x, tau = (np.concatenate([p[i] for p in parts]) for i in (1, 2, 3))
    keep = tau < s.num_bins  # not the late photons
    y, x, tau, t = y[keep], x[keep], tau[keep], t[keep]
    comp = lmap[(y - motion[t, 0]) % 12, (x - motion[t, 1]) % 16]
    np.testing.assert_array_equal(np.bincount(comp, minlength=2), s.component_counts[0])
    ns = tau * s.bin_width_ps / 1000.0 - 1.0  # minus the IRF offset (wrapping is negligible)
    assert ns[comp == 1].mean() == pytest.approx(2.0, abs=0.1)
    assert ns[comp == 0].mean() == pytest.approx(0.5, abs=0.05)
    for channel in range(2):  # expected histograms use the drawn photons of each lifetime
        hist, expected = s.histogram(channel).astype(float), s.expected_histogram(channel)
        hist[s.num_bins :] = 0  # late photons are not in the model
        assert expected.sum() == pytest.approx(hist.sum(), rel=1e-9)
        big = expected >= 5  # pool the sparse bins
        obs, exp = np.r_[hist[big], hist[~big].sum()], np.r_[expected[big], expected[~big].sum()]
        assert stats.chisquare(obs[exp > 0], exp[exp > 0]).pvalue > 1e-3


def test_lifetime_map_is_validated(tmp_path):
    for bad in (np.zeros((3, 3), int), np.full((12, 16), 2), np.full((12, 16), 0.5)):
        with pytest.raises(ValueError, match="lifetime_map"):
            write_siff(tmp_path / "b.siff", LAY, lifetime_map=bad)
    with pytest.raises(ValueError, match="rate_map"):
        write_siff(tmp_path / "b.siff", LAY, rate_map=lambda g: -np.ones((12, 16)))
