"""Layout, rates and timestamps of the older ScanImage generations (classic TIFF): SI 3.x
(``state.`` keys), SI 4 (``SI4.``) and SI 5.0 / 5.1 / 2015 (``SI5.`` / ``SI.`` keys repeated in
every page description).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .acquisition import AcquisitionInfo, first_value, fov_pixel_size, number

if TYPE_CHECKING:
    from .scanimage import StaticMetadata

__all__ = ["legacy_info"]


def legacy_info(
    meta: StaticMetadata, ids: tuple[int, ...], names: tuple[str, ...]
) -> AcquisitionInfo:
    """:class:`AcquisitionInfo` of an SI 3.x, SI 4 or SI 5 file."""
    if meta.generation == "SI3":
        return _info_si3(meta, ids, names)
    return _info_classic(meta, ids, names)


def _info_si3(
    meta: StaticMetadata, ids: tuple[int, ...], names: tuple[str, ...]
) -> AcquisitionInfo:
    """SI 3.x: ``numberOfFrames`` raw frames per slice (per file when planar), averaged in
    groups of ``numAvgFramesSave`` before saving (e.g. 3.8, where ``averaging`` is stale).  Older
    files have only ``averaging``: 1 averages all frames of a slice into one.  Stacks are slow
    stacks (stage moves between slices): one volume per file.
    """
    v = meta.values
    slices = max(int(number(first_value(v, "state.acq.numberOfZSlices", default=1)) or 1), 1)
    frames = max(int(number(first_value(v, "state.acq.numberOfFrames", default=1)) or 1), 1)
    average = number(first_value(v, "state.acq.numAvgFramesSave"))
    if average is None:
        average = frames if first_value(v, "state.acq.averaging", default=0) else 1
    average = min(max(int(average), 1), frames)
    frame_rate = number(first_value(v, "state.acq.frameRate"))
    saved = max(frames // average, 1)  # saved frames per slice
    frames_per_slice = saved if slices > 1 else 1
    volume_rate = None
    if frame_rate:
        volume_rate = frame_rate / (slices * frames) if slices > 1 else frame_rate / average
    lines = number(first_value(v, "state.acq.linesPerFrame"))
    pixels = number(first_value(v, "state.acq.pixelsPerLine"))
    z_step = number(first_value(v, "state.acq.zStepSize"))
    per_file = number(first_value(v, "state.acq.framesPerFile"))
    return AcquisitionInfo(
        version=str(first_value(v, "state.software.version", default="3")),
        generation="SI3",
        channel_ids=ids,
        channel_names=names,
        num_planes=slices,
        frames_per_slice=frames_per_slice,
        num_flyback=0,
        frame_rate=frame_rate,
        volume_rate=volume_rate,
        pixel_size_um=None,  # zoomFactor alone: the scan-angle calibration is not stored
        z_step_um=abs(z_step) if z_step and slices > 1 else None,
        bidirectional=bool(first_value(v, "state.acq.bidirectionalScan", default=False)),
        mroi=False,
        is_flim=False,
        log_average_factor=average,
        frames_per_file=int(per_file) if per_file else None,
        lines_per_frame=int(lines) if lines else None,
        pixels_per_line=int(pixels) if pixels else None,
        stack_mode="slow" if slices > 1 else None,
    )


def _info_classic(
    meta: StaticMetadata, ids: tuple[int, ...], names: tuple[str, ...]
) -> AcquisitionInfo:
    """SI 4 (``SI4.`` keys), SI 5.0 (flat ``SI5.`` keys, the SI 4 names) and SI 5.1/2015
    (``SI.hModule.`` keys) from the description of the first page.

    Fast z (``fastZEnable`` / ``SI.hFastZ.enable``) with several slices: one frame per slice,
    ``numDiscardFlybackFrames`` flyback frames written after each volume when flyback frames
    are discarded.  Several slices without fast z: a slow stack, ``acqNumFrames`` /
    ``framesPerSlice`` frames per slice (÷ the averaging factor).  Planar: T = all frames.
    Without the fast-z flag the keys are taken as they stand.
    """
    v = meta.values
    flat = (
        "SI4."
        if meta.generation == "SI4"
        else ("SI5." if any(k.startswith("SI5.") for k in v) else "")
    )

    def get(*keys: str, default: Any = None) -> Any:
        return first_value(v, *keys, default=default)

    if flat:
        p = flat
        fast_flag = get(p + "fastZEnable")
        slices = get(p + "stackNumSlices", default=1)
        average = get(p + "acqNumAveragedFrames", default=1)
        frames = get(p + "acqNumFrames", default=1)
        discard = get(p + "fastZDiscardFlybackFrames")
        n_discard = get(p + "fastZNumDiscardFrames", default=0)
        per_volume = None
        frame_rate = number(get(p + "scanFrameRate"))
        period = number(get(p + "scanFramePeriod"))
        if frame_rate is None and period:
            frame_rate = 1.0 / period
        volume_period = number(get(p + "fastZPeriod"))
        volume_rate = 1.0 / volume_period if volume_period else None
        lines = number(get(p + "scanLinesPerFrame", p + "linesPerFrame"))
        pixels = number(get(p + "scanPixelsPerLine", p + "pixelsPerLine"))
        z_step = number(get(p + "stackZStepSize"))
        bidi = get(p + "bidirectionalAcq", p + "bidirectionalScan")
        if bidi is None:
            bidi = "bidi" in str(get(p + "scanMode", default="")).lower()
        per_file = number(get(p + "loggingFramesPerFile"))
        version = _version(
            get(p + "VERSION_MAJOR", default=""),
            get(p + "VERSION_MINOR", default=""),
            "4" if p == "SI4." else "5",
        )
    else:
        fast_flag = get("SI.hFastZ.enable")
        slices = get(
            "SI.hStackManager.actualNumSlices",
            "SI.hStackManager.slicesPerAcq",
            "SI.hStackManager.numSlices",
            "SI.hFastZ.numSlices",
            default=1,
        )
        average = get("SI.hScan2D.logAverageFactor", default=1)
        frames = get("SI.hStackManager.framesPerSlice", default=1)
        discard = get("SI.hFastZ.discardFlybackFrames")
        n_discard = get("SI.hFastZ.numDiscardFlybackFrames", default=0)
        per_volume = number(get("SI.hFastZ.numFramesPerVolume"))  # flyback included
        frame_rate = number(get("SI.hRoiManager.scanFrameRate"))
        volume_rate = number(get("SI.hRoiManager.scanVolumeRate"))
        lines = number(get("SI.hRoiManager.linesPerFrame"))
        pixels = number(get("SI.hRoiManager.pixelsPerLine"))
        z_step = number(
            get("SI.hStackManager.actualStackZStepSize", "SI.hStackManager.stackZStepSize")
        )
        bidi = get("SI.hScan2D.bidirectional", default=False)
        per_file = number(get("SI.hScan2D.logFramesPerFile"))
        version = _version(
            get("SI.VERSION_MAJOR", default=""), get("SI.VERSION_MINOR", default=""), "5"
        )
    num_planes = max(int(number(slices) or 1), 1)
    average = max(int(number(average) or 1), 1)
    raw_frames = max(int(number(frames) or 1), 1)
    fast = num_planes > 1 and (fast_flag is None or bool(fast_flag))
    if num_planes > 1 and fast_flag:
        frames_per_slice = 1  # fast z scans each slice once per volume
    elif num_planes > 1:
        frames_per_slice = max(raw_frames // average, 1)
    else:
        frames_per_slice = 1
    flyback = 0
    if fast:
        if discard or (discard is None and per_volume is None):
            flyback = int(number(n_discard) or 0)
        elif discard is None and per_volume is not None:
            flyback = int(per_volume) - num_planes
        flyback = max(flyback, 0)
    if num_planes == 1:
        volume_rate = frame_rate / average if frame_rate else None
    elif not fast or volume_rate is None:
        volume_rate = None
        if frame_rate:
            volume_rate = frame_rate / (num_planes * frames_per_slice * average + flyback)
    lines_i, pixels_i = (int(lines) if lines else None), (int(pixels) if pixels else None)
    return AcquisitionInfo(
        version=version,
        generation=meta.generation,
        channel_ids=ids,
        channel_names=names,
        num_planes=num_planes,
        frames_per_slice=frames_per_slice,
        num_flyback=flyback,
        frame_rate=frame_rate,
        volume_rate=volume_rate,
        pixel_size_um=fov_pixel_size(v, lines_i, pixels_i),
        z_step_um=abs(z_step) if z_step and num_planes > 1 else None,
        bidirectional=bool(bidi),
        mroi=bool(get("SI.hRoiManager.mroiEnable", default=False)),
        is_flim=False,
        log_average_factor=average,
        frames_per_file=int(per_file) if per_file else None,
        stack_mode=None if num_planes == 1 else ("fast" if fast else "slow"),
        lines_per_frame=lines_i,
        pixels_per_line=pixels_i,
    )


def _version(major: object, minor: object, default: str) -> str:
    """``VERSION_MAJOR``.``VERSION_MINOR``; a major that already has a dot ('5.1') keeps a
    minor of 0 off.
    """
    major, minor = str(major).strip(), str(minor).strip()
    if not major:
        return default
    if not minor or ("." in major and minor == "0"):
        return major
    return f"{major}.{minor}"
