"""Smoke test: a real napari viewer renders with OpenGL on the (Xvfb) X server.

pytest-xvfb starts Xvfb for the session and sets DISPLAY; Mesa renders OpenGL in
software. If this test fails, no GUI test result can be trusted.
"""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.gui


def test_viewer_renders_square_on_xvfb(make_napari_viewer, qtbot):
    data = np.zeros((100, 100), dtype=np.float32)
    data[30:70, 30:70] = 1.0  # bright 40 x 40 square in the middle of a dark image

    # strict_qt="raise": fail on leaked top-level widgets instead of only warning.
    viewer = make_napari_viewer(show=True, strict_qt="raise")
    layer = viewer.add_image(data, colormap="gray", contrast_limits=(0.0, 1.0))
    viewer.reset_view()
    qtbot.wait(50)  # let the canvas process the resize / draw events

    shot = viewer.screenshot(canvas_only=True, flash=False)

    assert shot.ndim == 3 and shot.shape[2] == 4 and shot.dtype == np.uint8, shot.shape
    rgb = shot[..., :3].astype(np.int16)
    gray = rgb.mean(axis=2)
    assert gray.max() > 200, f"blank screenshot (max {gray.max()}): OpenGL did not draw"

    # The bright pixels form one filled, centred square ...
    rows, cols = np.nonzero(gray > 200)
    r0, r1, c0, c1 = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
    height, width = r1 - r0, c1 - c0
    assert abs(height - width) <= max(2, 0.03 * width), (height, width)
    assert (gray[r0:r1, c0:c1] > 200).mean() > 0.98
    centre = np.array(gray.shape) / 2
    assert np.allclose([(r0 + r1) / 2, (c0 + c1) / 2], centre, atol=3), (r0, r1, c0, c1)
    # ... 40 % of the image, which napari fits into the canvas (so: not a tiny blob).
    assert width > 0.2 * min(gray.shape), (width, gray.shape)

    # ... on a dark rest of the canvas (image background and canvas border).
    outside = np.ones(gray.shape, dtype=bool)
    outside[max(r0 - 2, 0) : r1 + 2, max(c0 - 2, 0) : c1 + 2] = False
    assert gray[outside].max() < 50, gray[outside].max()
    # Grey levels, not just a white blob: the square is white (255), the rest black.
    assert gray[r0:r1, c0:c1].mean() > 250 and np.median(gray[outside]) < 10

    assert layer in viewer.layers
