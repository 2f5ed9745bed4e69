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
