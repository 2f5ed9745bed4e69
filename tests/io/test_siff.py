"""The `.siff` reader on files from our writer: ground truth, the NumPy reference path,
corrosiffpy, edge layouts and damaged files.
"""

from __future__ import annotations

import pickle
import struct

import dask
import numpy as np
import pytest
from scipy import stats

import napari_scanimage as nsi
from napari_scanimage.errors import FormatError
from napari_scanimage.io.siff import SiffReader, masks_to_csr
from napari_scanimage.io.tiff import index_pages
from napari_scanimage.testing.siff import write_siff
from napari_scanimage.testing.tiff import SyntheticLayout

corrosiffpy = pytest.importorskip("corrosiffpy")

KINDS = ("raw", "compressed")
# 2 channels, 3 planes, 2 frames per slice, 1 flyback frame, 5 volumes
VOLUME = SyntheticLayout(
    channels=(1, 2),
    num_planes=3,
    frames_per_slice=2,
    num_flyback=1,
    num_volumes=5,
    height=24,
    width=20,
)
PLANAR = SyntheticLayout(
    channels=(1, 2), num_planes=1, num_flyback=0, num_volumes=30, height=16, width=24
)


def empty_and_late(lay):
    """A non-flyback empty page and a page with late photons."""
    return [lay.page_index(1, 1, 0, 0)], {lay.page_index(2, 0, 1, 1): 5}


@pytest.fixture(scope="module", params=KINDS)
def volume(request, tmp_path_factory):
    empty, late = empty_and_late(VOLUME)
    motion = np.stack([np.arange(5) % 3, -(np.arange(5) % 2)], axis=1)
    return write_siff(
        tmp_path_factory.mktemp("v") / "vol.siff",
        VOLUME,
        compressed=request.param == "compressed",
        photons_per_frame=300,
        taus_ns=((0.6, 2.8), (1.5,)),
        fractions=((0.3, 0.7), (1.0,)),
        empty_pages=empty,
        late_pages=late,
        motion=motion,
        annotations={3: "stimulus on", 40: "stimulus off"},
        extra_tags={65000: 7},
        seed=2,
    )


@pytest.fixture(scope="module", params=KINDS)
def planar(request, tmp_path_factory):
    return write_siff(
        tmp_path_factory.mktemp("p") / "planar.siff",
        PLANAR,
        compressed=request.param == "compressed",
        photons_per_frame=400,
        seed=5,
    )


def brute(sim, pages):
    """Counts and arrival sums per pixel from the writer's photons, summed over ``pages``."""
    n = np.zeros(sim.layout.height * sim.layout.width)
    s = np.zeros_like(n)
    for g in pages:
        y, x, tau = sim.photons(g)
        pix = y * sim.layout.width + x
        n += np.bincount(pix, minlength=n.size)
        s += np.bincount(pix, weights=tau, minlength=n.size)
    return n, s


