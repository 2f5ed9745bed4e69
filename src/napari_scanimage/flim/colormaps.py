"""Colour for lifetime images: the Turbo colour map and intensity-modulated lifetime RGB."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from ..errors import SelectionError

__all__ = ["turbo", "intensity_modulated"]

_F64 = npt.NDArray[np.float64]


_TURBO = np.array(
    [  # polynomial fit of the Turbo colormap (A. Mikhailov, 2019), x in [0, 1]
        [0.13572138, 4.61539260, -42.66032258, 132.13108234, -152.94239396, 59.28637943],
        [0.09140261, 2.19418839, 4.84296658, -14.18503333, 4.27729857, 2.82956604],
        [0.10667330, 12.64194608, -60.58204836, 110.36276771, -89.90310912, 27.34824973],
    ]
)


def turbo(x: npt.ArrayLike) -> _F64:
    """Turbo colours (…, 3) float64 in [0, 1] of values ``x`` in [0, 1] (clipped)."""
    x = np.clip(np.asarray(x, np.float64), 0.0, 1.0)[..., None]
    out = np.zeros(x.shape[:-1] + (3,))
    for p in range(5, -1, -1):
        out = out * x + _TURBO[:, p]
    return np.clip(out, 0.0, 1.0)


def intensity_modulated(
    lifetime: npt.ArrayLike,
    counts: npt.ArrayLike,
    *,
    tau_range: tuple[float, float],
    colormap: str | npt.ArrayLike = "turbo",
    count_range: tuple[float, float] | None = None,
) -> npt.NDArray[np.float32]:
    """RGB image (…, 3) float32: hue from ``lifetime`` over ``tau_range`` (clipped), brightness
    from ``counts`` over ``count_range`` (default 0 to the largest count; clipped).

    ``colormap``: ``"turbo"``, ``"gray"`` or an (N, 3) table of colours in [0, 1] (linearly
    interpolated).  Pixels with a NaN lifetime are black.
    """
    lo, hi = (float(v) for v in tau_range)
    if not hi > lo:
        raise SelectionError(f"tau_range must be increasing, got {tau_range}")
    life = np.asarray(lifetime, np.float64)
    cnt = np.asarray(counts, np.float64)
    if life.shape != cnt.shape:
        raise SelectionError(f"lifetime {life.shape} and counts {cnt.shape} differ in shape")
    if count_range is None:
        top = float(np.nanmax(cnt)) if cnt.size else 0.0
        count_range = (0.0, top if top > 0 else 1.0)
    c0, c1 = (float(v) for v in count_range)
    if not c1 > c0:
        raise SelectionError(f"count_range must be increasing, got {count_range}")
    x = np.clip((life - lo) / (hi - lo), 0.0, 1.0)
    colour = _colours(np.nan_to_num(x), colormap)
    bright = np.clip((cnt - c0) / (c1 - c0), 0.0, 1.0)
    bright = np.where(np.isfinite(life), np.nan_to_num(bright), 0.0)
    return (colour * bright[..., None]).astype(np.float32)


def _colours(x: _F64, colormap: str | npt.ArrayLike) -> _F64:
    if isinstance(colormap, str):
        if colormap == "turbo":
            return turbo(x)
        if colormap in ("gray", "grey"):
            return np.repeat(x[..., None], 3, axis=-1)
        raise SelectionError(f"unknown colormap {colormap!r}: 'turbo', 'gray' or a table")
    table = np.asarray(colormap, np.float64)
    if table.ndim != 2 or table.shape[1] != 3 or len(table) < 2:
        raise SelectionError(f"a colour table must be (N >= 2, 3), got {table.shape}")
    pos = x * (len(table) - 1)
    i = np.minimum(pos.astype(np.int64), len(table) - 2)
    f = (pos - i)[..., None]
    mixed: _F64 = np.clip(table[i] * (1 - f) + table[i + 1] * f, 0.0, 1.0)
    return mixed
