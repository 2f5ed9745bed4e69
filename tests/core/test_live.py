"""Files still being written: partial pages open, ``Dataset.refresh`` takes in new frames.

A recording is written whole with the synthetic writers first (the ground truth), then its
bytes are replayed into a new file: a prefix, then chunks whose boundaries fall inside IFDs,
descriptions and strips, and exactly at page ends, while the reader opens, refreshes and reads.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
import warnings

import numpy as np
import pytest
import tifffile

from napari_scanimage.errors import FormatError, ReadError
from napari_scanimage.io.tiff import index_pages
from napari_scanimage.testing.siff import write_siff
from napari_scanimage.testing.tiff import SyntheticLayout, write_scanimage_tiff

VOLUMETRIC = SyntheticLayout(
    channels=(1, 2), num_planes=2, num_flyback=1, num_volumes=8, height=16, width=24
)


# -- ground truth ------------------------------------------------------------------------
def page_bounds(path) -> tuple[list[int], int]:
    """IFD offset of every page (tifffile) and the file size."""
    with tifffile.TiffFile(path) as tif:
        return [p.offset for p in tif.pages], os.path.getsize(path)


def tiff_truth(truth, channel: int) -> np.ndarray:
    """(T, Z, Y, X) pixels of ``channel`` from the writer's page formula."""
    lay = truth.layout
    return np.stack(
        [
            np.stack(
                [truth.page(truth.page_index(t, z, 0, channel)) for z in range(lay.num_planes)]
            )
            for t in range(lay.num_volumes)
        ]
    )


def tifffile_truth(path, layout, channel: int, num_volumes: int) -> np.ndarray:
    """The same from tifffile, reading the complete file."""
    with tifffile.TiffFile(path) as tif:
        pages = [
            [layout.page_index(t, z, 0, channel) for z in range(layout.num_planes)]
            for t in range(num_volumes)
        ]
        return np.stack([np.stack([tif.pages[g].asarray() for g in row]) for row in pages])


def complete_pages(offsets: list[int], size: int, cut: int) -> int:
    """Pages wholly inside the first ``cut`` bytes (each page ends where the next begins)."""
    ends = offsets[1:] + [size]
    return sum(end <= cut for end in ends)


def volumes_in(layout, pages: int) -> int:
    return pages // layout.pages_per_volume


