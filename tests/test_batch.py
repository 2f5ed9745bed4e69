"""Batches on a real dask LocalCluster (2 worker processes): outputs equal to the in-process
``register`` / ``traces``, the manifest, skip / resume / force, a worker killed mid-run, and a
`.siff` recording's lifetime traces.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import sys
import threading
import time
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

import napari_scanimage as nsi
from napari_scanimage.batch import (
    MANIFEST,
    RecordingFiles,
    find_recordings,
    prepare_batch,
    registration_settings,
    run_batch,
)
from napari_scanimage.session import Session, TraceSettings
from napari_scanimage.testing.siff import write_siff
from napari_scanimage.testing.tiff import SyntheticLayout, write_scanimage_tiff

distributed = pytest.importorskip("distributed")

SIZE = 48  # frame edge (px)
BLOCK_FRAMES = 8  # time rows per registration task: several blocks per recording
ENTRY_KEYS = {"source", "status", "error", "outputs", "fingerprint", "started", "finished"}


@pytest.fixture
def client(dask_client):
    dask_client.wait_for_workers(2, timeout=30)  # (a worker killed by a test is restarted)
    return dask_client


def _moving(seed: int, num_times: int, channels: int = 2):
    """Page content: a smooth texture moved by a random subpixel shift per time point."""
    rng = np.random.default_rng(seed)
    big = ndimage.gaussian_filter(rng.normal(size=(SIZE + 16, SIZE + 16)), 2) * 400 + 1000
    motion = rng.uniform(-3, 3, (num_times, 2))

    def content(g):
        t, c = divmod(g, channels)
        img = ndimage.shift(big, motion[t], order=1)[8:-8, 8:-8]
        return (img * (1 + c) + rng.normal(0, 5, img.shape)).astype(np.int16)

    return content


def _layout(num_times: int, **kw) -> SyntheticLayout:
    return SyntheticLayout(
        channels=(1, 2), num_volumes=num_times, height=SIZE, width=SIZE, frame_rate=10.0, **kw
    )


def _rois():
    mask = np.zeros((SIZE, SIZE), bool)
    mask[10:20, 12:30] = True
    return nsi.RoiSet.from_masks({"a": mask, "b": ~mask})


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """Recordings (two files, a split series, a corrupt file) and a template session holding
    ROIs, dF/F settings and a registration on channel 1.
    """
    root = tmp_path_factory.mktemp("batch")
    data = root / "data"
    data.mkdir()
    recs = [
        write_scanimage_tiff(data / f"m{k}.tif", _layout(20 + 6 * k), content=_moving(k, 32))
        for k in range(2)
    ]
    series = write_scanimage_tiff(
        data / "ser.tif", _layout(20, frames_per_file=14), content=_moving(7, 20)
    )
    assert len(series.paths) == 2
    (data / "broken.tif").write_bytes(b"II*\x00 this is not a tiff")
    with nsi.open_dataset(recs[0].paths[0]) as ds:
        reg = nsi.register(ds, channel=1, bidi=True)
    template = Session(
        sources=[recs[0].paths[0]],
        channel=1,
        roi_set=_rois(),
        registration_result=reg,
        trace=TraceSettings(kind="dff", percentile=10.0),
    ).save(root / "template.nsession.json")
    good = [recs[0].paths, recs[1].paths, series.paths]
    return root, data, template, good


def _expected(paths, kind="dff", bidi=True, **kw):
    with nsi.open_dataset(paths[0], file_paths=paths if len(paths) > 1 else None) as ds:
        reg = nsi.register(ds, channel=1 if kind != "lifetime" else 0, bidi=bidi)
        tr = nsi.traces(
            ds, _rois(), channel=1 if kind != "lifetime" else 0, kind=kind, registration=reg, **kw
        )
    return reg, tr


def _csv_rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


def _assert_traces_equal(path: Path, want) -> None:
    got, exp = _csv_rows(path.read_text()), _csv_rows(want.csv_text())
    assert len(got) == len(exp) and got[0] == exp[0]
    for g, e in zip(got[1:], exp[1:], strict=True):
        assert g[1:4] == e[1:4]
        np.testing.assert_allclose(
            [float(v) for k, v in enumerate(g) if k == 0 or k >= 4],
            [float(v) for k, v in enumerate(e) if k == 0 or k >= 4],
            rtol=0,
            atol=1e-9,
        )


def _mtimes(folder: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in folder.iterdir() if p.name != MANIFEST}


def _iso(text: str) -> datetime:
    t = datetime.fromisoformat(text)
    assert t.tzinfo is not None
    return t


def test_find_recordings_groups_a_series(project):
    _, data, _, good = project
    found = find_recordings(str(data))
    assert [tuple(p.name for p in r) for r in found] == [
        ("broken.tif",),
        ("m0.tif",),
        ("m1.tif",),
        tuple(p.name for p in good[2]),
    ]
    assert find_recordings(str(data / "m*.tif")) == [tuple(good[0]), tuple(good[1])]


def test_batch_equals_in_process_and_manifest(project, client, tmp_path):
    root, data, template, good = project
    out = tmp_path / "out"
    plan = prepare_batch(str(data), template, out_dir=out, block_frames=BLOCK_FRAMES)
    lines = io.StringIO()
    with distributed.get_task_stream(client) as stream:
        result = run_batch(plan, client, stream=lines)
    # on the cluster: tasks on both workers, several recordings at once
    spans: dict[str, list[float]] = {}
    for task in stream.data:
        stem = task["key"].split("-")[1]
        for part in task["startstops"]:
            if part["action"] == "compute":
                span = spans.setdefault(stem, [part["start"], part["stop"]])
                span[:] = [min(span[0], part["start"]), max(span[1], part["stop"])]
    assert {task["worker"] for task in stream.data} == set(client.nthreads())
    assert len(spans) == 4  # (the corrupt file's plan too)
    ordered = sorted(spans.values())
    assert any(b[0] < a[1] for a, b in zip(ordered, ordered[1:], strict=False)), ordered
    by_name = {Path(e["outputs"][-1]).name: e for e in result.entries if e["outputs"]}
    for paths in good:
        stem = paths[0].stem
        reg, tr = _expected(paths, percentile=10.0)
        got = nsi.Registration.load(out / f"{stem}.registration.npz")
        np.testing.assert_allclose(got.shifts, reg.shifts, rtol=0, atol=1e-6)
        np.testing.assert_allclose(got.reference, reg.reference, rtol=0, atol=1e-6)
        assert got.bidi_phase == pytest.approx(reg.bidi_phase, abs=1e-9)
        assert got.settings["bidi"] and got.channel == "Channel 2"
        assert got.num_times == reg.num_times > BLOCK_FRAMES  # several blocks
        _assert_traces_equal(out / f"{stem}_traces.csv", tr)
        assert by_name[f"{stem}_traces.csv"]["status"] == "ok"
    # the manifest: one entry per recording, in order, with the fields
    doc = json.loads((out / MANIFEST).read_text())
    assert set(doc) >= {"recordings", "template", "package_version", "scheduler"}
    assert doc["template"] == str(template)
    assert doc["package_version"] == nsi.__version__
    assert doc["scheduler"]["address"] == client.scheduler.address
    assert doc["scheduler"]["workers"] == 2
    entries = doc["recordings"]
    assert [set(e) for e in entries] == [ENTRY_KEYS] * 4
    assert [e["status"] for e in entries] == ["failed", "ok", "ok", "ok"]
    assert entries[0]["source"] == str(data / "broken.tif")
    assert "broken.tif" in entries[0]["error"] and entries[0]["outputs"] == [
        str(out / "broken.registration.npz"),
        str(out / "broken_traces.csv"),
    ]
    assert entries[3]["source"] == [str(p) for p in good[2]]  # a series: every file
    assert entries[3]["outputs"] == [
        str(out / f"{good[2][0].stem}.registration.npz"),
        str(out / f"{good[2][0].stem}_traces.csv"),
    ]
    for e in entries:
        assert _iso(e["started"]) <= _iso(e["finished"])
    fp = entries[3]["fingerprint"]
    assert [f["path"] for f in fp["files"]] == [str(p) for p in good[2]]
    assert [f["size"] for f in fp["files"]] == [p.stat().st_size for p in good[2]]
    assert all(len(f["sha256"]) == 64 for f in fp["files"])
    assert not (out / "broken_traces.csv").exists()
    # one line per recording
    text = lines.getvalue().splitlines()
    assert len(text) == 4 and "broken.tif: failed" in text[0]
    assert result.count("ok") == 3 and result.count("failed") == 1


def test_rerun_skips_unchanged_recomputes_changed_and_force(project, client, tmp_path):
    root, data, template, good = project
    work = tmp_path / "data"
    shutil.copytree(data, work)
    out = tmp_path / "out"
    first = run_batch(prepare_batch(str(work / "m*.tif"), template, out_dir=out), client)
    assert [e["status"] for e in first.entries] == ["ok", "ok"]
    before = _mtimes(out)
    manifest_before = json.loads((out / MANIFEST).read_text())
    time.sleep(0.01)
    again = run_batch(prepare_batch(str(work / "m*.tif"), template, out_dir=out), client)
    assert [e["status"] for e in again.entries] == ["skipped", "skipped"]
    assert _mtimes(out) == before  # outputs untouched
    manifest = json.loads((out / MANIFEST).read_text())
    assert manifest["started"] != manifest_before["started"]  # rewritten
    assert [e["fingerprint"] for e in manifest["recordings"]] == [
        e["fingerprint"] for e in manifest_before["recordings"]
    ]
    # a changed recording is recomputed, the other skipped
    changed = work / "m1.tif"
    os.utime(changed, ns=(changed.stat().st_atime_ns, changed.stat().st_mtime_ns + 10**9))
    third = run_batch(prepare_batch(str(work / "m*.tif"), template, out_dir=out), client)
    assert [e["status"] for e in third.entries] == ["skipped", "ok"]
    after = _mtimes(out)
    assert after["m0_traces.csv"] == before["m0_traces.csv"]
    assert after["m1_traces.csv"] != before["m1_traces.csv"]
    # a missing output is recomputed
    (out / "m0_traces.csv").unlink()
    fourth = run_batch(prepare_batch(str(work / "m*.tif"), template, out_dir=out), client)
    assert [e["status"] for e in fourth.entries] == ["ok", "skipped"]
    # force recomputes everything, with the same results
    csv_before = {p: (out / p).read_bytes() for p in ("m0_traces.csv", "m1_traces.csv")}
    mid = _mtimes(out)
    forced = run_batch(
        prepare_batch(str(work / "m*.tif"), template, out_dir=out, force=True), client
    )
    assert [e["status"] for e in forced.entries] == ["ok", "ok"]
    assert all(_mtimes(out)[k] != mid[k] for k in mid)
    assert {p: (out / p).read_bytes() for p in csv_before} == csv_before


def test_template_without_registration_and_no_register(project, client, tmp_path):
    root, data, template, good = project
    plain = Session.load(template)
    plain.registration_result = None
    plain_path = plain.save(tmp_path / "plain.nsession.json")
    out = tmp_path / "out"
    terminal = io.StringIO()  # as on a terminal: the overall bar, redrawn in place
    result = run_batch(
        prepare_batch(str(data / "m0.tif"), plain_path, out_dir=out),
        client,
        stream=terminal,
        progress_bar=True,
    )
    assert result.count("ok") == 1
    shown = terminal.getvalue()
    assert "\r[" + "." * 30 + "] 0/1 recordings, 0/1 tasks" in shown
    assert "\r\x1b[K[1/1] m0.tif: wrote m0_traces.csv\n" in shown
    # (the task's own count may come just after: it is drawn from the client's thread)
    assert re.search(r"\r\[#{30}\] 1/1 recordings, [01]/1 tasks", shown)
    assert shown.endswith("\r\x1b[K")
    assert sorted(p.name for p in out.iterdir()) == [MANIFEST, "m0_traces.csv"]
    with nsi.open_dataset(good[0][0]) as ds:
        want = nsi.traces(ds, _rois(), channel=1, kind="dff", percentile=10.0)
    _assert_traces_equal(out / "m0_traces.csv", want)
    # --register on it: the defaults, on the template's channel
    reg_out = tmp_path / "reg"
    run_batch(
        prepare_batch(str(data / "m0.tif"), plain_path, out_dir=reg_out, register=True), client
    )
    reg, _ = _expected(good[0], bidi=False, percentile=10.0)
    got = nsi.Registration.load(reg_out / "m0.registration.npz")
    np.testing.assert_allclose(got.shifts, reg.shifts, rtol=0, atol=1e-6)


def test_files_stay_open_while_another_task_of_the_recording_runs(project):
    """A task ending releases the recording's files only when no other task of it runs in the
    process (releasing closes every thread's handles on them, under a reader).
    """
    psutil = pytest.importorskip("psutil")
    from napari_scanimage.batch.tasks import opened

    _, _, _, good = project
    path = str(good[0][0])
    files = RecordingFiles((path,))

    def held() -> bool:
        return any(os.path.samefile(f.path, path) for f in psutil.Process().open_files())

    with opened(files) as outer:
        with opened(files) as inner:
            first = inner.read(1, times=slice(0, 3))
            assert held()
        assert held()  # the outer task still runs
        np.testing.assert_array_equal(outer.read(1, times=slice(0, 3)), first)
    assert not held()


def test_registration_settings_from_the_template():
    shifts, ref = np.zeros((4, 2, 2)), np.zeros((2, 16, 16), np.float32)
    reg = nsi.Registration(
        shifts,
        np.zeros((4, 2)),
        ref,
        "Channel 2",
        settings={"channel": 1, "planes": [1], "max_shift": 3, "bidi": True, "subpixel": False},
    )
    template = Session(roi_set=_rois(), registration_result=reg)
    s = registration_settings(template, None)
    assert s is not None and not s.needs_whole()
    assert s.kwargs() == {
        "channel": 1,
        "planes": [1],
        "max_shift": 3,
        "subpixel": False,
        "bidi": True,
        "reference_frames": 200,
    }
    assert registration_settings(template, False) is None
    # an option the block-wise tasks do not split (piecewise) passes through to register()
    piecewise = nsi.Registration(
        shifts,
        np.zeros((4, 2)),
        ref,
        settings={"channel": 0, "piecewise": True, "block_size": [24, 32]},
    )
    s = registration_settings(Session(roi_set=_rois(), registration_result=piecewise), None)
    assert s is not None and s.needs_whole()
    assert s.kwargs()["piecewise"] is True and s.kwargs()["block_size"] == (24, 32)
    assert s.kwargs()["planes"] is None  # every plane of the template: every plane


def test_piecewise_template_registers_piecewise(project, client, tmp_path):
    """A template holding a piecewise registration: each recording gets the same piecewise
    registration as in one process, block fields included, and traces on its warped frames.
    """
    root, _, _, good = project
    with nsi.open_dataset(good[0][0]) as ds:
        reg = nsi.register(ds, channel=1, piecewise=True, block_size=16)
    assert reg.piecewise and reg.block_shifts is not None
    template = Session(
        sources=[good[0][0]], channel=1, roi_set=_rois(), registration_result=reg
    ).save(tmp_path / "pw.nsession.json")
    data = tmp_path / "data"
    data.mkdir()
    shutil.copy2(good[1][0], data / "m1.tif")
    out = tmp_path / "out"
    result = run_batch(
        prepare_batch(str(data), template, out_dir=out), client, stream=io.StringIO()
    )
    assert result.count("ok") == 1
    with nsi.open_dataset(data / "m1.tif") as ds:
        want = nsi.register(ds, channel=1, piecewise=True, block_size=16)
        tr = nsi.traces(ds, _rois(), channel=1, registration=want)
    got = nsi.Registration.load(out / "m1.registration.npz")
    assert got.piecewise and got.settings["block_size"] == [16, 16]
    np.testing.assert_allclose(got.shifts, want.shifts, rtol=0, atol=1e-6)
    np.testing.assert_allclose(got.block_shifts, want.block_shifts, rtol=0, atol=1e-6)
    _assert_traces_equal(out / "m1_traces.csv", tr)


def test_siff_lifetime_traces(client, tmp_path):
    data = tmp_path / "flim"
    data.mkdir()
    lay = SyntheticLayout(channels=(1,), num_volumes=24, height=SIZE, width=SIZE)
    motion = np.random.default_rng(3).integers(-2, 3, (24, 2))
    siff = write_siff(data / "f.siff", lay, motion=motion, photons_per_frame=20000.0)
    with nsi.open_dataset(siff.path) as ds:
        reg = nsi.register(ds, channel=0)
    template = Session(
        sources=[data / "f.siff"],
        roi_set=_rois(),
        registration_result=reg,
        trace=TraceSettings(kind="lifetime"),
    ).save(tmp_path / "flim.nsession.json")
    out = tmp_path / "out"
    result = run_batch(
        prepare_batch(str(data), template, out_dir=out, block_frames=BLOCK_FRAMES), client
    )
    assert result.count("ok") == 1
    want_reg, want = _expected([data / "f.siff"], kind="lifetime", bidi=False)
    got = nsi.Registration.load(out / "f.registration.npz")
    np.testing.assert_allclose(got.shifts, want_reg.shifts, rtol=0, atol=1e-6)
    assert "lifetime_ns" in (out / "f_traces.csv").read_text()
    _assert_traces_equal(out / "f_traces.csv", want)


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
def test_worker_killed_mid_run_gives_identical_results(project, client, tmp_path):
    import signal

    root, data, template, good = project
    out_ref, out = tmp_path / "ref", tmp_path / "killed"
    run_batch(prepare_batch(str(data), template, out_dir=out_ref, block_frames=4), client)
    pids = client.run(os.getpid)  # worker address → process id
    killed: list[str] = []

    def kill_a_busy_worker() -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not killed:
            busy = {w: keys for w, keys in client.processing().items() if keys}
            for worker, keys in busy.items():
                if any(k.startswith("block_shifts") for k in keys):
                    os.kill(pids[worker], signal.SIGKILL)
                    killed.append(worker)
                    return
            time.sleep(0.005)

    plan = prepare_batch(str(data), template, out_dir=out, block_frames=4)
    killer = threading.Thread(target=kill_a_busy_worker)
    killer.start()
    result = run_batch(plan, client)
    killer.join()
    assert killed, "no worker was running a registration task"
    assert [e["status"] for e in result.entries] == ["failed", "ok", "ok", "ok"]
    for name in sorted(p.name for p in out_ref.iterdir() if p.name != MANIFEST):
        if name.endswith(".npz"):
            a, b = nsi.Registration.load(out_ref / name), nsi.Registration.load(out / name)
            np.testing.assert_array_equal(a.shifts, b.shifts)
            np.testing.assert_array_equal(a.reference, b.reference)
        else:
            assert (out / name).read_bytes() == (out_ref / name).read_bytes()
    client.wait_for_workers(2, timeout=30)  # the nanny restarts it
