"""Per-frame values of a recording: frame descriptions, frame indices and timestamps.

ScanImage writes a description with every frame (see ``docs/formats.md``): its frame number
and the clocks' readings.  :class:`TimeMethods` reads them lazily, frame by frame, with a cache.
"""

from __future__ import annotations

import re
import warnings
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from ..errors import FormatError, SelectionError, TimestampWarning
from ..io.scanimage import parse_frame_description
from .layout import Selection, SliceSample

if TYPE_CHECKING:
    from pathlib import Path

    from ..io.scanimage import AcquisitionInfo
    from ..io.siff import FlimSettings
    from .layout import Layout
    from .reading import ReaderSpec

__all__ = ["CLOCKS", "TimeMethods"]

_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
_INTEGER = re.compile(r"[-+]?\d+")
# frame-description key of each clock (epoch clocks: integer ns, `.siff` files)
CLOCKS = {
    "experiment": "frameTimestamps_sec",
    "epoch_laser": "epoch",
    "epoch_system": "mostRecentSystemTimestamp_epoch",
}


class TimeMethods:
    """Frame descriptions, frame indices and timestamps of a :class:`Dataset`."""

    # what the mixin uses of the Dataset it is part of
    _frame_values: dict[tuple[int, str], str | None]
    paths: tuple[Path, ...]
    spec: ReaderSpec
    layout: Layout
    info: AcquisitionInfo

    if TYPE_CHECKING:

        def _require_siff(self, what: str) -> FlimSettings: ...

    def frame_description(self, page: int) -> dict[str, str]:
        """Per-frame description of global raw ``page`` as {key: raw value text}."""
        return parse_frame_description(self.spec.description(int(page)))

    def _frame_value(self, page: int, key: str) -> str | None:
        cache_key = (page, key)
        if cache_key not in self._frame_values:
            self._frame_values[cache_key] = self.frame_description(page).get(key)
        return self._frame_values[cache_key]

    def _frame_number(self, page: int) -> float | None:
        value = self._frame_value(page, "frameNumbers")
        m = _NUMBER.search(value or "")
        return float(m.group()) if m else None

    def frame_indices(
        self, plane: int = -1, *, slice_sample: SliceSample | None = None
    ) -> npt.NDArray[np.int64]:
        """Global raw page index (channel 0) of each sample of ``plane``, int64.

        Shape (T,) when there is one frame per slice or ``slice_sample`` is an int or "mean"
        (first sample's page); (T, F) for None/"axis" with F > 1; (T·F,) for "interleave".
        """
        F = self.layout.frames_per_slice
        mode = ("axis" if F > 1 else 0) if slice_sample is None else slice_sample
        sel = Selection.make(self.layout, 0, plane, mode)
        pages = sel.pages(self.layout, 0, sel.num_times(self.layout))[:, 0, :]
        if mode == "axis":
            return pages
        return pages[:, 0]

    def timestamps(
        self, plane: int = -1, *, slice_sample: SliceSample | None = None, clock: str = "experiment"
    ) -> npt.NDArray[Any]:
        """Acquisition time of each sample.

        Same shape rules as :meth:`frame_indices`; "mean" gives the mean time of the samples.

        Parameters
        ----------
        clock : {"experiment", "epoch_laser", "epoch_system"}
            ``"experiment"``: seconds since the acquisition started (``frameTimestamps_sec``),
            float64; without per-frame timestamps, frame number ÷ frame rate with a
            :class:`TimestampWarning`.  `.siff` files also have ``"epoch_laser"`` (``epoch``:
            ns since the Unix epoch counted from laser pulses; low jitter, slow drift) and
            ``"epoch_system"`` (``mostRecentSystemTimestamp_epoch``: the system clock, updated
            about once a second), both int64 nanoseconds.
        """
        if clock not in CLOCKS:
            raise SelectionError(f"clock {clock!r} is not one of {', '.join(map(repr, CLOCKS))}")
        if clock != "experiment":
            self._require_siff(f"{clock} timestamps")
        mode = slice_sample
        if mode == "mean":
            axis = self.timestamps(plane, slice_sample="axis", clock=clock).reshape(
                self.layout.num_volumes, -1
            )
            if clock == "experiment":
                means: npt.NDArray[np.float64] = axis.mean(axis=1)
                return means
            offsets = (axis - axis[:, :1]).mean(axis=1).round().astype(np.int64)
            epochs: npt.NDArray[np.int64] = axis[:, 0] + offsets
            return epochs
        pages = self.frame_indices(plane, slice_sample=mode)
        flat = pages.ravel()
        key = CLOCKS[clock]
        pattern, kind = (_NUMBER, np.float64) if clock == "experiment" else (_INTEGER, np.int64)
        values = np.empty(flat.shape, dtype=kind)
        missing = False
        for i, page in enumerate(flat.tolist()):
            m = pattern.search(self._frame_value(page, key) or "")
            if m is None:
                missing = True
                break
            values[i] = kind(m.group()) if kind is np.float64 else int(m.group())
        if missing and clock != "experiment":
            raise FormatError(
                f"{self.paths[0]}: frame descriptions have no {key} values; "
                f"the {clock} clock is not available (use clock='experiment')"
            )
        if missing:
            rate = self.info.frame_rate
            if not rate:
                raise FormatError(
                    f"{self.paths[0]}: no per-frame timestamps and no frame rate "
                    "in the metadata; times cannot be derived"
                )
            avg = self.info.log_average_factor  # each saved frame spans `avg` raw frames
            warnings.warn(
                f"{self.paths[0].name}: no frameTimestamps_sec in the frame "
                f"descriptions; using frame number / {rate:g} Hz"
                + (f" (× {avg} averaged frames)" if avg > 1 else ""),
                TimestampWarning,
                stacklevel=2,
            )
            values = (flat // self.layout.num_channels) * avg / rate
        return values.reshape(pages.shape)
