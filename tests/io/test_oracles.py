"""Our ScanImage TIFF reader checked against independent readers.

1. tifffile, page by page: for every (t, z, f, c) our sample equals the TIFF page that the
   formats.md §1.4 formula names, located by this module itself over the files' concatenated page
   counts (``page = t*C*(Z*F + B) + (z*F + f)*C + c``).  Flyback pages must never be returned.
2. roiextractors (``ScanImageImagingExtractor``, v0.10): for every layout it supports, every
   channel, plane and slice-sample selection gives the same pixels, sample count, raw frame
   indices and timestamps as ours.  Files are built around real ScanImage 2022 headers so
   roiextractors sees the real key set.

roiextractors v0.10 facts used here (read from its source):

* ``get_series()`` returns ``(samples, rows, columns)`` planar, ``(samples, rows, columns,
  planes)`` volumetric; rows are the TIFF ImageLength, i.e. our Y.  So no Y/X transpose is
  needed, only the plane axis moves from last to second (``np.moveaxis(a, -1, 1)``).  Frames
  here are never square, so a transposed read would fail on shape.
* volumetric iff ``SI.hStackManager.enable`` and ``numSlices`` > 1; planes = ``numSlices``
  (``actualNumSlices`` is ignored); frames per slice = ``framesPerSlice`` (``logAverageFactor``
  is ignored); flyback = ``numFramesPerVolumeWithFlyback - numFramesPerVolume``.
* with frames per slice > 1 it refuses to open unless ``slice_sample=k`` or
  ``interleave_slice_samples=True`` is given (ours defaults to sample 0).
* ``get_original_frame_indices()`` is the raw page of the *selected channel* (ours,
  ``Dataset.frame_indices``, is channel 0's page, so it is ours + c); ``get_times()`` reads the
  last plane's ``frameTimestamps_sec``, like our ``timestamps(plane=-1)``.
* its page table stores the in-file page index as uint16: past 65 535 pages it wraps.
* automatic multi-file discovery needs ``natsort`` (roiextractors' ``full`` extra);
  ``file_paths=`` works without it.
* the SI 3.x format is refused (no 2016+ ScanImage metadata block).

Where roiextractors disagrees with both us and the synthetic ground truth, ours is asserted to
match the truth and the roiextractors comparison is a strict ``xfail`` (``raises=AssertionError``)
whose reason names the cause.
"""

from __future__ import annotations

import bisect
import dataclasses
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
import tifffile

from napari_scanimage.errors import IncompleteVolumeWarning
from napari_scanimage.testing.tiff import SyntheticDataset, SyntheticLayout, write_scanimage_tiff

roiextractors = pytest.importorskip("roiextractors")
from roiextractors import ScanImageImagingExtractor  # noqa: E402

#: roiextractors (v0.10) closes its tifffile handles only when its extractor is garbage
#: collected, and never when its constructor refuses a file after opening it: Python then
#: reports the unclosed files (ResourceWarning) from the collector, in whichever test runs.
#: Its tests collect at teardown (``_collect_roiextractors``) so that these warnings fall on
#: them, and ignore them there; our own datasets are checked by the open-files fixtures.
THEIR_UNCLOSED_FILES = pytest.mark.filterwarnings(
    "ignore::pytest.PytestUnraisableExceptionWarning", "ignore::ResourceWarning"
)


@pytest.fixture
def _collect_roiextractors():
    yield
    import gc

    gc.collect()


# -- helpers independent of the library's layout code -------------------------------------------
def formula_page(lay: SyntheticLayout, t: int, z: int, f: int, c: int) -> int:
    """docs/formats.md §1.4: global raw page of volume t, slice z, frame f, channel c."""
    C, Z, F, B = len(lay.channels), lay.num_planes, lay.frames_per_slice, lay.num_flyback
    return t * C * (Z * F + B) + (z * F + f) * C + c


def flyback_pages(lay: SyntheticLayout, num_volumes: int) -> set[int]:
    C, Z, F, B = len(lay.channels), lay.num_planes, lay.frames_per_slice, lay.num_flyback
    per_volume = C * (Z * F + B)
    return {t * per_volume + C * Z * F + i for t in range(num_volumes) for i in range(C * B)}


