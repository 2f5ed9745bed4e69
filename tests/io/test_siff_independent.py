"""`.siff` files from an independent writer (shared/data/independent) against their truth and
against corrosiffpy; byte-patched copies for broken strips.
"""

from __future__ import annotations

import shutil
import struct

import numpy as np
import pytest

import napari_scanimage as nsi
from napari_scanimage.errors import (
    FormatError,
    IncompleteVolumeWarning,
    SelectionError,
    TruncatedFileWarning,
)
from napari_scanimage.io.siff import SiffReader
from napari_scanimage.io.tiff import index_pages

corrosiffpy = pytest.importorskip("corrosiffpy")

KINDS = ("raw", "compressed")


@pytest.fixture(scope="module")
def files(shared_data):
    folder = shared_data / "independent"
    out = {k: folder / f"siff_{k}.siff" for k in KINDS}
    if not all(p.is_file() for p in out.values()):
        pytest.skip(f"independent .siff files not found in {folder}")
    return out


def truth(path):
    return np.load(str(path).replace(".siff", "_truth.npz"))


def ifd_entries(path):
    """{page: {tag: (entry byte offset, value)}} parsed with struct (BigTIFF, little endian)."""
    data = path.read_bytes()
    ifd = struct.unpack_from("<Q", data, 8)[0]
    pages = {}
    while ifd:
        n = struct.unpack_from("<Q", data, ifd)[0]
        entries = {}
        for k in range(n):
            at = ifd + 8 + 20 * k
            tag, _typ, _count, value = struct.unpack_from("<HHQQ", data, at)
            entries[tag] = (at, value)
        pages[len(pages)] = entries
        ifd = struct.unpack_from("<Q", data, ifd + 8 + 20 * n)[0]
    return pages


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("engine", ["numba", "numpy"])
def test_reader_matches_truth(files, kind, engine):
    path = files[kind]
    t = truth(path)
    reader = SiffReader(index_pages(path), engine=engine)
    with reader:
        frames = reader.intensity(np.arange(36))
        for g in range(36):
            y, x, tau = reader.photons(g)
            got = np.stack([y, x, tau])
            want = np.stack([t[f"page{g}_y"], t[f"page{g}_x"], t[f"page{g}_tau"]])
            if kind == "compressed":  # stored grouped by pixel: compare as sets
                assert (np.diff(y * 28 + x) >= 0).all()
                got, want = got[:, np.lexsort(got)], want[:, np.lexsort(want)]
            np.testing.assert_array_equal(got, want)
            np.testing.assert_array_equal(
                frames[g].ravel(), np.bincount(want[0] * 28 + want[1], minlength=560)
            )
        hist = reader.histogram(np.arange(1, 36, 2), 0, 1, 120)[0]
        assert hist.shape == (138,)  # page 7 holds arrival bins 120, 121 and 137: kept
        np.testing.assert_array_equal(np.pad(hist, (0, 46)), t["histogram_channel1"])


@pytest.mark.parametrize("kind", KINDS)
def test_dataset_matches_truth(files, kind):
    t = truth(files[kind])
    with nsi.open_dataset(files[kind]) as ds:
        assert ds.is_siff and ds.info.is_flim
        assert (ds.info.num_planes, ds.info.num_flyback, ds.info.num_volumes) == (2, 1, 6)
        assert ds.info.dtype == np.uint16 and ds.info.frame_shape == (20, 28)
        flim = ds.flim
        assert (flim.num_bins, flim.bin_width_ps, flim.laser_period_ps) == (120, 20.0, 12500.0)
        for c in range(2):
            np.testing.assert_array_equal(ds.array(c).compute(), t[f"intensity_channel{c}"])
            np.testing.assert_array_equal(
                ds.read(c, plane=1, times=[2, 4]), t[f"intensity_channel{c}"][[2, 4], 1]
            )
            h = ds.histogram(c)
            assert h.dtype == np.uint64
            ref = t[f"histogram_channel{c}"]
            np.testing.assert_array_equal(np.pad(h, (0, len(ref) - len(h))), ref)
        per = ds.histogram(1, per_frame=True)
        assert per.shape == (6, 138)
        np.testing.assert_array_equal(per.sum(axis=0), ds.histogram(1))
        # page 7 = volume 1, plane 1, channel 1: its late photons land in time sample 1
        assert per[1, 137] == 1 and per[:, 120:].sum() == 3


