"""The napari-scanimage command: info output and exit codes."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tifffile

from napari_scanimage.cli import main
from napari_scanimage.io.synthetic import SyntheticLayout, write_scanimage_tiff


def test_info_json(tmp_path, capsys):
    truth = write_scanimage_tiff(tmp_path / "a.tif", SyntheticLayout(
        channels=(2, 3), num_planes=3, num_flyback=2, num_volumes=4, frame_rate=25.0))
    assert main(["info", str(truth.paths[0]), "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["channel_names"] == ["Channel 2", "Channel 3"]
    assert (record["num_volumes"], record["num_planes"], record["num_flyback"]) == (4, 3, 2)
    assert record["volume_rate"] == 5.0
    assert record["frame_shape"] == [32, 48]


def test_info_bad_file_exits_non_zero(tmp_path, capsys):
    plain = tmp_path / "plain.tif"
    tifffile.imwrite(plain, np.zeros((8, 8), np.uint8))
    assert main(["info", str(plain)]) == 2
    err = capsys.readouterr().err
    assert "not written by ScanImage" in err and err.count("\n") == 1


def test_info_siff(shared_data, capsys):
    path = shared_data / "independent" / "siff_raw.siff"
    if not path.is_file():
        pytest.skip(f"independent .siff file not found at {path}")
    assert main(["info", str(path), "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["is_flim"] is True
    assert record["siff"] == {"num_bins": 120, "bin_width_ps": 20.0, "laser_period_ps": 12500.0,
                              "photon_encoding": ["raw"]}
    assert (record["num_volumes"], record["num_planes"], record["num_flyback"]) == (6, 2, 1)
