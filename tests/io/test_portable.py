"""Readers on a platform without ``os.pread``, ``os.preadv`` and ``mmap.MADV_*`` (Windows).

Each recording is read twice in one process, as here and with those calls removed from ``os``
and ``mmap``; both reads must agree value for value (and with the writer's truth).
"""

from __future__ import annotations

import mmap
import os
import threading

import numpy as np
import pytest

import napari_scanimage as nsi
from napari_scanimage.io import siff as siff_module
from napari_scanimage.io._platform import (
    PositionalReader,
    has_madvise,
    has_pread,
    has_preadv,
    pread_function,
    release_mapped,
)
from napari_scanimage.io.siff import SiffReader
from napari_scanimage.io.tiff import index_pages
from napari_scanimage.testing.legacy import write_legacy_tiff
from napari_scanimage.testing.mroi import write_mroi_tiff
from napari_scanimage.testing.siff import write_siff
from napari_scanimage.testing.tiff import SyntheticLayout, write_scanimage_tiff


@pytest.fixture(autouse=True)
def _posix_reads_present():
    """Both paths are compared: skipped where the POSIX calls are missing (Windows, or the
    whole suite run without them, see conftest.py).
    """
    if not (hasattr(os, "pread") and hasattr(os, "preadv") and hasattr(mmap, "MADV_DONTNEED")):
        pytest.skip("compares the fallbacks against os.pread, os.preadv and madvise")


def _tiff_reads(ds) -> dict[str, np.ndarray]:
    return {f"c{c}": np.asarray(ds.array(c).compute()) for c in range(ds.info.num_channels)}


def _siff_reads(ds) -> dict[str, np.ndarray]:
    got = _tiff_reads(ds)
    for c in range(ds.info.num_channels):
        got[f"hist{c}"] = ds.histogram(c)
        got[f"per_frame{c}"] = ds.histogram(c, per_frame=True)
    for page in (0, 3):
        got.update({f"photons{page}_{k}": a for k, a in enumerate(ds.photons(page))})
    return got


def _mroi_reads(ds) -> dict[str, np.ndarray]:
    return {f"field{k}": np.asarray(ds.array(0, field=k).compute()) for k in range(len(ds.fields))}


def _big_tiff(tmp):  # 128 KiB frames: positional reads, sparse index walk, parallel reads
    truth = write_scanimage_tiff(
        tmp / "big.tif", channels=(1, 2), num_volumes=40, height=256, width=256
    )
    return truth.paths[0], _tiff_reads, truth


def _small_tiff(tmp):  # 2 KiB frames: memory-map copies, windowed index walk
    truth = write_scanimage_tiff(tmp / "small.tif", num_volumes=300, height=32, width=32)
    return truth.paths[0], _tiff_reads, truth


def _series(tmp):
    truth = write_scanimage_tiff(
        tmp / "series.tif",
        channels=(1, 2),
        num_volumes=60,
        height=128,
        width=256,
        frames_per_file=25,
    )
    assert len(truth.paths) == 3
    return truth.paths[0], _tiff_reads, truth


def _volume(tmp):
    truth = write_scanimage_tiff(
        tmp / "vol.tif",
        channels=(1, 2),
        num_planes=3,
        frames_per_slice=2,
        num_flyback=1,
        num_volumes=6,
        height=128,
        width=256,
    )
    return truth.paths[0], _tiff_reads, truth


def _mroi(tmp):
    truth = write_mroi_tiff(tmp / "meso.tif")
    return truth.path, _mroi_reads, None


def _legacy(tmp):
    truth = write_legacy_tiff(tmp / "legacy.tif", num_volumes=40, height=128, width=256)
    return truth.path, _tiff_reads, None


def _siff(compressed: bool):
    def make(tmp):
        lay = SyntheticLayout(
            channels=(1, 2), num_planes=2, num_flyback=1, num_volumes=8, height=24, width=20
        )
        sim = write_siff(
            tmp / "rec.siff",
            lay,
            compressed=compressed,
            photons_per_frame=300,
            late_pages={2: 3},
            seed=3,
        )
        return sim.path, _siff_reads, None

    return make


CASES = {
    "tiff_large_frames": _big_tiff,
    "tiff_small_frames": _small_tiff,
    "split_series": _series,
    "volumetric": _volume,
    "mroi_rows_band": _mroi,
    "legacy_classic": _legacy,
    "siff_raw": _siff(False),
    "siff_compressed": _siff(True),
}