class TiffPages:
    """Pages of a file series read with tifffile; global page g -> (file, local page)."""

    def __init__(self, paths: Sequence[Path]):
        self.files = [tifffile.TiffFile(p) for p in paths]
        counts = [len(tf.pages) for tf in self.files]
        self.starts = np.concatenate([[0], np.cumsum(counts)]).tolist()

    @property
    def total(self) -> int:
        return self.starts[-1]

    def locate(self, g: int) -> tuple[int, int]:
        k = bisect.bisect_right(self.starts, g) - 1
        return k, g - self.starts[k]

    def page(self, g: int) -> np.ndarray:
        k, local = self.locate(g)
        return self.files[k].pages[local].asarray()

    def __enter__(self) -> TiffPages:
        return self

    def __exit__(self, *exc) -> None:
        for tf in self.files:
            tf.close()


def truth_stack(
    truth: SyntheticDataset,
    c: int,
    plane: int | None,
    mode: int | str,
    num_volumes: int,
    times: range | None = None,
) -> np.ndarray:
    """Ground truth of ``Dataset.read(c, plane=plane, slice_sample=mode)`` from truth.page.

    ``mode`` is a sample index or "interleave"; the result is (T', [Z], Y, X).
    """
    lay = truth.layout
    F = lay.frames_per_slice
    planes = range(lay.num_planes) if plane is None else [plane]
    if mode == "interleave":
        rows = [(t, f) for t in range(num_volumes) for f in range(F)]
    else:
        rows = [(t, int(mode)) for t in range(num_volumes)]
    if times is not None:
        rows = [rows[i] for i in times]
    out = np.stack(
        [np.stack([truth.page(formula_page(lay, t, z, f, c)) for z in planes]) for t, f in rows]
    )
    return out if plane is None and lay.num_planes > 1 else out[:, 0]


# -- 1. tifffile, page by page --------------------------------------------------------------------
TIFFFILE_LAYOUTS = {
    "planar_1ch": SyntheticLayout(channels=(1,), num_volumes=5, height=16, width=24),
    "planar_2ch_uint16": SyntheticLayout(
        channels=(1, 2), num_volumes=4, height=16, width=24, dtype="uint16"
    ),
    "vol_2ch_F2_B1": SyntheticLayout(
        channels=(1, 2),
        num_planes=3,
        frames_per_slice=2,
        num_flyback=1,
        num_volumes=4,
        height=32,
        width=40,
    ),
    # 5 frames (10 pages) per file: volumes of 14 pages straddle the files
    "vol_2ch_F2_B1_split": SyntheticLayout(
        channels=(2, 4),
        channel_names=("Green", "Red"),
        num_planes=3,
        frames_per_slice=2,
        num_flyback=1,
        num_volumes=4,
        height=32,
        width=40,
        frames_per_file=5,
    ),
    "planar_1ch_split": SyntheticLayout(
        channels=(1,), num_volumes=7, height=16, width=24, frames_per_file=3
    ),
    "vol_1ch_B2_split_aborted": SyntheticLayout(
        channels=(1,),
        num_planes=4,
        num_flyback=2,
        num_volumes=3,
        extra_pages=5,
        height=8,
        width=12,
        frames_per_file=4,
        stale_num_slices=11,
    ),
}


def _open(opened, path: Path, aborted: bool):
    if aborted:
        with pytest.warns(IncompleteVolumeWarning):
            return opened(path)
    return opened(path)


def _planar(a: np.ndarray, num_planes: int) -> np.ndarray:
    """(T, Z, Y, X) -> (T, Y, X) for planar data, as Dataset.read returns it."""
    return a if num_planes > 1 else a[:, 0]


