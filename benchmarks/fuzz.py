"""Mutation fuzzer of the ScanImage TIFF and `.siff` readers.

Writes a few tiny seed recordings (planar and volumetric BigTIFF, raw and compressed `.siff`),
then for every case applies one random mutation to one seed (bit flips in the ScanImage header
block, IFDs, tag values, descriptions or pixel / photon data; offsets past the end of the file;
huge counts; IFD loops; truncation; zeroed regions), writes the mutant and runs a fixed
workload on it in this process::

    open_dataset of the first 60 % -> append the rest -> refresh -> read(c) for every channel
    open_dataset -> Dataset.read(c) for every channel (equal to the refreshed reads)
                 -> multi-ROI only: Dataset.read(0, field=k) for every field
                 -> `.siff` only: histogram(0), lifetime_array(0).compute()

Outcomes: ``ok`` (the data read is consistent with the dataset's shape and dtype), ``typed``
(a :class:`~napari_scanimage.errors.ScanImageError` subclass), ``OTHER`` (any other exception,
or data inconsistent with the dataset's own description), ``slow`` (the case took longer than
``--max-seconds``; a case still running after ``--hang-seconds`` is interrupted) and
``over-alloc`` (the traced peak allocation exceeded the memory bound).  Warnings are allowed.

Memory bound: peak ``tracemalloc`` growth during the case (NumPy registers its array buffers
with tracemalloc, so outputs, temporaries and buffers read from the file are all counted; the
memory maps of the files are not) must stay below ``16 MB + 4 x file size``.  The seeds are a
few tens of kilobytes and a correct read of them needs well under 1 MB, so every legitimate read
of a mutant fits with room to spare; exceeding the bound means the reader trusted a size or a
count that the bytes on disk do not back (frame shape, bin count, page count, text length).

Usage::

    python benchmarks/fuzz.py --cases 2000 [--seed 0] [--dir DIR]

A hard crash (segmentation fault in compiled code) ends the run: the mutant being read is left
in ``DIR/mutants/`` and ``DIR/current_case.txt`` names its mutation.

Exits non-zero when any OTHER, slow or over-alloc case occurred; each one is printed with its
mutation and traceback, and the mutant is kept in ``DIR/failures/`` for reproduction.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import shutil
import signal
import struct
import sys
import tempfile
import threading
import time
import traceback
import tracemalloc
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from napari_scanimage import open_dataset
from napari_scanimage.errors import ScanImageError
from napari_scanimage.io.siff import SMALL_JOB_PHOTONS
from napari_scanimage.testing.legacy import LegacyLayout, write_legacy_tiff
from napari_scanimage.testing.mroi import FieldSpec, write_mroi_tiff
from napari_scanimage.testing.siff import write_siff
from napari_scanimage.testing.tiff import SyntheticLayout, write_scanimage_tiff

MAX_SECONDS = 2.0
HANG_SECONDS = 20.0
BASE_BOUND = 16 << 20
FILE_FACTOR = 4
FAILING = ("OTHER", "slow", "over-alloc")

_TAG_DESCRIPTION, _TAG_OFFSETS, _TAG_COUNTS = 270, 273, 279
_INTERESTING = (
    0,
    1,
    2,
    7,
    8,
    15,
    16,
    255,
    256,
    0x7FFF,
    0x8000,
    0xFFFF,
    0x10000,
    2**31 - 1,
    2**31,
    2**32 - 1,
    2**32,
    2**40,
    2**62,
    2**63 - 1,
    2**63,
    2**64 - 1,
)


# -- seeds ---------------------------------------------------------------------------------
@dataclass
class Entry:
    pos: int  # byte offset of the IFD entry
    tag: int
    type: int
    count: int
    value: int
    value_pos: int  # byte offset of the entry's value / offset field


@dataclass
class Ifd:
    offset: int
    end: int  # first byte after the next-IFD field
    next_pos: int
    entries: list[Entry]


@dataclass
class Seed:
    name: str
    data: bytes
    siff: bool
    suffix: str
    bo: str = "<"
    big: bool = True
    ifds: list[Ifd] = field(default_factory=list)
    header_block: tuple[int, int] = (0, 0)  # bytes before the first IFD (TIFF + SI header)
    descriptions: list[tuple[int, int]] = field(default_factory=list)
    data_regions: list[tuple[int, int]] = field(default_factory=list)


def _parse(seed: Seed) -> Seed:
    """IFD chain, entries, descriptions and pixel / photon regions of a seed file."""
    d = seed.data
    seed.bo = "<" if d[:2] == b"II" else ">"
    bo = seed.bo
    seed.big = struct.unpack_from(bo + "H", d, 2)[0] == 43
    cnt_fmt, ent_size, off_fmt = ("Q", 20, "Q") if seed.big else ("H", 12, "I")
    val_fmt = off_fmt
    ifd = struct.unpack_from(bo + off_fmt, d, 8 if seed.big else 4)[0]
    seed.header_block = (0, ifd)
    seen = set()
    while ifd and ifd not in seen and ifd < len(d):
        seen.add(ifd)
        n = struct.unpack_from(bo + cnt_fmt, d, ifd)[0]
        start = ifd + struct.calcsize(cnt_fmt)
        entries, offsets, counts = [], [], []
        for i in range(n):
            pos = start + i * ent_size
            tag, typ = struct.unpack_from(bo + "HH", d, pos)
            count = struct.unpack_from(bo + ("Q" if seed.big else "I"), d, pos + 4)[0]
            vpos = pos + (12 if seed.big else 8)
            value = struct.unpack_from(bo + val_fmt, d, vpos)[0]
            entries.append(Entry(pos, tag, typ, count, value, vpos))
            if tag == _TAG_DESCRIPTION and count > (8 if seed.big else 4):
                seed.descriptions.append((value, count))
            if tag == _TAG_OFFSETS:
                offsets.append(value)
            if tag == _TAG_COUNTS:
                counts.append(value)
        next_pos = start + n * ent_size
        seed.data_regions += [(o, c) for o, c in zip(offsets, counts, strict=False) if c]
        nxt = struct.unpack_from(bo + off_fmt, d, next_pos)[0]
        seed.ifds.append(Ifd(ifd, next_pos + struct.calcsize(off_fmt), next_pos, entries))
        ifd = nxt
    return seed


def make_seeds(folder: Path) -> list[Seed]:
    """Tiny seed recordings (16 x 16 pages, a few frames) and their parsed structure."""
    folder.mkdir(parents=True, exist_ok=True)
    planar = SyntheticLayout(channels=(1, 2), num_volumes=3, height=16, width=16)
    volume = SyntheticLayout(
        channels=(2,),
        num_planes=3,
        num_flyback=1,
        num_volumes=2,
        height=16,
        width=16,
        dtype="uint16",
    )
    flim = SyntheticLayout(channels=(1, 2), num_volumes=3, height=16, width=16)
    write_scanimage_tiff(folder / "planar.tif", planar)
    write_scanimage_tiff(folder / "volume.tif", volume)
    write_siff(
        folder / "raw.siff",
        flim,
        photons_per_frame=150,
        keep_truth=False,
        seed=1,
        annotations={1: "stim on"},
    )
    write_siff(
        folder / "compressed.siff",
        flim,
        compressed=True,
        photons_per_frame=150,
        keep_truth=False,
        seed=2,
    )
    # classic (non-Big) TIFF of the older ScanImage versions, both byte orders, and a
    # multi-ROI page stack
    write_legacy_tiff(
        folder / "si3.tif",
        LegacyLayout(generation="SI3", channels=(1, 2), num_volumes=3, height=16, width=16),
    )
    write_legacy_tiff(
        folder / "si5be.tif",
        LegacyLayout(
            generation="SI5",
            channels=(1,),
            num_planes=2,
            num_flyback=1,
            num_volumes=2,
            height=16,
            width=16,
            byteorder=">",
        ),
    )
    write_mroi_tiff(
        folder / "mroi.tif",
        (
            FieldSpec("a", 16, 12, (-1.0, 0.0), (2.0, 1.5)),
            FieldSpec("b", 8, 10, (1.0, 0.0), (1.0, 1.25)),
        ),
        fly_to_lines=2,
        channels=(1,),
        channel_names=("Green",),
        num_planes=1,
        num_flyback=0,
        num_volumes=3,
    )
    seeds = []
    for name in (
        "planar.tif",
        "volume.tif",
        "raw.siff",
        "compressed.siff",
        "si3.tif",
        "si5be.tif",
        "mroi.tif",
    ):
        p = folder / name
        seeds.append(_parse(Seed(p.stem, p.read_bytes(), p.suffix == ".siff", p.suffix)))
    return seeds


# -- mutations -----------------------------------------------------------------------------
def _flip(data: bytearray, rng, lo: int, hi: int) -> str:
    hi = max(lo + 1, min(hi, len(data)))
    n = int(rng.integers(1, 9))
    where = sorted(int(x) for x in rng.integers(lo, hi, n))
    for i in where:
        data[i] ^= 1 << int(rng.integers(0, 8))
    return f"flipped a bit at bytes {where}"


def _interesting(rng, size: int) -> int:
    pool = _INTERESTING + (size - 1, size, size + 1, size + 4096, int(rng.integers(0, 2**63)))
    return int(pool[int(rng.integers(0, len(pool)))])


def _put(seed: Seed, data: bytearray, pos: int, value: int, fmt: str) -> None:
    value &= (1 << (8 * struct.calcsize(fmt))) - 1
    struct.pack_into(seed.bo + fmt, data, pos, value)


def _pick(rng, items):
    return items[int(rng.integers(0, len(items)))]


def m_flip_header(seed, data, rng):
    lo, hi = seed.header_block
    return "header block: " + _flip(data, rng, lo, hi)


def m_flip_ifd(seed, data, rng):
    ifd = _pick(rng, seed.ifds)
    return f"IFD at {ifd.offset}: " + _flip(data, rng, ifd.offset, ifd.end)


def m_tag_value(seed, data, rng):
    ifd = _pick(rng, seed.ifds)
    e = _pick(rng, ifd.entries)
    v = _interesting(rng, len(data))
    _put(seed, data, e.value_pos, v, "Q" if seed.big else "I")
    return f"IFD at {ifd.offset}: tag {e.tag} value {e.value} -> {v}"


def m_tag_count(seed, data, rng):
    ifd = _pick(rng, seed.ifds)
    e = _pick(rng, ifd.entries)
    v = _interesting(rng, len(data))
    _put(seed, data, e.pos + 4, v, "Q" if seed.big else "I")
    return f"IFD at {ifd.offset}: tag {e.tag} count {e.count} -> {v}"


def m_tag_type(seed, data, rng):
    ifd = _pick(rng, seed.ifds)
    e = _pick(rng, ifd.entries)
    v = int(rng.integers(0, 20)) if rng.random() < 0.8 else int(rng.integers(0, 65536))
    _put(seed, data, e.pos + 2, v, "H")
    return f"IFD at {ifd.offset}: tag {e.tag} type {e.type} -> {v}"


def m_offset_past_eof(seed, data, rng):
    ifd = _pick(rng, seed.ifds)
    targets = [
        e
        for e in ifd.entries
        if e.tag in (_TAG_OFFSETS, _TAG_DESCRIPTION) or e.count * 2 > (8 if seed.big else 4)
    ]
    past = len(data) + int(_pick(rng, (0, 1, 8, 4096, 2**20, 2**32)))
    if rng.random() < 0.3 or not targets:
        _put(seed, data, ifd.next_pos, past, "Q" if seed.big else "I")
        return f"IFD at {ifd.offset}: next-IFD offset -> {past} (file has {len(data)} bytes)"
    e = _pick(rng, targets)
    _put(seed, data, e.value_pos, past, "Q" if seed.big else "I")
    return f"IFD at {ifd.offset}: tag {e.tag} offset -> {past} (file has {len(data)} bytes)"


def m_huge_entry_count(seed, data, rng):
    ifd = _pick(rng, seed.ifds)
    v = _interesting(rng, len(data))
    _put(seed, data, ifd.offset, v, "Q" if seed.big else "H")
    return f"IFD at {ifd.offset}: entry count -> {v}"


def m_ifd_loop(seed, data, rng):
    k = int(rng.integers(0, len(seed.ifds)))
    j = int(rng.integers(0, k + 1))
    _put(seed, data, seed.ifds[k].next_pos, seed.ifds[j].offset, "Q" if seed.big else "I")
    return f"IFD {k} (at {seed.ifds[k].offset}): next-IFD -> IFD {j} (loop)"


def m_ifd_misaligned(seed, data, rng):
    k = int(rng.integers(0, len(seed.ifds)))
    v = int(rng.integers(0, len(data)))
    _put(seed, data, seed.ifds[k].next_pos, v, "Q" if seed.big else "I")
    return f"IFD {k} (at {seed.ifds[k].offset}): next-IFD -> arbitrary byte {v}"


def m_flip_description(seed, data, rng):
    off, n = _pick(rng, seed.descriptions)
    return f"description at {off}: " + _flip(data, rng, off, off + n)


_NUMBER = re.compile(rb"-?\d+(\.\d+)?")


def m_text_number(seed, data, rng):
    """Replace a number in the header block or a description by a same-length oddity."""
    regions = [seed.header_block] + [(o, o + n) for o, n in seed.descriptions]
    lo, hi = _pick(rng, regions)
    found = list(_NUMBER.finditer(bytes(data[lo:hi])))
    if not found:
        return m_flip_header(seed, data, rng)
    m = _pick(rng, found)
    n = m.end() - m.start()
    choices = [
        b"9" * n,
        b"0" * n,
        (b"-" + b"9" * n)[:n],
        b"nan".ljust(n)[:n] if n >= 3 else b"-" * n,
        b"1e99".ljust(n)[:n] if n >= 4 else b"9" * n,
        b"[" * n,
        b" " * n,
    ]
    new = _pick(rng, choices)
    old = bytes(data[lo + m.start() : lo + m.end()])
    data[lo + m.start() : lo + m.end()] = new
    return f"text at {lo + m.start()}: {old!r} -> {new!r}"


def m_flip_data(seed, data, rng):
    off, n = _pick(rng, seed.data_regions)
    kind = "photon" if seed.siff else "pixel"
    return f"{kind} data at {off}: " + _flip(data, rng, off, off + n)


def m_data_words(seed, data, rng):
    """Overwrite a few 2- or 8-byte words of pixel / photon data with extreme values."""
    off, n = _pick(rng, seed.data_regions)
    size = 8 if (seed.siff and rng.random() < 0.5) else 2
    where = []
    for _ in range(int(rng.integers(1, 5))):
        if n < size:
            break
        p = off + int(rng.integers(0, (n - size) // size + 1)) * size
        data[p : p + size] = (
            b"\xff" * size if rng.random() < 0.7 else b"\x7f" + b"\xff" * (size - 1)
        )
        where.append(p)
    return f"data words ({size} bytes) at {where} set to extreme values"


def m_truncate(seed, data, rng):
    cut = int(rng.integers(0, len(data)))
    del data[cut:]
    return f"truncated at byte {cut} of {len(seed.data)}"


def m_zero_region(seed, data, rng):
    start = int(rng.integers(0, len(data)))
    n = int(rng.integers(1, 4097))
    data[start : start + n] = bytes(len(data[start : start + n]))
    return f"zeroed bytes {start}..{min(start + n, len(data))}"


MUTATIONS = {
    f.__name__[2:]: f
    for f in (
        m_flip_header,
        m_flip_ifd,
        m_tag_value,
        m_tag_count,
        m_tag_type,
        m_offset_past_eof,
        m_huge_entry_count,
        m_ifd_loop,
        m_ifd_misaligned,
        m_flip_description,
        m_text_number,
        m_flip_data,
        m_data_words,
        m_truncate,
        m_zero_region,
    )
}


# -- running -------------------------------------------------------------------------------
class _Hang(BaseException):
    """Raised by the alarm in a case that runs for too long."""


class _Inconsistent(Exception):
    """The reader returned data that contradict the dataset's own description."""


