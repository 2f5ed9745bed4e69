"""Benchmark lifetime traces and per-pixel lifetime images against corrosiffpy.

Run from the repository root::

    .venv/bin/python benchmarks/bench_flim.py [--size {smoke,full}] [--dir DIR] [--repeat N]

One synthetic ScanImage-FLIM file with raw photons (the layout of ``bench_siff.py``: 128×256
pixels, 2 channels, planar, ~2 000 photons per frame) is generated once into ``--dir``
(default ``<tmp>/napari_scanimage_bench``) and reused while its size matches the ``.json``
sidecar.  Full size: 64 000 pages, > 1 GiB; ``--size smoke`` a few hundred pages, for CI.

Timed, after one untimed run (kernels loaded, page cache warm), medians of ``--repeat``:

* empirical lifetime of 10 ROIs at every time point: :func:`lifetime_traces` (which also gives
  photon counts and confidence intervals) vs ``sum_rois_flim``;
* per-pixel lifetime image of 100 frames: ``Dataset.frames(product="lifetime")`` (checked equal
  to :meth:`Dataset.lifetime_array`) vs ``flim_map``.

Both results are checked equal first.  Ratio = corrosiffpy time ÷ our time (> 1: we are faster).
No napari / Qt imports.
"""

from __future__ import annotations

import os
import platform
import sys
import time

import numpy as np
from _common import median_time, parser
from bench_siff import ensure_file, fmt_t, roi_masks, warm_cache

from napari_scanimage import open_dataset
from napari_scanimage.flim.lifetime import lifetime_traces

SIZES = {"full": 32_000, "smoke": 200}  # volumes (2 pages each)
N_ROIS = 10
IMAGE_FRAMES = 100


def bench(rows, path: str, repeat: int) -> None:
    import corrosiffpy

    ds = open_dataset(path)
    ref = corrosiffpy.open_file(path)
    c0 = ds.frame_indices(0).tolist()  # channel 0 pages
    bw_bins = ds.flim.bin_width_ns
    masks = roi_masks(ds.info.frame_shape, N_ROIS)
    rois = {f"roi{k}": m for k, m in enumerate(masks)}
    photons = int(ds.histogram(0).sum())

    def add(name, ours, theirs, target=1.0):
        ratio = theirs / ours
        rows.append(
            [
                name,
                fmt_t(ours),
                fmt_t(theirs),
                f"{ratio:.2f}×",
                f"{photons / ours / 1e6:,.0f} M/s" if "traces" in name else "—",
                f"≥ {target:g}×",
                "yes" if ratio >= target else "no",
            ]
        )

    got = lifetime_traces(ds, rois)
    tau_ref, n_ref, _ = ref.sum_rois_flim(masks, None, frames=c0)
    assert np.array_equal(got.counts, n_ref.astype(np.int64)), "photon counts differ"
    np.testing.assert_allclose(got.values / bw_bins, tau_ref, rtol=0, atol=1e-9, equal_nan=True)
    add(
        f"lifetime traces, {N_ROIS} ROIs × {len(c0):,} frames",
        median_time(lambda: lifetime_traces(ds, rois), repeat),
        median_time(lambda: ref.sum_rois_flim(masks, None, frames=c0), repeat),
    )

    n_img = min(IMAGE_FRAMES, len(c0))
    lazy = ds.frames(0, product="lifetime")  # what napari layers hold (no dask)
    image = np.asarray(lazy[:n_img])
    np.testing.assert_array_equal(image, ds.lifetime_array(0)[:n_img].compute())
    image_ref, _, _ = ref.flim_map(None, frames=c0[:n_img])
    np.testing.assert_allclose(image / bw_bins, image_ref, rtol=1e-6, equal_nan=True)
    add(
        f"per-pixel lifetime image, {n_img} frames",
        median_time(lambda: np.asarray(lazy[:n_img]), repeat),
        median_time(lambda: ref.flim_map(None, frames=c0[:n_img]), repeat),
    )
    ds.close()


def main(argv=None) -> int:
    args = parser(__doc__, SIZES, repeat=5).parse_args(argv)
    from importlib.metadata import version

    import corrosiffpy  # noqa: F401 - the reference must be installed (testing extra)

    os.makedirs(args.dir, exist_ok=True)
    print(
        f"environment: python {platform.python_version()}, numpy {np.__version__}, "
        f"corrosiffpy {version('corrosiffpy')}, numba {version('numba')}, "
        f"{os.cpu_count()} CPUs"
    )
    path = os.path.join(args.dir, f"{args.size}_flim_raw.siff")
    volumes = SIZES[args.size]
    t0 = time.perf_counter()
    made = ensure_file(path, volumes, False)
    print(
        f"{'generated' if made else 'reusing'} {path}: {2 * volumes:,} pages, "
        f"{os.path.getsize(path) / 2**30:.2f} GiB ({time.perf_counter() - t0:.1f} s)"
    )
    warm_cache(path)
    rows: list[list[str]] = []
    bench(rows, path, args.repeat)
    head = ["operation", "ours", "corrosiffpy", "ratio", "ours photons/s", "target", "met"]
    print("\n| " + " | ".join(head) + " |\n|" + "---|" * len(head))
    for r in rows:
        print("| " + " | ".join(r) + " |")
    print(
        f"\nMedians of {args.repeat} runs after one warm-up; ratio = corrosiffpy time / our "
        "time. Lifetimes checked equal (1e-9 bins; images 1e-6 relative, float32)."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