def test_volume_matches_truth(volume):
    sim = volume
    lay = sim.layout
    with nsi.open_dataset(sim.path) as ds:
        assert (ds.info.num_planes, ds.info.frames_per_slice, ds.info.num_flyback) == (3, 2, 1)
        assert ds.flim.num_bins == sim.num_bins and ds.flim.bin_width_ps == sim.bin_width_ps
        for c in range(2):
            np.testing.assert_array_equal(
                ds.array(c, slice_sample="axis").compute(), sim.intensity(c)
            )
            h = ds.histogram(c)
            np.testing.assert_array_equal(h, sim.histogram(c, len(h)))
            assert len(h) == sim.num_bins if c == 0 else len(h) > sim.num_bins  # late photons
        late = sim.histogram(1, sim.num_bins + 64)[sim.num_bins :]
        assert late.sum() == 5 and ds.histogram(1)[sim.num_bins :].sum() == 5
        # per-time histograms and masks (2-D for all planes, 3-D per plane)
        per = ds.histogram(0, per_frame=True)
        assert per.shape[0] == 5
        np.testing.assert_array_equal(per.sum(axis=0), ds.histogram(0))
        rng = np.random.default_rng(0)
        mask3 = rng.random((3, lay.height, lay.width)) < 0.3
        sel = ds.histogram(0, times=[1, 3], mask=mask3, per_frame=True)
        for row, t in enumerate((1, 3)):
            want = np.zeros(sel.shape[1], np.int64)
            for z in range(3):
                for f in range(2):
                    y, x, tau = sim.photons(lay.page_index(t, z, f, 0))
                    keep = mask3[z][y, x]
                    want += np.bincount(tau[keep], minlength=sel.shape[1])[: sel.shape[1]]
            np.testing.assert_array_equal(sel[row], want)
        # lifetime: "mean" pools both samples' photons; sample 1 alone
        tau_mean = ds.lifetime_array(0, slice_sample="mean").compute()
        tau_s1 = ds.lifetime_array(0, plane=2, slice_sample=1).compute()
        for t in range(5):
            n, s = brute(sim, [lay.page_index(t, 1, f, 0) for f in range(2)])
            with np.errstate(invalid="ignore"):
                want = (s / n * sim.bin_width_ps / 1000).reshape(lay.height, lay.width)
            np.testing.assert_allclose(tau_mean[t, 1], want, rtol=1e-6, equal_nan=True)
            n, s = brute(sim, [lay.page_index(t, 2, 1, 0)])
            with np.errstate(invalid="ignore"):
                want = (s / n * sim.bin_width_ps / 1000).reshape(lay.height, lay.width)
            np.testing.assert_allclose(tau_s1[t], want, rtol=1e-6, equal_nan=True)
        # photon sums: one pass, per mask, time and plane
        masks = np.stack([mask3, ~mask3])
        sums = ds.photon_sums(masks, 0)
        for t in range(5):
            for z in range(3):
                for r in range(2):
                    n = s = 0
                    for f in range(2):
                        y, x, tau = sim.photons(lay.page_index(t, z, f, 0))
                        keep = masks[r, z][y, x]
                        n += keep.sum()
                        s += tau[keep].sum()
                    assert (sums.counts[r, t, z], sums.arrival_sums[r, t, z]) == (n, s)
        # clocks and annotations
        pages = ds.frame_indices(-1, slice_sample=0)
        np.testing.assert_allclose(ds.timestamps(slice_sample=0), sim.timestamps()[pages])
        np.testing.assert_array_equal(
            ds.timestamps(slice_sample=0, clock="epoch_laser"), sim.epoch_laser()[pages]
        )
        np.testing.assert_array_equal(
            ds.timestamps(slice_sample=0, clock="epoch_system"), sim.epoch_system()[pages]
        )
        events = ds.events()
        assert [(e.page, e.text) for e in events] == [(3, "stimulus on"), (40, "stimulus off")]
        assert events[0].time_s == pytest.approx(sim.timestamps()[3])
        assert events[1].text_time_s == pytest.approx(sim.annotation_timestamps()[40])


def test_empty_page_in_both_encodings(volume):
    (empty,), _ = empty_and_late(VOLUME)
    with nsi.open_dataset(volume.path) as ds:
        assert all(a.size == 0 for a in ds.photons(empty))
        assert ds.read(0, plane=1, slice_sample=0, times=[1]).sum() == 0
        assert np.isnan(ds.lifetime_array(0, plane=1, slice_sample=0)[1].compute()).all()
        assert ds.histogram(0, times=[1], per_frame=True).sum() > 0  # other planes count


