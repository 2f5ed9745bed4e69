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
  in the same process (medians): the throughput ratio (target ≥ 0.8×).
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
            path, channels=(1,), num_volumes=n, height=Y, width=X, dtype="uint16",
            content=lambda g: pages[g],
        )
    as_uint16 = np.clip(np.round(frames), 0, 65535).astype(np.uint16)
    t_reg, t_bare = [], []
    with nsi.open_dataset(path) as ds:
        reg = nsi.register(ds)  # warm-up (page cache, FFT plans)
        for _ in range(max(1, repeat)):
            t0 = time.perf_counter()
            reg = nsi.register(ds)
            t_reg.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            bare(as_uint16, reference)
            t_bare.append(time.perf_counter() - t0)
    return statistics.median(t_reg), statistics.median(t_bare), reg.shifts[:, 0]


def main(argv=None) -> int:
    args = parser(__doc__, SIZES, repeat=1).parse_args(argv)
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
