"""Trace plot dock in a real viewer: curves equal the library's traces, cursor ↔ time slider,
per-ROI recompute, export.
"""

from __future__ import annotations

import csv
import io

import numpy as np
import pytest
from qtpy.QtCore import QPointF, Qt

import napari_scanimage as nsi
from napari_scanimage.gui.rois import RoiDock
from napari_scanimage.gui.traces import TracePlotDock
from napari_scanimage.testing.tiff import SyntheticLayout, write_scanimage_tiff

pytestmark = pytest.mark.gui

LAYOUT = SyntheticLayout(
    channels=(1, 2),
    channel_names=("Green", "Red"),
    num_planes=3,
    num_flyback=1,
    num_volumes=12,
    height=24,
    width=32,
)


@pytest.fixture
def setup(make_napari_viewer, qtbot, tmp_path):
    written = write_scanimage_tiff(tmp_path / "rec.tif", LAYOUT)
    viewer = make_napari_viewer()
    viewer.open(str(written.paths[0]), plugin="napari-scanimage")
    rois = RoiDock(viewer)
    qtbot.addWidget(rois)
    layer = rois.new_layer()
    dock = TracePlotDock(viewer)
    qtbot.addWidget(dock)
    return viewer, rois, layer, dock


def rect(z, y, x, h, w):
    return np.array([[z, y, x], [z, y, x + w], [z, y + h, x + w], [z, y + h, x]], float)


def settle(qtbot, dock):
    qtbot.wait(dock._timer.interval() + 50)
    qtbot.waitUntil(lambda: not dock.busy and not dock._timer.isActive(), timeout=20000)


def brute(path, masks, channel=0):
    with nsi.open_dataset(path) as ds:
        frames = ds.read(channel).astype(np.float64)  # (T, Z, Y, X)
        t = ds.timestamps(0)
    return t, np.array([[f[m].mean() for f in frames] for m in masks])