def grown_reads(path: Path) -> list[np.ndarray] | None:
    """The mutant as a file still being written: open its first 60 %, append the rest,
    ``refresh()`` and read every channel (None when the reader refuses either part).
    """
    data = path.read_bytes()
    cut = len(data) * 3 // 5
    part = path.with_name(f"{path.stem}_growing{path.suffix}")
    part.write_bytes(data[:cut])
    try:
        try:
            ds = open_dataset(part)
        except ScanImageError:
            return None
        with ds:
            with open(part, "ab") as fh:
                fh.write(data[cut:])
            try:
                ds.refresh()
                return [ds.read(c) for c in range(ds.info.num_channels)]
            except ScanImageError:
                return None
    finally:
        part.unlink(missing_ok=True)


def workload(path: Path, siff: bool) -> None:
    """Open, read every channel, and for `.siff` the histogram and lifetime image; the same
    file opened while growing and refreshed must read the same.
    """
    grown = grown_reads(path)
    with open_dataset(path) as ds:
        info = ds.info
        for c in range(len(info.channel_ids)):
            arr = ds.read(c)
            if grown is not None and not (
                len(grown) > c and grown[c].shape == arr.shape and np.array_equal(grown[c], arr)
            ):
                raise _Inconsistent(
                    f"read({c}) after the file grew and was refreshed differs from a fresh open"
                )
            if arr.shape[-2:] != tuple(info.frame_shape) or arr.dtype != info.dtype:
                raise _Inconsistent(
                    f"read({c}) gave {arr.shape} {arr.dtype}; the dataset "
                    f"says {info.frame_shape} {info.dtype}"
                )
            if arr.shape[0] != ds.layout.num_volumes:
                raise _Inconsistent(
                    f"read({c}) gave {arr.shape[0]} time rows; the layout "
                    f"has {ds.layout.num_volumes} volumes"
                )
        if info.mroi and not siff:  # multi-ROI: every field of channel 0
            for f in ds.fields:
                arr = ds.read(0, field=f.index)
                if arr.shape[-2:] != (f.height, f.width):
                    raise _Inconsistent(
                        f"field {f.name} read as {arr.shape}; it is {f.height}×{f.width}"
                    )
        if siff:
            hist = ds.histogram(0)
            if hist.ndim != 1 or (np.asarray(hist) < 0).any():
                raise _Inconsistent(f"histogram(0) has shape {hist.shape} or negative counts")
            life = ds.lifetime_array(0).compute(scheduler="synchronous")
            if life.shape[-2:] != tuple(info.frame_shape):
                raise _Inconsistent(f"lifetime_array(0) has shape {life.shape}")


