"""Telling the user about failures in the viewer: napari error notifications whose text says
what happened and what to do, for failed worker jobs, failed saves and failed reads.
"""

from __future__ import annotations

from ..errors import ScanImageError

__all__ = ["ReadFailureReporter", "describe", "notify_error", "report_failure"]


def describe(exc: BaseException, what: str = "") -> str:
    """One line for the user: ``what`` failed, why, and what to do about it."""
    head = f"{what} failed: " if what else ""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if isinstance(exc, ScanImageError):  # its message says what to do
        return f"{head}{text}"
    if isinstance(exc, MemoryError):
        return (
            f"{head}out of memory{': ' + text if text else ''}; select fewer frames or "
            "planes, or close other layers and try again"
        )
    if isinstance(exc, OSError):
        return (
            f"{head}{text or type(exc).__name__}; check that the file still exists, its "
            "drive is mounted and has free space, then try again"
        )
    return (
        f"{head}unexpected {type(exc).__name__}{': ' + text if text else ''}; this is a "
        "bug in napari-scanimage, please report it with the steps that led to it"
    )


def notify_error(message: str) -> None:
    """A napari error notification (a pop-up in the viewer, recorded by napari)."""
    from napari.utils.notifications import show_error

    show_error(message)


def report_failure(status, what: str, exc: BaseException) -> str:
    """Tell the user that ``what`` failed: in the dock's ``status`` label and as a napari error
    notification; returns the message.
    """
    message = describe(exc, what)
    status.setText(message)
    notify_error(message)
    return message


class ReadFailureReporter:
    """``on_error`` of the lazy arrays of a recording's layers: where a read fails (file
    deleted, shortened, unreadable) the viewer shows blank frames, and the user is told once
    (not at every step of the slider).
    """

    def __init__(self, name: str):
        self.name = name
        self.told: str | None = None

    def __call__(self, exc: BaseException) -> None:
        if self.told is not None:
            return
        self.told = (
            f"{self.name} cannot be read; its layers show blank frames where data is "
            f"missing: {describe(exc)}"
        )
        notify_error(self.told)
