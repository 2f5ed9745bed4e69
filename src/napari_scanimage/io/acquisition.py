"""What a ScanImage recording is: :class:`AcquisitionInfo`, and reading its values from header
keys whose names and types differ between ScanImage versions (see ``docs/formats.md``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["AcquisitionInfo", "first_value", "fov_pixel_size", "int_list", "number"]


@dataclass(frozen=True)
class AcquisitionInfo:
    """What a ScanImage recording is, from its static metadata (plus page facts when known).

    Attributes
    ----------
    channel_ids : tuple of int
        Saved hardware channels, 1-based, in page order.
    channel_names : tuple of str
    num_planes : int
        Slices per volume (``actualNumSlices`` over a stale ``numSlices``); 1 when planar.
    frames_per_slice : int
        Saved frames per slice (after ``logAverageFactor``); 1 when planar.
    num_flyback : int
        Flyback frames written after each volume's slices.
    frame_rate, volume_rate : float or None
        Hz.  ``volume_rate`` is the rate of time samples (volumes, or frames when planar).
    pixel_size_um : tuple (y, x) of float or None
    z_step_um : float or None
    stack_mode : {"fast", "slow"} or None
        How the planes of a volume were scanned (fast z: piezo or ETL; slow: stage steps);
        None for planar recordings, whatever a stale header key says.
    """

    version: str
    generation: str
    channel_ids: tuple[int, ...]
    channel_names: tuple[str, ...]
    num_planes: int
    frames_per_slice: int
    num_flyback: int
    frame_rate: float | None
    volume_rate: float | None
    pixel_size_um: tuple[float, float] | None
    z_step_um: float | None
    bidirectional: bool
    mroi: bool
    is_flim: bool
    log_average_factor: int = 1
    frames_per_file: int | None = None
    stack_mode: str | None = None
    lines_per_frame: int | None = None
    pixels_per_line: int | None = None
    # facts from the pages, filled in by the Dataset
    num_volumes: int | None = None
    frame_shape: tuple[int, int] | None = None
    dtype: np.dtype[Any] | None = None

    @property
    def num_channels(self) -> int:
        """Number of saved channels."""
        return len(self.channel_ids)

    @property
    def volumetric(self) -> bool:
        """True when a time sample is a volume of several planes."""
        return self.num_planes > 1


def first_value(values: Mapping[str, Any], *keys: str, default: Any = None) -> Any:
    """The value of the first of ``keys`` present with a value (not None or []) in ``values``;
    versions name one setting differently.
    """
    for key in keys:
        if key in values:
            value = values[key]
            if value is not None and value != []:
                return value
    return default


def int_list(value: Any) -> list[int]:
    """The finite numbers in a (nested) header value as ints; [] for anything else."""
    if value is None:
        return []
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return [int(value)] if math.isfinite(value) else []
    if isinstance(value, list):
        flat: list[int] = []
        for v in value:
            flat += int_list(v)
        return flat
    return []


def number(value: Any) -> float | None:
    """A finite number (or logical) header value as float, else None."""
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)) and math.isfinite(value):
        return float(value)
    return None


def fov_pixel_size(
    v: Mapping[str, Any], lines: int | None, pixels: int | None
) -> tuple[float, float] | None:
    """Pixel size (y, x) in µm from the imaging field of view corners, or None."""
    fov = first_value(v, "SI.hRoiManager.imagingFovUm")
    if not (isinstance(fov, list) and len(fov) >= 3 and lines and pixels):
        return None
    try:
        corners = np.asarray(fov, dtype=float).reshape(-1, 2)
    except (TypeError, ValueError):
        return None
    width = float(np.ptp(corners[:, 0]))
    height = float(np.ptp(corners[:, 1]))
    if width <= 0 or height <= 0:
        return None
    return (height / lines, width / pixels)
