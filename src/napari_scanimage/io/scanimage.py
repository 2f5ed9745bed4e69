"""ScanImage static metadata, every generation, without evaluating file text.

Functions
---------
read_static_metadata
    Header text of a ScanImage TIFF (2016+ block, SI 5/4 description, SI 3.x ``state.`` lines).
acquisition_info
    :class:`AcquisitionInfo` (channels, planes, frames per slice, flyback, rates, geometry).
parse_value
    MATLAB literal → Python value (via ``tifffile.matlabstr2py``, never ``eval``).
parse_frame_description
    Per-frame ``key = value`` text (or its JSON variant) → dict of raw strings.
"""

from __future__ import annotations

import json
import math
import os
import re
import struct
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, BinaryIO

import numpy as np

from ..errors import FormatError
from .acquisition import AcquisitionInfo, first_value, fov_pixel_size, int_list, number
from .ifd import IfdWalker, read_header
from .legacy_info import legacy_info

__all__ = [
    "SI_MAGIC",
    "AcquisitionInfo",
    "StaticMetadata",
    "acquisition_info",
    "parse_frame_description",
    "parse_value",
    "read_static_metadata",
]

SI_MAGIC = 117637889  # 0x07030301, at byte 16 of 2016+ files and .siff


_WORDS = {"true": True, "false": False, "Inf": math.inf, "-Inf": -math.inf, "NaN": math.nan}
_PLAIN_STRING = re.compile(r"^'([^']*)'$")
_NUMBER_TEXT = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")


def _scalar(token: str) -> Any:
    if token in _WORDS:
        return _WORDS[token]
    if _NUMBER_TEXT.match(token):
        value = float(token)
        return (
            int(value)
            if value.is_integer() and "." not in token and "e" not in token.lower()
            else value
        )
    raise ValueError(token)


def _simple_literal(text: str) -> Any:
    """The literal forms ScanImage headers mostly use; ValueError for anything else."""
    m = _PLAIN_STRING.match(text)
    if m:
        return m.group(1)
    if text.startswith("[") and text.endswith("]"):
        body = text[1:-1].strip()
        if not body:
            return []
        rows = [[_scalar(t) for t in row.replace(",", " ").split()] for row in body.split(";")]
        return rows[0] if len(rows) == 1 else rows
    if text.startswith("{") and text.endswith("}"):
        body = text[1:-1].strip()
        items = re.findall(r"'([^']*)'", body)
        if re.sub(r"'[^']*'", "", body).strip(" ,"):
            raise ValueError(text)
        return items
    return _scalar(text)


@lru_cache(maxsize=4096)
def parse_value(text: str) -> Any:
    """Convert one MATLAB literal (``[1 2;3 4]``, ``{'a' 'b'}``, ``true``, ``Inf``) to Python.

    Common forms are parsed here; the rest by ``tifffile.matlabstr2py`` (never ``eval``).
    """
    text = text.strip()
    if not text:
        return None
    try:
        return _simple_literal(text)
    except ValueError:
        pass
    import tifffile

    try:
        return tifffile.matlabstr2py(text)
    except Exception:  # unusual literals stay text rather than failing the whole file
        return text


class RawMetadata(Mapping[str, Any]):
    """Mapping of metadata key → parsed value; values are parsed on first access."""

    def __init__(self, raw: dict[str, str]):
        self._raw = raw
        self._parsed: dict[str, Any] = {}

    def __getitem__(self, key: str) -> Any:
        try:
            return self._parsed[key]
        except KeyError:
            value = self._parsed[key] = parse_value(self._raw[key])
            return value

    def __iter__(self) -> Iterator[str]:
        return iter(self._raw)

    def __len__(self) -> int:
        return len(self._raw)

    def raw(self, key: str) -> str:
        """The value exactly as written in the file."""
        return self._raw[key]


