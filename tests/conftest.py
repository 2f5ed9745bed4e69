"""Fixtures shared by the whole test suite."""

from __future__ import annotations

import os
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
    nobody, root included, can then create, rename or delete entries in it."""
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
                pytest.skip(f"running as root and the immutable flag is unavailable ({exc}); "
                            "no other way to make a folder read-only for root")
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
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k,mode=755", "tmpfs",
                           str(folder)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=True)
