"""Benchmark napari_scanimage's `.siff` reader against corrosiffpy (the Rust reference).

Run from the repository root::

    .venv/bin/python benchmarks/bench_siff.py [--size {smoke,full}] [--dir DIR] [--repeat N]

Two synthetic ScanImage-FLIM files (raw and compressed photons) are generated once into
``--dir`` (default ``<tmp>/napari_scanimage_bench``) and reused while their size matches the
``.json`` sidecar.  Full size: 128×256 pixels, 2 channels, planar, ~2 000 photons per frame,
each file > 1 GiB (64 000 raw pages; 15 400 compressed pages).  ``--size smoke`` keeps the
structure with a few hundred pages, for CI.

Each file is read once before timing (page cache warm) and each operation runs once untimed
(compiled kernels loaded) before the medians of ``--repeat`` runs.  Ratio = corrosiffpy time ÷
our time (> 1: we are faster).  Photon rates count the photons of the channel processed.  Peak
RSS rows run in fresh subprocesses.  No napari / Qt imports.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time

import numpy as np
from _common import median_time, parser

from napari_scanimage import open_dataset
from napari_scanimage.testing.siff import write_siff
from napari_scanimage.testing.tiff import SyntheticLayout

_LAY = dict(channels=(1, 2), num_planes=1, num_flyback=0, height=128, width=256)
SIZES = {  # (raw volumes, compressed volumes)
    "full": (32_000, 7_700),
    "smoke": (400, 150),
}
PHOTONS = 2000.0
N_ROIS = 10
MiB = 2**20


def ensure_file(path: str, volumes: int, compressed: bool) -> bool:
    meta_path = path + ".json"
    want = json.loads(
        json.dumps(
            {
                "volumes": volumes,
                "compressed": compressed,
                "photons": PHOTONS,
                "layout": _LAY,
                "version": 1,
            }
        )
    )
    if os.path.exists(path) and os.path.exists(meta_path):
        with open(meta_path) as fh:
            meta = json.load(fh)
        if meta.get("want") == want and meta.get("size") == os.path.getsize(path):
            return False
    write_siff(
        path,
        SyntheticLayout(**_LAY, num_volumes=volumes),
        compressed=compressed,
        photons_per_frame=PHOTONS,
        keep_truth=False,
        seed=7,
    )
    with open(meta_path, "w") as fh:
        json.dump({"want": want, "size": os.path.getsize(path)}, fh)
    return True


def warm_cache(path: str) -> None:
    with open(path, "rb") as fh:
        while fh.read(64 * MiB):
            pass


def fmt_t(s: float) -> str:
    return f"{s * 1e3:.1f} ms" if s < 10 else f"{s:.2f} s"


def roi_masks(shape, n=N_ROIS, seed=3) -> np.ndarray:
    """``n`` disc-shaped ROIs (cells) on a (Y, X) frame."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    masks = np.zeros((n, *shape), bool)
    for k in range(n):
        cy, cx = rng.uniform(10, shape[0] - 10), rng.uniform(10, shape[1] - 10)
        masks[k] = (yy - cy) ** 2 + (xx - cx) ** 2 <= rng.uniform(5, 9) ** 2
    return masks


def bench_file(rows, path: str, kind: str, repeat: int) -> None:
    import corrosiffpy

    ds = open_dataset(path)
    ref = corrosiffpy.open_file(path)
    c0 = ds.frame_indices(0).tolist()  # channel 0 pages
    photons_c0 = int(ds.histogram(0).sum())
    masks = roi_masks(ds.info.frame_shape)

    def add(name, ours, theirs, photons=None, target=1.0):
        ratio = theirs / ours
        rate = f"{photons / ours / 1e6:,.0f} M/s" if photons else "—"
        ref_rate = f"{photons / theirs / 1e6:,.0f} M/s" if photons else "—"
        rows.append(
            [
                kind,
                name,
                fmt_t(ours),
                fmt_t(theirs),
                f"{ratio:.2f}×",
                rate,
                ref_rate,
                f"≥ {target:g}×",
                "yes" if ratio >= target else "no",
            ]
        )

    # ≥ 1× everywhere; ≥ 2× where the reference is weak (ROI work on compressed photons)
    weak = 1.0 if kind == "raw" else 2.0
    add(
        "open (header + index)",
        median_time(lambda: open_dataset(path).close(), repeat),
        median_time(lambda: corrosiffpy.open_file(path), repeat),
        target=1.0,
    )
    ours_frames = ds.read(0)
    np.testing.assert_array_equal(ours_frames[:50], ref.get_frames(frames=c0[:50]))
    del ours_frames
    add(
        "all intensity frames of channel 0",
        median_time(lambda: ds.read(0), repeat),
        median_time(lambda: ref.get_frames(frames=c0), repeat),
        photons_c0,
        target=1.0,
    )
    hist = ds.histogram(0)
    ref_hist = ref.get_histogram(frames=c0)
    folded = np.bincount(
        np.arange(len(hist)) % len(ref_hist), weights=hist, minlength=len(ref_hist)
    )
    assert (folded == ref_hist).all(), "histograms differ"
    add(
        "pooled histogram, channel 0",
        median_time(lambda: ds.histogram(0), repeat),
        median_time(lambda: ref.get_histogram(frames=c0), repeat),
        photons_c0,
    )
    sums = ds.photon_sums(masks, 0)
    assert (sums.counts[:, :, 0] == ref.sum_rois(masks, frames=c0)).all(), "ROI sums differ"
    add(
        f"{N_ROIS}-ROI sums, every frame",
        median_time(lambda: ds.photon_sums(masks, 0), repeat),
        median_time(lambda: ref.sum_rois(masks, frames=c0), repeat),
        photons_c0,
        weak,
    )
    tau_ref, _, _ = ref.sum_rois_flim(masks, None, frames=c0)
    ours_tau = sums.mean_arrival_bins()
    np.testing.assert_allclose(ours_tau, tau_ref, rtol=0, atol=1e-9, equal_nan=True)
    add(
        f"{N_ROIS}-ROI empirical lifetime, every frame",
        median_time(lambda: ds.photon_sums(masks, 0).mean_arrival_bins(), repeat),
        median_time(lambda: ref.sum_rois_flim(masks, None, frames=c0), repeat),
        photons_c0,
        weak,
    )
    ds.close()


