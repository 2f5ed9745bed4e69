"""The plot base class of the plugin's plot docks, in a real napari viewer."""

from __future__ import annotations

import numpy as np
import pytest

from napari_scanimage.gui.plot import PlotDock
from napari_scanimage.sample import sample_path

pytestmark = pytest.mark.gui


def test_plot_dock_keeps_qwidget_position_and_cursor(make_napari_viewer):
    """The curve times and the time cursor do not hide QWidget.x() / QWidget.cursor() (Qt
    and napari read a widget's position and mouse cursor through them).
    """
    from qtpy.QtGui import QCursor

    viewer = make_napari_viewer()
    viewer.open(str(sample_path("volume_2ch")), plugin="napari-scanimage")
    dock = PlotDock(viewer)
    dock.image_layer = viewer.layers[0]
    t = np.arange(6) * 0.5
    dock.set_curves(t, {"a": np.arange(6.0)})
    dock.move(7, 11)
    assert dock.x() == 7 and dock.pos().x() == 7
    assert isinstance(dock.cursor(), QCursor)
    np.testing.assert_array_equal(dock.times, t)
    # the time cursor follows the viewer's time slider
    dock.go_to_time(1.1)
    assert dock.time_cursor.value() == pytest.approx(1.0)
