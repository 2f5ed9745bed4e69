"""Run suite2p's ROI detection with its default settings on a movie; used by
bench_detection.py with the interpreter of an environment where suite2p is installed (suite2p
is never a dependency of napari-scanimage).

    python _suite2p_detection.py MOVIE.npy OUT.npz --fs 30 --tau 1.0

MOVIE.npy holds the frames (T, Y, X) int16; OUT.npz gets ``labels`` (n, Y, X) bool masks of
the ROIs suite2p classes as cells, ``all_labels`` of every ROI it found, and ``seconds``.
No registration is run (the benchmark passes still or already registered frames).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("movie")
    p.add_argument("out")
    p.add_argument("--fs", type=float, default=30.0)
    p.add_argument("--tau", type=float, default=1.0)
    p.add_argument("--keep", default=None, help="copy suite2p's plane folder files here")
    args = p.parse_args()
    import suite2p
    import tifffile

    frames = np.load(args.movie, allow_pickle=False)
    T, Y, X = frames.shape
    with tempfile.TemporaryDirectory() as work:
        data = os.path.join(work, "data")
        os.makedirs(data)
        tifffile.imwrite(os.path.join(data, "movie.tif"), frames)
        settings = suite2p.default_settings()
        settings["torch_device"] = "cpu"
        settings["fs"], settings["tau"] = args.fs, args.tau
        settings["run"]["do_registration"] = 0
        settings["run"]["do_deconvolution"] = False
        db = {"data_path": [data], "save_path0": work, "fast_disk": work}
        t0 = time.perf_counter()
        suite2p.run_s2p(db=db, settings=settings)
        seconds = time.perf_counter() - t0
        plane = os.path.join(work, "suite2p", "plane0")
        # (our own file, just written by suite2p in a private folder)
        stat = np.load(os.path.join(plane, "stat.npy"), allow_pickle=True)
        iscell = np.load(os.path.join(plane, "iscell.npy"))
        if args.keep:
            import shutil

            os.makedirs(args.keep, exist_ok=True)
            for name in ("stat.npy", "iscell.npy", "ops.npy", "db.npy", "settings.npy"):
                if os.path.exists(os.path.join(plane, name)):
                    shutil.copy(os.path.join(plane, name), args.keep)
    masks = np.zeros((len(stat), Y, X), bool)
    for k, s in enumerate(stat):
        masks[k, s["ypix"], s["xpix"]] = True
    cells = iscell[:, 0].astype(bool)
    np.savez_compressed(args.out, labels=masks[cells], all_labels=masks, seconds=seconds)


if __name__ == "__main__":
    main()
