"""Selection and metadata docks in a real napari viewer."""

from __future__ import annotations

import numpy as np
import pytest

from napari_scanimage.gui.metadata import MetadataDock
from napari_scanimage.gui.rois import RoiDock
from napari_scanimage.gui.selection import SelectionDock
from napari_scanimage.gui.traces import TracePlotDock
from napari_scanimage.testing.tiff import SyntheticLayout, write_scanimage_tiff

pytestmark = pytest.mark.gui

LAYOUT = SyntheticLayout(
    channels=(1, 3),
    channel_names=("Green", "Red"),
    num_planes=3,
    frames_per_slice=2,
    num_flyback=1,
    num_volumes=4,
    frame_rate=40.0,
    z_step_um=2.5,
    fov_um=96.0,
    height=24,
    width=32,
)
PERIOD = (3 * 2 + 1) / 40.0  # seconds per volume


@pytest.fixture
def recording(tmp_path):
    return write_scanimage_tiff(tmp_path / "rec.tif", LAYOUT)


def choose(dock, *, channels=None, plane="keep", sample=None, lifetime=None, bin_width=None):
    if channels is not None:
        for i in range(dock.channels.count()):
            dock.channels.item(i).setSelected(dock.channels.item(i).text() in channels)
    if plane != "keep":
        dock.plane.setCurrentIndex(dock.plane.findData(plane) if plane is not None else 0)
    if sample is not None:
        dock.sample.setCurrentIndex(dock.sample.findData(sample))
    if lifetime is not None:
        dock.lifetime.setChecked(lifetime)
    if bin_width is not None:
        dock.bin_width.setValue(bin_width)
    return dock.apply()


def test_selection_dock_updates_layers_in_place(make_napari_viewer, qtbot, recording):
    viewer = make_napari_viewer()
    viewer.open(str(recording.paths[0]), plugin="napari-scanimage")
    rois = viewer.add_shapes([[[2, 2], [2, 10], [10, 10]]], shape_type="polygon", name="rois")
    dock = SelectionDock(viewer)
    qtbot.addWidget(dock)
    assert dock.dataset is not None and dock.channels.count() == 2
    assert dock.sample.currentData() == "axis"  # what the reader opened
    green = viewer.layers["Green"]
    green.contrast_limits = (10, 2000)

    choose(dock, plane=2, sample="mean")
    assert [layer.name for layer in viewer.layers] == ["Green", "Red", "rois"]
    assert viewer.layers["Green"].data.shape == (4, 24, 32)
    assert viewer.layers["Green"].axis_labels == ("t", "y", "x")
    np.testing.assert_allclose(viewer.layers["Green"].scale, (PERIOD, 4.0, 3.0), rtol=1e-4)
    assert viewer.layers["Green"].contrast_limits == [10, 2000]  # look kept through a replace
    frame = np.asarray(viewer.layers["Red"].data[1])
    want = np.mean([recording.page(recording.page_index(1, 2, f, 1)) for f in range(2)], axis=0)
    np.testing.assert_allclose(frame, want, rtol=1e-6)

    choose(dock, plane=None, sample="interleave")
    layer = viewer.layers["Green"]
    assert layer.data.shape == (8, 3, 24, 32) and layer.axis_labels == ("t", "z", "y", "x")
    np.testing.assert_allclose(layer.scale, (PERIOD / 2, 2.5, 4.0, 3.0), rtol=1e-4)

    same = viewer.layers["Green"]
    choose(dock, sample=1)  # same number of axes: the very same layer object
    assert viewer.layers["Green"] is same and same.data.shape == (4, 3, 24, 32)
    np.testing.assert_array_equal(
        np.asarray(same.data[3, 0]), recording.page(recording.page_index(3, 0, 1, 0))
    )

    choose(dock, channels={"Green"})
    assert [layer.name for layer in viewer.layers] == ["Green", "rois"]
    choose(dock, channels={"Green", "Red"})
    assert [layer.name for layer in viewer.layers] == ["Green", "Red", "rois"]
    assert viewer.layers["rois"] is rois and len(rois.data) == 1
    assert tuple(viewer.dims.axis_labels) == ("t", "z", "y", "x")