# -- static states: files cut where a writer can stop -------------------------------------
def cut_points(path, offsets: list[int], page: int) -> dict[str, int]:
    """Byte counts at which page ``page`` is partly written (IFD, description, strip) or
    not started (the previous page's next-IFD field then points at the end of the file).
    """
    with tifffile.TiffFile(path) as tif:
        p = tif.pages[page]
        strip, nbytes = p.dataoffsets[0], p.databytecounts[0]
        desc = p.tags[270].valueoffset
    return {
        "page_end": offsets[page],
        "inside_ifd": offsets[page] + 13,
        "inside_description": desc + 5,
        "inside_strip": strip + max(1, nbytes // 2),
        "strip_all_but_one": strip + nbytes - 1,
    }


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """Complete recordings (TIFF, raw and compressed .siff) and their truths."""
    folder = tmp_path_factory.mktemp("live_full")
    tif = write_scanimage_tiff(folder / "rec.tif", VOLUMETRIC)
    lay = SyntheticLayout(
        channels=(1, 2), num_planes=2, num_flyback=1, num_volumes=6, height=16, width=16
    )
    # many photons: a frame is far larger than the flyback page before it
    raw = write_siff(folder / "raw.siff", lay, photons_per_frame=6000, seed=1)
    comp = write_siff(folder / "comp.siff", lay, compressed=True, photons_per_frame=6000, seed=2)
    return {"tif": tif, "raw": raw, "comp": comp}


def _path_of(kind, truth):
    return truth.paths[0] if kind == "tif" else truth.path


def _channel_truth(kind, truth, channel):
    return tiff_truth(truth, channel) if kind == "tif" else truth.intensity(channel)


@pytest.mark.parametrize("kind", ["tif", "raw", "comp"])
@pytest.mark.parametrize(
    "where", ["page_end", "inside_ifd", "inside_description", "inside_strip", "strip_all_but_one"]
)
def test_file_being_written_opens_with_its_complete_pages(written, kind, where, tmp_path, opened):
    truth = written[kind]
    src = _path_of(kind, truth)
    offsets, size = page_bounds(src)
    lay = truth.layout
    page = 2 * lay.pages_per_volume + 1  # inside volume 2: its pages so far are left out
    cut = cut_points(src, offsets, page)[where]
    part = tmp_path / f"part{src.suffix}"
    part.write_bytes(src.read_bytes()[:cut])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # truncated-file and incomplete-volume notices
        index = index_pages(part)
        ds = opened(part)
    assert len(index) == complete_pages(offsets, size, cut) == page
    assert ds.info.num_volumes == 2
    for c in range(lay.num_channels):
        np.testing.assert_array_equal(ds.read(c), _channel_truth(kind, truth, c)[:2])


@pytest.mark.parametrize("kind", ["raw", "comp"])
def test_siff_cut_after_a_flyback_page(written, kind, tmp_path):
    """The page after a (photon-less) flyback page is far larger than it: a file ending just
    after it (next IFD offset = end of file) is a file being written, not a corrupt one.
    """
    truth = written[kind]
    offsets, size = page_bounds(truth.path)
    lay = truth.layout
    first_after = lay.pages_per_volume  # volume 1 starts after the flyback pages
    cut = offsets[first_after + 1]
    assert cut - offsets[first_after] > 4 * (offsets[first_after] - offsets[first_after - 1])
    part = tmp_path / "part.siff"
    part.write_bytes(truth.path.read_bytes()[:cut])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert len(index_pages(part)) == first_after + 1


@pytest.mark.parametrize("kind", ["tif", "raw", "comp"])
def test_resumed_index_equals_a_fresh_one(written, kind, tmp_path):
    """index_pages(resume=...) walks only new pages and gives what a fresh walk gives."""
    truth = written[kind]
    src = _path_of(kind, truth)
    data = src.read_bytes()
    offsets, size = page_bounds(src)
    part = tmp_path / f"grow{src.suffix}"
    rng = np.random.default_rng(5)
    cuts = sorted(set(rng.integers(offsets[1] + 1, size, 40).tolist()) | {offsets[9], size})
    previous = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for cut in cuts:
            part.write_bytes(data[:cut])
            fresh = index_pages(part)
            if previous is not None:
                resumed = index_pages(part, resume=previous)
                assert len(resumed) == len(fresh) == complete_pages(offsets, size, cut)
                for name in (
                    "data_offsets",
                    "byte_counts",
                    "description_offsets",
                    "description_lengths",
                ):
                    np.testing.assert_array_equal(getattr(resumed, name), getattr(fresh, name))
                assert resumed.direct == fresh.direct
                assert (resumed.siff_flags is None) == (fresh.siff_flags is None)
                if fresh.siff_flags is not None:
                    np.testing.assert_array_equal(resumed.siff_flags, fresh.siff_flags)
                previous = resumed
            else:
                previous = fresh
    assert len(previous) == len(offsets)
    assert previous.next_ifd == 0  # the chain ended


# -- a writer thread appends while the reader refreshes ------------------------------------
def chunk_ends(src, offsets: list[int], size: int, start: int, seed: int) -> list[int]:
    """Chunk boundaries after ``start``: per page one inside its IFD, one inside its
    description or strip, and often its exact end.
    """
    rng = np.random.default_rng(seed)
    ends = []
    with tifffile.TiffFile(src) as tif:
        for k, page in enumerate(tif.pages):
            strip, nbytes = page.dataoffsets[0], page.databytecounts[0]
            page_end = offsets[k + 1] if k + 1 < len(offsets) else size
            ends.append(offsets[k] + int(rng.integers(1, 60)))
            if nbytes > 2:
                ends.append(strip + int(rng.integers(1, nbytes)))
            if rng.random() < 0.5:
                ends.append(page_end)
    ends.append(size)
    return sorted(e for e in set(ends) if start < e <= size)


class Writer(threading.Thread):
    """Appends ``data[start:]`` to ``path`` in chunks ending at ``ends``."""

    def __init__(self, path, data: bytes, start: int, ends: list[int]):
        super().__init__(daemon=True)
        self.path, self.data, self.begin, self.ends = path, data, start, ends
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            at = self.begin
            with open(self.path, "ab") as fh:
                for end in self.ends:
                    fh.write(self.data[at:end])
                    fh.flush()
                    at = end
                    time.sleep(0.003)
        except BaseException as exc:  # reported by the test
            self.error = exc


def follow_growing_file(opened, kind, truth, tmp_path, seed: int) -> list[int]:
    """Replay the recording into a file while refreshing and reading; returns the volume
    counts seen.
    """
    src = _path_of(kind, truth)
    data = src.read_bytes()
    offsets, size = page_bounds(src)
    lay = truth.layout
    C = lay.num_channels
    expected = [_channel_truth(kind, truth, c) for c in range(C)]
    start = offsets[lay.pages_per_volume + 1] + 7  # one volume and a bit
    live = tmp_path / f"live{src.suffix}"
    live.write_bytes(data[:start])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = opened(live)
    seen = [ds.info.num_volumes]
    early = ds.frames(0)  # made before any refresh: keeps its length
    writer = Writer(live, data, start, chunk_ends(src, offsets, size, start, seed))
    writer.start()
    reads = 0
    while True:
        done = not writer.is_alive()
        added = ds.refresh()
        T = ds.info.num_volumes
        assert added == T - seen[-1] >= 0
        seen.append(T)
        assert ds.layout.num_volumes == T
        assert ds.spec.files.total_pages >= T * lay.pages_per_volume
        c = reads % C
        np.testing.assert_array_equal(ds.read(c), expected[c][:T])
        frames = ds.frames(c)
        assert frames.shape[0] == T
        np.testing.assert_array_equal(frames[T - 1], expected[c][T - 1])
        reads += 1
        if done:
            break
    writer.join()
    assert writer.error is None
    assert early.shape[0] == seen[0]
    np.testing.assert_array_equal(np.asarray(early), expected[0][: seen[0]])
    assert seen[-1] == lay.num_volumes
    assert ds.refresh() == 0
    for c in range(C):
        np.testing.assert_array_equal(ds.array(c).compute(), expected[c])
    return seen


@pytest.mark.parametrize("seed", [0, 1])
def test_refresh_follows_a_tiff_being_written(written, tmp_path, seed, opened):
    truth = written["tif"]
    seen = follow_growing_file(opened, "tif", truth, tmp_path, seed)
    assert seen == sorted(seen)
    assert len(set(seen)) > 2  # the reader saw the file grow in steps
    np.testing.assert_array_equal(
        tifffile_truth(truth.paths[0], truth.layout, 1, truth.layout.num_volumes),
        tiff_truth(truth, 1),
    )


@pytest.mark.parametrize("kind", ["raw", "comp"])
def test_refresh_follows_a_siff_being_written(written, tmp_path, kind, opened):
    seen = follow_growing_file(opened, kind, written[kind], tmp_path, seed=3)
    assert seen == sorted(seen)


def test_refresh_of_a_complete_file_adds_nothing(written, tmp_path, opened):
    path = tmp_path / "done.tif"
    shutil.copyfile(written["tif"].paths[0], path)
    ds = opened(path)
    spec, layout = ds.spec, ds.layout
    assert ds.refresh() == 0
    assert ds.spec == spec and ds.layout == layout


def test_refresh_lifetime_and_photons_of_a_growing_siff(written, tmp_path, opened):
    truth = written["raw"]
    data = truth.path.read_bytes()
    offsets, size = page_bounds(truth.path)
    ppv = truth.layout.pages_per_volume
    live = tmp_path / "live.siff"
    live.write_bytes(data[: offsets[2 * ppv]])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the file ends where the next page will start
        ds = opened(live)
    assert ds.info.num_volumes == 2
    with open(live, "ab") as fh:
        fh.write(data[offsets[2 * ppv] : offsets[4 * ppv] + 3])
    assert ds.refresh() == 2
    g = 3 * ppv + 2  # volume 3, plane 1, channel 0
    for got, want in zip(ds.photons(g), truth.photons(g), strict=True):
        np.testing.assert_array_equal(got, want)
    y, x, tau = truth.photons(g)
    counts = np.bincount(y * 16 + x, minlength=256).reshape(16, 16)
    sums = np.bincount(y * 16 + x, weights=tau, minlength=256).reshape(16, 16)
    with np.errstate(invalid="ignore", divide="ignore"):
        want = (sums / counts * ds.flim.bin_width_ns).astype(np.float32)
    got = ds.frames(0, product="lifetime")[3][1]
    np.testing.assert_allclose(got, want, rtol=1e-5, equal_nan=True)


# -- shrunk or replaced files ----------------------------------------------------------------
def _snapshot(ds):
    return (ds.spec, ds.layout, ds.info, ds.paths, list(ds._indexes))


def _open_copy(opened, truth_path, tmp_path, name="rec.tif"):
    path = tmp_path / name
    shutil.copyfile(truth_path, path)
    return path, opened(path)


def _assert_unchanged(ds, before):
    after = _snapshot(ds)
    assert after[:4] == before[:4]
    assert all(a is b for a, b in zip(after[4], before[4], strict=True))


def test_shrunk_file_is_refused_and_dataset_kept(written, tmp_path, opened):
    truth = written["tif"]
    path, ds = _open_copy(opened, truth.paths[0], tmp_path)
    before = _snapshot(ds)
    offsets, _ = page_bounds(path)
    os.truncate(path, offsets[3 * truth.layout.pages_per_volume])
    with pytest.raises(FormatError, match="shorter"):
        ds.refresh()
    _assert_unchanged(ds, before)
    assert ds.info.num_volumes == truth.layout.num_volumes


@pytest.mark.parametrize(
    "change", [{"height": 20}, {"dtype": "uint16"}, {"frame_rate": 7.5}, {"num_volumes": 12}]
)
def test_replaced_file_is_refused_and_dataset_kept(written, tmp_path, change, opened):
    truth = written["tif"]
    path, ds = _open_copy(opened, truth.paths[0], tmp_path)
    before = _snapshot(ds)
    other = write_scanimage_tiff(tmp_path / "other.tif", VOLUMETRIC, **change)
    os.replace(other.paths[0], path)
    with pytest.raises(FormatError, match="open it again"):
        ds.refresh()
    _assert_unchanged(ds, before)
    np.testing.assert_array_equal(ds.spec.pages_per_file, before[0].pages_per_file)


def test_deleted_file_raises_read_error(written, tmp_path, opened):
    path, ds = _open_copy(opened, written["tif"].paths[0], tmp_path)
    before = _snapshot(ds)
    path.unlink()
    with pytest.raises(ReadError):
        ds.refresh()
    _assert_unchanged(ds, before)


# -- split series ----------------------------------------------------------------------------
SERIES = SyntheticLayout(channels=(1, 2), num_volumes=12, frames_per_file=4, height=16, width=16)


def test_refresh_adds_new_files_of_a_split_series(tmp_path, opened):
    full = tmp_path / "full"
    full.mkdir()
    truth = write_scanimage_tiff(full / "scan.tif", SERIES)
    assert len(truth.paths) == 3
    live = tmp_path / "live"
    live.mkdir()
    shutil.copyfile(truth.paths[0], live / truth.paths[0].name)
    second = truth.paths[1].read_bytes()
    offsets, size = page_bounds(truth.paths[1])
    (live / truth.paths[1].name).write_bytes(second[: offsets[3] + 5])  # 3 pages: 1 frame
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = opened(live / truth.paths[0].name)
        explicit = opened(
            live / truth.paths[0].name, file_paths=[live / p.name for p in truth.paths[:2]]
        )
    assert ds.info.num_volumes == 5
    want = np.stack([truth.page(2 * t + 1) for t in range(12)])
    with open(live / truth.paths[1].name, "ab") as fh:
        fh.write(second[offsets[3] + 5 :])
    (live / truth.paths[2].name).write_bytes(truth.paths[2].read_bytes()[:200])  # no page yet
    assert ds.refresh() == 3
    assert len(ds.paths) == 2
    shutil.copyfile(truth.paths[2], live / truth.paths[2].name)
    assert ds.refresh() == 4
    assert [p.name for p in ds.paths] == [p.name for p in truth.paths]
    np.testing.assert_array_equal(ds.read(1), want)
    assert explicit.refresh() == 3  # an explicit file list is not extended
    assert len(explicit.paths) == 2
    np.testing.assert_array_equal(explicit.read(1), want[:8])


# -- cost ----------------------------------------------------------------------------------
def test_refresh_walks_only_new_pages(tmp_path, opened):
    """A refresh after a few more frames re-reads a few IFDs, not the whole chain."""
    lay = SyntheticLayout(num_volumes=3000, height=8, width=8)
    truth = write_scanimage_tiff(tmp_path / "many.tif", lay)
    data = truth.paths[0].read_bytes()
    offsets, size = page_bounds(truth.paths[0])
    live = tmp_path / "live.tif"
    live.write_bytes(data[: offsets[2990] + 11])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = opened(live)
    assert ds.info.num_volumes == 2990
    before = ds._indexes[0]
    with open(live, "r+b") as fh:  # break an early IFD: only a fresh walk would meet it
        fh.seek(offsets[100])
        fh.write(b"\0" * 8)
        fh.seek(0, os.SEEK_END)
        fh.write(data[offsets[2990] + 11 :])
    with pytest.raises(FormatError, match="page 100"):
        index_pages(live)
    assert ds.refresh() == 10
    after = ds._indexes[0]
    np.testing.assert_array_equal(after.data_offsets[:2990], before.data_offsets)
    assert len(after) == 3000 and after.next_ifd == 0
    np.testing.assert_array_equal(
        ds.read(0, times=slice(2985, None)), np.stack([truth.page(g) for g in range(2985, 3000)])
    )


# -- multi-ROI field views ---------------------------------------------------------------------
def test_refresh_updates_the_field_views_of_a_multi_roi_recording(tmp_path, opened):
    from napari_scanimage.testing.mroi import write_mroi_tiff

    write_mroi_tiff(tmp_path / "full.tif", num_volumes=6)
    path = tmp_path / "full.tif"
    data = path.read_bytes()
    offsets, size = page_bounds(path)
    live = tmp_path / "live.tif"
    live.write_bytes(data[: offsets[len(offsets) // 3] + 9])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = opened(live)
        whole = opened(path)
    view = ds.field(1)
    assert ds.info.num_volumes == view.info.num_volumes == 2
    with open(live, "ab") as fh:
        fh.write(data[offsets[len(offsets) // 3] + 9 :])
    assert ds.refresh() == 4
    assert view.info.num_volumes == 6 and view.spec.frame_shape == whole.field(1).spec.frame_shape
    for c in range(ds.info.num_channels):
        np.testing.assert_array_equal(view.read(c), whole.field(1).read(c))
    assert view.refresh() == 0
