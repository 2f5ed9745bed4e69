"""Docks that follow the viewer's sliders do nothing while hidden (a closed dock is only
hidden) and catch up when shown again.
"""

from __future__ import annotations

from qtpy.QtWidgets import QWidget


class IdleWhenHidden(QWidget):
    """A QWidget base class: ``self.hidden`` is True between a hide and a show event;
    ``catch_up()`` runs on show.
    """

    hidden = False

    def hideEvent(self, event) -> None:  # noqa: N802 - Qt's name
        self.hidden = True
        super().hideEvent(event)

    def showEvent(self, event) -> None:  # noqa: N802 - Qt's name
        self.hidden = False
        super().showEvent(event)
        self.catch_up()

    def catch_up(self) -> None:
        """Bring the widget up to date with the viewer (after being hidden)."""
