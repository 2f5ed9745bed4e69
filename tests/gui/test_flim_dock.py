"""FLIM dock in a real viewer: decay of ROIs, fit, table, residuals, save / load."""

from __future__ import annotations

import numpy as np
import pytest

from napari_scanimage.flim import DecayFit, fit_dataset_decay
from napari_scanimage.gui.flim import FlimDock
from napari_scanimage.testing.siff import write_siff
from napari_scanimage.testing.tiff import SyntheticLayout, write_scanimage_tiff

pytestmark = pytest.mark.gui

PLANAR = SyntheticLayout(
    channels=(1, 2), channel_names=("Green", "Red"), num_volumes=40, height=32, width=32
)


@pytest.fixture
def flim_viewer(make_napari_viewer, tmp_path):
    sim = write_siff(
        tmp_path / "one.siff",
        PLANAR,
        photons_per_frame=3000,
        taus_ns=((2.0,), (1.0,)),
        fractions=((1.0,), (1.0,)),
        irf_offset_ns=0.8,
        irf_width_ns=0.1,
        seed=3,
    )
    viewer = make_napari_viewer()
    viewer.open(str(sim.path), plugin="napari-scanimage")
    return viewer


def test_fit_of_an_roi_and_files(flim_viewer, qtbot, tmp_path):
    viewer = flim_viewer
    dock = FlimDock(viewer)
    qtbot.addWidget(dock)
    assert dock.isEnabled() and len(dock.params.channel.choices) == 2
    viewer.add_shapes(
        [np.array([[4.5, 4.5], [4.5, 20.5], [20.5, 20.5], [20.5, 4.5]])],
        shape_type="rectangle",
        name="cells",
    )
    dock._refresh()
    dock.params.rois.value = "cells"
    dock.params.which.value = "all ROIs"
    dock.params.n_exp.value = 1
    dock.run()
    qtbot.waitUntil(lambda: not dock.busy, timeout=60000)
    fit = dock.fit
    assert fit is not None and fit.n_exp == 1
    assert fit.taus_ns[0] == pytest.approx(2.0, rel=0.05)
    assert fit.irf_offset_ns == pytest.approx(0.8, abs=0.05)
    # the plotted data are the ROI's histogram
    ds = viewer.layers["Green"].metadata["scanimage_dataset"]
    mask = np.zeros((32, 32), bool)
    mask[5:21, 5:21] = True
    want = ds.histogram(0, mask=mask)
    np.testing.assert_array_equal(dock.hist, want)
    lo, hi = fit.fit_range
    y = dock.data_curve.yData  # the data (getData gives the log-mapped display values)
    assert np.all(y > 0) and y.sum() == want[lo:hi].sum()
    assert dock.table.rowCount() >= 5 and dock.table.item(0, 0).text() == "taus_ns"
    assert float(dock.table.item(0, 1).text()) == pytest.approx(fit.taus_ns[0], rel=1e-3)
    res = dock.residual_curve.getData()[1]
    assert abs(np.nanmean(res)) < 0.5 and 0.5 < np.nanstd(res) < 2.0  # Poisson-sized
    # the intensity-modulated lifetime image (IRF offset from the fit)
    dock.lifetime_layer()
    qtbot.waitUntil(lambda: not dock.busy, timeout=60000)
    rgb = viewer.layers["Green lifetime (intensity-modulated)"]
    assert rgb.rgb and rgb.data.shape == (32, 32, 3)
    assert rgb.scale.tolist() == viewer.layers["Green"].scale[-2:].tolist()
    counts = ds.read(0).sum(axis=0)
    np.testing.assert_array_equal(rgb.data.max(axis=-1) == 0, counts == 0)  # no photon: black
    path = dock.save(tmp_path / "fit.json")
    dock.table.setRowCount(0)
    loaded = dock.load(path)
    assert isinstance(loaded, DecayFit) and loaded.taus_ns == fit.taus_ns
    assert dock.table.rowCount() >= 5


