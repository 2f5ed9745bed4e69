"""The Traces dock's parameter form and its mapping to the library's trace settings.

trace_form
    The magicgui form: ROI layer, channel, metric, registered frames, neuropil, dF/F baseline,
    stacking (and the "Mean image" button in its row).
settings_of, apply_settings
    The form as a :class:`~napari_scanimage.session.TraceSettings` (what sessions store), and
    back.
trace_options
    The :func:`~napari_scanimage.analysis.traces.iter_traces` keywords the form gives a metric.
"""

from __future__ import annotations

import contextlib
from typing import Any

from ..errors import ScanImageError
from ..session import TraceSettings
from ._params import Params, button, check, choice, float_spin, int_spin

__all__ = [
    "METRICS",
    "PHOTON_KINDS",
    "apply_settings",
    "settings_of",
    "trace_form",
    "trace_options",
]

METRICS = {
    "mean": "mean",
    "sum": "sum",
    "dF/F": "dff",
    "lifetime (ns)": "lifetime",
    "phasor g": "phasor",
    "phasor s": "phasor",
}
PHOTON_KINDS = ("lifetime", "phasor")  # `.siff` only; drawn with their confidence band


def trace_form() -> Params:
    """The trace parameters: ROI layer, channel, metric, registered frames, neuropil and
    dF/F baseline (:func:`~napari_scanimage.analysis.traces.iter_traces`) and stacking, plus
    the "Mean image" button in their row.
    """
    return Params(
        [
            [
                choice("rois", tooltip="the Shapes or Labels layer whose ROIs give the traces"),
                choice("channel", tooltip="channel the traces are read from"),
                choice(
                    "metric",
                    [m for m in METRICS if METRICS[m] not in PHOTON_KINDS],
                    tooltip="per ROI and time: mean or sum of its pixels, dF/F; for .siff "
                    "recordings also the lifetime and the phasor",
                ),
                check(
                    "registered",
                    "registered",
                    True,
                    "traces of the registered frames (after Registration)",
                ),
            ],
            [
                check(
                    "neuropil",
                    "neuropil",
                    False,
                    "subtract coefficient × the mean of an annulus "
                    "around each ROI (other ROIs left out)",
                ),
                float_spin(
                    "neuropil_coef",
                    0.0,
                    2.0,
                    0.7,
                    step=0.05,
                    prefix="× ",
                    tooltip="neuropil coefficient",
                ),
                int_spin(
                    "neuropil_inner",
                    0,
                    50,
                    2,
                    prefix="ring ",
                    suffix=" px",
                    tooltip="annulus: from this many pixels out of the ROI…",
                ),
                int_spin(
                    "neuropil_outer",
                    1,
                    100,
                    8,
                    prefix="– ",
                    suffix=" px",
                    tooltip="…to this many (pixels)",
                ),
            ],
            [
                float_spin(
                    "percentile",
                    0.0,
                    100.0,
                    8.0,
                    decimals=1,
                    step=1.0,
                    prefix="F0 p",
                    tooltip="dF/F baseline F0: this percentile of the trace",
                ),
                float_spin(
                    "window_s",
                    0.0,
                    3600.0,
                    0.0,
                    decimals=1,
                    step=5.0,
                    prefix="win ",
                    suffix=" s",
                    special="win: all",
                    tooltip="F0 over a running window of this many seconds (0: whole trace)",
                ),
                check("stacked", "stacked", False, "draw the traces one above the other"),
                button(
                    "Mean image",
                    "add the mean image of the selected channel (registered when "
                    "shown so) as a layer to draw ROIs on",
                ),
            ],
        ]
    )


def settings_of(params: Params) -> TraceSettings:
    """The form's values (every control) as the session stores them."""
    p = params.asdict()
    return TraceSettings(
        kind=METRICS.get(p["metric"], "mean"),
        channel=p["channel"],
        percentile=p["percentile"],
        window_s=p["window_s"] or None,
        neuropil=p["neuropil_coef"] if p["neuropil"] else None,
        neuropil_radii=(p["neuropil_inner"], p["neuropil_outer"]),
        stacked=p["stacked"],
    )


def apply_settings(params: Params, settings: TraceSettings) -> None:
    """Set every control of the form from ``settings`` (change signals of the computed
    parameters blocked, so that the caller recomputes once).

    Raises
    ------
    ScanImageError
        When the settings' metric is not offered (photon metrics of a TIFF recording).
    """
    names = [m for m in METRICS if METRICS[m] == settings.kind]
    if names and names[0] not in params.metric.choices:
        raise ScanImageError(f"the {settings.kind!r} traces need a .siff recording")
    values: dict[str, Any] = {
        "neuropil": settings.neuropil is not None,
        "neuropil_inner": settings.neuropil_radii[0],
        "neuropil_outer": settings.neuropil_radii[1],
        "percentile": settings.percentile,
        "window_s": settings.window_s or 0.0,
    }
    if names:
        values["metric"] = names[0]
    if settings.neuropil is not None:
        values["neuropil_coef"] = settings.neuropil
    channels, channel = params.channel.choices, settings.channel
    if isinstance(channel, str) and channel in channels:
        values["channel"] = channel
    elif isinstance(channel, int) and 0 <= channel < len(channels):
        values["channel"] = channels[channel]
    with contextlib.ExitStack() as stack:  # one refresh at the end, not one per control
        for name in values:
            stack.enter_context(getattr(params, name).changed.blocked())
        params.update(values)
    params.stacked.value = bool(getattr(settings, "stacked", False))


def trace_options(params: Params, kind: str) -> dict[str, Any]:
    """:func:`~napari_scanimage.analysis.traces.iter_traces` keywords for ``kind`` from the
    form (only those that change its result).
    """
    p = params.asdict()
    out: dict[str, Any] = {}
    if kind in ("mean", "dff") and p["neuropil"]:
        out.update(
            neuropil=p["neuropil_coef"], neuropil_radii=(p["neuropil_inner"], p["neuropil_outer"])
        )
    if kind == "dff":
        out.update(percentile=p["percentile"], window_s=p["window_s"] or None)
    return out
