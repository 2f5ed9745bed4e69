"""Check the synthetic ScanImage writer with tifffile and a raw IFD walk (independent readers)."""

from __future__ import annotations

import hashlib
import json
import struct
from pathlib import Path

import numpy as np
import pytest
import tifffile

from napari_scanimage.testing.tiff import (
    SyntheticLayout,
    page_content,
    scanimage_static_text,
    write_scanimage_tiff,
)

SHARED_DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
HEADERS = SHARED_DATA / "scanimage-headers"
VOL_2CH = HEADERS / "si2022_vol_2ch.txt"
needs_headers = pytest.mark.skipif(
    not VOL_2CH.is_file(), reason=f"real ScanImage headers not found under {HEADERS}"
)

VOL = dict(
    channels=(1, 3),
    channel_names=("Green", "Red"),
    num_planes=3,
    frames_per_slice=2,
    num_flyback=1,
    num_volumes=2,
    extra_pages=5,
    frames_per_file=7,
    stale_num_slices=11,
    height=12,
    width=20,
)


def _check_dataset(ds, expected: dict) -> dict:
    """Read every file with tifffile; compare metadata, pages and descriptions."""
    lay = ds.layout
    g = 0
    digests = set()
    for path in ds.paths:
        with tifffile.TiffFile(path) as tif:
            assert tif.is_bigtiff
            assert tif.is_scanimage
            static, roi, version = tifffile.read_scanimage_metadata(tif.filehandle)
            assert version == 4
            assert "imagingRoiGroup" in roi["RoiGroups"]
            for key, value in expected.items():
                assert static[key] == value, key
            for page in tif.pages:
                data = page.asarray()
                assert data.dtype == np.dtype(lay.dtype)
                np.testing.assert_array_equal(data, ds.page(g))
                desc = dict(line.split(" = ", 1) for line in page.description.split("\n"))
                frame = g // lay.num_channels + 1
                assert desc["frameNumbers"] == str(frame)
                assert desc["frameNumberAcquisition"] == str(frame)
                assert desc["frameTimestamps_sec"] == f"{(frame - 1) / lay.frame_rate:.6f}"
                assert desc["epoch"] == "[2022 5 3 10 11 12.345]"
                assert page.description == ds.description(g)
                digests.add(hashlib.sha1(data.tobytes()).digest())
                g += 1
    assert g == ds.total_pages == lay.total_pages
    assert len(digests) == ds.total_pages  # every page differs from every other
    return static


def _walk_raw(path: Path) -> list[dict]:
    """Walk the file's IFDs with struct and check the byte layout of docs/formats.md §1.1."""
    buf = path.read_bytes()
    assert buf[:4] == b"II+\x00"
    assert struct.unpack_from("<HH", buf, 4) == (8, 0)
    (offset,) = struct.unpack_from("<Q", buf, 8)
    magic, version, n, m = struct.unpack_from("<IIII", buf, 16)
    assert (magic, version) == (117637889, 4)
    assert buf[32 + n - 1] == 0 and buf[32 + n + m - 1] == 0
    assert buf[32:35] == b"SI."
    assert "RoiGroups" in json.loads(buf[32 + n : 32 + n + m - 1])
    assert offset in (32 + n + m, 32 + n + m + 1)
    pages = []
    while offset:
        assert offset % 2 == 0
        (count,) = struct.unpack_from("<Q", buf, offset)
        tags = {}
        for i in range(count):
            tag, typ, cnt, val = struct.unpack_from("<HHQQ", buf, offset + 8 + 20 * i)
            tags[tag] = (typ, cnt, val)
        assert list(tags) == sorted(tags)
        assert set(tags) == {256, 257, 258, 259, 262, 270, 273, 277, 278, 279, 284, 305, 315, 339}
        assert tags[305] == (2, n, 32) and tags[315] == (2, m, 32 + n)
        assert tags[259][2] == 1 and tags[262][2] == 1 and tags[277][2] == 1
        assert tags[278][2] == tags[257][2] and tags[273][1] == tags[279][1] == 1
        end = offset + 8 + 20 * count + 8
        _, desc_count, desc_off = tags[270]
        assert desc_off == end  # description right after the IFD
        assert buf[desc_off + desc_count - 1] == 0
        strip = tags[273][2]
        assert strip - (desc_off + desc_count) in (0, 1)  # pixels right after (word aligned)
        assert tags[279][2] == tags[256][2] * tags[257][2] * 2
        (offset,) = struct.unpack_from("<Q", buf, end - 8)
        pages.append({"strip": strip, "end": strip + tags[279][2], "next": offset})
    assert pages[-1]["end"] == len(buf)
    assert all(p["next"] == p["end"] for p in pages[:-1])
    return pages