@pytest.mark.parametrize("name", list(TIFFFILE_LAYOUTS))
def test_every_sample_is_the_tifffile_page_the_formula_names(name, tmp_path, opened):
    lay = TIFFFILE_LAYOUTS[name]
    truth = write_scanimage_tiff(tmp_path / "rec.tif", lay)
    C, Z, F, B, T = (
        len(lay.channels),
        lay.num_planes,
        lay.frames_per_slice,
        lay.num_flyback,
        lay.num_volumes,
    )
    Y, X = lay.height, lay.width
    ds = _open(opened, truth.paths[-1], aborted=lay.extra_pages > 0)  # any file opens the series
    assert list(ds.paths) == truth.paths
    info = ds.info
    assert (info.num_planes, info.frames_per_slice, info.num_flyback, info.num_volumes) == (
        Z,
        F,
        B,
        T,
    )
    assert info.channel_names == lay.names
    assert info.frame_shape == (Y, X) and info.dtype == np.dtype(lay.dtype)

    with TiffPages(truth.paths) as tp:
        assert tp.total == lay.total_pages
        used: set[int] = set()
        for c in range(C):
            axis = ds.read(c, slice_sample="axis")
            assert axis.shape == ((T, Z, F, Y, X) if Z > 1 else (T, F, Y, X))
            assert axis.dtype == np.dtype(lay.dtype)
            np.testing.assert_array_equal(ds.array(c, slice_sample="axis").compute(), axis)
            axis = axis.reshape(T, Z, F, Y, X)
            pages = np.empty((T, Z, F, Y, X), axis.dtype)
            for t in range(T):
                for z in range(Z):
                    for f in range(F):
                        g = formula_page(lay, t, z, f, c)
                        used.add(g)
                        assert int(ds.layout.page(t, z, f, c)) == g
                        pages[t, z, f] = tp.page(g)
                        file, local = tp.locate(g)
                        assert np.array_equal(axis[t, z, f], pages[t, z, f]), (
                            f"(t={t}, z={z}, f={f}, c={c}) != tifffile {truth.paths[file].name} "
                            f"page {local} (global {g})"
                        )
                        assert np.array_equal(pages[t, z, f], truth.page(g))
            # the other selections, from the same tifffile pages
            for k in range(F):
                np.testing.assert_array_equal(
                    ds.read(c, slice_sample=k), _planar(pages[:, :, k], Z)
                )
            np.testing.assert_allclose(
                ds.read(c, slice_sample="mean"),
                _planar(pages.astype(np.float64).mean(axis=2), Z),
                rtol=1e-6,
            )
            interleaved = pages.transpose(0, 2, 1, 3, 4).reshape(T * F, Z, Y, X)
            np.testing.assert_array_equal(
                ds.read(c, slice_sample="interleave"), _planar(interleaved, Z)
            )
            for z in range(Z):
                np.testing.assert_array_equal(ds.read(c, plane=z, slice_sample="axis"), pages[:, z])
                np.testing.assert_array_equal(ds.array(c, plane=z).compute(), pages[:, z, 0])
        # channel-0 page of every sample, and flyback/aborted pages never returned
        for z in range(Z):
            expected = [[formula_page(lay, t, z, f, 0) for f in range(F)] for t in range(T)]
            fi = ds.frame_indices(z, slice_sample="axis").reshape(T, F)
            np.testing.assert_array_equal(fi, expected)
        assert used.isdisjoint(flyback_pages(lay, T))
        assert used | flyback_pages(lay, T) == set(range(T * C * (Z * F + B)))


def test_si38_real_file_matches_tifffile(shared_data, opened):
    path = shared_data / "si38_Blank-IPA_1s_16r_032.tif"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    expected = tifffile.imread(path)
    assert expected.shape == (30, 64, 64)
    ds = opened(path)
    data = ds.array(0).compute()
    assert data.shape == (30, 64, 64) and data.dtype == expected.dtype == np.uint16
    np.testing.assert_array_equal(data, expected)
    np.testing.assert_array_equal(ds.read("Channel 2"), expected)
    assert ds.info.channel_names == ("Channel 2",)
    assert ds.info.frame_rate == pytest.approx(8.138, abs=1e-3)
    assert ds.info.num_volumes == 30 and ds.info.num_planes == 1


