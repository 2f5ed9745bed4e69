"""Smoke runs of the benchmarks (the full sizes are run by hand; see benchmarks/README.md)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def test_bench_tiff_smoke(tmp_path):
    proc = subprocess.run([sys.executable, str(BENCHMARKS / "bench_tiff.py"), "--size", "smoke",
                           "--dir", str(tmp_path), "--repeat", "2"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = [line for line in proc.stdout.splitlines() if line.startswith("| ")]
    assert len(rows) >= 10  # header + every measurement
    assert any("index all" in row for row in rows)
    assert any("random single frame" in row for row in rows)


def test_bench_siff_smoke(tmp_path):
    proc = subprocess.run([sys.executable, str(BENCHMARKS / "bench_siff.py"), "--size", "smoke",
                           "--dir", str(tmp_path), "--repeat", "2"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = [line for line in proc.stdout.splitlines() if line.startswith("| ")]
    assert len(rows) == 1 + 2 * 6  # header, 6 rows per encoding
    for kind in ("raw", "compressed"):
        assert sum(row.startswith(f"| {kind} |") for row in rows) == 6


def test_bench_scrub_smoke(tmp_path):
    proc = subprocess.run([sys.executable, str(BENCHMARKS / "bench_scrub.py"), "--size", "smoke",
                           "--dir", str(tmp_path), "--steps", "8"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = [line for line in proc.stdout.splitlines() if line.startswith("| ")]
    assert len(rows) == 1 + 3 * 2  # header; slice and slice + draw for three viewers
    assert any(line.startswith("slice: ") for line in proc.stdout.splitlines())
