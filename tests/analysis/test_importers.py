"""ROIs from suite2p, CaImAn and cellpose, written here the way each tool stores them, and
crafted pickles that must never run.
"""

from __future__ import annotations

import datetime
import os
import pickle

import numpy as np
import pytest
from scipy import sparse

from napari_scanimage.analysis.rois import RoiSet
from napari_scanimage.errors import FormatError, SelectionError

Y, X = 40, 50


def blob_masks():
    """Three masks of known pixels on a 40×50 frame."""
    yy, xx = np.mgrid[:Y, :X]
    return [
        (yy - 10) ** 2 + (xx - 12) ** 2 <= 16,
        (yy - 25) ** 2 + (xx - 30) ** 2 <= 25,
        (np.abs(yy - 30) <= 2) & (np.abs(xx - 8) <= 3),
    ]


def write_suite2p(folder, masks, iscell, *, nplanes=1):
    """A suite2p plane folder as suite2p writes it: np.save of an object array of dicts
    (stat), of a dict (ops, with a time-zone-aware date_proc) and of a float array (iscell).
    """
    folder.mkdir(parents=True, exist_ok=True)
    stat = []
    for m in masks:
        ypix, xpix = np.nonzero(m)
        stat.append(
            {
                "ypix": ypix.astype(np.int32),
                "xpix": xpix.astype(np.int32),
                "lam": np.linspace(1, 0.1, len(ypix)).astype(np.float32),
                "med": [float(np.median(ypix)), float(np.median(xpix))],
                "npix": np.int64(len(ypix)),
                "compact": np.float64(1.05),
                "overlap": np.zeros(len(ypix), bool),
            }
        )
    np.save(folder / "stat.npy", np.array(stat, dtype=object), allow_pickle=True)
    tz = datetime.timezone(datetime.timedelta(hours=2))
    ops = {
        "Ly": Y,
        "Lx": X,
        "nplanes": nplanes,
        "fs": 30.0,
        "tau": 1.0,
        "date_proc": datetime.datetime(2026, 3, 1, 12, 0, tzinfo=tz),
        "meanImg": np.ones((Y, X), np.float32),
        "filelist": ["rec.tif"],
        "save_path0": None,
        "do_registration": True,
    }
    np.save(folder / "ops.npy", ops, allow_pickle=True)
    np.save(folder / "iscell.npy", np.asarray(iscell, np.float64))


def test_suite2p_cells_only_and_with_rejected(tmp_path):
    masks = blob_masks()
    folder = tmp_path / "suite2p" / "plane0"
    write_suite2p(folder, masks, [[1, 0.9], [0, 0.2], [1, 0.7]])
    rois = RoiSet.from_suite2p(folder)
    assert rois.names == ["suite2p 0", "suite2p 2"]
    assert rois.frame_shape == (Y, X)
    dense = rois.masks((Y, X), 1).toarray().reshape(2, Y, X)
    np.testing.assert_array_equal(dense[0], masks[0])
    np.testing.assert_array_equal(dense[1], masks[2])
    np.testing.assert_allclose(rois.features["score"], [0.9, 0.7])
    np.testing.assert_array_equal(rois.features["area"], [masks[0].sum(), masks[2].sum()])
    np.testing.assert_allclose(rois.features["compactness"], [1.05, 1.05])
    everything = RoiSet.from_suite2p(folder, include_rejected=True)
    assert everything.names == ["suite2p 0", "suite2p 1 (rejected)", "suite2p 2"]
    np.testing.assert_array_equal(everything.mask(1, (Y, X))[0], masks[1])
    assert len(set(everything.colours)) == 3


def test_suite2p_plane_of_a_multiplane_run(tmp_path):
    folder = tmp_path / "suite2p" / "plane2"
    write_suite2p(folder, blob_masks()[:1], [[1, 1.0]], nplanes=3)
    rois = RoiSet.from_suite2p(folder, frame_shape=(Y, X), num_planes=3)
    assert rois.planes == [2]
    m = rois.mask(0, (Y, X), 3)
    assert m[2].sum() == blob_masks()[0].sum() and not m[:2].any()


