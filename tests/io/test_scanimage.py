"""Static metadata: MATLAB literals without eval, every generation's keys, key fallbacks."""

from __future__ import annotations

import math

import pytest
import tifffile

from napari_scanimage.io.scanimage import (
    RawMetadata,
    StaticMetadata,
    acquisition_info,
    parse_frame_description,
    parse_value,
)


@pytest.mark.parametrize(
    "text, value",
    [
        ("[1 2]", [1, 2]),
        ("1", 1),
        ("30.0021", 30.0021),
        ("Inf", math.inf),
        ("true", True),
        ("'grab'", "grab"),
        ("[-1.5 2;3 4]", [[-1.5, 2], [3, 4]]),
        ("[]", []),
        ("{'Channel 1' 'Red'}", ["Channel 1", "Red"]),
        ("{'only'}", ["only"]),
        ("{}", []),
        ("'5.7'", "5.7"),
        ("", None),
    ],
)
def test_parse_value(text, value):
    assert parse_value(text) == value


def test_code_in_a_value_stays_text(tmp_path):
    marker = tmp_path / "ran"
    value = parse_value(f"@(x) system('touch {marker}')")
    assert not marker.exists()
    assert all(isinstance(v, str) for v in (value if isinstance(value, list) else [value]))


def test_parse_value_agrees_with_tifffile_on_real_headers(shared_data):
    compared = 0
    for path in sorted((shared_data / "scanimage-headers").glob("*.txt")):
        for line in path.read_text().splitlines():
            key, eq, text = line.partition(" = ")
            if not eq or not text.strip() or text.strip().startswith("{"):
                continue  # tifffile unwraps one-element cells; ours keep cells as lists
            ours, theirs = parse_value(text), tifffile.matlabstr2py(text)
            assert ours == theirs or (ours != ours and theirs != theirs), (key, text)
            compared += 1
    assert compared > 2000


def _meta(generation: str, lines: dict[str, str]) -> StaticMetadata:
    return StaticMetadata(generation, RawMetadata(lines))


def test_si5_description_keys():
    info = acquisition_info(
        _meta(
            "SI5",
            {
                "SI.hChannels.channelSave": "[1;2]",
                "SI.hStackManager.numSlices": "4",
                "SI.hStackManager.framesPerSlice": "3",
                "SI.hScan2D.logAverageFactor": "3",
                "SI.hFastZ.discardFlybackFrames": "true",
                "SI.hFastZ.numDiscardFlybackFrames": "2",
                "SI.hRoiManager.scanFrameRate": "15",
                "SI.hStackManager.stackZStepSize": "-2",
                "SI.VERSION_MAJOR": "'2016b'",
                "SI.VERSION_MINOR": "'1'",
            },
        )
    )
    assert info.channel_ids == (1, 2) and info.channel_names == ("Channel 1", "Channel 2")
    assert (info.num_planes, info.frames_per_slice, info.num_flyback) == (4, 1, 2)
    assert info.volume_rate == pytest.approx(15 / (4 * 3 + 2))
    assert info.z_step_um == 2 and info.version == "2016b.1"


def test_si4_description_keys():
    info = acquisition_info(
        _meta(
            "SI4",
            {
                "SI4.channelsSave": "[1 3]",
                "SI4.stackNumSlices": "5",
                "SI4.acqNumFrames": "2",
                "SI4.fastZDiscardFlybackFrames": "1",
                "SI4.fastZNumDiscardFrames": "1",
                "SI4.scanFrameRate": "7.5",
                "SI4.bidirectionalScan": "true",
            },
        )
    )
    assert info.channel_ids == (1, 3) and info.generation == "SI4"
    assert (info.num_planes, info.frames_per_slice, info.num_flyback) == (5, 2, 1)
    assert info.bidirectional is True and info.version == "4"


def test_stack_disabled_means_planar_whatever_numslices_says():
    info = acquisition_info(
        _meta(
            "2016+",
            {
                "SI.hStackManager.enable": "false",
                "SI.hStackManager.actualNumSlices": "7",
                "SI.hStackManager.numSlices": "11",
                "SI.hStackManager.framesPerSlice": "500",
                "SI.hRoiManager.scanFrameRate": "30",
            },
        )
    )
    assert (info.num_planes, info.frames_per_slice, info.num_flyback) == (1, 1, 0)
    assert info.volume_rate == 30


def test_frame_description_forms():
    text = "frameNumbers = 7\nframeTimestamps_sec = 0.200000\nepoch = [2022,5,3,10,11,12.345]\n"
    assert parse_frame_description(text)["frameTimestamps_sec"] == "0.200000"
    as_json = '{"frameData": {"frameNumbers": 7, "frameTimestamps_sec": 0.2}}'
    assert parse_frame_description(as_json) == {"frameNumbers": "7", "frameTimestamps_sec": "0.2"}
    assert parse_frame_description("{broken") == {}


@pytest.mark.parametrize("generation", ["2016+", "SI5", "SI4"])
def test_non_finite_channel_ids_are_ignored(generation):
    key = "SI4.channelsSave" if generation == "SI4" else "SI.hChannels.channelSave"
    info = acquisition_info(_meta(generation, {key: "[Inf 2 NaN]"}))
    assert info.channel_ids == (2,) and info.channel_names == ("Channel 2",)
    info = acquisition_info(_meta(generation, {key: "Inf"}))
    assert info.channel_ids == (1,)  # nothing usable: the first channel