@pytest.mark.parametrize("engine", ["numba", "numpy"])
def test_engines_agree(volume, engine):
    index = index_pages(volume.path)
    with SiffReader(index, engine="numpy") as ref, SiffReader(index, engine=engine) as got:
        pages = np.arange(len(index))
        np.testing.assert_array_equal(got.intensity(pages), ref.intensity(pages))
        rows = pages % 7
        np.testing.assert_array_equal(
            got.histogram(pages, rows, 7, volume.num_bins),
            ref.histogram(pages, rows, 7, volume.num_bins),
        )
        mask = np.random.default_rng(3).random((2, 24, 20)) < 0.5
        planes = pages % 2
        np.testing.assert_array_equal(
            got.histogram(pages, 0, 1, volume.num_bins, mask=mask, planes=planes),
            ref.histogram(pages, 0, 1, volume.num_bins, mask=mask, planes=planes),
        )
        indptr, indices = masks_to_csr(np.stack([mask, ~mask, mask]))
        for a, b in zip(
            got.mask_sums(pages, rows, 7, indptr, indices, 3, planes=planes),
            ref.mask_sums(pages, rows, 7, indptr, indices, 3, planes=planes),
            strict=True,
        ):
            np.testing.assert_array_equal(a, b)
        for a, b in zip(
            got.pixel_sums(pages, rows, 7), ref.pixel_sums(pages, rows, 7), strict=True
        ):
            np.testing.assert_array_equal(a, b)


def test_against_corrosiffpy(planar):
    """Intensity, histograms, ROI sums and empirical lifetime equal corrosiffpy's."""
    ref = corrosiffpy.open_file(str(planar.path))
    with nsi.open_dataset(planar.path) as ds:
        for c in range(2):
            pages = (
                ds.frame_indices(0).tolist()
                if c == 0
                else [p + 1 for p in ds.frame_indices(0).tolist()]
            )
            np.testing.assert_array_equal(ds.read(c), ref.get_frames(frames=pages))
            h = ds.histogram(c)
            folded = np.bincount(
                np.arange(len(h)) % (planar.num_bins + 2), weights=h, minlength=planar.num_bins + 2
            )
            np.testing.assert_array_equal(folded, ref.get_histogram(frames=pages))
            rng = np.random.default_rng(c)
            masks = rng.random((4, 16, 24)) < 0.4
            sums = ds.photon_sums(masks, c)
            np.testing.assert_array_equal(sums.counts[..., 0], ref.sum_rois(masks, frames=pages))
            np.testing.assert_array_equal(sums.counts[0, :, 0], ref.sum_roi(masks[0], frames=pages))
            tau_ref, n_ref, _ = ref.sum_roi_flim(masks[1], None, frames=pages)
            np.testing.assert_array_equal(sums.counts[1, :, 0], n_ref)
            np.testing.assert_allclose(sums.mean_arrival_bins()[1], tau_ref, rtol=0, atol=1e-9)
            taus_ref, _, _ = ref.sum_rois_flim(masks, None, frames=pages)
            np.testing.assert_allclose(sums.mean_arrival_bins(), taus_ref, rtol=0, atol=1e-9)
            lt_ref, int_ref, _ = ref.flim_map(None, frames=pages[:5])
            lt = ds.lifetime_array(c)[:5].compute()
            np.testing.assert_allclose(
                lt / (planar.bin_width_ps / 1000), lt_ref, rtol=1e-6, equal_nan=True
            )


def test_histogram_follows_the_decay(tmp_path):
    sim = write_siff(
        tmp_path / "chi.siff",
        PLANAR,
        photons_per_frame=4000,
        taus_ns=((0.7, 3.0),),
        fractions=((0.35, 0.65),),
        seed=11,
    )
    with nsi.open_dataset(sim.path) as ds:
        h = ds.histogram(0).astype(float)
    expected = sim.expected_histogram(0, len(h))
    assert h.sum() == pytest.approx(expected.sum(), rel=1e-9)
    order = np.argsort(expected)[::-1]  # merge the smallest expectations until ≥ 5
    obs, exp = [], []
    acc_o = acc_e = 0.0
    for i in order:
        acc_o += h[i]
        acc_e += expected[i]
        if acc_e >= 5:
            obs.append(acc_o)
            exp.append(acc_e)
            acc_o = acc_e = 0.0
    exp[-1] += acc_e
    obs[-1] += acc_o
    chi2 = stats.chisquare(obs, np.array(exp) * sum(obs) / sum(exp))
    assert chi2.pvalue > 1e-3