def test_independent_series_matches_tifffile_and_truth(shared_data, opened):
    """Series from a writer that is not ours (stale numSlices 12, F=2, B=3, 3 files, aborted)."""
    folder = shared_data / "independent" / "tiff_vol2ch_F2_B3"
    if not folder.is_dir():
        pytest.skip(f"{folder} not found")
    paths = sorted(folder.glob("vol2ch_00001_*.tif"))
    truth = np.load(folder / "truth.npz")
    lay = SyntheticLayout(
        channels=(1, 3), num_planes=4, frames_per_slice=2, num_flyback=3, num_volumes=5
    )
    with pytest.warns(IncompleteVolumeWarning):
        ds = opened(paths[1])
    assert list(ds.paths) == paths
    assert ds.info.channel_names == ("Green", "Red")
    with TiffPages(paths) as tp:
        for c in range(2):
            expected = truth[f"channel{c}_axis"]
            ours = ds.read(c, slice_sample="axis")
            np.testing.assert_array_equal(ours, expected)
            T, Z, F = expected.shape[:3]
            for t in range(T):
                for z in range(Z):
                    for f in range(F):
                        np.testing.assert_array_equal(
                            ours[t, z, f], tp.page(formula_page(lay, t, z, f, c))
                        )
    np.testing.assert_array_equal(
        ds.frame_indices(-1, slice_sample="axis"), truth["frame_indices_last_plane"]
    )
    np.testing.assert_allclose(
        ds.timestamps(-1, slice_sample="axis"), truth["timestamps_last_plane"]
    )


# -- 2. roiextractors -----------------------------------------------------------------------------
ROI_CASES = {
    # name: (real header, layout)
    "planar_1ch": (
        "si2022_single.txt",
        SyntheticLayout(channels=(1,), num_volumes=6, height=12, width=20),
    ),
    "planar_2ch_ids_2_4": (
        "si2022_2ch.txt",
        SyntheticLayout(
            channels=(2, 4), channel_names=("Green", "Red"), num_volumes=5, height=12, width=20
        ),
    ),
    "planar_2ch_split": (
        "si2022_2ch.txt",
        SyntheticLayout(channels=(1, 2), num_volumes=7, height=12, width=20, frames_per_file=3),
    ),
    "vol_2ch_B1": (
        "si2022_vol_2ch.txt",
        SyntheticLayout(
            channels=(1, 2), num_planes=4, num_flyback=1, num_volumes=3, height=12, width=20
        ),
    ),
    "vol_1ch_B0": (
        "si2022_vol_2ch.txt",
        SyntheticLayout(
            channels=(1,), num_planes=3, num_flyback=0, num_volumes=3, height=12, width=20
        ),
    ),
    "vol_1ch_F3_B1": (
        "si2022_frames_per_slice.txt",
        SyntheticLayout(
            channels=(1,),
            num_planes=3,
            frames_per_slice=3,
            num_flyback=1,
            num_volumes=2,
            height=12,
            width=20,
        ),
    ),
    "vol_2ch_F2_B1": (
        "si2022_vol_2ch.txt",
        SyntheticLayout(
            channels=(1, 2),
            num_planes=3,
            frames_per_slice=2,
            num_flyback=1,
            num_volumes=2,
            height=12,
            width=20,
        ),
    ),
    "vol_1ch_F2_single_volume": (
        "si2022_frames_per_slice_1vol.txt",
        SyntheticLayout(
            channels=(1,), num_planes=4, frames_per_slice=2, num_volumes=1, height=12, width=20
        ),
    ),
    # 6 frames per file, 4 frames per volume: volumes straddle the 4 files
    "vol_1ch_B1_split": (
        "si2022_split.txt",
        SyntheticLayout(
            channels=(1,),
            num_planes=3,
            num_flyback=1,
            num_volumes=5,
            height=12,
            width=20,
            frames_per_file=6,
        ),
    ),
}


def _write_case(
    shared_data: Path, tmp_path: Path, header: str, lay: SyntheticLayout, stem: str = "rec"
) -> SyntheticDataset:
    header_path = shared_data / "scanimage-headers" / header
    if not header_path.is_file():
        pytest.skip(f"{header_path} not found")
    return write_scanimage_tiff(tmp_path / f"{stem}.tif", lay, header=header_path)


def _extractor(
    paths: Sequence[Path],
    names: Sequence[str],
    c: int,
    *,
    plane=None,
    mode=0,
    num_frames_per_slice: int = 1,
) -> ScanImageImagingExtractor:
    kwargs: dict = {"plane_index": plane}
    if len(names) > 1:
        kwargs["channel_name"] = names[c]
    if mode == "interleave":
        kwargs["interleave_slice_samples"] = True
    elif num_frames_per_slice > 1:
        kwargs["slice_sample"] = mode
    return ScanImageImagingExtractor(file_paths=list(paths), **kwargs)


