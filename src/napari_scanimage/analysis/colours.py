"""ROI colours: a palette whose first ``n`` colours are as far apart as they can be.

palette
    The first ``n`` ROI colours ("#rrggbb"): the k-th ROI drawn gets the k-th.
next_colour
    The first palette colour not in use (a deleted ROI's colour is given out again).
lab_distance
    Perceptual distance (CIE76 ΔE) between two colours.
to_hex
    "#rrggbb" of an RGB(A) colour (as napari layers give them).
PALETTE
    The first 24 colours.

Distances are measured in CIELAB (scikit-image's ``rgb2lab``, D65), where equal distances
look about equally different.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import lru_cache

import numpy as np
import numpy.typing as npt
from skimage.color import deltaE_cie76, rgb2lab

__all__ = ["PALETTE", "lab_distance", "lab_of", "next_colour", "palette", "to_hex"]

#: The first colour (gold: visible on grey, green and magenta images alike).
FIRST = "#ffd700"
#: Candidates: bright (L* 55–92) and saturated (chroma ≥ 35) sRGB colours, so that outlines
#: stay visible on dark and grey images and on napari's dark theme.
_LIGHTNESS = (55.0, 92.0)
_MIN_CHROMA = 35.0
_TABLE_SIZE = 64


def _rgb(colour: str) -> npt.NDArray[np.float64]:
    h = colour.lstrip("#")
    return np.array([int(h[i : i + 2], 16) for i in (0, 2, 4)], np.float64) / 255


def lab_of(colours: Sequence[str]) -> npt.NDArray[np.float64]:
    """CIELAB (D65) of "#rrggbb" colours, shape (n, 3)."""
    rgb = np.array([_rgb(c) for c in colours], np.float64).reshape(-1, 3)
    return np.asarray(rgb2lab(rgb), np.float64)


def _delta_e(
    lab1: npt.NDArray[np.float64], lab2: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    """CIE76 ΔE of CIELAB colours, by scikit-image."""
    # scikit-image's colour functions carry no annotations
    out: npt.NDArray[np.float64] = deltaE_cie76(lab1, lab2)  # type: ignore[no-untyped-call]
    return out


def lab_distance(a: str, b: str) -> float:
    """Perceptual distance (CIE76 ΔE) between two "#rrggbb" colours.

    About 2 is just noticeable; above 20 the colours are clearly told apart.
    """
    lab = lab_of([a, b])
    return float(_delta_e(lab[0], lab[1]))


@lru_cache(maxsize=1)
def _palette_table() -> tuple[str, ...]:
    """Colours picked greedily, each the farthest (in CIELAB) from all those before it."""
    levels = np.linspace(0, 1, 12)
    grid = np.stack(np.meshgrid(levels, levels, levels, indexing="ij"), -1).reshape(-1, 3)
    lab = np.asarray(rgb2lab(grid), np.float64)
    chroma = np.hypot(lab[:, 1], lab[:, 2])  # greys would vanish on grey images
    keep = (lab[:, 0] >= _LIGHTNESS[0]) & (lab[:, 0] <= _LIGHTNESS[1]) & (chroma >= _MIN_CHROMA)
    grid, lab = grid[keep], lab[keep]
    first = int(np.argmin(np.linalg.norm(grid - _rgb(FIRST), axis=1)))
    chosen = [first]
    nearest = _delta_e(lab, lab[first])
    while len(chosen) < _TABLE_SIZE:
        k = int(np.argmax(nearest))
        chosen.append(k)
        nearest = np.minimum(nearest, _delta_e(lab, lab[k]))
    return tuple("#{:02x}{:02x}{:02x}".format(*(round(255 * c) for c in grid[k])) for k in chosen)


def palette(n: int) -> list[str]:
    """The first ``n`` ROI colours ("#rrggbb"): the k-th ROI drawn gets the k-th.

    Each colour is the one farthest from all before it, so any first ``n`` are as distinct as
    they can be (24 colours stay more than 25 ΔE apart); past 64 they repeat.
    """
    table = _palette_table()
    return [table[k % len(table)] for k in range(int(n))]


def next_colour(used: Iterable[str]) -> str:
    """The first palette colour not in ``used`` (so a deleted ROI's colour is reused)."""
    taken = {str(c).lower() for c in used}
    for colour in _palette_table():
        if colour not in taken:
            return colour
    return palette(len(taken) + 1)[-1]


def to_hex(colour: str | Sequence[float] | npt.NDArray[np.floating]) -> str:
    """Hex "#rrggbb" of an RGB(A) sequence of floats in 0..1; a string is returned as it is."""
    if isinstance(colour, str):
        return colour
    rgb = np.clip(np.asarray(colour, np.float64).ravel()[:3], 0, 1)
    return "#{:02x}{:02x}{:02x}".format(*(round(255 * float(c)) for c in rgb))


PALETTE = tuple(palette(24))
