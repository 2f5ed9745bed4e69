"""`napari-scanimage demo --screenshot` renders the whole window with the sample data."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.gui
ROOT = Path(__file__).resolve().parents[2]


def test_demo_without_a_display_says_how_to_get_one(tmp_path):
    """Qt aborts the process without a display: the demo checks first and says what to do."""
    env = dict(os.environ, NAPARI_SCANIMAGE_CACHE=str(tmp_path / "cache"))
    env.pop("DISPLAY", None)
    env.pop("WAYLAND_DISPLAY", None)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "napari_scanimage.cli",
            "demo",
            "--screenshot",
            str(tmp_path / "demo.png"),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert "no display" in proc.stderr and "scripts/demo.sh --screenshot" in proc.stderr
    assert not (tmp_path / "demo.png").exists()


@pytest.mark.skipif(shutil.which("xvfb-run") is None, reason="needs xvfb-run (Debian: xvfb)")
def test_demo_screenshot(tmp_path):
    """As scripts/demo.sh runs it on a machine without a display: under xvfb-run."""
    out = tmp_path / "demo.png"
    env = dict(os.environ, NAPARI_SCANIMAGE_CACHE=str(tmp_path / "cache"))
    env.pop("DISPLAY", None)
    proc = subprocess.run(
        [
            "xvfb-run",
            "-a",
            "-s",
            "-screen 0 1600x1000x24",
            sys.executable,
            "-m",
            "napari_scanimage.cli",
            "demo",
            "--screenshot",
            str(out),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    from imageio.v3 import imread

    image = imread(out)[..., :3].astype(float)
    assert image.shape[0] >= 800 and image.shape[1] >= 1200
    # the canvas (right of the dock area) shows tissue: bright, varied pixels, both colours
    canvas = image[100:800, 700:1100]
    assert canvas.std() > 20
    assert canvas[..., 1].max() > 150 and canvas[..., 0].max() > 150  # green and red layers
    # the layer list names both channels: the window is not blank around the canvas either
    assert image[:, :300].std() > 10


def test_documentation_screenshots(tmp_path):
    """The docs' screenshot script renders real windows: the FLIM view shows lifetime colours
    and the docks.
    """
    env = dict(os.environ, NAPARI_SCANIMAGE_CACHE=str(tmp_path / "cache"))
    proc = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "screenshots.py"), str(tmp_path), "flim.png"],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    from imageio.v3 import imread

    image = imread(tmp_path / "flim.png")[..., :3].astype(float)
    canvas = image[100:800, 400:1050]
    coloured = (canvas.max(axis=2) - canvas.min(axis=2)) > 60  # turbo: saturated hues
    assert coloured.mean() > 0.01
    assert image[:, 1150:].std() > 10  # the dock column is drawn