def test_curves_cursor_click_edit_export(setup, qtbot, tmp_path, make_napari_viewer):
    viewer, rois, layer, dock = setup
    make_viewer = make_napari_viewer
    layer.add(
        [rect(1, 2.5, 3.5, 5, 6), rect(2, 10.5, 12.5, 6, 6)],
        shape_type="rectangle",
        edge_color=["#ff0000", "#00ff00"],
    )
    settle(qtbot, dock)
    assert list(dock.curves) == ["roi 1", "roi 2"] and dock.computed_rois == 2
    m = np.zeros((2, 3, 24, 32), bool)
    m[0, 1, 3:8, 4:10] = True  # rectangle corners at pixel edges → pixel centres inside
    m[1, 2, 11:17, 13:19] = True
    t, want = brute(layer_path(viewer), m)
    for k, name in enumerate(["roi 1", "roi 2"]):
        x, y = dock.curves[name].getData()
        np.testing.assert_allclose(x, t)
        np.testing.assert_allclose(y, want[k], rtol=1e-12)
    assert dock.curves["roi 1"].opts["pen"].color().name() == "#ff0000"
    # time slider → cursor (the curves' data stay the same objects)
    before = dock.curves["roi 1"].getData()[1]
    axis = list(viewer.dims.axis_labels).index("t")
    step = viewer.layers["Green"].scale[0]
    viewer.dims.set_point(axis, 7 * step)
    assert dock.time_cursor.value() == pytest.approx(t[7])
    assert dock.curves["roi 1"].getData()[1] is before
    # a click on the plot → the slider
    dock.resize(600, 400)
    dock.show()
    qtbot.waitExposed(dock)
    qtbot.wait(50)
    vb = dock.plot.getPlotItem().vb
    clicks = []
    dock.plot.scene().sigMouseClicked.connect(lambda ev: clicks.append(ev.scenePos()))
    scene = vb.mapViewToScene(QPointF(t[4], float(want[0].mean())))
    pos = dock.plot.mapFromScene(scene)
    qtbot.mouseClick(dock.plot.viewport(), Qt.MouseButton.LeftButton, pos=pos)
    assert len(clicks) == 1
    assert viewer.dims.current_step[axis] == 4
    assert dock.time_cursor.value() == pytest.approx(t[4])
    # a closed (hidden) dock idles while the slider moves and catches up when shown
    dock.hide()
    viewer.dims.set_point(axis, 2 * step)
    assert dock.time_cursor.value() == pytest.approx(t[4])
    dock.show()
    assert dock.time_cursor.value() == pytest.approx(t[2])
    # editing one ROI recomputes only that one; renaming recomputes nothing
    data = list(layer.data)
    data[1] = rect(2, 0.5, 0.5, 4, 4)
    layer.data = data
    assert list(layer.shape_type) == ["rectangle", "rectangle"]
    settle(qtbot, dock)
    assert dock.computed_rois == 3
    m[1] = False
    m[1, 2, 1:5, 1:5] = True
    _, want = brute(layer_path(viewer), m)
    np.testing.assert_allclose(dock.curves[dock.result.names[1]].getData()[1], want[1], rtol=1e-12)
    rois.rename("roi 1", "cell")
    settle(qtbot, dock)
    assert list(dock.curves) == ["cell", dock.result.names[1]] and dock.computed_rois == 3
    assert [label.text for _, label in dock.legend.items] == list(dock.curves)
    # dF/F and the export
    dock.params.metric.value = "dF/F"
    settle(qtbot, dock)
    with nsi.open_dataset(layer_path(viewer)) as ds:
        lib = nsi.traces(ds, dict(zip(dock.result.names, m, strict=True)), kind="dff")
    np.testing.assert_allclose(dock.result.values, lib.values, rtol=1e-12)
    path = dock.export_csv(tmp_path / "out.csv")
    rows = list(csv.DictReader(path.read_text().splitlines()))  # no file left open
    assert len(rows) == 2 * 12 and rows[0]["metric"] == "dff" and rows[0]["channel"] == "Green"
    assert float(rows[13]["value"]) == lib.values[1, 1]
    text = dock.copy_to_clipboard()
    assert list(csv.reader(io.StringIO(text)))[0] == ["time_s", "roi", "channel", "metric", "value"]
    from qtpy.QtWidgets import QApplication

    assert QApplication.clipboard().text() == text
    # a session saved here replays through the command line to the same traces
    from napari_scanimage.cli import main

    session = dock.save_session(tmp_path / "session.nsession.json")
    replay = tmp_path / "replay.csv"
    assert main(["traces", str(session), "--out", str(replay)]) == 0
    assert replay.read_bytes().decode() == dock.result.csv_text()
    # ... and opens in a fresh viewer (File → Open) with its ROIs
    from napari_scanimage.gui.session_reader import get_session_reader

    assert get_session_reader(str(path)) is None  # a CSV, not a session
    fresh = make_viewer()
    fresh.open(str(session), plugin="napari-scanimage")
    assert [layer.name for layer in fresh.layers] == ["Green", "Red", "ROIs"]
    restored = fresh.layers["ROIs"]
    assert list(restored.features["name"]) == dock.result.names
    np.testing.assert_allclose(restored.data[1][:, -2:], layer.data[1][:, -2:])


def layer_path(viewer):
    return viewer.layers["Green"].metadata["scanimage"]["path"]


def test_channel_labels_and_cancel(setup, qtbot):
    viewer, rois, layer, dock = setup
    layer.add([rect(0, 2.5, 3.5, 5, 6)], shape_type="rectangle")
    settle(qtbot, dock)
    dock.params.channel.value = "Red"
    settle(qtbot, dock)
    m = np.zeros((1, 3, 24, 32), bool)
    m[0, 0, 3:8, 4:10] = True
    _, want = brute(layer_path(viewer), m, channel=1)
    np.testing.assert_allclose(dock.result.values, want, rtol=1e-12)
    assert dock.result.channel == "Red"
    # Labels: a painted label becomes a curve
    labels = viewer.add_labels(np.zeros((24, 32), np.int32), name="cells")
    labels.data[5:9, 5:9] = 2
    dock.select_layer(labels)
    settle(qtbot, dock)
    assert list(dock.curves) == ["label 2"]
    # cancel leaves the cached traces and no worker
    dock.params.metric.value = "sum"
    dock.refresh()
    dock.cancel()
    settle(qtbot, dock)
    assert not dock.busy


