"""What the plugin's computing docks share: the recording in the viewer, and one library
generator at a time run in a napari thread worker, with a progress bar, Cancel and a status
line (``self.progress``, ``self.cancel_button``, ``self.status``)."""

from __future__ import annotations

from collections.abc import Callable

from .selection import datasets_in


def labelled(gen, stage: str):
    """Re-yield a library generator's (done, total) as (stage, done, total); return its value."""
    while True:
        try:
            done, total = next(gen)
        except StopIteration as stop:
            return stop.value
        yield stage, done, total


class WorkerDock:
    """Mix into a QWidget before it; needs ``viewer``, ``progress``, ``cancel_button`` and
    ``status`` attributes."""

    _worker = None

    @property
    def dataset(self):
        found = datasets_in(self.viewer)
        return found[0] if found else None

    @property
    def busy(self) -> bool:
        return self._worker is not None

    def _follow_siff(self) -> bool:
        """Enable the dock only for a `.siff` recording and list its channels in
        ``self.channel_box``; True when there is one."""
        ds = self.dataset
        siff = ds is not None and ds.is_siff
        self.setEnabled(siff)
        if not siff:
            self.status.setText("open a ScanImage-FLIM .siff recording")
        names = list(ds.info.channel_names) if siff else []
        if [self.channel_box.itemText(i) for i in range(self.channel_box.count())] != names:
            self.channel_box.clear()
            self.channel_box.addItems(names)
        return siff

    def _set_busy(self, busy: bool) -> None:
        self.progress.setVisible(busy)
        self.cancel_button.setVisible(busy)
        if not busy:
            self.progress.setValue(0)

    def start_worker(self, fn, *args, returned: Callable, finished: Callable | None = None,
                     what: str = "work"):
        """Run generator function ``fn(*args)`` (yielding (done, total) or (stage, done,
        total)) in a worker; ``returned(value)`` gets its result unless it is cancelled."""
        from napari.qt.threading import create_worker

        worker = create_worker(fn, *args, _start_thread=False)
        self._worker = worker
        self._set_busy(True)

        def progress(value):
            *stage, done, total = value
            self.progress.setMaximum(max(total, 1))
            self.progress.setValue(done)
            if stage:
                self.status.setText(f"{stage[0]}: {done} / {total}")

        def done():
            self._worker = None
            self._set_busy(False)
            if finished is not None:
                finished()

        worker.yielded.connect(progress)
        worker.returned.connect(returned)
        worker.errored.connect(lambda exc: self.status.setText(f"{what} failed: {exc}"))
        worker.finished.connect(done)
        worker.start()
        return worker
