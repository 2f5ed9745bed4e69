"""The client side of a batch: what to do (:func:`prepare_batch`), and running it on a
dask.distributed client (:func:`run_batch`) while writing outputs and the manifest as each
recording finishes.
"""

from __future__ import annotations

import hashlib
import json
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from ..errors import ScanImageError
from .manifest import (
    MANIFEST,
    find_recordings,
    fingerprint,
    now,
    read_manifest,
    source_key,
    write_manifest,
)
from .tasks import (
    RecordingFiles,
    RegistrationSettings,
    assemble,
    block_shifts,
    recording_traces,
    reference,
    register_whole,
    registration_job,
)

if TYPE_CHECKING:
    from distributed import Client, Future

    from ..session import Session

__all__ = ["BatchPlan", "BatchResult", "prepare_batch", "registration_settings", "run_batch"]

TASK_RETRIES = 1  # a task that raised (e.g. a passing network file system error) runs again
IN_FLIGHT_PER_THREAD = 2  # recordings submitted at once per worker thread of the cluster


def registration_settings(template: Session, register: bool | None) -> RegistrationSettings | None:
    """The registration every recording gets: the template's settings, or None.

    Parameters
    ----------
    template : Session
    register : bool or None
        True: register (the template's settings, or the defaults on the template's channel
        when it holds no registration); False: do not; None: register when the template
        holds a registration.
    """
    reg = template.registration_result
    if register is False or (register is None and reg is None):
        return None
    if reg is None:
        return RegistrationSettings(channel=template.channel)
    s = reg.settings
    planes = s.get("planes")
    if planes is not None and list(planes) == list(range(reg.num_planes)):
        planes = None  # every plane of the template: every plane of each recording
    extra: dict[str, Any] = {}
    # Options of register() the block-wise tasks do not reproduce go here: a recording with
    # any of them is registered by one register() call on a worker (tasks.register_whole).
    if s.get("piecewise"):
        extra["piecewise"] = True
        if s.get("block_size") is not None:
            extra["block_size"] = tuple(int(v) for v in s["block_size"])
    return RegistrationSettings(
        channel=int(s["channel"]) if "channel" in s else reg.channel,
        planes=None if planes is None else tuple(int(p) for p in planes),
        max_shift=s.get("max_shift"),
        subpixel=bool(s.get("subpixel", True)),
        bidi=bool(s.get("bidi", False)),
        extra=extra,
    )


@dataclass
class _Item:
    """One recording of the run."""

    index: int
    files: RecordingFiles
    outputs: list[Path]
    entry: dict[str, Any]
    registration: Future[Any] | None = None  # its registration task, kept until written


@dataclass
class BatchPlan:
    """What a batch run does: the template, the recordings and where results go."""

    template_path: Path
    template: Session
    out_dir: Path
    registration: RegistrationSettings | None
    settings_hash: str
    items: list[_Item] = field(default_factory=list)
    block_frames: int | None = None

    @property
    def manifest_path(self) -> Path:
        """``batch.json`` in the output folder."""
        return self.out_dir / MANIFEST


@dataclass
class BatchResult:
    """The manifest's entries after a run, and where it was written."""

    entries: list[dict[str, Any]]
    manifest: Path

    def count(self, status: str) -> int:
        """Recordings with this status ("ok", "failed", "skipped")."""
        return sum(e["status"] == status for e in self.entries)


