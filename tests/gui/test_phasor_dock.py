"""Phasor dock in a real viewer: phasor histogram, cursors → Labels."""

from __future__ import annotations

import numpy as np
import pytest

from napari_scanimage.flim import (
    PhasorImage,
    Reference,
    cursor_labels,
    filter_phasor,
    mean_phasor,
    phasor_image,
)
from napari_scanimage.gui.phasor import PhasorDock
from napari_scanimage.testing.siff import write_siff
from napari_scanimage.testing.tiff import SyntheticLayout

pytestmark = pytest.mark.gui

LAYOUT = SyntheticLayout(
    channels=(1,), channel_names=("Green",), num_volumes=30, height=24, width=32
)


def test_cursor_labels_first_match_wins():
    g = np.array([[0.2, 0.5], [np.nan, 0.52]])
    s = np.array([[0.3, 0.4], [0.1, 0.41]])
    image = PhasorImage(mean=np.ones((2, 2)), g=g, s=s, frequency_mhz=80.0, harmonic=1)
    got = cursor_labels(image, [(0.5, 0.4, 0.05), (0.51, 0.4, 0.2), (0.2, 0.3, 0.01)])
    np.testing.assert_array_equal(got, [[3, 1], [0, 1]])


def test_cursors_make_labels_of_two_lifetimes(make_napari_viewer, qtbot, tmp_path):
    lifetime_map = np.zeros((24, 32), np.uint8)
    lifetime_map[:, 16:] = 1
    sim = write_siff(
        tmp_path / "two.siff",
        LAYOUT,
        photons_per_frame=20000,
        taus_ns=((0.6, 3.5),),
        fractions=((0.5, 0.5),),
        lifetime_map=lifetime_map,
        irf_offset_ns=0.5,
        irf_width_ns=0.1,
        seed=5,
    )
    viewer = make_napari_viewer()
    viewer.open(str(sim.path), plugin="napari-scanimage")
    dock = PhasorDock(viewer)
    qtbot.addWidget(dock)
    assert dock.isEnabled() and len(dock.params.channel.choices) == 1
    dock.run()
    qtbot.waitUntil(lambda: not dock.busy, timeout=60000)
    image = dock.image
    assert image is not None and np.asarray(image.g).shape[-2:] == (24, 32)
    g, s = np.asarray(image.g).reshape(24, 32), np.asarray(image.s).reshape(24, 32)
    left = (float(np.nanmean(g[:, :16])), float(np.nanmean(s[:, :16])))
    right = (float(np.nanmean(g[:, 16:])), float(np.nanmean(s[:, 16:])))
    assert left[0] > right[0]  # the short lifetime lies further right on the semicircle
    dock.add_cursor(*left, radius=0.1)
    dock.add_cursor(*right, radius=0.1)
    layer = dock.make_labels()
    labels = np.asarray(layer.data).reshape(24, 32)
    assert (labels[:, :16] == 1).mean() > 0.9 and (labels[:, 16:] == 2).mean() > 0.9


def test_parameters_set_through_the_form_are_those_of_the_library(
    make_napari_viewer, qtbot, tmp_path
):
    """A script sets the form's values and presses Compute: the phasors are the library's
    phasor_image() then filter_phasor() with the same arguments; a new threshold set through
    the form refilters them the same way.
    """
    sim = write_siff(
        tmp_path / "one.siff",
        LAYOUT,
        photons_per_frame=8000,
        taus_ns=((2.0,),),
        fractions=((1.0,),),
        irf_offset_ns=0.5,
        irf_width_ns=0.1,
        seed=9,
    )
    viewer = make_napari_viewer()
    viewer.open(str(sim.path), plugin="napari-scanimage")
    dock = PhasorDock(viewer)
    qtbot.addWidget(dock)
    params = dock.params
    assert set(params.asdict()) == {
        "channel",
        "harmonic",
        "calibration",
        "min_photons",
        "median_size",
        "median_repeat",
        "reference_channel",
        "reference_tau",
    }
    params.update(
        harmonic=2,
        calibration="reference lifetime",
        reference_channel="Green",
        reference_tau=2.5,
        min_photons=40,
        median_size=5,
        median_repeat=2,
    )
    assert dock.filter_kwargs() == {"min_photons": 40, "median_size": 5, "median_repeat": 2}
    dock.run()
    qtbot.waitUntil(lambda: not dock.busy, timeout=60000)
    ds = viewer.layers["Green"].metadata["scanimage_dataset"]
    raw = phasor_image(ds, 0, harmonic=2, calibration=Reference(ds.histogram(0), 2.5))
    want = filter_phasor(raw, min_photons=40, median_size=5, median_repeat=2)
    got = dock.image
    assert got.harmonic == want.harmonic == 2 and got.median == want.median == (5, 2)
    assert got.threshold == want.threshold == 40
    for name in ("mean", "g", "s"):
        np.testing.assert_array_equal(
            np.asarray(getattr(got, name)), np.asarray(getattr(want, name))
        )
    assert np.isfinite(np.asarray(got.g)).any()
    params.min_photons.value = 400  # refiltered at once, without recomputing
    assert not dock.busy
    want = filter_phasor(raw, min_photons=400, median_size=5, median_repeat=2)
    np.testing.assert_array_equal(np.asarray(dock.image.g), np.asarray(want.g))
    assert np.isnan(np.asarray(dock.image.g)).sum() > np.isnan(np.asarray(got.g)).sum()


