"""What the workers of a batch run: small, pure functions of file paths and time-row ranges.

Every task opens the recording itself from its paths (cheap after the first time in a
process), so nothing larger than a registration reference travels between
the client and the workers: no frames, no open file handles.  Tasks have no side effects (the
client writes every output file), so dask can run any of them again when a worker is lost.

The registration of one recording is split as :func:`~..analysis.registration.register` does
it, calling the same public functions in the same order:

1. :func:`registration_job` — the recording's size, the time rows the reference is built from
   and the blocks of time rows the shifts are estimated on;
2. :func:`reference` — the bidirectional phase (``bidi``) and each plane's reference
   (:func:`~..analysis._phasecorr.make_reference`) from the same evenly spread frames;
3. :func:`block_shifts` — one task per block of frames
   (:func:`~..analysis._phasecorr.estimate_shifts` against the reference);
4. :func:`assemble` — the :class:`~..analysis.registration.Registration`;

then :func:`recording_traces` computes the traces of the registered frames with the template
session's settings, exactly as ``Session.run_traces`` does in one process.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from .._core.dataset import Dataset
    from .._core.layout import SliceSample
    from ..analysis.registration import Registration
    from ..analysis.traces import Traces
    from ..flim.lifetime import LifetimeTraces
    from ..session import Session

__all__ = [
    "RecordingFiles",
    "RegistrationJob",
    "RegistrationSettings",
    "assemble",
    "block_shifts",
    "recording_traces",
    "reference",
    "register_whole",
    "registration_job",
]

REFERENCE_FRAMES = 200  # register()'s default: frames each plane's reference is built from
BLOCK_BYTES = 64 << 20  # float32 frames estimated per task (what register() reads at once)
# Threads of each task's FFTs: dask runs one task per worker thread, so the cluster's threads
# are the parallelism (all CPUs, the in-process default, would count every core of a shared
# cluster node, whatever the job was given).  Results do not depend on it.
FFT_THREADS = 1


@dataclass(frozen=True)
class RecordingFiles:
    """The files of one recording (one file, or a split series in order), as a task gets them.

    Attributes
    ----------
    paths : tuple of str
        Absolute paths, as the workers see them (a shared file system on a real cluster).
    bin_width_ps : float or None
        `.siff` arrival-time bin width override (the template session's).
    """

    paths: tuple[str, ...]
    bin_width_ps: float | None = None

    @property
    def stem(self) -> str:
        """The first file's stem: the outputs are named after it."""
        return Path(self.paths[0]).stem


@dataclass(frozen=True)
class RegistrationSettings:
    """The registration applied to every recording: the template's, as ``register`` takes them.

    ``extra`` holds options of :func:`~..analysis.registration.register` that the block-wise
    pipeline does not split (see :func:`needs_whole`); a recording with any of them is
    registered by one ``register`` call on a worker instead.
    """

    channel: int | str = 0
    planes: tuple[int, ...] | None = None
    max_shift: float | None = None
    subpixel: bool = True
    bidi: bool = False
    reference_frames: int = REFERENCE_FRAMES
    extra: dict[str, Any] = field(default_factory=dict)

    def kwargs(self) -> dict[str, Any]:
        """Keyword arguments of :func:`~..analysis.registration.register`."""
        return {
            "channel": self.channel,
            "planes": None if self.planes is None else list(self.planes),
            "max_shift": self.max_shift,
            "subpixel": self.subpixel,
            "bidi": self.bidi,
            "reference_frames": self.reference_frames,
            **self.extra,
        }

    def needs_whole(self) -> bool:
        """Whether the recording must be registered by one ``register`` call (piecewise)."""
        return bool(self.extra)


@dataclass(frozen=True)
class RegistrationJob:
    """What the registration tasks of one recording share (small: numbers and row lists)."""

    channel: int
    planes: tuple[int, ...]  # the planes registered (the others get zero shifts)
    num_planes: int
    num_times: int
    frame_shape: tuple[int, int]
    slice_sample: SliceSample
    max_shift: int
    subpixel: bool
    bidi: bool
    reference_rows: tuple[int, ...]
    blocks: tuple[tuple[int, int], ...]  # (start, stop) time rows of each shift task
    channel_name: str


# -- opening --------------------------------------------------------------------------------
_running: dict[tuple[str, ...], int] = {}  # tasks of each recording running in this process
_running_lock = threading.Lock()


@contextmanager
def opened(files: RecordingFiles) -> Iterator[Dataset]:
    """The recording, open for one task.

    Opening is cheap after the first time in a process (page indexes are kept per file, and
    checked against its size and time).  The file handles are released when no task of the
    recording is running in this process any more: releasing them earlier would close them
    under another thread still reading.
    """
    from .._core.dataset import open_dataset

    with _running_lock:
        _running[files.paths] = _running.get(files.paths, 0) + 1
    ds = None
    try:
        ds = open_dataset(
            files.paths[0],
            bin_width_ps=files.bin_width_ps,
            file_paths=list(files.paths) if len(files.paths) > 1 else None,
        )
        yield ds
    finally:
        with _running_lock:
            left = _running.pop(files.paths) - 1
            if left:
                _running[files.paths] = left
            elif ds is not None:
                ds.close()  # (every thread's handles on these files: none is reading)


# -- registration -----------------------------------------------------------------------------
def registration_job(
    files: RecordingFiles, settings: RegistrationSettings, block_frames: int | None = None
) -> RegistrationJob:
    """Check the settings against the recording and plan its registration (as ``register``).

    Raises
    ------
    SelectionError
        As :func:`~..analysis.registration.register` for the same settings.
    """
    with opened(files) as ds:
        return _plan(ds, files, settings, block_frames)


def _plan(
    ds: Dataset, files: RecordingFiles, settings: RegistrationSettings, block_frames: int | None
) -> RegistrationJob:
    from ..analysis.registration import iter_register

    # register()'s own checks and clamping, by starting its generator: it stops at its first
    # yield, before anything is read
    checks = iter_register(ds, **settings.kwargs())
    next(checks)
    checks.close()
    info = ds.info
    c = ds.channel_index(settings.channel)
    Z = int(info.num_planes)
    Y, X = (int(n) for n in info.frame_shape or (0, 0))
    planes = list(range(Z)) if settings.planes is None else sorted({p % Z for p in settings.planes})
    slice_sample: SliceSample = "mean" if info.frames_per_slice > 1 else 0
    T = int(ds.selection(c, slice_sample=slice_sample).num_times(ds.layout))
    max_shift = settings.max_shift
    if max_shift is None:
        max_shift = max(1, round(0.1 * min(Y, X)))
    max_shift = int(min(int(max_shift), (min(Y, X) - 3) // 2))
    rows = np.unique(np.round(np.linspace(0, T - 1, min(int(settings.reference_frames), T))))
    if block_frames is None:
        block_frames = max(1, BLOCK_BYTES // (len(planes) * Y * X * 4))
    blocks = tuple((s, min(s + block_frames, T)) for s in range(0, T, block_frames))
    return RegistrationJob(
        channel=c,
        planes=tuple(planes),
        num_planes=Z,
        num_times=T,
        frame_shape=(Y, X),
        slice_sample=slice_sample,
        max_shift=max_shift,
        subpixel=bool(settings.subpixel),
        bidi=bool(settings.bidi),
        reference_rows=tuple(int(r) for r in rows),
        blocks=blocks,
        channel_name=info.channel_names[c],
    )


def reference(files: RecordingFiles, job: RegistrationJob) -> tuple[npt.NDArray[np.float32], float]:
    """Each plane's reference (Z, Y, X) and the bidirectional phase, as ``register`` makes
    them (from the same frames, by the same functions).
    """
    with opened(files) as ds:
        return _reference(ds, job)


def _reference(ds: Dataset, job: RegistrationJob) -> tuple[npt.NDArray[np.float32], float]:
    from .._core.shifting import correct_bidi
    from ..analysis._phasecorr import bidi_cross, bidi_peak, make_reference
    from ..analysis.registration import SMOOTH_SIGMA

    c, rows, sample = job.channel, list(job.reference_rows), job.slice_sample
    Y, X = job.frame_shape
    phase = 0.0
    if job.bidi:  # the planes' cross-power spectra summed
        # (the default threads, as in register(): the sum's rounding depends on how the
        # frames are split between threads, and the phase moves every shift)
        crosses = [
            bidi_cross(ds.read(c, plane=z, slice_sample=sample, times=rows)) for z in job.planes
        ]
        phase = bidi_peak(sum(crosses[1:], crosses[0]), X, 10, SMOOTH_SIGMA)
    ref = np.zeros((job.num_planes, Y, X), np.float32)
    for z in range(job.num_planes):
        frames = ds.read(c, plane=z, slice_sample=sample, times=rows)
        if phase:
            frames = correct_bidi(frames, phase)
        if z in job.planes:
            ref[z] = make_reference(
                frames, max_shift=job.max_shift, smooth_sigma=SMOOTH_SIGMA, workers=FFT_THREADS
            )
        else:  # not registered: the plain mean, for display
            ref[z] = frames.mean(axis=0, dtype=np.float64)
    return ref, float(phase)


def block_shifts(
    files: RecordingFiles,
    job: RegistrationJob,
    rows: tuple[int, int],
    ref: tuple[npt.NDArray[np.float32], float],
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Shifts (n, len(planes), 2) and correlation peaks (n, len(planes)) of time rows
    ``rows`` = (start, stop) against the reference.
    """
    from .._core.shifting import correct_bidi
    from ..analysis._phasecorr import estimate_shifts
    from ..analysis.registration import SMOOTH_SIGMA

    reference_image, phase = ref
    times = slice(*rows)
    c, sample, planes = job.channel, job.slice_sample, job.planes
    with opened(files) as ds:
        if len(planes) == 1:
            data = ds.read(c, plane=planes[0], slice_sample=sample, times=times)[:, None]
        else:
            data = ds.read(c, slice_sample=sample, times=times)
            if len(planes) < job.num_planes:
                data = data[:, list(planes)]
    n = rows[1] - rows[0]
    shifts = np.zeros((n, len(planes), 2))
    peaks = np.zeros((n, len(planes)))
    for i, z in enumerate(planes):
        frames = data[:, i]
        if phase:
            frames = correct_bidi(frames, phase)
        shifts[:, i], peaks[:, i] = estimate_shifts(
            frames,
            reference_image[z],
            max_shift=job.max_shift,
            subpixel=job.subpixel,
            smooth_sigma=SMOOTH_SIGMA,
            workers=FFT_THREADS,
        )
    return shifts, peaks


def assemble(
    files: RecordingFiles,
    job: RegistrationJob,
    ref: tuple[npt.NDArray[np.float32], float],
    *parts: tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]],
) -> Registration:
    """The :class:`~..analysis.registration.Registration` from the blocks' shifts, in order."""
    from ..analysis.registration import SMOOTH_SIGMA, Registration

    T, Z = job.num_times, job.num_planes
    shifts = np.zeros((T, Z, 2))
    correlation = np.full((T, Z), np.nan)
    planes = list(job.planes)
    for (start, stop), (s, peak) in zip(job.blocks, parts, strict=True):
        shifts[start:stop, planes] = s
        correlation[start:stop, planes] = peak
    settings: dict[str, Any] = {
        "method": "phase correlation",
        "channel": job.channel,
        "planes": planes,
        "reference_frames": len(job.reference_rows),
        "max_shift": job.max_shift,
        "subpixel": job.subpixel,
        "bidi": job.bidi,
        "block_frames": max((b - a for a, b in job.blocks), default=0),
        "slice_sample": job.slice_sample,
        "smooth_sigma": SMOOTH_SIGMA,
    }
    return Registration(
        shifts,
        correlation,
        ref[0],
        channel=job.channel_name,
        bidi_phase=ref[1],
        settings=settings,
        source=files.paths[0],
    )


def register_whole(files: RecordingFiles, settings: RegistrationSettings) -> Registration:
    """The recording registered by one :func:`~..analysis.registration.register` call (for
    options the block-wise tasks do not split, such as piecewise registration).
    """
    from ..analysis.registration import register

    with opened(files) as ds:
        return register(ds, **settings.kwargs())


# -- traces -----------------------------------------------------------------------------------
def recording_traces(
    files: RecordingFiles, template: Session, registration: Registration | None
) -> Traces | LifetimeTraces:
    """The template session's traces of this recording (of its registered frames when a
    registration is given): ``Session.run_traces`` with the recording as the source.
    """
    session = replace(
        template, sources=[Path(p) for p in files.paths], registration_result=registration
    )
    session.path = None
    with opened(files) as ds:
        return session.run_traces(None, dataset=ds)
