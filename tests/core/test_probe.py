"""is_scanimage: the right answer for every kind of path, never an exception."""

from __future__ import annotations

import numpy as np
import tifffile

from napari_scanimage import is_scanimage
from napari_scanimage.testing.legacy import LegacyLayout, write_legacy_tiff
from napari_scanimage.testing.siff import write_siff
from napari_scanimage.testing.tiff import SyntheticLayout, write_scanimage_tiff


def test_scanimage_files_are_recognised(tmp_path):
    series = write_scanimage_tiff(
        tmp_path / "rec.tif", SyntheticLayout(num_volumes=6, frames_per_file=2)
    )
    assert len(series.paths) == 3
    assert all(is_scanimage(p) for p in series.paths)  # every member of a split series
    assert is_scanimage(str(series.paths[1]))
    siff = write_siff(
        tmp_path / "f.siff", SyntheticLayout(num_volumes=2, height=4, width=4), photons_per_frame=20
    )
    assert is_scanimage(siff.path)
    old = write_legacy_tiff(tmp_path / "si3.tif", LegacyLayout(generation="SI3"))
    assert is_scanimage(old.path)


def test_everything_else_is_not(tmp_path):
    plain = tmp_path / "plain.tif"
    tifffile.imwrite(plain, np.zeros((3, 8, 8), np.uint16), photometric="minisblack")
    text = tmp_path / "notes.txt"
    text.write_text("SI.hRoiManager.scanFrameRate = 30\n")
    empty = tmp_path / "empty.tif"
    empty.write_bytes(b"")
    broken = tmp_path / "broken.tif"
    broken.write_bytes(b"II*\x00garbage")
    for path in (plain, text, empty, broken, tmp_path / "missing.tif", tmp_path):
        assert is_scanimage(path) is False, path
    assert is_scanimage("") is False