def test_disabled_for_tiff(make_napari_viewer, qtbot, tmp_path):
    written = write_scanimage_tiff(tmp_path / "plain.tif", PLANAR)
    viewer = make_napari_viewer()
    viewer.open(str(written.paths[0]), plugin="napari-scanimage")
    dock = FlimDock(viewer)
    qtbot.addWidget(dock)
    assert not dock.isEnabled() and ".siff" in dock.status.text()


def test_trace_plot_lifetime_and_phasor_with_bands(flim_viewer, qtbot):
    from napari_scanimage import traces
    from napari_scanimage.gui.traces import TracePlotDock

    viewer = flim_viewer
    plot = TracePlotDock(viewer)
    qtbot.addWidget(plot)
    metrics = list(plot.params.metric.choices)
    assert "lifetime (ns)" in metrics and "phasor g" in metrics
    layer = viewer.add_shapes(
        [
            np.array([[2.5, 2.5], [2.5, 12.5], [12.5, 12.5], [12.5, 2.5]]),
            np.array([[16.5, 16.5], [16.5, 28.5], [28.5, 28.5], [28.5, 16.5]]),
        ],
        shape_type="rectangle",
    )
    plot.select_layer(layer)
    plot.params.metric.value = "lifetime (ns)"
    qtbot.wait(plot._timer.interval() + 50)
    qtbot.waitUntil(lambda: not plot.busy and not plot._timer.isActive(), timeout=30000)
    ds = viewer.layers["Green"].metadata["scanimage_dataset"]
    masks = {"roi 1": np.zeros((32, 32), bool), "roi 2": np.zeros((32, 32), bool)}
    masks["roi 1"][3:13, 3:13] = True
    masks["roi 2"][17:29, 17:29] = True
    want = traces(ds, masks, kind="lifetime")
    np.testing.assert_allclose(plot.result.values, want.values, rtol=1e-12)
    np.testing.assert_allclose(plot.curves["roi 2"].yData, want.values[1], rtol=1e-12)
    assert len(plot.bands) == 2  # a confidence band per ROI
    # after a fit in the FLIM dock, lifetimes are mean arrival minus its IRF offset
    flim = FlimDock(viewer)
    qtbot.addWidget(flim)
    flim.params.n_exp.value = 1
    flim.run()
    qtbot.waitUntil(lambda: not flim.busy, timeout=60000)
    assert plot.irf_offset_ns() == flim.fit.irf_offset_ns
    plot.refresh()
    qtbot.waitUntil(lambda: not plot.busy, timeout=30000)
    np.testing.assert_allclose(plot.result.values, want.values - flim.fit.irf_offset_ns, rtol=1e-12)
    plot.params.metric.value = "phasor s"
    qtbot.wait(plot._timer.interval() + 50)
    qtbot.waitUntil(lambda: not plot.busy and not plot._timer.isActive(), timeout=30000)
    phasor = traces(ds, masks, kind="phasor")
    np.testing.assert_allclose(plot.curves["roi 1"].yData, phasor.values[0, :, 1], rtol=1e-12)
    assert "photons" in plot.copy_to_clipboard().splitlines()[0]


def test_two_component_fit_and_fraction_image(make_napari_viewer, qtbot, tmp_path):
    lifetime_map = np.zeros((32, 32), np.uint8)
    lifetime_map[:, 16:] = 1  # left: 0.6 ns, right: 3.5 ns
    sim = write_siff(
        tmp_path / "two.siff",
        PLANAR,
        photons_per_frame=20000,
        taus_ns=((0.6, 3.5), (1.0,)),
        fractions=((0.5, 0.5), (1.0,)),
        lifetime_map=lifetime_map,
        irf_offset_ns=0.5,
        irf_width_ns=0.1,
        seed=8,
    )
    viewer = make_napari_viewer()
    viewer.open(str(sim.path), plugin="napari-scanimage")
    dock = FlimDock(viewer)
    qtbot.addWidget(dock)
    assert not dock.fraction_button.isEnabled()
    dock.params.n_exp.value = 2
    dock.run()
    qtbot.waitUntil(lambda: not dock.busy, timeout=60000)
    assert dock.fit.taus_ns == pytest.approx((0.6, 3.5), rel=0.05)
    assert dock.fraction_button.isEnabled()
    dock.fraction_layer()
    qtbot.waitUntil(lambda: not dock.busy, timeout=60000)
    layer = [lay for lay in viewer.layers if "fraction" in lay.name][0]
    frac = np.asarray(layer.data).reshape(32, 32)
    assert np.nanmean(frac[:, :16]) > 0.9 and np.nanmean(frac[:, 16:]) < 0.1


