"""Benchmark automatic ROI detection (``nsi.detect_rois`` with default settings) on generated
recordings of cells with known footprints (``napari_scanimage.testing.cells``).

Run from the repository root::

    .venv/bin/python benchmarks/bench_detection.py [--size {smoke,full}]
        [--suite2p-python /work/benchenv/.venv/bin/python]

Full size: 1 500 frames of 256×256 at 30 Hz (50 s; somata 8–14 px, sparse calcium
transients, neuropil, Poisson noise) — planar; volumetric (3 planes, 1 500 volumes, scored
per plane); and moving (drift up to 6 px) detected on the frames registered by
``nsi.register`` (and, for comparison, unregistered).  Smoke: 300 frames of 96×96.  Rows: F1,
precision and recall for active cells at IoU ≥ 0.3 (targets F1 ≥ 0.8, time < 60 s at full
size).  With ``--suite2p-python`` (an interpreter where suite2p is installed) suite2p's
detection with its default settings runs on the planar movie in a subprocess and is scored
the same way; without it that row is skipped with a message.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import parser

import napari_scanimage as nsi
from napari_scanimage.testing.cells import write_cell_movie

SIZES = {"full": (1500, 256), "smoke": (300, 96)}
RUNNER = Path(__file__).with_name("_suite2p_detection.py")


def row(name: str, score, seconds: float) -> str:
    return (
        f"| {name} | {score.f1:.3f} | {score.precision:.3f} | {score.recall:.3f} "
        f"| {score.matched}/{score.true} | {seconds:.1f} |"
    )


def run(kind: str, frames: int, size: int, folder: Path) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    extra = {"volume": {"num_planes": 3}, "moving": {"drift_px": 6.0}}.get(kind, {})
    movie = write_cell_movie(folder / "movie.tif", num_frames=frames, size=size, **extra)
    out = []
    with nsi.open_dataset(movie.path) as ds:
        registration = None
        t0 = time.perf_counter()
        if kind == "moving":
            registration = nsi.register(ds)
        rois = nsi.detect_rois(ds, registration=registration)
        seconds = time.perf_counter() - t0
        if kind == "volume":
            for z in range(ds.info.num_planes):
                out.append(row(f"volume, plane {z}", movie.score(rois, plane=z), seconds))
        else:
            name = "moving, registered (incl. register)" if kind == "moving" else kind
            out.append(row(name, movie.score(rois), seconds))
        if kind == "moving":
            t0 = time.perf_counter()
            raw = nsi.detect_rois(ds)
            out.append(row("moving, unregistered", movie.score(raw), time.perf_counter() - t0))
        if kind == "planar":
            frames_array = ds.read(0).reshape(frames, size, size)
            np.save(folder / "movie.npy", frames_array.astype(np.int16))
            out.append(f"@{folder / 'movie.npy'}")
    run.movies[kind] = movie  # type: ignore[attr-defined]
    return out


run.movies = {}  # type: ignore[attr-defined]


def suite2p_row(python: str | None, folder: Path, movie) -> str:
    if not python or not Path(python).exists():
        return f"suite2p: skipped (no interpreter with suite2p at {python!r})"
    out = folder / "suite2p.npz"
    t0 = time.perf_counter()
    proc = subprocess.run(
        [python, str(RUNNER), str(folder / "movie.npy"), str(out), "--fs", "30", "--tau", "1.0"],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        return f"suite2p: failed ({proc.stderr.strip().splitlines()[-1:]})"
    got = np.load(out)
    seconds = time.perf_counter() - t0
    cells = movie.score(got["labels"][:, None])
    everything = movie.score(got["all_labels"][:, None])
    return "\n".join(
        [
            row("suite2p 1.1 defaults, cells", cells, seconds),
            row("suite2p 1.1 defaults, all ROIs", everything, seconds),
        ]
    )


def main() -> None:
    p = parser(__doc__, SIZES, 1)
    p.add_argument("--suite2p-python", default=None)
    args = p.parse_args()
    frames, size = SIZES[args.size]
    base = Path(args.dir) / f"detection_{args.size}"
    print(f"{frames} frames of {size}×{size}, defaults; F1 for active cells at IoU ≥ 0.3\n")
    print("| recording | F1 | precision | recall | matched | seconds |")
    print("|---|---|---|---|---|---|")
    for kind in ("planar", "volume", "moving"):
        for line in run(kind, frames, size, base / kind):
            if not line.startswith("@"):
                print(line)
    line = suite2p_row(args.suite2p_python, base / "planar", run.movies["planar"])
    print(line)
    sys.stdout.flush()


if __name__ == "__main__":
    os.environ.setdefault("TMPDIR", tempfile.gettempdir())
    main()
