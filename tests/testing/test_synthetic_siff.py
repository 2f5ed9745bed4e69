"""Check the synthetic `.siff` writer against its own ground truth with an independent struct IFD
walk (docs/formats.md §2) and with corrosiffpy (the reference reader).
"""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest
from scipy import stats

from napari_scanimage.testing.siff import write_siff
from napari_scanimage.testing.tiff import SyntheticLayout

corrosiffpy = pytest.importorskip("corrosiffpy")

KINDS = ("raw", "compressed")
# tag set of the independent reference files (data/independent/siff_*.siff)
REFERENCE_TAGS = [256, 257, 258, 259, 262, 270, 273, 274, 277, 278, 279, 282, 283, 284, 296,
                  305, 315, 339, 907]  # fmt: skip
LAYOUT = SyntheticLayout(channels=(1, 2), num_planes=2, num_flyback=1, num_volumes=4,
                         extra_pages=3, height=20, width=28)  # fmt: skip
EMPTY, LATE = (2, 13), {7: 3, 12: 1}
NOTES = {1: "odour on", 8: "odour off = 2 s"}


def walk(path):
    """Header fields and [{tag: (type, count, value)}, ...] with IFD offsets, via struct."""
    data = path.read_bytes()
    assert data[:8] == b"II+\x00\x08\x00\x00\x00"
    first = struct.unpack_from("<Q", data, 8)[0]
    head = dict(zip(("magic", "version", "n_static", "n_roi"),
                    struct.unpack_from("<4I", data, 16), strict=True))  # fmt: skip
    pages, ifd = [], first
    while ifd:
        n = struct.unpack_from("<Q", data, ifd)[0]
        entries = [struct.unpack_from("<HHQQ", data, ifd + 8 + 20 * k) for k in range(n)]
        tags = {t: (ty, c, v) for t, ty, c, v in entries}
        assert [e[0] for e in entries] == sorted(tags)  # sorted, unique
        tags["ifd"], tags["ifd_end"] = ifd, ifd + 16 + 20 * n
        pages.append(tags)
        ifd = struct.unpack_from("<Q", data, ifd + 8 + 20 * n)[0]
    return data, first, head, pages


def fold(hist, n):
    """Corrosiff's histogram: arrival bins wrapped modulo n."""
    return np.bincount(np.arange(hist.size) % n, weights=hist, minlength=n).astype(np.uint64)


@pytest.fixture(scope="module", params=KINDS)
def siff(request, tmp_path_factory):
    path = tmp_path_factory.mktemp("siff") / f"{request.param}.siff"
    return write_siff(path, LAYOUT, compressed=request.param == "compressed",
                      photons_per_frame=400, taus_ns=((0.5, 2.5), (3.0,)), empty_pages=EMPTY,
                      late_pages=LATE, annotations=NOTES, num_bins=640, seed=7)  # fmt: skip


def test_header_and_static_text(siff):
    data, first, head, pages = walk(siff.path)
    assert head["magic"] == 117637889 and head["version"] == 4
    n, m = head["n_static"], head["n_roi"]
    static = data[32 : 32 + n].decode()
    assert static.endswith("\n\x00") and data[32 + n + m - 1] == 0
    assert "imagingRoiGroup" in json.loads(data[32 + n : 32 + n + m - 1])["RoiGroups"]
    assert first in (32 + n + m, 33 + n + m) and first % 2 == 0
    lines = static.rstrip("\x00").splitlines()
    assert "SI.hScan2D.hAcq.Tau_bins = 640" in lines
    assert "SI.hScan2D.hAcq.binResolution = 2" in lines
    assert "SI.hScan2D.hAcq.countrates = [80000000 1000]" in lines
    assert "SI.hStackManager.actualNumSlices = 2" in lines
    assert len(pages) == LAYOUT.total_pages == siff.total_pages
    assert pages[0][305] == (2, n, 32) and pages[0][315] == (2, m, 32 + n)