def _roi_series(ex: ScanImageImagingExtractor, start=None, stop=None) -> np.ndarray:
    """get_series in our axis order: (T, Y, X) or (T, Z, Y, X) (roiextractors puts Z last)."""
    data = ex.get_series(start, stop)
    return np.moveaxis(data, -1, 1) if data.ndim == 4 else data


@pytest.mark.parametrize("name", list(ROI_CASES))
@THEIR_UNCLOSED_FILES
@pytest.mark.usefixtures("_collect_roiextractors")
def test_roiextractors_agrees(name, shared_data, tmp_path, opened):
    header, lay = ROI_CASES[name]
    truth = _write_case(shared_data, tmp_path, header, lay)
    C, Z, F, T = len(lay.channels), lay.num_planes, lay.frames_per_slice, lay.num_volumes
    ds = opened(truth.paths[0])
    assert list(ds.paths) == truth.paths
    assert (ds.info.num_planes, ds.info.frames_per_slice, ds.info.num_volumes) == (Z, F, T)
    modes = [0] if F == 1 else [*range(F), "interleave"]
    planes = [None, *range(Z)] if Z > 1 else [None, 0]
    checked = 0
    for c in range(C):
        for mode in modes:
            for plane in planes:
                ex = _extractor(
                    truth.paths, lay.names, c, plane=plane, mode=mode, num_frames_per_slice=F
                )
                where = f"channel {c}, plane {plane}, slice_sample {mode!r}"
                assert ex.channel_names == list(ds.info.channel_names) == list(lay.names)
                assert ex.channel_name == lay.names[c]
                assert ex.get_dtype() == ds.info.dtype
                assert ex.get_frame_shape() == ds.info.frame_shape == (lay.height, lay.width)
                expected = truth_stack(truth, c, plane, mode, T)
                ours = ds.read(c, plane=plane, slice_sample=mode)
                theirs = _roi_series(ex)
                assert ours.shape == theirs.shape == expected.shape, where
                np.testing.assert_array_equal(ours, expected, err_msg=where)
                np.testing.assert_array_equal(theirs, expected, err_msg=where)
                assert ex.get_num_samples() == ours.shape[0]
                assert ex.get_num_planes() == (Z if plane is None else 1)
                if mode != "interleave":  # interleaved samples have no single rate
                    assert ex.get_sampling_frequency() == pytest.approx(
                        ds.info.volume_rate, rel=1e-5
                    )
                z_time = -1 if plane is None else plane
                np.testing.assert_array_equal(
                    ex.get_original_frame_indices(),
                    ds.frame_indices(z_time, slice_sample=mode) + c,
                    err_msg=where,
                )
                np.testing.assert_allclose(
                    ex.get_times(), ds.timestamps(z_time, slice_sample=mode), err_msg=where
                )
                checked += 1
    assert checked == C * len(modes) * len(planes)


@THEIR_UNCLOSED_FILES
@pytest.mark.usefixtures("_collect_roiextractors")
def test_roiextractors_discovers_split_series(shared_data, tmp_path, opened):
    pytest.importorskip(
        "natsort",
        reason="roiextractors' multi-file discovery imports natsort "
        "(its 'full' extra), which is not installed",
    )
    header, lay = ROI_CASES["vol_1ch_B1_split"]
    truth = _write_case(shared_data, tmp_path, header, lay)
    ex = ScanImageImagingExtractor(file_path=truth.paths[0])
    assert [Path(p) for p in ex.file_paths] == truth.paths
    np.testing.assert_array_equal(_roi_series(ex), opened(truth.paths[0]).read(0))


@THEIR_UNCLOSED_FILES
@pytest.mark.usefixtures("_collect_roiextractors")
def test_roiextractors_refuses_frames_per_slice_without_a_sample(shared_data, tmp_path, opened):
    """Roiextractors refuses F > 1 unless told which sample; ours defaults to sample 0."""
    header, lay = ROI_CASES["vol_1ch_F3_B1"]
    truth = _write_case(shared_data, tmp_path, header, lay)
    with pytest.raises(ValueError, match="Multiple frames per slice detected"):
        ScanImageImagingExtractor(file_path=truth.paths[0])
    ds = opened(truth.paths[0])
    np.testing.assert_array_equal(ds.read(0), ds.read(0, slice_sample=0))