@pytest.mark.parametrize("kind", KINDS)
def test_lifetime_and_sums_brute_force(files, kind):
    t = truth(files[kind])
    with nsi.open_dataset(files[kind]) as ds:
        tau = ds.lifetime_array(1).compute()
        assert tau.shape == (6, 2, 20, 28) and tau.dtype == np.float32
        rng = np.random.default_rng(1)
        masks = rng.random((3, 2, 20, 28)) < 0.4
        sums = ds.photon_sums(masks, 1)
        for v in range(6):
            for z in range(2):
                g = 6 * v + 2 * z + 1
                y, x, arr = t[f"page{g}_y"], t[f"page{g}_x"], t[f"page{g}_tau"]
                pix = y * 28 + x
                n = np.bincount(pix, minlength=560)
                s = np.bincount(pix, weights=arr, minlength=560)
                with np.errstate(invalid="ignore"):
                    want = (s / n * 0.02).reshape(20, 28)
                np.testing.assert_allclose(tau[v, z], want, rtol=1e-6, equal_nan=True)
                for r in range(3):
                    inside = masks[r, z].ravel()[pix]
                    assert sums.counts[r, v, z] == inside.sum()
                    assert sums.arrival_sums[r, v, z] == arr[inside].sum()
        # the bin width override rescales lifetimes and nothing else
    with nsi.open_dataset(files[kind], bin_width_ps=10.0) as ds2:
        np.testing.assert_allclose(ds2.lifetime_array(1).compute(), tau / 2, rtol=1e-6)
        assert ds2.flim.bin_width_ps == 10.0


def test_against_corrosiffpy(files):
    for kind in KINDS:
        path = files[kind]
        ref = corrosiffpy.open_file(str(path))
        with nsi.open_dataset(path) as ds:
            frames = list(range(36))
            ours = ds.spec.read_pages(np.array(frames))
            np.testing.assert_array_equal(ours, ref.get_frames(frames=frames))
            c0 = [g for g in range(0, 36, 2) if g % 6 < 4]  # channel 0, imaging pages
            folded = np.bincount(
                np.arange(len(h := ds.histogram(0))) % 122, weights=h, minlength=122
            )
            np.testing.assert_array_equal(folded, ref.get_histogram(frames=c0))
            mask2 = np.random.default_rng(0).random((20, 28)) < 0.5
            mask3 = np.random.default_rng(1).random((2, 20, 28)) < 0.5
            sums2 = ds.photon_sums([mask2], 0)
            np.testing.assert_array_equal(sums2.counts[0].ravel(), ref.sum_roi(mask2, frames=c0))
            sums3 = ds.photon_sums([mask3], 0)
            np.testing.assert_array_equal(sums3.counts[0].ravel(), ref.sum_roi(mask3, frames=c0))
            if kind == "raw":  # corrosiffpy 0.1.2 cannot do arrival times with empty frames
                tau_ref, n_ref, _ = ref.sum_roi_flim(mask3, None, frames=c0)
                np.testing.assert_array_equal(sums3.counts[0].ravel(), n_ref)
                np.testing.assert_allclose(
                    sums3.mean_arrival_bins(pool_planes=False)[0].ravel(),
                    tau_ref,
                    rtol=0,
                    atol=1e-9,
                    equal_nan=True,
                )
            for clock, fn in (
                ("epoch_laser", ref.get_epoch_timestamps_laser),
                ("epoch_system", ref.get_epoch_timestamps_system),
            ):
                np.testing.assert_array_equal(
                    ds.timestamps(0, clock=clock), fn(frames=list(range(0, 36, 6))).astype(np.int64)
                )
            np.testing.assert_allclose(
                ds.timestamps(0), ref.get_experiment_timestamps(frames=c0[::2])
            )


def test_empty_compressed_frame(files):
    """Corrosiffpy fails on histograms that include page 4 (no photons); we do not."""
    path = files["compressed"]
    with nsi.open_dataset(path) as ds:
        y, x, tau = ds.photons(4)
        assert y.size == x.size == tau.size == 0
        with pytest.raises(RuntimeError):
            corrosiffpy.open_file(str(path)).get_histogram()
        assert ds.histogram(0, per_frame=True).shape == (6, 120)
        assert np.isnan(ds.lifetime_array(0).compute()[:, :, 0, 0]).any()


