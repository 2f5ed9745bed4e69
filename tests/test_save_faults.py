"""Saving where it cannot succeed (read-only or missing folder, full drive): a typed SaveError
that says what happened and what to do, the previous file byte-identical, no temporary file.
"""

from __future__ import annotations

import errno
import os

import numpy as np
import pytest

import napari_scanimage as nsi
from napari_scanimage._atomic import atomic_write, replacing
from napari_scanimage.errors import SaveError, ScanImageError
from napari_scanimage.flim import DecayFit
from napari_scanimage.session import Session, TraceSettings
from napari_scanimage.testing.tiff import SyntheticLayout, write_scanimage_tiff

PREVIOUS = b'{"previous": "content"}\n'


def listing(folder):
    return sorted(p.name for p in folder.iterdir())


def test_save_error_is_public_and_typed():
    assert nsi.SaveError is SaveError and nsi.ReadError.__name__ == "ReadError"
    assert issubclass(SaveError, ScanImageError) and issubclass(SaveError, OSError)


def test_read_only_folder(tmp_path, make_readonly):
    folder = tmp_path / "locked"
    folder.mkdir()
    target = folder / "rois.json"
    target.write_bytes(PREVIOUS)
    make_readonly(folder)
    with pytest.raises(SaveError) as err:
        atomic_write(target, b"new content")
    assert err.value.errno in (errno.EACCES, errno.EPERM, errno.EROFS)
    message = str(err.value)
    assert message.startswith(f"cannot save {target}: ")
    assert "permission denied" in message or "read-only" in message
    assert "choose a folder" in message and "(the previous file is unchanged)" in message
    assert target.read_bytes() == PREVIOUS and listing(folder) == ["rois.json"]


def test_missing_folder(tmp_path):
    target = tmp_path / "no" / "such" / "traces.csv"
    with pytest.raises(
        SaveError,
        match=r"its folder does not exist; create the folder or "
        r"choose another one \(nothing was written\)",
    ) as err:
        atomic_write(target, b"a,b\n")
    assert err.value.errno == errno.ENOENT and isinstance(err.value, FileNotFoundError) is False
    assert not (tmp_path / "no").exists()


def test_folder_that_is_a_file(tmp_path):
    """Works for root too: no permission can make a regular file a folder."""
    blocker = tmp_path / "results"
    blocker.write_bytes(PREVIOUS)
    with pytest.raises(SaveError, match="is a file, not a folder; choose another folder") as err:
        atomic_write(blocker / "fit.json", b"{}")
    assert err.value.errno == errno.ENOTDIR
    assert blocker.read_bytes() == PREVIOUS and listing(tmp_path) == ["results"]


def test_drive_full_while_writing(tmp_path):
    """The writer fails half-way with ENOSPC: the half-written temporary file is removed."""
    target = tmp_path / "shifts.npz"
    target.write_bytes(PREVIOUS)
    seen = []

    def writer(fh):
        fh.write(b"x" * 1000)
        seen.extend(p.name for p in tmp_path.iterdir())
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with pytest.raises(
        SaveError,
        match=r"the drive is full; free "
        r"some space or save to another drive \(the previous "
        r"file is unchanged\)",
    ) as err:
        atomic_write(target, writer)
    assert err.value.errno == errno.ENOSPC
    assert len(seen) == 2 and any(n.startswith(".shifts-") for n in seen)  # the temp existed
    assert target.read_bytes() == PREVIOUS and listing(tmp_path) == ["shifts.npz"]


def test_really_full_drive(full_dir):
    """A real ENOSPC from a tiny tmpfs: nothing left behind, the space is free again."""
    target = full_dir / "big.bin"
    target.write_bytes(PREVIOUS)
    free = os.statvfs(full_dir).f_bavail
    with pytest.raises(SaveError, match="the drive is full") as err:
        atomic_write(target, os.urandom(1 << 20))
    assert err.value.errno == errno.ENOSPC
    assert target.read_bytes() == PREVIOUS and listing(full_dir) == ["big.bin"]
    assert os.statvfs(full_dir).f_bavail == free