def test_neuropil_baseline_and_stacked_equal_the_library(setup, qtbot, tmp_path):
    """The dock's neuropil and dF/F baseline settings give exactly nsi.traces' values;
    stacking and hiding change only the display; the settings round-trip and are saved.
    """
    from napari_scanimage.session import Session, TraceSettings

    viewer, rois, layer, dock = setup
    layer.add(
        [rect(1, 2.5, 3.5, 5, 6), rect(1, 12.5, 14.5, 6, 6), rect(2, 4.5, 20.5, 5, 5)],
        shape_type="rectangle",
    )
    settle(qtbot, dock)
    dock.params.metric.value = "dF/F"
    dock.params.neuropil.value = True
    dock.params.neuropil_coef.value = 0.6
    dock.params.neuropil_inner.value = 1
    dock.params.neuropil_outer.value = 5
    dock.params.percentile.value = 20.0
    settle(qtbot, dock)
    dt = float(np.median(np.diff(dock.result.time)))
    dock.params.window_s.value = round(4 * dt, 1)
    settle(qtbot, dock)
    settings = dock.trace_settings()
    assert settings == TraceSettings(
        kind="dff",
        channel="Green",
        percentile=20.0,
        window_s=round(4 * dt, 1),
        neuropil=0.6,
        neuropil_radii=(1, 5),
    )
    roi_set = rois.roi_set()
    with nsi.open_dataset(layer_path(viewer)) as ds:
        lib = nsi.traces(
            ds,
            roi_set,
            kind="dff",
            percentile=20.0,
            window_s=round(4 * dt, 1),
            neuropil=0.6,
            neuropil_radii=(1, 5),
        )
        plain = nsi.traces(ds, roi_set, kind="dff", percentile=20.0, window_s=round(4 * dt, 1))
    assert np.abs(lib.values - plain.values).max() > 1e-3  # the neuropil changed them
    for k, name in enumerate(lib.names):
        np.testing.assert_allclose(dock.curves[name].getData()[1], lib.values[k], atol=1e-9, rtol=0)
    # stacked: the same values lifted apart, first on top; nothing recomputed
    computed = dock.computed_rois
    dock.params.stacked.value = True
    lifts = [dock.offsets[n] for n in lib.names]
    assert lifts[0] > lifts[1] > lifts[2] == 0.0
    for k, name in enumerate(lib.names):
        np.testing.assert_allclose(
            dock.curves[name].getData()[1] - lifts[k], lib.values[k], atol=1e-9, rtol=0
        )
        np.testing.assert_allclose(dock.shown_data(name), lib.values[k], atol=1e-9, rtol=0)
    lows = [np.nanpercentile(dock.curves[n].getData()[1], 1) for n in lib.names[:2]]
    highs = [np.nanpercentile(dock.curves[n].getData()[1], 99) for n in lib.names[1:]]
    assert lows[0] > highs[0] and lows[1] > highs[1]  # apart (but for rare peaks)
    # a legend click hides a curve, in the ROI list too, and the others close up
    dock.resize(700, 400)
    dock.show()
    qtbot.waitExposed(dock)
    qtbot.wait(50)
    sample = dock.legend.items[1][0]
    pos = dock.plot.mapFromScene(sample.sceneBoundingRect().center())
    qtbot.mouseClick(dock.plot.viewport(), Qt.MouseButton.LeftButton, pos=pos)
    settle(qtbot, dock)
    assert not dock.curves[lib.names[1]].isVisible()
    assert list(layer.features["show"]) == [True, False, True]
    assert rois.table.item(1, 4).checkState() == Qt.CheckState.Unchecked
    assert dock.offsets[lib.names[0]] > dock.offsets[lib.names[2]] == 0.0
    assert lib.names[1] not in dock.offsets
    # a click on a legend name selects (highlights) that ROI
    label = dock.legend.items[2][1]
    pos = dock.plot.mapFromScene(label.sceneBoundingRect().center())
    qtbot.mouseClick(dock.plot.viewport(), Qt.MouseButton.LeftButton, pos=pos)
    settle(qtbot, dock)
    assert layer.selected_data == {2}
    assert dock.curves[lib.names[2]].opts["pen"].widthF() == 3.0
    assert {i.row() for i in rois.table.selectedIndexes()} == {2}
    assert dock.computed_rois == computed
    # round trip of every control; a session saves them and replays the same traces
    other = TraceSettings(
        kind="mean",
        channel="Red",
        percentile=12.5,
        window_s=None,
        neuropil=0.8,
        neuropil_radii=(3, 9),
        stacked=False,
    )
    dock.set_trace_settings(other)
    assert dock.trace_settings() == other
    assert dock.params.metric.value == "mean" and not dock.params.stacked.value
    dock.set_trace_settings(settings.__class__(**{**settings.to_dict(), "stacked": True}))
    assert dock.trace_settings() == TraceSettings(**{**settings.to_dict(), "stacked": True})
    settle(qtbot, dock)
    saved = Session.load(dock.save_session(tmp_path / "s.json"))
    assert saved.trace == TraceSettings(**{**settings.to_dict(), "channel": None, "stacked": True})
    replay = saved.run_traces()
    np.testing.assert_allclose(replay.values, dock.result.values, atol=1e-12, rtol=0)