def test_planar_single_channel(tmp_path):
    ds = write_scanimage_tiff(tmp_path / "planar.tif", num_volumes=5)
    assert ds.paths == [tmp_path / "planar.tif"]
    static = _check_dataset(
        ds,
        {
            "SI.hChannels.channelSave": 1,
            "SI.hChannels.channelName": [f"Channel {i}" for i in range(1, 9)],
            "SI.hStackManager.enable": False,
            "SI.hStackManager.actualNumSlices": 1,
            "SI.hStackManager.framesPerSlice": 5,
            "SI.hStackManager.numFramesPerVolumeWithFlyback": 1,
            "SI.hScan2D.logFramesPerFile": float("inf"),
            "SI.hScan2D.channelsDataType": "int16",
            "SI.hRoiManager.scanFrameRate": 30,
            "SI.VERSION_MAJOR": 2022,
            "SI.TIFF_FORMAT_VERSION": 4,
            "SI.acqState": "grab",
            "SI.hStackManager.stackMode": "fast",
            "SI.hRoiManager.mroiEnable": False,
        },
    )
    keys = list(static)
    assert keys == sorted(keys)
    assert [p["next"] for p in _walk_raw(ds.paths[0])][-1] == 0


def test_volumetric_split_two_channels(tmp_path):
    ds = write_scanimage_tiff(tmp_path / "vol.tif", **VOL)
    lay = ds.layout
    assert lay.pages_per_volume == 2 * (3 * 2 + 1) == 14
    assert ds.total_pages == 2 * 14 + 5
    # 7 frames (14 pages) per file: 14 + 14 + 5 pages
    assert [p.name for p in ds.paths] == [f"vol_00001_0000{i}.tif" for i in (1, 2, 3)]
    assert [len(_walk_raw(p)) for p in ds.paths] == [14, 14, 5]
    _check_dataset(
        ds,
        {
            "SI.hChannels.channelSave": [1, 3],
            "SI.hChannels.channelName": [
                "Green",
                "Channel 2",
                "Red",
                *[f"Channel {i}" for i in range(4, 9)],
            ],  # fmt: skip
            "SI.hStackManager.enable": True,
            "SI.hStackManager.actualNumSlices": 3,
            "SI.hStackManager.numSlices": 11,
            "SI.hStackManager.framesPerSlice": 2,
            "SI.hStackManager.numFramesPerVolume": 6,
            "SI.hStackManager.numFramesPerVolumeWithFlyback": 7,
            "SI.hStackManager.numVolumes": 2,
            "SI.hFastZ.discardFlybackFrames": True,
            "SI.hFastZ.numDiscardFlybackFrames": 1,
            "SI.hScan2D.logFramesPerFile": 7,
            "SI.hRoiManager.linesPerFrame": 12,
            "SI.hRoiManager.pixelsPerLine": 20,
            "SI.hRoiManager.scanVolumeRate": pytest.approx(30 / 7, rel=1e-5),
            "SI.hRoiManager.imagingFovUm": [[-100, -100], [100, -100], [100, 100], [-100, 100]],
            "SI.hStackManager.actualStackZStepSize": 5,
        },
    )
    # formats.md §1.4 formula: last frame of slice 2 of volume 1, channel 1 -> frame number
    g = ds.page_index(1, 2, 1, 1)
    assert g == 14 + (2 * 2 + 1) * 2 + 1
    assert ds.description(g).startswith(f"frameNumbers = {g // 2 + 1}\n")


