"""The calls users make, each as a ratio against a reference timed in the same run.

Run from the repository root::

    .venv/bin/python benchmarks/bench_paths.py [--size {smoke,full}] [--dir DIR] [--repeat N]

Files: the big 512×512 TIFF of ``bench_tiff.py`` and the raw and compressed `.siff` files of
``bench_siff.py`` (generated once into ``--dir``, reused).  ``--size smoke`` uses their small
versions and takes seconds.  Rows:

* dask path (TIFF): one frame ``ds.array(c, plane=z)[t].compute()`` ÷ ``ds.frames(c,
  plane=z)[t]`` (target ≤ 5×); a whole channel ``np.asarray(ds.array(c))`` ÷ ``ds.read(c)``
  (≤ 1.25×);
* memory (compressed `.siff`, fresh subprocesses sampling RssAnon + RssFile of
  ``/proc/self/status`` every few ms): peak growth of ``np.asarray(ds.array(0))``,
  ``ds.read(0)``, the pooled histogram and the lifetime image of 100 frames ÷ (1.5 × output +
  256 MiB); 10-ROI ``traces(kind="sum")`` ÷ 256 MiB (≤ 1);
* lifetime image of 100 frames ``ds.lifetime_array(0)[:100].compute()`` ÷ corrosiffpy
  ``flim_map(None, frames)`` (raw and compressed; ≤ 1);
* compressed pooled histogram ÷ corrosiffpy ``get_histogram``: timed in alternation, the
  median and the worst of the per-pair ratios (≤ 1 in every pair).

No napari / Qt imports.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import threading
import time

import numpy as np
from _common import parser
from bench_siff import SIZES as SIFF_SIZES
from bench_siff import ensure_file as ensure_siff
from bench_siff import roi_masks
from bench_tiff import SIZES as TIFF_SIZES
from bench_tiff import ensure_file as ensure_tiff
from bench_tiff import fmt_t, warm_cache

from napari_scanimage import open_dataset

SIZES = {"full": "full", "smoke": "smoke"}
MiB = 2**20
BUDGET = 256 * MiB
PLANE = 2
FRAMES = 100


def paired(ours, ref, repeat: int) -> list[float]:
    """Ratios ours ÷ ref of ``repeat`` alternating pairs (after one untimed call of each)."""
    ours(), ref()
    ratios = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        ours()
        t1 = time.perf_counter()
        ref()
        t2 = time.perf_counter()
        ratios.append((t1 - t0) / (t2 - t1))
    return ratios


def timed(fn, repeat: int, number: int = 1) -> float:
    """Median over ``repeat`` runs of the mean time of ``number`` calls (after a warm-up)."""
    fn()
    runs = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        runs.append((time.perf_counter() - t0) / number)
    return statistics.median(runs)


def add(rows, name, ours, ref, ratio, target):
    met = "yes" if ratio <= target else "NO"
    rows.append([name, ours, ref, f"{ratio:.2f}×", f"≤ {target:g}×", met])


# -- the dask path ----------------------------------------------------------------------------
def bench_dask(rows, path: str, repeat: int) -> None:
    ds = open_dataset(path)
    lazy = ds.frames(0, plane=PLANE)
    arr = ds.array(0, plane=PLANE)
    n = lazy.shape[0]
    rng = np.random.default_rng(1)
    picks = rng.integers(0, n, 64).tolist()
    np.testing.assert_array_equal(arr[picks[0]].compute(), lazy[picks[0]])

    def one_dask():
        for t in picks:
            ds.array(0, plane=PLANE)[t].compute()

    def one_lazy():
        for t in picks:
            ds.frames(0, plane=PLANE)[t]

    r = paired(one_dask, one_lazy, repeat)
    t_dask = timed(one_dask, 1) / len(picks)
    t_lazy = timed(one_lazy, 1) / len(picks)
    add(
        rows,
        "TIFF one frame: ds.array(c, plane=z)[t].compute() ÷ ds.frames(c, plane=z)[t]",
        fmt_t(t_dask),
        fmt_t(t_lazy),
        statistics.median(r),
        5,
    )
    whole = np.asarray(ds.array(0))
    np.testing.assert_array_equal(whole, ds.read(0))
    del whole
    r = paired(lambda: np.asarray(ds.array(0)), lambda: ds.read(0), repeat)
    add(
        rows,
        "TIFF whole channel, all planes: np.asarray(ds.array(c)) ÷ ds.read(c)",
        "—",
        "—",
        statistics.median(r),
        1.25,
    )
    ds.close()


# -- memory on .siff --------------------------------------------------------------------------
def _status() -> int:
    """RssAnon + RssFile of this process (bytes; 0 where /proc is missing)."""
    try:
        with open("/proc/self/status") as fh:
            return sum(
                int(line.split()[1]) * 1024
                for line in fh
                if line.startswith(("RssAnon:", "RssFile:"))
            )
    except OSError:
        return 0


def rss_child(arg: str) -> None:
    """Subprocess body: peak growth of RssAnon + RssFile over one operation, as JSON."""
    mode, path = arg.split(":", 1)
    from napari_scanimage.analysis.traces import traces

    ds = open_dataset(path)
    masks = roi_masks(ds.info.frame_shape)
    rois = {f"roi{k}": m for k, m in enumerate(masks)}
    # compiled kernels and dask loaded before the baseline
    import napari_scanimage.io._siff_kernels  # noqa: F401

    ds.histogram(0, times=[0])
    ds.lifetime_array(0)[:1].compute()
    np.asarray(ds.array(0)[:1])
    traces(ds, rois, kind="sum", times=[0])
    base = peak = _status()
    stop = threading.Event()

    def sample():
        nonlocal peak
        while not stop.is_set():
            peak = max(peak, _status())
            time.sleep(0.002)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    if mode == "dask":
        out = np.asarray(ds.array(0))
    elif mode == "read":
        out = ds.read(0)
    elif mode == "histogram":
        out = ds.histogram(0)
    elif mode == "lifetime":
        out = ds.lifetime_array(0)[:FRAMES].compute()
    else:
        out = traces(ds, rois, kind="sum").values
    peak = max(peak, _status())
    stop.set()
    sampler.join()
    print(json.dumps({"grow": peak - base, "out": int(out.nbytes)}))


def bench_memory(rows, path: str) -> None:
    calls = {
        "dask": "np.asarray(ds.array(0))",
        "read": "ds.read(0)",
        "histogram": "ds.histogram(0)",
        "lifetime": f"ds.lifetime_array(0)[:{FRAMES}].compute()",
        "traces": '10-ROI traces(ds, rois, kind="sum")',
    }
    for mode, call in calls.items():
        res = subprocess.run(
            [sys.executable, __file__, "--rss-child", f"{mode}:{path}"],
            capture_output=True,
            text=True,
            check=True,
        )
        got = json.loads(res.stdout.strip().splitlines()[-1])
        limit = BUDGET if mode == "traces" else 1.5 * got["out"] + BUDGET
        add(
            rows,
            f"compressed .siff peak RSS growth: {call} ÷ "
            + ("256 MiB" if mode == "traces" else "(1.5 × output + 256 MiB)"),
            f"{got['grow'] / MiB:,.0f} MiB",
            f"{limit / MiB:,.0f} MiB (output {got['out'] / MiB:,.0f} MiB)",
            got["grow"] / limit,
            1,
        )


# -- lifetimes and histograms against corrosiffpy ---------------------------------------------
def bench_flim(rows, path: str, kind: str, repeat: int) -> None:
    import corrosiffpy

    ds = open_dataset(path)
    ref = corrosiffpy.open_file(path)
    c0 = ds.frame_indices(0).tolist()
    n = min(FRAMES, len(c0))
    image = ds.lifetime_array(0)[:n].compute()
    image_ref, _, _ = ref.flim_map(None, frames=c0[:n])
    np.testing.assert_allclose(image / ds.flim.bin_width_ns, image_ref, rtol=1e-6, equal_nan=True)
    r = paired(
        lambda: ds.lifetime_array(0)[:n].compute(),
        lambda: ref.flim_map(None, frames=c0[:n]),
        repeat,
    )
    add(
        rows,
        f"{kind} .siff lifetime image of {n} frames: ds.lifetime_array(0)[:{n}].compute() ÷ "
        "corrosiffpy flim_map",
        fmt_t(timed(lambda: ds.lifetime_array(0)[:n].compute(), 1)),
        fmt_t(timed(lambda: ref.flim_map(None, frames=c0[:n]), 1)),
        statistics.median(r),
        1,
    )
    if kind == "compressed":
        r = paired(lambda: ds.histogram(0), lambda: ref.get_histogram(frames=c0), repeat)
        add(
            rows,
            "compressed .siff pooled histogram ÷ corrosiffpy get_histogram (median of pairs)",
            fmt_t(timed(lambda: ds.histogram(0), 1)),
            fmt_t(timed(lambda: ref.get_histogram(frames=c0), 1)),
            statistics.median(r),
            1,
        )
        add(
            rows,
            "compressed .siff pooled histogram ÷ corrosiffpy get_histogram (worst pair)",
            "—",
            "—",
            max(r),
            1,
        )
    ds.close()


def main(argv=None) -> int:
    args = parser(__doc__, SIZES, repeat=7).parse_args(argv)
    if args.rss_child:
        rss_child(args.rss_child)
        return 0
    os.makedirs(args.dir, exist_ok=True)
    tif = os.path.join(args.dir, f"{args.size}_big.tif")
    ensure_tiff(tif, TIFF_SIZES[args.size][0])
    sifs = {}
    for kind, volumes in zip(("raw", "compressed"), SIFF_SIZES[args.size], strict=True):
        sifs[kind] = os.path.join(args.dir, f"{args.size}_siff_{kind}.siff")
        ensure_siff(sifs[kind], volumes, kind == "compressed")
    for path in (tif, *sifs.values()):
        warm_cache(path)
    rows: list[list[str]] = []
    bench_dask(rows, tif, args.repeat)
    bench_memory(rows, sifs["compressed"])
    for kind, path in sifs.items():
        bench_flim(rows, path, kind, args.repeat)
    head = ["what", "ours", "reference", "ratio", "target", "met"]
    print("\n| " + " | ".join(head) + " |\n|" + "---|" * len(head))
    for r in rows:
        print("| " + " | ".join(r) + " |")
    print(
        f"\nRatios from the same run: medians of {args.repeat} alternating pairs (ours, "
        "reference) after one warm-up; memory rows in fresh subprocesses."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