def rss_child(path: str) -> None:
    """Subprocess body: peak-RSS growth (VmHWM) of histogram + ROI sums + lifetime image of 100
    frames over an open dataset (kernels loaded first), as JSON.
    """

    def status(key):
        try:
            with open("/proc/self/status") as fh:
                for line in fh:
                    if line.startswith(key + ":"):
                        return int(line.split()[1]) * 1024
        except OSError:
            pass
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 if key == "VmHWM" else 0

    def hwm():
        return status("VmHWM")

    ds = open_dataset(path)
    masks = roi_masks(ds.info.frame_shape)
    ds.histogram(0, times=[0])  # numba and its compiled kernels loaded before the baseline
    ds.photon_sums(masks, 0, times=[0])
    ds.lifetime_array(0)[:1].compute()
    before, anon0, file0 = hwm(), status("RssAnon"), status("RssFile")
    ds.histogram(0)
    ds.photon_sums(masks, 0)
    ds.lifetime_array(0)[:100].compute()
    print(
        json.dumps(
            {
                "grow": hwm() - before,
                "anon": status("RssAnon") - anon0,
                "mapped": status("RssFile") - file0,
                "file": os.path.getsize(path),
            }
        )
    )


def main(argv=None) -> int:
    args = parser(__doc__, SIZES, repeat=5).parse_args(argv)
    if args.rss_child:
        rss_child(args.rss_child)
        return 0
    from importlib.metadata import version

    import corrosiffpy  # noqa: F401 - the reference must be installed (testing extra)

    os.makedirs(args.dir, exist_ok=True)
    print(
        f"environment: python {platform.python_version()}, numpy {np.__version__}, "
        f"corrosiffpy {version('corrosiffpy')}, numba {version('numba')}, "
        f"{os.cpu_count()} CPUs"
    )
    rows: list[list[str]] = []
    for kind, volumes in zip(("raw", "compressed"), SIZES[args.size], strict=True):
        path = os.path.join(args.dir, f"{args.size}_siff_{kind}.siff")
        t0 = time.perf_counter()
        made = ensure_file(path, volumes, kind == "compressed")
        print(
            f"{'generated' if made else 'reusing'} {path}: {2 * volumes:,} pages, "
            f"{os.path.getsize(path) / 2**30:.2f} GiB ({time.perf_counter() - t0:.1f} s)"
        )
        warm_cache(path)
        bench_file(rows, path, kind, args.repeat)
        res = subprocess.run(
            [sys.executable, __file__, "--rss-child", path],
            capture_output=True,
            text=True,
            check=True,
        )
        got = json.loads(res.stdout.strip().splitlines()[-1])
        rows.append(
            [
                kind,
                "RSS growth: histogram + 10-ROI sums + 100 lifetime frames",
                f"peak {got['grow'] / MiB:.0f} MiB, of which file pages mapped "
                f"{got['mapped'] / MiB:.0f} MiB; private after {got['anon'] / MiB:.0f} MiB",
                "—",
                "—",
                "—",
                "—",
                f"file {got['file'] / MiB:.0f} MiB",
                "—",
            ]
        )
    head = [
        "file",
        "operation",
        "ours",
        "corrosiffpy",
        "ratio",
        "ours photons/s",
        "corrosiffpy photons/s",
        "target",
        "met",
    ]
    print("\n| " + " | ".join(head) + " |\n|" + "---|" * len(head))
    for r in rows:
        print("| " + " | ".join(r) + " |")
    print(
        f"\nMedians of {args.repeat} runs after one warm-up; ratio = corrosiffpy time / our "
        "time. Photon rates count channel 0's photons."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
