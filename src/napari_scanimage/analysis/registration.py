"""Rigid motion registration of ScanImage recordings (:func:`register`), and its result.

Conventions
-----------
``shifts[t, z] = (dy, dx)`` is the displacement, in pixels, of frame (t, z)'s content relative to
the reference: content moved down / right is positive.  Applying the registration moves it
back: ``registered[y, x] = frame[y + dy, x + dx]`` (pixels brought in from outside the frame are
0, or NaN for float output where stated).  Time index t is the recording's time row with one
sample per slice (volumes); with several frames per slice every sample of a volume gets the
volume's shift.

Piecewise-rigid registration (``piecewise=True``) adds, per (t, z), the residual shift of each
block of a grid of overlapping blocks after the rigid shift (:mod:`.piecewise`); the total
displacement ``d(y, x)`` at every pixel is the rigid shift plus the block residuals
interpolated by a cubic spline through the block centres (:meth:`Registration.displacement`),
and applying it moves content back: ``registered[y, x] = frame[y + dy(y, x), x + dx(y, x)]``.

The result is saved as one ``.npz`` file (arrays only, read with ``allow_pickle=False``) holding
a format tag and version, written atomically: version 1 for rigid results (readable by older
versions), version 2 when it holds block fields.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
from collections.abc import Callable, Generator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from .._atomic import atomic_write, check_header
from .._core.shifting import correct_bidi
from .._core.warping import block_field
from ..errors import FormatError, SelectionError
from ._phasecorr import Correlator, bidi_cross, bidi_peak, make_reference
from ._progress import drive
from .piecewise import BlockCorrelator, block_size_for, refine_reference

if TYPE_CHECKING:
    from .._core.dataset import Dataset
    from .._core.layout import SliceSample

__all__ = ["FORMAT", "VERSION", "Registration", "iter_register", "register"]

FORMAT = "napari-scanimage-registration"
VERSION = 2  # 2: block fields of piecewise registration
_BLOCK_ARRAYS = ("block_shifts", "block_centers", "block_correlation", "block_flags")
BLOCK_BYTES = 64 << 20  # frames read per block of the pass over the recording
SMOOTH_SIGMA = 1.15  # px: Gaussian the phase correlation is smoothed with (see _phasecorr)


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
    block_shifts : float64 (T, Z, NBY, NBX, 2) or None
        Piecewise registration: the residual (dy, dx) of each block after the rigid shift,
        same convention (0 where the block fell back to the rigid shift); None for rigid.
    block_centers : float64 (NBY, NBX, 2) or None
        (y, x) pixel position of each block's centre (a regular grid).
    block_correlation : float64 (T, Z, NBY, NBX) or None
        Peak of each block's own phase correlation with the reference block.
    block_flags : int8 (T, Z, NBY, NBX) or None
        0: the block's own peak; 1 / 2: borrowed from its 3 × 3 / 5 × 5 neighbourhood (low
        signal); 3: no clear peak, the rigid shift is used (QC).
    """

    shifts: npt.NDArray[np.float64]
    correlation: npt.NDArray[np.float64]
    reference: npt.NDArray[np.float32]
    channel: str = ""
    bidi_phase: float = 0.0
    settings: dict[str, Any] = field(default_factory=dict)
    source: str | None = None
    block_shifts: npt.NDArray[np.float64] | None = None
    block_centers: npt.NDArray[np.float64] | None = None
    block_correlation: npt.NDArray[np.float64] | None = None
    block_flags: npt.NDArray[np.int8] | None = None

    def __post_init__(self) -> None:
        s = np.asarray(self.shifts, np.float64)
        if s.ndim != 3 or s.shape[2] != 2:
            raise SelectionError(f"shifts must be (T, Z, 2), got {s.shape}")
        c = np.asarray(self.correlation, np.float64)
        if c.shape != s.shape[:2]:
            raise SelectionError(f"correlation {c.shape} does not match shifts {s.shape}")
        r = np.asarray(self.reference, np.float32)
        if r.ndim != 3 or r.shape[0] != s.shape[1]:
            raise SelectionError(f"reference must be (Z, Y, X) with Z={s.shape[1]}, got {r.shape}")
        object.__setattr__(self, "shifts", s)
        object.__setattr__(self, "correlation", c)
        object.__setattr__(self, "reference", r)
        if self.block_shifts is None:
            if any(getattr(self, k) is not None for k in _BLOCK_ARRAYS):
                raise SelectionError("block arrays given without block_shifts")
            return
        b = np.asarray(self.block_shifts, np.float64)
        if b.ndim != 5 or b.shape[:2] != s.shape[:2] or b.shape[4] != 2:
            raise SelectionError(
                f"block_shifts must be (T, Z, NBY, NBX, 2) with (T, Z) = {s.shape[:2]}, "
                f"got {b.shape}"
            )
        grid = b.shape[2:4]
        cen = np.asarray(self.block_centers, np.float64)
        if cen.shape != (*grid, 2):
            raise SelectionError(f"block_centers must be {(*grid, 2)}, got {cen.shape}")
        if not (
            np.all(cen[:, :, 0] == cen[:, :1, 0])
            and np.all(cen[:, :, 1] == cen[:1, :, 1])
            and np.all(np.diff(cen[:, 0, 0]) > 0)
            and np.all(np.diff(cen[0, :, 1]) > 0)
        ):
            raise SelectionError("block_centers must be a regular grid, increasing in y and x")
        corr = (
            np.full(b.shape[:4], np.nan)
            if self.block_correlation is None
            else np.asarray(self.block_correlation, np.float64)
        )
        flags = (
            np.zeros(b.shape[:4], np.int8)
            if self.block_flags is None
            else np.asarray(self.block_flags, np.int8)
        )
        if corr.shape != b.shape[:4] or flags.shape != b.shape[:4]:
            raise SelectionError(
                f"block_correlation and block_flags must be {b.shape[:4]}, got "
                f"{corr.shape} and {flags.shape}"
            )
        for name, value in zip(_BLOCK_ARRAYS, (b, cen, corr, flags), strict=True):
            object.__setattr__(self, name, value)

    @property
    def piecewise(self) -> bool:
        """True when the registration holds block fields (piecewise-rigid)."""
        return self.block_shifts is not None

    def displacement(self, t: int, z: int = 0) -> npt.NDArray[np.float64]:
        """Total content displacement (2, Y, X) float64 of time row ``t`` in plane ``z``:
        ``registered[y, x] = frame[y + d[0, y, x], x + d[1, y, x]]``; constant for rigid
        results, the rigid shift plus the interpolated block residuals for piecewise ones.
        """
        T, Z = self.shifts.shape[:2]
        if not (-T <= int(t) < T and -Z <= int(z) < Z):
            raise SelectionError(
                f"time row {t}, plane {z} does not exist; the registration has {T} time "
                f"row(s) and {Z} plane(s)"
            )
        Y, X = self.frame_shape
        rigid = self.shifts[int(t), int(z)]
        out = np.empty((2, Y, X))
        out[:] = rigid[:, None, None]
        if self.block_shifts is not None and self.block_centers is not None:
            out += block_field(
                self.block_shifts[int(t), int(z)], self.block_centers, (Y, X), np.float64
            )
        return out

    @property
    def num_times(self) -> int:
        """Time points (T)."""
        return int(self.shifts.shape[0])

    @property
    def num_planes(self) -> int:
        """Planes (Z)."""
        return int(self.shifts.shape[1])

    @property
    def frame_shape(self) -> tuple[int, int]:
        """(Y, X) of the frames (of the reference)."""
        return int(self.reference.shape[1]), int(self.reference.shape[2])

    def integer(self) -> Registration:
        """The same registration with rigid shifts rounded to whole pixels (FLIM-safe for
        photons).  Piecewise: block residuals are kept (photon paths round the total field at
        each photon's pixel anyway).
        """
        return dataclasses.replace(
            self, shifts=np.round(self.shifts), settings={**self.settings, "rounded": True}
        )

    def check_fits(self, num_times: int, num_planes: int, frame_shape: Sequence[int]) -> None:
        """Raise SelectionError unless this registration fits a recording of this layout."""
        if (self.num_times, self.num_planes, self.frame_shape) != (
            num_times,
            num_planes,
            tuple(frame_shape),
        ):
            raise SelectionError(
                f"the registration is for {self.num_times} time points × {self.num_planes} "
                f"plane(s) of {self.frame_shape[0]}×{self.frame_shape[1]} pixels; this "
                f"recording has {num_times} × {num_planes} of {frame_shape[0]}×"
                f"{frame_shape[1]} — compute or load the registration of this recording"
            )

    # -- files ------------------------------------------------------------------------------
    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write as ``.npz`` (arrays and a JSON header; no pickled objects), atomically."""
        header = {
            "format": FORMAT,
            "version": VERSION if self.piecewise else 1,
            "channel": self.channel,
            "bidi_phase": float(self.bidi_phase),
            "settings": self.settings,
            "source": self.source,
        }
        blocks = {k: getattr(self, k) for k in _BLOCK_ARRAYS} if self.piecewise else {}
        buf = io.BytesIO()
        np.savez(
            buf,
            header=np.frombuffer(json.dumps(header).encode(), np.uint8),
            shifts=self.shifts,
            correlation=self.correlation,
            reference=self.reference,
            **blocks,
        )
        return atomic_write(path, buf.getvalue())

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Registration:
        """Read a file written by :meth:`save`; FormatError if it is not one."""
        path = Path(path)
        try:
            with np.load(path, allow_pickle=False) as z:
                header = json.loads(bytes(z["header"]).decode())
                arrays = {k: z[k] for k in ("shifts", "correlation", "reference")}
                blocks = {k: z[k] for k in _BLOCK_ARRAYS if k in z.files}
        except (OSError, ValueError, KeyError, UnicodeDecodeError) as exc:
            raise FormatError(f"{path.name} is not a registration file ({exc})") from None
        check_header(header, FORMAT, VERSION, path.name, "registration file")
        if blocks and "block_shifts" not in blocks:
            raise FormatError(f"{path.name}: block arrays without block_shifts; not readable")
        try:
            return cls(
                arrays["shifts"],
                arrays["correlation"],
                arrays["reference"],
                str(header.get("channel", "")),
                float(header.get("bidi_phase", 0.0)),
                dict(header.get("settings") or {}),
                header.get("source"),
                **blocks,
            )
        except SelectionError as exc:  # arrays of the wrong shapes
            raise FormatError(f"{path.name}: {exc}") from None


# -- estimation ---------------------------------------------------------------------------
def _channel_of(dataset: Dataset, channel: int | str) -> int:
    names = dataset.info.channel_names
    c = dataset.channel_index(channel)
    if not 0 <= c < len(names):
        raise SelectionError(
            f"channel {channel!r} does not exist; the recording has "
            f"{len(names)} channel(s): {', '.join(map(repr, names))} — give an "
            f"index 0–{len(names) - 1} or a name"
        )
    return c


def _planes_of(planes: Sequence[int] | None, num_planes: int) -> list[int]:
    if planes is None:
        return list(range(num_planes))
    try:
        wanted = [int(p) for p in planes]
    except (TypeError, ValueError):
        raise SelectionError(f"planes must be a list of plane indices, got {planes!r}") from None
    out = set()
    for p in wanted:
        if not -num_planes <= p < num_planes:
            raise SelectionError(
                f"plane {p} does not exist; the recording has {num_planes} "
                f"plane(s) (0–{num_planes - 1})"
            )
        out.add(p % num_planes)
    if not out:
        raise SelectionError("planes is empty; give at least one plane index, or None for all")
    return sorted(out)


def _read(
    dataset: Dataset,
    channel: int,
    planes: list[int],
    num_planes: int,
    slice_sample: SliceSample,
    rows: slice,
) -> npt.NDArray[Any]:
    """Frames (n, len(planes), Y, X) of the time rows ``rows``."""
    if len(planes) == 1:
        return dataset.read(channel, plane=planes[0], slice_sample=slice_sample, times=rows)[
            :, None
        ]
    data = dataset.read(channel, slice_sample=slice_sample, times=rows)
    return data if len(planes) == num_planes else data[:, planes]


def iter_register(
    dataset: Dataset,
    *,
    channel: int | str = 0,
    planes: Sequence[int] | None = None,
    reference_frames: int = 200,
    max_shift: float | None = None,
    subpixel: bool = True,
    bidi: bool = False,
    block_frames: int | None = None,
    piecewise: bool = False,
    block_size: int | Sequence[int] | None = None,
) -> Generator[tuple[int, int], None, Registration]:
    """Generator form of :func:`register`: yields (steps done, steps) and returns the
    :class:`Registration`.
    """
    info = dataset.info
    c = _channel_of(dataset, channel)
    Z = int(info.num_planes)
    if info.frame_shape is None:  # set for every opened recording
        raise SelectionError("the frame shape of the recording is unknown")
    Y, X = (int(n) for n in info.frame_shape)
    if min(Y, X) < 8:
        raise SelectionError(
            f"frames of {Y}×{X} pixels are too small to register (need at least 8×8)"
        )
    est = _planes_of(planes, Z)
    slice_sample: SliceSample = "mean" if info.frames_per_slice > 1 else 0
    T = int(dataset.selection(c, slice_sample=slice_sample).num_times(dataset.layout))
    if T < 1:
        raise SelectionError(f"{dataset.paths[0].name} has no complete time point to register")
    if max_shift is None:
        max_shift = max(1, round(0.1 * min(Y, X)))
    if not np.isfinite(max_shift) or max_shift < 1:
        raise SelectionError(
            f"max_shift is {max_shift!r} pixels; give at least 1 (or None for "
            f"a tenth of the frame, {max(1, round(0.1 * min(Y, X)))} px)"
        )
    max_shift = int(min(int(max_shift), (min(Y, X) - 3) // 2))
    if int(reference_frames) < 1:
        raise SelectionError(f"reference_frames is {reference_frames!r}; give at least 1")
    n_read = len(est) if len(est) < Z else Z
    if block_frames is None:
        block_frames = max(1, BLOCK_BYTES // (n_read * Y * X * 4))
    elif int(block_frames) < 1:
        raise SelectionError(f"block_frames is {block_frames!r}; give at least 1 (or None)")
    block_frames = int(block_frames)
    block = block_size_for((Y, X), block_size) if piecewise else None
    block_shift = max(2, round(0.05 * min(block))) if block is not None else 0

    blocks = [slice(s, min(s + block_frames, T)) for s in range(0, T, block_frames)]
    total = Z + len(blocks)
    done = 0
    yield done, total

    ref_rows = (
        np.unique(np.round(np.linspace(0, T - 1, min(int(reference_frames), T))))
        .astype(np.int64)
        .tolist()
    )
    phase = 0.0
    if bidi:  # the planes' cross-power spectra summed (est is never empty)
        crosses = [
            bidi_cross(dataset.read(c, plane=z, slice_sample=slice_sample, times=ref_rows))
            for z in est
        ]
        phase = bidi_peak(sum(crosses[1:], crosses[0]), X, 10, SMOOTH_SIGMA)
    reference = np.zeros((Z, Y, X), np.float32)
    for z in range(Z):
        frames = dataset.read(c, plane=z, slice_sample=slice_sample, times=ref_rows)
        if phase:
            frames = correct_bidi(frames, phase)
        if z in est:
            reference[z] = make_reference(frames, max_shift=max_shift, smooth_sigma=SMOOTH_SIGMA)
            if block is not None:  # sharpened: the frames' non-rigid motion blurs the mean
                reference[z] = refine_reference(
                    frames, reference[z], block, block_shift, max_shift, SMOOTH_SIGMA
                )
        else:  # not registered: the plain mean, for display
            reference[z] = frames.mean(axis=0, dtype=np.float64)
        del frames
        done += 1
        yield done, total

    # one correlator per reference: its spectrum, windows and bias calibration serve every block
    correlators = {z: Correlator(reference[z], max_shift, SMOOTH_SIGMA) for z in est}
    grids = (
        {z: BlockCorrelator(reference[z], block, block_shift, SMOOTH_SIGMA) for z in est}
        if block is not None
        else {}
    )
    shifts = np.zeros((T, Z, 2))
    correlation = np.full((T, Z), np.nan)
    field: dict[str, Any] = {}
    if grids:
        first = grids[est[0]]
        H, W = first.grid
        field = {
            "block_shifts": np.zeros((T, Z, H, W, 2)),
            "block_centers": first.centres,
            "block_correlation": np.full((T, Z, H, W), np.nan),
            "block_flags": np.zeros((T, Z, H, W), np.int8),
        }
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="scanimage-register") as pool:
        pending = pool.submit(_read, dataset, c, est, Z, slice_sample, blocks[0])
        for k, rows in enumerate(blocks):
            data = pending.result()
            if k + 1 < len(blocks):  # read the next block while this one is estimated
                pending = pool.submit(_read, dataset, c, est, Z, slice_sample, blocks[k + 1])
            for i, z in enumerate(est):
                frames = data[:, i]
                if phase:
                    frames = correct_bidi(frames, phase)
                s, peak = correlators[z].estimate(frames, subpixel)
                shifts[rows, z] = s
                correlation[rows, z] = peak
                if grids:  # the blocks' residuals, on the frames already in memory
                    res, bpeak, flags = grids[z].estimate(frames, s, subpixel)
                    field["block_shifts"][rows, z] = res
                    field["block_correlation"][rows, z] = bpeak
                    field["block_flags"][rows, z] = flags
            del data
            done += 1
            yield done, total

    settings: dict[str, Any] = {
        "method": "phase correlation",
        "channel": c,
        "planes": est,
        "reference_frames": len(ref_rows),
        "max_shift": max_shift,
        "subpixel": bool(subpixel),
        "bidi": bool(bidi),
        "block_frames": block_frames,
        "slice_sample": slice_sample,
        "smooth_sigma": SMOOTH_SIGMA,
        "piecewise": block is not None,
    }
    if block is not None:
        settings.update(block_size=list(block), block_max_shift=block_shift)
    return Registration(
        shifts,
        correlation,
        reference,
        channel=info.channel_names[c],
        bidi_phase=float(phase),
        settings=settings,
        source=str(dataset.paths[0]),
        **field,
    )


def register(
    dataset: Dataset,
    *,
    channel: int | str = 0,
    planes: Sequence[int] | None = None,
    reference_frames: int = 200,
    max_shift: float | None = None,
    subpixel: bool = True,
    bidi: bool = False,
    block_frames: int | None = None,
    piecewise: bool = False,
    block_size: int | Sequence[int] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Registration:
    """Rigid or piecewise-rigid motion registration of a recording, per plane, by phase
    correlation.

    Parameters
    ----------
    dataset : Dataset
        The recording.
    channel : int or str
        Channel the shifts are estimated on (they apply to every channel).
    planes : list of int, optional
        Planes to register (default all); the others get zero shifts and NaN correlation.
    reference_frames : int
        Frames, spread evenly over the recording, that each plane's reference is built from.
    max_shift : float, optional
        Largest shift searched along y and x, in pixels (default a tenth of the frame).
    subpixel : bool
        Subpixel shifts (else whole pixels).
    bidi : bool
        Estimate the odd-line offset of bidirectional scanning on the reference frames and
        correct it before estimating shifts (stored in ``bidi_phase``).
    block_frames : int, optional
        Time rows read at once (default: about 64 MB of frames).
    piecewise : bool
        Also estimate, per frame, the residual shift of each block of a grid of overlapping
        blocks after the rigid shift (:mod:`.piecewise`): a smooth displacement field for
        tissue that does not move as one piece (large fields of view, brain pulsation).
        Off by default: rigid registration is about 2–3× faster and enough for most
        512-pixel fields; turn it on when registered movies still wobble locally.
    block_size : int or (int, int), optional
        Block height and width in pixels (piecewise only); default 128 × 128, half the frame
        (at least 16 px) along sides shorter than 256 px.
    progress : callable(done, total), optional

    Returns
    -------
    Registration

    Raises
    ------
    SelectionError
        The channel or a plane does not exist, ``max_shift`` < 1, a block does not fit the
        frame, or there is nothing to register.
    """
    gen = iter_register(
        dataset,
        channel=channel,
        planes=planes,
        reference_frames=reference_frames,
        max_shift=max_shift,
        subpixel=subpixel,
        bidi=bidi,
        block_frames=block_frames,
        piecewise=piecewise,
        block_size=block_size,
    )
    return drive(gen, progress)
