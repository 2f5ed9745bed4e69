"""FLIM settings of a ScanImage-FLIM `.siff` recording, from its static metadata."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import FormatError

if TYPE_CHECKING:
    from .acquisition import AcquisitionInfo

__all__ = ["FlimSettings", "check_siff_frame", "flim_settings"]


@dataclass(frozen=True)
class FlimSettings:
    """Arrival-time bins of a `.siff` recording.

    Attributes
    ----------
    num_bins : int
        ``SI.hScan2D.hAcq.Tau_bins``: bins per laser period as configured.
    bin_width_ps : float or None
        Width of one bin: 5 ps · 2^binResolution unless overridden; None when unknown.
    laser_period_ps : float or None
        1 / laser rate (``SI.hScan2D.hAcq.countrates[0]``) when the file states it.
    bin_resolution : int or None
    """

    num_bins: int
    bin_width_ps: float | None
    laser_period_ps: float | None = None
    bin_resolution: int | None = None

    @property
    def bin_width_ns(self) -> float:
        """Width of one bin in ns.

        Raises
        ------
        FormatError
            When the bin width is unknown.
        """
        if self.bin_width_ps is None:
            raise FormatError(
                "the arrival-time bin width is unknown (no binResolution in the "
                "file); open it with open_dataset(..., bin_width_ps=...)"
            )
        return self.bin_width_ps / 1000.0

    @property
    def period_bins(self) -> float | None:
        """Laser period in bins, when both are known."""
        if self.laser_period_ps is None or self.bin_width_ps is None:
            return None
        return self.laser_period_ps / self.bin_width_ps


def _number(value: Any) -> float | None:
    if isinstance(value, (list, tuple)):
        value = value[0] if value else None
    if isinstance(value, np.ndarray):
        value = value.ravel()[0] if value.size else None
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


def flim_settings(
    values: Mapping[str, object], *, bin_width_ps: float | None = None, path: str = ""
) -> FlimSettings:
    """FLIM settings from static metadata values (``SI.hScan2D.hAcq.*``)."""
    bins = _number(values.get("SI.hScan2D.hAcq.Tau_bins"))
    if bins is None or bins < 1 or bins > 1 << 20:
        raise FormatError(
            f"{path}: no valid SI.hScan2D.hAcq.Tau_bins in the header "
            f"(found {values.get('SI.hScan2D.hAcq.Tau_bins')!r}); this is not "
            "a readable ScanImage-FLIM file"
        )
    res = _number(values.get("SI.hScan2D.hAcq.binResolution"))
    resolution = int(res) if res is not None and 0 <= res <= 24 else None
    if bin_width_ps is None and resolution is not None:
        bin_width_ps = 5.0 * 2**resolution
    if bin_width_ps is not None and not bin_width_ps > 0:
        raise ValueError(f"bin_width_ps must be positive, got {bin_width_ps!r}")
    rate = _number(values.get("SI.hScan2D.hAcq.countrates"))
    period = 1e12 / rate if rate and rate > 0 else None
    return FlimSettings(
        int(bins), None if bin_width_ps is None else float(bin_width_ps), period, resolution
    )


def check_siff_frame(info: AcquisitionInfo, frame_shape: tuple[int, int], path: str = "") -> None:
    """`.siff` frames are photon lists, so nothing on disk bounds their declared size: it must
    agree with the header's ``linesPerFrame`` × ``pixelsPerLine`` (when stated; multi-ROI pages
    stack several fields and are not checked).
    """
    lines, pixels = info.lines_per_frame, info.pixels_per_line
    if info.mroi or not lines or not pixels:
        return
    if tuple(int(n) for n in frame_shape) != (int(lines), int(pixels)):
        raise FormatError(
            f"{path}: .siff pages declare {frame_shape[0]}×{frame_shape[1]} "
            f"pixels but the header says {lines} lines of {pixels} pixels; "
            "the file is corrupt"
        )
