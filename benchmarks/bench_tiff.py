"""Benchmark napari_scanimage's TIFF layer against tifffile, roiextractors and a bare memmap.

Run from the repository root (``--size smoke`` takes seconds, for CI; full needs ~2.3 GB)::

    .venv/bin/python benchmarks/bench_tiff.py [--size {smoke,full}] [--dir DIR] [--repeat N]

Two synthetic ScanImage 2016+ BigTIFFs are generated once into ``--dir`` (default
``<tmp>/napari_scanimage_bench``), reused while they have the size in their ``.json`` sidecar:

* big:   512x512 int16, 2 channels x (4 planes + 1 flyback), 420 volumes = 4200 pages, > 2 GiB;
* small: 16x16 int16, planar, 1 channel, 100 000 pages (index / open time).

``--size smoke`` keeps the structure but shrinks them (200 pages of 128x128, 5 000 pages).
Both files are read once before timing, so every reader is measured from the page cache.  One
markdown table of medians over ``--repeat`` runs is printed; the memory rows run in fresh
subprocesses.  No napari / Qt imports.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import warnings

import numpy as np
import tifffile

from napari_scanimage import open_dataset
from napari_scanimage.io.scanimage import acquisition_info, parse_value, read_static_metadata
from napari_scanimage.io.tiff import index_pages
from napari_scanimage.testing.tiff import SyntheticLayout, write_scanimage_tiff

_BIG = dict(channels=(1, 2), num_planes=4, num_flyback=1, dtype="int16")
_SMALL = dict(channels=(1,), num_planes=1, height=16, width=16, dtype="int16")
SIZES = {
    "full": (
        SyntheticLayout(**_BIG, num_volumes=420, height=512, width=512),
        SyntheticLayout(**_SMALL, num_volumes=100_000),
    ),
    "smoke": (
        SyntheticLayout(**_BIG, num_volumes=20, height=128, width=128),
        SyntheticLayout(**_SMALL, num_volumes=5_000),
    ),
}
PLANE = 2  # the plane of channel 0 read by the read benchmarks
LATENCY_FRAMES = 200
MiB = 2**20


def roiextractors_reference():
    """(ScanImageImagingExtractor, version) or (None, reason); lazy: it costs ~60 MB RSS."""
    try:
        import roiextractors
        from roiextractors import ScanImageImagingExtractor
    except Exception as exc:  # noqa: BLE001 - optional reference, any failure skips it
        return None, f"not available ({type(exc).__name__})"
    return ScanImageImagingExtractor, roiextractors.__version__


# -- files and helpers ------------------------------------------------------------------------
def ensure_file(path: str, layout: SyntheticLayout) -> bool:
    """Write ``layout`` to ``path`` unless it is there with its recorded size; True if written."""
    sidecar = path + ".json"
    try:
        with open(sidecar) as fh:
            rec = json.load(fh)
        if rec["layout"] == repr(layout) and os.path.getsize(path) == rec["size"]:
            return False
    except (OSError, ValueError, KeyError):
        pass
    write_scanimage_tiff(path + ".partial", layout)
    os.replace(path + ".partial", path)
    with open(sidecar, "w") as fh:
        json.dump({"layout": repr(layout), "size": os.path.getsize(path)}, fh)
    return True


def warm_cache(path: str) -> None:
    """Read the whole file once so that every reader below works from the page cache."""
    buf = bytearray(64 * MiB)
    with open(path, "rb", buffering=0) as fh:
        while fh.readinto(buf):
            pass


def median_time(fn, repeat: int, number: int = 1) -> float:
    """Median over ``repeat`` runs of the mean time of ``number`` calls (after one warm-up)."""
    fn()
    runs = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        runs.append((time.perf_counter() - t0) / number)
    return statistics.median(runs)


def fmt_t(s: float) -> str:
    for unit, f in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if s >= f:
            return f"{s / f:.3g} {unit}"
    return f"{s * 1e9:.3g} ns"


def fmt_b(n: float) -> str:
    return f"{n / MiB:,.0f} MiB" if n >= MiB else f"{n / 1024:,.0f} KiB"


def row(rows, name, ours, ref, ratio, target="—", ok=None):
    rows.append((name, ours, ref, ratio, target, "" if ok is None else ("yes" if ok else "NO")))


def page_copier(path, index, how="memmap"):
    """Bare per-page copy into a fresh (or given) output, by data offset: ``np.memmap`` (the
    physical limit) or, with ``how="preadv"``, one ``os.preadv`` per page (no memory map).
    """
    dt, shape, offsets = index.dtype.newbyteorder(index.byteorder), index.shape, index.data_offsets
    nbytes = int(index.byte_counts[0])
    # a plain ndarray view: slicing an np.memmap subclass costs microseconds per page
    mm = np.memmap(path, dtype=np.uint8, mode="r").view(np.ndarray) if how == "memmap" else None
    fd = os.open(path, os.O_RDONLY) if how == "preadv" else None

    def read(pages, out=None):
        out = np.empty((len(pages), *shape), dt) if out is None else out
        for i, p in enumerate(pages.tolist()):
            o = int(offsets[p])
            if fd is None:
                out[i] = mm[o : o + nbytes].view(dt).reshape(shape)
            else:
                os.preadv(fd, [out[i]], o)
        return out

    return read


# -- benchmarks -------------------------------------------------------------------------------
def bench_metadata(rows, path, repeat):
    def ours():
        parse_value.cache_clear()  # as in a fresh process: every value parsed once
        acquisition_info(read_static_metadata(path))

    def ref():
        with tifffile.TiffFile(path) as tif:
            tifffile.read_scanimage_metadata(tif.filehandle)

    a, b = median_time(ours, repeat, 50), median_time(ref, repeat, 50)
    row(
        rows,
        "1 metadata-only open: `read_static_metadata`+`acquisition_info` vs "
        "`TiffFile`+`read_scanimage_metadata`",
        fmt_t(a),
        fmt_t(b),
        f"{a / b:.2f}× time",
        "ours ≤ 1 ms",
        a <= 1e-3,
    )


def bench_index(rows, path, repeat):
    n = len(index_pages(path))

    def ref(metadata=False):
        with tifffile.TiffFile(path) as tif:
            return (metadata and tifffile.read_scanimage_metadata(tif.filehandle), len(tif.pages))

    assert ref()[1] == n, "page counts differ"
    a, b = median_time(lambda: index_pages(path), repeat), median_time(ref, repeat)
    row(
        rows,
        f"2 index all {n:,} pages: `index_pages` vs `len(TiffFile(path).pages)`",
        f"{fmt_t(a)} ({a / n * 1e6:.2f} µs/page)",
        f"{fmt_t(b)} ({b / n * 1e6:.2f} µs/page)",
        f"{a / b:.2f}× time",
        "time ratio ≤ 1.0",
        a <= b,
    )
    a = median_time(lambda: open_dataset(path).close(), repeat)
    b = median_time(lambda: ref(metadata=True), repeat)
    row(
        rows,
        f"2a `open_dataset` ({n:,} pages) vs tifffile metadata + `len(pages)`",
        fmt_t(a),
        fmt_t(b),
        f"{a / b:.2f}× time",
    )


def bench_read(rows, path, ds, repeat):
    """Full read of channel 0, plane PLANE; throughput relative to the memmap copy."""
    index, T = ds._indexes[0], ds.info.num_volumes
    pages = ds.layout.page(np.arange(T), PLANE, 0, 0)
    plist = pages.tolist()
    mm_read, pread = page_copier(path, index), page_copier(path, index, "preadv")
    expect = mm_read(pages)
    ref = median_time(lambda: mm_read(pages), repeat)
    reused = np.empty_like(expect)
    tif = tifffile.TiffFile(path)

    def tif_loop():
        out = np.empty_like(expect)
        for i, p in enumerate(plist):
            out[i] = tif.pages[p].asarray()
        return out

    tif_fns = {
        "`asarray(key=pages)`": lambda: tif.asarray(key=plist),
        "`pages[i].asarray()` loop": tif_loop,
    }
    tif_t = {k: median_time(f, repeat) for k, f in tif_fns.items()}
    best = min(tif_t, key=tif_t.get)
    readers = {
        "`ds.read(0, plane=k)` (NumPy, direct)": lambda: ds.read(0, plane=PLANE),
        "`ds.array(0, plane=k).compute()` (dask, threads)": lambda: ds.array(
            0, plane=PLANE
        ).compute(scheduler="threads"),
        f"tifffile {best} (faster of the two)": tif_fns[best],
        "bare memmap copy into a reused output (no fresh-page faults)": lambda: mm_read(
            pages, reused
        ),
        "`os.preadv` per page into a fresh output (no mmap)": lambda: pread(pages),
    }
    extractor, _ = roiextractors_reference()
    if extractor is not None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ex = extractor(file_path=path, channel_name=ds.info.channel_names[0], plane_index=PLANE)
        name = "roiextractors `ScanImageImagingExtractor(..., plane_index=k).get_series()`"
        readers[name] = lambda: np.asarray(ex.get_series()).reshape(expect.shape)
    gbs = lambda s: f"{fmt_t(s)} ({expect.nbytes / s / 1e9:.2f} GB/s)"  # noqa: E731
    what = f"full read ch 0 plane {PLANE} ({T} frames, {fmt_b(expect.nbytes)})"
    for i, (name, fn) in enumerate(readers.items()):
        ok = np.array_equal(fn(), expect)
        t = tif_t[best] if name.startswith("tifffile") else median_time(fn, repeat)
        label = f"3{chr(ord('a') + i - 1) if i else ''} {what}: {name}"
        row(
            rows,
            label + ("" if ok else " **WRONG DATA**"),
            gbs(t),
            gbs(ref),
            f"{ref / t:.2f}× throughput",
            "ref/ours ≥ 0.9" if i == 0 else "—",
            (ref / t >= 0.9 and ok) if i == 0 else None,
        )
    tif.close()


def bench_latency(rows, path, ds):
    """Median latency of one random frame (ds.read and dask) vs the bare memmap copy."""
    T = ds.info.num_volumes
    ts = np.random.default_rng(0).integers(0, T, LATENCY_FRAMES).tolist()
    pages = ds.layout.page(np.arange(T), PLANE, 0, 0)
    mm_read = page_copier(path, ds._indexes[0])
    arr = ds.array(0, plane=PLANE)

    def per_frame(fn):
        for t in ts[:20]:
            fn(t)  # warm-up
        times = []
        for t in ts:
            t0 = time.perf_counter()
            fn(t)
            times.append(time.perf_counter() - t0)
        return statistics.median(times)

    ref = per_frame(lambda t: mm_read(pages[t : t + 1]))
    ours = per_frame(lambda t: ds.read(0, plane=PLANE, times=[t]))
    dask_t = per_frame(lambda t: arr[t].compute())
    name = f"4 random single frame (median of {LATENCY_FRAMES})"
    row(
        rows,
        name + ": `ds.read(0, plane=k, times=[t])`",
        fmt_t(ours),
        fmt_t(ref),
        f"{ours / ref:.2f}× time",
        "≤ 2× ref",
        ours <= 2 * ref,
    )
    row(
        rows,
        name + f": `ds.array(0, plane=k)[t].compute()` (dask, {arr.chunks[0][0]} frames/chunk)",
        fmt_t(dask_t),
        fmt_t(ref),
        f"{dask_t / ref:.2f}× time",
    )


def _proc_status() -> dict[str, int]:
    """VmHWM / RssAnon / RssFile of this process in bytes (Linux; {} elsewhere)."""
    if not os.path.exists("/proc/self/status"):
        return {}
    with open("/proc/self/status") as fh:
        fields = (line.split() for line in fh)
        return {
            f[0][:-1]: int(f[1]) * 1024
            for f in fields
            if f and f[0][:-1] in ("VmHWM", "RssAnon", "RssFile")
        }


def rss_child(mode: str, path: str) -> None:
    """Subprocess body: print peak-RSS growth of one operation (bytes) as JSON.  On Linux
    ``ru_maxrss`` survives exec (a child inherits its parent's RSS as "peak"): VmHWM is used.
    """
    import resource

    def peak():
        hwm = _proc_status().get("VmHWM")
        return hwm or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

    before, anon0 = peak(), _proc_status().get("RssAnon", 0)
    if mode == "index":
        result = index_pages(path)
        out_bytes = sum(
            getattr(result, k).nbytes
            for k in ("data_offsets", "byte_counts", "description_offsets", "description_lengths")
        )
    else:
        result = open_dataset(path).read(0, plane=PLANE)  # kept alive while measuring
        out_bytes = result.nbytes
    now = _proc_status()
    print(
        json.dumps(
            {
                "grow": peak() - before,
                "anon": now.get("RssAnon", 0) - anon0,
                "file": now.get("RssFile"),
                "out": out_bytes,
            }
        )
    )


def bench_rss(rows, big, small):
    """Peak-RSS growth of indexing / open+read in a fresh subprocess, vs file and output."""
    for mode, path, what in (
        ("index", small, "`index_pages` (small file)"),
        ("read", big, f"`open_dataset`+`ds.read(0, plane={PLANE})`"),
    ):
        res = subprocess.run(
            [sys.executable, __file__, "--rss-child", mode, path],
            capture_output=True,
            text=True,
            check=True,
        )
        r = json.loads(res.stdout.strip().splitlines()[-1])
        grow, anon, size, out = r["grow"], r["anon"], os.path.getsize(path), r["out"]
        mapped = "" if r["file"] is None else f", RssFile after {fmt_b(r['file'])}"
        row(
            rows,
            f"5 peak RSS growth, fresh subprocess: {what}",
            f"peak +{fmt_b(grow)} (anon +{fmt_b(anon)}{mapped})",
            f"file {fmt_b(size)}, output {fmt_b(out)}",
            f"peak {grow / size:.2f}× file; anon {anon / max(out, 1):.2f}× output",
            "peak ≤ output + 64 MiB",
            grow <= out + 64 * MiB,
        )


# -- main -------------------------------------------------------------------------------------
def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size", choices=sorted(SIZES), default="full")
    p.add_argument("--dir", default=os.path.join(tempfile.gettempdir(), "napari_scanimage_bench"))
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--rss-child", nargs=2, metavar=("MODE", "PATH"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.rss_child:
        rss_child(*args.rss_child)
        return 0
    import dask

    _, roi_v = roiextractors_reference()
    print(
        f"environment: python {platform.python_version()}, numpy {np.__version__}, tifffile "
        f"{tifffile.__version__}, dask {dask.__version__}, roiextractors {roi_v}, "
        f"{os.cpu_count()} CPUs, {platform.machine()} {platform.system()} "
        f"{platform.release()}"
    )
    os.makedirs(args.dir, exist_ok=True)
    big, small = (os.path.join(args.dir, f"{args.size}_{n}.tif") for n in ("big", "small"))
    for path, lay in zip((big, small), SIZES[args.size], strict=True):
        t0 = time.perf_counter()
        made = ensure_file(path, lay)
        print(
            f"{'generated' if made else 'reusing'} {path}: {lay.total_pages:,} pages "
            f"{lay.height}x{lay.width} {lay.dtype}, {fmt_b(os.path.getsize(path))}"
            + (f" in {time.perf_counter() - t0:.1f} s" if made else "")
        )
        warm_cache(path)
    print(
        f"page cache warmed (each file read once): all readers are measured from cache; "
        f"medians of {args.repeat} runs.\n"
    )
    rows: list[tuple] = []
    bench_metadata(rows, big, args.repeat)
    bench_index(rows, small, args.repeat)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = open_dataset(big)
    bench_read(rows, big, ds, args.repeat)
    bench_latency(rows, big, ds)
    ds.close()
    bench_rss(rows, big, small)
    head = ("measurement", "ours", "reference", "ratio", "target", "met")
    print("| " + " | ".join(head) + " |\n|" + "---|" * len(head))
    for r in rows:
        print("| " + " | ".join(r) + " |")
    print(
        "\nRows 3*: reference = bare np.memmap copy into a fresh output; ratio = reference "
        "time / row time (throughput).\nRows 5: 'peak' (VmHWM) includes file pages mapped by "
        "memory maps (clean, reclaimable page cache);\n'anon' is private memory still held "
        "afterwards, with the result alive."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
