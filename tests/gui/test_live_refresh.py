"""A recording still being written, in a real viewer: Refresh and Auto-refresh."""

from __future__ import annotations

import os
import warnings

import numpy as np
import pytest
import tifffile
from qtpy.QtCore import Qt

from napari_scanimage.gui.selection import SelectionDock
from napari_scanimage.testing.tiff import SyntheticLayout, write_scanimage_tiff

pytestmark = pytest.mark.gui

LAYOUT = SyntheticLayout(
    channels=(1, 2), channel_names=("Green", "Red"), num_volumes=12, height=16, width=24
)


@pytest.fixture
def growing(tmp_path):
    """(complete recording, its bytes, page offsets, the file being written)."""
    (tmp_path / "full").mkdir()
    truth = write_scanimage_tiff(tmp_path / "full" / "rec.tif", LAYOUT)
    data = truth.paths[0].read_bytes()
    with tifffile.TiffFile(truth.paths[0]) as tif:
        offsets = [p.offset for p in tif.pages] + [len(data)]
    live = tmp_path / "rec.tif"
    live.write_bytes(data[: offsets[6] + 40])  # 3 frames, and a page begun
    return truth, data, offsets, live


def append_until(live, data, end: int) -> None:
    with open(live, "ab") as fh:
        fh.write(data[os.path.getsize(live) : end])


def open_live(viewer, live):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the cut page: reported on open, expected here
        viewer.open(str(live), plugin="napari-scanimage")
    _, dock = viewer.window.add_plugin_dock_widget("napari-scanimage", "Selection")
    assert isinstance(dock, SelectionDock)
    return dock


def test_refresh_button_and_auto_refresh_grow_the_layers(make_napari_viewer, qtbot, growing):
    truth, data, offsets, live = growing
    viewer = make_napari_viewer()
    dock = open_live(viewer, live)
    green, red = viewer.layers["Green"], viewer.layers["Red"]
    assert green.data.shape == red.data.shape == (3, 16, 24)
    green.contrast_limits = (5, 3000)
    viewer.dims.set_current_step(0, 2)  # on the last frame: the view follows new frames

    append_until(live, data, offsets[14] + 3)  # frames 3..6 complete, page 14 begun
    qtbot.mouseClick(dock.refresh_button, Qt.MouseButton.LeftButton)
    assert green.data.shape == red.data.shape == (7, 16, 24)
    assert viewer.layers["Green"] is green and green.contrast_limits == [5, 3000]
    assert viewer.dims.current_step[0] == 6
    np.testing.assert_array_equal(np.asarray(red.data[6]), truth.page(13))
    np.testing.assert_array_equal(np.asarray(green._data_view), truth.page(12))  # on screen
    assert "4 new time point(s)" in dock.status.text()

    viewer.dims.set_current_step(0, 1)  # not on the last frame: the view stays
    dock.auto_refresh.setChecked(True)
    append_until(live, data, offsets[20])
    qtbot.waitUntil(lambda: green.data.shape[0] == 10, timeout=10000)
    assert red.data.shape[0] == 10 and viewer.dims.current_step[0] == 1
    np.testing.assert_array_equal(np.asarray(green.data[9]), truth.page(18))
    append_until(live, data, len(data))
    qtbot.waitUntil(lambda: red.data.shape[0] == 12, timeout=10000)
    np.testing.assert_array_equal(np.asarray(red.data[11]), truth.page(23))
    assert dock.auto_refresh.isChecked()
    dock.auto_refresh.setChecked(False)


def test_auto_refresh_stops_with_a_message_when_the_file_is_gone(
    make_napari_viewer, qtbot, growing
):
    from napari.utils.notifications import notification_manager

    truth, data, offsets, live = growing
    viewer = make_napari_viewer()
    dock = open_live(viewer, live)
    dock.auto_refresh.setChecked(True)
    before = len(notification_manager.records)
    live.unlink()
    qtbot.waitUntil(lambda: not dock.auto_refresh.isChecked(), timeout=10000)
    assert "gone" in dock.status.text() and "auto-refresh stopped" in dock.status.text()
    assert any("rec.tif" in str(n.message) for n in notification_manager.records[before:])
    assert viewer.layers["Green"].data.shape[0] == 3  # the layers keep what was read


def test_refresh_of_a_replaced_file_warns_and_keeps_the_layers(
    make_napari_viewer, qtbot, growing, tmp_path
):
    truth, data, offsets, live = growing
    viewer = make_napari_viewer()
    dock = open_live(viewer, live)
    other = write_scanimage_tiff(tmp_path / "other.tif", LAYOUT, height=20)
    os.replace(other.paths[0], live)
    qtbot.mouseClick(dock.refresh_button, Qt.MouseButton.LeftButton)
    assert "another recording" in dock.status.text()
    layer = viewer.layers["Green"]
    assert layer.data.shape == (3, 16, 24)
    ds = layer.metadata["scanimage_dataset"]
    assert ds.info.num_volumes == 3 and ds.info.frame_shape == (16, 24)