@THEIR_UNCLOSED_FILES
@pytest.mark.usefixtures("_collect_roiextractors")
def test_roiextractors_refuses_si38(shared_data, opened):
    path = shared_data / "si38_Blank-IPA_1s_16r_032.tif"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    with pytest.raises(ValueError, match="Invalid metadata"):
        ScanImageImagingExtractor(file_path=path)
    assert opened(path).read(0).shape == (30, 64, 64)


# -- roiextractors discrepancies: ours matches the truth, roiextractors does not -------------------
@dataclasses.dataclass
class Discrepancy:
    paths: list[Path]
    names: tuple[str, ...]
    channel: int
    slice_sample: int | None  # None: frames per slice 1 (roiextractors' view may differ)
    expected: np.ndarray  # truth, (n, [Z], Y, X) for samples `times`
    times: range | None = None  # sample window; None: all samples
    open_warns: type[Warning] | None = None


def _patch_static(path: Path, old: bytes, new: bytes) -> None:
    """Rewrite header text in place with a same-length replacement (offsets stay valid)."""
    assert len(old) == len(new)
    data = path.read_bytes()
    assert data.count(old) == 1  # once, in the static header text
    path.write_bytes(data.replace(old, new))


def _build_discrepancy(name: str, shared_data: Path, folder: Path) -> Discrepancy:
    if name == "stale_numSlices":
        # numSlices = 11 as in the real header, 7 slices acquired (actualNumSlices = 7)
        lay = SyntheticLayout(
            channels=(1, 2),
            num_planes=7,
            num_flyback=1,
            num_volumes=3,
            height=6,
            width=10,
            stale_num_slices=11,
        )
        truth = _write_case(shared_data, folder, "si2022_vol_2ch.txt", lay)
        return Discrepancy(
            truth.paths, lay.names, 1, None, truth_stack(truth, 1, None, 0, lay.num_volumes)
        )
    if name == "log_average_factor":
        # framesPerSlice = 4 acquired frames, averaged by 2 on saving: 2 saved frames per slice
        lay = SyntheticLayout(
            channels=(1,),
            num_planes=3,
            frames_per_slice=2,
            log_average_factor=2,
            num_flyback=1,
            num_volumes=3,
            height=6,
            width=10,
        )
        truth = _write_case(shared_data, folder, "si2022_frames_per_slice.txt", lay)
        return Discrepancy(
            truth.paths, lay.names, 0, 1, truth_stack(truth, 0, None, 1, lay.num_volumes)
        )
    if name == "over_65535_pages":
        lay = SyntheticLayout(channels=(1,), num_volumes=65536 + 6, height=2, width=3)
        truth = write_scanimage_tiff(folder / "big.tif", lay)
        window = range(65533, 65540)
        return Discrepancy(
            truth.paths,
            lay.names,
            0,
            None,
            truth_stack(truth, 0, None, 0, lay.num_volumes, window),
            window,
        )
    if name == "single_volume_without_flyback_page":
        # formats.md §1.3: a single-volume acquisition may lack the flyback page its header declares
        lay = SyntheticLayout(
            channels=(1,),
            num_planes=3,
            frames_per_slice=2,
            num_flyback=0,
            num_volumes=1,
            height=6,
            width=10,
        )
        truth = _write_case(shared_data, folder, "si2022_frames_per_slice.txt", lay)
        for old, new in [
            (b"numFramesPerVolumeWithFlyback = 6\n", b"numFramesPerVolumeWithFlyback = 7\n"),
            (b"discardFlybackFrames = false\n", b"discardFlybackFrames = true \n"),
            (b"numDiscardFlybackFrames = 0\n", b"numDiscardFlybackFrames = 1\n"),
        ]:
            _patch_static(truth.paths[0], old, new)
        return Discrepancy(truth.paths, lay.names, 0, 1, truth_stack(truth, 0, None, 1, 1))
    if name == "independent_series_stale_numSlices":
        folder = shared_data / "independent" / "tiff_vol2ch_F2_B3"
        if not folder.is_dir():
            pytest.skip(f"{folder} not found")
        expected = np.load(folder / "truth.npz")["channel1_axis"][:, :, 1]  # (T, Z, Y, X)
        return Discrepancy(
            sorted(folder.glob("vol2ch_00001_*.tif")),
            ("Green", "Red"),
            1,
            1,
            expected,
            open_warns=IncompleteVolumeWarning,
        )
    raise KeyError(name)