def test_lifetime_array_on_processes(planar):
    with nsi.open_dataset(planar.path) as ds:
        arr = ds.lifetime_array(1)
        whole = arr.compute(scheduler="sync")
        restored = pickle.loads(pickle.dumps(arr))
    with dask.config.set(scheduler="processes", num_workers=2):
        np.testing.assert_array_equal(restored[::4].compute(), whole[::4])


def patch_text(path, old: bytes, new: bytes):
    data = path.read_bytes()
    assert len(old) == len(new) and data.count(old) == 1
    path.write_bytes(data.replace(old, new))


def test_unknown_bin_width_needs_override(tmp_path):
    sim = write_siff(tmp_path / "a.siff", PLANAR, seed=1)
    patch_text(sim.path, b"binResolution", b"binResoXution")
    with nsi.open_dataset(sim.path) as ds:
        assert ds.flim.bin_width_ps is None
        assert ds.histogram(0).sum() > 0  # bins need no width
        with pytest.raises(FormatError, match="bin_width_ps"):
            ds.lifetime_array(0)
    with nsi.open_dataset(sim.path, bin_width_ps=20.0) as ds:
        assert np.nanmax(ds.lifetime_array(0)[0].compute()) < 12.5


def test_missing_tau_bins_is_a_format_error(tmp_path, opened):
    sim = write_siff(tmp_path / "b.siff", PLANAR, seed=1)
    patch_text(sim.path, b"Tau_bins", b"Tau_bXns")
    with pytest.raises(FormatError, match="Tau_bins"):
        opened(sim.path)


def test_absurd_arrival_time_names_page(tmp_path):
    sim = write_siff(tmp_path / "c.siff", PLANAR, seed=1)
    index = index_pages(sim.path)
    start = int(index.data_offsets[6])
    with open(sim.path, "r+b") as fh:
        fh.seek(start)
        rec = struct.unpack("<Q", fh.read(8))[0]
        fh.seek(start)
        fh.write(struct.pack("<Q", (rec & ~0xFFFFFFFF) | 10**9))
    with nsi.open_dataset(sim.path) as ds:
        assert ds.histogram(0, times=[0, 1, 2]).sum() > 0
        with pytest.raises(FormatError, match=r"page 6 has arrival time bin 1000000000"):
            ds.histogram(0)
        assert ds.photons(6)[2][0] == 10**9  # the raw photon is still there to inspect


def test_unknown_tag_is_read_where_the_reference_panics(volume):
    """Every IFD of the fixture carries tag 65000; corrosiffpy 0.1.2 panics on it."""
    with pytest.raises(BaseException) as excinfo:
        corrosiffpy.open_file(str(volume.path)).get_frames(frames=[0])
    assert "Panic" in excinfo.typename
    with nsi.open_dataset(volume.path) as ds:
        np.testing.assert_array_equal(ds.read(1, slice_sample="axis"), volume.intensity(1))


def test_row_band_of_photon_counts(planar):
    """A band of rows (what a multi-ROI crop asks for) equals those rows of the counts."""
    from napari_scanimage.io.tiff import index_pages

    pages = np.arange(6, dtype=np.int64)
    H, W = planar.layout.height, planar.layout.width
    with SiffReader(index_pages(planar.path)) as reader:
        band = np.empty((6, 5, W), np.uint16)
        reader.read_into(pages, band, (3, 5))
    for k, g in enumerate(pages):
        y, x, _ = planar.photons(int(g))
        counts = np.bincount(y * W + x, minlength=H * W).reshape(H, W)
        np.testing.assert_array_equal(band[k], counts[3:8])
