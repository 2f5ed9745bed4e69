"""A recording's layers follow a change of selection together, in a real viewer: raw and
registered images, the QC image and ROIs; no mixed axes, no units warnings, no crash.
"""

from __future__ import annotations

import numpy as np
import pytest

from napari_scanimage.gui.registration import RegistrationDock
from napari_scanimage.gui.rois import RoiDock
from napari_scanimage.gui.selection import SelectionDock

pytestmark = pytest.mark.gui


@pytest.fixture
def notes():
    """Napari notifications shown while the test runs (messages)."""
    from napari.utils.notifications import notification_manager

    seen: list[str] = []

    def keep(notification):
        seen.append(str(notification.message))

    notification_manager.notification_ready.connect(keep)
    yield seen
    notification_manager.notification_ready.disconnect(keep)


def choose(dock, *, plane="keep", sample=None):
    if plane != "keep":
        dock.plane.setCurrentIndex(dock.plane.findData(plane) if plane is not None else 0)
    if sample is not None:
        dock.sample.setCurrentIndex(dock.sample.findData(sample))
    return dock.apply()


def axes_of(viewer, qtbot) -> tuple:
    """Let the viewer repaint, then check every layer lies on the viewer's trailing axes
    with the same labels; returns the viewer's axis labels.
    """
    qtbot.wait(50)
    labels = tuple(viewer.dims.axis_labels)
    for layer in viewer.layers:
        assert tuple(layer.axis_labels) == labels[viewer.dims.ndim - layer.ndim :], layer.name
    return labels


def registered(viewer, qtbot, dock):
    dock.params.reference_frames.value = 10
    dock.run()
    qtbot.waitUntil(lambda: not dock.busy, timeout=120000)
    assert dock.result is not None


def draw_roi_on_plane(viewer, plane: int):
    rois = RoiDock(viewer)
    layer = rois.new_layer()
    z = list(layer.axis_labels).index("z")
    lead = [0.0] * (layer.ndim - 2)
    lead[z] = plane
    layer.add_rectangles(
        np.array([lead + [20, 20], lead + [20, 60], lead + [60, 60], lead + [60, 20]])
    )
    return rois, layer


def test_selection_change_keeps_the_family_on_one_set_of_axes(make_napari_viewer, qtbot, notes):
    viewer = make_napari_viewer(show=True)
    viewer.open_sample("napari-scanimage", "volume_2ch")
    rois, roi_layer = draw_roi_on_plane(viewer, 2)
    dock = SelectionDock(viewer)
    qtbot.addWidget(dock)
    assert dock.sample.currentData() == "axis"
    T = viewer.layers["Green"].data.shape[0]

    choose(dock, sample="mean")
    assert axes_of(viewer, qtbot) == ("t", "z", "y", "x")
    assert viewer.dims.nsteps[0] == T and viewer.layers["Green"].data.shape[:2] == (T, 4)
    viewer.dims.set_current_step(1, 2)  # the ROI is drawn on plane 2, and only there
    assert viewer.layers["ROIs"]._data_view._displayed.tolist() == [True]
    viewer.dims.set_current_step(1, 1)
    assert viewer.layers["ROIs"]._data_view._displayed.tolist() == [False]
    roi = viewer.layers["ROIs"]
    assert roi.ndim == 3 and np.asarray(roi.data[0])[0, 0] == 2  # still plane 2

    reg = RegistrationDock(viewer)
    qtbot.addWidget(reg)
    registered(viewer, qtbot, reg)
    names = [layer.name for layer in viewer.layers]
    assert "Green registered" in names and sum("QC" in n for n in names) == 1
    assert viewer.layers.selection.active is not None
    assert "scanimage_qc" not in viewer.layers.selection.active.metadata

    choose(dock, plane=2, sample="mean")  # a single plane: the z axis goes
    assert axes_of(viewer, qtbot) == ("t", "y", "x")
    assert viewer.layers["Green registered"].data.shape == (T, 128, 128)
    assert viewer.layers["ROIs"].ndim == 2 and len(viewer.layers["ROIs"].data) == 1
    qc_layer = next(x for x in viewer.layers if "scanimage_qc" in x.metadata)
    kind, label = qc_layer.metadata["scanimage_qc"]
    np.testing.assert_allclose(
        np.asarray(qc_layer.data), reg.qc_images[label][kind][2]
    )  # plane 2, not a mean

    choose(dock, plane=1, sample="mean")  # the ROI's plane is not shown: set aside
    assert axes_of(viewer, qtbot) == ("t", "y", "x")
    assert len(viewer.layers["ROIs"].data) == 0
    assert any("set aside" in n for n in notes)

    choose(dock, plane=None, sample="interleave")  # back: T × F time steps, ROI on plane 2
    assert axes_of(viewer, qtbot) == ("t", "z", "y", "x")
    assert viewer.dims.nsteps[0] == 2 * T
    assert viewer.layers["Green registered"].data.shape[:2] == (2 * T, 4)
    roi = viewer.layers["ROIs"]
    assert len(roi.data) == 1 and np.asarray(roi.data[0])[0, 0] == 2

    choose(dock, plane=None, sample="axis")
    assert axes_of(viewer, qtbot) == ("t", "z", "sample", "y", "x")
    assert viewer.dims.nsteps[:3] == (T, 4, 2)
    unexpected = [n for n in notes if "set aside" not in n and "shown again" not in n]
    assert unexpected == []


