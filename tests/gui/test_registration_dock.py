"""Registration dock in a real viewer: cancel, run, registered and summary layers, plots, files."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from napari_scanimage.analysis.registration import register
from napari_scanimage.gui.registration import RegistrationDock
from napari_scanimage.testing.tiff import SyntheticLayout, write_scanimage_tiff

pytestmark = pytest.mark.gui

LAYOUT = SyntheticLayout(
    channels=(1, 2),
    channel_names=("Green", "Red"),
    num_planes=2,
    num_flyback=1,
    num_volumes=16,
    height=64,
    width=64,
)


def texture(seed, size=96):
    rng = np.random.default_rng(seed)
    img = ndimage.gaussian_filter(rng.normal(size=(size, size)), 2.0)
    return 1000 + 3000 * (img - img.min()) / np.ptp(img)


SHIFTS = np.random.default_rng(4).integers(-4, 5, size=(LAYOUT.num_volumes, 2))
SHIFTS[0] = 0
BASE = [texture(z) for z in range(LAYOUT.num_planes)]


def content(g):
    """Page g: plane z's texture with volume t's content displaced by SHIFTS[t]."""
    t, rest = divmod(g, LAYOUT.pages_per_volume)
    frame, c = divmod(rest, LAYOUT.num_channels)
    z = min(frame, LAYOUT.num_planes - 1)
    dy, dx = SHIFTS[t]
    img = BASE[z][16 - dy : 80 - dy, 16 - dx : 80 - dx]  # content moved by (+dy, +dx)
    return (img * (1 + 0.3 * c)).astype(np.int16)


@pytest.fixture
def viewer_and_dock(make_napari_viewer, qtbot, tmp_path):
    written = write_scanimage_tiff(tmp_path / "moving.tif", LAYOUT, content=content)
    viewer = make_napari_viewer()
    viewer.open(str(written.paths[0]), plugin="napari-scanimage")
    dock = RegistrationDock(viewer)
    qtbot.addWidget(dock)
    return viewer, dock


def test_cancel_then_run_to_the_end(viewer_and_dock, qtbot, tmp_path):
    viewer, dock = viewer_and_dock
    names = [layer.name for layer in viewer.layers]
    seen = []
    dock.run()
    dock._worker.yielded.connect(lambda value: (seen.append(value), dock.cancel()))
    qtbot.waitUntil(lambda: not dock.busy, timeout=30000)  # cancelled at the first report
    stage, done, total = seen[0]
    assert stage == "registering" and done < total
    assert dock.result is None and [layer.name for layer in viewer.layers] == names
    dock.run()
    qtbot.waitUntil(lambda: not dock.busy, timeout=120000)
    result = dock.result
    assert result is not None and result.shifts.shape == (16, 2, 2)
    got = result.shifts - result.shifts[0]  # relative to volume 0 (the reference may be offset)
    np.testing.assert_allclose(got, np.broadcast_to(SHIFTS[:, None, :], got.shape), atol=0.15)
    assert np.all(result.correlation > 0.5)
    # registered layers next to the raw ones, showing aligned frames
    reg = viewer.layers["Green registered"]
    assert viewer.layers["Red registered"].scale.tolist() == viewer.layers["Red"].scale.tolist()
    frames = np.asarray(reg.data[:])  # (T, Z, Y, X)
    inner = frames[:, :, 8:-8, 8:-8]
    spread = np.abs(inner - inner.mean(axis=0)).max()
    raw_inner = np.asarray(viewer.layers["Green"].data[:])[:, :, 8:-8, 8:-8].astype(float)
    assert spread < 0.05 * np.abs(raw_inner - raw_inner.mean(axis=0)).max()
    # summary images before / after, and the plots
    qc_layers = [layer for layer in viewer.layers if "scanimage_qc" in layer.metadata]
    assert len(qc_layers) == 1  # one QC layer; the dock chooses the summary image it shows
    assert viewer.layers.selection.active is not qc_layers[0]
    dock.set_summary("local correlation (registered)")
    assert qc_layers[0].data.shape == (2, 64, 64) and qc_layers[0].visible
    dock.set_summary("std (raw)")
    before = np.asarray(qc_layers[0].data)[:, 8:-8, 8:-8]
    dock.set_summary("std (registered)")
    after = np.asarray(qc_layers[0].data)[:, 8:-8, 8:-8]
    assert np.median(after) < 0.1 * np.median(before)  # the frames no longer move
    assert dock.frame_flags is not None and not dock.frame_flags.any.any()
    assert dock.flags.text() == "QC: no frames flagged"
    assert len(dock.shift_plot.curves) == 4 and len(dock.corr_plot.curves) == 2
    np.testing.assert_array_equal(
        dock.shift_plot.curves["dx z1"].getData()[1], result.shifts[:, 1, 1]
    )
    viewer.dims.set_point(0, 5 * viewer.layers["Green"].scale[0])
    assert dock.shift_plot.time_cursor.value() == pytest.approx(dock.shift_plot.times[5])
    # views
    dock.set_view("side by side")  # the aligned channel, raw and registered, nothing else
    assert viewer.canvas.grid.enabled
    assert [x.name for x in viewer.layers if x.visible] == ["Green", "Green registered"]
    dock.set_view("raw")
    assert not viewer.canvas.grid.enabled and not reg.visible and viewer.layers["Green"].visible
    assert viewer.layers["Red"].visible and qc_layers[0].visible  # shown again
    # traces of the registered frames
    from napari_scanimage import traces
    from napari_scanimage.gui.traces import TracePlotDock

    plot = TracePlotDock(viewer)
    qtbot.addWidget(plot)
    rois = viewer.add_shapes(
        [np.array([[1, 20.5, 20.5], [1, 20.5, 30.5], [1, 30.5, 30.5], [1, 30.5, 20.5]])],
        shape_type="rectangle",
        ndim=3,
    )
    plot.select_layer(rois)
    qtbot.waitUntil(lambda: plot.result is not None and not plot.busy, timeout=30000)
    assert plot.registration() is result and plot.params.registered.value
    mask = np.zeros((2, 64, 64), bool)
    mask[1, 21:31, 21:31] = True
    ds = viewer.layers["Green"].metadata["scanimage_dataset"]
    want = traces(ds, {"roi 1": mask}, registration=result)
    np.testing.assert_allclose(plot.result.values, want.values, rtol=1e-12)
    assert not np.allclose(want.values, traces(ds, {"roi 1": mask}).values)
    # save / load
    path = dock.save(tmp_path / "shifts.npz")
    loaded = dock.load(path)
    np.testing.assert_array_equal(loaded.shifts, result.shifts)
    assert sum(layer.name == "Green registered" for layer in viewer.layers) == 1


def test_loading_shifts_of_another_recording_is_refused(viewer_and_dock, tmp_path):
    from napari_scanimage.analysis.registration import Registration
    from napari_scanimage.errors import SelectionError

    _, dock = viewer_and_dock
    other = Registration(np.zeros((5, 2, 2)), np.ones((5, 2)), np.zeros((2, 64, 64)))
    path = other.save(tmp_path / "other.npz")
    with pytest.raises(SelectionError, match="5 time points"):
        dock.load(path)
    assert dock.result is None


def test_parameters_set_through_the_form_are_those_of_register(viewer_and_dock, qtbot):
    """A script sets the form's values and presses Register: the result is the library's
    register() with the same arguments.
    """
    viewer, dock = viewer_and_dock
    params = dock.params
    assert set(params.asdict()) == {
        "channel",
        "plane",
        "reference_frames",
        "max_shift",
        "subpixel",
        "bidi",
        "piecewise",
        "block_size",
    }
    assert params.channel.choices == ("Green", "Red")
    assert params.plane.choices == (None, 0, 1)
    params.channel.value = "Red"
    params.plane.value = 1
    params.reference_frames.value = 6
    params.max_shift.value = 5.0
    params.subpixel.value = False
    params.bidi.value = True
    assert dock.register_kwargs() == {
        "channel": "Red",
        "planes": [1],
        "reference_frames": 6,
        "max_shift": 5.0,
        "subpixel": False,
        "bidi": True,
        "piecewise": False,
        "block_size": None,
    }
    dock.run()
    qtbot.waitUntil(lambda: not dock.busy, timeout=120000)
    ds = viewer.layers["Green"].metadata["scanimage_dataset"]
    want = register(
        ds, channel="Red", planes=[1], reference_frames=6, max_shift=5.0, subpixel=False, bidi=True
    )
    got = dock.result
    assert got is not None and got.channel == want.channel == "Red"
    np.testing.assert_array_equal(got.shifts, want.shifts)
    np.testing.assert_array_equal(got.correlation, want.correlation)
    assert got.settings == want.settings
    assert np.all(got.shifts[:, 0] == 0)  # plane 0 left out
    params.max_shift.value = 0  # "auto"
    assert params.max_shift.native.text() == "auto" and dock.register_kwargs()["max_shift"] is None
    assert params.block_size.native.text() == "auto blocks"


def test_qc_image_contrast_fits_the_chosen_summary(viewer_and_dock, qtbot):
    """The QC layer starts hidden; choosing a summary image shows it with contrast limits of
    that image (a hidden layer's contrast reset used to give 0–1: a white image).
    """
    viewer, dock = viewer_and_dock
    dock.params.reference_frames.value = 8
    dock.run()
    qtbot.waitUntil(lambda: not dock.busy, timeout=120000)
    qc_layer = next(layer for layer in viewer.layers if "scanimage_qc" in layer.metadata)
    assert not qc_layer.visible
    dock.set_summary("mean (registered)")
    data = np.asarray(qc_layer.data)
    lo, hi = qc_layer.contrast_limits
    assert qc_layer.visible
    assert lo == pytest.approx(float(data.min()), rel=0.05)
    assert hi == pytest.approx(float(data.max()), rel=0.05)


def test_piecewise_block_field_follows_the_time_slider(make_napari_viewer, qtbot, tmp_path):
    from napari_scanimage.testing.warps import warped_movie

    movie = warped_movie(12, (64, 64), seed=1, rigid_max=2, field_max=1.5, mean_photons=300)
    pages = np.clip(movie.frames, 0, 65535).astype(np.uint16)
    written = write_scanimage_tiff(
        tmp_path / "warped.tif",
        channels=(1,),
        num_volumes=12,
        height=64,
        width=64,
        dtype="uint16",
        content=lambda g: pages[g],
    )
    viewer = make_napari_viewer()
    viewer.open(str(written.paths[0]), plugin="napari-scanimage")
    dock = RegistrationDock(viewer)
    qtbot.addWidget(dock)
    dock.params.piecewise.value = True
    dock.params.block_size.value = 32
    assert dock.register_kwargs()["block_size"] == 32 and dock.register_kwargs()["piecewise"]
    dock.run()
    qtbot.waitUntil(lambda: not dock.busy, timeout=120000)
    result = dock.result
    assert result.piecewise and result.block_shifts.shape == (12, 1, 3, 3, 2)
    vectors = [layer for layer in viewer.layers if layer._type_string == "vectors"]
    assert len(vectors) == 1
    field = vectors[0]
    image = viewer.layers["Channel 1"]
    assert list(field.axis_labels) == list(image.axis_labels)
    assert field.scale.tolist() == image.scale.tolist()
    assert field.length == 10 and field.visible
    qc_layer = next(layer for layer in viewer.layers if "scanimage_qc" in layer.metadata)
    assert qc_layer.visible and qc_layer.metadata["scanimage_qc"] == ("mean", "registered")
    for t in (0, 5, 11):
        viewer.dims.set_point(0, t * image.scale[0])
        shown = field._view_data  # (napari's sliced vectors: those of the current time row)
        assert shown.shape == (9, 2, 2)
        np.testing.assert_allclose(shown[:, 0], result.block_centers.reshape(-1, 2))
        np.testing.assert_allclose(shown[:, 1], result.block_shifts[t, 0].reshape(-1, 2))
    assert dock.plots.tabText(dock.plots.count() - 1) == "block residuals"
    np.testing.assert_allclose(
        dock.field_plot.curves["residual"].getData()[1],
        np.sqrt(np.mean(np.sum(result.block_shifts[:, 0] ** 2, axis=-1), axis=(1, 2))),
    )
    # a rigid result afterwards: no field layer, no residual plot
    dock.params.piecewise.value = False
    dock.run()
    qtbot.waitUntil(lambda: not dock.busy, timeout=120000)
    assert not dock.result.piecewise
    assert not [layer for layer in viewer.layers if layer._type_string == "vectors"]
    assert dock.plots.indexOf(dock.field_plot) < 0


def _registered(dock, qtbot):
    dock.run()
    qtbot.waitUntil(lambda: not dock.busy, timeout=120000)
    qtbot.wait(50)  # the dock's deferred look for registered layers added by others
    return dock.result


def test_register_again_with_other_settings_replaces_the_result(make_napari_viewer, qtbot):
    """Rigid, then piecewise on a recording shown with a sample axis (t, z, sample, y, x):
    the new registration is computed and shown in the same registered layers (no duplicate),
    and its block field is drawn on the image's axes, following every slider.
    """
    viewer = make_napari_viewer(show=True)
    viewer.open_sample("napari-scanimage", "volume_2ch")
    image = viewer.layers["Green"]
    assert list(image.axis_labels) == ["t", "z", "sample", "y", "x"]
    dock = RegistrationDock(viewer)
    qtbot.addWidget(dock)
    dock.params.reference_frames.value = 10
    rigid = _registered(dock, qtbot)
    assert not rigid.piecewise
    before = {layer.name: layer for layer in viewer.layers}
    dock.params.piecewise.value = True
    dock.params.block_size.value = 32
    result = _registered(dock, qtbot)
    assert result is not rigid and result.piecewise
    assert result.block_shifts.shape[:2] == (40, 4)
    blocks = result.block_centers.size // 2
    names = [layer.name for layer in viewer.layers]
    assert names == [
        "Green",
        "Red",
        "Green registered",
        "Red registered",
        "Green QC",
        "Green block field ×10",
    ]
    for name in ("Green registered", "Red registered"):
        layer = viewer.layers[name]
        assert layer is before[name]  # replaced in place
        assert layer.metadata["scanimage_registration"] is result
        assert layer.data.shape == image.data.shape
    assert viewer.layers["Green QC"] is before["Green QC"]
    assert dock.plots.tabText(dock.plots.count() - 1) == "block residuals"
    assert dock.status.text().startswith("registered on Green")
    assert "drawn ×10" in dock.status.text()
    field = viewer.layers["Green block field ×10"]
    assert list(field.axis_labels) == list(image.axis_labels)
    assert field.scale.tolist() == image.scale.tolist()
    for t, z, s in ((0, 0, 0), (5, 2, 1), (39, 3, 0)):
        viewer.dims.current_step = (t, z, s, 0, 0)
        shown = field._view_data
        assert shown.shape == (blocks, 2, 2)
        np.testing.assert_allclose(shown[:, 0], result.block_centers.reshape(-1, 2))
        np.testing.assert_allclose(shown[:, 1], result.block_shifts[t, z].reshape(-1, 2))
    # and back to rigid: the field and its plot go, the registered layers stay
    dock.params.piecewise.value = False
    again = _registered(dock, qtbot)
    assert not again.piecewise
    assert [layer.name for layer in viewer.layers] == names[:-1]
    assert viewer.layers["Red registered"].metadata["scanimage_registration"] is again
    assert dock.plots.indexOf(dock.field_plot) < 0


def test_closing_the_recording_resets_the_dock(viewer_and_dock, qtbot):
    viewer, dock = viewer_and_dock
    dock.params.reference_frames.value = 8
    dock.params.piecewise.value = True
    dock.params.block_size.value = 32
    _registered(dock, qtbot)
    assert dock.status.text() and dock.shift_plot.curves
    dock.set_view("side by side")
    viewer.layers.clear()
    qtbot.wait(50)
    assert dock.result is None and dock.layers == [] and dock.qc_images == {}
    assert dock.status.text() == "" and dock.flags.text() == ""
    assert dock.shift_plot.curves == {} and dock.corr_plot.curves == {}
    assert dock.plots.indexOf(dock.field_plot) < 0
    assert not dock.view_box.isEnabled() and not dock.summary_box.isEnabled()
    assert not viewer.canvas.grid.enabled
    assert not dock.isEnabled()