@dataclass(frozen=True)
class StaticMetadata:
    """Static (acquisition-wide) metadata of a ScanImage file.

    ``values`` keys are normalised: ``SI.…`` (2016+ and SI 5), ``SI4.…`` (SI 4) and
    ``state.…`` (SI 3.x).
    """

    generation: str  # "2016+", "SI5", "SI4", "SI3"
    values: RawMetadata
    roi_groups: dict[str, Any] | None = None
    tiff_format_version: int | None = None
    header_length: int = 0


def _split_lines(
    text: str, sep: str, strip_prefix: str = "", spaces: bool = False
) -> dict[str, str]:
    """``key = value`` lines → dict; keys with spaces only when ``spaces`` (`.siff` frame
    keys such as ``sync Stamps`` and ``Appended text``).
    """
    out: dict[str, str] = {}
    for line in text.split(sep):
        key, eq, value = line.partition("=")
        if not eq:
            continue
        key = key.strip()
        if strip_prefix and key.startswith(strip_prefix):
            key = key[len(strip_prefix) :]
        if key and (spaces or " " not in key):
            out[key] = value.strip()
    return out


def _first_description(fh: BinaryIO, size: int, path: str) -> str:
    import mmap

    header = read_header(fh.read(16), path)
    with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        walker = IfdWalker(mm, size, header, path)
        arrays, *_ = walker.walk(header.first_ifd, max_pages=1)
        if not arrays["description_lengths"]:
            return ""
        off, length = arrays["description_offsets"][0], arrays["description_lengths"][0]
        return bytes(mm[off : off + length]).rstrip(b"\0").decode("utf-8", "replace")


def read_static_metadata(path: str | os.PathLike[str]) -> StaticMetadata:
    """Read the static ScanImage metadata of one file, touching only the bytes it needs.

    Raises
    ------
    FormatError
        If the file is not TIFF, not ScanImage, or its header block is corrupt.
    """
    path = os.fspath(path)
    size = os.path.getsize(path)
    with open(path, "rb") as fh:
        head = fh.read(32)
        header = read_header(head, path)
        if header.bigtiff and len(head) >= 32:
            magic, version, n_text, n_roi = struct.unpack_from(header.byteorder + "4I", head, 16)
            if magic == SI_MAGIC:
                if 32 + n_text + n_roi > size or n_text == 0:
                    raise FormatError(
                        f"{path}: ScanImage header block declares {n_text} + {n_roi} bytes but "
                        f"the file holds {size}; the header is corrupt"
                    )
                block = fh.read(n_text + n_roi)
                text = block[:n_text].rstrip(b"\0").decode("utf-8", "replace")
                rois = None
                if n_roi:
                    roi_text = block[n_text:].rstrip(b"\0").decode("utf-8", "replace").strip()
                    try:
                        rois = json.loads(roi_text) if roi_text else None
                    except ValueError:
                        rois = None
                raw = _split_lines(text, "\n")
                if not any(k.startswith("SI.") for k in raw):
                    raise FormatError(
                        f"{path}: ScanImage header block holds no SI.* keys; the header is corrupt"
                    )
                return StaticMetadata("2016+", RawMetadata(raw), rois, version, 32 + n_text + n_roi)
        fh.seek(0)
        desc = _first_description(fh, size, path)
    if desc.startswith("state."):
        return StaticMetadata("SI3", RawMetadata(_split_lines(desc, "\r")))
    if "scanimage.SI4." in desc or "scanimage.SI." in desc or "scanimage.SI5." in desc:
        # SI 4, SI 5.1/2015, SI 5.0: static lines after the first page's frame lines
        raw = {
            k: v
            for k, v in _split_lines(desc, "\n", "scanimage.").items()
            if k.startswith(("SI.", "SI4.", "SI5."))
        }
        return StaticMetadata("SI4" if "scanimage.SI4." in desc else "SI5", RawMetadata(raw))
    raise FormatError(
        f"{path}: a TIFF file, but not written by ScanImage (no ScanImage header "
        "or description); open it with napari's default TIFF reader"
    )