def test_mean_image_button(setup, qtbot):
    viewer, rois, layer, dock = setup
    dock.params.channel.value = "Red"
    with qtbot.waitSignal(dock.mean_button.clicked):
        dock.mean_button.click()
    qtbot.waitUntil(
        lambda: dock._mean_worker is None and "mean Red" in viewer.layers, timeout=20000
    )
    mean = viewer.layers["mean Red"]
    with nsi.open_dataset(layer_path(viewer)) as ds:
        want = ds.read("Red").astype(np.float64).mean(axis=0)  # (Z, Y, X)
    assert mean.data.shape == (3, 24, 32)  # on the ROI axes: z, y, x
    np.testing.assert_allclose(mean.data, want, rtol=1e-5)
    names = [lay.name for lay in viewer.layers]
    assert names.index("mean Red") < names.index("ROIs")  # ROIs drawn over it
    assert list(mean.scale) == list(layer.scale)


def test_trace_parameters_set_through_the_form_are_those_of_traces(setup, qtbot):
    """A script sets the form's values and refreshes: the curves are the library's traces()
    with the same arguments, and the settings a session stores are read from (and written
    to) the form.
    """
    from napari_scanimage.session import TraceSettings

    viewer, rois, layer, dock = setup
    layer.add([rect(1, 2.5, 3.5, 5, 6), rect(1, 12.5, 14.5, 6, 6)], shape_type="rectangle")
    settle(qtbot, dock)
    params = dock.params
    assert set(params.asdict()) == {
        "rois",
        "channel",
        "metric",
        "registered",
        "neuropil",
        "neuropil_coef",
        "neuropil_inner",
        "neuropil_outer",
        "percentile",
        "window_s",
        "stacked",
    }
    assert params.rois.value == layer.name and params.channel.choices == ("Green", "Red")
    params.update(
        channel="Red",
        metric="dF/F",
        neuropil=True,
        neuropil_coef=0.5,
        neuropil_inner=1,
        neuropil_outer=6,
        percentile=15.0,
        window_s=0.0,
    )
    assert dock._options("dff") == {
        "neuropil": 0.5,
        "neuropil_radii": (1, 6),
        "percentile": 15.0,
        "window_s": None,
    }
    dock.refresh()  # what the form's changes schedule
    settle(qtbot, dock)
    with nsi.open_dataset(layer_path(viewer)) as ds:
        want = nsi.traces(
            ds,
            rois.roi_set(),
            channel="Red",
            kind="dff",
            percentile=15.0,
            window_s=None,
            neuropil=0.5,
            neuropil_radii=(1, 6),
        )
    assert dock.result.channel == "Red" and dock.result.kind == "dff"
    np.testing.assert_allclose(dock.result.values, want.values, atol=1e-12, rtol=0)
    assert dock.trace_settings() == TraceSettings(
        kind="dff",
        channel="Red",
        percentile=15.0,
        window_s=None,
        neuropil=0.5,
        neuropil_radii=(1, 6),
    )
    dock.set_trace_settings(
        TraceSettings(
            kind="sum",
            channel="Green",
            percentile=30.0,
            window_s=2.5,
            neuropil=None,
            neuropil_radii=(3, 7),
            stacked=True,
        )
    )
    assert params.asdict() == {
        "rois": layer.name,
        "channel": "Green",
        "metric": "sum",
        "registered": True,
        "neuropil": False,
        "neuropil_coef": 0.5,
        "neuropil_inner": 3,
        "neuropil_outer": 7,
        "percentile": 30.0,
        "window_s": 2.5,
        "stacked": True,
    }
    assert not params.neuropil.enabled and not params.percentile.enabled  # sums take none
    settle(qtbot, dock)
    with nsi.open_dataset(layer_path(viewer)) as ds:
        want = nsi.traces(ds, rois.roi_set(), channel="Green", kind="sum")
    np.testing.assert_allclose(dock.result.values, want.values, atol=1e-9, rtol=0)
