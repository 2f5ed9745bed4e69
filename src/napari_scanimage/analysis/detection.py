"""Automatic ROI detection: active cells found from summary images of the recording.

One pass over the frames (bounded memory, as in :mod:`.qc`) builds, per plane, the mean and
max images and a local-correlation image of the *filtered* movie: frames binned in time
(about half a calcium decay per bin), their slow baseline removed (a running exponential
average, carried from block to block), and broad spatial structure — neuropil, background —
subtracted.  Pixels of a cell that fires then rise and fall together while their neighbours
outside it do not, so the correlation image is bright on active cells and dark elsewhere.
With a registration the frames are read with whole-pixel shifts, and only the part of the
frame that every registered frame fills enters the filtered movie (:func:`valid_margin`):
the strips brought in empty flicker together.  A plane whose correlation is high almost
everywhere (smooth signal, little noise) is segmented on Fisher's z of it.

Seeds are peaks of that image (scikit-image ``peak_local_max``); footprints are grown from
them by watershed and cut at a fraction of each peak's height; ROIs of implausible size (from
``diameter_px``, estimated from the image by scale-space blob response when not given) or
shape are dropped.  Each ROI keeps its ``area`` (pixels), ``score`` (its correlation peak)
and ``compactness`` (4π·area / perimeter², 1 for a disc) as features.  The result depends
only on the input: no random numbers, no thread timing.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
from scipy import ndimage, signal

from ..errors import SelectionError
from ._progress import drive
from .colours import palette
from .qc import Moments
from .shapes import Roi

if TYPE_CHECKING:
    from .._core.dataset import Dataset
    from .._core.layout import SliceSample
    from .registration import Registration
    from .rois import RoiSet

__all__ = [
    "DetectionImages",
    "detect_rois",
    "estimate_diameter",
    "iter_detect_rois",
    "segment",
    "valid_margin",
]

BLOCK_BYTES = 32 << 20
# A cell's local correlation falls towards its edge (edge pixels have neighbours outside), so
# its blob responds at a scale about a fifth smaller than its outline (measured on the cells
# of testing.cells, 8–14 px).
EDGE_FACTOR = 1.2
# A plane whose median local correlation exceeds this is segmented on Fisher's z of it
# (generated cell movies: about 0; the bundled sample, nearly free of noise: 0.85–0.93).
SATURATED = 0.5
R_MAX = 1 - 1e-6
_F32 = npt.NDArray[np.float32]
_F64 = npt.NDArray[np.float64]


@dataclass(frozen=True)
class DetectionImages:
    """Summary images of one pass (each float32 (Z, Y, X)): ``mean``, ``max`` and the local
    correlation of the filtered movie (``correlation``); ``margin``: rows and columns along
    the (top, bottom, left, right) edges left out of the correlation (0 there): registered
    frames are empty there part of the time.
    """

    mean: _F32
    max: _F32
    correlation: _F32
    margin: tuple[int, int, int, int] = (0, 0, 0, 0)


def _bin_size(dataset: Dataset, tau_s: float) -> int:
    rate = float(dataset.info.volume_rate or 0.0)
    return max(1, int(round(rate * tau_s / 2))) if rate > 0 else 1


def iter_detection_images(
    dataset: Dataset,
    *,
    channel: int | str = 0,
    registration: Registration | None = None,
    tau_s: float = 1.0,
    baseline_s: float = 10.0,
    neuropil_px: int = 41,
) -> Generator[tuple[int, int], None, DetectionImages]:
    """Generator: yields (blocks done, blocks); returns the :class:`DetectionImages`."""
    info = dataset.info
    if info.frame_shape is None:  # set for every opened recording
        raise SelectionError("the frame shape of the recording is unknown")
    Z, (Y, X) = info.num_planes, info.frame_shape
    sample: SliceSample = "mean" if info.frames_per_slice > 1 else 0
    n_rows = dataset.selection(channel, slice_sample=sample).num_times(dataset.layout)
    if n_rows < 2:
        raise SelectionError(f"detection needs a movie; the recording has {n_rows} frame(s)")
    # Registered frames bring in 0 along the edges, a strip whose width changes from frame to
    # frame: those pixels flicker together (bright bands in the correlation image, and the
    # local means subtracted for neuropil drop within neuropil_px of them).  The filtered
    # movie is therefore the part of the frame that every registered frame fills.
    top, bottom, left, right = valid_margin(registration)
    if top + bottom >= Y - 8 or left + right >= X - 8:
        raise SelectionError(
            f"the registration moves frames so far (edges empty by {top}, {bottom}, {left}, "
            f"{right} px) that little of the {Y}×{X} frame is filled in every registered "
            "frame; register with a smaller max_shift"
        )
    inner = (slice(None), slice(None), slice(top, Y - bottom), slice(left, X - right))
    mode = None if registration is None else "integer"
    k = min(_bin_size(dataset, tau_s), max(1, n_rows // 20))
    per_block = max(k, (BLOCK_BYTES // (Z * Y * X * 8)) // k * k)
    starts = list(range(0, n_rows, per_block))
    rate = float(info.volume_rate or 1.0)
    alpha = 1.0 - np.exp(-k / max(baseline_s * rate, 1.0))  # EMA weight per binned frame
    total = np.zeros((Z, Y, X))
    brightest = np.full((Z, Y, X), -np.inf)
    moments = Moments((Z, Y - top - bottom, X - left - right))  # of the filtered, binned frames
    state: _F64 | None = None
    yield 0, len(starts)
    for b, start in enumerate(starts):
        rows = list(range(start, min(start + per_block, n_rows)))
        # whole-pixel shifts: interpolating fractional ones mixes neighbouring pixels, by an
        # amount that changes from frame to frame, which raises every local correlation
        block = dataset.read(
            channel, slice_sample=sample, times=rows, registration=registration, shift_mode=mode
        )
        block = np.asarray(block, np.float64).reshape(len(rows), Z, Y, X)
        total += block.sum(axis=0)
        np.maximum(brightest, block.max(axis=0), out=brightest)
        n = len(rows) // k * k
        if n:
            sums = block[:n].reshape(n // k, k, Z, Y, X).mean(axis=1)[inner]
            if state is None:
                state = sums[0].copy()
            zi = ((1 - alpha) * state)[None]
            base, _ = signal.lfilter([alpha], [1, alpha - 1], sums, axis=0, zi=zi)
            state = base[-1]
            hp = sums - base
            if neuropil_px > 1:
                hp -= ndimage.uniform_filter(hp, size=(1, 1, neuropil_px, neuropil_px))
            moments.add(hp)
        yield b + 1, len(starts)
    corr = np.zeros((Z, Y, X), np.float32)
    corr[inner[1:]] = moments.images()["local correlation"]
    mean = (total / n_rows).astype(np.float32)
    return DetectionImages(mean, brightest.astype(np.float32), corr, (top, bottom, left, right))


def estimate_diameter(image: npt.ArrayLike, *, low: float = 4.0, high: float = 40.0) -> float:
    """Typical cell diameter (pixels) from a correlation image: at each of its strongest
    peaks the scale whose normalised Laplacian-of-Gaussian response is largest (a disc of
    diameter d responds most at σ = d / (2√2)); the median over the peaks, × EDGE_FACTOR.
    """
    from skimage.feature import peak_local_max

    img = np.asarray(image, np.float64)
    diameters = np.geomspace(low, high, 16)
    sigmas = diameters / (2 * np.sqrt(2))
    stack = np.stack([-(s**2) * ndimage.gaussian_laplace(img, s) for s in sigmas])
    best = stack.max(axis=0)
    peaks = peak_local_max(  # type: ignore[no-untyped-call]
        best, min_distance=int(low), num_peaks=50, exclude_border=False
    )
    if len(peaks) == 0:
        return float(np.sqrt(low * high))
    strength = best[peaks[:, 0], peaks[:, 1]]
    peaks = peaks[strength >= 0.5 * strength.max()]  # blobs, not the texture of noise
    scale = stack[:, peaks[:, 0], peaks[:, 1]].argmax(axis=0)
    return float(np.median(diameters[scale])) * EDGE_FACTOR


def segment(
    correlation: npt.ArrayLike,
    diameter_px: float,
    *,
    threshold: float = 3.0,
    cut: float = 0.5,
    min_compactness: float = 0.6,
    min_contrast: float = 0.3,
    margin: int = 0,
    edges: tuple[int, int, int, int] | None = None,
) -> list[tuple[npt.NDArray[np.bool_], dict[str, float]]]:
    """Cells of one plane's correlation image: [(mask (Y, X), features)], best first.

    Seeds are peaks of the (lightly smoothed) image's white top-hat that stand ``threshold``
    robust standard deviations above its median and at least ``min_contrast`` above their
    surroundings (in units of correlation); each footprint is the seed's watershed basin
    where the image exceeds ``cut`` of the way from the background to the peak; areas
    outside 0.3–2× a disc of ``diameter_px`` and compactness below ``min_compactness`` are
    dropped, and so are seeds within half a diameter (plus ``margin``) of the frame's edge,
    or within ``edges`` (top, bottom, left, right) pixels of it when given.
    """
    from skimage.feature import peak_local_max
    from skimage.measure import regionprops
    from skimage.segmentation import watershed

    raw = np.asarray(correlation, np.float64)
    smooth = ndimage.gaussian_filter(raw, diameter_px / 8)
    # what stands out of its surroundings (a white top-hat): neuropil and background raise
    # the correlation broadly, cells locally; footprints are cut on the unsmoothed image
    ground = ndimage.grey_opening(smooth, size=int(1.5 * diameter_px) | 1)
    img, sharp = smooth - ground, raw - ground
    background = float(np.median(img))
    spread = 1.4826 * float(np.median(np.abs(img - background))) or 1e-6
    floor = max(background + threshold * spread, min_contrast)
    # (scikit-image's functions carry no annotations)
    seeds = peak_local_max(  # type: ignore[no-untyped-call]
        img, min_distance=max(2, int(diameter_px / 3)), threshold_abs=floor, exclude_border=False
    )
    # a cell centred within half a diameter of the frame's edge lies mostly outside it; and
    # content moving across the edges makes their pixels flicker together
    edge = int(np.ceil(diameter_px / 2)) + margin
    top, bottom, left, right = (edge,) * 4 if edges is None else edges
    Y, X = img.shape
    inner = (seeds[:, 0] >= top) & (seeds[:, 0] < Y - bottom)
    seeds = seeds[inner & (seeds[:, 1] >= left) & (seeds[:, 1] < X - right)]
    markers = np.zeros(img.shape, np.int32)
    markers[seeds[:, 0], seeds[:, 1]] = np.arange(1, len(seeds) + 1)
    basins = watershed(  # type: ignore[no-untyped-call]
        -img, markers, mask=img > background + 2 * spread
    )
    disc = np.pi * (diameter_px / 2) ** 2
    found = []
    for k, (sy, sx) in enumerate(seeds, start=1):
        peak = img[sy, sx]
        region = (basins == k) & (sharp >= background + cut * (peak - background))
        lab, _ = ndimage.label(region)
        mask = ndimage.binary_fill_holes(lab == lab[sy, sx])
        area = float(mask.sum())
        if not 0.3 * disc <= area <= 2.0 * disc:
            continue
        props = regionprops(mask.astype(np.uint8))[0]  # type: ignore[no-untyped-call]
        compact = float(4 * np.pi * area / max(props.perimeter, 1.0) ** 2)
        if compact < min_compactness:
            continue
        found.append((mask, {"area": area, "score": float(peak), "compactness": compact}))
    found.sort(key=lambda f: -f[1]["score"])
    return found


def valid_margin(registration: Registration | None) -> tuple[int, int, int, int]:
    """Rows and columns along the (top, bottom, left, right) edges of the frame that a
    registration's frames leave empty (0) in some plane and time row.

    Registered pixel (y, x) reads the frame at (y, x) + d(y, x) (see :mod:`.registration`),
    outside the frame for the first rows where d_y < -y, and so on.  Rigid: d is the shift
    (the bidirectional phase moves odd rows along x as well).  Piecewise: the block residuals,
    interpolated by their spline, are added on bands along the edges (wide enough for the
    largest displacement found on the edge itself), so no whole field is built.
    """
    if registration is None:
        return 0, 0, 0, 0
    rigid = np.asarray(registration.shifts, np.float64)
    rigid = np.where(np.isfinite(rigid), rigid, 0.0)  # (T, Z, 2)
    if not rigid.size:
        return 0, 0, 0, 0
    bidi = abs(float(getattr(registration, "bidi_phase", 0.0) or 0.0))
    blocks = getattr(registration, "block_shifts", None)
    centres = getattr(registration, "block_centers", None)
    if blocks is None or centres is None:
        dy, dx = rigid[..., 0], rigid[..., 1]
        sides = (-dy.min(), dy.max(), -dx.min() + bidi, dx.max() + bidi)
        return tuple(int(np.ceil(max(0.0, v))) for v in sides)  # type: ignore[return-value]
    from .._core.warping import spline_weights

    Y, X = registration.frame_shape
    c = np.asarray(centres, np.float64)
    wy, wx = spline_weights(c[:, 0, 0], Y), spline_weights(c[0, :, 1], X)
    b = np.asarray(blocks, np.float64)
    b = np.where(np.isfinite(b), b, 0.0)  # (T, Z, NBY, NBX, 2)
    # the displacement on the frame's edges bounds how deep the empty strip reaches
    edge_y = np.einsum("ri,tzijc,xj->tzrxc", wy[[0, -1]], b, wx) + rigid[:, :, None, None]
    edge_x = np.einsum("yi,tzijc,rj->tzyrc", wy, b, wx[[0, -1]]) + rigid[:, :, None, None]
    reach = int(np.ceil(max(np.abs(edge_y).max(), np.abs(edge_x).max()) + bidi)) + 2
    by, bx = min(reach, Y), min(reach, X)
    out = []
    for axis, n, w_in, w_across, k in ((0, Y, wy, wx, by), (1, X, wx, wy, bx)):
        for far in (False, True):
            idx = np.arange(n - k, n) if far else np.arange(k)
            if axis == 0:
                f = np.einsum("ri,tzij,xj->tzrx", w_in[idx], b[..., 0], w_across)
            else:
                f = np.einsum("yi,tzij,rj->tzry", w_across, b[..., 1], w_in[idx])
            d = f + rigid[:, :, axis, None, None]
            d = d + (bidi if axis == 1 else 0.0) * (1 if far else -1)
            pos = idx[None, None, :, None] + d  # where each pixel reads the frame
            bad = (pos > n - 1) if far else (pos < 0)
            hit = bad.any(axis=(0, 1, 3))
            out.append(
                int(k - np.argmax(hit) if far else np.flatnonzero(hit).max() + 1)
                if hit.any()
                else 0
            )
    return out[0], out[1], out[2], out[3]


def iter_detect_rois(
    dataset: Dataset,
    *,
    channel: int | str = 0,
    plane: int | Sequence[int] | None = None,
    registration: Registration | None = None,
    diameter_px: float | None = None,
    tau_s: float = 1.0,
    threshold: float = 3.0,
    neuropil_px: int | None = None,
) -> Generator[tuple[int, int], None, RoiSet]:
    """Generator form of :func:`detect_rois`: yields (blocks done, blocks), returns RoiSet."""
    from .rois import RoiSet

    Z = dataset.info.num_planes
    planes = list(range(Z)) if plane is None else [plane] if isinstance(plane, int) else plane
    for z in planes:
        if not 0 <= int(z) < Z:
            raise SelectionError(f"plane {z} does not exist: the recording has {Z} plane(s)")
    if diameter_px is not None and not 3 <= diameter_px <= 200:
        raise SelectionError(f"diameter {diameter_px} px: give 3 to 200 pixels, or none")
    if neuropil_px is None:
        neuropil_px = max(41, int(4 * diameter_px) | 1) if diameter_px else 41
    images = yield from iter_detection_images(
        dataset,
        channel=channel,
        registration=registration,
        tau_s=tau_s,
        neuropil_px=neuropil_px,
    )
    found: list[tuple[int, npt.NDArray[np.bool_], dict[str, float]]] = []
    Y, X = images.correlation.shape[1:]
    top, bottom, left, right = images.margin
    filled = (slice(top, Y - bottom), slice(left, X - right))
    for z in planes:
        # only the part of the frame that every (registered) frame fills
        corr = images.correlation[int(z)][filled]
        if np.median(corr) > SATURATED:
            # neighbours correlate almost everywhere (smooth signal, little noise): near 1 the
            # contrast of cells is squeezed; Fisher's z (arctanh) gives it back
            corr = np.arctanh(np.clip(corr, -R_MAX, R_MAX))
        d = float(diameter_px) if diameter_px else estimate_diameter(corr)
        # seeds half a diameter from the frame's edges (a cell there lies mostly outside
        # it), and at least a pixel from the strips left out
        half = int(np.ceil(d / 2))
        edges = tuple(max(half - e, 1 if e else half) for e in images.margin)
        for inner, f in segment(corr, d, threshold=threshold, edges=edges):  # type: ignore[arg-type]
            mask = np.zeros((Y, X), bool)
            mask[filled] = inner
            found.append((int(z), mask, {**f, "diameter": d}))
    found.sort(key=lambda f: -f[2]["score"])  # (stable: plane order among equal scores)
    colours = palette(len(found))
    rois = [
        Roi(f"cell {k + 1}", "mask", plane=z if Z > 1 else None, colour=colours[k], mask=m,
            features=f)
        for k, (z, m, f) in enumerate(found)
    ]  # fmt: skip
    return RoiSet(
        rois, frame_shape=dataset.info.frame_shape, num_planes=Z, source=str(dataset.paths[0])
    )


def detect_rois(
    dataset: Dataset,
    *,
    channel: int | str = 0,
    plane: int | Sequence[int] | None = None,
    registration: Registration | None = None,
    diameter_px: float | None = None,
    tau_s: float = 1.0,
    threshold: float = 3.0,
    neuropil_px: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> RoiSet:
    """Find active cells in a recording: a :class:`~.rois.RoiSet` of mask ROIs, best first.

    Parameters
    ----------
    dataset : Dataset
        The recording.
    channel : int or str
        Channel to detect on.
    plane : int or list of int, optional
        Planes to search (default all); each ROI belongs to the plane it was found on.
    registration : Registration, optional
        Motion registration: detection on the registered frames (on moving data detection
        without one finds blurred or doubled cells), shifted by whole pixels; no cell is
        found in the strips along the edges that some registered frame leaves empty.
    diameter_px : float, optional
        Typical cell diameter in pixels; estimated from the data when not given.
    tau_s : float
        Decay time of the calcium indicator (s): frames are binned over about half of it.
    threshold : float
        How far (robust standard deviations of the correlation image) a seed stands out.
    neuropil_px : int, optional
        Width (pixels) of the local mean subtracted from each binned frame — neuropil and
        background; default 4 × ``diameter_px``, at least 41; 0: none.
    progress : callable(done, total), optional

    Returns
    -------
    RoiSet
        Named "cell 1", "cell 2", … by decreasing score, in palette colours; features
        ``area`` (px), ``score`` (peak local correlation above its surroundings; in Fisher's
        z on planes segmented on it), ``compactness`` and ``diameter`` (the diameter used).
    """
    gen = iter_detect_rois(
        dataset,
        channel=channel,
        plane=plane,
        registration=registration,
        diameter_px=diameter_px,
        tau_s=tau_s,
        threshold=threshold,
        neuropil_px=neuropil_px,
    )
    return drive(gen, progress)