def test_other_errors_pass_through(tmp_path):
    """Only OS errors become SaveError; a failing computation keeps its own type."""
    target = tmp_path / "x.json"
    target.write_bytes(PREVIOUS)
    with pytest.raises(ZeroDivisionError):
        with replacing(target) as tmp:
            with open(tmp, "wb") as fh:
                fh.write(b"half")
            1 / 0  # noqa: B018
    assert target.read_bytes() == PREVIOUS and listing(tmp_path) == ["x.json"]


# -- every file the package writes ----------------------------------------------------------
@pytest.fixture(scope="module")
def results(tmp_path_factory):
    folder = tmp_path_factory.mktemp("rec")
    truth = write_scanimage_tiff(
        folder / "rec.tif",
        SyntheticLayout(channels=(1, 2), num_planes=2, num_volumes=5, height=32, width=48),
    )
    mask = np.zeros((32, 48), bool)
    mask[4:12, 6:20] = True
    rois = nsi.RoiSet.from_masks({"cell": mask})
    square = nsi.RoiSet.from_layer(
        [np.array([[14.0, 20.0], [14, 40], [28, 40], [28, 20]])],
        shape_types="polygon",
        names=["square"],
        frame_shape=(32, 48),
    )
    with nsi.open_dataset(truth.paths[0]) as ds:
        reg = nsi.register(ds, channel=1)
        traces = nsi.traces(ds, rois, channel=0)
    fit = DecayFit(
        taus_ns=(0.8, 3.2),
        fractions=(0.4, 0.6),
        irf_offset_ns=0.75,
        irf_width_ns=0.12,
        background=0.01,
        total=1e4,
        bin_width_ps=20.0,
        period_ps=12500.0,
        n_exp=2,
        deviance=101.5,
        fit_range=(3, 110),
    )
    session = Session(
        sources=[truth.paths[0]],
        channel="Channel 1",
        roi_set=rois,
        registration_result=reg,
        decay_fit=fit,
        trace=TraceSettings(kind="mean"),
    )
    return {
        "path": truth.paths[0],
        "rois": rois,
        "square": square,
        "reg": reg,
        "traces": traces,
        "fit": fit,
        "session": session,
    }


def _export_nwb(results, path):
    pytest.importorskip("pynwb")
    from napari_scanimage.nwb import export_nwb

    with nsi.open_dataset(results["path"]) as ds:
        return export_nwb(ds, path, rois=results["rois"], traces=[results["traces"]])


SAVERS = {
    "rois.json": lambda r, p: r["rois"].save(p),
    "rois.zip": lambda r, p: r["square"].to_imagej(p),
    "shifts.npz": lambda r, p: r["reg"].save(p),
    "fit.json": lambda r, p: r["fit"].save(p),
    "traces.csv": lambda r, p: r["traces"].to_csv(p),
    "session.json": lambda r, p: r["session"].save(p),
    "rec.nwb": _export_nwb,
}


@pytest.mark.parametrize("name", list(SAVERS))
def test_every_saver_into_a_read_only_folder(results, name, tmp_path, make_readonly):
    folder = tmp_path / "out"
    folder.mkdir()
    SAVERS[name](results, folder / name)  # a first save works
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    make_readonly(folder)
    with pytest.raises(
        SaveError,
        match=r"cannot save .*; choose a folder .* \(the previous file "
        r"is unchanged\)",
    ):
        SAVERS[name](results, folder / name)
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before


@pytest.mark.parametrize("name", list(SAVERS))
def test_every_saver_into_a_missing_folder(results, name, tmp_path):
    with pytest.raises(SaveError, match="its folder does not exist"):
        SAVERS[name](results, tmp_path / "missing" / name)
    assert listing(tmp_path) == []


@pytest.mark.parametrize("name", ["session.json", "rec.nwb"])
def test_saver_on_a_really_full_drive(results, name, full_dir):
    """The biggest files (the registration sidecar of a session; NWB) on a full tmpfs.  NWB is
    refused before HDF5 writes anything: HDF5 crashes the process when a drive fills in the
    middle of its file (this test would then kill the test run).
    """
    filler = full_dir / "filler.bin"
    with open(filler, "wb") as fh:  # leave ~8 KiB free
        fh.write(b"\0" * (os.statvfs(full_dir).f_bavail * os.statvfs(full_dir).f_frsize - 8192))
    with pytest.raises(SaveError, match="the drive is full"):
        SAVERS[name](results, full_dir / name)
    assert listing(full_dir) == ["filler.bin"]