def _settings_hash(template: Session, reg: RegistrationSettings | None) -> str:
    doc = {
        "rois": None if template.roi_set is None else template.roi_set.to_dict(),
        "trace": template.trace.to_dict(),
        "channel": template.channel,
        "slice_sample": template.slice_sample,
        "bin_width_ps": template.bin_width_ps,
        "irf_offset_ns": None if template.decay_fit is None else template.decay_fit.irf_offset_ns,
        "registration": None if reg is None else reg.kwargs(),
    }
    text = json.dumps(doc, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def prepare_batch(
    inputs: str,
    template_path: str | Path,
    *,
    out_dir: str | Path | None = None,
    register: bool | None = None,
    force: bool = False,
    block_frames: int | None = None,
) -> BatchPlan:
    """Read the template, find the recordings and decide which are skipped (no cluster yet).

    Parameters
    ----------
    inputs : str
        A folder, or a glob pattern, of ScanImage ``.tif`` / ``.tiff`` / ``.siff`` files.
    template_path : path
        A session whose ROIs, trace settings (and registration settings) are applied.
    out_dir : path, optional
        Where outputs and ``batch.json`` go (default: the recordings' folder); created.
    register : bool or None
        See :func:`registration_settings`.
    force : bool
        Recompute recordings whose outputs are up to date.
    block_frames : int, optional
        Time rows per registration task (default: about 64 MB of float32 frames).

    Raises
    ------
    ScanImageError
        The template has no ROIs, or no recording was found.
    """
    from ..session import Session

    template_path = Path(template_path).absolute()
    template = Session.load(template_path, require_sources=False)
    if template.roi_set is None:
        raise ScanImageError(
            f"the template session {template_path} has no ROIs; save one with ROIs first"
        )
    recordings = find_recordings(inputs)
    if not recordings:
        raise ScanImageError(
            f"no .tif, .tiff or .siff files found in {inputs}; give a folder or a glob "
            "pattern such as 'data/*.tif'"
        )
    base = Path(inputs) if Path(inputs).is_dir() else recordings[0][0].parent
    folder = Path(out_dir) if out_dir else base
    folder.mkdir(parents=True, exist_ok=True)
    reg = registration_settings(template, register)
    plan = BatchPlan(
        template_path, template, folder, reg, _settings_hash(template, reg), [], block_frames
    )
    previous = {} if force else read_manifest(plan.manifest_path)
    stems: dict[str, Path] = {}
    for k, paths in enumerate(recordings):
        stem = paths[0].stem
        outputs = [folder / f"{stem}_traces.csv"]
        if reg is not None:
            outputs.insert(0, folder / f"{stem}.registration.npz")
        entry: dict[str, Any] = {
            "source": source_key(paths),
            "status": None,
            "error": None,
            "outputs": [str(p) for p in outputs],
            "fingerprint": None,
            "started": now(),
            "finished": None,
        }
        try:
            entry["fingerprint"] = fingerprint(paths, plan.settings_hash)
        except OSError as exc:
            entry.update(status="failed", error=f"cannot read the recording: {exc}")
        if stem in stems and entry["status"] is None:
            entry.update(
                status="failed",
                error=f"{stems[stem].name} has the same name stem: its outputs would be "
                "overwritten; run the two in separate batches or rename one",
            )
        stems.setdefault(stem, paths[0])
        old = previous.get(json.dumps(entry["source"]))
        if (
            entry["status"] is None
            and old is not None
            and old.get("status") in ("ok", "skipped")
            and old.get("fingerprint") == entry["fingerprint"]
            and old.get("outputs") == entry["outputs"]
            and all(p.is_file() for p in outputs)
        ):
            entry["status"] = "skipped"
        if entry["status"] is not None:
            entry["finished"] = now()
        files = RecordingFiles(tuple(str(p) for p in paths), template.bin_width_ps)
        plan.items.append(_Item(k, files, outputs, entry))
    return plan


class _Bar:
    """An overall progress bar redrawn in place on a terminal (nothing elsewhere): recordings
    done, and the tasks done of those submitted, so that it moves within long recordings.
    """

    WIDTH = 30

    def __init__(self, stream: TextIO, total: int, enabled: bool) -> None:
        self.stream, self.total, self.enabled = stream, total, enabled
        self.done, self.t0 = 0, time.monotonic()
        self.tasks, self.tasks_done = 0, 0
        self.lock = threading.Lock()  # task callbacks draw from the client's thread

    def line(self, text: str) -> None:
        """Print a line above the bar."""
        with self.lock:
            if self.enabled:
                self.stream.write("\r\x1b[K")
            print(text, file=self.stream, flush=True)
            self._draw()

    def task_done(self, _: object = None) -> None:
        """Count a finished task (a future's done callback)."""
        with self.lock:
            self.tasks_done += 1
            self._draw()

    def draw(self) -> None:
        with self.lock:
            self._draw()

    def _draw(self) -> None:
        if not self.enabled:
            return
        filled = self.WIDTH * self.done // max(1, self.total)
        self.stream.write(
            f"\r[{'#' * filled}{'.' * (self.WIDTH - filled)}] {self.done}/{self.total} "
            f"recordings, {self.tasks_done}/{self.tasks} tasks, "
            f"{time.monotonic() - self.t0:.0f} s"
        )
        self.stream.flush()

    def close(self) -> None:
        with self.lock:
            if self.enabled:
                self.stream.write("\r\x1b[K")
                self.stream.flush()
            self.enabled = False  # (late callbacks draw nothing)


def _describe(client: Client) -> dict[str, Any]:
    cluster = getattr(client, "cluster", None)
    return {
        "address": client.scheduler_info().get("address"),
        "workers": len(client.scheduler_info().get("workers", {})),
        "cluster": type(cluster).__name__ if cluster is not None else "external scheduler",
    }


def _error_text(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def run_batch(
    plan: BatchPlan,
    client: Client,
    *,
    stream: TextIO | None = None,
    progress_bar: bool | None = None,
    on_finish: Callable[[dict[str, Any]], None] | None = None,
) -> BatchResult:
    """Run the plan's recordings on the client's cluster; write each one's outputs and the
    manifest as it finishes.

    Parameters
    ----------
    plan : BatchPlan
        From :func:`prepare_batch`.
    client : distributed.Client
    stream : text file, optional
        Where the line per recording (and the bar) go; default ``sys.stderr``.
    progress_bar : bool, optional
        Draw the overall bar (default: when ``stream`` is a terminal).
    on_finish : callable(entry), optional
        Called with each recording's manifest entry as it is recorded.

    Returns
    -------
    BatchResult
    """
    from distributed import as_completed

    stream = sys.stderr if stream is None else stream
    if progress_bar is None:
        progress_bar = bool(getattr(stream, "isatty", lambda: False)())
    items = plan.items
    n = len(items)
    bar = _Bar(stream, n, progress_bar)
    doc: dict[str, Any] = {
        "template": str(plan.template_path),
        "package_version": _package_version(),
        "scheduler": _describe(client),
        "started": now(),
        "finished": None,
        "recordings": [],
    }
    shipped = replace(plan.template, registration_result=None, sources=[])
    shipped.path = None
    run = uuid.uuid4().hex[:8]
    pending: dict[str, tuple[_Item, str]] = {}
    ac = as_completed()  # type: ignore[no-untyped-call]  # (distributed has no annotations)

    def submit(item: _Item, stage: str, fn: Callable[..., Any], *args: Any) -> Future[Any]:
        fut = client.submit(
            fn,
            *args,
            key=f"{fn.__name__}-{item.files.stem}-{item.index}-{stage}-{run}",
            priority=n - item.index,  # earlier recordings first: outputs come steadily
            retries=TASK_RETRIES,
        )
        if bar.enabled:
            with bar.lock:
                bar.tasks += 1
            fut.add_done_callback(bar.task_done)  # type: ignore[no-untyped-call]
        return fut

    def track(item: _Item, stage: str, fut: Future[Any]) -> None:
        pending[str(fut.key)] = (item, stage)
        ac.add(fut)  # type: ignore[no-untyped-call]

    def record(item: _Item, write: bool = True) -> None:
        if item.entry["finished"] is None:
            item.entry["finished"] = now()
        doc["recordings"] = [i.entry for i in items if i.entry["status"] is not None]
        if write:
            write_manifest(plan.manifest_path, doc)
        bar.done += 1
        e = item.entry
        name = Path(item.files.paths[0]).name
        if e["status"] == "failed":
            text = f"failed: {e['error']}"
        elif e["status"] == "skipped":
            text = "skipped (unchanged; --force recomputes)"
        else:
            text = "wrote " + ", ".join(Path(p).name for p in e["outputs"])
        bar.line(f"[{bar.done}/{n}] {name}: {text}")
        if on_finish is not None:
            on_finish(e)

    def start(item: _Item) -> None:
        item.entry["started"] = now()
        reg = plan.registration
        if reg is not None and reg.needs_whole():
            item.registration = submit(item, "register", register_whole, item.files, reg)
        if reg is None or item.registration is not None:
            traces = submit(
                item, "traces", recording_traces, item.files, shipped, item.registration
            )
            track(item, "traces", traces)
        else:
            job = submit(item, "plan", registration_job, item.files, reg, plan.block_frames)
            track(item, "plan", job)

    waiting = []
    for item in items:
        if item.entry["status"] is not None:  # skipped or failed before anything ran
            record(item, write=False)
        else:
            waiting.append(item)
    write_manifest(plan.manifest_path, doc)  # (once for all of those: each write is synced)
    waiting.reverse()  # (popped from the end: in order)

    def fill() -> None:
        # a few recordings per worker thread in flight: enough to keep every thread busy
        # while one waits for its reference, few enough that "started" means started and
        # that finished recordings come out steadily
        threads = sum(client.nthreads().values())  # type: ignore[no-untyped-call]
        while waiting and len(pending) < max(2, IN_FLIGHT_PER_THREAD * threads):
            start(waiting.pop())

    fill()
    bar.draw()
    for fut in ac:
        item, stage = pending.pop(str(fut.key))
        try:
            result = fut.result()
            if stage == "plan":  # the rest of this recording's graph, now that its size is known
                job = result
                ref = submit(item, "reference", reference, item.files, job)
                parts = [
                    submit(item, f"block{a}", block_shifts, item.files, job, (a, b), ref)
                    for a, b in job.blocks
                ]
                item.registration = submit(item, "assemble", assemble, item.files, job, ref, *parts)
                traces = submit(
                    item, "traces", recording_traces, item.files, shipped, item.registration
                )
                track(item, "traces", traces)
                continue
            if item.registration is not None:
                item.registration.result().save(item.outputs[0])
            result.to_csv(item.outputs[-1])
            item.entry["status"] = "ok"
        except Exception as exc:  # any error of this recording, raised on a worker or here
            item.entry.update(status="failed", error=_error_text(exc))
        item.registration = None  # releases its tasks' results on the cluster
        record(item)
        fill()
    bar.close()
    doc["finished"] = now()
    doc["recordings"] = [i.entry for i in items]
    write_manifest(plan.manifest_path, doc)
    return BatchResult(doc["recordings"], plan.manifest_path)


def _package_version() -> str:
    import napari_scanimage

    return str(napari_scanimage.__version__)
