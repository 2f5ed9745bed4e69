"""Multi-ROI recordings in a real viewer: one layer per (channel, field), each field at its
physical position (scale = field pixel size, fields tile), pixels equal to the ground truth.
"""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest

from napari_scanimage.errors import MroiWarning
from napari_scanimage.gui.roi_layers import roi_axes
from napari_scanimage.testing.mroi import FIELDS, FieldSpec, roi_groups_json, write_mroi_tiff

pytestmark = pytest.mark.gui

# "middle" only at z = 5 µm (plane 1)
DISCRETE = (FIELDS[0], FieldSpec("middle", 32, 40, (0.0, 0.25), (2.0, 2.5), zs=(5.0,)), FIELDS[2])


@pytest.fixture
def meso(tmp_path):
    return write_mroi_tiff(tmp_path / "meso.tif", DISCRETE, num_volumes=3, frame_rate=20.0)


def pixel_box(layer) -> np.ndarray:
    """(2, 2) [[top, left], [bottom, right]] µm covered by the layer's pixels (y, x)."""
    centres = layer.extent.world[:, -2:]
    half = np.asarray(layer.scale[-2:]) / 2
    return np.stack([centres[0] - half, centres[1] + half])


def test_viewer_opens_fields_at_their_positions(make_napari_viewer, qtbot, meso):
    viewer = make_napari_viewer()
    layers = viewer.open(str(meso.path), plugin="napari-scanimage")
    names = [f"{c} {f}" for f in ("left", "middle", "right") for c in ("Green", "Red")]
    assert [layer.name for layer in layers] == names
    assert [layer.name for layer in viewer.layers] == names
    volume_period = (3 * 1 + 1) / 20.0
    boxes = {}
    for layer in layers:
        channel, field_name = layer.name.split(" ")
        k = ["left", "middle", "right"].index(field_name)
        truth = meso.fields[k]
        assert layer.data.shape == (3, 3, truth.height, truth.width)
        assert tuple(layer.axis_labels) == ("t", "z", "y", "x")
        np.testing.assert_allclose(
            layer.scale, (volume_period, 5.0, *truth.pixel_size_um), rtol=1e-9
        )
        (cx, cy), (sx, sy) = truth.center_xy_um, truth.size_xy_um
        py, px = truth.pixel_size_um
        np.testing.assert_allclose(
            layer.translate, (0, 0, cy - sy / 2 + py / 2, cx - sx / 2 + px / 2), atol=1e-9
        )
        box = pixel_box(layer)  # pixels cover exactly the scanned area
        np.testing.assert_allclose(
            box, [[cy - sy / 2, cx - sx / 2], [cy + sy / 2, cx + sx / 2]], atol=1e-9
        )
        np.testing.assert_allclose(box.mean(axis=0), (cy, cx), atol=1e-9)  # centred on centreXY
        boxes[layer.name] = box
        view = layer.metadata["scanimage_dataset"]
        assert view.selected_field.name == field_name
        assert layer.metadata["scanimage"]["field"] == field_name
        c = ("Green", "Red").index(channel)
        for t, z in itertools.product((0, 2), range(3)):
            np.testing.assert_array_equal(
                np.asarray(layer.data[t, z]), meso.field_frame(k, t, z, c)
            )
        if field_name == "middle":
            assert not np.asarray(layer.data[1, 0]).any()  # not scanned at plane 0: zeros
    # the fields tile: no two overlap (touching edges allowed)
    for a, b in itertools.combinations(("Green left", "Green middle", "Green right"), 2):
        (ta, la), (ba, ra) = boxes[a]
        (tb, lb), (bb, rb) = boxes[b]
        assert min(ba, bb) - max(ta, tb) <= 1e-9 or min(ra, rb) - max(la, lb) <= 1e-9
    assert boxes["Green left"][1, 1] == pytest.approx(boxes["Green middle"][0, 1])  # adjacent
    # ROI layers drawn over a field are placed with it
    axes = roi_axes(viewer.layers["Red right"])
    assert axes["translate"] == list(viewer.layers["Red right"].translate[1:])
    # what the canvas shows at a step is the field's ground truth
    viewer.dims.set_current_step(0, 2)
    viewer.dims.set_current_step(1, 1)
    qtbot.wait(20)
    for k, name in enumerate(("Red left", "Red middle", "Red right")):
        shown = np.asarray(viewer.layers[name]._slice.image.view)
        np.testing.assert_array_equal(shown, meso.field_frame(k, 2, 1, 1))


