"""Benchmark rigid shift estimation (phase correlation) against scikit-image and bare FFTs.

Run from the repository root::

    .venv/bin/python benchmarks/bench_registration.py [--size {smoke,full}] [--repeat N]

Full size: 2 000 frames of 512×512 float32 in memory (a texture of smooth structure and
blobs moved by known subpixel shifts, |shift| ≤ 8 px, with shot-like noise and bleaching;
making them is not timed), one fixed noise-free reference, ``max_shift`` 51 px (the default of
``register`` for 512-pixel frames).  Smoke: 100 frames of 128×128.  Rows (medians of
``--repeat`` runs after one untimed run):

* ours: ``estimate_shifts`` (subpixel) of every frame — frames/s and RMS error;
* scikit-image ``phase_cross_correlation(upsample_factor=10)``, one frame at a time, on the
  first 200 frames (20 at smoke size);
* bare phase correlation: batched ``scipy.fft.rfft2`` / ``irfft2`` with the same batch size and
  workers, whitened cross-power, integer argmax over the whole frame — the FFT limit;
* speed ratios ours ÷ scikit-image (target ≥ 2×) and ours ÷ bare (target ≥ 0.8×), and our
  accuracy (target RMS ≤ 0.1 px and no worse than scikit-image);
* end to end: ``register()`` of a ScanImage TIFF holding the first 600 frames (60 at smoke
  size) as uint16, reading and its own reference included, against the bare phase
  correlation of the same frames given the true reference, run alternately ``--repeat`` times
  in the same process (medians): the throughput ratio (target ≥ 0.8×);
* piecewise-rigid: a movie of ``--piecewise-frames`` frames (default 100; 20 at smoke size) of
  512×512 (128×128) moved by known smooth warps (:mod:`napari_scanimage.testing.warps`: rigid
  drift within ±5 px plus two waves across the field, |non-rigid part| ≤ 2.5 px, Poisson
  noise, bleaching), written as a TIFF: ``register()`` rigid and piecewise, and suite2p's
  ``register_frames(nonrigid=True)`` with its own reference (``compute_reference``) when
  ``--suite2p-python`` names an interpreter that has suite2p (run in a subprocess by
  ``_suite2p_registration.py``; skipped with a message otherwise).  Accuracy: RMS length of
  the error of the total displacement in the interior (an eighth of the frame in from each
  edge), up to the reference's own fixed field (each method's mean error over time is taken
  out); targets ≤ 0.15 px piecewise, rigid ≥ 1 px; speed piecewise ≤ 3× rigid's time and
  ≥ 2× suite2p's frames/s.
"""

from __future__ import annotations

import os
import sys
import time

import numpy as np
from _common import median_time, parser
from scipy import fft, ndimage

from napari_scanimage.analysis import _phasecorr
from napari_scanimage.analysis._phasecorr import estimate_shifts

SIZES = {"full": (2000, 512, 200), "smoke": (100, 128, 20)}  # frames, side, scikit-image frames
E2E_FRAMES = {"full": 600, "smoke": 60}
PIECEWISE = {"full": (100, 512), "smoke": (20, 128)}  # frames, side
MAX_SHIFT_PX = 8.0
PAD = 32  # 512 + 2·32 = 576 = 2⁶·3²: fast FFT sizes


