"""Batch analysis on a dask.distributed cluster: a template session applied to many recordings.

Every recording is registered (with the template's registration settings) and its ROI traces
computed on the registered frames; several recordings run at once, and the registration of one
recording is split into tasks over blocks of frames (the reference first).  Tasks carry file
paths, time-row ranges and the reference image, never frames; the client writes each
recording's outputs (``<stem>.registration.npz``, ``<stem>_traces.csv``) and the manifest
``batch.json`` as it finishes.  A rerun skips recordings whose inputs (fingerprint) and outputs
are unchanged.

Functions
---------
prepare_batch
    Read the template, find the recordings, decide which are skipped.
run_batch
    Run a prepared batch on a ``distributed.Client``.
registration_settings
    The registration a template session asks for.
find_recordings, fingerprint
    Recordings (split series grouped) in a folder or glob; the fingerprint of their files.
"""

from __future__ import annotations

from .manifest import MANIFEST, find_recordings, fingerprint
from .runner import BatchPlan, BatchResult, prepare_batch, registration_settings, run_batch
from .tasks import RecordingFiles, RegistrationSettings

__all__ = [
    "MANIFEST",
    "BatchPlan",
    "BatchResult",
    "RecordingFiles",
    "RegistrationSettings",
    "find_recordings",
    "fingerprint",
    "prepare_batch",
    "registration_settings",
    "run_batch",
]
