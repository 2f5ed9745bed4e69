"""The ``napari-scanimage`` command.

Sub-commands
------------
info FILE [--json]
    Print what a recording holds (layout, rates, geometry).
demo [--screenshot PATH] [--sample NAME]
    Open napari with a sample recording and the plugin's docks; with ``--screenshot`` render the
    whole window to a PNG (on a virtual X server when there is no display) and exit.
register FILE|SESSION [--channel C] [--out SHIFTS.npz] [--bidi] [--max-shift N]
         [--piecewise [--block-size N|H,W]]
    Rigid (or piecewise-rigid) motion registration; stored in the session (sidecar) or
    written to ``--out``.
traces FILE|SESSION [--rois ROIS] --out CSV [--channel C] [--kind K] [--registration NPZ]
    Every ROI's trace as a tidy CSV (a session provides ROIs, registration and settings).
batch FOLDER|GLOB --session TEMPLATE.json [--register] [--out-dir DIR] [--force]
    The template session's registration, ROIs and settings applied to every recording found,
    many at once on a dask cluster (a local one by default); resumable, with a manifest
    ``batch.json`` (see :mod:`napari_scanimage.batch`).
export-nwb SESSION --out FILE.nwb
    The session's recording (imaging data written in chunks), ROIs, traces and shifts as NWB
    (needs the ``nwb`` extra: pynwb).

``traces`` and ``batch`` run on a dask cluster with ``--scheduler ADDRESS`` (a running
scheduler) or ``--workers N`` (local worker processes for this run); results are identical.
``batch`` always runs on one (local workers, one per CPU up to 4, when neither is given).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import ScanImageError

if TYPE_CHECKING:
    from distributed import Client

    from ._core.dataset import Dataset
    from .session import Session

__all__ = ["main"]


def _info(args: argparse.Namespace) -> int:
    from ._core.dataset import open_dataset

    with open_dataset(args.file) as ds:
        info = ds.info
        record: dict[str, Any] = {
            "files": [str(p) for p in ds.paths],
            "version": info.version,
            "channel_names": list(info.channel_names),
            "channel_ids": list(info.channel_ids),
            "num_volumes": info.num_volumes,
            "num_planes": info.num_planes,
            "frames_per_slice": info.frames_per_slice,
            "num_flyback": info.num_flyback,
            "frame_shape": list(info.frame_shape or ()),
            "dtype": str(info.dtype),
            "frame_rate": info.frame_rate,
            "volume_rate": info.volume_rate,
            "pixel_size_um": list(info.pixel_size_um) if info.pixel_size_um else None,
            "z_step_um": info.z_step_um,
            "bidirectional": info.bidirectional,
            "mroi": info.mroi,
            "is_flim": info.is_flim,
        }
        if info.mroi:
            try:
                record["fields"] = [
                    {
                        "name": f.name,
                        "shape": list(f.shape),
                        "planes": list(f.planes),
                        "center_xy_um": list(f.center_xy_um),
                        "size_xy_um": list(f.size_xy_um),
                    }
                    for f in ds.fields
                ]
            except ScanImageError as exc:  # whole pages still read
                record["fields"] = f"not split: {exc}"
        if ds.is_siff:
            flim = ds.flim
            record["siff"] = {
                "num_bins": flim.num_bins,
                "bin_width_ps": flim.bin_width_ps,
                "laser_period_ps": flim.laser_period_ps,
                "photon_encoding": sorted({"raw", "compressed"} & set(_encodings(ds))),
            }
    if args.json:
        print(json.dumps(record, indent=2))
    else:
        width = max(map(len, record))
        for key, value in record.items():
            print(f"{key:<{width}}  {value}")
    return 0


def _encodings(ds: Dataset) -> list[str]:
    names = {0: "raw", 1: "compressed"}
    return [
        names[int(k)]
        for _, _, ix in ds.file_indexes()
        if ix.siff_flags is not None
        for k in set(ix.siff_flags.tolist())
        if int(k) in names
    ]


def _demo(args: argparse.Namespace) -> int:
    from .gui.demo import run_demo

    return run_demo(screenshot=args.screenshot, sample=args.sample)


# -- analysis commands ----------------------------------------------------------------------
SCHEDULER_TIMEOUT_S = 3
# local worker processes of a batch without --workers/--scheduler: one per CPU, at most 4
# (about 0.4 GB each; --workers N for more)
DEFAULT_BATCH_WORKERS = max(1, min(4, os.cpu_count() or 1))
TRACE_KINDS = ("mean", "sum", "dff", "lifetime", "phasor")


class _Progress:
    """Line-based progress on stderr: one line per tenth of the work."""

    def __init__(self, label: str) -> None:
        self.label, self.step, self.t0 = label, -1, time.monotonic()

    def __call__(self, done: int, total: int) -> None:
        if total <= 0:
            return
        step = 10 * done // total
        if step != self.step:
            self.step = step
            print(
                f"{self.label}: {done}/{total} ({100 * done // total}%, "
                f"{time.monotonic() - self.t0:.1f} s)",
                file=sys.stderr,
                flush=True,
            )


def _channel_arg(text: str) -> int | str:
    return int(text) if text.strip().lstrip("-").isdigit() else text


def _is_session(path: Path) -> bool:
    return path.suffix.lower() == ".json"


def _target_session(target: str) -> Session:
    from .session import Session

    path = Path(target)
    if _is_session(path):
        return Session.load(path)
    if not path.is_file():
        raise ScanImageError(
            f"{path} does not exist; give a ScanImage .tif/.siff file or a session .json"
        )
    return Session(sources=[path])


def _check_out(path: Path, option: str) -> Path:
    if path.is_dir():
        raise ScanImageError(f"{option} {path} is a folder; give a file name")
    if not path.absolute().parent.is_dir():
        raise ScanImageError(
            f"the folder of {option} {path} does not exist; create it or choose another {option}"
        )
    return path


@contextlib.contextmanager
def _scheduler(args: argparse.Namespace) -> Iterator[Client | None]:
    """None (in-process), or a dask client on ``--scheduler`` / a ``--workers`` cluster."""
    address, workers = args.scheduler, args.workers
    if address and workers:
        raise ScanImageError("give --scheduler or --workers, not both")
    if not address and not workers:
        yield None
        return
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise ScanImageError(
            "--scheduler and --workers need the 'distributed' package: pip install distributed"
        ) from None
    if address:
        try:
            # (distributed's Client and LocalCluster have no annotations)
            client = Client(address, timeout=SCHEDULER_TIMEOUT_S)  # type: ignore[no-untyped-call]
        except (OSError, TimeoutError, ValueError) as exc:
            why = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise ScanImageError(
                f"cannot reach the dask scheduler at {address} within "
                f"{SCHEDULER_TIMEOUT_S} s ({why}); check that it is running and"
                " the address is right, or drop --scheduler"
            ) from None
        try:
            yield client
        finally:
            client.close()  # type: ignore[no-untyped-call]
        return
    if workers < 1:
        raise ScanImageError(f"--workers must be at least 1, got {workers}")
    print(f"starting {workers} local worker process(es)", file=sys.stderr, flush=True)
    try:
        cluster = LocalCluster(  # type: ignore[no-untyped-call]
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            # the scheduler's HTTP server on a free port: another cluster on this machine
            # (another run) holds the default 8787
            scheduler_kwargs={"dashboard_address": ":0"},
        )
    except (OSError, RuntimeError, TimeoutError) as exc:
        raise ScanImageError(
            f"could not start {workers} local dask worker(s) ({exc}); try "
            "fewer --workers or run without them"
        ) from None
    try:
        with Client(cluster) as client:  # type: ignore[no-untyped-call]
            yield client
    finally:
        cluster.close()


def _apply_trace_args(session: Session, args: argparse.Namespace, dataset: Dataset) -> None:
    from dataclasses import replace

    from .analysis.registration import Registration
    from .session import load_rois

    if args.channel is not None:
        session.trace = replace(session.trace, channel=_channel_arg(args.channel))
    if args.kind is not None:
        session.trace = replace(session.trace, kind=args.kind)
    if args.rois is not None:
        session.roi_set = load_rois(
            args.rois, frame_shape=dataset.info.frame_shape, num_planes=dataset.info.num_planes
        )
    if args.registration is not None:
        if not Path(args.registration).is_file():
            raise ScanImageError(
                f"registration file {args.registration} does not exist; run "
                "'napari-scanimage register' first"
            )
        session.registration_result = Registration.load(args.registration)
    if session.roi_set is None:
        raise ScanImageError("no ROIs: give --rois ROIS.json|.zip (or a session with ROIs)")


def _field_view(ds: Dataset, args: argparse.Namespace) -> Dataset:
    """The recording, or one multi-ROI field of it (``--field``)."""
    if args.field is None:
        return ds
    if _is_session(Path(args.target)):
        raise ScanImageError("--field works on a recording file, not on a session")
    return ds.field(int(args.field) if args.field.lstrip("-").isdigit() else args.field)


def _traces(args: argparse.Namespace) -> int:
    out = _check_out(Path(args.out), "--out")
    session = _target_session(args.target)
    with session.open_dataset() as whole:
        ds = _field_view(whole, args)
        _apply_trace_args(session, args, ds)
        with _scheduler(args) as scheduler:
            result = session.run_traces(scheduler, dataset=ds, progress=_Progress("traces"))
    result.to_csv(out)
    print(f"wrote {len(result.names)} ROI trace(s) × {len(result.time)} time points to {out}")
    return 0


def _register(args: argparse.Namespace) -> int:
    from .analysis.registration import register
    from .session import Session

    target = Path(args.target)
    is_session = _is_session(target)
    out = None if args.out is None else _check_out(Path(args.out), "--out")
    if out is None and not is_session:
        field = "" if args.field is None else f".field-{args.field}"
        out = target.with_name(f"{target.stem}{field}.registration.npz")
    session = Session.load(target) if is_session else _target_session(args.target)
    channel = session.channel if args.channel is None else _channel_arg(args.channel)
    with session.open_dataset() as whole:
        reg = register(
            _field_view(whole, args),
            channel=channel,
            bidi=args.bidi,
            max_shift=args.max_shift,
            piecewise=args.piecewise or args.block_size is not None,
            block_size=args.block_size,
            progress=_Progress("register"),
        )
    if out is not None:
        reg.save(out)
        print(f"wrote the registration to {out}")
    if is_session:
        session.registration_result = reg
        session.save(target)  # where it was loaded from
        print(f"stored the registration in {session.path}")
    shifts = reg.shifts.reshape(-1, 2)
    print(f"largest shift {abs(shifts).max(initial=0):.2f} px, bidi phase {reg.bidi_phase:.2f}")
    if reg.block_shifts is not None and reg.block_flags is not None:
        grid = reg.block_shifts.shape[2:4]
        print(
            f"piecewise: {grid[0]}×{grid[1]} blocks of {reg.settings.get('block_size')} px, "
            f"largest residual {abs(reg.block_shifts).max(initial=0):.2f} px, "
            f"{int((reg.block_flags == 3).sum())} block estimate(s) fell back to the rigid shift"
        )
    return 0


def _block_size(text: str) -> int | tuple[int, int]:
    """``--block-size``: ``N`` (square blocks) or ``H,W`` pixels."""
    try:
        sides = [int(v) for v in text.replace("x", ",").split(",")]
    except ValueError:
        sides = []
    if len(sides) not in (1, 2):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a block size; give N or H,W in pixels (e.g. 128 or 128,96)"
        )
    return sides[0] if len(sides) == 1 else (sides[0], sides[1])


def _export_nwb(args: argparse.Namespace) -> int:
    from .nwb import export_nwb
    from .session import Session

    out = _check_out(Path(args.out), "--out")
    session = Session.load(args.session)
    with session.open_dataset() as ds:
        result = (
            session.run_traces(None, dataset=ds, progress=_Progress("traces"))
            if session.roi_set is not None
            else None
        )
        export_nwb(
            ds,
            out,
            rois=session.roi_set,
            traces=result,
            registration=session.registration_result,
            progress=_Progress("export-nwb"),
        )
    print(f"wrote {out}")
    return 0


def _batch(args: argparse.Namespace) -> int:
    from .batch import prepare_batch, run_batch

    plan = prepare_batch(
        args.inputs,
        args.session,
        out_dir=args.out_dir,
        register=args.register,
        force=args.force,
    )
    if plan.registration is None:  # said, so that unregistered traces are never a surprise
        why = "--no-register" if args.register is False else "the template holds none"
        print(f"recordings are not registered ({why}; --register registers them)", file=sys.stderr)
    if not args.scheduler and not args.workers:  # a local cluster by default
        args.workers = DEFAULT_BATCH_WORKERS
    with _scheduler(args) as client:
        assert client is not None  # (one of --scheduler / --workers is set)
        result = run_batch(plan, client)
    ok, skipped, failed = (result.count(s) for s in ("ok", "skipped", "failed"))
    print(
        f"{ok} recording(s) analysed, {skipped} skipped (unchanged), {failed} failed; "
        f"results and {result.manifest.name} in {plan.out_dir}"
    )
    for e in result.entries:
        if e["status"] == "failed":
            print(f"failed: {e['source']}: {e['error']}")
    if failed:
        print(
            f"napari-scanimage: error: {failed} of {len(result.entries)} recording(s) failed "
            f"(listed above and in {result.manifest}); fix or remove them and rerun",
            file=sys.stderr,
        )
    return 1 if failed else 0


def _add_cluster_options(p: argparse.ArgumentParser) -> None:
    g = p.add_mutually_exclusive_group()
    g.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="run on the dask scheduler at ADDRESS (e.g. tcp://host:8786)",
    )
    g.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="run on N local worker processes started for this run",
    )


def _add_analysis_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("register", help="rigid or piecewise motion registration of a recording")
    p.add_argument(
        "target",
        metavar="FILE|SESSION",
        help="a recording, or a session .json (the result is stored in it)",
    )
    p.add_argument("--channel", help="channel index or name the shifts are estimated on")
    p.add_argument(
        "--out",
        metavar="SHIFTS.npz",
        help="output file (default <file stem>.registration.npz next to FILE)",
    )
    p.add_argument("--field", help="multi-ROI recordings: field index or name")
    p.add_argument(
        "--bidi", action="store_true", help="estimate and correct the bidirectional line offset"
    )
    p.add_argument("--max-shift", type=float, metavar="N", help="largest shift searched (px)")
    p.add_argument(
        "--piecewise",
        action="store_true",
        help="piecewise-rigid: also a residual shift per block of the frame (smooth field)",
    )
    p.add_argument(
        "--block-size",
        type=_block_size,
        metavar="N|H,W",
        help="piecewise block size in pixels (implies --piecewise; default 128, less on "
        "frames under 256 px)",
    )
    p.set_defaults(func=_register)
    p = sub.add_parser("traces", help="ROI traces of a recording as a tidy CSV")
    p.add_argument("target", metavar="FILE|SESSION", help="a recording or a session .json")
    p.add_argument("--rois", metavar="ROIS", help="ROI file (.json, or ImageJ .zip / .roi)")
    p.add_argument("--out", required=True, metavar="CSV", help="output CSV file")
    p.add_argument("--channel", help="channel index or name")
    p.add_argument("--kind", choices=TRACE_KINDS, help="trace kind (default: session's, mean)")
    p.add_argument("--registration", metavar="SHIFTS.npz", help="registration to apply")
    p.add_argument("--field", help="multi-ROI recordings: field index or name")
    _add_cluster_options(p)
    p.set_defaults(func=_traces)
    p = sub.add_parser("export-nwb", help="a session's recording, ROIs, traces and shifts as NWB")
    p.add_argument("session", metavar="SESSION", help="a session .json")
    p.add_argument("--out", required=True, metavar="FILE.nwb", help="output NWB file")
    p.set_defaults(func=_export_nwb)
    p = sub.add_parser(
        "batch",
        help="a template session's registration and traces for many recordings, on a dask cluster",
    )
    p.add_argument("inputs", metavar="FOLDER|GLOB", help="folder or glob of recordings")
    p.add_argument(
        "--session",
        required=True,
        metavar="TEMPLATE.json",
        help="session whose ROIs, trace settings and registration settings are applied",
    )
    reg = p.add_mutually_exclusive_group()
    reg.add_argument(
        "--register",
        action="store_true",
        default=None,
        help="register every recording before its traces (the default when the template "
        "session holds a registration: its channel, max shift and bidi settings are used)",
    )
    reg.add_argument(
        "--no-register",
        dest="register",
        action="store_false",
        help="traces of the unregistered frames, even when the template holds a registration",
    )
    p.add_argument(
        "--out-dir",
        metavar="DIR",
        help="folder for <stem>.registration.npz, <stem>_traces.csv and batch.json "
        "(default: the recordings' folder)",
    )
    p.add_argument(
        "--force",
        action="store_true",
        help="recompute every recording (default: skip those whose files and outputs are "
        "unchanged since the last run, as batch.json records)",
    )
    _add_cluster_options(p)
    p.set_defaults(func=_batch)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="napari-scanimage", description="ScanImage recordings in napari and scripts"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("info", help="print the layout and metadata of a recording")
    p.add_argument("file", help="a ScanImage .tif (any file of a series) or .siff")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_info)
    p = sub.add_parser("demo", help="open napari with sample data and every dock")
    p.add_argument(
        "--screenshot",
        metavar="PATH",
        help="render the window to PATH (PNG) and exit; works without a display",
    )
    p.add_argument(
        "--sample",
        choices=("volume_2ch", "flim_2ch", "mroi_3field"),
        default="volume_2ch",
        help="which sample recording to open (default: the volumetric TIFF)",
    )
    p.set_defaults(func=_demo)
    _add_analysis_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``napari-scanimage`` command.

    Parameters
    ----------
    argv : sequence of str, optional
        The arguments after the program name; default ``sys.argv[1:]``.

    Returns
    -------
    int
        The exit status: 0 on success, 1 when some recordings of a batch failed, 2 on an
        error (printed to stderr).
    """
    args = build_parser().parse_args(argv)
    try:
        code: int = args.func(args)
        return code
    except (ScanImageError, OSError) as exc:
        print(f"napari-scanimage: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
