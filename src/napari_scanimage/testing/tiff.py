"""Write synthetic ScanImage 2016+ BigTIFF datasets with known pixel content
(docs/formats.md §1.1–1.5).

Layout: BigTIFF header, ScanImage block at 16 (magic, version 4, static text, ROI JSON), then
per page its IFD, its NUL-terminated ImageDescription and its uncompressed strip.  Pages are
built in blocks of fixed-size numpy records, so large files stream at about disk speed.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import re
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, BinaryIO, TypeVar

import numpy as np
import numpy.typing as npt

__all__ = ["SyntheticDataset", "SyntheticLayout", "page_content", "roi_group_json",
           "scanimage_static_text", "write_scanimage_tiff"]  # fmt: skip

SCANIMAGE_MAGIC = 117637889
TIFF_FORMAT_VERSION = 4
EPOCH = "[2022 5 3 10 11 12.345]"
_BLOCK_BYTES = 8 << 20  # bytes of records generated per write
_DESC_TEMPLATE = (
    "frameNumbers = {n}\nacquisitionNumbers = 1\nframeNumberAcquisition = {n}\n"
    "frameTimestamps_sec = {t:.6f}\nacqTriggerTimestamps_sec = \n"
    "nextFileMarkerTimestamps_sec = \nendOfAcquisition = 0\nendOfAcquisitionMode = 0\n"
    "dcOverVoltage = 0\nepoch = " + EPOCH + "\nauxTrigger0 = []\nauxTrigger1 = []\n"
    "auxTrigger2 = []\nauxTrigger3 = []\nI2CData = {{}}"
)
# (tag, type) of every IFD entry, sorted by tag; types: 2 ASCII, 3 SHORT, 4 LONG, 16 LONG8
_TAGS = ((256, 4), (257, 4), (258, 3), (259, 3), (262, 3), (270, 2), (273, 16), (277, 3),
         (278, 4), (279, 16), (284, 3), (305, 2), (315, 2), (339, 3))  # fmt: skip
_I270, _I273 = 5, 6  # entries patched per page
# page numbers: one, or an array of them (vectorised)
_Index = TypeVar("_Index", int, "npt.NDArray[np.int64]")
_ENTRY = np.dtype([("tag", "<u2"), ("type", "<u2"), ("count", "<u8"), ("value", "<u8")])


class PageCounts:
    """Page arithmetic shared by the synthetic layouts (fields ``channels``,
    ``channel_names``, ``num_planes``, ``frames_per_slice``, ``num_flyback``).
    """

    # (declared here for the properties; the subclasses define them as dataclass fields)
    channels: tuple[int, ...]
    channel_names: tuple[str, ...] | None
    num_planes: int
    frames_per_slice: int
    num_flyback: int

    @property
    def num_channels(self) -> int:
        """Saved channels C."""
        return len(self.channels)

    @property
    def names(self) -> tuple[str, ...]:
        """Names of the saved channels."""
        return self.channel_names or tuple(f"Channel {c}" for c in self.channels)

    @property
    def frames_per_volume(self) -> int:
        """Frames per volume including flyback, Z*F + B."""
        return self.num_planes * self.frames_per_slice + self.num_flyback

    @property
    def pages_per_volume(self) -> int:
        """C * (Z*F + B)."""
        return self.num_channels * self.frames_per_volume


@dataclass(frozen=True)
class SyntheticLayout(PageCounts):
    """Acquisition layout of a synthetic ScanImage dataset.

    Attributes
    ----------
    channels, channel_names : tuple of int, tuple of str or None
        Saved hardware channel ids (1-based) and their names (default ``'Channel <id>'``).
    num_planes, frames_per_slice, num_flyback, num_volumes : int
        Z (volumetric iff > 1), saved frames per slice F (use 1 for planar data), flyback
        frames B per volume (written, with all channels) and complete volumes T.
    log_average_factor : int
        ``SI.hScan2D.logAverageFactor``; header ``framesPerSlice`` = F * this factor.
    extra_pages : int
        Pages of an aborted extra volume appended at the end (< ``pages_per_volume``).
    height, width, dtype : int, int, str
        Page size and ``'int16'`` or ``'uint16'`` (``SI.hScan2D.channelsDataType``).
    frames_per_file : int or None
        Split every this many frames (C pages each), like ``logFramesPerFile``; None: 1 file.
    stale_num_slices : int or None
        Value of ``SI.hStackManager.numSlices`` when it should differ from Z.
    frame_rate, bidirectional, z_step_um, fov_um : float, bool, float, float
        Frame rate (Hz, also sets ``frameTimestamps_sec``), bidirectional flag, slice spacing
        (µm) and edge of the square field of view (µm, corners at ±fov/2).
    """

    channels: tuple[int, ...] = (1,)
    channel_names: tuple[str, ...] | None = None
    num_planes: int = 1
    frames_per_slice: int = 1
    log_average_factor: int = 1
    num_flyback: int = 0
    num_volumes: int = 3
    extra_pages: int = 0
    height: int = 32
    width: int = 48
    dtype: str = "int16"
    frames_per_file: int | None = None
    stale_num_slices: int | None = None
    frame_rate: float = 30.0
    bidirectional: bool = False
    z_step_um: float = 5.0
    fov_um: float = 200.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "channels", tuple(int(c) for c in self.channels))
        if self.channel_names is not None:
            object.__setattr__(self, "channel_names", tuple(self.channel_names))
        ids = self.channels
        positive = ("num_planes", "frames_per_slice", "log_average_factor", "height", "width")
        checks = [
            (bool(ids) and min(ids) >= 1 and len(set(ids)) == len(ids), "distinct channels >= 1"),
            (self.channel_names is None or len(self.channel_names) == len(ids),
             "one channel name per saved channel"),
            (all(getattr(self, k) >= 1 for k in positive), f"{', '.join(positive)} >= 1"),
            (self.num_flyback >= 0 and self.num_volumes >= 0, "num_flyback, num_volumes >= 0"),
            (not (self.num_flyback and self.num_planes == 1), "flyback needs num_planes > 1"),
            (0 <= self.extra_pages < self.pages_per_volume, "0 <= extra_pages < pages_per_volume"),
            (self.total_pages >= 1, "at least one page"),
            (self.dtype in ("int16", "uint16"), "dtype 'int16' or 'uint16'"),
            (self.frames_per_file is None or self.frames_per_file >= 1, "frames_per_file >= 1"),
            (self.frame_rate > 0, "frame_rate > 0"),
        ]  # fmt: skip
        for ok, need in checks:
            if not ok:
                raise ValueError(f"invalid SyntheticLayout {self!r}: need {need}")

    @property
    def total_pages(self) -> int:
        """All pages written, including the aborted extra volume."""
        return self.num_volumes * self.pages_per_volume + self.extra_pages

    @property
    def pages_per_file(self) -> int | None:
        """Pages per file of a split series, None for a single file."""
        fpf = self.frames_per_file
        return None if fpf is None else fpf * self.num_channels

    @property
    def page_nbytes(self) -> int:
        """Bytes of one page's pixel strip."""
        return self.height * self.width * np.dtype(self.dtype).itemsize

    def page_index(self, t: _Index, z: _Index, f: _Index, c: int) -> _Index:
        """Global raw page index of volume t, slice z, frame f, channel c (docs/formats.md §1.4)."""
        return t * self.pages_per_volume + (z * self.frames_per_slice + f) * self.num_channels + c