def warm_up(folder: Path, seeds: list[Seed]) -> None:
    """Load lazy imports (tifffile) and the compiled `.siff` kernels before any case is
    measured: a mutant that takes the compiled path must not be charged for compiling it.
    """
    import tifffile  # noqa: F401 - imported lazily by the readers of irregular pages

    lay = SyntheticLayout(channels=(1,), num_volumes=2, height=16, width=16)
    paths = [(folder / (s.name + s.suffix), s.siff) for s in seeds]
    for compressed in (False, True):
        p = folder / f"warm{int(compressed)}.siff"
        write_siff(
            p, lay, compressed=compressed, photons_per_frame=4 * SMALL_JOB_PHOTONS, keep_truth=False
        )
        paths.append((p, True))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for p, siff in paths:
            workload(p, siff)


@dataclass
class Case:
    index: int
    seed: str
    mutation: str
    detail: str
    outcome: str = "ok"
    error: str = ""
    where: str = ""
    trace: str = ""
    seconds: float = 0.0
    peak: int = 0
    size: int = 0
    warnings: int = 0
    suffix: str = ".tif"


def _location(exc: BaseException) -> str:
    """file:line of the innermost frame of the raising traceback."""
    tb = traceback.extract_tb(exc.__traceback__)
    if not tb:
        return "?"
    f = tb[-1]
    return f"{os.path.relpath(f.filename)}:{f.lineno} in {f.name}"