def test_unusable_roi_metadata_shows_whole_pages(make_napari_viewer, tmp_path):
    doc = json.loads(roi_groups_json(FIELDS))
    doc["RoiGroups"]["imagingRoiGroup"]["rois"][1]["scanfields"]["pixelResolutionXY"] = [32, 90]
    bad = write_mroi_tiff(tmp_path / "tall.tif", roi_json=json.dumps(doc), num_volumes=2)
    viewer = make_napari_viewer()
    with pytest.warns(MroiWarning, match="lines tall together.*whole pages are shown"):
        layers = viewer.open(str(bad.path), plugin="napari-scanimage")
    assert [layer.name for layer in layers] == ["Green", "Red"]
    assert layers[0].data.shape == (2, 3, 124, 64)
    np.testing.assert_array_equal(
        np.asarray(layers[1].data[1, 2]), bad.page(bad.layout.page_index(1, 2, 0, 1))
    )


def test_selection_dock_shows_the_recording_once_and_keeps_fields_in_place(
    make_napari_viewer, qtbot, meso
):
    from napari_scanimage.gui.selection import SelectionDock

    viewer = make_napari_viewer()
    viewer.open(str(meso.path), plugin="napari-scanimage")
    translates = {layer.name: tuple(layer.translate) for layer in viewer.layers}
    _, dock = viewer.window.add_plugin_dock_widget("napari-scanimage", "Selection")
    assert isinstance(dock, SelectionDock)
    assert dock.dataset_box.count() == 1  # one recording, not one entry per field
    assert dock.dataset.fields and dock.dataset.selected_field is None
    dock.channels.item(1).setSelected(False)  # Green only, plane 1
    dock.plane.setCurrentIndex(dock.plane.findData(1))
    layers = dock.apply()
    assert [layer.name for layer in layers] == ["Green left", "Green middle", "Green right"]
    assert [layer.name for layer in viewer.layers] == ["Green left", "Green middle", "Green right"]
    for layer in layers:
        k = ["left", "middle", "right"].index(layer.name.split(" ")[1])
        assert layer.data.shape == (3, meso.fields[k].height, meso.fields[k].width)
        assert tuple(layer.translate)[-2:] == translates[layer.name][-2:]
        np.testing.assert_array_equal(np.asarray(layer.data[2]), meso.field_frame(k, 2, 1, 0))
    # a refresh of the unchanged file adds nothing and keeps the layers
    assert dock.refresh_files() == 0
    assert [layer.name for layer in viewer.layers] == ["Green left", "Green middle", "Green right"]


def test_docks_work_on_the_field_of_the_active_layer(make_napari_viewer, qtbot, meso):
    """Select a field's layer: registration, new ROI layers and traces use that field."""
    from napari_scanimage.gui.registration import RegistrationDock
    from napari_scanimage.gui.rois import RoiDock
    from napari_scanimage.gui.traces import TracePlotDock

    viewer = make_napari_viewer()
    viewer.open(str(meso.path), plugin="napari-scanimage")
    right = viewer.layers["Green right"]
    viewer.layers.selection.active = right
    reg = RegistrationDock(viewer)
    qtbot.addWidget(reg)
    assert reg.dataset.selected_field.name == "right"
    reg.run()
    qtbot.waitUntil(lambda: not reg.busy, timeout=60000)
    truth = meso.fields[2]
    assert reg.result.reference.shape == (3, truth.height, truth.width)
    registered = [layer for layer in viewer.layers if layer.name.endswith("registered")]
    assert registered and all(
        tuple(layer.translate) == tuple(right.translate) for layer in registered
    )
    # an ROI layer made while the right field is active belongs to it, and so do its traces
    viewer.layers.selection.active = right
    rois = RoiDock(viewer)
    qtbot.addWidget(rois)
    layer = rois.new_layer()
    np.testing.assert_allclose(layer.translate, right.translate[1:])
    np.testing.assert_allclose(layer.scale, right.scale[1:])
    plot = TracePlotDock(viewer)
    qtbot.addWidget(plot)
    plot.params.registered.value = False  # raw frames (the field's registration is shown)
    viewer.layers.selection.active = viewer.layers["Green left"]  # another layer active: no matter
    box = np.array([[1, 2, 3], [1, 2, 13], [1, 10, 13], [1, 10, 3]], float)  # plane 1
    layer.add([box], shape_type="rectangle")
    qtbot.wait(plot._timer.interval() + 50)
    qtbot.waitUntil(
        lambda: plot.result is not None and not plot.busy and not plot._timer.isActive(),
        timeout=30000,
    )
    roiset = plot._request()[1]
    mask = np.asarray(roiset.masks((truth.height, truth.width), 3)[0].todense()).reshape(
        3, truth.height, truth.width
    )
    assert mask[1, 3:10, 4:13].all() and not mask[[0, 2]].any()  # the box, on plane 1 only
    assert not mask[1, :2].any() and not mask[1, :, :3].any()
    expected = [meso.field_frame(2, t, 1, 0).astype(np.float64)[mask[1]].mean() for t in range(3)]
    np.testing.assert_allclose(plot.curves["roi 1"].getData()[1], expected, rtol=1e-12)
