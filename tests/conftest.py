"""Fixtures shared by the whole test suite."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import pytest

#: Shared test recordings live next to the repository: <repo>/../shared/data.
DEFAULT_SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
SHARED_DATA_ENV = "NAPARI_SCANIMAGE_SHARED_DATA"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Folder of shared test data (``$NAPARI_SCANIMAGE_SHARED_DATA`` overrides the default).

    Tests using it are skipped when the folder does not exist.
    """
    override = os.environ.get(SHARED_DATA_ENV)
    path = Path(override).expanduser().resolve() if override else DEFAULT_SHARED_DATA
    if not path.is_dir():
        pytest.skip(f"shared test data not found at {path} (set {SHARED_DATA_ENV} to override)")
    return path


def _set_immutable(folder: Path, on: bool) -> None:
    """Set or clear the Linux 'immutable' flag of ``folder`` (root only; ext2/3/4, xfs, btrfs):
    nobody, root included, can then create, rename or delete entries in it.
    """
    import array
    import fcntl

    get_flags, set_flags, immutable = 0x80086601, 0x40086602, 0x10  # FS_IOC_*FLAGS, FS_*_FL
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        flags = array.array("l", [0])
        fcntl.ioctl(fd, get_flags, flags, True)
        flags[0] = flags[0] | immutable if on else flags[0] & ~immutable
        fcntl.ioctl(fd, set_flags, flags, True)
    finally:
        os.close(fd)


@pytest.fixture
def make_readonly():
    """``make_readonly(folder)`` makes an existing folder refuse new files for this test.

    A normal user gets mode 0o555; root (whom modes do not stop) gets the filesystem's
    'immutable' flag.  The test is skipped when neither works here; the folder is writable
    again afterwards.
    """
    locked: list[tuple[Path, str]] = []

    def lock(folder: Path) -> Path:
        if os.geteuid() != 0:
            os.chmod(folder, 0o555)
            locked.append((folder, "mode"))
        else:
            try:
                _set_immutable(folder, True)
            except OSError as exc:
                pytest.skip(
                    f"running as root and the immutable flag is unavailable ({exc}); "
                    "no other way to make a folder read-only for root"
                )
            locked.append((folder, "flag"))
        probe = folder / ".probe"
        try:
            probe.write_bytes(b"")
        except OSError:
            return folder
        probe.unlink()
        pytest.skip(f"{folder} stays writable here")

    yield lock
    for folder, how in reversed(locked):
        if how == "mode":
            os.chmod(folder, 0o755)
        else:
            _set_immutable(folder, False)


@pytest.fixture(scope="session")
def dask_client():
    """A client of a dask LocalCluster of 2 worker processes (1 thread each), shared by the
    tests that run batches (starting one takes seconds).  Skipped without ``distributed``.
    """
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        dashboard_address=None,
        scheduler_kwargs={"dashboard_address": ":0"},  # (not the default port: kept free)
    )
    try:
        with distributed.Client(cluster) as client:
            yield client
    finally:
        cluster.close()


@pytest.fixture
def full_dir(tmp_path):
    """A folder on a real, tiny (256 KiB) tmpfs: writes beyond its size fail with ENOSPC.

    Needs root (mounting); skipped otherwise.
    """
    import shutil
    import subprocess

    folder = tmp_path / "full"
    folder.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("a real full drive needs a tiny tmpfs, which only root can mount")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=256k,mode=755", "tmpfs", str(folder)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=True)


# -- files left open -------------------------------------------------------------------------
#: Files a test may leave open: caches and settings of the libraries the tests run.
_OPEN_FILE_ALLOWED = (
    "/.cache/",
    "/site-packages/",
    "/dev/",
    "/proc/",
    "/sys/",
    "napari",
    "numba",
    "/usr/",
    "/etc/",
    ".log",
    "/dask-scratch-space/",  # the lock of the shared test cluster's scheduler (dask_client)
)
_PYTHON = os.path.realpath(sys.executable)
_SHARED_LIBRARY = re.compile(r"\.(so(\.[\d.]+)?|pyd|dll|dylib)$")


