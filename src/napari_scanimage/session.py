"""Analysis sessions: a recording, its ROIs, registration, FLIM fit and trace settings in one file.

A session is a versioned JSON file (``{"format": "napari-scanimage-session", "version": 1}``).
Recording paths are stored relative to the session file's folder (absolute when that is not
possible, e.g. on another drive), so a folder holding a session and its recordings can move.
ROIs are stored inline; the registration (``<stem>.registration.npz``) and the decay fit
(``<stem>.decayfit.json``) are sidecar files next to the session, referenced by name.  Session
files are named ``<stem>.nsession.json`` (:data:`SUFFIX`, :func:`session_file`), so that viewers
tell them from other JSON files by name.

:meth:`Session.save` writes every file in full to a temporary file first; then the previous
files are moved aside, the new ones moved in (sidecars first, the JSON last) and only then the
previous ones deleted: a save that fails at any step puts the previous session and its sidecars
back as they were.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from ._atomic import atomic_write, check_header, replace_retrying
from .errors import FormatError, ScanImageError, SelectionError

if TYPE_CHECKING:
    from distributed import Client

    from ._core.dataset import Dataset
    from ._core.layout import SliceSample
    from .analysis.registration import Registration
    from .analysis.rois import RoiSet
    from .analysis.traces import Traces
    from .flim.fit_result import DecayFit
    from .flim.lifetime import LifetimeTraces

__all__ = [
    "FORMAT",
    "SUFFIX",
    "VERSION",
    "MissingFileError",
    "Session",
    "TraceSettings",
    "is_session_file",
    "session_file",
]

FORMAT = "napari-scanimage-session"
VERSION = 1
SUFFIX = ".nsession.json"
TRACE_KINDS = ("mean", "sum", "dff", "lifetime", "phasor")


class MissingFileError(ScanImageError):
    """A file a session refers to (a recording or a sidecar) does not exist."""


@dataclass
class TraceSettings:
    """How traces are computed (the arguments of :func:`~.analysis.traces.traces`).

    ``channel`` None means the session's selected channel; ``stacked`` is how the Traces dock
    draws them (one above the other), not used for computing.
    """

    kind: str = "mean"
    channel: int | str | None = None
    percentile: float = 8.0
    window_s: float | None = None
    neuropil: float | None = None
    neuropil_radii: tuple[int, int] = (2, 8)
    harmonic: int = 1
    bin_volumes: int = 1
    stacked: bool = False

    def __post_init__(self) -> None:
        if self.kind not in TRACE_KINDS:
            raise SelectionError(f"trace kind {self.kind!r} is not one of {', '.join(TRACE_KINDS)}")
        self.percentile = float(self.percentile)
        self.window_s = None if self.window_s is None else float(self.window_s)
        self.neuropil = None if self.neuropil is None else float(self.neuropil)
        inner, outer = (int(r) for r in self.neuropil_radii)
        self.neuropil_radii = (inner, outer)
        self.harmonic = int(self.harmonic)
        self.bin_volumes = int(self.bin_volumes)
        self.stacked = bool(self.stacked)

    def to_dict(self) -> dict[str, Any]:
        """The settings as a JSON-ready dict (what :meth:`from_dict` reads)."""
        d = asdict(self)
        d["neuropil_radii"] = list(self.neuropil_radii)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TraceSettings:
        """Settings from a dict written by :meth:`to_dict`.

        Raises
        ------
        ValueError
            ``d`` has keys that are not settings.
        """
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown trace setting(s) {', '.join(unknown)}")
        return cls(**d)


@dataclass(eq=False)
class Session:
    """Everything needed to redo an analysis of one recording.

    Attributes
    ----------
    sources : list of Path
        The recording's files (one file, or every file of a series in order), absolute.
    channel, plane, slice_sample
        The selection analysed (``channel``, ``slice_sample``: what the traces use) and the
        single plane shown (None: all planes).
    shown_channels : list of int or None
        The channels shown in the viewer (None: all).
    shown_slice_sample : int, str or None
        How the viewer showed the samples of a slice ("axis", "mean", "interleave" or one
        sample); None: as ``slice_sample``.
    lifetime : bool
        `.siff` lifetime layers shown next to the photon counts.
    roi_set : RoiSet or None
    registration_result : Registration or None
    decay_fit : DecayFit or None
    trace : TraceSettings
    bin_width_ps : float or None
        `.siff` arrival-time bin width override passed to :func:`open_dataset`.
    path : Path or None
        The file the session was loaded from or last saved to.
    """

    sources: list[Path] = field(default_factory=list)
    channel: int | str = 0
    plane: int | None = None
    slice_sample: int | str = "mean"
    roi_set: RoiSet | None = None
    registration_result: Registration | None = None
    decay_fit: DecayFit | None = None
    trace: TraceSettings = field(default_factory=TraceSettings)
    bin_width_ps: float | None = None
    path: Path | None = None
    shown_channels: list[int] | None = None
    shown_slice_sample: int | str | None = None
    lifetime: bool = False

    def __post_init__(self) -> None:
        # given as one path or any paths; normalised to a list of absolute Paths here
        given = cast("str | os.PathLike[str] | Iterable[str | os.PathLike[str]]", self.sources)
        if isinstance(given, (str, os.PathLike)):
            given = [given]
        self.sources = [Path(p).absolute() for p in given]
        if isinstance(self.trace, dict):
            self.trace = TraceSettings(**self.trace)
        if self.path is not None:
            self.path = Path(self.path).absolute()

    # -- derived objects ----------------------------------------------------------------------
    def open_dataset(self) -> Dataset:
        """Open the session's recording (the caller closes it)."""
        from ._core.dataset import open_dataset

        if not self.sources:
            raise SelectionError("the session has no recording; add one to 'sources'")
        for p in self.sources:
            if not p.is_file():
                raise MissingFileError(
                    f"the session's recording {p} does not exist; put it back or make a new session"
                )
        return open_dataset(
            self.sources[0],
            bin_width_ps=self.bin_width_ps,
            file_paths=self.sources if len(self.sources) > 1 else None,
        )

    def rois(self) -> RoiSet | None:
        """The session's ROIs (a RoiSet) or None."""
        return self.roi_set

    def registration(self) -> Registration | None:
        """The session's Registration or None."""
        return self.registration_result

    def run_traces(
        self,
        scheduler: str | Client | None = None,
        *,
        dataset: Dataset | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> Traces | LifetimeTraces:
        """Traces of the session's ROIs with its settings: a Traces (LifetimeTraces for the
        kinds "lifetime" and "phasor").
        """
        from .analysis.traces import traces

        if self.roi_set is None or len(self.roi_set) == 0:
            raise SelectionError("the session has no ROIs; draw some or give an ROI file")
        t = self.trace
        channel = self.channel if t.channel is None else t.channel
        irf = self.decay_fit.irf_offset_ns if self.decay_fit is not None else 0.0
        own = dataset is None
        ds = self.open_dataset() if dataset is None else dataset
        try:
            info = ds.info
            if self.roi_set is not None:  # ROIs of other frames: refused with a clear message
                self.roi_set.check_fits("the session", info.frame_shape, info.num_planes)
            result: Traces | LifetimeTraces = traces(
                ds,
                self.roi_set,
                channel=channel,
                kind=t.kind,
                slice_sample=cast("SliceSample", self.slice_sample),
                percentile=t.percentile,
                window_s=t.window_s,
                neuropil=t.neuropil,
                neuropil_radii=t.neuropil_radii,
                scheduler=scheduler,
                progress=progress,
                registration=self.registration_result,
                harmonic=t.harmonic,
                irf_offset_ns=irf,
                bin_volumes=t.bin_volumes,
            )
            return result
        finally:
            if own:
                ds.close()

    # -- files --------------------------------------------------------------------------------
    def to_dict(self, folder: str | os.PathLike[str] | None = None) -> dict[str, Any]:
        """The JSON document (paths relative to ``folder`` where possible; sidecars not
        included — :meth:`save` adds their names).
        """
        folder = Path(folder).absolute() if folder is not None else None
        return {
            "format": FORMAT,
            "version": VERSION,
            "sources": [_relative(p, folder) for p in self.sources],
            "bin_width_ps": self.bin_width_ps,
            "selection": {
                "channel": self.channel,
                "plane": self.plane,
                "slice_sample": self.slice_sample,
                "shown_channels": None
                if self.shown_channels is None
                else [int(c) for c in self.shown_channels],
                "shown_slice_sample": self.shown_slice_sample,
                "lifetime": bool(self.lifetime),
            },
            "rois": None if self.roi_set is None else self.roi_set.to_dict(),
            "registration": None,
            "decay_fit": None,
            "trace": self.trace.to_dict(),
        }

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the session to ``path`` (JSON) and its sidecars next to it, atomically.

        Every file is first written in full to a temporary file.  Then the previous files are
        moved aside (the JSON first: a file another program holds open stops the save before
        anything changed), the new ones moved in (sidecars first, the JSON last) and the
        previous ones deleted.  A failure at any step (full drive, read-only folder, a file
        held open) puts the previous session and its sidecars back exactly as they were.
        """
        path = Path(path).absolute()
        doc = self.to_dict(path.parent)
        base = _base_name(path)
        staged: list[tuple[str, Path]] = []  # (temporary file, target), the JSON first
        try:
            session_tmp = _stage(path, staged)
            if self.registration_result is not None:
                side = path.with_name(f"{base}.registration.npz")
                self.registration_result.save(_stage(side, staged))
                doc["registration"] = side.name
            if self.decay_fit is not None:
                side = path.with_name(f"{base}.decayfit.json")
                self.decay_fit.save(_stage(side, staged))
                doc["decay_fit"] = side.name
            atomic_write(session_tmp, (json.dumps(doc, indent=1, allow_nan=False) + "\n").encode())
            _commit(staged)
        finally:
            for tmp, _ in staged:
                with contextlib.suppress(OSError):
                    if os.path.lexists(tmp):
                        os.unlink(tmp)
        self.path = path
        return path

    @classmethod
    def load(cls, path: str | os.PathLike[str], *, require_sources: bool = True) -> Session:
        """Read a session file.

        Raises
        ------
        FormatError
            Not JSON, not a session file, a newer version, or malformed.
        MissingFileError
            A recording (with ``require_sources``) or a sidecar file does not exist.
        """
        path = Path(path).absolute()
        try:
            doc = json.loads(path.read_bytes().decode())
        except FileNotFoundError:
            raise MissingFileError(f"session file {path} does not exist") from None
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise FormatError(f"{path.name} is not a session file (not JSON: {exc})") from None
        check_header(doc, FORMAT, VERSION, path.name, "session file")
        from .analysis.rois import RoiSet

        folder = path.parent
        try:
            if not isinstance(doc["sources"], list):
                raise TypeError("'sources' must be a list of paths")
            sources = [_resolve(s, folder) for s in doc["sources"]]
            sel = doc.get("selection") or {}
            trace = TraceSettings.from_dict(doc.get("trace") or {})
            rois = (
                None
                if doc.get("rois") is None
                else RoiSet.from_dict(doc["rois"], f"{path.name}: its 'rois' entry")
            )
            plane = sel.get("plane")
            shown = sel.get("shown_channels")
            if shown is not None and (
                not isinstance(shown, list)
                or not all(isinstance(c, int) and not isinstance(c, bool) for c in shown)
            ):
                raise TypeError(f"shown_channels {shown!r} is not a list of channel indices")
            shown_sample = sel.get("shown_slice_sample")
            session = cls(
                sources=sources,
                channel=_channel(sel.get("channel", 0)),
                plane=None if plane is None else int(plane),
                slice_sample=_slice_sample(sel.get("slice_sample", "mean")),
                roi_set=rois,
                trace=trace,
                bin_width_ps=_optional_float(doc.get("bin_width_ps")),
                path=path,
                shown_channels=shown,
                shown_slice_sample=None if shown_sample is None else _slice_sample(shown_sample),
                lifetime=bool(sel.get("lifetime", False)),
            )
            reg_name, fit_name = doc.get("registration"), doc.get("decay_fit")
            for name in (reg_name, fit_name):
                if name is not None and not isinstance(name, str):
                    raise TypeError(f"sidecar name {name!r} is not a string")
        except FormatError:
            raise
        except (KeyError, TypeError, ValueError) as exc:
            raise FormatError(f"{path.name}: malformed session ({exc})") from None
        if require_sources:
            for p in sources:
                if not p.is_file():
                    raise MissingFileError(
                        f"{path.name} refers to the recording {p}, which does not exist; move "
                        "it back (paths are relative to the session's folder) or edit "
                        "'sources'"
                    )
        if reg_name is not None:
            from .analysis.registration import Registration

            session.registration_result = Registration.load(_sidecar(path, reg_name))
        if fit_name is not None:
            from .flim.fit_result import DecayFit

            session.decay_fit = DecayFit.load(_sidecar(path, fit_name))
        return session


def session_file(path: str | os.PathLike[str]) -> Path:
    """``path`` named as a session file: ``<stem>.nsession.json`` (a ``.json`` ending is
    replaced, any other name gets the suffix added).
    """
    path = Path(path)
    if path.name.lower().endswith(SUFFIX):
        return path
    name = path.name[: -len(".json")] if path.name.lower().endswith(".json") else path.name
    return path.with_name(name + SUFFIX)


def is_session_file(path: str | os.PathLike[str], max_bytes: int = 64 << 20) -> bool:
    """Whether ``path`` is a JSON file holding a napari-scanimage session (its content is
    read, whatever its name; files larger than ``max_bytes`` are not).
    """
    try:
        if not os.path.isfile(path) or os.path.getsize(path) > max_bytes:
            return False
        with open(path, "rb") as fh:
            doc = json.loads(fh.read())
    except (OSError, ValueError):
        return False
    return isinstance(doc, dict) and doc.get("format") == FORMAT


def _base_name(path: Path) -> str:
    """The session's name without ``.nsession.json`` (or ``.json``): the sidecars' stem."""
    name = path.name
    for suffix in (SUFFIX, ".json"):
        if name.lower().endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return path.stem


def _stage(target: Path, staged: list[tuple[str, Path]]) -> str:
    """A new temporary file next to ``target`` (recorded in ``staged``)."""
    import tempfile

    from .errors import save_error

    try:
        fd, tmp = tempfile.mkstemp(
            prefix=f".{target.stem}-", suffix=target.suffix, dir=target.parent
        )
    except OSError as exc:
        raise save_error(target, exc, target.exists()) from exc
    os.close(fd)
    staged.append((tmp, target))
    return tmp


def _commit(staged: list[tuple[str, Path]]) -> None:
    """Move the staged files onto their targets as one step: the previous targets are moved
    aside first (in order: the JSON, staged first, then the sidecars), the new files moved in
    (in reverse: the JSON last), then the previous ones deleted.  On any failure everything
    moved so far goes back; the error says the previous files are unchanged.
    """
    import tempfile

    from .errors import SaveError, save_error

    aside: dict[Path, str] = {}  # target → where its previous content waits
    placed: list[Path] = []
    target = staged[0][1]
    try:
        for _, target in staged:
            if os.path.lexists(target):
                fd, old = tempfile.mkstemp(
                    prefix=f".{target.stem}-previous-", suffix=target.suffix, dir=target.parent
                )
                os.close(fd)
                try:  # (retried while another program holds it open, as a replace is)
                    replace_retrying(os.fspath(target), Path(old), True)
                except BaseException:
                    os.unlink(old)
                    raise
                aside[target] = old
        for tmp, target in reversed(staged):
            replace_retrying(tmp, target, target in aside)
            placed.append(target)
    except (OSError, ScanImageError) as exc:
        for done in placed:  # the new files out, the previous ones back
            with contextlib.suppress(OSError):
                os.unlink(done)
        for where, old in aside.items():
            with contextlib.suppress(OSError):
                os.replace(old, where)
        kept = "the previous files are unchanged" if aside else "nothing was written"
        if isinstance(exc, SaveError) and exc.errno == errno.EACCES:  # held open
            err = SaveError(
                f"cannot save {target}: the file is open in another program (or "
                f"marked read-only); close it there, or save under another name "
                f"({kept})"
            )
            err.errno = errno.EACCES
            raise err from exc
        if isinstance(exc, ScanImageError):
            raise
        raise save_error(target, exc, bool(aside)) from exc
    for old in aside.values():
        with contextlib.suppress(OSError):
            os.unlink(old)


def _relative(p: Path, folder: Path | None) -> str:
    if folder is None:
        return str(p)
    try:
        return Path(os.path.relpath(p, folder)).as_posix()
    except ValueError:  # another drive
        return str(p)


def _resolve(s: object, folder: Path) -> Path:
    if not isinstance(s, str) or not s:
        raise TypeError(f"source {s!r} is not a path")
    p = Path(s)
    return p if p.is_absolute() else Path(os.path.normpath(folder / p))


def _sidecar(path: Path, name: str) -> Path:
    side = path.parent / name
    if not side.is_file():
        raise MissingFileError(
            f"{path.name} refers to {name}, which is not next to it; copy "
            "it back beside the session file or remove the reference"
        )
    return side


def _channel(v: object) -> int | str:
    if isinstance(v, bool) or not isinstance(v, (int, str)):
        raise TypeError(f"channel {v!r} is not an index or a name")
    return v


def _slice_sample(v: object) -> int | str:
    if isinstance(v, bool) or not isinstance(v, (int, str)):
        raise TypeError(f"slice_sample {v!r} is not an index or a name")
    return v


def _optional_float(v: Any) -> float | None:
    return None if v is None else float(v)


def load_rois(
    path: str | os.PathLike[str],
    *,
    frame_shape: tuple[int, int] | None = None,
    num_planes: int | None = None,
) -> RoiSet:
    """An ROI file: napari-scanimage JSON, or an ImageJ ``.zip`` / ``.roi``."""
    from .analysis.rois import RoiSet

    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"ROI file {path} does not exist")
    if path.suffix.lower() in (".zip", ".roi"):
        return RoiSet.from_imagej(path, frame_shape=frame_shape, num_planes=num_planes)
    return RoiSet.load(path, frame_shape=frame_shape, num_planes=num_planes)