def patched(tmp_path, src, page, tag, delta):
    dst = tmp_path / src.name
    shutil.copy(src, dst)
    at, value = ifd_entries(dst)[page][tag]
    with open(dst, "r+b") as fh:
        fh.seek(at + 12)
        fh.write(struct.pack("<Q", value + delta))
    return dst


def test_short_compressed_strip_names_page(files, tmp_path):
    path = patched(tmp_path, files["compressed"], 8, 279, -2)  # one arrival time missing
    with nsi.open_dataset(path) as ds:
        np.testing.assert_array_equal(ds.read(0, times=[0]), ds.read(0, times=[0]))
        assert ds.histogram(0, times=[0]).sum() > 0  # earlier pages fine
        with pytest.raises(FormatError, match="page 8 "):
            ds.histogram(0)
        with pytest.raises(FormatError, match="page 8 "):
            ds.read(0)
        with pytest.raises(FormatError, match="page 8 "):
            ds.photons(8)


def test_raw_strip_of_odd_length_names_page(files, tmp_path):
    path = patched(tmp_path, files["raw"], 6, 279, -3)
    with nsi.open_dataset(path) as ds:
        assert ds.histogram(0, times=[0]).sum() > 0
        with pytest.raises(FormatError, match="page 6 .*multiple of 8"):
            ds.histogram(0, times=[1])


def test_photon_outside_frame_names_page(files, tmp_path):
    dst = tmp_path / "bad.siff"
    shutil.copy(files["raw"], dst)
    start = ifd_entries(dst)[2][273][1]
    with open(dst, "r+b") as fh:  # first photon of page 2 at y = 500
        fh.seek(start)
        rec = struct.unpack("<Q", fh.read(8))[0]
        fh.seek(start)
        fh.write(struct.pack("<Q", (rec & 0xFFFFFFFFFFFF) | (500 << 48)))
    with nsi.open_dataset(dst) as ds:
        for call in (
            lambda: ds.read(0, times=[0]),
            lambda: ds.histogram(0, mask=np.ones((20, 28), bool)),
            lambda: ds.lifetime_array(0).compute(),
            lambda: ds.photons(2),
        ):
            with pytest.raises(FormatError, match="page 2 .*outside the 20×28 frame"):
                call()
        assert ds.read(0, times=[1]).sum() > 0


def test_truncated_file_keeps_complete_pages(files, tmp_path, opened):
    src = files["raw"]
    entries = ifd_entries(src)
    cut = entries[33][273][1] + 16  # inside page 33's photon strip
    dst = tmp_path / "cut.siff"
    dst.write_bytes(src.read_bytes()[:cut])
    t = truth(src)
    with (
        pytest.warns(TruncatedFileWarning, match="page 33"),
        pytest.warns(IncompleteVolumeWarning, match="3 of 6 pages"),
    ):
        ds = opened(dst)
    with ds:
        assert ds.info.num_volumes == 5
        np.testing.assert_array_equal(ds.array(0).compute(), t["intensity_channel0"][:5])


def test_tiff_has_no_photons(tmp_path):
    from napari_scanimage.testing.tiff import SyntheticLayout, write_scanimage_tiff

    written = write_scanimage_tiff(tmp_path / "a.tif", SyntheticLayout(num_volumes=2))
    with nsi.open_dataset(written.paths[0]) as ds:
        assert not ds.is_siff
        for call in (
            lambda: ds.flim,
            lambda: ds.histogram(),
            lambda: ds.photons(0),
            lambda: ds.lifetime_array(),
            lambda: ds.timestamps(clock="epoch_laser"),
        ):
            with pytest.raises(SelectionError, match="not a .siff file"):
                call()


def test_bad_arguments(files):
    with nsi.open_dataset(files["raw"]) as ds:
        with pytest.raises(SelectionError, match="does not fit"):
            ds.histogram(0, mask=np.ones((3, 20, 28), bool))
        with pytest.raises(SelectionError, match="bool"):
            ds.histogram(0, mask=np.ones((20, 28)))
        with pytest.raises(SelectionError, match="time index"):
            ds.histogram(0, times=[6])
        with pytest.raises(SelectionError, match="page 36"):
            ds.photons(36)
        with pytest.raises(SelectionError, match="clock"):
            ds.timestamps(clock="wall")
        with pytest.raises(SelectionError, match="no masks"):
            ds.photon_sums([])
