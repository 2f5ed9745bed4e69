"""Faults in a real viewer: a recording shortened or gone under its layers, saves into a
read-only folder, failing and cancelled worker jobs.  The viewer keeps working, the user is
told (napari notifications) what happened and what to do, the docks stay usable.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import numpy as np
import pytest
from napari.utils.notifications import NotificationSeverity, notification_manager
from qtpy.QtCore import Qt
from qtpy.QtWidgets import QFileDialog

from napari_scanimage._core.reading import close_readers
from napari_scanimage.analysis.rois import RoiSet
from napari_scanimage.gui.flim import FlimDock
from napari_scanimage.gui.registration import RegistrationDock
from napari_scanimage.gui.rois import RoiDock
from napari_scanimage.gui.traces import TracePlotDock
from napari_scanimage.io.tiff import index_pages
from napari_scanimage.testing.siff import write_siff
from napari_scanimage.testing.tiff import SyntheticLayout, write_scanimage_tiff

pytestmark = pytest.mark.gui

LAYOUT = SyntheticLayout(
    channels=(1, 2),
    channel_names=("Green", "Red"),
    num_planes=2,
    num_flyback=1,
    num_volumes=10,
    height=64,
    width=64,
)


class Told:
    """Error notifications napari records from now on."""

    def __init__(self):
        self.start = len(notification_manager.records)

    @property
    def errors(self) -> list[str]:
        return [
            str(n.message)
            for n in notification_manager.records[self.start :]
            if n.severity == NotificationSeverity.ERROR
        ]


@pytest.fixture
def recording(tmp_path):
    return write_scanimage_tiff(tmp_path / "rec.tif", LAYOUT).paths[0]


@pytest.fixture
def viewer(make_napari_viewer, recording):
    viewer = make_napari_viewer()
    viewer.open(str(recording), plugin="napari-scanimage")
    return viewer


def step_to(viewer, t: int) -> np.ndarray:
    """Move the time slider to ``t``; the Green layer's displayed slice."""
    axis = list(viewer.dims.axis_labels).index("t")
    viewer.dims.set_current_step(axis, t)
    return np.asarray(viewer.layers["Green"]._data_view)


