"""Time per time-slider step in a real napari viewer, with the plugin's docks open and closed.

Run from the repository root (a virtual X server is started when there is no display)::

    .venv/bin/python benchmarks/bench_scrub.py [--size {smoke,full}] [--dir DIR] [--steps N]

Full size: a 512×512 int16 volumetric ScanImage TIFF (2 channels, 4 planes + 1 flyback,
2 frames per slice, 60 volumes), generated once into ``--dir``.  The viewer opens it with the
plugin's reader (both channels, t/z/sample axes); each step moves the time slider by one and
waits until napari has sliced the new frames and the canvas has drawn them.  Reported: median
and 90th percentile per step with the docks (selection + metadata) open and closed, and the
step-rate ratio (docks closed time ÷ docks open time per round, median over 8 alternating
rounds; 1.0 = the docks cost nothing).  "Docks
open" is every dock of the demo — selection, metadata, ROI list and the trace plot showing 10
ROIs' curves with its cursor following the slider; a Shapes layer with those ROIs is in the
viewer in both configurations.
"""

from __future__ import annotations

import gc
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from _common import parser

from napari_scanimage.testing.tiff import SyntheticLayout, write_scanimage_tiff

SIZES = {
    "full": SyntheticLayout(
        channels=(1, 2),
        channel_names=("Green", "Red"),
        num_planes=4,
        frames_per_slice=2,
        num_flyback=1,
        num_volumes=60,
        height=512,
        width=512,
    ),
    "smoke": SyntheticLayout(
        channels=(1, 2),
        channel_names=("Green", "Red"),
        num_planes=2,
        frames_per_slice=2,
        num_flyback=1,
        num_volumes=12,
        height=128,
        width=128,
    ),
}


def ensure_file(folder: str, size: str) -> str:
    layout = SIZES[size]
    path = os.path.join(folder, f"scrub_{size}.tif")
    expected = layout.total_pages * (layout.height * layout.width * 2)
    if not (os.path.exists(path) and os.path.getsize(path) > expected):
        os.makedirs(folder, exist_ok=True)
        write_scanimage_tiff(path, layout)
    with open(path, "rb") as fh:  # page cache warm: we time the viewer, not the disk
        while fh.read(64 << 20):
            pass
    return path


def time_steps(viewer, steps: int) -> dict[str, list[float]]:
    """Seconds per time step over ``steps`` steps: "slice" (the slider moves, napari slices
    every layer and the docks react; synchronous) and "slice + draw" (until the window has
    repainted).
    """
    from qtpy.QtWidgets import QApplication

    canvas = viewer.window._qt_viewer.canvas.native
    n_times = int(viewer.dims.nsteps[0])
    out: dict[str, list[float]] = {"slice": [], "slice + draw": []}
    for k in range(steps + 3):
        t0 = time.perf_counter()
        viewer.dims.set_current_step(0, (viewer.dims.current_step[0] + 1) % n_times)
        t1 = time.perf_counter()
        QApplication.processEvents()
        canvas.repaint()  # draw now, not at the next idle moment
        QApplication.processEvents()
        if k >= 3:  # first steps warm caches and shaders
            out["slice"].append(t1 - t0)
            out["slice + draw"].append(time.perf_counter() - t0)
    return out


N_ROIS = 10


def add_rois(layer, frame_shape) -> None:
    """``N_ROIS`` ellipses spread over the frame, on plane 0."""
    H, W = frame_shape
    rng = np.random.default_rng(3)
    shapes = []
    for _ in range(N_ROIS):
        cy, cx, r = rng.uniform(0.15, 0.85) * H, rng.uniform(0.15, 0.85) * W, 0.04 * H
        box = np.array([[cy - r, cx - r], [cy - r, cx + r], [cy + r, cx + r], [cy + r, cx - r]])
        shapes.append(np.hstack([np.zeros((4, layer.ndim - 2)), box]))
    layer.add(shapes, shape_type="ellipse")
    layer.mode = "pan_zoom"