def run_case(case: Case, path: Path, siff: bool, max_seconds: float, hang_seconds: float) -> Case:
    """Run the workload on one mutant and classify the outcome."""
    case.size = path.stat().st_size
    alarm = threading.current_thread() is threading.main_thread() and hasattr(signal, "setitimer")
    old = None
    if alarm:

        def _raise(signum, frame):
            raise _Hang()

        old = signal.signal(signal.SIGALRM, _raise)
        signal.setitimer(signal.ITIMER_REAL, hang_seconds)
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    t0 = time.perf_counter()
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            workload(path, siff)
        case.warnings = len(caught)
    except _Hang:
        case.outcome, case.error = "slow", f"interrupted after {hang_seconds:g} s"
        case.trace = traceback.format_exc()
    except ScanImageError as exc:
        case.outcome, case.error, case.where = "typed", type(exc).__name__, _location(exc)
    except Exception as exc:  # noqa: BLE001 - the fuzzer's purpose is to catch these
        case.outcome, case.error, case.where = "OTHER", type(exc).__name__, _location(exc)
        case.trace = traceback.format_exc()
    finally:
        if alarm:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, old)
    case.seconds = time.perf_counter() - t0
    case.peak = max(0, tracemalloc.get_traced_memory()[1] - base)
    if case.outcome in ("ok", "typed"):
        if case.peak > BASE_BOUND + FILE_FACTOR * case.size:
            case.outcome = "over-alloc"
        elif case.seconds > max_seconds:
            case.outcome = "slow"
    return case