@pytest.mark.parametrize("case", list(CASES))
def test_same_values_without_posix_reads(case, tmp_path, without_posix_reads):
    path, reads, truth = CASES[case](tmp_path)
    with nsi.open_dataset(path) as ds:
        expected = reads(ds)
    with without_posix_reads():
        assert not (has_pread() or has_preadv() or has_madvise())
        with nsi.open_dataset(path) as ds:
            got = reads(ds)
    assert got.keys() == expected.keys()
    for key, value in expected.items():
        np.testing.assert_array_equal(got[key], value, err_msg=f"{case}: {key}")
    if truth is not None:  # and both equal what was written
        lay = truth.layout
        for c in range(lay.num_channels):
            want = np.stack(
                [truth.page(lay.page_index(t, 0, 0, c)) for t in range(lay.num_volumes)]
            )
            first_plane = got[f"c{c}"].reshape(lay.num_volumes, -1, *want.shape[1:])[:, 0]
            np.testing.assert_array_equal(first_plane, want)


def test_siff_above_the_release_threshold(tmp_path, without_posix_reads, monkeypatch):
    """A .siff larger than MAPPED_BUDGET (its tail a sparse hole: cheap to make) releases the
    pages it read once they pass the budget (lowered here: 60 pages pass it); without madvise
    the file is mapped afresh instead, and both give the same values.
    """
    monkeypatch.setattr(siff_module, "MAPPED_BUDGET", 1 << 20)
    lay = SyntheticLayout(channels=(1,), num_volumes=60, height=64, width=64)
    sim = write_siff(tmp_path / "large.siff", lay, photons_per_frame=20000, seed=9, keep_truth=True)
    grown = max(sim.path.stat().st_size, siff_module.MAPPED_BUDGET) + (8 << 20)
    os.truncate(sim.path, grown)  # sparse: no disk used
    index = index_pages(sim.path)
    assert index.file_size > siff_module.MAPPED_BUDGET and len(index) == 60
    pages = np.arange(60)
    results, remapped = [], []
    for mode in (False, True):
        with without_posix_reads() if mode else _nothing():
            reader = SiffReader(index_pages(sim.path), engine="numba")
            before = reader._mm
            out = reader.intensity(pages)
            hist = reader.histogram(pages, np.zeros(60, np.int64), 1, sim.num_bins)
            remapped.append(reader._mm is not before)
            reader.close()
        results.append((out, hist))
    np.testing.assert_array_equal(results[1][0], results[0][0])
    np.testing.assert_array_equal(results[1][1], results[0][1])
    np.testing.assert_array_equal(results[0][0], np.stack([_counts(sim, g, lay) for g in pages]))
    assert remapped == [False, True]  # madvise here; a fresh map without it


def _counts(sim, g: int, lay) -> np.ndarray:
    y, x, _ = sim.photons(int(g))
    out = np.zeros((lay.height, lay.width), np.uint16)
    np.add.at(out, (y, x), 1)
    return out


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_positional_reader_threads_without_preadv(tmp_path, without_posix_reads):
    """Without os.preadv each thread reads through a handle of its own: concurrent reads at
    different offsets each get their own bytes.
    """
    data = np.random.default_rng(1).integers(0, 256, 1 << 20, dtype=np.uint8)
    path = tmp_path / "bytes.bin"
    path.write_bytes(data.tobytes())
    with open(path, "rb") as fh, without_posix_reads():
        reader = PositionalReader(str(path), fh.fileno())
        assert not reader.positional
        errors: list[str] = []

        def work(seed: int) -> None:
            rng = np.random.default_rng(seed)
            for _ in range(200):
                at, n = int(rng.integers(0, len(data))), int(rng.integers(1, 5000))
                buf = np.empty(n, np.uint8)
                got = reader.readinto(buf, at)
                want = data[at : at + n]
                if got != len(want) or not np.array_equal(buf[:got], want):
                    errors.append(f"offset {at}")

        threads = [threading.Thread(target=work, args=(s,)) for s in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(reader._handles) == 4
        reader.close()
    assert errors == []


def test_pread_fallback_reads_like_pread(tmp_path, without_posix_reads):
    path = tmp_path / "bytes.bin"
    path.write_bytes(bytes(range(256)) * 64)
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
    try:
        expected = [os.pread(fd, n, at) for n, at in ((10, 0), (300, 1000), (100, 16300))]
        with without_posix_reads():
            fallback = pread_function()
            assert fallback is not getattr(os, "pread", None)
            got = [fallback(fd, n, at) for n, at in ((10, 0), (300, 1000), (100, 16300))]
    finally:
        os.close(fd)
    assert got == expected and len(got[2]) == 84  # short only at the end of the file


def test_release_mapped_reports_what_it_can_do(tmp_path, without_posix_reads):
    path = tmp_path / "bytes.bin"
    path.write_bytes(b"\1" * (1 << 20))
    with open(path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        assert release_mapped(mm, 0, 1 << 19) is has_madvise()
        assert mm[:4] == b"\1\1\1\1"  # released pages read back from the file
        with without_posix_reads():
            assert release_mapped(mm, 0, 1 << 19) is False