def test_collapsed_three_component_fit_warns_and_chi2_is_shown(make_napari_viewer, qtbot):
    """The FLIM sample's green decay has two lifetimes: a 3-component fit collapses (two equal
    lifetimes, undetermined fractions) and the dock says so; the 2-component fit does not.
    """
    from napari_scanimage.sample import sample_path

    viewer = make_napari_viewer()
    viewer.open(str(sample_path("flim_2ch")), plugin="napari-scanimage")
    dock = FlimDock(viewer)
    qtbot.addWidget(dock)
    dock.params.n_exp.value = 3
    dock.run()
    qtbot.waitUntil(lambda: not dock.busy, timeout=120000)
    fit = dock.fit
    assert fit.n_exp == 3 and fit.degenerate
    assert dock.warning.isVisibleTo(dock) and "unreliable fit" in dock.warning.text()
    assert fit.warnings()[0] in dock.warning.text()
    assert f"reduced χ² {fit.reduced_chi2:.3g}" in dock.summary.text()
    rows = {
        dock.table.item(r, 0).text(): dock.table.item(r, 1).text()
        for r in range(dock.table.rowCount())
    }
    assert float(rows["reduced chi2"]) == pytest.approx(fit.reduced_chi2, rel=1e-3)
    dock.params.n_exp.value = 2
    dock.run()
    qtbot.waitUntil(lambda: not dock.busy, timeout=120000)
    assert dock.fit.warnings() == [] and not dock.warning.isVisibleTo(dock)
    assert 0.8 < dock.fit.reduced_chi2 < 1.2


def test_fit_parameters_set_through_the_form_are_those_of_fit_dataset_decay(flim_viewer, qtbot):
    """A script sets the form's values and presses Fit: the fit is the library's
    fit_dataset_decay() with the same arguments and the chosen ROIs' mask.
    """
    viewer = flim_viewer
    dock = FlimDock(viewer)
    qtbot.addWidget(dock)
    viewer.add_shapes(
        [np.array([[2.5, 2.5], [2.5, 24.5], [24.5, 24.5], [24.5, 2.5]])],
        shape_type="rectangle",
        name="cells",
    )
    params = dock.params
    assert set(params.asdict()) == {"rois", "which", "channel", "n_exp", "background"}
    assert params.rois.choices == ("(whole frame)", "cells")
    assert params.channel.choices == ("Green", "Red")
    params.update(rois="cells", which="all ROIs", channel="Red", n_exp=1, background=False)
    assert dock.fit_kwargs() == {"channel": 1, "n_exp": 1, "background": False}
    dock.run()
    qtbot.waitUntil(lambda: not dock.busy, timeout=60000)
    ds = viewer.layers["Green"].metadata["scanimage_dataset"]
    mask = np.zeros((1, 32, 32), bool)
    mask[:, 3:25, 3:25] = True
    want = fit_dataset_decay(ds, "Red", mask=mask, n_exp=1, background=False)
    assert dock.fit == want
    assert want.n_exp == 1 and want.background == 0.0
    assert want.taus_ns[0] == pytest.approx(1.0, rel=0.05)  # the red channel's lifetime
    np.testing.assert_array_equal(dock.hist, ds.histogram("Red", mask=mask))