def fuzz(
    cases: int,
    seed: int = 0,
    folder: str | os.PathLike | None = None,
    *,
    max_seconds: float = MAX_SECONDS,
    hang_seconds: float = HANG_SECONDS,
    out=sys.stdout,
) -> dict:
    """Run ``cases`` mutants; returns ``{"cases": [Case], "counts": Counter, "failures": [Case]}``.

    Mutants are written to ``folder`` (a temporary folder when None) and deleted after their
    case, except failing ones, which are kept in ``folder/failures/``.
    """
    own = folder is None
    root = Path(tempfile.mkdtemp(prefix="nsi_fuzz_")) if own else Path(folder)
    root.mkdir(parents=True, exist_ok=True)
    work = root / "mutants"
    work.mkdir(exist_ok=True)
    seeds = make_seeds(root / "seeds")
    warm_up(root / "seeds", seeds)
    log = logging.getLogger("tifffile")
    level = log.level
    log.setLevel(logging.CRITICAL)  # tifffile logs every corrupt tag it meets
    started = not tracemalloc.is_tracing()
    if started:
        tracemalloc.start()
    results: list[Case] = []
    try:
        for s in seeds:  # the unmutated seeds must read cleanly
            path = root / "seeds" / (s.name + s.suffix)
            base = run_case(Case(-1, s.name, "none", "seed"), path, s.siff, 60.0, 120.0)
            if base.outcome != "ok":
                raise RuntimeError(
                    f"seed {s.name} does not read: {base.outcome} {base.error} "
                    f"{base.peak} bytes {base.seconds:.2f} s\n{base.trace}"
                )
        rng = np.random.default_rng(seed)
        names = sorted(MUTATIONS)
        for i in range(cases):
            s = seeds[int(rng.integers(0, len(seeds)))]
            name = names[int(rng.integers(0, len(names)))]
            data = bytearray(s.data)
            try:
                detail = MUTATIONS[name](s, data, rng)
            except (ValueError, IndexError) as exc:  # a region the seed lacks
                detail = f"(mutation not applicable: {exc}); unmutated"
            path = work / f"case{i:06d}{s.suffix}"
            path.write_bytes(bytes(data))
            # a hard crash of the reader (a fault in compiled code) ends this process: the
            # mutant stays in mutants/ and this note names its mutation
            (root / "current_case.txt").write_text(
                f"case {i}: {s.name} {name}: {detail}\nfile: {path}\n"
            )
            case = run_case(
                Case(i, s.name, name, detail, suffix=s.suffix),
                path,
                s.siff,
                max_seconds,
                hang_seconds,
            )
            results.append(case)
            if case.outcome in FAILING:
                keep = root / "failures"
                keep.mkdir(exist_ok=True)
                shutil.copy2(path, keep / path.name)
            path.unlink()
    finally:
        log.setLevel(level)
        if started:
            tracemalloc.stop()
        if own:
            failures_kept = (root / "failures").exists()
            if not failures_kept:
                shutil.rmtree(root, ignore_errors=True)
    counts = Counter(c.outcome for c in results)
    failures = [c for c in results if c.outcome in FAILING]
    report(results, counts, failures, root, out)
    return {"cases": results, "counts": counts, "failures": failures, "dir": root}


