"""napari reader: npe2 discovery, layers in a real viewer, None for foreign files."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

from napari_scanimage.gui.reader import get_reader
from napari_scanimage.testing.tiff import SyntheticLayout, write_scanimage_tiff

LAYOUT = SyntheticLayout(
    channels=(1, 3),
    channel_names=("Green", "Red"),
    num_planes=3,
    frames_per_slice=2,
    num_flyback=1,
    num_volumes=4,
    frames_per_file=10,
    frame_rate=40.0,
    z_step_um=2.5,
    fov_um=96.0,
    height=24,
    width=32,
)


@pytest.fixture
def series(tmp_path):
    return write_scanimage_tiff(tmp_path / "rec.tif", LAYOUT)


def test_get_reader_declines_foreign_files(tmp_path):
    plain = tmp_path / "plain.tif"
    tifffile.imwrite(plain, np.zeros((4, 8, 8), np.uint16), photometric="minisblack")
    assert get_reader(str(plain)) is None
    assert get_reader(str(tmp_path / "notes.txt")) is None
    broken = tmp_path / "broken.tif"
    broken.write_bytes(b"II*\x00garbage")
    assert get_reader(str(broken)) is None


def test_npe2_read_without_viewer(series):
    import npe2

    layers = npe2.read([str(series.paths[1])], stack=False, plugin_name="napari-scanimage")
    assert [kw["name"] for _, kw, _ in layers] == ["Green", "Red"]
    data, kwargs, kind = layers[1]
    assert kind == "image"
    assert data.shape == (4, 3, 2, 24, 32)  # t, z, sample, y, x
    assert kwargs["axis_labels"] == ("t", "z", "sample", "y", "x")
    assert kwargs["units"] == ("s", "µm", "pixel", "µm", "µm")
    volume_period = (3 * 2 + 1) / 40.0
    np.testing.assert_allclose(kwargs["scale"], (volume_period, 2.5, 1.0, 4.0, 3.0), rtol=1e-4)
    assert kwargs["colormap"] == "red"
    np.testing.assert_array_equal(
        np.asarray(data[2, 1, 1]), series.page(series.page_index(2, 1, 1, 1))
    )


def test_unknown_pixel_size_is_labelled_pixels(shared_data):
    """ScanImage 3.8 stores no pixel size: y and x are pixels (scale 1), not µm."""
    import npe2

    from napari_scanimage import open_dataset

    path = shared_data / "si38_Blank-IPA_1s_16r_032.tif"
    layers = npe2.read([str(path)], stack=False, plugin_name="napari-scanimage")
    _, kwargs, _ = layers[0]
    assert kwargs["axis_labels"] == ("t", "y", "x")
    assert kwargs["units"] == ("s", "pixel", "pixel")
    with open_dataset(path) as ds:  # the layers and the core agree on every axis
        axes = ds.axes(channels=False)
        assert kwargs["scale"][1:] == tuple(a.scale for a in axes)[1:]  # t: made reachable
        np.testing.assert_allclose(kwargs["scale"], (1 / ds.info.volume_rate, 1.0, 1.0))


@pytest.mark.gui
def test_viewer_open_shows_layers(make_napari_viewer, qtbot, series):
    viewer = make_napari_viewer()
    layers = viewer.open(str(series.paths[0]), plugin="napari-scanimage")
    assert [layer.name for layer in layers] == ["Green", "Red"]
    green = viewer.layers["Green"]
    assert green.data.shape == (4, 3, 2, 24, 32)
    np.testing.assert_allclose(green.scale[-2:], (4.0, 3.0))
    assert tuple(viewer.dims.axis_labels) == ("t", "z", "sample", "y", "x")
    viewer.dims.set_current_step(0, 3)
    viewer.dims.set_current_step(1, 2)
    qtbot.wait(20)
    shown = np.asarray(green._slice.image.view)
    np.testing.assert_array_equal(shown, series.page(series.page_index(3, 2, 0, 0)))
    # metadata carries the source for later docks
    assert green.metadata["scanimage"]["files"] == [str(p) for p in series.paths]


@pytest.fixture
def siff_file(shared_data):
    path = shared_data / "independent" / "siff_raw.siff"
    if not path.is_file():
        pytest.skip(f"independent .siff file not found at {path}")
    return path


def test_npe2_reads_siff(siff_file):
    import npe2

    truth = np.load(str(siff_file).replace(".siff", "_truth.npz"))
    layers = npe2.read([str(siff_file)], stack=False, plugin_name="napari-scanimage")
    assert [kw["name"] for _, kw, _ in layers] == ["Channel 1", "Channel 2"]
    data, kwargs, _ = layers[0]
    assert data.shape == (6, 2, 20, 28) and data.dtype == np.uint16
    assert kwargs["axis_labels"] == ("t", "z", "y", "x")
    np.testing.assert_allclose(kwargs["scale"], (1 / 9.9957, 1.0, 10.0, 200 / 28), rtol=1e-4)
    np.testing.assert_array_equal(np.asarray(data), truth["intensity_channel0"])


def test_lifetime_layers_on_request(siff_file):
    from napari_scanimage import open_dataset
    from napari_scanimage.gui.reader import dataset_layers

    with open_dataset(siff_file) as ds:
        layers = dataset_layers(ds, lifetime=True, plane=1)
        assert [kw["name"] for _, kw, _ in layers] == [
            "Channel 1",
            "Channel 1 lifetime",
            "Channel 2",
            "Channel 2 lifetime",
        ]
        tau, kwargs, _ = layers[1]
        assert tau.shape == (6, 20, 28) and tau.dtype == np.float32
        assert kwargs["axis_labels"] == ("t", "y", "x")
        assert kwargs["metadata"]["scanimage"]["product"] == "lifetime"
        lo, hi = kwargs["contrast_limits"]
        assert 0 < lo < hi < 120 * 0.02
        counts = np.asarray(layers[0][0])
        assert (np.isnan(np.asarray(tau)) == (counts == 0)).all()


def test_lifetime_layers_refused_for_tiff(series):
    from napari_scanimage import open_dataset
    from napari_scanimage.errors import SelectionError
    from napari_scanimage.gui.reader import dataset_layers

    with open_dataset(series.paths[0]) as ds, pytest.raises(SelectionError, match="not a .siff"):
        dataset_layers(ds, lifetime=True)


@pytest.mark.gui
def test_viewer_opens_siff(make_napari_viewer, qtbot, siff_file):
    truth = np.load(str(siff_file).replace(".siff", "_truth.npz"))
    viewer = make_napari_viewer()
    layers = viewer.open(str(siff_file), plugin="napari-scanimage")
    assert [layer.name for layer in layers] == ["Channel 1", "Channel 2"]
    viewer.dims.set_current_step(0, 4)
    viewer.dims.set_current_step(1, 1)
    qtbot.wait(20)
    shown = np.asarray(viewer.layers["Channel 2"]._slice.image.view)
    np.testing.assert_array_equal(shown, truth["intensity_channel1"][4, 1])