def test_selected_rois_without_a_selection_use_all(flim_viewer, qtbot):
    viewer = flim_viewer
    dock = FlimDock(viewer)
    qtbot.addWidget(dock)
    assert (
        "none selected" in dock.params.which.tooltip
        or "with none selected" in dock.params.which.tooltip
    )
    layer = viewer.add_shapes(
        [
            np.array([[2.5, 2.5], [2.5, 10.5], [10.5, 10.5], [10.5, 2.5]]),
            np.array([[16.5, 16.5], [16.5, 28.5], [28.5, 28.5], [28.5, 16.5]]),
        ],
        shape_type="rectangle",
        name="cells",
    )
    layer.selected_data = set()
    dock._refresh()
    dock.params.rois.value = "cells"
    dock.params.which.value = "selected ROIs"
    dock.params.n_exp.value = 1
    dock.run()
    qtbot.waitUntil(lambda: not dock.busy, timeout=60000)
    assert "all 2 ROI(s) of cells (none selected, so all are used)" in dock.summary.text()
    ds = viewer.layers["Green"].metadata["scanimage_dataset"]
    mask = np.zeros((32, 32), bool)
    mask[3:11, 3:11] = mask[17:29, 17:29] = True
    np.testing.assert_array_equal(dock.hist, ds.histogram(0, mask=mask))
    layer.selected_data = {1}
    dock.run()
    qtbot.waitUntil(lambda: not dock.busy, timeout=60000)
    assert "1 selected ROI(s) of cells" in dock.summary.text()
    np.testing.assert_array_equal(dock.hist, ds.histogram(0, mask=mask & (np.arange(32) > 12)))


def test_lifetime_colour_bar_and_fraction_description(make_napari_viewer, qtbot, tmp_path):
    lifetime_map = np.zeros((32, 32), np.uint8)
    lifetime_map[:, 16:] = 1  # left: 0.6 ns, right: 3.5 ns
    sim = write_siff(
        tmp_path / "two.siff",
        PLANAR,
        photons_per_frame=20000,
        taus_ns=((0.6, 3.5), (1.0,)),
        fractions=((0.5, 0.5), (1.0,)),
        lifetime_map=lifetime_map,
        irf_offset_ns=0.5,
        irf_width_ns=0.1,
        seed=8,
    )
    viewer = make_napari_viewer()
    viewer.open(str(sim.path), plugin="napari-scanimage")
    dock = FlimDock(viewer)
    qtbot.addWidget(dock)
    assert not dock.colorbar.isVisibleTo(dock)
    dock.params.n_exp.value = 2
    dock.run()
    qtbot.waitUntil(lambda: not dock.busy, timeout=60000)
    dock.lifetime_layer()
    qtbot.waitUntil(lambda: not dock.busy, timeout=60000)
    assert dock.colorbar.isVisibleTo(dock)
    lo, hi = dock.colorbar_range
    assert 0.3 < lo < 1.0 and 2.5 < hi < 4.0  # ns, around the two lifetimes
    assert f"{lo:.2f}–{hi:.2f} ns" in dock.status.text()
    rect = dock.colorbar_image.mapRectToParent(dock.colorbar_image.boundingRect())
    assert (rect.left(), rect.right()) == pytest.approx((lo, hi))
    assert "lifetime (ns)" in dock.colorbar.getAxis("bottom").labelText
    dock.fraction_layer()
    qtbot.waitUntil(lambda: not dock.busy, timeout=60000)
    layer = [lay for lay in viewer.layers if "fraction" in lay.name][0]
    assert layer.colorbar.visible and tuple(layer.contrast_limits) == (0, 1)
    text = dock.status.text()
    tau1, tau2 = dock.fit.taus_ns
    assert f"photon fraction of the short component τ1 = {tau1:.2f} ns" in text
    assert f"τ2 = {tau2:.2f} ns" in text and "0–1 (black: all τ2, bright: all τ1" in text
    frac = np.asarray(layer.data).reshape(32, 32)
    assert f"median {np.nanmedian(frac):.2f}" in text