def report(results, counts, failures, root: Path, out) -> None:
    p = lambda *a: print(*a, file=out)  # noqa: E731
    p(f"\n{len(results)} cases; mutants in {root}")
    p("\n| outcome | cases |\n|---|---|")
    for k in ("ok", "typed", *FAILING):
        p(f"| {k} | {counts.get(k, 0)} |")
    typed = Counter(c.error for c in results if c.outcome == "typed")
    if typed:
        p("\n| typed error | cases |\n|---|---|")
        for k, v in typed.most_common():
            p(f"| {k} | {v} |")
    per_mut = Counter((c.mutation, c.outcome) for c in results)
    p("\n| mutation | ok | typed | failing |\n|---|---|---|---|")
    for m in sorted(MUTATIONS):
        bad = sum(per_mut[(m, k)] for k in FAILING)
        p(f"| {m} | {per_mut[(m, 'ok')]} | {per_mut[(m, 'typed')]} | {bad} |")
    if results:
        slow = max(results, key=lambda c: c.seconds)
        big = max(results, key=lambda c: c.peak)
        p(
            f"\nslowest case: #{slow.index} {slow.seconds:.3f} s ({slow.seed}, {slow.mutation}: "
            f"{slow.detail}; {slow.outcome})"
        )
        p(
            f"largest allocation: #{big.index} {big.peak / 2**20:.2f} MiB for a {big.size}-byte "
            f"file ({big.seed}, {big.mutation}: {big.detail}; {big.outcome})"
        )
        p(f"cases with warnings: {sum(1 for c in results if c.warnings)}")
    distinct: dict[tuple[str, str, str], list[Case]] = {}
    for c in failures:
        distinct.setdefault((c.outcome, c.error, c.where), []).append(c)
    if distinct:
        p(
            f"\n{len(failures)} failing case(s), {len(distinct)} distinct "
            "(outcome, exception, location):"
        )
    for (outcome, error, where), group in distinct.items():
        c = group[0]
        p(f"\n## {outcome}: {error} at {where} ({len(group)} case(s); e.g. #{c.index})")
        for g in group[:5]:
            p(
                f"- #{g.index} {g.seed} {g.mutation}: {g.detail} ({g.seconds:.2f} s, "
                f"{g.peak / 2**20:.1f} MiB) -> failures/case{g.index:06d}{g.suffix}"
            )
        if c.trace:
            p(c.trace.rstrip())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cases", type=int, default=500)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--dir", default=None, help="work folder (default: a temporary folder)")
    ap.add_argument("--max-seconds", type=float, default=MAX_SECONDS)
    ap.add_argument("--hang-seconds", type=float, default=HANG_SECONDS)
    ap.add_argument("--size", default=None, help=argparse.SUPPRESS)  # run_bench compatibility
    args = ap.parse_args(argv)
    result = fuzz(
        args.cases,
        args.seed,
        args.dir,
        max_seconds=args.max_seconds,
        hang_seconds=args.hang_seconds,
    )
    return 1 if result["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
