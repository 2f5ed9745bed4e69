"""Piecewise-rigid motion: the residual shift of each block of a frame after its rigid shift.

Method
------
The frame is cut into a regular grid of overlapping blocks (:func:`block_grid`), each moved
by the frame's rigid shift rounded to whole pixels (so the residual stays small).  All blocks
of many frames go through one batched phase correlation (:class:`~._phasecorr.Correlator`,
each block against the same block of the reference: whitened cross-power spectrum, Gaussian
smoothing, only offsets within ``max_shift`` transformed back).  A block whose correlation map
has no clear peak (its peak below ``SNR_THRESHOLD`` × the highest value more than 2 px away
from it) borrows from its neighbours: its map is replaced by the weighted mean of the maps of
the 3 × 3 blocks around it, then of the 5 × 5; if that still has no clear peak, the block is
flagged and takes the rigid shift (residual 0).  The peak is refined to subpixel precision
(3-point Gaussian fit) and corrected by the block reference's own bias calibration.

The reference is the rigid one, sharpened (:func:`refine_reference`): frames registered
rigidly still differ by their non-rigid motion, which blurs their mean; moving them by their
fields first gives a sharp reference, at the frames' mean position.

Block size
----------
``block_size=None`` gives 128 × 128 px blocks (as suite2p) on frames of 256 px or more along an
axis; on smaller frames half the frame (at least ``MIN_BLOCK`` px), so that a 128-px frame
still gets a 3 × 3 grid.  Along an axis of length L with blocks of b px there are
``ceil(L / b) + 1`` blocks spread evenly from edge to edge (neighbours overlap by about a
quarter of a block), one when b = L.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from .._core.warping import block_field, warp_frames
from ..errors import SelectionError
from ._phasecorr import Correlator, find_peaks, run_batches

__all__ = [
    "DEFAULT_BLOCK",
    "MIN_BLOCK",
    "SNR_THRESHOLD",
    "BlockCorrelator",
    "block_grid",
    "block_size_for",
    "refine_reference",
]

DEFAULT_BLOCK = 128
MIN_BLOCK = 16
SNR_THRESHOLD = 1.2  # a peak this much above the rest of its map is trusted as it is
_F64 = npt.NDArray[np.float64]


def block_size_for(
    frame_shape: Sequence[int], block_size: int | Sequence[int] | None
) -> tuple[int, int]:
    """Block (height, width) for frames of ``frame_shape`` (see the module docstring).

    Raises
    ------
    SelectionError
        A block side is not an integer of ``MIN_BLOCK`` px or more, or exceeds the frame.
    """
    Y, X = (int(n) for n in frame_shape)
    if min(Y, X) < MIN_BLOCK:
        raise SelectionError(
            f"frames of {Y}×{X} pixels are too small for piecewise registration (blocks need "
            f"at least {MIN_BLOCK}×{MIN_BLOCK}); use rigid registration (piecewise=False)"
        )
    if block_size is None:
        return tuple(  # type: ignore[return-value]
            DEFAULT_BLOCK if n >= 2 * DEFAULT_BLOCK else max(MIN_BLOCK, n // 2) for n in (Y, X)
        )
    given: tuple[object, ...] = (
        (block_size, block_size) if np.ndim(block_size) == 0 else tuple(block_size)  # type: ignore[arg-type]
    )
    try:
        sides = tuple(int(v) for v in given)  # type: ignore[call-overload]
        exact = all(float(v) == int(v) for v in given)  # type: ignore[arg-type, call-overload]
    except (TypeError, ValueError):
        sides, exact = (), False
    if len(sides) != 2 or not exact:
        raise SelectionError(
            f"block_size must be an integer or (height, width) in pixels, got {block_size!r}"
        )
    for side, n, name in zip(sides, (Y, X), ("height", "width"), strict=True):
        if side < MIN_BLOCK or side > n:
            raise SelectionError(
                f"block {name} {side} px does not fit frames of {Y}×{X} pixels; give "
                f"{MIN_BLOCK}–{n} px (or None for {DEFAULT_BLOCK} px, less on small frames)"
            )
    return sides[0], sides[1]


def block_grid(length: int, block: int) -> npt.NDArray[np.int64]:
    """First pixel of each block along an axis of ``length`` pixels (see the module docstring)."""
    if block >= length:
        return np.zeros(1, np.int64)
    k = math.ceil(length / block) + 1
    return np.round(np.linspace(0, length - block, k)).astype(np.int64)


def _neighbour_mean(maps: np.ndarray) -> np.ndarray:
    """Maps (n, NBY, NBX, w, w) averaged over each block's 3 × 3 neighbourhood of blocks
    (weights 1, ½ at the sides, ¼ at the corners; blocks off the grid left out).
    """
    n, H, W = maps.shape[:3]
    padded = np.zeros((n, H + 2, W + 2, *maps.shape[3:]), np.float32)
    padded[:, 1:-1, 1:-1] = maps
    ones = np.zeros((H + 2, W + 2), np.float32)
    ones[1:-1, 1:-1] = 1
    total = np.zeros_like(maps, dtype=np.float32)
    weight = np.zeros((H, W), np.float32)
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            w = np.float32(0.5 ** (abs(dy) + abs(dx)))
            total += w * padded[:, 1 + dy : H + 1 + dy, 1 + dx : W + 1 + dx]
            weight += w * ones[1 + dy : H + 1 + dy, 1 + dx : W + 1 + dx]
    total /= weight[None, :, :, None, None]
    return total


def _snr(maps: np.ndarray) -> npt.NDArray[np.float32]:
    """Peak (within ±m) over the highest value more than 2 px from it, for maps (k, w, w)."""
    k, w = maps.shape[0], maps.shape[1]
    inner = maps[:, 1:-1, 1:-1].reshape(k, -1)
    iy, ix = np.divmod(inner.argmax(axis=1), w - 2)
    peak = inner.max(axis=1)
    yy = np.arange(w)[None, :, None] - (iy + 1)[:, None, None]
    xx = np.arange(w)[None, None, :] - (ix + 1)[:, None, None]
    far = (np.abs(yy) > 2) | (np.abs(xx) > 2)
    rest = np.where(far, maps, -np.inf).max(axis=(1, 2))
    tiny = np.float32(1e-6)
    out: npt.NDArray[np.float32] = np.where(
        peak <= 0, 0, peak / np.maximum(rest, tiny * np.maximum(peak, tiny))
    ).astype(np.float32)
    return out


class BlockCorrelator:
    """The blocks of one reference image, ready to correlate blocks of frames against.

    Parameters
    ----------
    reference : (Y, X) array
    block : (int, int)
        Block height and width (see :func:`block_size_for`).
    max_shift : int
        Largest residual |dy|, |dx| searched per block, pixels.
    sigma : float
        Gaussian smoothing of the correlation, pixels.
    calibrate : bool
        Measure each block reference's bias (see :class:`~._phasecorr.Correlator`).
    """

    def __init__(
        self,
        reference: npt.ArrayLike,
        block: tuple[int, int],
        max_shift: int,
        sigma: float,
        calibrate: bool = True,
    ) -> None:
        ref = np.asarray(reference, np.float32)
        self.shape = ref.shape
        self.block = by, bx = block
        self.starts_y = block_grid(ref.shape[0], by)
        self.starts_x = block_grid(ref.shape[1], bx)
        self.correlators = [
            Correlator(ref[y : y + by, x : x + bx], max_shift, sigma, calibrate)
            for y in self.starts_y.tolist()
            for x in self.starts_x.tolist()
        ]
        self.ref_spec = np.stack([c.ref_spec for c in self.correlators])
        self.max_shift = self.correlators[0].max_shift
        centres = np.empty((len(self.starts_y), len(self.starts_x), 2))
        centres[..., 0] = (self.starts_y + (by - 1) / 2)[:, None]
        centres[..., 1] = (self.starts_x + (bx - 1) / 2)[None, :]
        self.centres = centres

    @property
    def grid(self) -> tuple[int, int]:
        """Blocks (NBY, NBX)."""
        return len(self.starts_y), len(self.starts_x)

    def _blocks(self, frames: np.ndarray, whole: npt.NDArray[np.int64]) -> np.ndarray:
        """Blocks (n, NBY, NBX, by, bx) cut at the grid moved by ``whole`` (n, 2).

        Blocks at the frame's edge moved outwards take the edge pixels repeated (within the
        taper, where they weigh little): clamping them inside instead would leave them a
        residual as large as the rigid shift, beyond the blocks' search range.
        """
        by, bx = self.block
        pad = int(np.abs(whole).max()) if whole.size else 0
        if pad:
            frames = np.pad(frames, ((0, 0), (pad, pad), (pad, pad)), mode="edge")
        oy = self.starts_y[None, :] + whole[:, :1] + pad  # (n, NBY)
        ox = self.starts_x[None, :] + whole[:, 1:] + pad  # (n, NBX)
        windows = np.lib.stride_tricks.sliding_window_view(frames, (by, bx), axis=(1, 2))
        n = len(frames)
        blocks: np.ndarray = windows[np.arange(n)[:, None, None], oy[:, :, None], ox[:, None, :]]
        return blocks

    def _estimate(
        self, frames: np.ndarray, rigid: _F64, subpixel: bool
    ) -> tuple[_F64, _F64, npt.NDArray[np.int8]]:
        n = len(frames)
        H, W = self.grid
        whole = np.round(rigid).astype(np.int64)
        blocks = self._blocks(frames, whole)
        flat = blocks.reshape(n * H * W, *self.block)
        maps = self.correlators[0].correlate(flat, ref_spec=self.ref_spec)
        maps = maps.reshape(n, H, W, *maps.shape[1:])
        w = maps.shape[-1]
        snr = _snr(maps.reshape(-1, w, w)).reshape(n, H, W)
        flags = np.where(snr >= SNR_THRESHOLD, 0, 3).astype(np.int8)
        chosen = maps.copy()
        wider = maps
        for level in (1, 2):  # borrow from neighbours where the block alone is unclear
            if not (flags == 3).any():
                break
            wider = _neighbour_mean(wider)
            ok = (flags == 3) & (_snr(wider.reshape(-1, w, w)).reshape(n, H, W) >= SNR_THRESHOLD)
            chosen[ok] = wider[ok]
            flags[ok] = level
        shifts, _ = find_peaks(chosen.reshape(-1, w, w), subpixel)
        _, peak = find_peaks(maps.reshape(-1, w, w), subpixel)
        shifts = shifts.reshape(n, H * W, 2)
        if subpixel:
            for b, corr in enumerate(self.correlators):
                if corr.calibration is not None:
                    shifts[:, b] = corr.unbias(shifts[:, b].copy())
        m = self.max_shift
        np.clip(shifts, -m, m, out=shifts)
        residual = shifts.reshape(n, H, W, 2) + (whole - rigid)[:, None, None, :]
        residual[flags == 3] = 0.0  # no clear peak even with neighbours: the rigid shift
        return residual, peak.reshape(n, H, W), flags

    def estimate(
        self, frames: npt.ArrayLike, rigid: npt.ArrayLike, subpixel: bool = True, workers: int = -1
    ) -> tuple[_F64, _F64, npt.NDArray[np.int8]]:
        """Residual block shifts of frames (n, Y, X) after their rigid shifts (n, 2).

        Returns
        -------
        residual : float64 (n, NBY, NBX, 2)
            (dy, dx) of each block minus the frame's rigid shift (0 for flagged blocks).
        peak : float64 (n, NBY, NBX)
            Height of each block's own correlation peak.
        flags : int8 (n, NBY, NBX)
            0: the block's own peak; 1: its 3 × 3 neighbourhood's; 2: its 5 × 5
            neighbourhood's; 3: no clear peak, the rigid shift is used.
        """
        frames = np.asarray(frames)
        rigid = np.asarray(rigid, np.float64).reshape(-1, 2)
        n = len(frames)
        H, W = self.grid
        if n == 0:
            return np.zeros((0, H, W, 2)), np.zeros((0, H, W)), np.zeros((0, H, W), np.int8)
        by, bx = self.block
        per_frame = H * W * by * (bx // 2 + 1) * 8
        parts = run_batches(
            lambda s: self._estimate(frames[s], rigid[s], subpixel), n, per_frame, workers
        )
        return (
            np.concatenate([p[0] for p in parts]),
            np.concatenate([p[1] for p in parts]),
            np.concatenate([p[2] for p in parts]),
        )


def _coverage(field: np.ndarray) -> np.ndarray:
    """Weight of in-frame pixels in the bilinear sample of each pixel moved by ``field``
    (n, 2, Y, X) (what moving an image of ones gives), (n, Y, X).
    """
    out = None
    for axis in (0, 1):
        n = field.shape[2 + axis]
        grid = np.arange(n, dtype=np.float32).reshape((-1, 1) if axis == 0 else (1, -1))
        at = grid + field[:, axis]
        low = np.floor(at)
        frac = at - low
        cover = np.where((low >= 0) & (low < n), 1 - frac, 0) + np.where(
            (low >= -1) & (low < n - 1), frac, 0
        )
        out = cover if out is None else out * cover
    assert out is not None
    return out


def refine_reference(
    frames: npt.ArrayLike,
    reference: npt.ArrayLike,
    block: tuple[int, int],
    block_shift: int,
    max_shift: int,
    sigma: float,
    *,
    keep: int = 32,
    workers: int = -1,
) -> npt.NDArray[np.float32]:
    """A sharper reference (Y, X) float32: the ``keep`` frames (of frames (N, Y, X)) that
    correlate best with the rigid ``reference``, each moved back by its displacement field
    relative to the mean field of those frames (bilinear; each pixel averaged over the frames
    that cover it).
    """
    frames = np.asarray(frames)
    ref = np.asarray(reference, np.float32)
    Y, X = ref.shape
    rigid, peak = Correlator(ref, max_shift, sigma, calibrate=False).estimate(frames, True, workers)
    chosen = np.sort(np.argsort(-peak, kind="stable")[: max(1, min(keep, len(frames)))])
    grid = BlockCorrelator(ref, block, block_shift, sigma, calibrate=False)
    residual, _, _ = grid.estimate(frames[chosen], rigid[chosen], True, workers)
    fields = block_field(residual, grid.centres, (Y, X))  # (n, 2, Y, X)
    fields += rigid[chosen][:, :, None, None].astype(np.float32)
    fields -= fields.mean(axis=0, dtype=np.float64).astype(np.float32)[None]
    total = np.zeros((Y, X))
    count = np.zeros((Y, X))
    for s in range(0, len(chosen), 16):
        part = fields[s : s + 16]
        moved = warp_frames(frames[chosen[s : s + 16], None, None], part[:, None], "bilinear")
        total += moved.sum(axis=(0, 1, 2), dtype=np.float64)
        count += _coverage(part).sum(axis=0, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(count > 0.5, total / count, ref)
    return out.astype(np.float32)
