"""The napari-scanimage command: info output and exit codes."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import tifffile

from napari_scanimage.cli import main
from napari_scanimage.testing.tiff import SyntheticLayout, write_scanimage_tiff


def test_info_json(tmp_path, capsys):
    truth = write_scanimage_tiff(
        tmp_path / "a.tif",
        SyntheticLayout(
            channels=(2, 3), num_planes=3, num_flyback=2, num_volumes=4, frame_rate=25.0
        ),
    )
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
    assert record["siff"] == {
        "num_bins": 120,
        "bin_width_ps": 20.0,
        "laser_period_ps": 12500.0,
        "photon_encoding": ["raw"],
    }
    assert (record["num_volumes"], record["num_planes"], record["num_flyback"]) == (6, 2, 1)


# -- register / traces / batch ------------------------------------------------------------------
def _error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if "error:" in line]


def _analysis_project(folder):
    from napari_scanimage import RoiSet
    from napari_scanimage.session import Session, TraceSettings

    folder.mkdir(parents=True, exist_ok=True)
    truth = write_scanimage_tiff(
        folder / "rec.tif",
        SyntheticLayout(channels=(1, 2), num_planes=2, num_volumes=6, frame_rate=20.0),
    )
    mask = np.zeros((32, 48), bool)
    mask[3:11, 5:22] = True
    rois = RoiSet.from_masks({"a": mask, "b": ~mask})
    session = Session(
        sources=[truth.paths[0]],
        channel=1,
        roi_set=rois,
        trace=TraceSettings(kind="dff", percentile=10.0),
    )
    return truth.paths[0], session.save(folder / "s.json"), rois


def test_traces_session_equals_library(tmp_path, capsys):
    import napari_scanimage as nsi

    rec, session_path, rois = _analysis_project(tmp_path / "p")
    out = tmp_path / "t.csv"
    assert main(["traces", str(session_path), "--out", str(out)]) == 0
    with nsi.open_dataset(rec) as ds:
        want = nsi.traces(ds, rois, channel=1, kind="dff", percentile=10.0)
    assert out.read_bytes().decode() == want.csv_text()
    rows = out.read_text().splitlines()
    assert rows[0] == "time_s,roi,channel,metric,value" and len(rows) == 1 + 2 * 6
    assert "traces: 1/1" in capsys.readouterr().err
    # flags override the session's settings; --rois with a plain file
    roi_file = rois.save(tmp_path / "rois.json")
    assert (
        main(
            [
                "traces",
                str(rec),
                "--rois",
                str(roi_file),
                "--out",
                str(out),
                "--kind",
                "sum",
                "--channel",
                "Channel 1",
            ]
        )
        == 0
    )
    with nsi.open_dataset(rec) as ds:
        want = nsi.traces(ds, rois, channel=0, kind="sum")
    assert out.read_bytes().decode() == want.csv_text()


def test_register_piecewise(tmp_path, capsys):
    import napari_scanimage as nsi
    from napari_scanimage.session import Session

    rec, session_path, _ = _analysis_project(tmp_path / "p")
    out = tmp_path / "pw.npz"
    argv = ["register", str(rec), "--out", str(out), "--piecewise", "--block-size", "16,24"]
    assert main(argv) == 0
    assert "piecewise: 3×3 blocks of [16, 24] px" in capsys.readouterr().out
    with nsi.open_dataset(rec) as ds:
        want = nsi.register(ds, piecewise=True, block_size=(16, 24))
    got = nsi.Registration.load(out)
    assert got.piecewise and got.settings["block_size"] == [16, 24]
    np.testing.assert_array_equal(got.block_shifts, want.block_shifts)
    # --block-size alone implies --piecewise; the session stores the block field
    assert main(["register", str(session_path), "--block-size", "16"]) == 0
    stored = Session.load(session_path).registration()
    assert stored.piecewise and stored.block_shifts.shape[2:4] == (3, 4)
    # a block larger than the frame, or not a size: one error line, exit code 2
    assert main(["register", str(rec), "--out", str(out), "--block-size", "64"]) == 2
    lines = _error_lines(capsys.readouterr().err)
    assert len(lines) == 1 and "block height 64 px does not fit frames of 32×48" in lines[0]
    with pytest.raises(SystemExit) as exc:
        main(["register", str(rec), "--block-size", "big"])
    assert exc.value.code == 2
    assert "'big' is not a block size" in capsys.readouterr().err


def test_register_file_and_session(tmp_path, capsys):
    import napari_scanimage as nsi
    from napari_scanimage.session import Session

    rec, session_path, rois = _analysis_project(tmp_path / "p")
    assert main(["register", str(rec), "--channel", "1", "--max-shift", "4"]) == 0
    default_out = rec.with_name("rec.registration.npz")
    with nsi.open_dataset(rec) as ds:
        want = nsi.register(ds, channel=1, max_shift=4)
    np.testing.assert_array_equal(nsi.Registration.load(default_out).shifts, want.shifts)
    assert main(["register", str(session_path), "--max-shift", "4"]) == 0
    stored = Session.load(session_path).registration()
    np.testing.assert_array_equal(stored.shifts, want.shifts)
    # traces of a session with a registration use it, like the library does
    out = tmp_path / "reg.csv"
    assert main(["traces", str(session_path), "--out", str(out)]) == 0
    with nsi.open_dataset(rec) as ds:
        expected = nsi.traces(ds, rois, channel=1, kind="dff", percentile=10.0, registration=want)
    assert out.read_bytes().decode() == expected.csv_text()
    out2 = tmp_path / "reg2.csv"
    assert (
        main(
            [
                "traces",
                str(rec),
                "--rois",
                str(rois.save(tmp_path / "r.json")),
                "--registration",
                str(default_out),
                "--channel",
                "1",
                "--kind",
                "dff",
                "--out",
                str(out2),
            ]
        )
        == 0
    )
    with nsi.open_dataset(rec) as ds:
        expected = nsi.traces(ds, rois, channel=1, kind="dff", registration=want)
    assert out2.read_bytes().decode() == expected.csv_text()


def test_traces_on_local_cluster_equals_in_process(tmp_path, capsys):
    rec, session_path, _ = _analysis_project(tmp_path / "p")
    here, there = tmp_path / "here.csv", tmp_path / "there.csv"
    assert main(["traces", str(session_path), "--out", str(here), "--kind", "mean"]) == 0
    assert (
        main(["traces", str(session_path), "--out", str(there), "--kind", "mean", "--workers", "2"])
        == 0
    )
    assert there.read_text() == here.read_text()
    assert "starting 2 local worker process(es)" in capsys.readouterr().err


def test_batch(tmp_path, capsys, dask_client):
    import napari_scanimage as nsi
    from napari_scanimage.session import Session

    _, template, rois = _analysis_project(tmp_path / "template")
    data = tmp_path / "data"
    data.mkdir()
    recs = [
        write_scanimage_tiff(
            data / f"m{k}.tif",
            SyntheticLayout(channels=(1, 2), num_planes=2, num_volumes=4 + k, frame_rate=20.0),
        ).paths[0]
        for k in range(3)
    ]
    series = write_scanimage_tiff(
        data / "ser.tif",
        SyntheticLayout(channels=(1, 2), num_planes=2, num_volumes=4, frames_per_file=4),
    )
    assert len(series.paths) > 1
    out_dir = tmp_path / "results"
    args = ["batch", str(data), "--session", str(template), "--out-dir", str(out_dir)]
    assert main([*args, "--scheduler", dask_client.scheduler.address]) == 0
    expected = {f"{p.stem}_traces.csv": p for p in [*recs, series.paths[0]]}
    assert sorted(p.name for p in out_dir.iterdir()) == sorted([*expected, "batch.json"])
    for name, rec in expected.items():
        with nsi.open_dataset(rec) as ds:
            want = nsi.traces(ds, rois, channel=1, kind="dff", percentile=10.0)
        assert (out_dir / name).read_bytes().decode() == want.csv_text()
    assert "4 recording(s) analysed, 0 skipped (unchanged), 0 failed" in capsys.readouterr().out
    # a rerun skips them all
    assert main([*args, "--scheduler", dask_client.scheduler.address]) == 0
    assert "0 recording(s) analysed, 4 skipped (unchanged), 0 failed" in capsys.readouterr().out
    # a broken file is reported; the others are still written; the exit code says so
    for p in [*series.paths]:
        p.unlink()
    (data / "broken.tif").write_bytes(b"II*\x00 this is not a tiff")
    shutil.rmtree(out_dir)
    args = ["batch", str(data / "*.tif"), "--session", str(template), "--out-dir", str(out_dir)]
    assert main([*args, "--scheduler", dask_client.scheduler.address]) == 1
    captured = capsys.readouterr()
    assert "3 recording(s) analysed, 0 skipped (unchanged), 1 failed" in captured.out
    assert "broken.tif" in captured.out and "broken.tif: failed" in captured.err
    assert len(_error_lines(captured.err)) == 1
    assert sorted(p.name for p in out_dir.iterdir()) == [
        "batch.json",
        *(f"m{k}_traces.csv" for k in range(3)),
    ]
    assert Session.load(template).rois().names == ["a", "b"]


def test_batch_registers_with_the_template_registration(tmp_path, capsys, dask_client):
    """A template holding a registration: every recording is registered with its settings
    and its traces are those of the registered frames.
    """
    import napari_scanimage as nsi
    from napari_scanimage.session import Session

    rec, template, rois = _analysis_project(tmp_path / "template")
    session = Session.load(template)
    with nsi.open_dataset(rec) as ds:
        session.registration_result = nsi.register(ds, channel=1, max_shift=4)
    session.save(template)
    data = tmp_path / "data"
    data.mkdir()
    write_scanimage_tiff(
        data / "m.tif",
        SyntheticLayout(channels=(1, 2), num_planes=2, num_volumes=7, frame_rate=20.0),
    )
    out_dir = tmp_path / "results"
    args = ["batch", str(data), "--session", str(template), "--out-dir", str(out_dir)]
    assert main(args) == 0  # on a local cluster started for the run
    assert "local worker process(es)" in capsys.readouterr().err
    with nsi.open_dataset(data / "m.tif") as ds:
        reg = nsi.register(ds, channel=1, max_shift=4)
        want = nsi.traces(ds, rois, channel=1, kind="dff", percentile=10.0, registration=reg)
    got = nsi.Registration.load(out_dir / "m.registration.npz")
    np.testing.assert_allclose(got.shifts, reg.shifts, rtol=0, atol=1e-6)
    assert (out_dir / "m_traces.csv").read_bytes().decode() == want.csv_text()
    # --no-register: the frames as recorded
    address = dask_client.scheduler.address
    assert main([*args, "--no-register", "--force", "--scheduler", address]) == 0
    with nsi.open_dataset(data / "m.tif") as ds:
        plain = nsi.traces(ds, rois, channel=1, kind="dff", percentile=10.0)
    assert (out_dir / "m_traces.csv").read_bytes().decode() == plain.csv_text()
    captured = capsys.readouterr()
    assert "batch.json" in captured.out
    assert "recordings are not registered (--no-register" in captured.err


def test_bad_inputs_exit_non_zero_without_output(tmp_path, capsys):
    rec, session_path, rois = _analysis_project(tmp_path / "p")
    out = tmp_path / "t.csv"
    # wrong ROI file
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps({"hello": 1}))
    assert main(["traces", str(rec), "--rois", str(wrong), "--out", str(out)]) == 2
    lines = _error_lines(capsys.readouterr().err)
    assert len(lines) == 1 and "not a napari-scanimage ROI file" in lines[0]
    assert main(["traces", str(rec), "--out", str(out)]) == 2
    assert "give --rois" in capsys.readouterr().err
    # ROIs drawn on other frames
    from napari_scanimage import RoiSet

    other = RoiSet.from_masks({"x": np.ones((10, 10), bool)}).save(tmp_path / "other.json")
    assert main(["traces", str(rec), "--rois", str(other), "--out", str(out)]) == 2
    assert "10×10" in capsys.readouterr().err
    # unreachable scheduler
    assert (
        main(["traces", str(session_path), "--out", str(out), "--scheduler", "tcp://127.0.0.1:9"])
        == 2
    )
    lines = _error_lines(capsys.readouterr().err)
    assert len(lines) == 1 and "cannot reach the dask scheduler at tcp://127.0.0.1:9" in lines[0]
    # output folder missing
    assert main(["traces", str(session_path), "--out", str(tmp_path / "no" / "t.csv")]) == 2
    assert "does not exist" in capsys.readouterr().err
    # missing recording in the session
    rec.unlink()
    assert main(["traces", str(session_path), "--out", str(out)]) == 2
    lines = _error_lines(capsys.readouterr().err)
    assert len(lines) == 1 and "rec.tif, which does not exist" in lines[0]
    assert main(["register", str(session_path)]) == 2
    assert len(_error_lines(capsys.readouterr().err)) == 1
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other.json", "p", "wrong.json"]


def test_export_nwb_from_a_session(tmp_path, capsys):
    pynwb = pytest.importorskip("pynwb")
    import napari_scanimage as nsi

    rec, session_path, rois = _analysis_project(tmp_path / "p")
    out = tmp_path / "rec.nwb"
    assert main(["export-nwb", str(session_path), "--out", str(out)]) == 0
    with nsi.open_dataset(rec) as ds:
        want = nsi.traces(ds, rois, channel=1, kind="dff", percentile=10.0)
        frames = ds.read(1)  # (T, Z, Y, X)
    with pynwb.NWBHDF5IO(str(out), "r") as io:
        nwb = io.read()
        data = [np.asarray(s.data[:]) for s in nwb.acquisition.values()]
        assert any(
            d.shape == frames.transpose(0, 3, 2, 1).shape
            and np.array_equal(d, frames.transpose(0, 3, 2, 1))
            for d in data
        )
        ophys = nwb.processing["ophys"]
        responses = [
            s
            for iface in ophys.data_interfaces.values()
            if hasattr(iface, "roi_response_series")
            for s in iface.roi_response_series.values()
        ]
        assert any(
            np.allclose(np.asarray(r.data[:]).T, want.values, equal_nan=True) for r in responses
        )
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    # a session whose recording is gone: one error line, no file
    (tmp_path / "p" / "rec.tif").unlink()
    gone = tmp_path / "gone.nwb"
    assert main(["export-nwb", str(session_path), "--out", str(gone)]) != 0
    assert len(_error_lines(capsys.readouterr().err)) == 1 and not gone.exists()


def test_info_and_register_per_mroi_field(tmp_path, capsys):
    import napari_scanimage as nsi
    from napari_scanimage.testing.mroi import write_mroi_tiff

    truth = write_mroi_tiff(tmp_path / "meso.tif", num_planes=1, num_flyback=0, num_volumes=6)
    path = truth.path
    assert main(["info", str(path), "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["mroi"] is True
    assert [f["name"] for f in record["fields"]] == [f.name for f in truth.fields]
    assert [f["shape"] for f in record["fields"]] == [[f.height, f.width] for f in truth.fields]
    assert main(["register", str(path), "--field", "middle", "--max-shift", "4"]) == 0
    out = path.with_name("meso.field-middle.registration.npz")
    with nsi.open_dataset(path) as ds:
        want = nsi.register(ds.field("middle"), max_shift=4)
    got = nsi.Registration.load(out)
    np.testing.assert_array_equal(got.shifts, want.shifts)
    assert got.reference.shape[-2:] == (truth.fields[1].height, truth.fields[1].width)
    assert main(["register", str(path), "--field", "nowhere"]) == 2
    assert "no field named 'nowhere'" in capsys.readouterr().err