def _content_into(out: np.ndarray, g0: int, height: int, width: int) -> None:
    """Write the content of pages ``g0 ..`` into the uint16 (n, H, W) array ``out``."""
    y = np.arange(height, dtype=np.uint64)[:, None]
    base = (y * 131 + np.arange(width, dtype=np.uint64)).astype(np.uint16)
    g = np.arange(g0, g0 + out.shape[0], dtype=np.uint64)[:, None, None]
    off = ((g * 7919 + (g >> 16) * y) & 0xFFFF).astype(np.uint16)
    np.add(base, off, out=out)


def page_content(g: int, height: int, width: int, dtype: str | np.dtype = "int16") -> np.ndarray:
    """Ground-truth pixels of global raw page g.

    ``v = (g*7919 + (g // 65536)*y + y*131 + x) mod 65536`` as uint16, reinterpreted as
    int16 (two's complement) for signed data.  Pages differ for any g < 2**32 (height >= 2;
    for height 1, g < 65536); pixels of a row are distinct.

    Parameters
    ----------
    g, height, width : int
        Global raw page index (over all files) and page size.
    dtype : str or numpy.dtype
        ``int16`` or ``uint16``.

    Returns
    -------
    numpy.ndarray
        (height, width) array of ``dtype``.
    """
    out = np.empty((1, height, width), np.uint16)
    _content_into(out, int(g), height, width)
    frame: npt.NDArray[Any] = out[0].view(np.dtype(dtype))
    return frame