DISCREPANCIES = {
    "stale_numSlices": "roiextractors takes the plane count from SI.hStackManager.numSlices "
    "(11, stale in real SI 2022 headers) instead of actualNumSlices (7): a 'volume' of 12 frames "
    "instead of 8, so 2 volumes of 11 planes (the 7 real planes, the flyback frame and 3 planes "
    "of the next volume) instead of 3 volumes of 7",
    "log_average_factor": "roiextractors uses SI.hStackManager.framesPerSlice (4 acquired frames) "
    "as saved frames per slice, ignoring SI.hScan2D.logAverageFactor (2): 13 pages per volume "
    "instead of 7, 1 volume instead of 3",
    "over_65535_pages": "roiextractors stores the in-file page (IFD) index as uint16: sample "
    "65536 reads page 0 (and 65537 page 1, ...)",
    "single_volume_without_flyback_page": "roiextractors always expects the declared flyback "
    "pages: a single volume saved without its flyback page (6 of 7 pages) gives 0 samples",
    "independent_series_stale_numSlices": "independent writer's series with stale numSlices = 12 "
    "(actualNumSlices 4): roiextractors reads 12 planes per volume",
}


@pytest.fixture(scope="module")
def discrepancy_cases(tmp_path_factory, shared_data):
    cache: dict[str, Discrepancy] = {}

    def get(name: str) -> Discrepancy:
        if name not in cache:
            cache[name] = _build_discrepancy(name, shared_data, tmp_path_factory.mktemp(name))
        return cache[name]

    return get


def _check_window(actual: np.ndarray, case: Discrepancy, who: str) -> None:
    assert actual.shape == case.expected.shape, (
        f"{who}: shape {actual.shape}, truth {case.expected.shape}"
    )
    bad = [i for i in range(len(actual)) if not np.array_equal(actual[i], case.expected[i])]
    first = case.times[0] if case.times is not None else 0
    assert not bad, f"{who}: samples {[first + i for i in bad]} differ from the truth"


@pytest.mark.parametrize("name", list(DISCREPANCIES))
def test_discrepancy_ours_matches_truth(name, discrepancy_cases, opened):
    case = discrepancy_cases(name)
    with warnings.catch_warnings():
        if case.open_warns is not None:
            warnings.simplefilter("ignore", case.open_warns)
        ds = opened(case.paths[0])
    assert list(ds.paths) == case.paths
    mode = 0 if case.slice_sample is None else case.slice_sample
    times = None if case.times is None else slice(case.times.start, case.times.stop)
    _check_window(ds.read(case.channel, slice_sample=mode, times=times), case, "ours")
    if case.times is not None:  # frame indices past 65535 stay exact (int64)
        np.testing.assert_array_equal(ds.frame_indices()[times], np.asarray(case.times))


@pytest.mark.parametrize("name", [
    pytest.param(name, marks=pytest.mark.xfail(strict=True, raises=AssertionError, reason=reason))
    for name, reason in DISCREPANCIES.items()
])  # fmt: skip
@THEIR_UNCLOSED_FILES
@pytest.mark.usefixtures("_collect_roiextractors")
def test_discrepancy_roiextractors_matches_truth(name, discrepancy_cases):
    case = discrepancy_cases(name)
    kwargs: dict = {}
    if len(case.names) > 1:
        kwargs["channel_name"] = case.names[case.channel]
    if case.slice_sample is not None:
        kwargs["slice_sample"] = case.slice_sample
    ex = ScanImageImagingExtractor(file_paths=list(case.paths), **kwargs)
    start, stop = (None, None) if case.times is None else (case.times.start, case.times.stop)
    theirs = _roi_series(ex, start, stop)
    indices = None if case.times is None else ex.get_original_frame_indices()[start:stop]
    # roiextractors closes its files only when the extractor is collected, and the failing
    # check of an expected failure keeps this frame (and its locals) alive
    del ex
    _check_window(theirs, case, "roiextractors")
    if indices is not None:
        np.testing.assert_array_equal(indices, np.asarray(case.times))