def test_import_of_another_frame_shape_is_refused_like_json(tmp_path):
    folder = tmp_path / "plane0"
    write_suite2p(folder, blob_masks(), [[1, 1]] * 3)
    with pytest.raises(SelectionError) as got:
        RoiSet.from_suite2p(folder, frame_shape=(64, 64))
    path = tmp_path / "r.json"
    RoiSet.from_suite2p(folder).save(path)
    with pytest.raises(SelectionError) as json_error:
        RoiSet.load(path, frame_shape=(64, 64))
    assert str(got.value).replace("plane0", "r.json") == str(json_error.value)
    assert "40×50 frames; this recording has 64×64 frames" in str(got.value)


def test_features_survive_json(tmp_path):
    folder = tmp_path / "plane0"
    write_suite2p(folder, blob_masks(), [[1, 0.5]] * 3)
    rois = RoiSet.from_suite2p(folder)
    rois.save(tmp_path / "r.json")
    again = RoiSet.load(tmp_path / "r.json")
    for key, values in rois.features.items():
        np.testing.assert_array_equal(again.features[key], values)
    assert set(again.features) == {"area", "score", "compactness"}
    assert rois.renamed("suite2p 0", "soma").features["score"][0] == 0.5


def write_caiman(path, footprints, dims, idx_components=None, snr=None):
    """A CaImAn results file as ``cnm.save`` writes it: estimates/A a CSC matrix stored as
    data / indices / indptr / shape, pixels flattened in Fortran order; dims at the root.
    """
    h5py = pytest.importorskip("h5py")
    A = sparse.csc_matrix(np.stack([f.ravel(order="F") for f in footprints], axis=1))
    with h5py.File(path, "w") as fh:
        fh["dims"] = np.asarray(dims)
        g = fh.create_group("estimates/A")
        g["data"], g["indices"], g["indptr"] = A.data, A.indices, A.indptr
        g["shape"] = np.asarray(A.shape)
        fh["estimates/idx_components"] = (
            np.asarray(idx_components) if idx_components is not None else "NoneType"
        )
        if snr is not None:
            fh["estimates/SNR_comp"] = np.asarray(snr, float)


def test_caiman_thresholded_footprints(tmp_path):
    yy, xx = np.mgrid[:Y, :X]
    centres = [(10, 12), (25, 30), (30, 8)]
    footprints = [np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 8.0) for cy, cx in centres]
    for f in footprints:
        f[f < 0.01] = 0  # CaImAn's footprints are sparse
    path = tmp_path / "caiman.hdf5"
    write_caiman(path, footprints, (Y, X), idx_components=[0, 2], snr=[5.0, 1.0, 3.0])
    rois = RoiSet.from_caiman(path)
    assert rois.names == ["caiman 0", "caiman 2"]
    for k, comp in enumerate([0, 2]):
        np.testing.assert_array_equal(rois.mask(k, (Y, X))[0], footprints[comp] > 0.2)
    np.testing.assert_allclose(rois.features["score"], [5.0, 3.0])
    tight = RoiSet.from_caiman(path, threshold=0.6)
    np.testing.assert_array_equal(tight.mask(0, (Y, X))[0], footprints[0] > 0.6)
    # no accepted list (stored as text): every component
    write_caiman(path, footprints, (Y, X))
    assert RoiSet.from_caiman(path).names == ["caiman 0", "caiman 1", "caiman 2"]
    with pytest.raises(SelectionError, match="64×64"):
        RoiSet.from_caiman(path, frame_shape=(64, 64))


def test_caiman_not_a_results_file(tmp_path):
    h5py = pytest.importorskip("h5py")
    path = tmp_path / "other.hdf5"
    with h5py.File(path, "w") as fh:
        fh["x"] = 1
    with pytest.raises(FormatError, match="estimates/A"):
        RoiSet.from_caiman(path)
    (tmp_path / "text.hdf5").write_text("hello")
    with pytest.raises(FormatError, match="not an HDF5"):
        RoiSet.from_caiman(tmp_path / "text.hdf5")


