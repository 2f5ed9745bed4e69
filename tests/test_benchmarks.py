"""Smoke runs of the benchmarks (the full sizes are run by hand; see benchmarks/README.md)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def run_bench(script: str, tmp_path, *args: str) -> tuple[str, list[str]]:
    """Run a benchmark at its smoke size; (stdout, its markdown table rows)."""
    proc = subprocess.run(
        [
            sys.executable,
            str(BENCHMARKS / script),
            "--size",
            "smoke",
            "--dir",
            str(tmp_path),
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout, [line for line in proc.stdout.splitlines() if line.startswith("| ")]


def test_bench_tiff_smoke(tmp_path):
    _, rows = run_bench("bench_tiff.py", tmp_path, "--repeat", "2")
    assert len(rows) >= 10  # header + every measurement
    assert any("index all" in row for row in rows)
    assert any("random single frame" in row for row in rows)


def test_bench_siff_smoke(tmp_path):
    _, rows = run_bench("bench_siff.py", tmp_path, "--repeat", "2")
    assert len(rows) == 1 + 2 * 6  # header, 6 rows per encoding
    for kind in ("raw", "compressed"):
        assert sum(row.startswith(f"| {kind} |") for row in rows) == 6


def test_bench_scrub_smoke(tmp_path):
    out, rows = run_bench("bench_scrub.py", tmp_path, "--steps", "8", "--rounds", "2")
    assert len(rows) == 1 + 3 * 2  # header; slice and slice + draw for three viewers
    assert any(line.startswith("slice: ") for line in out.splitlines())


def test_bench_traces_smoke(tmp_path):
    _, rows = run_bench("bench_traces.py", tmp_path, "--repeat", "1")
    assert len(rows) == 1 + 5  # header, 4 timings, RSS
    assert any(row.startswith("| traces, 50 ROIs, sum") for row in rows)


def test_bench_registration_smoke(tmp_path):
    _, rows = run_bench("bench_registration.py", tmp_path)
    # header, 3 methods, 2 speed ratios, accuracy, end to end; piecewise: header, rigid,
    # piecewise, accuracy, time ratio (suite2p skipped)
    assert len(rows) == 1 + 7 + 5
    assert any(row.startswith("| end to end: register()") for row in rows)
    assert any(row.startswith("| ours piecewise: register(piecewise=True)") for row in rows)
    assert any(row.startswith("| speed ratio ours / scikit-image |") for row in rows)
    assert any(row.startswith("| speed ratio ours / bare FFT") for row in rows)


def test_bench_flim_smoke(tmp_path):
    _, rows = run_bench("bench_flim.py", tmp_path, "--repeat", "1")
    assert len(rows) == 1 + 2  # header, lifetime traces, lifetime image
    assert any(row.startswith("| lifetime traces, 10 ROIs") for row in rows)
    assert any(row.startswith("| per-pixel lifetime image, 100 frames") for row in rows)


def test_bench_mroi_smoke(tmp_path):
    _, rows = run_bench("bench_mroi.py", tmp_path, "--repeat", "1")
    assert len(rows) == 1 + 5  # header, whole pages, 2 fields, all fields, refresh
    assert any(row.startswith("| all fields, one by one") for row in rows)
    assert any(row.startswith("| refresh after ") for row in rows)


def test_bench_detection_smoke(tmp_path):
    _, rows = run_bench("bench_detection.py", tmp_path)
    assert len(rows) == 1 + 6  # header, planar, 3 planes, moving registered and not
    f1 = {row.split("|")[1].strip(): float(row.split("|")[2]) for row in rows[1:]}
    assert f1["planar"] >= 0.8 and f1["moving, registered (incl. register)"] >= 0.8


def test_bench_paths_smoke(tmp_path):
    _, rows = run_bench("bench_paths.py", tmp_path, "--repeat", "1")
    assert len(rows) == 1 + 11  # header, 2 dask, 5 memory, 2 lifetime images, 2 histogram
    assert any(row.startswith("| TIFF one frame: ") for row in rows)
    assert sum("peak RSS growth" in row for row in rows) == 5
