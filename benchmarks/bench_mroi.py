"""Benchmark multi-ROI field reads and the refresh of a file being written.

Run from the repository root::

    .venv/bin/python benchmarks/bench_mroi.py [--size {smoke,full}] [--dir DIR] [--repeat N]

Full size: a multi-ROI ScanImage TIFF of 4 fields (512 wide, 256/256/128/128 rows) stacked
with 16 fly-to lines, 1 channel, 1 600 pages of 512×816 int16 (1.3 GiB).  Medians of
``--repeat`` runs with the page cache warm:

* whole pages: ``Dataset.read`` of every page — the reference;
* one field (``read(field=k)``) of every page: ideal ratio = the field's share of the page
  bytes (each field's band of rows is read, nothing else);
* all four fields one after the other: ratio to whole pages (target ≥ 0.8: splitting costs
  no more than reading the pages);
* ``Dataset.refresh()`` after 10 more pages were appended, against ``open_dataset`` of the
  whole file (the index resumes where it stopped).
"""

from __future__ import annotations

import os
import shutil
import time
import warnings

from _common import median_time, parser

from napari_scanimage import open_dataset
from napari_scanimage.testing.mroi import FieldSpec, write_mroi_tiff

MiB = 2**20
_FIELDS = (
    FieldSpec("a", 512, 256, (-3.0, 0.0), (4.0, 2.0)),
    FieldSpec("b", 512, 256, (1.0, 0.0), (4.0, 2.0)),
    FieldSpec("c", 512, 128, (5.0, 0.0), (4.0, 1.0)),
    FieldSpec("d", 512, 128, (9.0, 0.0), (4.0, 1.0)),
)
SIZES = {
    "full": ("full_mroi.tif", _FIELDS, 1600),
    "smoke": (
        "smoke_mroi.tif",
        tuple(FieldSpec(f.name, 64, f.height // 8, f.center_deg, f.size_deg) for f in _FIELDS),
        40,
    ),
}


def ensure_file(folder: str, size: str) -> str:
    name, fields, pages = SIZES[size]
    path = os.path.join(folder, name)
    if not os.path.exists(path):
        os.makedirs(folder, exist_ok=True)
        write_mroi_tiff(
            path + ".part",
            fields,
            fly_to_lines=16,
            channels=(1,),
            channel_names=("Green",),
            num_planes=1,
            num_flyback=0,
            num_volumes=pages,
            bidirectional=False,
        )
        os.replace(path + ".part", path)
    with open(path, "rb") as fh:
        while fh.read(64 * MiB):
            pass
    return path


def main(argv=None) -> int:
    args = parser(__doc__, SIZES, repeat=5).parse_args(argv)
    path = ensure_file(args.dir, args.size)
    ds = open_dataset(path)
    pages = ds.layout.num_volumes
    page_bytes = ds.info.frame_shape[0] * ds.info.frame_shape[1] * 2
    whole = median_time(lambda: ds.read(0), args.repeat)
    rows = [("whole pages (reference)", whole, 1.0, "")]
    for k, f in enumerate(ds.fields[:2]):
        t = median_time(lambda k=k: ds.read(0, field=k), args.repeat)
        share = f.height * ds.info.frame_shape[1] * 2 / page_bytes
        rows.append(
            (f"field {f.name} ({f.height}×{f.width})", t, whole / t, f"ideal {1 / share:.2f}×")
        )
    every = median_time(lambda: [ds.read(0, field=k) for k in range(len(ds.fields))], args.repeat)
    rows.append(("all fields, one by one", every, whole / every, "target ≥ 0.8"))
    ds.close()

    # refresh after 10 pages appended vs opening the whole file afresh
    live = os.path.join(args.dir, "live_" + os.path.basename(path))
    size = os.path.getsize(path)
    cut = size - (size - 16) // pages * 10  # about 10 pages short of the end
    refresh_times, open_times = [], []
    for _ in range(args.repeat):
        with open(path, "rb") as src, open(live, "wb") as dst:
            shutil.copyfileobj(src, dst, 64 * MiB)
            dst.truncate(cut)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            grow = open_dataset(live)
        with open(path, "rb") as src, open(live, "r+b") as dst:
            src.seek(cut)
            dst.seek(cut)
            dst.write(src.read())
        t0 = time.perf_counter()
        added = grow.refresh()
        refresh_times.append(time.perf_counter() - t0)
        grow.close()
        t0 = time.perf_counter()
        open_dataset(live).close()
        open_times.append(time.perf_counter() - t0)
    os.unlink(live)
    refresh, fresh = (
        sorted(refresh_times)[len(refresh_times) // 2],
        sorted(open_times)[len(open_times) // 2],
    )
    rows.append((f"refresh after {added} new pages", refresh, fresh / refresh, "vs open_dataset"))

    print(
        f"{os.path.basename(path)}: {pages} pages of {ds.info.frame_shape}, "
        f"{os.path.getsize(path) / MiB:.0f} MiB, {len(ds.fields)} fields\n"
    )
    print("| measurement | median s | speed vs reference | note |\n|---|---|---|---|")
    for name, t, ratio, note in rows:
        print(f"| {name} | {t:.4f} | {ratio:.2f}× | {note} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