def test_selection_dock_lifetime_layers(make_napari_viewer, qtbot, shared_data):
    path = shared_data / "independent" / "siff_raw.siff"
    if not path.is_file():
        pytest.skip(f"independent .siff file not found at {path}")
    viewer = make_napari_viewer()
    viewer.open(str(path), plugin="napari-scanimage")
    dock = SelectionDock(viewer)
    qtbot.addWidget(dock)
    assert dock.lifetime.isEnabled() and dock.bin_width.value() == 20.0
    choose(dock, lifetime=True)
    names = [layer.name for layer in viewer.layers]
    assert names == ["Channel 1", "Channel 1 lifetime", "Channel 2", "Channel 2 lifetime"]
    tau20 = np.asarray(viewer.layers["Channel 2 lifetime"].data[2])
    choose(dock, bin_width=10.0)
    tau10 = np.asarray(viewer.layers["Channel 2 lifetime"].data[2])
    np.testing.assert_allclose(tau10, tau20 / 2, rtol=1e-6)
    choose(dock, lifetime=False, plane=1)
    assert [layer.name for layer in viewer.layers] == ["Channel 1", "Channel 2"]
    assert viewer.layers["Channel 1"].data.shape == (6, 20, 28)


def test_selection_dock_without_recordings(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    viewer.add_image(np.zeros((4, 8, 8)))
    dock = SelectionDock(viewer)
    qtbot.addWidget(dock)
    assert dock.dataset is None and not dock.isEnabled()
    assert dock.apply() == []


def test_metadata_dock_follows_the_slider(make_napari_viewer, qtbot, recording):
    viewer = make_napari_viewer()
    viewer.open(str(recording.paths[0]), plugin="napari-scanimage")
    dock = MetadataDock(viewer)
    qtbot.addWidget(dock)
    assert dock.value_of("SI.hRoiManager.scanFrameRate") == "40"
    assert dock.value_of("SI.hChannels.channelSave") == "[1, 3]"
    viewer.layers.selection.active = viewer.layers["Red"]
    for t, z, f in ((0, 0, 0), (3, 2, 1), (1, 1, 0)):
        viewer.dims.set_current_step(0, t)
        viewer.dims.set_current_step(1, z)
        viewer.dims.set_current_step(2, f)
        page = recording.page_index(t, z, f, 1)
        qtbot.waitUntil(lambda page=page: dock.page == page, timeout=2000)  # after the step
        assert dock.page == page
        want = recording.description(page)
        number = [line for line in want.splitlines() if line.startswith("frameNumbers")][0]
        assert dock.value_of("frameNumbers") == number.split("=", 1)[1].strip()
    dock.search.setText("scanFrameRate")
    visible = []
    root = dock.tree.invisibleRootItem()
    stack = [root.child(i) for i in range(root.childCount())]
    while stack:
        item = stack.pop()
        if not item.isHidden():
            visible.append(item.text(0))
        stack += [item.child(i) for i in range(item.childCount())]
    assert "scanFrameRate" in visible and "channelSave" not in visible


def test_docks_from_the_plugins_menu(make_napari_viewer, qtbot, recording):
    """The manifest's widget contributions build every dock for a viewer."""
    viewer = make_napari_viewer()
    viewer.open(str(recording.paths[0]), plugin="napari-scanimage")
    _, selection = viewer.window.add_plugin_dock_widget("napari-scanimage", "Selection")
    _, metadata = viewer.window.add_plugin_dock_widget("napari-scanimage", "Metadata")
    assert isinstance(selection, SelectionDock) and isinstance(metadata, MetadataDock)
    _, rois = viewer.window.add_plugin_dock_widget("napari-scanimage", "ROIs")
    _, traces = viewer.window.add_plugin_dock_widget("napari-scanimage", "Traces")
    assert isinstance(rois, RoiDock) and isinstance(traces, TracePlotDock)
    assert len(traces.params.channel.choices) == 2 and rois.layer is None
    _, registration = viewer.window.add_plugin_dock_widget("napari-scanimage", "Registration")
    assert len(registration.params.channel.choices) == 2
    assert len(registration.params.plane.choices) == 4
    _, flim = viewer.window.add_plugin_dock_widget("napari-scanimage", "FLIM")
    assert not flim.isEnabled()  # a TIFF has no photon arrival times
    _, phasor = viewer.window.add_plugin_dock_widget("napari-scanimage", "Phasor")
    assert not phasor.isEnabled()
    assert selection.dataset is viewer.layers["Green"].metadata["scanimage_dataset"]
    assert metadata.value_of("SI.hStackManager.actualNumSlices") == "3"