def test_layers_of_a_shortened_file_show_blank_frames_and_say_so(viewer, recording, qtbot):
    shown = step_to(viewer, 1)
    assert shown.any()
    index = index_pages(recording)
    cut = int(index.data_offsets[index.data_offsets.size // 2])  # volumes 5… are gone
    with open(recording, "r+b") as fh:
        fh.truncate(cut)
    told = Told()
    assert not step_to(viewer, 8).any()  # blank, no exception out of napari
    assert not step_to(viewer, 9).any()
    assert len(told.errors) == 1  # told once (not for every layer, not at every step)
    message = told.errors[0]
    assert message.startswith(
        "rec.tif cannot be read; its layers show blank frames where data "
        f"is missing: {recording}: page "
    )
    assert message.endswith("ends early; the file was shortened while open")
    assert not np.asarray(viewer.layers["Red"]._data_view).any()
    np.testing.assert_array_equal(step_to(viewer, 1), shown)  # what is left still shows
    viewer.add_points([[1, 2]], name="still working")
    assert "still working" in viewer.layers


def test_layers_of_a_deleted_file(viewer, recording, qtbot):
    shown = step_to(viewer, 2)
    recording.unlink()
    told = Told()
    # the open handle still reads the deleted file (Linux keeps it until closed)
    np.testing.assert_array_equal(step_to(viewer, 2), shown)
    assert step_to(viewer, 3).any() and told.errors == []
    # once the handles are gone (closed, or the share was unmounted) reads fail: blank + told
    close_readers([recording])
    assert not step_to(viewer, 4).any()
    assert told.errors == [
        "rec.tif cannot be read; its layers show blank frames where data is "
        f"missing: {recording}: cannot be read: the file no longer exists "
        "(deleted or moved); put it back or open it again from where it is "
        "now"
    ]


# -- saves ------------------------------------------------------------------------------
def save_via_dialog(monkeypatch, qtbot, button, target: Path) -> None:
    """Click ``button`` with the file dialog answering ``target`` (the dialog is Qt's)."""
    monkeypatch.setattr(
        QFileDialog, "getSaveFileName", staticmethod(lambda *a, **k: (str(target), ""))
    )
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)


def test_roi_dock_save_into_a_read_only_folder(viewer, qtbot, tmp_path, monkeypatch, make_readonly):
    dock = RoiDock(viewer)
    qtbot.addWidget(dock)
    layer = dock.new_layer()
    layer.add(
        [np.array([[0, 4.5, 4.5], [0, 4.5, 20.5], [0, 20.5, 20.5], [0, 20.5, 4.5]])],
        shape_type="rectangle",
    )
    folder = tmp_path / "out"
    folder.mkdir()
    target = folder / "rois.json"
    save_via_dialog(monkeypatch, qtbot, dock.save_button, target)
    previous = target.read_bytes()
    assert len(RoiSet.load(target)) == 1
    layer.add(
        [np.array([[0, 30.5, 30.5], [0, 30.5, 40.5], [0, 40.5, 40.5], [0, 40.5, 30.5]])],
        shape_type="rectangle",
    )
    make_readonly(folder)
    told = Told()
    save_via_dialog(monkeypatch, qtbot, dock.save_button, target)
    assert len(told.errors) == 1
    message = told.errors[0]
    assert message.startswith(f"save failed: cannot save {target}: ")
    assert "choose a folder" in message and "(the previous file is unchanged)" in message
    assert dock.status.text() == message
    assert target.read_bytes() == previous and [p.name for p in folder.iterdir()] == ["rois.json"]
    # the dock keeps working: saving elsewhere succeeds
    elsewhere = tmp_path / "rois2.json"
    save_via_dialog(monkeypatch, qtbot, dock.save_button, elsewhere)
    assert len(RoiSet.load(elsewhere)) == 2 and len(told.errors) == 1
    assert dock.status.text() == "saved 2 ROI(s) to rois2.json"


def traces_setup(viewer, qtbot):
    rois = RoiDock(viewer)
    qtbot.addWidget(rois)
    layer = rois.new_layer()
    dock = TracePlotDock(viewer)
    qtbot.addWidget(dock)
    layer.add(
        [np.array([[0, 4.5, 4.5], [0, 4.5, 20.5], [0, 20.5, 20.5], [0, 20.5, 4.5]])],
        shape_type="rectangle",
    )
    settle(qtbot, dock)
    assert dock.result is not None and dock.result.names == ["roi 1"]
    return dock


def settle(qtbot, dock):
    qtbot.wait(dock._timer.interval() + 50)
    qtbot.waitUntil(lambda: not dock.busy and not dock._timer.isActive(), timeout=30000)


def test_trace_dock_export_into_a_read_only_folder(
    viewer, qtbot, tmp_path, monkeypatch, make_readonly
):
    dock = traces_setup(viewer, qtbot)
    folder = tmp_path / "out"
    folder.mkdir()
    target = folder / "traces.csv"
    target.write_bytes(b"earlier,export\n")
    make_readonly(folder)
    told = Told()
    save_via_dialog(monkeypatch, qtbot, dock.export_button, target)
    assert told.errors == [dock.status.text()]
    assert told.errors[0].startswith(f"export failed: cannot save {target}: ")
    assert target.read_bytes() == b"earlier,export\n"
    assert [p.name for p in folder.iterdir()] == ["traces.csv"]
    # a missing folder: said so; then a good target works
    save_via_dialog(monkeypatch, qtbot, dock.export_button, tmp_path / "nope" / "t.csv")
    assert "its folder does not exist; create the folder" in told.errors[-1]
    save_via_dialog(monkeypatch, qtbot, dock.export_button, tmp_path / "t.csv")
    assert (tmp_path / "t.csv").read_bytes() == dock.result.csv_text().encode()
    assert dock.status.text() == "wrote t.csv" and len(told.errors) == 2


# -- worker jobs --------------------------------------------------------------------------
def idle(dock) -> bool:
    return (
        not dock.busy
        and not dock.progress.isVisible()
        and dock.progress.value() == 0
        and not dock.cancel_button.isVisible()
    )


def test_failing_registration_is_reported_and_earlier_results_stay(viewer, recording, qtbot):
    dock = RegistrationDock(viewer)
    qtbot.addWidget(dock)
    dock.run()
    qtbot.waitUntil(lambda: not dock.busy, timeout=120000)
    first = dock.result
    assert first is not None and first.shifts.shape == (10, 2, 2)
    names = [layer.name for layer in viewer.layers]
    with open(recording, "r+b") as fh:  # the file shrinks under the open recording
        fh.truncate(int(index_pages(recording).data_offsets[30]))
    told = Told()
    dock.run()
    qtbot.waitUntil(lambda: not dock.busy, timeout=120000)
    assert len(told.errors) == 1
    message = told.errors[0]
    assert message.startswith(f"registration failed: {recording}: ")
    assert "open it again" in message or "reopen" in message or "shortened" in message
    assert dock.status.text() == message
    assert idle(dock) and dock.run_button.isEnabled() and dock.load_button.isEnabled()
    assert dock.result is first and [layer.name for layer in viewer.layers] == names


def failing_job(exc):
    yield 0, 3
    yield 1, 3
    raise exc


@pytest.mark.parametrize(
    "exc, hint",
    [
        (
            MemoryError(),
            "test job failed: out of memory; select fewer frames or planes, or close "
            "other layers and try again",
        ),
        (
            OSError(5, "Input/output error"),
            "test job failed: [Errno 5] Input/output error; check "
            "that the file still exists, its drive is mounted",
        ),
        (
            KeyError("x"),
            "test job failed: unexpected KeyError: 'x'; this is a bug in "
            "napari-scanimage, please report it",
        ),
    ],
)
def test_worker_exceptions_become_notifications_with_a_hint(viewer, qtbot, exc, hint, caplog):
    dock = traces_setup(viewer, qtbot)
    before = dock.result
    told = Told()
    got = []
    with caplog.at_level(logging.ERROR, logger="napari_scanimage.gui._worker"):
        dock.start_worker(failing_job, exc, returned=got.append, what="test job")
        assert dock.busy
        qtbot.waitUntil(lambda: not dock.busy, timeout=30000)
    assert len(told.errors) == 1 and told.errors[0].startswith(hint)
    assert got == [] and dock.last_error is exc and idle(dock) and dock.result is before
    bug = isinstance(exc, KeyError)
    assert [r.exc_info[1] for r in caplog.records if r.exc_info] == ([exc] if bug else [])


# -- cancel at the first progress report --------------------------------------------------
def cancel_at_first_progress(dock) -> list:
    """Cancel the job just started at its first progress report (jobs start from the event
    loop, so none is missed); the job waits while the dock's Cancel runs in the GUI thread, so
    it cannot finish first.
    """
    seen, gate = [], threading.Event()

    def in_gui(value):
        if not seen:
            dock.cancel()
        seen.append(value)
        gate.set()

    dock._worker.yielded.connect(in_gui)  # queued to the GUI thread
    dock._worker.yielded.connect(
        lambda value: gate.wait(30),  # in the job's thread
        Qt.ConnectionType.DirectConnection,
    )
    return seen


def test_trace_dock_cancel_at_first_progress(viewer, qtbot):
    dock = traces_setup(viewer, qtbot)
    before, curve = dock.result, dock.curves["roi 1"].getData()[1].copy()
    computed = dock.computed_rois
    dock.params.metric.value = "sum"  # schedules a new computation: start it now
    dock._timer.stop()
    dock.refresh()
    assert dock.busy
    seen = cancel_at_first_progress(dock)
    qtbot.waitUntil(lambda: not dock.busy, timeout=30000)
    qtbot.wait(dock._timer.interval() + 100)  # nothing restarts by itself
    assert len(seen) == 1 and seen[0][-2] == 0  # (…, 0 blocks done, blocks)
    assert idle(dock) and dock.status.text() == "cancelled"
    assert dock.result is before and dock.computed_rois == computed
    np.testing.assert_array_equal(dock.curves["roi 1"].getData()[1], curve)
    # still works: computing again gives the sums
    dock.refresh()
    settle(qtbot, dock)
    assert dock.result is not before and dock.result.kind == "sum"


FLIM = SyntheticLayout(channels=(1,), channel_names=("Green",), num_volumes=30, height=32, width=32)


def test_flim_dock_cancel_at_first_progress(make_napari_viewer, qtbot, tmp_path):
    sim = write_siff(
        tmp_path / "one.siff",
        FLIM,
        photons_per_frame=3000,
        taus_ns=((2.0,),),
        fractions=((1.0,),),
        irf_offset_ns=0.8,
        irf_width_ns=0.1,
        seed=3,
    )
    viewer = make_napari_viewer()
    viewer.open(str(sim.path), plugin="napari-scanimage")
    dock = FlimDock(viewer)
    qtbot.addWidget(dock)
    dock.params.n_exp.value = 1
    dock.run()
    qtbot.waitUntil(lambda: not dock.busy, timeout=60000)
    first = dock.fit
    assert first is not None and first.n_exp == 1
    table = [dock.table.item(r, 1).text() for r in range(dock.table.rowCount())]
    dock.params.n_exp.value = 2
    dock.run()
    seen = cancel_at_first_progress(dock)
    qtbot.waitUntil(lambda: not dock.busy, timeout=60000)
    assert seen[0] == (0, 2) and len(seen) == 1
    assert idle(dock) and dock.fit_button.isEnabled()
    assert dock.status.text() == "cancelled; the previous fit is kept"
    assert dock.fit is first
    assert [dock.table.item(r, 1).text() for r in range(dock.table.rowCount())] == table
