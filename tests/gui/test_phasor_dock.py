"""Phasor dock in a real viewer: phasor histogram, cursors → Labels."""

from __future__ import annotations

import numpy as np
import pytest

from napari_scanimage.flim.phasor import PhasorImage, cursor_labels
from napari_scanimage.gui.phasor import PhasorDock
from napari_scanimage.testing.siff import write_siff
from napari_scanimage.testing.tiff import SyntheticLayout

pytestmark = pytest.mark.gui

LAYOUT = SyntheticLayout(channels=(1,), channel_names=("Green",), num_volumes=30, height=24,
                         width=32)


def test_cursor_labels_first_match_wins():
    g = np.array([[0.2, 0.5], [np.nan, 0.52]])
    s = np.array([[0.3, 0.4], [0.1, 0.41]])
    image = PhasorImage(mean=np.ones((2, 2)), g=g, s=s, frequency_mhz=80.0, harmonic=1)
    got = cursor_labels(image, [(0.5, 0.4, 0.05), (0.51, 0.4, 0.2), (0.2, 0.3, 0.01)])
    np.testing.assert_array_equal(got, [[3, 1], [0, 1]])


def test_cursors_make_labels_of_two_lifetimes(make_napari_viewer, qtbot, tmp_path):
    lifetime_map = np.zeros((24, 32), np.uint8)
    lifetime_map[:, 16:] = 1
    sim = write_siff(tmp_path / "two.siff", LAYOUT, photons_per_frame=20000,
                     taus_ns=((0.6, 3.5),), fractions=((0.5, 0.5),), lifetime_map=lifetime_map,
                     irf_offset_ns=0.5, irf_width_ns=0.1, seed=5)
    viewer = make_napari_viewer()
    viewer.open(str(sim.path), plugin="napari-scanimage")
    dock = PhasorDock(viewer)
    qtbot.addWidget(dock)
    assert dock.isEnabled() and dock.channel_box.count() == 1
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