def parse_frame_description(text: str) -> dict[str, str]:
    """Per-frame description → {key: raw value string} (``key = value`` lines or JSON).

    Only the frame lines: the static ``scanimage.SI…`` lines SI 4/5 repeat after them, and the
    ``state.`` header SI 3 repeats in every page, are not frame values.  SI 4/5.0 names
    (``Frame Tag``, ``Frame Number``, ``Frame Timestamp(s)``…) are also given under the later
    names (``frameNumbers``, ``frameTimestamps_sec``…).
    """
    text = text.strip("\0 \r\n")
    if text.startswith("{"):
        try:
            data = json.loads(text)
        except ValueError:
            return {}
        flat = data.get("frameData", data) if isinstance(data, dict) else {}
        return {k: json.dumps(v) if not isinstance(v, str) else v for k, v in flat.items()}
    if text.startswith("state."):  # SI 3.x: the static header again, no per-frame values
        return {}
    static = _LEGACY_STATIC.search(text)  # SI 4/5: static lines follow the frame lines
    if static is not None:
        text = text[: static.start()]
    sep = "\r" if "\n" not in text else "\n"
    out = _split_lines(text, sep, "scanimage.", spaces=True)
    for old, new in _FRAME_ALIASES:
        if old in out and new not in out:
            out[new] = out[old]
    return out


# SI 4 and SI 5.0 frame-line names → the names later versions use
_FRAME_ALIASES = (
    ("Frame Tag", "frameNumbers"),
    ("Frame Number", "frameNumbers"),
    ("Frame Timestamp(s)", "frameTimestamps_sec"),
    ("Acq Trigger Timestamp(s)", "acqTriggerTimestamps_sec"),
    ("Next File Marker Timestamp(s)", "nextFileMarkerTimestamps_sec"),
    ("DC Overvoltage", "dcOverVoltage"),
)
_LEGACY_STATIC = re.compile(r"^scanimage\.SI", re.M)


def _channels(meta: StaticMetadata) -> tuple[tuple[int, ...], tuple[str, ...]]:
    v = meta.values
    if meta.generation == "SI3":
        ids = [n for n in range(1, 9) if first_value(v, f"state.acq.savingChannel{n}") == 1]
        if not ids:
            ids = [n for n in range(1, 9) if first_value(v, f"state.acq.acquiringChannel{n}") == 1]
        return tuple(ids or [1]), tuple(f"Channel {n}" for n in ids or [1])
    ids = int_list(
        first_value(
            v,
            "SI.hChannels.channelSave",
            "SI.hChannels.channelsSave",
            "SI4.channelsSave",
            "SI5.channelsSave",
            "SI.hChannels.channelsActive",
            "SI4.channelsActive",
            "SI5.channelsActive",
        )
    )
    ids = ids or [1]
    names = first_value(v, "SI.hChannels.channelName", "SI4.channelsName")
    names = names if isinstance(names, list) else []
    out = []
    for n in ids:
        name = names[n - 1] if 0 < n <= len(names) and isinstance(names[n - 1], str) else ""
        out.append(name.strip() or f"Channel {n}")
    return tuple(ids), tuple(out)