def make_movie(n: int, size: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(frames (n, size, size) float32, reference (size, size), true shifts (n, 2))."""
    rng = np.random.default_rng(seed)
    big = size + 2 * PAD
    tex = ndimage.gaussian_filter(rng.normal(size=(big, big)), 6) * 30
    tex += ndimage.gaussian_filter(rng.normal(size=(big, big)), 1.5) * 6
    cells = np.zeros((big, big))
    at = rng.integers(0, big, (2, big * big // 250))
    cells[at[0], at[1]] = rng.uniform(200, 600, at.shape[1])
    tex += ndimage.gaussian_filter(cells, 3)
    tex = (tex - tex.min()) * (300 / tex.mean())  # ~300 photons per pixel on average
    spec = fft.rfft2(tex).astype(np.complex64)
    ky = fft.fftfreq(big)
    kx = fft.rfftfreq(big)
    true = rng.uniform(-MAX_SHIFT_PX, MAX_SHIFT_PX, (n, 2))
    frames = np.empty((n, size, size), np.float32)
    crop = slice(PAD, PAD + size)
    for i in range(0, n, 16):
        d = true[i : i + 16]
        ry = np.exp(-2j * np.pi * ky[None, :, None] * d[:, :1, None]).astype(np.complex64)
        rx = np.exp(-2j * np.pi * kx[None, None, :] * d[:, 1:, None]).astype(np.complex64)
        moved = spec * rx
        moved *= ry
        img = np.ascontiguousarray(fft.irfft2(moved, s=(big, big), workers=-1)[:, crop, crop])
        bleach = np.exp(-0.5 * np.arange(i, i + len(d)) / n).astype(np.float32)
        img *= bleach[:, None, None]
        noise = rng.standard_normal(img.shape, dtype=np.float32)
        noise *= np.sqrt(np.maximum(img, 1))  # shot-like noise
        frames[i : i + len(d)] = img + noise
    reference = fft.irfft2(spec, s=(big, big))[crop, crop].astype(np.float32)
    return frames, reference, true


def bare(frames: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Integer shifts by whitened phase correlation: batched rfft2 / irfft2, full argmax."""
    Y, X = reference.shape
    ref = np.conj(fft.rfft2(reference - reference.mean()))
    per = max(1, _phasecorr.BATCH_BYTES // (Y * (X // 2 + 1) * 8))
    out = np.empty((len(frames), 2))
    for i in range(0, len(frames), per):
        spec = fft.rfft2(frames[i : i + per], workers=-1)
        spec *= ref
        mag = np.abs(spec)
        mag += 1e-6 * mag.mean()
        spec /= mag
        corr = fft.irfft2(spec, s=(Y, X), workers=-1)
        iy, ix = np.divmod(corr.reshape(len(corr), -1).argmax(axis=1), X)
        out[i : i + per, 0] = (iy + Y // 2) % Y - Y // 2
        out[i : i + per, 1] = (ix + X // 2) % X - X // 2
    return out


def rms(err: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(err))))


def end_to_end(frames: np.ndarray, reference: np.ndarray, folder: str, repeat: int):
    """Median seconds of ``register()`` on a TIFF of ``frames`` and of :func:`bare` on the
    frames in memory (alternating runs), and register's shifts.
    """
    import statistics
    from pathlib import Path

    import napari_scanimage as nsi
    from napari_scanimage.testing.tiff import write_scanimage_tiff

    n, Y, X = frames.shape
    path = Path(folder) / f"registration_e2e_{n}x{Y}x{X}.tif"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        pages = np.clip(np.round(frames), 0, 65535).astype(np.uint16)
        write_scanimage_tiff(
            path,
            channels=(1,),
            num_volumes=n,
            height=Y,
            width=X,
            dtype="uint16",
            content=lambda g: pages[g],
        )
    # the bare FFT gets the frames as float32 in memory (what FFTs take without a conversion)
    as_float = np.clip(np.round(frames), 0, 65535).astype(np.float32)
    t_reg, t_bare = [], []
    with nsi.open_dataset(path) as ds:
        reg = nsi.register(ds)  # warm-up (page cache, FFT plans)
        for _ in range(max(1, repeat)):
            t0 = time.perf_counter()
            reg = nsi.register(ds)
            t_reg.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            bare(as_float, reference)
            t_bare.append(time.perf_counter() - t0)
    return statistics.median(t_reg), statistics.median(t_bare), reg.shifts[:, 0]


def interior_rms(field: np.ndarray, truth: np.ndarray) -> float:
    """RMS error length (pixels) of displacement fields (n, 2, Y, X) in the interior, up to the
    reference's own fixed field (the mean error over time).
    """
    err = field - truth
    err -= err.mean(axis=0)
    b = truth.shape[-1] // 8
    return float(np.sqrt(np.mean(np.sum(err[:, :, b:-b, b:-b] ** 2, axis=1))))


def piecewise_section(size: str, folder: str, repeat: int, n: int | None, s2p: str | None):
    """Rows of the piecewise-rigid comparison (see the module docstring)."""
    import json
    import statistics
    import subprocess
    import tempfile
    from pathlib import Path

    import napari_scanimage as nsi
    from napari_scanimage.testing.tiff import write_scanimage_tiff
    from napari_scanimage.testing.warps import warped_movie

    n_frames, side = PIECEWISE[size]
    n_frames = n or n_frames
    base = Path(folder) / f"registration_warped_{n_frames}x{side}"
    base.parent.mkdir(parents=True, exist_ok=True)
    if not base.with_suffix(".npz").exists():
        movie = warped_movie(n_frames, (side, side), seed=7, bleach=0.5)
        np.savez(base.with_suffix(".npz"), frames=movie.frames, truth=movie.displacement)
    with np.load(base.with_suffix(".npz")) as z:
        frames, truth = z["frames"], z["truth"]
    pages = np.clip(np.round(frames), 0, 32767).astype(np.uint16)
    tif = base.with_suffix(".tif")
    if not tif.exists():
        write_scanimage_tiff(
            tif,
            channels=(1,),
            num_volumes=n_frames,
            height=side,
            width=side,
            dtype="uint16",
            content=lambda g: pages[g],
        )
    times: dict[str, list[float]] = {"rigid": [], "piecewise": []}
    results = {}
    with nsi.open_dataset(tif) as ds:
        nsi.register(ds, piecewise=True)  # warm-up
        for _ in range(max(1, repeat)):
            for name in times:
                t0 = time.perf_counter()
                results[name] = nsi.register(ds, piecewise=name == "piecewise")
                times[name].append(time.perf_counter() - t0)
    t = {k: statistics.median(v) for k, v in times.items()}
    err = {
        k: interior_rms(np.stack([r.displacement(i) for i in range(n_frames)]), truth)
        for k, r in results.items()
    }
    rows = [
        (f"ours rigid: register() ({n_frames} × {side}²)", n_frames / t["rigid"], err["rigid"]),
        ("ours piecewise: register(piecewise=True)", n_frames / t["piecewise"], err["piecewise"]),
    ]
    s2p_fps = None
    if s2p and Path(s2p).exists():
        with tempfile.TemporaryDirectory() as tmp:
            movie = Path(tmp) / "movie.npy"
            np.save(movie, pages.astype(np.int16))
            out = Path(tmp) / "out.npz"
            runner = Path(__file__).with_name("_suite2p_registration.py")
            proc = subprocess.run(
                [s2p, str(runner), str(movie), str(out)],
                capture_output=True,
                text=True,
                cwd=tmp,
                timeout=3600,
            )
            if proc.returncode == 0:
                report = json.loads(proc.stdout.strip().splitlines()[-1])
                with np.load(out) as z:
                    field = z["field"]
                s2p_fps = n_frames / report["seconds"]
                e = interior_rms(field, truth[:, :, ::4, ::4])
                rows.append(
                    ("suite2p register_frames(nonrigid=True), reference included", s2p_fps, e)
                )
            else:
                print(f"suite2p run failed: {proc.stderr.strip().splitlines()[-1:]}")
    else:
        print("suite2p: skipped (give --suite2p-python PATH, an interpreter with suite2p)")
    print("\n| piecewise-rigid | frames/s | interior RMS error (px) |\n|---|---|---|")
    for name, fps, e in rows:
        print(f"| {name} | {fps:,.1f} | {e:.3f} |")
    slow = t["piecewise"] / t["rigid"]
    ok = err["piecewise"] <= 0.15 and err["rigid"] >= 1.0
    print(f"| accuracy: piecewise ≤ 0.15 px, rigid ≥ 1 px | | {'yes' if ok else 'no'} |")
    met = "yes" if slow <= 3 else "no"
    print(f"| time piecewise / rigid (target ≤ 3×) | {slow:.2f}× | {met} |")
    if s2p_fps is not None:
        r = n_frames / t["piecewise"] / s2p_fps
        met = "yes" if r >= 2 else "no"
        print(f"| speed piecewise / suite2p (target ≥ 2×) | {r:.1f}× | {met} |")


def main(argv=None) -> int:
    p = parser(__doc__, SIZES, repeat=1)
    p.add_argument("--suite2p-python", metavar="PATH", help="a Python interpreter with suite2p")
    p.add_argument("--piecewise-frames", type=int, metavar="N", help="frames of the warped movie")
    p.add_argument("--only-piecewise", action="store_true", help="only the piecewise rows")
    args = p.parse_args(argv)
    if args.only_piecewise:
        piecewise_section(
            args.size, args.dir, args.repeat, args.piecewise_frames, args.suite2p_python
        )
        return 0
    from skimage.registration import phase_cross_correlation

    n, size, n_sk = SIZES[args.size]
    t0 = time.perf_counter()
    frames, reference, true = make_movie(n, size)
    t_make = time.perf_counter() - t0
    max_shift = round(0.1 * size)

    got = {}

    def ours():
        got["ours"] = estimate_shifts(frames, reference, max_shift=max_shift)[0]

    def skimage():
        got["skimage"] = np.array(
            [-phase_cross_correlation(reference, f, upsample_factor=10)[0] for f in frames[:n_sk]]
        )

    def bare_run():
        got["bare"] = bare(frames, reference)

    t_ours = median_time(ours, args.repeat)
    t_sk = median_time(skimage, args.repeat)
    t_bare = median_time(bare_run, args.repeat)
    fps = {"ours": n / t_ours, "skimage": n_sk / t_sk, "bare": n / t_bare}
    err = {
        "ours": rms(got["ours"] - true),
        "skimage": rms(got["skimage"] - true[:n_sk]),
        "bare": rms(got["bare"] - true),
    }
    ours_sub = rms(got["ours"][:n_sk] - true[:n_sk])

    print(
        f"{n} frames of {size}×{size} float32 ({frames.nbytes / 2**20:.0f} MiB, made in "
        f"{t_make:.1f} s); |true shift| ≤ {MAX_SHIFT_PX:g} px, max_shift {max_shift} px; "
        f"{os.cpu_count()} CPUs; batch {_phasecorr.BATCH_BYTES >> 20} MiB of spectra"
    )
    print(
        "\n| method | frames | time | frames/s | RMS error (px) | ratio | target | met |\n"
        "|---|---|---|---|---|---|---|---|"
    )

    def row(name, frames_, t, e, ratio="", target="", met=""):
        print(
            f"| {name} | {frames_} | {t * 1e3:.0f} ms | {frames_ / t:,.0f} | {e:.3f} | "
            f"{ratio} | {target} | {met} |"
        )

    row("ours: estimate_shifts (subpixel)", n, t_ours, err["ours"])
    row("scikit-image phase_cross_correlation (upsample 10)", n_sk, t_sk, err["skimage"])
    row("bare batched rfft2/irfft2 (whitened, integer argmax)", n, t_bare, err["bare"])
    r_sk, r_bare = fps["ours"] / fps["skimage"], fps["ours"] / fps["bare"]
    print(
        f"| speed ratio ours / scikit-image | | | | | {r_sk:.1f}× | ≥ 2× | "
        f"{'yes' if r_sk >= 2 else 'no'} |"
    )
    print(
        f"| speed ratio ours / bare FFT phase correlation | | | | | {r_bare:.2f}× | ≥ 0.8× | "
        f"{'yes' if r_bare >= 0.8 else 'no'} |"
    )
    ok = err["ours"] <= 0.1 and ours_sub <= err["skimage"]
    print(
        f"| accuracy: ours on the scikit-image frames | {n_sk} | | | {ours_sub:.3f} | | "
        f"≤ 0.1 px and ≤ scikit-image | {'yes' if ok else 'no'} |"
    )
    n_e2e = E2E_FRAMES[args.size]
    t_reg, t_b, shifts = end_to_end(frames[:n_e2e], reference, args.dir, max(3, args.repeat))
    err = shifts - true[:n_e2e]
    err -= err.mean(axis=0)  # the reference built from the data sits at its own position
    ratio = t_b / t_reg
    print(
        f"| end to end: register() of a {n_e2e}-frame TIFF / bare FFT given the true reference "
        f"| {n_e2e} | {t_reg * 1e3:.0f} ms vs {t_b * 1e3:.0f} ms | {n_e2e / t_reg:,.0f} | "
        f"{rms(err):.3f} | {ratio:.2f}× | ≥ 0.8× | {'yes' if ratio >= 0.8 else 'no'} |"
    )
    piecewise_section(args.size, args.dir, args.repeat, args.piecewise_frames, args.suite2p_python)
    return 0


if __name__ == "__main__":
    sys.exit(main())
