"""The block field of a piecewise registration as vectors on a layer's axes."""

from __future__ import annotations

import numpy as np
import pytest

from napari_scanimage.analysis.block_qc import block_vectors
from napari_scanimage.analysis.registration import Registration
from napari_scanimage.errors import SelectionError


@pytest.fixture
def piecewise() -> Registration:
    T, Z, H, W = 3, 2, 2, 3
    rng = np.random.default_rng(0)
    centres = np.stack(np.meshgrid([8.0, 24.0], [8.0, 24.0, 40.0], indexing="ij"), axis=-1)
    return Registration(
        np.zeros((T, Z, 2)),
        np.ones((T, Z)),
        np.zeros((Z, 32, 48), np.float32),
        block_shifts=rng.normal(size=(T, Z, H, W, 2)),
        block_centers=centres,
        block_correlation=np.ones((T, Z, H, W)),
        block_flags=rng.integers(0, 4, size=(T, Z, H, W)).astype(np.int8),
    )


def test_every_plane_and_one_plane(piecewise):
    vec = block_vectors(piecewise)
    assert vec.data.shape == (3 * 2 * 6, 2, 4)
    # the vector of time 2, plane 1, block (1, 2)
    at = np.flatnonzero(
        (vec.data[:, 0, 0] == 2)
        & (vec.data[:, 0, 1] == 1)
        & (vec.data[:, 0, 2] == 24)
        & (vec.data[:, 0, 3] == 40)
    )
    assert at.size == 1
    np.testing.assert_array_equal(vec.data[at[0], 1], [0, 0, *piecewise.block_shifts[2, 1, 1, 2]])
    assert vec.flags[at[0]] == piecewise.block_flags[2, 1, 1, 2]
    one = block_vectors(piecewise, plane=1, rows_per_time=2)
    assert one.data.shape == (6 * 6, 2, 3)
    rows = one.data[:, 0, 0]
    for row in range(6):  # rows 2t and 2t + 1 show time t
        np.testing.assert_array_equal(
            one.data[rows == row, 1, 1:], piecewise.block_shifts[row // 2, 1].reshape(-1, 2)
        )
    with pytest.raises(SelectionError, match="plane 2 does not exist"):
        block_vectors(piecewise, plane=2)


@pytest.mark.parametrize("plane", [None, 0])
def test_a_sample_axis_repeats_each_vector_on_every_sample(piecewise, plane):
    vec = block_vectors(piecewise, plane=plane, samples=3)
    D = 5 if plane is None else 4
    assert vec.data.shape == (3 * (2 if plane is None else 1) * 3 * 6, 2, D)
    assert vec.flags.shape == vec.length.shape == (len(vec.data),)
    sample = vec.data[:, 0, D - 3]
    assert sorted(set(sample)) == [0, 1, 2]
    without = block_vectors(piecewise, plane=plane)
    keep = [k for k in range(D) if k != D - 3]
    for s in range(3):  # each sample: the field without a sample axis, vector for vector
        np.testing.assert_array_equal(vec.data[sample == s][:, :, keep], without.data)
        np.testing.assert_array_equal(vec.flags[sample == s], without.flags)
    assert np.all(vec.data[:, 1, : D - 2] == 0)  # no motion along t, z or sample