def test_uint16_averaged(tmp_path):
    ds = write_scanimage_tiff(
        tmp_path / "u16.tif",
        channels=(2,),
        channel_names=("GCaMP",),
        dtype="uint16",
        num_volumes=4,
        log_average_factor=3,
        bidirectional=True,
        height=8,
        width=10,
    )
    with tifffile.TiffFile(ds.paths[0]) as tif:
        assert tif.pages[0].tags["SampleFormat"].value == 1
    _check_dataset(
        ds,
        {
            "SI.hChannels.channelSave": 2,
            "SI.hChannels.channelName": ["Channel 1", "GCaMP"]
            + [f"Channel {i}" for i in range(3, 9)],
            "SI.hScan2D.channelsDataType": "uint16",
            "SI.hScan2D.logAverageFactor": 3,
            "SI.hStackManager.framesPerSlice": 12,
            "SI.hScan2D.bidirectional": True,
        },
    )


@needs_headers
def test_real_header_rewritten(tmp_path):
    ds = write_scanimage_tiff(tmp_path / "real.tif", header=VOL_2CH, **VOL)
    _check_dataset(
        ds,
        {
            "SI.hChannels.channelSave": [1, 3],
            "SI.hChannels.channelsActive": [1, 3],
            "SI.hStackManager.actualNumSlices": 3,
            "SI.hStackManager.numSlices": 11,
            "SI.hStackManager.numFramesPerVolumeWithFlyback": 7,
            "SI.hStackManager.zs": [0, 0, 5, 5, 10, 10],
            "SI.hScan2D.logFramesPerFile": 7,
            "SI.hRoiManager.linesPerFrame": 12,
            "SI.hRoiManager.mroiEnable": False,
            "SI.hBeams.powers": 41,  # untouched line of the real header
            "SI.VERSION_COMMIT": "b849dc927957516de132e0263c566af308d5f3c3",
        },
    )
    original = VOL_2CH.read_text().strip().split("\n")
    written = ds.static_text.strip().split("\n")
    assert len(written) == len(original)  # all layout keys exist: rewritten in place
    assert [ln.split(" = ")[0] for ln in written] == [ln.split(" = ")[0] for ln in original]


def test_missing_keys_inserted_sorted():
    text = "SI.VERSION_MAJOR = 2022\nSI.hChannels.channelSave = [1 2]\nSI.zzz = 1\n"
    lines = scanimage_static_text(SyntheticLayout(), text).strip().split("\n")
    keys = [ln.split(" = ")[0] for ln in lines]
    assert keys == sorted(keys)
    assert "SI.hChannels.channelSave = 1" in lines
    assert "SI.hRoiManager.mroiEnable = false" in lines
    assert keys[-1] == "SI.zzz"


def test_custom_content_and_page_content(tmp_path):
    def content(g: int) -> np.ndarray:
        return np.full((4, 6), g - 3, np.int16)

    ds = write_scanimage_tiff(tmp_path / "c.tif", height=4, width=6, content=content)
    with tifffile.TiffFile(ds.paths[0]) as tif:
        assert [int(p.asarray()[0, 0]) for p in tif.pages] == [-3, -2, -1]
    a, b = page_content(0, 4, 6, "int16"), page_content(65536, 4, 6, "int16")
    assert not np.array_equal(a, b)
    assert page_content(7, 4, 6, "uint16").dtype == np.uint16
    assert len(np.unique(page_content(3, 2, 100, "int16")[0])) == 100


@pytest.mark.parametrize(
    "kwargs",
    [
        {"channels": ()},
        {"channels": (1, 1)},
        {"num_flyback": 1},
        {"num_planes": 2, "extra_pages": 2},
        {"dtype": "float32"},
    ],
)
def test_invalid_layouts(kwargs):
    with pytest.raises(ValueError):
        SyntheticLayout(**kwargs)
