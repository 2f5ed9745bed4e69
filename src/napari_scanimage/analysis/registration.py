"""Rigid motion registration of ScanImage recordings, and its result.

Conventions
-----------
``shifts[t, z] = (dy, dx)`` is the displacement, in pixels, of frame (t, z)'s content relative to
the reference: content moved down / right is positive.  Applying the registration moves it
back: ``registered[y, x] = frame[y + dy, x + dx]`` (pixels brought in from outside the frame are
0, or NaN for float output where stated).  Time index t is the recording's time row with one
sample per slice (volumes); with several frames per slice every sample of a volume gets the
volume's shift.

The result is saved as one ``.npz`` file (arrays only, read with ``allow_pickle=False``) holding
a format tag and version, written atomically.
"""

from __future__ import annotations

import io
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .._atomic import atomic_write
from ..errors import FormatError, SelectionError

__all__ = ["FORMAT", "VERSION", "Registration"]

FORMAT = "napari-scanimage-registration"
VERSION = 1


@dataclass(frozen=True, eq=False)
class Registration:
    """Result of :func:`register`.

    Attributes
    ----------
    shifts : float64 (T, Z, 2)
        (dy, dx) of each time row's frame in each plane, in pixels (see module docstring).
    correlation : float64 (T, Z)
        Peak of the normalised phase correlation with the reference (1 = identical up to the
        shift); low values flag frames that did not match.
    reference : float32 (Z, Y, X)
        The reference image of each plane.
    channel : str
        The channel the shifts were estimated on (they apply to every channel).
    bidi_phase : float
        Odd-line offset in pixels found (and corrected) for bidirectional scanning; 0 if none.
    settings : dict
        The parameters used (JSON-serialisable), for the record.
    source : str or None
        File the registration was computed on.
    frame_shape : (int, int)
    """

    shifts: np.ndarray
    correlation: np.ndarray
    reference: np.ndarray
    channel: str = ""
    bidi_phase: float = 0.0
    settings: dict = field(default_factory=dict)
    source: str | None = None

    def __post_init__(self):
        s = np.asarray(self.shifts, np.float64)
        if s.ndim != 3 or s.shape[2] != 2:
            raise SelectionError(f"shifts must be (T, Z, 2), got {s.shape}")
        c = np.asarray(self.correlation, np.float64)
        if c.shape != s.shape[:2]:
            raise SelectionError(f"correlation {c.shape} does not match shifts {s.shape}")
        r = np.asarray(self.reference, np.float32)
        if r.ndim != 3 or r.shape[0] != s.shape[1]:
            raise SelectionError(f"reference must be (Z, Y, X) with Z={s.shape[1]}, got "
                                 f"{r.shape}")
        object.__setattr__(self, "shifts", s)
        object.__setattr__(self, "correlation", c)
        object.__setattr__(self, "reference", r)

    @property
    def num_times(self) -> int:
        return self.shifts.shape[0]

    @property
    def num_planes(self) -> int:
        return self.shifts.shape[1]

    @property
    def frame_shape(self) -> tuple[int, int]:
        return tuple(int(s) for s in self.reference.shape[1:])

    def integer(self) -> Registration:
        """The same registration with shifts rounded to whole pixels (FLIM-safe for photons)."""
        return Registration(np.round(self.shifts), self.correlation, self.reference,
                            self.channel, self.bidi_phase, {**self.settings, "rounded": True},
                            self.source)

    def check_fits(self, num_times: int, num_planes: int, frame_shape) -> None:
        """Raise SelectionError unless this registration fits a recording of this layout."""
        if (self.num_times, self.num_planes, self.frame_shape) != (
                num_times, num_planes, tuple(frame_shape)):
            raise SelectionError(
                f"the registration is for {self.num_times} time points × {self.num_planes} "
                f"plane(s) of {self.frame_shape[0]}×{self.frame_shape[1]} pixels; this "
                f"recording has {num_times} × {num_planes} of {frame_shape[0]}×"
                f"{frame_shape[1]} — compute or load the registration of this recording")

    # -- files ------------------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> Path:
        """Write as ``.npz`` (arrays and a JSON header; no pickled objects), atomically."""
        header = {"format": FORMAT, "version": VERSION, "channel": self.channel,
                  "bidi_phase": float(self.bidi_phase), "settings": self.settings,
                  "source": self.source}
        buf = io.BytesIO()
        np.savez(buf, header=np.frombuffer(json.dumps(header).encode(), np.uint8),
                 shifts=self.shifts, correlation=self.correlation, reference=self.reference)
        return atomic_write(path, buf.getvalue())

    @classmethod
    def load(cls, path: str | os.PathLike) -> Registration:
        path = Path(path)
        try:
            with np.load(path, allow_pickle=False) as z:
                header = json.loads(bytes(z["header"]).decode())
                arrays = {k: z[k] for k in ("shifts", "correlation", "reference")}
        except (OSError, ValueError, KeyError, UnicodeDecodeError) as exc:
            raise FormatError(f"{path.name} is not a registration file ({exc})") from None
        if not isinstance(header, dict) or header.get("format") != FORMAT:
            raise FormatError(f"{path.name} is not a napari-scanimage registration file")
        version = header.get("version")
        if not isinstance(version, int) or not 1 <= version <= VERSION:
            raise FormatError(f"{path.name} is registration file version {version!r}; this "
                              f"napari-scanimage reads versions 1–{VERSION}: update it")
        return cls(arrays["shifts"], arrays["correlation"], arrays["reference"],
                   str(header.get("channel", "")), float(header.get("bidi_phase", 0.0)),
                   dict(header.get("settings") or {}), header.get("source"))