def test_sample_phasors_are_calibrated_whole_and_counted(make_napari_viewer, qtbot):
    """The FLIM sample's green channel: calibrated by default (its pixels fall on/inside the
    semicircle near the sample's 0.9 / 2.6 ns), the plot shows every phasor with the
    semicircle, and the pixels left out are counted by reason.
    """
    from scipy import ndimage

    from napari_scanimage.sample import FLIM_TAUS_NS, SAMPLES, _FlimTissue, sample_path

    viewer = make_napari_viewer()
    viewer.open(str(sample_path("flim_2ch")), plugin="napari-scanimage")
    dock = PhasorDock(viewer)
    qtbot.addWidget(dock)
    dock.run()
    qtbot.waitUntil(lambda: not dock.busy, timeout=120000)
    image, census = dock.image, dock.census
    assert image.calibration == "fit" and "calibrated by the IRF" in dock.status.text()
    g, s = np.asarray(image.g), np.asarray(image.s)
    ok = np.isfinite(g)
    near = np.hypot(g[ok] - 0.5, s[ok]) <= 0.5 + 0.05
    assert near.mean() >= 0.95
    truth = _FlimTissue(SAMPLES["flim_2ch"]).lifetime_map
    cells = ndimage.binary_erosion(truth == 1, iterations=2)  # drift blurs the cell edges
    background = ndimage.binary_erosion(truth == 0, iterations=3)
    short, long = FLIM_TAUS_NS[0]
    assert mean_phasor(image, background)[2] == pytest.approx(short, abs=0.15)
    assert mean_phasor(image, cells)[2] == pytest.approx(long, abs=0.3)
    # every pixel accounted for; the plot covers every phasor and the whole semicircle
    assert census.pixels == 256 * 256
    assert (
        census.plotted
        + census.below_threshold
        + census.no_photons
        + census.undefined
        + census.outside_plot
    ) == census.pixels
    assert census.outside_plot == 0 and census.plotted == int(ok.sum())
    assert census.below_threshold == int(((image.mean > 0) & (image.mean < 10)).sum()) > 0
    assert f"{census.below_threshold} below the photon threshold" in dock.status.text()
    g0, g1, s0, s1 = dock.bounds
    assert g0 <= 0 and g1 >= 1 and s0 <= 0 and s1 >= 0.5
    assert g0 <= np.nanmin(g) and g1 >= np.nanmax(g) and s1 >= np.nanmax(s)
    rect = dock.density.mapRectToParent(dock.density.boundingRect())
    assert (rect.left(), rect.right()) == pytest.approx((g0, g1))
    assert (rect.top(), rect.bottom()) == pytest.approx((s0, s1))
    assert dock.plot.getViewBox().state["aspectLocked"] == 1.0
    xs, ys = dock.semicircle.getData()
    assert np.allclose(np.hypot(xs - 0.5, ys), 0.5)
    assert [item.toPlainText() for item in dock.tick_labels] == ["0.25", "0.5", "1", "2", "4", "8"]
    # a higher threshold removes more pixels at once, without recomputing
    dock.params.min_photons.value = 50
    assert dock.census.below_threshold == int(((image.mean > 0) & (image.mean < 50)).sum())
    assert dock.census.plotted < census.plotted


def test_reference_calibration_and_raw(make_napari_viewer, qtbot):
    """Calibrated by the red channel as a 1.6 ns reference, the red pixels' mean phasor is at
    1.6 ns; raw phasors lie mostly outside the semicircle (and the plot still shows them).
    """
    from napari_scanimage.sample import sample_path

    viewer = make_napari_viewer()
    viewer.open(str(sample_path("flim_2ch")), plugin="napari-scanimage")
    dock = PhasorDock(viewer)
    qtbot.addWidget(dock)
    dock.params.channel.value = dock.params.channel.choices[1]
    dock.params.calibration.value = "reference lifetime"
    reference = dock.params.reference_channel
    assert reference.native.isVisibleTo(dock) and len(reference.choices) == 2
    reference.value = reference.choices[1]
    dock.params.reference_tau.value = 1.6
    dock.run()
    qtbot.waitUntil(lambda: not dock.busy, timeout=120000)
    assert dock.image.calibration == "reference"
    assert mean_phasor(dock.raw)[2:] == pytest.approx((1.6, 1.6), abs=0.005)
    assert mean_phasor(dock.image)[2:] == pytest.approx((1.6, 1.6), abs=0.05)  # filtered
    dock.params.calibration.value = "none (raw)"
    assert not dock.params.reference_channel.native.isVisibleTo(dock)
    dock.run()
    qtbot.waitUntil(lambda: not dock.busy, timeout=120000)
    assert dock.image.calibration == "none" and "uncalibrated" in dock.status.text()
    assert dock.census.semicircle_fraction < 0.5 and dock.census.outside_plot == 0
    assert dock.bounds[3] >= np.nanmax(dock.image.s)
