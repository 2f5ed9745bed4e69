r"""Write synthetic classic-TIFF recordings of older ScanImage versions with known pixels.

Generations (docs/formats.md §1):

``"SI3"``
    ScanImage 3.x (3.8): every page's ImageDescription holds the whole ``state.x=value`` header,
    ``\r`` separated; no per-frame values.  Stacks are slow stacks (one volume per file).
``"SI4"``
    ScanImage 4: optional ``Frame Tag = 0000000N`` line, then ``scanimage.SI4.x = value``
    lines in every page; no per-frame timestamps.
``"SI5.0"``
    ScanImage 5.0: ``Frame Number``/``Frame Timestamp(s)`` lines, then flat
    ``scanimage.SI5.x = value`` lines.
``"SI5"``
    ScanImage 5.1 / 2015: ``frameNumbers``/``frameTimestamps_sec``… lines, then hierarchical
    ``scanimage.SI.hModule.prop = value`` lines.

Pages are written as IFD, description, one uncompressed strip.  ``page_offsets`` places chosen
pages at chosen file offsets (the gap left sparse), for classic files larger than 2 GB whose
offsets need all 32 bits.  Pixels are :func:`napari_scanimage.testing.tiff.page_content`.
"""

from __future__ import annotations

import os
import pathlib
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from .tiff import PageCounts, page_content

__all__ = ["GENERATIONS", "LegacyDataset", "LegacyLayout", "legacy_description",
           "write_legacy_tiff"]  # fmt: skip

GENERATIONS = ("SI3", "SI4", "SI5.0", "SI5")
_SHORT, _LONG, _ASCII = 3, 4, 2


@dataclass(frozen=True)
class LegacyLayout(PageCounts):
    """Acquisition layout of a synthetic legacy ScanImage file.

    Attributes
    ----------
    generation : {"SI3", "SI4", "SI5.0", "SI5"}
    channels, channel_names : saved hardware ids (1-based) and, for ``"SI5"`` only (the only
        legacy header with names), their names; None writes the default ``Channel N``.
    num_planes, frames_per_slice, num_flyback, num_volumes : Z, saved frames per slice F,
        flyback frames per volume B (written, with all channels) and volumes T.
    average : raw frames averaged into each saved frame.
    fast_z : volumetric by fast z (T volumes, flyback allowed) or a slow stack (one volume,
        F frames per slice); None: fast, except for SI 3 (always slow).
    frame_rate : raw frame rate, Hz.  Written timestamps are ``k·average/rate`` plus a small
        per-frame jitter, so they differ from anything derived from the rate.
    frame_tag : SI 4: write the ``Frame Tag`` line.
    header_overrides : ((full key, value text or None), ...)
        Replace header values (None: drop the key; new keys are appended), e.g. to write
        stale or missing keys.
    """

    generation: str = "SI5"
    channels: tuple[int, ...] = (1,)
    channel_names: tuple[str, ...] | None = None
    num_planes: int = 1
    frames_per_slice: int = 1
    average: int = 1
    num_flyback: int = 0
    num_volumes: int = 4
    fast_z: bool | None = None
    height: int = 12
    width: int = 20
    dtype: str = "int16"
    frame_rate: float = 10.0
    bidirectional: bool = True
    z_step_um: float = 2.5
    byteorder: Literal["<", ">"] = "<"
    frame_tag: bool = True
    jitter_s: float = 1e-4
    header_overrides: tuple[tuple[str, str | None], ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "channels", tuple(int(c) for c in self.channels))
        checks = [
            (self.generation in GENERATIONS, f"generation in {GENERATIONS}"),
            (bool(self.channels) and min(self.channels) >= 1
             and len(set(self.channels)) == len(self.channels), "distinct channels >= 1"),
            (self.channel_names is None or (self.generation == "SI5"
                                            and len(self.channel_names) == len(self.channels)),
             "channel names (SI5 only), one per channel"),
            (min(self.num_planes, self.frames_per_slice, self.average, self.num_volumes,
                 self.height, self.width) >= 1, "sizes >= 1"),
            (self.num_flyback == 0 or self.is_fast, "flyback only with fast z"),
            (self.is_fast or self.num_volumes == 1 or self.num_planes == 1,
             "a slow stack has one volume"),
            (not self.is_fast or self.frames_per_slice == 1, "fast z has one frame per slice"),
            (self.num_planes > 1 or self.frames_per_slice == 1, "planar: frames_per_slice 1"),
            (self.dtype in ("int16", "uint16"), "dtype int16 or uint16"),
            (self.byteorder in ("<", ">"), "byteorder '<' or '>'"),
        ]  # fmt: skip
        for ok, need in checks:
            if not ok:
                raise ValueError(f"invalid LegacyLayout {self!r}: need {need}")

    @property
    def is_fast(self) -> bool:
        """Volumetric by fast z (several volumes, flyback possible)."""
        if self.num_planes == 1:
            return False
        return self.generation != "SI3" if self.fast_z is None else bool(self.fast_z)

    @property
    def total_pages(self) -> int:
        """Pages in the file."""
        return self.num_volumes * self.pages_per_volume

    @property
    def total_frames(self) -> int:
        """Frames in the file (all channels of one frame count once)."""
        return self.num_volumes * self.frames_per_volume

    @property
    def volume_rate(self) -> float:
        """Time samples per second (volumes, or saved frames when planar)."""
        raw = (
            self.num_planes * self.frames_per_slice * self.average + self.num_flyback
            if self.num_planes > 1
            else self.average
        )
        return self.frame_rate / raw

    def page_index(self, t: int, z: int, f: int, c: int) -> int:
        """Page of volume t, slice z, frame f, channel c (docs/formats.md §1.4)."""
        return t * self.pages_per_volume + (z * self.frames_per_slice + f) * self.num_channels + c

    def frame_time(self, k: int) -> float:
        """Written timestamp (s) of saved frame k (0-based, flyback frames counted)."""
        return k * self.average / self.frame_rate + self.jitter_s * (k % 3)