def run(path: str, steps: int, rounds: int = 8) -> dict[str, dict[str, list[float]]]:
    """Step timings with the docks closed and open (alternating rounds, so drift in the
    machine's speed hits both alike), and with the same frames as in-memory NumPy layers (what
    napari itself costs per step).
    """
    import napari

    from napari_scanimage import open_dataset
    from napari_scanimage.gui.demo import add_docks, settle

    viewer = napari.Viewer(show=True)
    viewer.window.resize(1500, 950)
    viewer.open(path, plugin="napari-scanimage")
    docks = add_docks(viewer)  # an ROI layer stays in the viewer in both configurations
    add_rois(docks["ROIs"].new_layer(), viewer.layers["Green"].data.shape[-2:])
    for dock in docks.values():
        viewer.window.remove_dock_widget(dock)
    results: dict[str, dict[str, list[float]]] = {}

    def add(name, got):
        for what, times in got.items():
            results.setdefault(name, {}).setdefault(what, []).extend(times)

    per_round = max(steps // rounds, 5)
    ratios: dict[str, list[float]] = {}
    for _ in range(rounds):
        closed = time_steps(viewer, per_round)
        add("docks closed", closed)
        docks = add_docks(viewer)
        settle(docks)  # the trace plot has its curves before timing starts
        assert len(docks["Traces"].curves) == N_ROIS
        opened = time_steps(viewer, per_round)
        add("docks open", opened)
        for what in opened:  # closed ÷ open in this round: drift between rounds cancels
            ratios.setdefault(what, []).append(
                statistics.median(closed[what]) / statistics.median(opened[what])
            )
        for dock in docks.values():
            viewer.window.remove_dock_widget(dock)
        del docks
        gc.collect()  # closed docks are gone (hidden ones idle; see gui/_idle.py)
    viewer.layers.clear()
    with open_dataset(path) as ds:  # the same frames, in memory: napari's own cost per step
        for c in range(ds.info.num_channels):
            viewer.add_image(
                ds.read(c, slice_sample="axis"),
                name=f"numpy {c}",
                blending="additive",
                contrast_limits=(0, 30000),
            )
    add("NumPy layers, no docks (napari alone)", time_steps(viewer, steps))
    viewer.close()
    results["ratios"] = ratios
    return results


def main(argv=None) -> int:
    p = parser(__doc__, SIZES, repeat=1)
    p.add_argument("--steps", type=int, default=160)
    p.add_argument("--rounds", type=int, default=8, help="alternating closed/open rounds")
    args = p.parse_args(argv)
    path = ensure_file(args.dir, args.size)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
    from virtual_display import virtual_display  # a developer tool, not in the package

    with virtual_display():
        results = run(path, args.steps, args.rounds)
    lay = SIZES[args.size]
    print(
        f"file: {path} ({lay.height}×{lay.width}, {lay.num_channels} channels, "
        f"{lay.num_planes} planes, {lay.frames_per_slice} samples, {lay.num_volumes} volumes)"
    )
    ratios = results.pop("ratios")
    print("\n| viewer | measured | median per step | p90 | steps/s |\n|---|---|---|---|---|")
    medians: dict[tuple[str, str], float] = {}
    for name, parts in results.items():
        for what, times in parts.items():
            med = medians[(name, what)] = statistics.median(times)
            print(
                f"| {name} | {what} | {med * 1e3:.2f} ms | "
                f"{np.percentile(times, 90) * 1e3:.2f} ms | {1 / med:.0f} |"
            )
    for what in ("slice", "slice + draw"):
        opened = medians[("docks open", what)]
        r = ratios[what]
        print(
            f"{what}: {opened * 1e3:.2f} ms per step with docks; step rate with docks open = "
            f"{statistics.median(r):.2f}× the rate with them closed (median of {len(r)} "
            f"alternating rounds, {min(r):.2f}–{max(r):.2f}); napari alone with in-memory "
            f"NumPy layers {medians[('NumPy layers, no docks (napari alone)', what)] * 1e3:.2f}"
            " ms"
        )
    print("targets: ≤ 20 ms median per step with docks open; ≥ 0.9× the rate without them")
    return 0


if __name__ == "__main__":
    sys.exit(main())