def _held_paths() -> list[str]:
    """Paths of the files this process holds: open descriptors and memory maps (both pin a
    file, and on Windows stop it from being replaced or deleted).  Reads /proc directly where
    it exists: psutil's memory maps parse /proc/self/smaps, ten times slower, and this runs
    around every test.
    """
    if os.path.isdir("/proc/self/fd"):
        paths = []
        mapped = set()  # a mapping splits into several lines, in numbers that vary
        for fd in os.listdir("/proc/self/fd"):
            try:
                paths.append(os.readlink(f"/proc/self/fd/{fd}"))
            except OSError:  # the descriptor listing the folder itself, closed meanwhile
                pass
        with open("/proc/self/maps") as maps:
            for line in maps:
                fields = line.split(maxsplit=5)
                if len(fields) == 6 and fields[5].startswith("/"):
                    mapped.add(fields[5].rstrip("\n"))
        return paths + sorted(mapped)
    import psutil

    proc = psutil.Process()
    paths = [f.path for f in proc.open_files()]
    try:
        paths += [m.path for m in proc.memory_maps(grouped=True) if os.path.isabs(m.path)]
    except (psutil.Error, OSError, NotImplementedError):  # not listed on every platform
        pass
    return paths


def _open_files(under: str = "") -> dict[str, int]:
    """Regular files this process holds open (under the folder ``under``): {path: count}."""
    held: dict[str, int] = {}
    for path in _held_paths():
        if not path.startswith("/"):  # pipes, sockets, anonymous inodes
            continue
        if under:
            if not path.startswith(under):
                continue
        elif (
            path == _PYTHON
            or any(part in path for part in _OPEN_FILE_ALLOWED)
            or _SHARED_LIBRARY.search(path)
        ):
            continue
        held[path] = held.get(path, 0) + 1
    return held


def _left_open(before: dict[str, int], under: str = "") -> list[str]:
    """Files held more often now than in ``before``, once unreachable objects are gone."""
    after = _open_files(under)
    if any(n > before.get(p, 0) for p, n in after.items()):
        import gc

        gc.collect()  # only when something looks left open: a full collection is not free
        after = _open_files(under)
    return sorted(p for p, n in after.items() if n > before.get(p, 0))


@pytest.fixture(autouse=True)
def no_files_left_open(request):
    """Fail a test that leaves open a file in its own temporary folder (``tmp_path``).

    Files of module- and session-scoped fixtures may stay open while the module runs; they are
    checked when the module ends (:func:`no_files_left_open_by_module`).  Mark a test
    ``@pytest.mark.leaves_files_open`` to exempt it (and say why in its docstring).
    """
    if "tmp_path" not in request.fixturenames or request.node.get_closest_marker(
        "leaves_files_open"
    ):
        yield
        return
    # The folder is new: nothing in it can be open before the test.  Taken now, not at
    # teardown, when asking for tmp_path again would make a new folder.
    own = str(request.getfixturevalue("tmp_path")) + os.sep
    yield
    left = _left_open({}, own)
    if left:
        pytest.fail(
            f"{len(left)} file(s) left open by the test: {', '.join(left[:5])}", pytrace=False
        )


@pytest.fixture(scope="module", autouse=True)
def no_files_left_open_by_module(request):
    """Fail a test module whose tests or fixtures leave files open once all of them are done
    (this fixture is set up first and torn down last in its module).
    """
    if request.node.get_closest_marker("leaves_files_open"):
        yield
        return
    before = _open_files()
    yield
    left = _left_open(before)
    if left:
        pytest.fail(
            f"{len(left)} file(s) left open by {request.node.name}: {', '.join(left[:5])}",
            pytrace=False,
        )


@pytest.fixture
def opened():
    """``opened(path, **kwargs)`` is :func:`napari_scanimage.open_dataset`, and the dataset is
    closed when the test ends (its cached readers are released): for tests that read a
    dataset in many places, where one ``with`` block would hold the whole test.
    """
    from napari_scanimage import open_dataset

    datasets = []

    def open_(*args, **kwargs):
        ds = open_dataset(*args, **kwargs)
        datasets.append(ds)
        return ds

    yield open_
    for ds in datasets:
        ds.close()
