"""Export a ScanImage recording, its ROIs, traces and motion registration to NWB.

Functions
---------
export_nwb
    Write one `.nwb` file (HDF5) atomically: imaging data per channel, ROI masks, traces and
    registration, with the acquisition metadata ScanImage records.

Axis conventions follow the NWB schema literally: ``TwoPhotonSeries.data`` is
(time, x, y) for planar and (time, x, y, z) for volumetric recordings, ROI ``image_mask`` is
(x, y) / (x, y, z), reference images are (x, y), and ``grid_spacing`` / ``field_of_view`` are
(x, y[, z]) in metres.  A :class:`~napari_scanimage.Dataset` array (T, [Z,] Y, X) therefore
appears transposed: ``nwb[t, x, y, z] == dataset.read()[t, z, y, x]``.  Traces are stored as
(time, ROI), shifts as (time, plane, 2) with (dy, dx) in pixels, as
:class:`~napari_scanimage.Registration` holds them.

Frames are written buffer by buffer from the lazy dask array, so memory stays bounded whatever
the size of the recording.  Frames are raw (unregistered) data; with several frames per slice
the first sample of each slice is written.  pynwb is an optional dependency (the ``nwb``
extra).
"""

from __future__ import annotations

import errno
import math
import os
import re
import shutil
import uuid
import warnings
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import numpy.typing as npt

from ._atomic import replacing
from .errors import FormatError, ScanImageError, SelectionError, TimestampWarning, save_error

if TYPE_CHECKING:
    from typing import TypeAlias

    import dask.array as da
    from hdmf.common import DynamicTableRegion
    from hdmf.data_utils import GenericDataChunkIterator

    from ._core.dataset import Dataset
    from .analysis.registration import Registration
    from .analysis.rois import RoiSet
    from .analysis.traces import Traces
    from .flim.lifetime import LifetimeTraces

    AnyTraces: TypeAlias = "Traces | LifetimeTraces"  # what traces= takes

__all__ = ["export_nwb", "session_start"]

CHUNK_BYTES = 4 << 20  # HDF5 chunk target (a few frames)
BUFFER_BYTES = 64 << 20  # frames read and written at a time
_UNSAFE = re.compile(r"[/:]")
_SCANIMAGE_DATE = re.compile(r"^\s*\[?\s*" + r"[\s,]+".join([r"([0-9.]+)"] * 6) + r"\s*\]?\s*$")


def _pynwb() -> Any:  # pynwb has no type information
    """The pynwb module, or a ScanImageError saying how to install it."""
    try:
        import hdmf  # noqa: F401
        import pynwb
    except ImportError as exc:
        raise ScanImageError(
            f"NWB export needs pynwb, which is not installed ({exc}); install it with "
            'pip install "napari-scanimage[nwb]"'
        ) from None
    return pynwb


def _safe(name: str) -> str:
    """An NWB object name ('/' and ':' are not allowed in names)."""
    return _UNSAFE.sub("_", str(name)).strip() or "unnamed"


# -- session start ---------------------------------------------------------------------------
def _parse_epoch(value: object) -> datetime | None:
    """A ScanImage epoch: ``[yyyy m d H M S.s]`` (acquisition computer's wall clock, read as
    this computer's local time) or integer nanoseconds since the Unix epoch (`.siff`).
    """
    if value is None:
        return None
    if isinstance(value, (list, tuple, np.ndarray)):
        parts = [float(v) for v in np.ravel(value)]
        if len(parts) != 6:
            return None
        value = " ".join(repr(p) for p in parts)
    text = str(value).strip()
    m = _SCANIMAGE_DATE.match(text)
    if m:
        y, mo, d, h, mi = (int(float(g)) for g in m.groups()[:5])
        sec = float(m.group(6))
        try:
            local = datetime(y, mo, d, h, mi, int(sec), int(round((sec % 1) * 1e6)) % 1_000_000)
        except ValueError:
            return None
        return local.astimezone(UTC)  # naive → local zone → UTC
    if re.fullmatch(r"\d{15,}", text):  # ns since 1970 (FLIM epoch clocks)
        return datetime.fromtimestamp(int(text) / 1e9, tz=UTC)
    return None