def acquisition_info(meta: StaticMetadata, *, is_flim: bool = False) -> AcquisitionInfo:
    """Derive the acquisition layout and rates from static metadata (docs/formats.md §1.3)."""
    v = meta.values
    ids, names = _channels(meta)
    if meta.generation in ("SI3", "SI4", "SI5"):
        return legacy_info(meta, ids, names)
    si4 = meta.generation == "SI4"
    slices = first_value(
        v,
        "SI.hStackManager.actualNumSlices",
        "SI.hStackManager.numSlices",
        "SI.hFastZ.numSlices",
        "SI4.stackNumSlices",
        default=1,
    )
    enable = first_value(v, "SI.hStackManager.enable")
    if enable is False:
        slices = 1
    num_planes = max(int(number(slices) or 1), 1)
    average = max(
        int(
            number(
                first_value(v, "SI.hScan2D.logAverageFactor", "SI4.acqNumAveragedFrames", default=1)
            )
            or 1
        ),
        1,
    )
    fps = (
        number(first_value(v, "SI.hStackManager.framesPerSlice", "SI4.acqNumFrames", default=1))
        or 1
    )
    frames_per_slice = max(int(fps) // average, 1) if num_planes > 1 else 1
    flyback = 0
    if num_planes > 1:
        with_fb = number(first_value(v, "SI.hStackManager.numFramesPerVolumeWithFlyback"))
        without = number(first_value(v, "SI.hStackManager.numFramesPerVolume"))
        if with_fb is not None and without is not None:
            flyback = int(with_fb - without)
        elif first_value(v, "SI.hFastZ.discardFlybackFrames", "SI4.fastZDiscardFlybackFrames"):
            flyback = int(
                number(
                    first_value(
                        v,
                        "SI.hFastZ.numDiscardFlybackFrames",
                        "SI4.fastZNumDiscardFrames",
                        default=0,
                    )
                )
                or 0
            )
        flyback = max(flyback, 0)
    frame_rate = number(first_value(v, "SI.hRoiManager.scanFrameRate", "SI4.scanFrameRate"))
    if num_planes > 1:
        volume_rate = number(first_value(v, "SI.hRoiManager.scanVolumeRate"))
        if volume_rate is None and frame_rate:
            volume_rate = frame_rate / (num_planes * frames_per_slice * average + flyback)
    else:
        volume_rate = frame_rate / average if frame_rate else None
    lines = number(first_value(v, "SI.hRoiManager.linesPerFrame", "SI4.scanLinesPerFrame"))
    pixels = number(first_value(v, "SI.hRoiManager.pixelsPerLine", "SI4.scanPixelsPerLine"))
    lines_i, pixels_i = (int(lines) if lines else None), (int(pixels) if pixels else None)
    z_step = number(
        first_value(
            v,
            "SI.hStackManager.actualStackZStepSize",
            "SI.hStackManager.stackZStepSize",
            "SI4.stackZStepSize",
        )
    )
    zs = first_value(v, "SI.hStackManager.zs")
    if isinstance(zs, list) and all(number(z) is not None for z in zs):
        # zs repeats each slice's z once per frame when frames per slice > 1
        levels = np.unique(np.asarray(zs, dtype=float))
        if len(levels) > 1:
            z_step = float(np.median(np.diff(levels)))
    major = first_value(v, "SI.VERSION_MAJOR", default="")
    minor = first_value(v, "SI.VERSION_MINOR", default="")
    version = f"{major}.{minor}".strip(".") if major != "" else ("4" if si4 else "5")
    per_file = number(first_value(v, "SI.hScan2D.logFramesPerFile", "SI4.loggingFramesPerFile"))
    return AcquisitionInfo(
        version=str(version),
        generation=meta.generation,
        channel_ids=ids,
        channel_names=names,
        num_planes=num_planes,
        frames_per_slice=frames_per_slice,
        num_flyback=flyback,
        frame_rate=frame_rate,
        volume_rate=volume_rate,
        pixel_size_um=fov_pixel_size(v, lines_i, pixels_i),
        z_step_um=abs(z_step) if z_step else None,
        bidirectional=bool(
            first_value(v, "SI.hScan2D.bidirectional", "SI4.bidirectionalScan", default=False)
        ),
        mroi=bool(first_value(v, "SI.hRoiManager.mroiEnable", default=False)),
        is_flim=is_flim or "SI.hScan2D.hAcq.Tau_bins" in v,
        log_average_factor=average,
        frames_per_file=int(per_file) if per_file else None,
        stack_mode=(
            str(first_value(v, "SI.hStackManager.stackMode", default="fast"))
            if num_planes > 1
            else None
        ),  # planar: no stack, whatever the key
        lines_per_frame=lines_i,
        pixels_per_line=pixels_i,
    )
