"""The docks' parameter forms as magicgui widgets.

Each computing dock keeps its parameters in a :class:`Params` form (``dock.params``): compact
rows of magicgui widgets embedded in the dock's Qt layout (``params.native``).  A script or a
test sets ``dock.params.<name>.value`` and calls the method the dock's button calls; the dock
maps ``dock.params.asdict()`` onto the library call's keyword arguments in one method.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from magicgui.backends._qtpy import widgets as _qt_backend
from magicgui.widgets import (
    CheckBox,
    ComboBox,
    Container,
    FloatSpinBox,
    Label,
    PushButton,
    Widget,
)
from magicgui.widgets.bases import RangedWidget
from qtpy.QtWidgets import QSpinBox

__all__ = [
    "IntSpinBox",
    "Params",
    "button",
    "check",
    "choice",
    "float_spin",
    "int_spin",
    "set_choices",
    "text",
]


class _QtIntSpin(_qt_backend.SpinBox):
    """magicgui's integer spin box on a plain QSpinBox, which shows a prefix, a suffix and a
    text for its minimum (magicgui's own unbounded one shows none of them).
    """

    def __init__(self, **kwargs: Any) -> None:
        _qt_backend.QBaseRangedWidget.__init__(self, QSpinBox, **kwargs)


class IntSpinBox(RangedWidget[int]):
    """An integer spin box (:class:`magicgui.widgets.SpinBox` with Qt's own spin box)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(widget_type=_QtIntSpin, **kwargs)


class Params(Container):
    """A form of parameter widgets laid out in rows (a dock stays narrow and short), read and
    set by name as if flat: ``params.channel.value``, ``params.asdict()``,
    ``params.update(n_exp=2)``.

    Parameters
    ----------
    rows : sequence of sequences of magicgui widgets
        One horizontal row each; labels made with :func:`text` and buttons made with
        :func:`button` are shown but are not parameters.  An item ``(widget, stretch)`` gives
        the widget's share of the row's spare width (default: 1 for drop-downs, else 0).
    align_labels : bool
        Labels that open a row get the width of the widest of them, and rows without one are
        indented as far, so the widgets line up in a column (like a form).
    """

    def __init__(
        self, rows: Sequence[Sequence[Widget | tuple[Widget, int]]], align_labels: bool = False
    ):
        boxes = []
        for items in rows:
            pairs = [
                item if isinstance(item, tuple) else (item, 1 if isinstance(item, ComboBox) else 0)
                for item in items
            ]
            row = Container(widgets=[w for w, _ in pairs], layout="horizontal", labels=False)
            row.margins = (0, 0, 0, 0)
            for k, (_, stretch) in enumerate(pairs):
                row.native.layout().setStretch(k, stretch)
            boxes.append(row)
        super().__init__(widgets=boxes, labels=False)
        self.margins = (0, 0, 0, 0)
        #: the width (px) of the label column with ``align_labels``, else 0
        self.label_width = 0
        if align_labels:
            firsts = [row[0] for row in boxes if isinstance(row[0], Label)]
            self.label_width = max((w.native.sizeHint().width() for w in firsts), default=0)
            for row in boxes:
                if isinstance(row[0], Label):
                    row[0].native.setMinimumWidth(self.label_width)
                else:
                    layout = row.native.layout()
                    layout.insertSpacing(0, self.label_width)

    def _widgets(self) -> Iterable[Any]:  # magicgui widgets (value widgets, labels, buttons)
        for row in self._list:
            yield from row

    def __getattr__(self, name: str) -> Any:
        if not name.startswith("_"):
            for w in self._widgets():
                if w.name == name:
                    return w
        return super().__getattr__(name)

    def asdict(self) -> dict[str, Any]:
        """Every parameter's value by name (labels left out)."""
        return {w.name: w.value for w in self._widgets() if w.name and not w.gui_only}

    def update(
        self, mapping: Mapping[Any, Any] | Iterable[tuple[str, Any]] | None = None, **kwargs: Any
    ) -> None:
        """Set parameters by name (unknown names raise KeyError)."""
        for name, value in {**dict(mapping or {}), **kwargs}.items():
            widget = next((w for w in self._widgets() if w.name == name and not w.gui_only), None)
            if widget is None:
                raise KeyError(f"no parameter {name!r}; the form has {', '.join(self.asdict())}")
            widget.value = value


def text(value: str) -> Label:
    """A label between the widgets of a row (not a parameter)."""
    return Label(value=value, gui_only=True)


def button(text: str, tooltip: str | None = None) -> PushButton:
    """A push button in a row of the form (not a parameter); the dock uses its ``.native``."""
    return PushButton(text=text, tooltip=tooltip, gui_only=True)


def check(name: str, text: str, value: bool, tooltip: str | None = None) -> CheckBox:
    """A check box with ``text`` beside it."""
    return CheckBox(name=name, text=text, value=value, tooltip=tooltip)


def choice(
    name: str, choices: Sequence = (), tooltip: str | None = None, value: Any = None
) -> ComboBox:
    """A drop-down; ``choices`` are values, or (text, value) pairs."""
    box = ComboBox(name=name, choices=list(choices), tooltip=tooltip)
    if value is not None:
        box.value = value
    return box


def _spin(box, prefix: str, suffix: str, special: str, step) -> Any:
    native = box.native
    native.setPrefix(prefix)
    native.setSuffix(suffix)
    if special:  # shown for the minimum, which then means "automatic" / "none"
        native.setSpecialValueText(special)
    if step is not None:
        native.setSingleStep(step)
    native.setKeyboardTracking(False)  # typing "15" is one change, not "1" then "15"
    return box


def int_spin(
    name: str,
    low: int,
    high: int,
    value: int,
    *,
    tooltip: str | None = None,
    prefix: str = "",
    suffix: str = "",
    special: str = "",
    step: int | None = None,
) -> IntSpinBox:
    """An integer spin box; ``special``: the text shown for ``low``."""
    box = IntSpinBox(name=name, min=low, max=high, value=value, tooltip=tooltip)
    return _spin(box, prefix, suffix, special, step)


def float_spin(
    name: str,
    low: float,
    high: float,
    value: float,
    *,
    decimals: int = 2,
    tooltip: str | None = None,
    prefix: str = "",
    suffix: str = "",
    special: str = "",
    step: float | None = None,
) -> FloatSpinBox:
    """A decimal spin box with ``decimals`` places; ``special``: the text shown for ``low``."""
    box = FloatSpinBox(name=name, min=low, max=high, tooltip=tooltip)
    box.native.setDecimals(decimals)
    box.value = value
    return _spin(box, prefix, suffix, special, step)


def set_choices(box: ComboBox, choices: Sequence) -> bool:
    """Give ``box`` new choices (values or (text, value) pairs) unless it has them already;
    True when they changed.  The value is kept when it is still a choice.
    """
    values = tuple(c[1] if isinstance(c, tuple) else c for c in choices)
    texts = [c[0] if isinstance(c, tuple) else str(c) for c in choices]
    native = box.native
    if (
        tuple(box.choices) == values
        and [native.itemText(i) for i in range(native.count())] == texts
    ):
        return False
    box.choices = list(choices)
    return True