def session_start(dataset: Dataset) -> datetime:
    """When the recording started, timezone-aware (UTC): the ScanImage epoch (static metadata,
    else the first frame's description), else the first file's modification time.
    """
    for key, value in dataset.metadata.items():
        if str(key).split(".")[-1].lower() == "epoch":
            found = _parse_epoch(value)
            if found is not None:
                return found
    try:
        found = _parse_epoch(dataset.frame_description(0).get("epoch"))
    except (ScanImageError, OSError, IndexError):
        found = None
    if found is not None:
        return found
    return datetime.fromtimestamp(os.stat(dataset.paths[0]).st_mtime, tz=UTC)


# -- chunked frames --------------------------------------------------------------------------
def _frames_iterator(array: da.Array, progress: Callable[[], None]) -> GenericDataChunkIterator:
    """A GenericDataChunkIterator over a dask array already in NWB axis order, whole frames
    per chunk and buffer (reads follow the time-chunked source).
    """
    from hdmf.data_utils import GenericDataChunkIterator

    # (hdmf has no type information: its classes are Any to the type checker)
    class FramesIterator(GenericDataChunkIterator):  # type: ignore[misc]
        def __init__(self) -> None:
            self._array = array
            shape = tuple(int(s) for s in array.shape)
            frame = int(np.prod(shape[1:])) * array.dtype.itemsize
            T = max(shape[0], 1)
            per_chunk = min(T, max(1, CHUNK_BYTES // max(frame, 1)))
            per_buffer = min(T, per_chunk * max(1, BUFFER_BYTES // max(per_chunk * frame, 1)))
            super().__init__(
                chunk_shape=(per_chunk, *shape[1:]), buffer_shape=(per_buffer, *shape[1:])
            )

        def _get_data(self, selection: tuple[slice, ...]) -> npt.NDArray[Any]:
            out = np.asarray(self._array[selection].compute(scheduler="threads"))
            progress()
            return out

        def _get_maxshape(self) -> tuple[int, ...]:
            return tuple(int(s) for s in self._array.shape)

        def _get_dtype(self) -> np.dtype[Any]:
            dtype: np.dtype[Any] = np.dtype(self._array.dtype)
            return dtype

    return FramesIterator()


def _to_nwb_axes(a: da.Array, volumetric: bool) -> da.Array:
    """(T, Z, Y, X) → (T, X, Y, Z), (T, Y, X) → (T, X, Y) (dask or numpy)."""
    # (dask's Array.transpose has no annotations)
    axes = (0, 3, 2, 1) if volumetric else (0, 2, 1)
    out: da.Array = a.transpose(*axes)  # type: ignore[no-untyped-call]
    return out


def _times(dataset: Dataset) -> npt.NDArray[np.float64] | None:
    """Timestamps (s) of the first frame of each volume, or None when the files have none."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", TimestampWarning)
            t = dataset.timestamps(0, slice_sample=0)
    except (TimestampWarning, FormatError):
        return None
    t = np.asarray(t, np.float64)
    return t if t.ndim == 1 and np.isfinite(t).all() else None


# -- export ----------------------------------------------------------------------------------
def export_nwb(
    dataset: Dataset,
    path: str | os.PathLike[str],
    *,
    channels: Sequence[int | str] | None = None,
    rois: RoiSet | None = None,
    traces: AnyTraces | list[AnyTraces] | tuple[AnyTraces, ...] | None = None,
    registration: Registration | None = None,
    session_description: str | None = None,
    identifier: str | None = None,
    session_start_time: datetime | None = None,
    progress: Callable[[int, int], None] | None = None,
    indicator: str | None = None,
    location: str | None = None,
    excitation_nm: float | None = None,
) -> Path:
    """Write a recording to an NWB file, atomically.

    Parameters
    ----------
    dataset : Dataset
    path : path-like
        Target `.nwb` file; replaced only once the whole file is written (a failure leaves no
        partial file and an existing file as it was).
    channels : sequence of int or str, optional
        Channels to write as ``TwoPhotonSeries`` (default: all).  An empty list writes no
        imaging data (ROIs, traces and registration still need one channel's imaging plane:
        the first channel is described).
    rois : RoiSet, optional
        Written as a ``PlaneSegmentation`` ("PlaneSegmentation" in the "ophys" processing
        module), one ``image_mask`` per ROI: (x, y) when planar, (x, y, z) when volumetric,
        with a ``roi_name`` column.  ROIs belong to the imaging plane of the first channel
        written (they apply to every channel).
    traces : Traces, LifetimeTraces or a list or tuple of them, optional
        ``RoiResponseSeries`` (time, ROI) referencing the ROI rows: kinds "mean"/"sum" in
        ``Fluorescence``, "dff" in ``DfOverF``, "lifetime" as "lifetime" (unit ns) and
        "phasor" as "phasor g" / "phasor s" directly in the "ophys" module.  Needs ``rois``
        holding every traced ROI name.
    registration : Registration, optional
        A "motion correction" processing module: "shifts" (time, plane, (dy, dx)) and
        "correlation" (time, plane) ``TimeSeries`` and "reference images" (one per plane).
    session_description, identifier : str, optional
        Defaults: "ScanImage recording <file name>" and a random UUID.
    session_start_time : datetime, optional
        Default :func:`session_start` (the ScanImage epoch, else the file time), UTC.
    progress : callable(done, total), optional
        Called after each buffer of frames written.  An exception raised there aborts the
        export (nothing is written).
    indicator, location : str, optional
        Recorded in every ``ImagingPlane`` (default "unknown").
    excitation_nm : float, optional
        Excitation wavelength (default NaN: ScanImage does not record it).

    Returns
    -------
    Path

    Raises
    ------
    ScanImageError
        pynwb is not installed, or the ROIs, traces or registration do not fit the recording.
    """
    pynwb = _pynwb()
    from pynwb.base import Images, TimeSeries
    from pynwb.image import GrayscaleImage
    from pynwb.ophys import (
        DfOverF,
        Fluorescence,
        ImageSegmentation,
        OpticalChannel,
        RoiResponseSeries,
        TwoPhotonSeries,
    )

    path = Path(path)
    info = dataset.info
    names = list(info.channel_names)
    chosen = (
        list(range(len(names)))
        if channels is None
        else [dataset.channel_index(c) for c in channels]
    )
    for c in chosen:
        if not 0 <= c < len(names):
            raise SelectionError(f"channel {c} does not exist; the recording has {len(names)}")
    if len(set(chosen)) != len(chosen):
        raise SelectionError("a channel is listed twice")
    trace_list: list[AnyTraces] = (
        [] if traces is None else list(traces) if isinstance(traces, (list, tuple)) else [traces]
    )
    Z = info.num_planes
    volumetric = Z > 1
    Y, X = (int(s) for s in dataset.spec.frame_shape)  # (= info.frame_shape)
    T = dataset.layout.num_volumes
    if registration is not None:
        registration.check_fits(T, Z, (Y, X))
    roi_names = list(rois.names) if rois is not None else []
    for tr in trace_list:
        missing = [n for n in tr.names if n not in roi_names]
        if missing:
            raise SelectionError(
                f"traces of {', '.join(map(repr, missing))} have no ROI in "
                "rois; pass the RoiSet the traces were computed from"
            )
        if tr.kind not in ("mean", "sum", "dff", "lifetime", "phasor"):
            raise SelectionError(f"trace kind {tr.kind!r} cannot be exported")

    start = session_start_time or session_start(dataset)
    if start.tzinfo is None:
        start = start.astimezone(UTC)
    nwb = pynwb.NWBFile(
        session_description=session_description or f"ScanImage recording {dataset.paths[0].name}",
        identifier=identifier or str(uuid.uuid4()),
        session_start_time=start,
        source_script="napari-scanimage",
        source_script_file_name="napari_scanimage.nwb",
        notes=f"Exported from {', '.join(p.name for p in dataset.paths)} (ScanImage "
        f"{info.version}, {info.generation}).",
    )
    device = nwb.create_device(
        name="Microscope",
        description=f"Laser-scanning microscope run by ScanImage "
        f"{info.version} ({'FLIM, photon counting' if info.is_flim else 'analogue'} "
        f"acquisition)",
    )

    rate = info.volume_rate
    times = _times(dataset)
    if times is None and not rate:
        raise FormatError(
            f"{dataset.paths[0]}: neither per-frame timestamps nor a frame rate; "
            "the NWB time base cannot be derived"
        )
    pixel = info.pixel_size_um
    spacing = None
    if pixel is not None:
        spacing = [pixel[1] * 1e-6, pixel[0] * 1e-6]
        if volumetric:
            spacing.append((info.z_step_um or math.nan) * 1e-6)
    fov = (
        None
        if spacing is None
        else [s * n for s, n in zip(spacing, (X, Y, Z) if volumetric else (X, Y), strict=True)]
    )
    planes, series = {}, []
    described = chosen or [0]
    done = [0, 0]  # buffers written, total

    def step() -> None:
        done[0] += 1
        if progress is not None:
            progress(done[0], done[1])

    for c in described:
        name = _safe(names[c])
        optical = OpticalChannel(
            name=f"OpticalChannel {name}",
            description=f"ScanImage channel {info.channel_ids[c]} ({names[c]})",
            emission_lambda=math.nan,
        )
        planes[c] = nwb.create_imaging_plane(
            name=f"ImagingPlane {name}",
            optical_channel=optical,
            device=device,
            description=(f"{Z} planes, {info.z_step_um} µm apart" if volumetric else "one plane")
            + f", {Y}×{X} pixels (channel {names[c]})",
            excitation_lambda=math.nan if excitation_nm is None else float(excitation_nm),
            imaging_rate=float(rate) if rate else math.nan,
            indicator=indicator or "unknown",
            location=location or "unknown",
            **({} if spacing is None else {"grid_spacing": spacing, "grid_spacing_unit": "meters"}),
        )
    first_series = None
    for c in chosen:
        data = _frames_iterator(_to_nwb_axes(dataset.array(c), volumetric), step)
        done[1] += data.num_buffers
        # (no timestamps: the check above made sure there is a rate)
        timing = (
            {"rate": float(cast(float, rate)), "starting_time": 0.0}
            if times is None
            else {"timestamps": first_series if first_series is not None else times}
        )
        s = TwoPhotonSeries(
            name=f"TwoPhotonSeries {_safe(names[c])}",
            imaging_plane=planes[c],
            data=data,
            unit="a.u.",
            description=f"Raw frames of channel {names[c]}, axes (time, x, y"
            + (", z)" if volumetric else ")")
            + " (ScanImage sample values)",
            dimension=[X, Y, Z] if volumetric else [X, Y],
            **timing,
            **({} if fov is None else {"field_of_view": fov}),
        )
        nwb.add_acquisition(s)
        series.append(s)
        if first_series is None:
            first_series = s
    time_base = (
        {"rate": float(cast(float, rate)), "starting_time": 0.0}
        if times is None
        else {"timestamps": first_series if first_series is not None else times}
    )

    ophys = None
    if rois is not None or trace_list:
        if rois is None:
            raise SelectionError("traces need the ROIs they were computed from: pass rois=")
        ophys = nwb.create_processing_module("ophys", "ROIs and their traces")
        segmentation = ImageSegmentation(name="ImageSegmentation")
        ophys.add(segmentation)
        ps = segmentation.create_plane_segmentation(
            name="PlaneSegmentation",
            imaging_plane=planes[described[0]],
            description="ROIs drawn in napari-scanimage; image_mask axes (x, y"
            + (", z)" if volumetric else ")"),
        )
        ps.add_column("roi_name", "ROI name")
        for k, rn in enumerate(roi_names):
            m = rois.mask(k, (Y, X), Z)  # (Z, Y, X)
            mask = m.transpose(2, 1, 0) if volumetric else m[0].T
            ps.add_roi(image_mask=mask.astype(np.float32), roi_name=rn)
        containers = {}
        for tr in trace_list:
            rows = [roi_names.index(n) for n in tr.names]

            def region(
                rows: list[int] = rows,
                kind: str = tr.kind,  # one per series
            ) -> DynamicTableRegion:
                return ps.create_roi_table_region(
                    description=f"ROIs of the {kind} traces", region=rows
                )

            values = np.asarray(tr.values, np.float64)
            when = {"timestamps": np.asarray(tr.time, np.float64)}
            if tr.kind == "phasor":  # (kinds "phasor" and "lifetime": LifetimeTraces)
                harmonic = cast("LifetimeTraces", tr).harmonic
                for k, part in enumerate("gs"):
                    ophys.add(
                        RoiResponseSeries(
                            name=_unique(ophys, f"phasor {part}", tr.channel),
                            data=values[..., k].T,
                            rois=region(),
                            unit="n.a.",
                            description=f"Phasor {part} (harmonic {harmonic}) of channel "
                            f"{tr.channel}",
                            **when,
                        )
                    )
                continue
            if tr.kind == "lifetime":
                irf = cast("LifetimeTraces", tr).irf_offset_ns
                ophys.add(
                    RoiResponseSeries(
                        name=_unique(ophys, "lifetime", tr.channel),
                        data=values.T,
                        rois=region(),
                        unit="ns",
                        description=f"Mean photon arrival-time lifetime of channel "
                        f"{tr.channel} (IRF offset {irf} ns subtracted)",
                        **when,
                    )
                )
                continue
            cls, key = (DfOverF, "DfOverF") if tr.kind == "dff" else (Fluorescence, "Fluorescence")
            if key not in containers:
                containers[key] = cls(name=key)
                ophys.add(containers[key])
            container = containers[key]
            name = f"{tr.kind} {_safe(tr.channel)}"
            if name in container.roi_response_series:
                raise SelectionError(f"two {tr.kind} traces of channel {tr.channel}")
            container.add_roi_response_series(
                RoiResponseSeries(
                    name=name,
                    data=values.T,
                    rois=region(),
                    unit="dF/F" if tr.kind == "dff" else "a.u.",
                    description=f"ROI {tr.kind} of channel {tr.channel}, axes (time, ROI)",
                    **when,
                )
            )

    if registration is not None:
        mc = nwb.create_processing_module(
            "motion correction",
            f"Rigid motion registration estimated on channel "
            f"{registration.channel or '?'} (bidirectional phase {registration.bidi_phase:g} "
            "px); shifts are not applied to the frames written",
        )
        mc.add(
            TimeSeries(
                name="shifts",
                data=registration.shifts,
                unit="pixels",
                description="(dy, dx) of each time point's frame in each plane; "
                "axes (time, plane, 2)",
                **time_base,
            )
        )
        mc.add(
            TimeSeries(
                name="correlation",
                data=registration.correlation,
                unit="n.a.",
                description="Peak normalised phase correlation with the reference; "
                "axes (time, plane)",
                **time_base,
            )
        )
        mc.add(
            Images(
                name="reference images",
                description="Reference image of each plane, axes (x, y)",
                images=[
                    GrayscaleImage(
                        name=f"plane {z}",
                        data=registration.reference[z].T,
                        description=f"reference of plane {z}",
                    )
                    for z in range(registration.num_planes)
                ],
            )
        )

    if progress is not None:
        progress(0, done[1])
    _check_free_space(path, _estimated_bytes(dataset, chosen, rois, trace_list, registration))
    with replacing(path) as tmp:
        _plain_mode(tmp)
        with pynwb.NWBHDF5IO(tmp, "w") as io:
            io.write(nwb)
    return path


def _estimated_bytes(
    dataset: Dataset,
    chosen: Sequence[int],
    rois: RoiSet | None,
    trace_list: Sequence[AnyTraces],
    registration: Registration | None,
) -> int:
    """An upper estimate of the NWB file's size: frames, masks, traces, shifts and headroom."""
    info = dataset.info
    Y, X = (int(s) for s in dataset.spec.frame_shape)  # (= info.frame_shape)
    frame = Y * X * np.dtype(info.dtype).itemsize
    frames = dataset.layout.num_volumes * info.num_planes * info.frames_per_slice
    total = len(chosen) * frames * frame
    if rois is not None:
        total += len(rois.names) * Y * X * info.num_planes * 8
    for tr in trace_list:
        total += 4 * np.asarray(tr.values).nbytes + 8 * len(tr.time)
    if registration is not None:
        total += registration.shifts.nbytes * 2 + registration.reference.nbytes * 2
    return int(total * 1.05) + (4 << 20)


def _check_free_space(path: Path, need: int) -> None:
    """Refuse, before HDF5 writes anything, when the drive cannot hold the file: HDF5 does not
    survive running out of space in the middle of a file (its close crashes the process).
    """
    folder = path.parent if str(path.parent) else Path(".")
    try:
        free = shutil.disk_usage(folder).free
    except OSError:  # a missing or unreadable folder: the save itself reports it
        return
    if free < need:
        full = OSError(
            errno.ENOSPC, f"{free / 2**20:.1f} MiB free, about {need / 2**20:.1f} MiB needed"
        )
        raise save_error(path, full, os.path.lexists(path))


def _plain_mode(tmp: str) -> None:
    """Give the temporary file the mode a newly created file gets (not mkstemp's 0600)."""
    umask = os.umask(0)
    os.umask(umask)
    try:
        os.chmod(tmp, 0o666 & ~umask)
    except OSError:
        pass


def _unique(module: Any, base: str, channel: str) -> str:  # module: a pynwb ProcessingModule
    name = base if base not in module.data_interfaces else f"{base} {_safe(channel)}"
    if name in module.data_interfaces:
        raise SelectionError(f"two {base} traces of channel {channel}")
    return name