def test_session_and_sidecars_kept_together_when_the_drive_fills(results, full_dir):
    """A session is staged whole (sidecars and JSON in temporary files) before anything is
    replaced: when the JSON no longer fits, the new sidecars (which did fit) must not replace
    the previous ones either.
    """
    import dataclasses

    target = full_dir / "analysis.json"
    results["session"].save(target)  # previous: session + registration + decay-fit sidecars
    before = {p.name: p.read_bytes() for p in full_dir.iterdir()}
    assert sorted(before) == [
        "analysis.decayfit.json",
        "analysis.json",
        "analysis.registration.npz",
    ]
    rng = np.random.default_rng(0)  # many ROIs inline: a JSON of a few hundred kB
    polygons = [
        np.c_[16 + 10 * np.sin(a), 24 + 10 * np.cos(a)] + rng.normal(0, 1e-3, (60, 2))
        for a in [np.linspace(0, 2 * np.pi, 60, endpoint=False)] * 150
    ]
    many = nsi.RoiSet.from_layer(polygons, shape_types="polygon", frame_shape=(32, 48))
    reg = results["reg"]
    session = dataclasses.replace(
        results["session"],
        roi_set=many,
        registration_result=dataclasses.replace(reg, shifts=reg.shifts + 1.0),
        decay_fit=dataclasses.replace(results["fit"], taus_ns=(0.7, 3.0)),
    )
    stat = os.statvfs(full_dir)
    with open(full_dir / "filler.bin", "wb") as fh:  # room for the sidecars, not the JSON
        fh.write(b"\0" * (stat.f_bavail * stat.f_frsize - 96 * 1024))
    with pytest.raises(SaveError, match="the drive is full"):
        session.save(target)
    (full_dir / "filler.bin").unlink()
    assert {p.name: p.read_bytes() for p in full_dir.iterdir()} == before


# -- a file another program holds open (Windows: it cannot be replaced) ---------------------
class WindowsSharing:
    """``os.replace`` as on Windows: a file some handle holds open (see :meth:`hold`) can be
    neither replaced nor moved away; refused with the sharing-violation error Windows gives
    (winerror 32).
    """

    def __init__(self, monkeypatch):
        self.held: dict[str, object] = {}
        self.refused = 0
        real = os.replace

        def replace(src, dst, **kwargs):
            if {os.path.abspath(src), os.path.abspath(dst)} & set(self.held):
                self.refused += 1
                err = PermissionError(
                    errno.EACCES,
                    "The process cannot access the file "
                    "because it is being used by another process",
                    str(dst),
                )
                err.winerror = 32
                raise err
            return real(src, dst, **kwargs)

        monkeypatch.setattr(os, "replace", replace)

    def hold(self, path) -> None:
        self.held[os.path.abspath(path)] = open(path, "rb")  # noqa: SIM115

    def release(self, path) -> None:
        self.held.pop(os.path.abspath(path)).close()

    def close(self) -> None:
        for fh in self.held.values():
            fh.close()


@pytest.fixture
def windows_sharing(monkeypatch):
    sharing = WindowsSharing(monkeypatch)
    yield sharing
    sharing.close()


def test_file_held_open_briefly_is_replaced_once_free(tmp_path, windows_sharing):
    """A virus scanner or sync client that lets go within a second: the save just works."""
    import threading

    target = tmp_path / "traces.csv"
    target.write_bytes(PREVIOUS)
    windows_sharing.hold(target)
    threading.Timer(0.15, windows_sharing.release, args=(target,)).start()
    atomic_write(target, b"a,b\n1,2\n")
    assert target.read_bytes() == b"a,b\n1,2\n" and listing(tmp_path) == ["traces.csv"]
    assert windows_sharing.refused >= 2  # it was retried


