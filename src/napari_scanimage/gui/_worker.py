"""What the plugin's computing docks share: the recording in the viewer, and one library
generator at a time run in a napari thread worker, with a progress bar, Cancel and a status
line (``self.progress``, ``self.cancel_button``, ``self.status``).

An exception in a job becomes a napari error notification saying what to do (see
:func:`._report.describe`); the dock then returns to its idle state with earlier results kept.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from qtpy.QtWidgets import QLabel, QProgressBar, QPushButton, QWidget

from ..errors import ScanImageError
from ._params import set_choices
from ._report import report_failure
from .selection import current_dataset

_log = logging.getLogger(__name__)


class Failed:
    """What a job that raised returns instead of its value (so napari neither re-raises the
    exception in the event loop nor shows it a second time).
    """

    def __init__(self, exc: Exception):
        self.exc = exc


def guarded(fn, *args):
    """Run generator function ``fn(*args)``, re-yielding its progress; return its value, or a
    :class:`Failed` holding the exception it raised.
    """
    try:
        return (yield from fn(*args))
    except Exception as exc:  # reported in the viewer by WorkerDock
        return Failed(exc)


def labelled(gen, stage: str):
    """Re-yield a library generator's (done, total) as (stage, done, total); return its value."""
    while True:
        try:
            done, total = next(gen)
        except StopIteration as stop:
            return stop.value
        yield stage, done, total


class WorkerDock(QWidget):
    """A QWidget base class; the dock sets the ``viewer``, ``progress``, ``cancel_button`` and
    ``status`` attributes (and ``params`` with a ``channel`` choice for :meth:`_follow_siff`).
    """

    viewer: Any  # the napari viewer
    progress: QProgressBar
    cancel_button: QPushButton
    status: QLabel
    params: Any  # the dock's magicgui parameter form (._params.Params)
    _worker = None

    @property
    def dataset(self):
        """The recording (or multi-ROI field) of the dock's ROI layer, else of the active
        layer, else the first shown (:func:`.selection.current_dataset`).
        """
        return current_dataset(self.viewer, getattr(self, "_layer", None))

    @property
    def busy(self) -> bool:
        return self._worker is not None

    def _follow_siff(self) -> bool:
        """Enable the dock only for a `.siff` recording and list its channels in
        the ``channel`` choice of ``self.params`` (see ._params); True when there is one.
        """
        ds = self.dataset
        siff = ds is not None and ds.is_siff
        self.setEnabled(siff)
        if not siff:
            self.status.setText("open a ScanImage-FLIM .siff recording")
        names = list(ds.info.channel_names) if siff else []
        set_choices(self.params.channel, names)
        return siff

    def _set_busy(self, busy: bool) -> None:
        self.progress.setVisible(busy)
        self.cancel_button.setVisible(busy)
        if not busy:
            self.progress.setValue(0)

    def start_worker(
        self, fn, *args, returned: Callable, finished: Callable | None = None, what: str = "work"
    ):
        """Run generator function ``fn(*args)`` (yielding (done, total) or (stage, done,
        total)) in a worker; ``returned(value)`` gets its result unless it is cancelled or
        fails, ``finished()`` runs after it ends unless it fails.  A failure is shown as a
        napari error notification (and in the status line) and kept in ``last_error``.
        """
        from napari.qt.threading import create_worker
        from qtpy.QtCore import QTimer

        worker = create_worker(guarded, fn, *args, _start_thread=False)
        self._worker = worker
        self.last_error = None
        self._set_busy(True)

        def progress(value):
            *stage, done, total = value
            self.progress.setMaximum(max(total, 1))
            self.progress.setValue(done)
            if stage:
                self.status.setText(f"{stage[0]}: {done} / {total}")

        def got(value):
            if isinstance(value, Failed):
                self.last_error = value.exc
                return
            try:  # showing the result reads data too
                returned(value)
            except Exception as exc:
                self.last_error = exc

        def done():
            self._worker = None
            self._set_busy(False)
            if self.last_error is not None:
                self.report_error(what, self.last_error)
            elif finished is not None:
                finished()

        worker.yielded.connect(progress)
        worker.returned.connect(got)
        worker.finished.connect(done)
        # started from the event loop: whoever holds the returned worker can connect to its
        # signals first and miss no progress report
        QTimer.singleShot(0, worker.start)
        return worker

    last_error: Exception | None = None

    def report_error(self, what: str, exc: BaseException) -> str:
        """Tell the user that ``what`` failed: status line and a napari error notification
        whose text says what to do; returns the message.
        """
        if not isinstance(exc, (ScanImageError, OSError, MemoryError)):  # a bug: keep the
            _log.error("%s failed", what, exc_info=exc)  # traceback for the report
        return report_failure(self.status, what, exc)