def _mat(v: object) -> str:
    """A Python value as MATLAB text."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return "Inf" if v == float("inf") else f"{v:.9g}"
    if isinstance(v, str):
        return "'" + v.replace("'", "''") + "'"
    return str(v)


def _column(ids: Sequence[int]) -> str:
    return _mat(ids[0]) if len(ids) == 1 else "[" + ";".join(map(str, ids)) + "]"


def _si3_values(lay: LegacyLayout) -> dict[str, str]:
    z, f, avg, ids = lay.num_planes, lay.frames_per_slice, lay.average, lay.channels
    raw_frames = f * avg if z > 1 else lay.num_volumes * avg
    v = {
        "state.configPath": "'C:\\ScanImage\\Configurations'",
        "state.configName": "'synthetic'",
        "state.software.version": "3.8",
        "state.software.minorRev": "1",
        "state.acq.externallyTriggered": "0",
        "state.acq.numberOfZSlices": str(z),
        "state.acq.zStepSize": _mat(float(lay.z_step_um)) if z > 1 else "0",
        "state.acq.numAvgFramesSaveGUI": str(avg),
        "state.acq.numAvgFramesSave": str(avg),
        "state.acq.numAvgFramesDisplay": "1",
        # stale in 3.8 (set from the previous numAvgFramesSave): contradicts on purpose
        "state.acq.averaging": "1" if avg == 1 else "0",
        "state.acq.averagingDisplay": "0",
        "state.acq.numberOfFrames": str(raw_frames),
        "state.acq.numberOfRepeats": "1",
        "state.acq.linesPerFrame": str(lay.height),
        "state.acq.pixelsPerLine": str(lay.width),
        "state.acq.frameRate": _mat(float(lay.frame_rate)),
        "state.acq.zoomFactor": "2",
        "state.acq.msPerLine": _mat(1000.0 / lay.frame_rate / lay.height),
        "state.acq.fillFraction": "0.819",
        "state.acq.bidirectionalScan": "1" if lay.bidirectional else "0",
    }
    for n in range(1, 5):
        v[f"state.acq.acquiringChannel{n}"] = "1" if n in ids else "0"
    for n in range(1, 5):
        v[f"state.acq.savingChannel{n}"] = "1" if n in ids else "0"
    v["state.acq.numberOfChannelsSave"] = str(len(ids))
    v["state.acq.numberOfChannelsAcquire"] = str(len(ids))
    v["state.acq.framesPerFile"] = "Inf"
    v["state.motor.absZPosition"] = "-3374.8"
    v["state.internal.triggerTimeString"] = "'7/30/2014 21:10:00.731'"
    return v


def _flat_values(lay: LegacyLayout, prefix: str) -> dict[str, str]:
    """SI 4 and SI 5.0 headers (same property names)."""
    z, f, avg, b = lay.num_planes, lay.frames_per_slice, lay.average, lay.num_flyback
    fast = lay.is_fast
    raw_frames = 1 if fast else (f * avg if z > 1 else lay.num_volumes * avg)
    si4 = prefix == "SI4."
    v = {
        "acqNumAveragedFrames": str(avg),
        "acqNumFrames": str(raw_frames),
        "acqState": "'grab'",
        "beamFlybackBlanking": "true",
        "channelsActive": _column(lay.channels),
        "channelsSave": _column(lay.channels),
        "fastZActive": _mat(fast),
        "fastZDiscardFlybackFrames": ("1" if b else "0") if si4 else _mat(b > 0),
        "fastZEnable": ("1" if fast else "0") if si4 else _mat(fast),
        "fastZImageType": "'XY-Z'",
        "fastZNumDiscardFrames": str(b),
        "fastZNumVolumes": str(lay.num_volumes if fast else 1),
        "fastZPeriod": _mat((z + b) / lay.frame_rate) if fast else "[]",
        "loggingFramesPerFile": "Inf",
        "scanFramePeriod": _mat(1.0 / lay.frame_rate),
        "stackNumSlices": str(z),
        "stackZStepSize": _mat(float(lay.z_step_um)),
    }
    if si4:
        v.update(
            {
                "scanFrameRate": _mat(float(lay.frame_rate)),
                "scanLinesPerFrame": str(lay.height),
                "scanPixelsPerLine": str(lay.width),
                "scanMode": "'bidirectional'" if lay.bidirectional else "'unidirectional'",
                "scanZoomFactor": "1.5",
                "channelsMergeColor": "{'green' 'red' 'gray' 'gray'}",
            }
        )
    else:
        v.update(
            {
                "VERSION_MAJOR": "5",
                "VERSION_MINOR": "0",
                "bidirectionalAcq": _mat(lay.bidirectional),
                "linesPerFrame": str(lay.height),
                "pixelsPerLine": str(lay.width),
                "zoomFactor": "3",
            }
        )
    return {f"scanimage.{prefix}{k}": v[k] for k in sorted(v)}


def _si5_values(lay: LegacyLayout) -> dict[str, str]:
    """ScanImage 5.1 / 2015 header (hierarchical ``scanimage.SI.`` names)."""
    z, f, avg, b = lay.num_planes, lay.frames_per_slice, lay.average, lay.num_flyback
    fast = lay.is_fast
    all_names = [f"Channel {n}" for n in range(1, 5)]
    for cid, name in zip(lay.channels, lay.names, strict=True):
        all_names[cid - 1] = name
    per_slice = 1 if fast else (f * avg if z > 1 else lay.num_volumes * avg)
    v = {
        "SI.VERSION_MAJOR": "'5.1'",
        "SI.VERSION_MINOR": "'0'",
        "SI.acqState": "'grab'",
        "SI.acqsPerLoop": "1",
        "SI.imagingSystem": "'Resonant'",
        "SI.hChannels.channelSave": _column(lay.channels),
        "SI.hChannels.channelDisplay": _column(lay.channels),
        "SI.hChannels.channelName": "{" + " ".join(_mat(n) for n in all_names) + "}",
        "SI.hChannels.channelOffset": "[12 -7 0 0]",
        "SI.hFastZ.enable": _mat(fast),
        "SI.hFastZ.numVolumes": str(lay.num_volumes if fast else 1),
        "SI.hFastZ.discardFlybackFrames": _mat(b > 0),
        "SI.hFastZ.numDiscardFlybackFrames": str(b),
        "SI.hFastZ.numFramesPerVolume": str(z + b if fast else z),
        "SI.hFastZ.waveformType": "'sawtooth'",
        "SI.hStackManager.numSlices": str(z),
        "SI.hStackManager.slicesPerAcq": str(z),
        "SI.hStackManager.framesPerSlice": str(per_slice),
        "SI.hStackManager.stackZStepSize": _mat(float(lay.z_step_um)),
        "SI.hStackManager.stackReturnHome": "true",
        "SI.hScan2D.logAverageFactor": str(avg),
        "SI.hScan2D.logFramesPerFile": "Inf",
        "SI.hScan2D.bidirectional": _mat(lay.bidirectional),
        "SI.hScan2D.fillFractionTemporal": "0.712867",
        "SI.hScan2D.channelsDataType": _mat(lay.dtype),
        "SI.hRoiManager.linesPerFrame": str(lay.height),
        "SI.hRoiManager.pixelsPerLine": str(lay.width),
        "SI.hRoiManager.scanFrameRate": _mat(float(lay.frame_rate)),
        "SI.hRoiManager.scanFramePeriod": _mat(1.0 / lay.frame_rate),
        "SI.hRoiManager.scanVolumeRate": _mat(lay.volume_rate if z > 1 else lay.frame_rate),
        "SI.hRoiManager.scanZoomFactor": "2",
        "SI.hRoiManager.mroiEnable": "false",
    }
    return {"scanimage." + k: v[k] for k in sorted(v)}


def _static_lines(lay: LegacyLayout) -> str:
    if lay.generation == "SI3":
        values = _si3_values(lay)
    elif lay.generation == "SI5":
        values = _si5_values(lay)
    else:
        values = _flat_values(lay, "SI4." if lay.generation == "SI4" else "SI5.")
    for key, value in lay.header_overrides:
        if value is None:
            values.pop(key, None)
        else:
            values[key] = value
    if lay.generation == "SI3":
        return "\r".join(f"{k}={v}" for k, v in values.items())
    return "".join(f"{k} = {v}\n" for k, v in values.items())


def legacy_description(lay: LegacyLayout, frame: int, static: str | None = None) -> str:
    """ImageDescription of saved frame ``frame`` (0-based; shared by its channel pages)."""
    static = _static_lines(lay) if static is None else static
    n, t = frame + 1, lay.frame_time(frame)
    if lay.generation == "SI3":
        return static
    if lay.generation == "SI4":
        return (f"Frame Tag = {n:08d}\n" if lay.frame_tag else "") + static
    if lay.generation == "SI5.0":
        head = (
            f"Frame Number = {n}\nFrame Timestamp(s) = {t:.9f}\n"
            "Acq Trigger Timestamp(s) = -0.000083300\n"
            "Next File Marker Timestamp(s) = -1.000000000\nDC Overvoltage = 0\n"
        )
        return head + static
    head = (
        f"frameNumbers = {n}\nacquisitionNumbers = 1\nframeNumberAcquisition = {n}\n"
        f"frameTimestamps_sec = {t:.6f}\nacqTriggerTimestamps_sec = \n"
        "nextFileMarkerTimestamps_sec = \nendOfAcquisition = "
        f"{int(frame == lay.total_frames - 1)}\nendOfAcquisitionMode = 0\n"
        "dcOverVoltage = 0\n"
    )
    return head + static


@dataclass
class LegacyDataset:
    """A file written by :func:`write_legacy_tiff` and its ground truth."""

    path: pathlib.Path
    layout: LegacyLayout
    data_offsets: list[int] = field(default_factory=list)
    ifd_offsets: list[int] = field(default_factory=list)

    @property
    def total_pages(self) -> int:
        """Pages in the file."""
        return self.layout.total_pages

    def page(self, g: int) -> np.ndarray:
        """Ground-truth pixels of page g."""
        if not 0 <= g < self.total_pages:
            raise IndexError(f"page {g} out of range [0, {self.total_pages})")
        lay = self.layout
        return page_content(g, lay.height, lay.width, lay.dtype)

    def pages(self, indices: npt.ArrayLike) -> np.ndarray:
        """Ground-truth pixels of the pages ``indices`` (any shape; Y, X appended)."""
        return np.stack([self.page(int(g)) for g in np.asarray(indices).ravel()]).reshape(
            *np.shape(indices), self.layout.height, self.layout.width
        )

    def channel(self, c: int, *, plane: int | None = None, sample: int = 0) -> np.ndarray:
        """(T, Z, Y, X) pixels of channel index c (frame-per-slice ``sample``); (T, Y, X) when
        planar or ``plane`` given.
        """
        lay = self.layout
        zs = range(lay.num_planes) if plane is None else [plane]
        idx = [[lay.page_index(t, z, sample, c) for z in zs] for t in range(lay.num_volumes)]
        out = self.pages(idx)
        return out[:, 0] if (plane is not None or lay.num_planes == 1) else out

    def timestamps(self, plane: int = -1, sample: int = 0) -> np.ndarray:
        """Written timestamp of each volume's frame at (plane, sample)."""
        lay = self.layout
        z = plane % lay.num_planes
        return np.array(
            [
                lay.frame_time(lay.page_index(t, z, sample, 0) // lay.num_channels)
                for t in range(lay.num_volumes)
            ]
        )


def write_legacy_tiff(
    path: str | os.PathLike[str],
    layout: LegacyLayout | None = None,
    *,
    page_offsets: Mapping[int, int] | None = None,
    **layout_kwargs: Any,
) -> LegacyDataset:
    """Write one classic (non-Big) TIFF file in the layout of an older ScanImage version.

    Parameters
    ----------
    path : path-like
    layout : LegacyLayout, optional
        Built from ``**layout_kwargs`` when omitted.
    page_offsets : mapping page -> file offset, optional
        Start page ``page`` (its IFD) at this offset (>= the end of the previous page); the gap
        is left as a sparse hole.  Offsets must stay below 2**32.

    Returns
    -------
    LegacyDataset
    """
    lay = layout if layout is not None else LegacyLayout(**layout_kwargs)
    if layout is not None and layout_kwargs:
        import dataclasses

        lay = dataclasses.replace(layout, **layout_kwargs)
    bo = lay.byteorder
    jumps = dict(page_offsets or {})
    static = _static_lines(lay)
    n_tags = 12
    ifd_size = 2 + 12 * n_tags + 4
    nbytes = lay.height * lay.width * 2
    path = pathlib.Path(path)
    out = LegacyDataset(path, lay)
    C = lay.num_channels
    with open(path, "wb") as fh:
        fh.write((b"II" if bo == "<" else b"MM") + struct.pack(bo + "HI", 42, jumps.get(0, 8)))
        pos = 8
        desc_cache: tuple[int, bytes] = (-1, b"")
        for g in range(lay.total_pages):
            if g in jumps:
                if jumps[g] < pos:
                    raise ValueError(f"page {g}: offset {jumps[g]} is before byte {pos}")
                pos = jumps[g]
            frame = g // C
            if desc_cache[0] != frame:
                text = legacy_description(lay, frame, static)
                desc_cache = (frame, text.encode("ascii") + b"\0")
            desc = desc_cache[1]
            d_off = pos + ifd_size
            s_off = d_off + len(desc) + (len(desc) & 1)
            end = s_off + nbytes
            nxt = 0 if g == lay.total_pages - 1 else jumps.get(g + 1, end)
            if max(end, nxt) >= 2**32:
                raise ValueError("classic TIFF offsets must stay below 4 GiB")
            entries = [  # (tag, type, count, value), sorted by tag
                (256, _LONG, 1, lay.width),
                (257, _LONG, 1, lay.height),
                (258, _SHORT, 1, 16),
                (259, _SHORT, 1, 1),
                (262, _SHORT, 1, 1),
                (270, _ASCII, len(desc), d_off),
                (273, _LONG, 1, s_off),
                (277, _SHORT, 1, 1),
                (278, _LONG, 1, lay.height),
                (279, _LONG, 1, nbytes),
                (284, _SHORT, 1, 1),
                (339, _SHORT, 1, 2 if lay.dtype == "int16" else 1),
            ]
            ifd = bytearray(struct.pack(bo + "H", n_tags))
            for tag, typ, count, value in entries:
                ifd += struct.pack(bo + "HHI", tag, typ, count)
                ifd += struct.pack(bo + ("H2x" if typ == _SHORT else "I"), value)
            ifd += struct.pack(bo + "I", nxt)
            fh.seek(pos)
            pixels = out.page(g).astype(np.dtype(lay.dtype).newbyteorder(bo), copy=False)
            fh.write(bytes(ifd) + desc + b"\0" * (len(desc) & 1) + pixels.tobytes())
            out.ifd_offsets.append(pos)
            out.data_offsets.append(s_off)
            pos = end + (end & 1)
    return out
