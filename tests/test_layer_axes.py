"""Coordinate maths behind a recording's layers following a change of selection."""

from __future__ import annotations

import numpy as np
import pytest

from napari_scanimage.layer_axes import (
    full_planes,
    plane_of,
    project_planes,
    reachable_step,
    reproject_vertices,
)

SQUARE = np.array([[20.0, 20.0], [20.0, 60.0], [60.0, 60.0], [60.0, 20.0]])


def on(lead, verts=SQUARE):
    return np.hstack([np.tile(lead, (len(verts), 1)), verts])


@pytest.mark.parametrize("rate", [30.0, 29.97, 6.66667, 15.2, 7.5, 1.3, 1000 / 7])
def test_reachable_step_spans_every_length_exactly(rate):
    for n in range(2, 5000):
        step = reachable_step(1 / rate, n)
        assert int(((n - 1) * step) / step) == n - 1, n
        assert abs(step * rate - 1) < 1e-9
    # the case napari got wrong: 1000 frames at 30 Hz
    assert int((999 * (1 / 30)) / (1 / 30)) == 998
    assert reachable_step(1 / 30, 1) == 1 / 30


def test_vertices_keep_their_plane_across_layouts():
    axis = on([2, 0])  # (z, sample, y, x): plane 2
    mean = reproject_vertices(
        axis, ["z", "sample", "y", "x"], ["z", "y", "x"], old_plane=None, new_plane=None
    )
    np.testing.assert_array_equal(mean, on([2]))
    assert plane_of(mean[0], ["z", "y", "x"], None) == 2
    # one plane shown: the ROI of that plane goes 2-D, others have no place
    flat = reproject_vertices(mean, ["z", "y", "x"], ["y", "x"], old_plane=None, new_plane=2)
    np.testing.assert_array_equal(flat, SQUARE)
    assert (
        reproject_vertices(mean, ["z", "y", "x"], ["y", "x"], old_plane=None, new_plane=1) is None
    )
    kept = reproject_vertices(
        mean, ["z", "y", "x"], ["y", "x"], old_plane=None, new_plane=1, all_planes=True
    )
    np.testing.assert_array_equal(kept, SQUARE)
    # back from plane 2 to all planes, with a sample axis: on plane 2, sample 0
    back = reproject_vertices(
        flat, ["y", "x"], ["z", "sample", "y", "x"], old_plane=2, new_plane=None
    )
    np.testing.assert_array_equal(back, axis)


def test_planes_projected_take_the_shown_plane_not_a_mean():
    planes = np.arange(3 * 4 * 5, dtype=np.float32).reshape(3, 4, 5)
    np.testing.assert_array_equal(project_planes(planes, ["y", "x"], 2), planes[2])
    assert project_planes(planes, ["z", "sample", "y", "x"], None).shape == (3, 1, 4, 5)
    assert project_planes(planes, ["sample", "y", "x"], 1).shape == (1, 4, 5)
    rgb = np.zeros((3, 4, 5, 3))
    assert project_planes(rgb, ["z", "y", "x"], None).shape == (3, 4, 5, 3)


def test_full_planes_restores_a_mask_shown_one_plane_at_a_time():
    mask = np.zeros((3, 4, 5), np.uint8)
    mask[0, 1, 1] = 1
    mask[2, 2, 2] = 2
    shown = project_planes(mask, ["y", "x"], 2)
    shown = shown.copy()
    shown[..., 0, 0] = 3  # painted while plane 2 was shown
    full = full_planes(shown, ["y", "x"], 2, 3, into=mask)
    assert full[0, 1, 1] == 1 and full[2, 2, 2] == 2 and full[2, 0, 0] == 3
    on_axes = project_planes(full, ["z", "sample", "y", "x"], None)
    np.testing.assert_array_equal(full_planes(on_axes, ["z", "sample", "y", "x"], None, 3), full)
