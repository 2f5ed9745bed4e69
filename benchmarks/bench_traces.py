"""Benchmark ROI traces: 50 ROIs over a > 2 GB ScanImage TIFF against reading the same frames.

Run from the repository root::

    .venv/bin/python benchmarks/bench_traces.py [--size {smoke,full}] [--dir DIR] [--repeat N]

Full size reuses (or writes) the big file of ``bench_tiff.py``: 512×512 int16, 2 channels ×
(4 planes + 1 flyback), 420 volumes, > 2 GiB.  Rows, medians of ``--repeat`` runs with the page
cache warm:

* plain read: ``Dataset.read`` of every frame of channel 0 (all planes) — the reference;
* bare memory-map copy of the same pages (the physical limit);
* ``traces(kind="sum")`` and ``traces(kind="dff")`` of 50 disc ROIs (radius 6–10 px) on the
  same frames; throughput ratio = plain-read time ÷ traces time (target ≥ 0.7);
* peak RSS growth of a traces call in a fresh subprocess (bounded by the block size).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
from _common import median_time, parser

from napari_scanimage import open_dataset
from napari_scanimage.analysis.traces import traces
from napari_scanimage.testing.tiff import SyntheticLayout, write_scanimage_tiff

_BIG = dict(channels=(1, 2), num_planes=4, num_flyback=1, dtype="int16")
SIZES = {
    "full": ("full_big.tif", SyntheticLayout(**_BIG, num_volumes=420, height=512, width=512)),
    "smoke": ("smoke_traces.tif", SyntheticLayout(**_BIG, num_volumes=20, height=128, width=128)),
}
N_ROIS = 50
MiB = 2**20


def ensure_file(folder: str, size: str) -> str:
    name, layout = SIZES[size]
    path = os.path.join(folder, name)
    expected = layout.total_pages * layout.height * layout.width * 2
    if not (os.path.exists(path) and os.path.getsize(path) > expected):
        os.makedirs(folder, exist_ok=True)
        write_scanimage_tiff(path, layout)
    with open(path, "rb") as fh:
        while fh.read(64 * MiB):
            pass
    return path


def disc_masks(shape, n=N_ROIS, seed=5) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    out = {}
    for k in range(n):
        r = rng.uniform(6, 10) * shape[0] / 512
        cy, cx = rng.uniform(r, shape[0] - r), rng.uniform(r, shape[1] - r)
        out[f"cell {k + 1}"] = (yy - cy) ** 2 + (xx - cx) ** 2 <= max(r, 1.5) ** 2
    return out


def memmap_copy(ds) -> np.ndarray:
    index = ds._indexes[0]
    sel = ds.selection(0, slice_sample=0)
    pages = sel.pages(ds.layout, 0, ds.layout.num_volumes).reshape(-1)
    mm = np.memmap(index.path, dtype=np.uint8, mode="r")
    frame = index.shape[0] * index.shape[1] * index.dtype.itemsize
    out = np.empty((len(pages), frame), np.uint8)
    for i, off in enumerate(index.data_offsets[pages].tolist()):
        out[i] = mm[off : off + frame]
    return out


def rss_child(path: str) -> None:
    def hwm() -> int:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
        return 0

    ds = open_dataset(path)
    masks = disc_masks(ds.info.frame_shape)
    traces(ds, masks, kind="sum", times=slice(0, 2))
    before = hwm()
    traces(ds, masks, kind="sum")
    print(json.dumps({"grow": hwm() - before}))


def main(argv=None) -> int:
    args = parser(__doc__, SIZES, repeat=3).parse_args(argv)
    if args.rss_child:
        rss_child(args.rss_child)
        return 0
    path = ensure_file(args.dir, args.size)
    ds = open_dataset(path)
    masks = disc_masks(ds.info.frame_shape)
    n_frames = ds.layout.num_volumes * ds.layout.num_planes
    nbytes = n_frames * int(np.prod(ds.info.frame_shape)) * 2
    got = traces(ds, masks, kind="sum")
    frames = ds.read(0)
    check = [
        frames.reshape(len(frames), -1, *ds.info.frame_shape)[:, :, m].sum(axis=(1, 2))
        for m in list(masks.values())[:3]
    ]
    assert np.array_equal(got.values[:3], np.array(check, dtype=float)), "traces disagree"
    del frames
    t_read = median_time(lambda: ds.read(0), args.repeat)
    t_mm = median_time(lambda: memmap_copy(ds), args.repeat)
    t_sum = median_time(lambda: traces(ds, masks, kind="sum"), args.repeat)
    t_dff = median_time(lambda: traces(ds, masks, kind="dff", window_s=30.0), args.repeat)
    res = subprocess.run(
        [sys.executable, __file__, "--rss-child", path], capture_output=True, text=True, check=True
    )
    grow = json.loads(res.stdout.strip().splitlines()[-1])["grow"]
    print(
        f"file: {path} ({os.path.getsize(path) / 2**30:.2f} GiB); channel 0: {n_frames} "
        f"frames, {nbytes / MiB:.0f} MiB; {N_ROIS} ROIs"
    )
    print("\n| operation | time | MiB/s | ratio to plain read | target |\n|---|---|---|---|---|")
    for name, t, target in (
        ("plain read (Dataset.read)", t_read, ""),
        ("bare memory-map copy", t_mm, ""),
        (f"traces, {N_ROIS} ROIs, sum", t_sum, "≥ 0.7"),
        (f"traces, {N_ROIS} ROIs, dF/F (30 s running F0)", t_dff, "≥ 0.7"),
    ):
        print(
            f"| {name} | {t * 1e3:.0f} ms | {nbytes / MiB / t:,.0f} | {t_read / t:.2f}× | "
            f"{target} |"
        )
    print(
        f"| peak RSS growth of one traces call (fresh process) | {grow / MiB:.0f} MiB | | | "
        f"bounded (file {os.path.getsize(path) / MiB:.0f} MiB) |"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