def test_one_plane_of_the_multi_roi_sample(make_napari_viewer, qtbot, notes):
    viewer = make_napari_viewer(show=True)
    viewer.open_sample("napari-scanimage", "mroi_3field")
    rois, roi_layer = draw_roi_on_plane(viewer, 1)
    dock = SelectionDock(viewer)
    qtbot.addWidget(dock)
    reg = RegistrationDock(viewer)
    qtbot.addWidget(reg)
    registered(viewer, qtbot, reg)
    choose(dock, plane=1)
    assert axes_of(viewer, qtbot) == ("t", "y", "x")
    assert viewer.layers["ROIs"].ndim == 2 and len(viewer.layers["ROIs"].data) == 1
    choose(dock, plane=None)
    assert axes_of(viewer, qtbot) == ("t", "z", "y", "x")
    assert np.asarray(viewer.layers["ROIs"].data[0])[0, 0] == 1
    assert [n for n in notes if "set aside" not in n and "shown again" not in n] == []


def test_last_frame_reachable_for_any_length_and_rate(make_napari_viewer, tmp_path):
    from napari_scanimage.layer_axes import reachable_step
    from napari_scanimage.testing.tiff import SyntheticLayout, write_scanimage_tiff

    layout = SyntheticLayout(
        channels=(1,),
        channel_names=("Green",),
        num_planes=1,
        num_volumes=1000,
        frame_rate=30.0,
        height=8,
        width=8,
    )
    written = write_scanimage_tiff(tmp_path / "long.tif", layout)
    viewer = make_napari_viewer()
    viewer.open(str(written.paths[0]), plugin="napari-scanimage")
    layer = viewer.layers["Green"]
    assert layer.data.shape[0] == 1000 and viewer.dims.nsteps[0] == 1000
    np.testing.assert_allclose(layer.scale[0], 1 / 30, rtol=1e-12)  # still seconds
    viewer.dims.set_current_step(0, 999)
    assert viewer.dims.current_step[0] == 999
    # the same step rule over many lengths and rates, in napari's own dims
    missed = []
    for rate in (30.0, 29.97, 6.66667, 15.2, 7.5, 1.3):
        for n in range(2, 3000, 37):
            layer.data = np.zeros((n, 1, 1), np.uint8)
            layer.scale = (reachable_step(1 / rate, n), 1, 1)
            if viewer.dims.nsteps[0] != n or viewer.dims.range[0].stop < (n - 1) / rate * 0.999:
                missed.append((rate, n))
    assert missed == []


def test_selection_after_rigid_then_piecewise(make_napari_viewer, qtbot, notes):
    """Register rigid, then piecewise, then show one plane and one frame of each slice: every
    layer (registered images, QC image, block field) follows onto (t, y, x), with no
    notification.
    """
    viewer = make_napari_viewer(show=True)
    viewer.open_sample("napari-scanimage", "volume_2ch")
    T = viewer.layers["Green"].data.shape[0]
    reg = RegistrationDock(viewer)
    qtbot.addWidget(reg)
    registered(viewer, qtbot, reg)
    reg.params.piecewise.value = True
    reg.params.block_size.value = 32
    registered(viewer, qtbot, reg)
    result = reg.result
    assert result.piecewise
    dock = SelectionDock(viewer)
    qtbot.addWidget(dock)
    choose(dock, plane=1, sample=1)
    assert axes_of(viewer, qtbot) == ("t", "y", "x")
    assert {layer.name: layer.ndim for layer in viewer.layers} == {
        "Green": 3,
        "Red": 3,
        "Green registered": 3,
        "Red registered": 3,
        "Green QC": 2,
        "Green block field ×10": 3,
    }
    assert viewer.layers["Red registered"].data.shape == (T, 128, 128)
    field = viewer.layers["Green block field ×10"]
    viewer.dims.set_current_step(0, 7)
    np.testing.assert_allclose(field._view_data[:, 1], result.block_shifts[7, 1].reshape(-1, 2))
    choose(dock, plane=None, sample="axis")
    assert axes_of(viewer, qtbot) == ("t", "z", "sample", "y", "x")
    assert viewer.layers["Green block field ×10"].ndim == 5
    viewer.dims.current_step = (7, 2, 1, 0, 0)
    np.testing.assert_allclose(
        viewer.layers["Green block field ×10"]._view_data[:, 1],
        result.block_shifts[7, 2].reshape(-1, 2),
    )
    assert notes == []