def test_ifds_strips_and_truth(siff):
    data, _, _, pages = walk(siff.path)
    H, W, comp = LAYOUT.height, LAYOUT.width, siff.compressed
    for g, tags in enumerate(pages):
        assert sorted(k for k in tags if isinstance(k, int)) == REFERENCE_TAGS
        assert tags[256][2] == W and tags[257][2] == H and tags[278][2] == H
        assert tags[258][2] == (16 if comp else 64) and tags[907] == (1, 1, int(comp))
        assert tags[259][2] == 1 and tags[277][2] == 1 and tags[339][2] == 1
        _, n_desc, E = tags[270]
        S, count = tags[273][2], tags[279][2]
        assert E == tags["ifd_end"]
        assert n_desc == (S - E - 2 * H * W if comp else S - E)  # description length rule
        desc = data[E : E + n_desc]
        assert desc.endswith(b"\x00") and desc.rstrip(b"\x00").decode() == siff.description(g)
        nxt = pages[g + 1]["ifd"] if g + 1 < len(pages) else len(data)
        assert S + count == nxt  # the next IFD follows the strip
        y, x, tau = siff.photons(g)
        if comp:
            raster = np.frombuffer(data, "<u2", H * W, S - 2 * H * W).astype(np.int64)
            assert count == 2 * raster.sum()
            np.testing.assert_array_equal(np.repeat(np.arange(H * W), raster), y * W + x)
            np.testing.assert_array_equal(np.frombuffer(data, "<u2", count // 2, S), tau)
        else:
            rec = np.frombuffer(data, "<u8", count // 8, S)
            assert count % 8 == 0
            np.testing.assert_array_equal(rec >> 48, y)
            np.testing.assert_array_equal((rec >> 32) & 0xFFFF, x)
            np.testing.assert_array_equal(rec & 0xFFFFFFFF, tau)
        flyback = (g % LAYOUT.pages_per_volume) // 2 >= 2
        assert (count == 0) == (flyback or g in EMPTY)
    assert pages[-1]["ifd"] and struct.unpack_from("<Q", data, pages[-1]["ifd_end"] - 8)[0] == 0


def test_raw_order_is_not_sorted(siff):
    y, x, _ = siff.photons(0)
    key = y * LAYOUT.width + x
    assert (np.diff(key) >= 0).all() == siff.compressed


def test_late_photons(siff):
    for g in range(siff.total_pages):
        tau = siff.photons(g)[2]
        late = tau >= siff.num_bins
        assert late.sum() == LATE.get(g, 0) == siff.late_counts[g]
        assert (tau[late] < siff.num_bins + 40).all()
    assert siff.num_bins == 640 and siff.bin_width_ps == 20.0


def test_corrosiff_frames(siff):
    f = corrosiffpy.open_file(str(siff.path))
    frames = f.get_frames(frames=list(range(siff.total_pages)))
    assert frames.dtype == np.uint16 and frames.shape == (siff.total_pages, 20, 28)
    for g in range(siff.total_pages):
        y, x, _ = siff.photons(g)
        np.testing.assert_array_equal(frames[g].ravel(), np.bincount(y * 28 + x, minlength=560))
    for c in range(2):
        inten = siff.intensity(c)
        assert inten.shape == (4, 2, 20, 28) and inten.dtype == np.uint16
        for t in range(4):
            for z in range(2):
                np.testing.assert_array_equal(frames[LAYOUT.page_index(t, z, 0, c)], inten[t, z])


def test_corrosiff_histogram(siff):
    f = corrosiffpy.open_file(str(siff.path))
    n_bins = siff.num_bins + 2
    for c in range(2):  # corrosiffpy 0.1.2 fails on empty compressed frames: leave them out
        pages = [g for g in range(c, siff.total_pages, 2) if siff.photon_counts[g]]
        got = f.get_histogram(frames=pages)
        assert got.shape == (n_bins,)
        np.testing.assert_array_equal(got, fold(siff.histogram(c), n_bins))


def test_corrosiff_timestamps_and_text(siff):
    f = corrosiffpy.open_file(str(siff.path))
    pages = list(range(siff.total_pages))
    np.testing.assert_array_equal(f.get_experiment_timestamps(frames=pages), siff.timestamps())
    np.testing.assert_array_equal(f.get_epoch_timestamps_laser(frames=pages), siff.epoch_laser())
    np.testing.assert_array_equal(f.get_epoch_timestamps_system(frames=pages),
                                  siff.epoch_system())  # fmt: skip
    notes = siff.annotation_timestamps()
    assert f.get_appended_text() == [(g, NOTES[g], notes[g]) for g in sorted(NOTES)]
    ts = siff.timestamps()
    assert ts[0] == ts[1] and ts[2] - ts[0] == pytest.approx(1 / LAYOUT.frame_rate, abs=2e-6)
    meta = f.get_frame_metadata(frames=[8])[0]["Frame metadata"]
    assert meta.rstrip("\x00") == siff.description(8)
    assert "frameNumbers = 5\n" in meta and "Appended text = odour off = 2 s\n" in meta


def test_clock_model(tmp_path):
    lay = SyntheticLayout(num_volumes=100, height=4, width=4, frame_rate=30.0)
    s = write_siff(tmp_path / "clock.siff", lay, photons_per_frame=1)
    laser, system = s.epoch_laser(), s.epoch_system()
    assert (np.diff(laser) > 0).all()
    np.testing.assert_allclose(np.diff(laser) / 1e9, 1 / 30, atol=1e-9)
    steps = np.flatnonzero(np.diff(system))  # refreshed about once a second
    assert steps.size == 3 and np.diff(steps).tolist() == [30, 30]


def test_extra_tags_and_flyback_empty_compressed(tmp_path):
    lay = SyntheticLayout(num_planes=2, num_flyback=1, num_volumes=2, height=6, width=5)
    s = write_siff(tmp_path / "x.siff", lay, compressed=True, photons_per_frame=20,
                   empty_pages=[1], extra_tags={40000: 7, 300: 5})  # fmt: skip
    data, _, _, pages = walk(s.path)
    for g, tags in enumerate(pages):
        assert tags[40000] == (3, 1, 7) and tags[300] == (3, 1, 5)
        S, count = tags[273][2], tags[279][2]
        raster = np.frombuffer(data, "<u2", 30, S - 60)
        assert (count == 0) == (g in (1, 2, 5))  # empty page 1, flyback pages 2 and 5
        assert count == 2 * int(raster.sum())


def test_frames_per_slice_shape_and_truth_switch(tmp_path):
    lay = SyntheticLayout(channels=(2,), num_planes=3, frames_per_slice=2, num_volumes=2,
                          height=5, width=7)  # fmt: skip
    s = write_siff(tmp_path / "f.siff", lay, photons_per_frame=30)
    inten = s.intensity(0)
    assert inten.shape == (2, 3, 2, 5, 7)
    y, x, _ = s.photons(lay.page_index(1, 2, 1, 0))
    np.testing.assert_array_equal(inten[1, 2, 1].ravel(), np.bincount(y * 7 + x, minlength=35))
    s2 = write_siff(tmp_path / "g.siff", lay, photons_per_frame=30, keep_truth=False)
    assert s2.path.read_bytes() == s.path.read_bytes()  # same seed: same file
    with pytest.raises(RuntimeError):
        s2.photons(0)
    with pytest.raises(ValueError):
        write_siff(tmp_path / "h.siff", SyntheticLayout(frames_per_file=2))
    with pytest.raises(ValueError):
        write_siff(tmp_path / "h.siff", SyntheticLayout(num_planes=2, num_flyback=1),
                   empty_pages=[2])  # flyback page  # fmt: skip


def pooled_chi_square(observed, expected):
    """Chi-square p value after merging bins with expectation < 5 into one bin."""
    small = expected < 5
    obs = np.append(observed[~small], observed[small].sum())
    exp = np.append(expected[~small], expected[small].sum())
    if exp[-1] < 5:  # fold a still-small merged bin into its neighbour
        obs, exp = np.append(obs[:-2], obs[-2:].sum()), np.append(exp[:-2], exp[-2:].sum())
    assert exp.sum() == pytest.approx(obs.sum(), rel=1e-9)
    return stats.chisquare(obs, exp).pvalue


@pytest.mark.parametrize(("kind", "model"), [
    ("raw", dict()),
    ("compressed", dict(taus_ns=((3.0,),), irf_offset_ns=0.05, irf_width_ns=0.2)),
    ("raw", dict(taus_ns=((8.0, 0.8),), fractions=((0.3, 0.7),), laser_period_ps=12345.0,
                 bin_resolution=3)),
])  # fmt: skip
def test_arrival_times_follow_the_model(tmp_path, kind, model):
    lay = SyntheticLayout(num_volumes=100, height=16, width=16)
    s = write_siff(tmp_path / "chi.siff", lay, compressed=kind == "compressed",
                   photons_per_frame=2000, seed=11, **model)  # fmt: skip
    hist, expected = s.histogram(0), s.expected_histogram(0)
    assert hist.sum() > 1.9e5 and hist[s.num_bins :].sum() == 0
    assert expected.sum() == pytest.approx(hist.sum(), rel=1e-9)  # model mass is 1
    assert pooled_chi_square(hist.astype(float), expected) > 1e-3


def centroid(img):
    yy, xx = np.indices(img.shape)
    return np.array([(img * yy).sum(), (img * xx).sum()]) / img.sum()


def test_motion_moves_the_centroid(tmp_path):
    lay = SyntheticLayout(num_volumes=16, height=48, width=64)
    motion = np.array([[0, 0], [3, -2]] * 8)
    s = write_siff(tmp_path / "m.siff", lay, photons_per_frame=60000, motion=motion, seed=3)
    inten = s.intensity(0)[:, 0].astype(float)  # (T, Y, X)
    rate = s.rate_maps[0]
    assert rate.sum() == pytest.approx(1.0) and rate.shape == (48, 64)
    bg = rate.min()  # the dim background: subtracted so that it does not dilute the shift
    # the pattern is np.roll-ed: its expected centroid shift (edges wrap) is close to (3, -2)
    expected = centroid(np.roll(rate, (3, -2), (0, 1)) - bg) - centroid(rate - bg)
    np.testing.assert_allclose(expected, [3, -2], atol=0.3)
    still, moved = (inten[k::2].mean(0) - bg * 60000 for k in (0, 1))
    np.testing.assert_allclose(centroid(moved) - centroid(still), expected, atol=0.25)
