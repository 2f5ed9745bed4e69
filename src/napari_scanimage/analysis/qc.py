"""Summary images for checking motion registration: mean, max, standard deviation and local
correlation of each plane, over raw or registered frames, in one pass.

The local-correlation image gives each pixel the mean Pearson correlation of its time course with
its 8 neighbours': sharp cell outlines when the frames are aligned, blur when they wobble.
Running sums (first and second moments and the products with 4 neighbour offsets) are kept in
float64, so memory is a few images per plane whatever the recording's length.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from ..errors import SelectionError
from ._progress import drive

if TYPE_CHECKING:
    from .._core.dataset import Dataset
    from .._core.layout import SliceSample
    from .registration import Registration

__all__ = [
    "KINDS",
    "FrameFlags",
    "Moments",
    "flag_frames",
    "iter_summary_images",
    "summary_images",
]

KINDS = ("mean", "max", "std", "local correlation")
BLOCK_BYTES = 32 << 20
_OFFSETS = ((0, 1), (1, 0), (1, 1), (1, -1))  # the other 4 of the 8 neighbours are mirrors
_F64 = npt.NDArray[np.float64]
_Images = dict[str, npt.NDArray[np.float32]]


def _views(a: _F64, dy: int, dx: int) -> tuple[_F64, _F64]:
    """(a at p, a at p + (dy, dx)) over the pixels where both exist (last two axes)."""
    Y, X = a.shape[-2:]
    ys, yd = slice(0, Y - dy), slice(dy, Y)
    xs, xd = (slice(0, X - dx), slice(dx, X)) if dx >= 0 else (slice(-dx, X), slice(0, X + dx))
    return a[..., ys, xs], a[..., yd, xd]


class Moments:
    """Running sums of frames (Z, Y, X) from which :meth:`images` gives the summary images;
    memory is a few images whatever the number of frames added.
    """

    def __init__(self, shape: tuple[int, int, int]) -> None:
        self.n = 0
        self.s1 = np.zeros(shape)
        self.s2 = np.zeros(shape)
        self.mx = np.full(shape, -np.inf)
        self.cross = [np.zeros(_views(self.s1, dy, dx)[0].shape) for dy, dx in _OFFSETS]

    def add(self, block: npt.NDArray[np.number]) -> None:
        """block: (n, Z, Y, X)."""
        b = block.astype(np.float64, copy=False)
        self.n += len(b)
        self.s1 += b.sum(axis=0)
        self.s2 += np.einsum("tzyx,tzyx->zyx", b, b)
        np.maximum(self.mx, b.max(axis=0), out=self.mx)
        for acc, (dy, dx) in zip(self.cross, _OFFSETS, strict=True):
            p, q = _views(b, dy, dx)
            acc += np.einsum("tzyx,tzyx->zyx", p, q)

    def images(self) -> _Images:
        """The summary images (float32 (Z, Y, X) each) of the frames added so far."""
        n = max(self.n, 1)
        mean = self.s1 / n
        var = np.maximum(self.s2 / n - mean * mean, 0.0)
        std = np.sqrt(var)
        total = np.zeros_like(mean)
        count = np.zeros_like(mean)
        with np.errstate(invalid="ignore", divide="ignore"):
            for acc, (dy, dx) in zip(self.cross, _OFFSETS, strict=True):
                mp, mq = _views(mean, dy, dx)
                sp, sq = _views(std, dy, dx)
                r = np.where((sp > 0) & (sq > 0), (acc / n - mp * mq) / (sp * sq), 0.0)
                for side in _views(total, dy, dx):  # both pixels of the pair get r
                    side += r
                for side in _views(count, dy, dx):
                    side += 1
            corr = total / count
        return {
            "mean": mean.astype(np.float32),
            "max": self.mx.astype(np.float32),
            "std": std.astype(np.float32),
            "local correlation": np.nan_to_num(corr).astype(np.float32),
        }


def iter_summary_images(
    dataset: Dataset,
    *,
    channel: int | str = 0,
    registration: Registration | None = None,
    times: slice | Sequence[int] | None = None,
) -> Generator[tuple[int, int], None, _Images]:
    """Generator: yields (blocks done, blocks) and returns {kind: float32 (Z, Y, X)}.

    Frames are one per volume (the mean of the samples when there are several per slice);
    with ``registration`` they are read registered (see ``Dataset.read``).
    """
    info = dataset.info
    if info.frame_shape is None:  # set for every opened recording
        raise SelectionError("the frame shape of the recording is unknown")
    Z, (Y, X) = info.num_planes, info.frame_shape
    sample: SliceSample = "mean" if info.frames_per_slice > 1 else 0
    n_rows = dataset.selection(channel, slice_sample=sample).num_times(dataset.layout)
    rows = (
        np.arange(n_rows, dtype=np.int64)
        if times is None
        else np.arange(n_rows, dtype=np.int64)[times]
    )
    per_block = max(1, BLOCK_BYTES // (Z * Y * X * 8))
    chunks = [rows[i : i + per_block] for i in range(0, len(rows), per_block)]
    moments = Moments((Z, Y, X))
    yield 0, len(chunks)
    for k, chunk in enumerate(chunks):
        block = dataset.read(
            channel, slice_sample=sample, times=chunk.tolist(), registration=registration
        )
        moments.add(block.reshape(len(chunk), Z, Y, X))
        yield k + 1, len(chunks)
    return moments.images()


def summary_images(
    dataset: Dataset,
    *,
    channel: int | str = 0,
    registration: Registration | None = None,
    times: slice | Sequence[int] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> _Images:
    """Mean, max, std and local-correlation images (float32 (Z, Y, X) each) of one channel."""
    gen = iter_summary_images(dataset, channel=channel, registration=registration, times=times)
    return drive(gen, progress)


@dataclass(frozen=True)
class FrameFlags:
    """Frames of a registration worth a look (each bool (T, Z)).

    Attributes
    ----------
    at_bound : frames whose shift reached the search bound (``max_shift``): the true shift may
        be larger, or the estimate locked onto the edge of the search window.
    low_correlation : frames whose correlation with the reference is a low outlier (robust
        z-score below ``-z``, from the median and MAD of that plane).
    """

    at_bound: np.ndarray
    low_correlation: np.ndarray

    @property
    def any(self) -> np.ndarray:
        """Frames flagged for either reason."""
        return np.asarray(self.at_bound | self.low_correlation, bool)

    def summary(self) -> str:
        """A summary: "n frames at the shift bound, m with low correlation" (or "no frames
        flagged").
        """
        n_bound = int(self.at_bound.any(axis=1).sum())
        n_low = int(self.low_correlation.any(axis=1).sum())
        if not n_bound and not n_low:
            return "no frames flagged"
        return (
            f"{n_bound} frame(s) with a shift at the search bound, "
            f"{n_low} with an outlying low correlation"
        )


def flag_frames(
    shifts: np.ndarray,
    correlation: np.ndarray,
    max_shift: float | None,
    *,
    tolerance: float = 0.5,
    z: float = 3.5,
) -> FrameFlags:
    """Flag registration frames whose shift hit the search bound or whose correlation is a low
    outlier.

    Parameters
    ----------
    shifts : (T, Z, 2) shifts in pixels; correlation : (T, Z).
    max_shift : the search bound used (``Registration.settings["max_shift"]``); None: no bound
        check.
    tolerance : pixels: a shift within this of the bound counts as at the bound (subpixel
        refinement moves a peak on the edge by up to half a pixel).
    z : robust z-score (median / 1.4826 MAD of each plane) below which a correlation is an
        outlier; planes whose correlations barely vary (MAD 0) flag only drops of more than
        0.05 below the median.
    """
    shifts = np.asarray(shifts, np.float64)
    corr = np.asarray(correlation, np.float64)
    if max_shift is None or not np.isfinite(max_shift):
        at_bound = np.zeros(corr.shape, bool)
    else:
        at_bound = (np.abs(shifts) >= float(max_shift) - tolerance).any(axis=-1)
    # planes not registered (all NaN) have no median: they are never flagged
    scanned = np.isfinite(corr).any(axis=0, keepdims=True) if corr.size else corr.astype(bool)
    filled = np.where(scanned, corr, 0.0)
    with np.errstate(invalid="ignore"):
        median = np.nanmedian(filled, axis=0, keepdims=True) if corr.size else corr
        mad = (
            1.4826 * np.nanmedian(np.abs(filled - median), axis=0, keepdims=True)
            if corr.size
            else corr
        )
        spread = np.where(mad > 0, mad * z, 0.05)
        low = ((median - corr) > spread) & scanned
    return FrameFlags(
        at_bound=at_bound & np.isfinite(shifts).all(axis=-1),
        low_correlation=low & np.isfinite(corr),
    )