def test_cellpose_seg_npy_png_and_tif(tmp_path):
    import tifffile
    from PIL import Image

    labels = np.zeros((Y, X), np.uint16)
    for v, m in zip((3, 7, 12), blob_masks(), strict=True):
        labels[m] = v
    seg = {
        "masks": labels,
        "outlines": np.zeros_like(labels),
        "est_diam": 12.5,
        "filename": "rec.tif",
        "flows": [np.zeros((Y, X, 3), np.uint8), np.zeros((2, Y, X), np.float32)],
        "chan_choose": [0, 0],
        "ismanual": np.zeros(3, bool),
    }
    np.save(tmp_path / "rec_seg.npy", seg, allow_pickle=True)
    Image.fromarray(labels).save(tmp_path / "labels.png")
    tifffile.imwrite(tmp_path / "labels.tif", labels)
    for name in ("rec_seg.npy", "labels.png", "labels.tif"):
        rois = RoiSet.from_cellpose(tmp_path / name)
        assert rois.names == ["cellpose 3", "cellpose 7", "cellpose 12"], name
        dense = rois.masks((Y, X), 1).toarray().reshape(3, Y, X)
        for k, m in enumerate(blob_masks()):
            np.testing.assert_array_equal(dense[k], m)
        np.testing.assert_array_equal(rois.features["area"], [m.sum() for m in blob_masks()])
    with pytest.raises(SelectionError, match="40×50"):
        RoiSet.from_cellpose(tmp_path / "labels.tif", frame_shape=(20, 20))


# -- crafted files ---------------------------------------------------------------------------
class _Shell:
    def __reduce__(self):
        return (os.system, ("touch PWNED_SHELL",))


class _Writer:
    """Calls a builtin that writes a file when unpickled."""

    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return (open, (self.target, "w"))


def _npy_with_pickle(path, payload: bytes, shape=(1,)):
    """A .npy object-array header followed by ``payload`` (a pickle)."""
    header = {"descr": "|O", "fortran_order": False, "shape": shape}
    with open(path, "wb") as fh:
        np.lib.format.write_array_header_1_0(fh, header)
        fh.write(payload)


def _global_pickle(module: str, name: str) -> bytes:
    """A protocol-2 pickle that calls module.name("x") (GLOBAL + REDUCE)."""
    return b"\x80\x02c" + f"{module}\n{name}\n".encode() + b"X\x01\x00\x00\x00x\x85R."


@pytest.mark.parametrize(
    "what",
    ["os.system", "open", "numpy_evil", "datetime.os", "builtins.eval", "numpy.load"],
)
def test_crafted_pickles_never_run(tmp_path, monkeypatch, what):
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "plane0"
    write_suite2p(folder, blob_masks(), [[1, 1]] * 3)
    target = tmp_path / "PWNED_FILE"
    if what == "os.system":
        payload = pickle.dumps(np.array([{"ypix": _Shell()}], dtype=object), protocol=3)
    elif what == "open":
        payload = pickle.dumps(np.array([_Writer(str(target))], dtype=object), protocol=3)
    elif what == "numpy_evil":  # a look-alike of an allowed module
        payload = _global_pickle("numpy_evil.core.multiarray", "_reconstruct")
    elif what == "datetime.os":
        payload = _global_pickle("datetime.os", "system")
    elif what == "builtins.eval":
        payload = _global_pickle("builtins", "eval")
    else:
        payload = _global_pickle("numpy", "load")
    _npy_with_pickle(folder / "stat.npy", payload)
    with pytest.raises(FormatError, match="asks to run"):
        RoiSet.from_suite2p(folder)
    _npy_with_pickle(tmp_path / "x_seg.npy", payload, shape=())
    with pytest.raises(FormatError, match="asks to run"):
        RoiSet.from_cellpose(tmp_path / "x_seg.npy")
    assert not (tmp_path / "PWNED_SHELL").exists() and not target.exists()


def test_a_crafted_ops_file_never_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "plane0"
    write_suite2p(folder, blob_masks(), [[1, 1]] * 3)
    np.save(folder / "ops.npy", {"Ly": Y, "Lx": X, "evil": _Shell()}, allow_pickle=True)
    with pytest.raises(FormatError, match="posix.system|os.system|nt.system"):
        RoiSet.from_suite2p(folder)
    assert not (tmp_path / "PWNED_SHELL").exists()


def test_damaged_and_missing_files(tmp_path):
    folder = tmp_path / "plane0"
    folder.mkdir()
    with pytest.raises(FormatError, match="no stat.npy"):
        RoiSet.from_suite2p(folder)
    (folder / "stat.npy").write_bytes(b"not numpy at all")
    with pytest.raises(FormatError, match="not a NumPy .npy"):
        RoiSet.from_suite2p(folder)
    _npy_with_pickle(folder / "stat.npy", b"\x80\x03}q\x00(X")  # cut short
    with pytest.raises(FormatError, match="cannot be read"):
        RoiSet.from_suite2p(folder)