def _fmt(v: object) -> str:
    """Format a bool, float or int in MATLAB syntax (floats like ``num2str``)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    return f"{v:.6g}" if isinstance(v, float) else str(v)


def _row(values: list[float] | tuple[int, ...], sep: str = " ") -> str:
    """MATLAB scalar or ``[a b c]`` row (``sep=';'``: column) vector."""
    return _fmt(values[0]) if len(values) == 1 else "[" + sep.join(map(_fmt, values)) + "]"


def _read_header(header: str | os.PathLike[str]) -> str:
    if isinstance(header, str) and ("\n" in header or header.lstrip().startswith("SI.")):
        return header
    return pathlib.Path(header).read_text(encoding="utf-8", errors="replace")


def _layout_values(lay: SyntheticLayout, old: dict[str, str]) -> dict[str, str]:
    """Static-header values that describe layout ``lay``, keyed by full SI key."""
    z, f, b, ids = lay.num_planes, lay.frames_per_slice, lay.num_flyback, lay.channels
    names = re.findall(r"'((?:[^']|'')*)'", old.get("SI.hChannels.channelName", ""))
    names += [f"Channel {i}" for i in range(len(names) + 1, max(8, max(ids)) + 1)]
    for cid, name in zip(ids, lay.names, strict=True):
        names[cid - 1] = name.replace("'", "''")
    save = _row(ids)
    zrel = [float(i * lay.z_step_um) for i in range(z) for _ in range(f)] if z > 1 else [0.0]
    a, fpf, avg, rate = lay.fov_um / 2, lay.frames_per_file, lay.log_average_factor, lay.frame_rate
    v = {
        "SI.hChannels.channelSave": save,
        "SI.hChannels.channelsActive": save,
        "SI.hChannels.channelName": "{" + " ".join(f"'{n}'" for n in names) + "}",
        "SI.hStackManager.enable": _fmt(z > 1),
        "SI.hStackManager.actualNumSlices": str(z),
        "SI.hStackManager.numSlices": str(lay.stale_num_slices or z),
        "SI.hStackManager.framesPerSlice": str(f * avg if z > 1 else lay.num_volumes * f * avg),
        "SI.hStackManager.numFramesPerVolume": str(z * f),
        "SI.hStackManager.numFramesPerVolumeWithFlyback": str(z * f + b),
        "SI.hStackManager.numVolumes": str(lay.num_volumes),
        "SI.hStackManager.actualNumVolumes": str(lay.num_volumes),
        "SI.hStackManager.stackZStepSize": _fmt(float(lay.z_step_um)),
        "SI.hStackManager.actualStackZStepSize": _fmt(float(lay.z_step_um)) if z > 1 else "[]",
        "SI.hStackManager.zs": _row(zrel),
        "SI.hFastZ.enable": _fmt(z > 1),
        "SI.hFastZ.discardFlybackFrames": _fmt(b > 0),
        "SI.hFastZ.numDiscardFlybackFrames": str(b),
        "SI.hScan2D.logAverageFactor": str(avg),
        "SI.hScan2D.logFramesPerFile": "Inf" if fpf is None else str(fpf),
        "SI.hScan2D.bidirectional": _fmt(bool(lay.bidirectional)),
        "SI.hScan2D.channelsDataType": f"'{lay.dtype}'",
        "SI.hRoiManager.linesPerFrame": str(lay.height),
        "SI.hRoiManager.pixelsPerLine": str(lay.width),
        "SI.hRoiManager.scanFrameRate": _fmt(float(rate)),
        "SI.hRoiManager.scanFramePeriod": _fmt(1.0 / rate),
        "SI.hRoiManager.scanVolumeRate": _fmt(rate / (z * f + b)),
        "SI.hRoiManager.imagingFovUm": f"[{-a:g} {-a:g};{a:g} {-a:g};{a:g} {a:g};{-a:g} {a:g}]",
        "SI.hRoiManager.mroiEnable": "false",
    }
    # rewritten only when the given header has them (real headers: column vectors)
    for key in ("SI.hStackManager.zsRelative", "SI.hStackManager.zsAllActuators"):
        if key in old:
            v[key] = _row(zrel, ";")
    return v


def scanimage_static_text(
    layout: SyntheticLayout, header: str | os.PathLike[str] | None = None
) -> str:
    r"""Static ``SI.x = value`` header text (``\n``-separated lines, final ``\n``, no NUL).

    Parameters
    ----------
    layout : SyntheticLayout
        The layout the layout keys (docs/formats.md §1.3) are rewritten to.
    header : str or os.PathLike, optional
        Path to, or text of, a real ScanImage static header.  All its lines are kept, in
        order; layout keys are rewritten in place and missing ones inserted at their sorted
        position.  Without it a minimal, alphabetically sorted header is generated.

    Returns
    -------
    str
        The header text.
    """
    if header is None:
        base = {"SI.VERSION_MAJOR": "2022", "SI.VERSION_MINOR": "1", "SI.acqState": "'grab'",
                "SI.TIFF_FORMAT_VERSION": str(TIFF_FORMAT_VERSION), "SI.objectiveResolution": "15",
                "SI.hStackManager.stackMode": "'fast'"}  # fmt: skip
        base.update(_layout_values(layout, {}))
        return "".join(f"{k} = {base[k]}\n" for k in sorted(base))
    lines = [ln.rstrip("\r") for ln in _read_header(header).strip("\x00\r\n").split("\n")]
    keys = [ln.split(" = ", 1)[0].strip() if " = " in ln else None for ln in lines]
    old = {k: ln.split(" = ", 1)[1] for k, ln in zip(keys, lines, strict=True) if k}
    for key, value in _layout_values(layout, old).items():
        if key in old:
            lines[keys.index(key)] = f"{key} = {value}"
            continue
        pos = next((i for i, k in enumerate(keys) if k is not None and k > key), len(lines))
        lines.insert(pos, f"{key} = {value}")
        keys.insert(pos, key)
    return "\n".join(lines) + "\n"


def roi_group_json(layout: SyntheticLayout, objective_resolution: float = 15.0) -> str:
    """Minimal ``{"RoiGroups": ...}`` JSON with one default imaging ROI / scanfield."""
    deg = layout.fov_um / objective_resolution
    scanfield = {"ver": 1, "classname": "scanimage.mroi.scanfield.fields.RotatedRectangle",
                 "centerXY": [0, 0], "sizeXY": [deg, deg],
                 "pixelResolutionXY": [layout.width, layout.height]}  # fmt: skip
    roi = {"ver": 1, "classname": "scanimage.mroi.Roi", "name": "Default Imaging Roi",
           "zs": 0, "discretePlaneMode": 0, "scanfields": scanfield}  # fmt: skip
    group = {"ver": 1, "classname": "scanimage.mroi.RoiGroup",
             "name": "Default Imaging ROI Group", "rois": roi}  # fmt: skip
    doc = {"RoiGroups": {"imagingRoiGroup": group, "photostimRoiGroups": None,
                         "integrationRoiGroup": None}}  # fmt: skip
    return json.dumps(doc, indent=1)


def _frame_description(frame: int, frame_rate: float) -> str:
    """ImageDescription of 0-based frame ``frame`` (shared by its channel pages)."""
    return _DESC_TEMPLATE.format(n=frame + 1, t=frame / frame_rate)


@dataclass
class SyntheticDataset:
    """Files written by :func:`write_scanimage_tiff` and their ground truth.

    Attributes
    ----------
    paths, layout, total_pages : list of pathlib.Path, SyntheticLayout, int
        Files written (in order), the layout and the raw pages over all files.
    content : callable or None
        Custom page-content function, None for :func:`page_content`.
    static_text : str
        Static header text written (without the trailing NUL).
    """

    paths: list[pathlib.Path]
    layout: SyntheticLayout
    total_pages: int
    content: Callable[[int], np.ndarray] | None = None
    static_text: str = ""

    def page(self, g: int) -> np.ndarray:
        """Ground-truth (Y, X) pixels of global raw page g (recomputed)."""
        if not 0 <= g < self.total_pages:
            raise IndexError(f"page {g} out of range [0, {self.total_pages})")
        lay = self.layout
        if self.content is not None:
            return np.asarray(self.content(g)).astype(lay.dtype, copy=False)
        return page_content(g, lay.height, lay.width, lay.dtype)

    def page_index(self, t: int, z: int, f: int, c: int) -> int:
        """Global raw page index of volume t, slice z, frame f, channel c."""
        return self.layout.page_index(t, z, f, c)

    def description(self, g: int) -> str:
        """ImageDescription text of global raw page g (without NUL)."""
        return _frame_description(g // self.layout.num_channels, self.layout.frame_rate)


def _record_dtype(desc_bytes: int, height: int, width: int) -> np.dtype:
    """Packed record: IFD, description area and uint16 pixel strip of one page."""
    return np.dtype([("n", "<u8"), ("e", _ENTRY, (len(_TAGS),)), ("next", "<u8"),
                     ("desc", "u1", (desc_bytes,)), ("pix", "<u2", (height, width))])  # fmt: skip


def write_pages(fh: BinaryIO, lay: SyntheticLayout, g_start: int, g_stop: int, static: bytes,
                roi: bytes, content: Callable[[int], np.ndarray] | None) -> None:  # fmt: skip
    """Write pages ``g_start .. g_stop-1`` as one complete ScanImage BigTIFF to ``fh``."""
    n_static, n_roi = len(static), len(roi)
    pos = 32 + n_static + n_roi + ((n_static + n_roi) & 1)  # IFDs on word boundaries
    fh.write(struct.pack("<2sHHHQIIII", b"II", 43, 8, 0, pos, SCANIMAGE_MAGIC,
                         TIFF_FORMAT_VERSION, n_static, n_roi))  # fmt: skip
    fh.write(static + roi + b"\x00" * (pos - 32 - n_static - n_roi))
    values = {256: lay.width, 257: lay.height, 258: 16, 259: 1, 262: 1, 270: 0, 273: 0, 277: 1,
              278: lay.height, 279: lay.page_nbytes, 284: 1, 305: 32, 315: 32 + n_static,
              339: 2 if lay.dtype == "int16" else 1}  # fmt: skip
    counts = {305: n_static, 315: n_roi}
    entries = np.array([(t, typ, counts.get(t, 1), values[t]) for t, typ in _TAGS], _ENTRY)
    C, H, W = lay.num_channels, lay.height, lay.width
    per_page = max(1, _BLOCK_BYTES // (lay.page_nbytes + 512))
    for g in range(g_start, g_stop, per_page):
        gb = min(g_stop, g + per_page)
        k0, k1 = g // C, (gb - 1) // C + 1
        texts = [_frame_description(k, lay.frame_rate).encode("ascii") for k in range(k0, k1)]
        lens = np.fromiter(map(len, texts), np.int64, k1 - k0)
        page_frame = np.arange(g, gb) // C - k0
        page_len = lens[page_frame]
        cuts = [0, *(np.flatnonzero(np.diff(page_len)) + 1).tolist(), gb - g]
        for a, b in zip(cuts[:-1], cuts[1:], strict=False):  # runs of equal text length
            n = b - a
            n_desc = int(page_len[a]) + 1  # with NUL
            rec = np.zeros(n, _record_dtype(n_desc + (n_desc & 1), H, W))
            size = rec.dtype.itemsize
            ifd_pos = pos + size * np.arange(n, dtype=np.uint64)
            rec["n"] = len(_TAGS)
            rec["e"] = entries
            rec["e"]["count"][:, _I270] = n_desc
            rec["e"]["value"][:, _I270] = ifd_pos + 16 + 20 * len(_TAGS)
            rec["e"]["value"][:, _I273] = ifd_pos + (size - lay.page_nbytes)
            rec["next"] = ifd_pos + size
            if g + b == g_stop:
                rec["next"][-1] = 0
            fa = int(page_frame[a])
            run_texts = texts[fa : int(page_frame[b - 1]) + 1]
            mat = np.frombuffer(b"".join(run_texts), np.uint8).reshape(len(run_texts), -1)
            rec["desc"][:, : n_desc - 1] = mat[page_frame[a:b] - fa]
            if content is None:
                _content_into(rec["pix"], g + a, H, W)
            else:
                for i in range(n):
                    arr = np.asarray(content(g + a + i))
                    if arr.shape != (H, W):
                        raise ValueError(f"content({g + a + i}) has shape {arr.shape}")
                    rec["pix"][i] = arr.astype(lay.dtype, copy=False).view(np.uint16)
            fh.write(rec.data)
            pos += n * size


def write_scanimage_tiff(
    path: str | os.PathLike[str],
    layout: SyntheticLayout | None = None,
    *,
    header: str | os.PathLike[str] | None = None,
    content: Callable[[int], np.ndarray] | None = None,
    **layout_kwargs: Any,
) -> SyntheticDataset:
    """Write a synthetic ScanImage 2016+ BigTIFF dataset (one file or a split series).

    Parameters
    ----------
    path : str or os.PathLike
        Target file of a single-file dataset; for a split series (``frames_per_file``) the
        base: files ``<stem>_00001_<file:05d><suffix or .tif>`` in ``path``'s folder.
    layout : SyntheticLayout, optional
        Acquisition layout; ``**layout_kwargs`` (its fields) replace fields or build one.
    header : str or os.PathLike, optional
        Path to, or text of, a real static header (see :func:`scanimage_static_text`).
    content : callable, optional
        ``content(g) -> (height, width) array`` of global raw page g, used for writing and
        by :meth:`SyntheticDataset.page`; default :func:`page_content`.

    Returns
    -------
    SyntheticDataset
        The paths written and the ground truth.
    """
    if layout is None:
        layout = SyntheticLayout(**layout_kwargs)
    elif layout_kwargs:
        layout = dataclasses.replace(layout, **layout_kwargs)
    text = scanimage_static_text(layout, header)
    match = re.search(r"^SI\.objectiveResolution = ([0-9.eE+-]+)\s*$", text, re.M)
    objres = float(match.group(1)) if match else 15.0
    static = text.encode("ascii", errors="replace") + b"\x00"
    roi = roi_group_json(layout, objres).encode("ascii") + b"\x00"
    path, ppf, total = pathlib.Path(path), layout.pages_per_file, layout.total_pages
    chunks = [(path, 0, total)]
    if ppf is not None:
        name = f"{path.stem}_00001_{{:05d}}{path.suffix or '.tif'}"
        chunks = [(path.with_name(name.format(i + 1)), g, min(total, g + ppf))
                  for i, g in enumerate(range(0, total, ppf))]  # fmt: skip
    for file_path, ga, gb in chunks:
        with open(file_path, "wb") as fh:
            write_pages(fh, layout, ga, gb, static, roi, content)
    paths = [c[0] for c in chunks]
    return SyntheticDataset(paths, layout, total, content=content, static_text=text)
