"""The README's Python examples run as written, on sample recordings named as in the README."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np

from napari_scanimage import RoiSet, sample

README = Path(__file__).resolve().parents[1] / "README.md"


def python_blocks() -> list[str]:
    """The ```python blocks of the README, in order."""
    return re.findall(
        r"^```python\n(.*?)^```", README.read_text(encoding="utf-8"), flags=re.M | re.S
    )


def test_readme_has_examples():
    blocks = python_blocks()
    assert len(blocks) >= 3
    assert any("open_dataset" in b for b in blocks) and any("to_xarray" in b for b in blocks)


def test_readme_examples_run(tmp_path, monkeypatch):
    # the README's file names: a volumetric 2-channel recording (Green, Red; 4 planes), its
    # ROIs, and a FLIM recording
    shutil.copy(sample.sample_path("volume_2ch"), tmp_path / "session_00001_00001.tif")
    shutil.copy(sample.sample_path("flim_2ch"), tmp_path / "flim_00001.siff")
    import napari_scanimage as nsi

    with nsi.open_dataset(tmp_path / "session_00001_00001.tif") as ds:
        shape = ds.info.frame_shape
        cell = np.zeros(shape, bool)
        cell[20:30, 20:30] = True
    RoiSet.from_masks({"cell 1": cell, "cell 2": np.roll(cell, 15, axis=1)}).save(
        tmp_path / "rois.json"
    )
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    opened = []
    try:
        for k, block in enumerate(python_blocks()):
            exec(compile(block, f"README.md python block {k + 1}", "exec"), namespace)
            if "ds" in namespace and all(namespace["ds"] is not d for d in opened):
                opened.append(namespace["ds"])
    finally:
        for ds in opened:
            ds.close()
    # what the examples computed is what they say
    assert namespace["ds"].is_siff
    assert namespace["everything"].shape[1] == 2  # (T, C, Z, Y, X): two channels
    assert list(namespace["xa"].dims) == ["T", "C", "Z", "Y", "X"]
    assert namespace["tr"].values.shape[0] == 2  # two ROIs
    assert (tmp_path / "traces.csv").stat().st_size > 0
    assert namespace["reg"].shifts.shape[-1] == 2
