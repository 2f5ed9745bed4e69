"""Helpers shared by the benchmark scripts (run as ``python benchmarks/bench_*.py``, so this
folder is on ``sys.path``).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time


def median_time(fn, repeat: int) -> float:
    """Median seconds of ``repeat`` calls of ``fn``, after one untimed call (warm-up: compiled
    kernels loaded, buffers and page cache touched).
    """
    fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def parser(doc: str, sizes, repeat: int) -> argparse.ArgumentParser:
    """``--size``, ``--dir`` (generated files, reused), ``--repeat`` and the hidden
    ``--rss-child`` (memory is measured in a fresh subprocess).
    """
    p = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    p.add_argument("--size", choices=sorted(sizes), default="full")
    p.add_argument("--dir", default=os.path.join(tempfile.gettempdir(), "napari_scanimage_bench"))
    p.add_argument("--repeat", type=int, default=repeat)
    p.add_argument("--rss-child", default=None, help=argparse.SUPPRESS)
    return p
