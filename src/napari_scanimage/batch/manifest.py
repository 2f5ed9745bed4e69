"""The recordings a batch finds, their fingerprints, and the ``batch.json`` manifest.

Fingerprint
-----------
A recording's fingerprint identifies every one of its input files without reading them whole
(cheap on 20 GB files): per file its absolute path, size in bytes, modification time in
nanoseconds and the SHA-256 of sampled bytes — the first MiB (the TIFF header, ScanImage's
static metadata and the first pages) and :data:`SAMPLES` blocks of 64 KiB spread evenly over
the rest of the file, the last block ending at the end of the file.  ``settings`` is the
SHA-256 of what the template contributes (ROIs, trace settings, channel, registration
settings), so a changed template recomputes every recording.  A rerun skips a recording only
when both are unchanged and its outputs exist.

Manifest
--------
``batch.json`` in the output folder::

    {"template": "/abs/template.nsession.json", "package_version": "…",
     "scheduler": {"address": "tcp://…", "workers": 2, "local": true},
     "started": "…", "finished": "…",
     "recordings": [{"source", "status", "error", "outputs", "fingerprint",
                     "started", "finished"}, …]}

``source`` is the recording's path, or the list of paths of a split series; ``status`` is
"ok", "failed" or "skipped"; times are ISO 8601 with the UTC offset.  The file is rewritten
(atomically) each time a recording finishes.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import warnings
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .._atomic import atomic_write

__all__ = [
    "MANIFEST",
    "RECORDING_SUFFIXES",
    "fingerprint",
    "find_recordings",
    "now",
    "read_manifest",
    "source_key",
    "write_manifest",
]

MANIFEST = "batch.json"
RECORDING_SUFFIXES = (".tif", ".tiff", ".siff")
HEAD_BYTES = 1 << 20  # the header, the static metadata and the first pages
SAMPLE_BYTES = 64 << 10
SAMPLES = 16
FINGERPRINT_METHOD = (
    f"size + mtime_ns + sha256(first {HEAD_BYTES >> 20} MiB and {SAMPLES} blocks of "
    f"{SAMPLE_BYTES >> 10} KiB spread evenly to the end)"
)


def now() -> str:
    """The current time, ISO 8601 with the UTC offset."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def find_recordings(pattern: str) -> list[tuple[Path, ...]]:
    """The recordings in a folder or matching a glob: each one file, or every file of a split
    series (found from any of its files, in acquisition order), absolute paths.
    """
    from ..io.series import discover_series

    path = Path(pattern)
    if path.is_dir():
        found = [p for p in path.iterdir() if p.suffix.lower() in RECORDING_SUFFIXES]
    else:
        found = [
            Path(p) for p in glob.glob(pattern) if Path(p).suffix.lower() in RECORDING_SUFFIXES
        ]
    files = sorted(p.absolute() for p in found if p.is_file() and not p.name.startswith("."))
    seen: set[Path] = set()
    out: list[tuple[Path, ...]] = []
    for f in files:
        if f in seen:
            continue  # another file of a series already taken
        with warnings.catch_warnings():  # (gaps are reported when the series is opened)
            warnings.simplefilter("ignore")
            try:
                series = tuple(p.absolute() for p in discover_series(f))
            except OSError:
                series = (f,)
        seen.update(series)
        out.append(series)
    return out


def _sampled_hash(path: Path, size: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        h.update(fh.read(HEAD_BYTES))
        rest = size - HEAD_BYTES
        if rest > 0:
            for k in range(SAMPLES):
                start = HEAD_BYTES + max(0, (rest - SAMPLE_BYTES) * (k + 1) // SAMPLES)
                fh.seek(start)
                h.update(fh.read(SAMPLE_BYTES))
    return h.hexdigest()


def fingerprint(paths: Sequence[Path], settings: str) -> dict[str, Any]:
    """The fingerprint of a recording's files (see the module notes) and the settings' hash.

    Raises
    ------
    OSError
        A file cannot be read.
    """
    files = []
    for p in paths:
        st = os.stat(p)
        files.append(
            {
                "path": str(p),
                "size": int(st.st_size),
                "mtime_ns": int(st.st_mtime_ns),
                "sha256": _sampled_hash(p, int(st.st_size)),
            }
        )
    return {"method": FINGERPRINT_METHOD, "files": files, "settings": settings}


def source_key(paths: Sequence[Path]) -> str | list[str]:
    """The manifest's ``source``: the path, or the list of paths of a split series."""
    return str(paths[0]) if len(paths) == 1 else [str(p) for p in paths]


def read_manifest(path: Path) -> dict[str, dict[str, Any]]:
    """The entries of a previous manifest by ``json.dumps(source)`` ({} if none or unreadable:
    everything is then recomputed).
    """
    try:
        doc = json.loads(path.read_bytes().decode())
        entries = doc["recordings"]
        return {json.dumps(e["source"]): e for e in entries if isinstance(e, dict)}
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def write_manifest(path: Path, doc: dict[str, Any]) -> None:
    """Write the manifest atomically."""
    atomic_write(path, (json.dumps(doc, indent=1, allow_nan=False) + "\n").encode())