def test_file_held_open_gives_a_clear_error(tmp_path, windows_sharing):
    import time

    target = tmp_path / "traces.csv"
    target.write_bytes(PREVIOUS)
    windows_sharing.hold(target)
    start = time.perf_counter()
    with pytest.raises(SaveError) as err:
        atomic_write(target, b"a,b\n1,2\n")
    waited = time.perf_counter() - start
    assert str(err.value) == (
        f"cannot save {target}: the file is open in another program (or marked read-only); "
        "close it there, or save under another name (the previous file is unchanged)"
    )
    assert err.value.errno == errno.EACCES and isinstance(err.value.__cause__, PermissionError)
    assert windows_sharing.refused == 7 and 0.8 < waited < 3.0  # retried for about a second
    assert target.read_bytes() == PREVIOUS and listing(tmp_path) == ["traces.csv"]


def test_permission_error_on_posix_is_not_retried(tmp_path, monkeypatch):
    """Without a Windows error code a refused replace is a permission problem: no waiting."""
    calls = []

    def replace(src, dst, **kwargs):
        calls.append(dst)
        raise PermissionError(errno.EPERM, os.strerror(errno.EPERM), str(dst))

    monkeypatch.setattr(os, "replace", replace)
    target = tmp_path / "fit.json"
    target.write_bytes(PREVIOUS)
    with pytest.raises(SaveError, match="choose a folder"):
        atomic_write(target, b"{}")
    assert len(calls) == 1 and listing(tmp_path) == ["fit.json"]


@pytest.mark.parametrize("name", list(SAVERS))
def test_every_saver_onto_a_file_held_open(results, name, tmp_path, windows_sharing):
    folder = tmp_path / "out"
    folder.mkdir()
    SAVERS[name](results, folder / name)  # a first save works
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    windows_sharing.hold(folder / name)
    with pytest.raises(SaveError, match=r"cannot save .*: the file is open in another program"):
        SAVERS[name](results, folder / name)
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before


def test_session_kept_whole_when_its_json_is_held_open(results, tmp_path, windows_sharing):
    """A new session whose sidecars differ: with the JSON held open, the new sidecars must not
    end up next to the previous JSON (they are moved in only once the previous files are
    aside, and moved out again when the JSON cannot follow).
    """
    import dataclasses

    target = tmp_path / "analysis.nsession.json"
    results["session"].save(target)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert sorted(before) == [
        "analysis.decayfit.json",
        "analysis.nsession.json",
        "analysis.registration.npz",
    ]
    reg = results["reg"]
    changed = dataclasses.replace(
        results["session"],
        registration_result=dataclasses.replace(reg, shifts=reg.shifts + 1),
        decay_fit=dataclasses.replace(results["fit"], taus_ns=(0.7, 3.0)),
    )
    for held in ("analysis.nsession.json", "analysis.registration.npz"):
        windows_sharing.hold(tmp_path / held)
        with pytest.raises(SaveError, match=r"cannot save .*: the file is open in another pro"):
            changed.save(target)
        assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
        windows_sharing.release(tmp_path / held)
    changed.save(target)  # once free, the new session and sidecars together
    after = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert sorted(after) == sorted(before)
    assert all(
        after[n] != before[n] for n in ("analysis.decayfit.json", "analysis.registration.npz")
    )


def test_session_put_back_when_moving_in_fails(results, tmp_path, monkeypatch):
    """A failure after some previous files were moved aside and some new ones moved in (an
    I/O error on the last rename) puts every previous file back.
    """
    import dataclasses

    target = tmp_path / "analysis.nsession.json"
    results["session"].save(target)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    real = os.replace

    def replace(src, dst, **kwargs):
        if (
            os.path.basename(os.fspath(dst)) == "analysis.nsession.json"
            and os.path.basename(os.fspath(src)).startswith(".analysis.nsession-")
            and "previous" not in os.fspath(src)
        ):
            raise OSError(errno.EIO, os.strerror(errno.EIO), str(dst))
        return real(src, dst, **kwargs)

    monkeypatch.setattr(os, "replace", replace)
    reg = results["reg"]
    changed = dataclasses.replace(
        results["session"], registration_result=dataclasses.replace(reg, shifts=reg.shifts + 1)
    )
    with pytest.raises(SaveError, match=r"cannot save .*analysis.nsession.json.*previous"):
        changed.save(target)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
