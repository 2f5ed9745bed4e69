"""What every dock of the plugin shares about its size and place in the window.

Seven docks stacked in one dock area are taller than any screen, and Qt will not shrink the
main window below the sum of their minimum sizes.  So each dock's contents sit in a
:class:`DockScroll` (:func:`dock_layout`): the dock may be made as short as a title bar and
scrolls its contents, which keep their own minimum sizes (plots stay readable, tables show
several rows).  And when a dock is first placed next to docks of the same :data:`GROUPS`
group (as napari's Plugins menu does, one under the other), it joins them as a tab, so every
dock gets the height of its group rather than a seventh of the screen.

Docks take their room from the canvas after napari has fitted the view to the first layer, so
the frame would be cut; :func:`fit_view_as_canvas_settles` fits it again each time the canvas
changes size, until the user moves or zooms the view.
"""

from __future__ import annotations

import contextlib

from qtpy.QtCore import QCoreApplication, QEvent, QObject, QSize, Qt, QTimer
from qtpy.QtWidgets import (
    QAbstractItemView,
    QDockWidget,
    QFrame,
    QMainWindow,
    QScrollArea,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

__all__ = [
    "GROUPS",
    "PLOT_MIN_HEIGHT",
    "DockScroll",
    "dock_layout",
    "dock_scroll",
    "fit_view_as_canvas_settles",
    "group_of",
    "show_rows",
]

#: minimum height (px) of every plot in the docks: room for a vertical axis label such as
#: "residual (σ)" and a few tick labels
PLOT_MIN_HEIGHT = 120
#: the docks' minimum width (px) before they scroll sideways: the canvas keeps most of a
#: 1280-pixel screen
MAX_MIN_WIDTH = 460
#: the height (px) a dock may be squeezed to (its contents then scroll)
SQUEEZED_HEIGHT = 60

#: dock class name → tab group: the docks that set up what is shown, and the docks that
#: compute and plot; docks of a group placed in the same dock area are tabbed together
GROUPS = {
    "SelectionDock": "setup",
    "MetadataDock": "setup",
    "RoiDock": "setup",
    "RegistrationDock": "analysis",
    "FlimDock": "analysis",
    "PhasorDock": "analysis",
    "TracePlotDock": "analysis",
}


def group_of(widget: QWidget | None) -> str | None:
    """The tab group of a dock widget of the plugin (by its class), else None."""
    for cls in type(widget).__mro__:
        if cls.__name__ in GROUPS:
            return GROUPS[cls.__name__]
    return None


class DockScroll(QScrollArea):
    """A scroll area for a dock's contents: as wide as the contents need (up to
    :data:`MAX_MIN_WIDTH`), squeezable to :data:`SQUEEZED_HEIGHT`, and asking for the
    contents' preferred height.
    """

    def __init__(self, dock: QWidget):
        super().__init__(dock)
        self.dock = dock
        self.setWidgetResizable(True)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.contents = _Contents(self)
        self.setWidget(self.contents)
        self._placed = False

    def _extra_width(self) -> int:
        bar = self.verticalScrollBar()
        return (bar.sizeHint().width() if bar is not None else 0) + 2 * self.frameWidth()

    def minimumSizeHint(self) -> QSize:  # noqa: N802 - Qt's name
        inner = self.contents.minimumSizeHint()
        return QSize(
            min(inner.width() + self._extra_width(), MAX_MIN_WIDTH),
            min(inner.height(), SQUEEZED_HEIGHT),
        )

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt's name
        # QScrollArea caps its hint at 24 lines; the dock asks for what its contents need
        inner = self.contents.sizeHint().expandedTo(self.contents.minimumSizeHint())
        return QSize(inner.width() + self._extra_width(), inner.height() + 2 * self.frameWidth())

    def showEvent(self, event) -> None:  # noqa: N802 - Qt's name
        super().showEvent(event)
        if not self._placed:
            self._placed = True
            _add_stretch_unless_expanding(self.contents.layout())
            QTimer.singleShot(0, self._join_group)

    def _join_group(self) -> None:
        with contextlib.suppress(RuntimeError):  # closed before the window got round to it
            join_group(self.dock)


class _Contents(QWidget):
    """The scrolled contents: a change of their size hints reaches the dock area (QScrollArea
    itself only updates its scroll bars).  Their minimum height counts word-wrapped labels at
    the height they wrap to at the present width: the layout gives them that height anyway,
    and the widgets below would otherwise be drawn over one another (a plot under its buttons).
    """

    def __init__(self, scroll: QScrollArea):
        super().__init__()
        self._scroll = scroll
        self._wrapped_height = 0

    def _minimum_height_for_width(self, width: int) -> int:
        """The column's minimum height with each word-wrapped widget at its wrapped height."""
        layout = self.layout()
        if layout is None:
            return 0
        total, shown = 0, 0
        for i in range(layout.count()):
            item = layout.itemAt(i)
            if item is None or item.isEmpty():
                continue
            shown += 1
            widget = item.widget()
            height = item.minimumSize().height()
            if widget is not None and widget.hasHeightForWidth():
                height = max(height, widget.heightForWidth(width))
            total += height
        margins = layout.contentsMargins()
        spacing = max(shown - 1, 0) * max(layout.spacing(), 0)
        return total + spacing + margins.top() + margins.bottom()

    def minimumSizeHint(self) -> QSize:  # noqa: N802 - Qt's name
        hint = super().minimumSizeHint()
        return QSize(hint.width(), max(hint.height(), self._wrapped_height))

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt's name
        super().resizeEvent(event)
        self._update_wrapped()

    def _update_wrapped(self) -> None:
        layout = self.layout()
        if layout is None:
            return
        margins = layout.contentsMargins()
        height = self._minimum_height_for_width(
            max(self.width() - margins.left() - margins.right(), 1)
        )
        if height != self._wrapped_height:  # once per change of the wrapping: no loop
            self._wrapped_height = height
            self.updateGeometry()

    def event(self, event) -> bool:
        if event.type() == QEvent.Type.LayoutRequest:  # e.g. a label's new text
            with contextlib.suppress(RuntimeError):  # the dock is being deleted
                self._update_wrapped()
                self._scroll.updateGeometry()
                # and the scroll area sizes the contents to their new minimum
                QCoreApplication.postEvent(self._scroll, QEvent(QEvent.Type.LayoutRequest))
        return super().event(event)


def _add_stretch_unless_expanding(layout) -> None:
    """Like napari's own docks: a stretch at the bottom keeps a dock of fixed-height controls
    at the top, unless something in it (a plot, a list) takes the room.
    """
    if layout is None or layout.expandingDirections() & Qt.Orientation.Vertical:
        return
    layout.addStretch(1)


def dock_layout(dock: QWidget) -> QVBoxLayout:
    """Put a :class:`DockScroll` into ``dock`` and return the layout of its contents (use it
    where the dock would use ``QVBoxLayout(dock)``).
    """
    outer = QVBoxLayout(dock)
    outer.setContentsMargins(0, 0, 0, 0)
    scroll = DockScroll(dock)
    outer.addWidget(scroll)
    return _Column(scroll.contents)


def dock_scroll(dock: QWidget) -> DockScroll | None:
    """The :class:`DockScroll` that :func:`dock_layout` put into ``dock``, or None."""
    return dock.findChild(DockScroll, options=Qt.FindChildOption.FindDirectChildrenOnly)


class _Column(QVBoxLayout):
    """The contents' layout.  Word-wrapped labels give a layout a height-for-width, and
    QScrollArea then sizes the contents at their *preferred* height (plots at 480 px), so a
    dock of normal height would always scroll; without it the contents fill the dock and
    scroll only below their minimum size.
    """

    def hasHeightForWidth(self) -> bool:  # noqa: N802 - Qt's name
        return False


def join_group(dock: QWidget) -> bool:
    """Tab ``dock``'s QDockWidget with a dock of the same group in the same dock area, when
    it is alone there (napari's Plugins menu stacks new docks one under the other): it joins
    the earliest such dock.

    Returns True when it was tabbed.
    """
    frame = dock.parentWidget()
    window = frame.parentWidget() if frame is not None else None
    group = group_of(dock)
    if (
        not isinstance(frame, QDockWidget)
        or not isinstance(window, QMainWindow)
        or group is None
        or frame.isFloating()
        or window.tabifiedDockWidgets(frame)
    ):
        return False
    area = window.dockWidgetArea(frame)
    for other in window.findChildren(QDockWidget):  # in the order they were made
        if other is frame:
            break  # the first dock of a group stays where it is; later ones join it
        if other.isFloating() or not other.isVisible() or window.dockWidgetArea(other) != area:
            continue
        if group_of(other.widget()) == group:
            window.tabifyDockWidget(other, frame)
            frame.show()
            frame.raise_()
            return True
    return False


def show_rows(view: QAbstractItemView, rows: int) -> None:
    """Give a table or tree the minimum height that shows ``rows`` rows and its header."""
    header = getattr(view, "horizontalHeader", None) or getattr(view, "header", None)
    head = header().sizeHint().height() if header is not None else 0
    row = view.fontMetrics().height() + 8
    if hasattr(view, "verticalHeader"):
        row = max(row, view.verticalHeader().defaultSectionSize())
    view.setMinimumHeight(head + rows * row + 2 * view.frameWidth() + 4)


class _ViewFitter(QObject):
    """Refits a viewer's camera to its layers after the canvas has been resized (once a burst
    of resizes is over), as long as the camera is where the last fit put it: a view the user
    has moved or zoomed is left alone, and the fitter then stops for good.
    """

    def __init__(self, viewer, canvas: QWidget):
        super().__init__(canvas)
        self.viewer = viewer
        self.canvas = canvas
        self.fitted: tuple | None = self._camera()
        self.timer = QTimer(self)
        self.timer.setSingleShot(True)
        self.timer.setInterval(50)  # docks are placed and sized over several events
        self.timer.timeout.connect(self.fit)
        canvas.installEventFilter(self)

    def _camera(self) -> tuple:
        camera = self.viewer.scene.camera
        return (round(float(camera.zoom), 9), *(round(float(c), 6) for c in camera.center))

    def eventFilter(self, obj, event) -> bool:  # noqa: N802 - Qt's name
        if obj is self.canvas and event.type() == QEvent.Type.Resize:
            if self._camera() != self.fitted:
                self.stop()  # the user has changed the view since it was fitted
            else:
                self.timer.start()
        return False

    def fit(self) -> None:
        with contextlib.suppress(RuntimeError):  # the viewer was closed meanwhile
            if self._camera() != self.fitted:
                self.stop()
                return
            if len(self.viewer.layers):
                self.viewer.reset_view()
            self.fitted = self._camera()

    def stop(self) -> None:
        self.timer.stop()
        self.canvas.removeEventFilter(self)
        self.fitted = None


def fit_view_as_canvas_settles(viewer) -> None:
    """Fit ``viewer``'s view to its layers whenever its canvas changes size (the docks, the
    window being shown or maximised), until the user moves or zooms the view.

    Napari fits the view to the first layer opened, for the canvas as it was then; docks
    added afterwards make the canvas smaller and would cut the frame off.  Installed once
    per viewer; a later call does nothing.
    """
    qt_viewer = viewer.window._qt_viewer
    if getattr(qt_viewer, "_scanimage_fitter", None) is not None:
        return
    qt_viewer._scanimage_fitter = _ViewFitter(viewer, qt_viewer.canvas.native)
