"""napari reader for session files (``*.nsession.json`` written by napari-scanimage): *File →
Open* (or drag-and-drop) restores the analysis a session stores —

- the selection: channels shown, the plane, the slice-sample mode (and `.siff` lifetimes);
- the registration: registered layers as the Registration dock makes them (the raw ones
  hidden), which the docks then take as theirs;
- the ROIs: outlines in a Shapes layer, mask ROIs in a Labels layer, names and colours kept;
- the decay fit on the image layer's metadata (``scanimage_decay_fit``, as the FLIM dock keeps
  it) and the trace settings on the ROI layer's (``scanimage_trace_settings``), which the FLIM
  and Traces docks pick up whether they are opened before or after the session.

napari's manifest offers this reader for ``*.nsession.json`` only, and the content is checked
before a file is claimed: other JSON files are left to other readers (``get_session_reader``
returns None).
"""

from __future__ import annotations

import os
from collections.abc import Callable

import numpy as np

from ..errors import ScanImageError
from ..session import is_session_file
from .reader import dataset_layers

__all__ = ["get_session_reader", "read_session", "roi_shapes_layer"]

_MAX_BYTES = 64 << 20


def get_session_reader(path) -> Callable | None:
    """:func:`read_session` for a JSON file holding a session (whatever its name), else
    None.
    """
    if not isinstance(path, (str, os.PathLike)) or not os.fspath(path).lower().endswith(".json"):
        return None
    return read_session if is_session_file(path, _MAX_BYTES) else None


def roi_shapes_layer(
    rois, axis_labels, scale, units, plane: int | None = None, translate=None
) -> tuple | None:
    """A Shapes layer tuple for the outline ROIs of ``rois`` on the recording's axes after
    time (``axis_labels``/``scale``/``units`` of the image layer; ``plane``: the single plane
    shown).  ROIs of planes not shown are set aside in the layer's metadata (as a change of
    selection sets them aside), to come back when all planes are shown.
    """
    labels = list(axis_labels)
    first = labels.index("t") + 1 if "t" in labels else 0
    keep = list(range(min(first, len(labels) - 2), len(labels)))
    kept = [labels[k] for k in keep]
    full = ["z", *kept[-2:]]  # where set-aside ROIs are kept (as _family keeps them)
    data, types, colours, names, flags, widths, aside = [], [], [], [], [], [], []
    for roi in rois:
        if roi.vertices is None:
            continue  # mask ROIs have no outline
        kind = {"line": "path"}.get(roi.kind, roi.kind)
        if "z" not in kept and plane is not None and roi.plane is not None and roi.plane != plane:
            verts = np.hstack([np.full((len(roi.vertices), 1), roi.plane), roi.vertices])
            aside.append(
                {
                    "vertices": verts,
                    "shape_type": kind,
                    "edge_color": np.asarray(_rgba(roi.colour)),
                    "features": {
                        "name": roi.name,
                        "all_planes": False,
                        "colour": roi.colour,
                        "show": True,
                    },
                    "labels": full,
                    "plane": roi.plane,
                    "all_planes": False,
                }
            )
            continue
        lead = np.zeros((len(roi.vertices), len(kept) - 2))
        if "z" in kept and roi.plane is not None:
            lead[:, kept.index("z")] = roi.plane
        data.append(np.hstack([lead, roi.vertices]))
        types.append(kind)
        colours.append(roi.colour)
        names.append(roi.name)
        flags.append(roi.plane is None)
        widths.append(roi.width if roi.kind == "line" else 1.5)
    if not data and not aside:
        return None
    kwargs = {
        "name": "ROIs",
        "shape_type": types,
        "edge_color": colours or "yellow",
        "face_color": "transparent",
        "edge_width": widths or 1.5,
        "ndim": len(kept),
        "features": {
            "name": names,
            "all_planes": flags,
            "colour": colours,
            "show": [True] * len(names),
        },
        "scale": [scale[k] for k in keep],
        "axis_labels": kept,
        "units": [units[k] for k in keep],
        "metadata": {"scanimage_other_planes": aside} if aside else {},
    }
    if translate is not None:
        kwargs["translate"] = [translate[k] for k in keep]
    return (data or None), kwargs, "shapes"


def _rgba(colour) -> np.ndarray:
    from napari.utils.colormaps.standardize_color import transform_color

    return transform_color(colour)[0]


def roi_labels_layer(
    rois, dataset, axis_labels, scale, units, plane: int | None = None, translate=None
) -> tuple | None:
    """A Labels layer tuple for the mask ROIs of ``rois`` (label k + 1 for the k-th, its name
    and colour kept), laid out like the image (``plane``: the single plane shown).
    """
    from napari.utils.colormaps import DirectLabelColormap

    from ..analysis.rois import RoiSet
    from ..layer_axes import project_planes
    from ._family import derived_metadata
    from ._labels import NAMES_KEY, PALETTE_KEY, mask_layer_data

    masks = RoiSet([r for r in rois if r.vertices is None])
    if not len(masks):
        return None
    info = dataset.info
    planes, names = mask_layer_data(masks, info.frame_shape, info.num_planes)
    planes = planes if planes.ndim == 3 else planes[None]
    labels = list(axis_labels)
    first = labels.index("t") + 1 if "t" in labels else 0
    keep = list(range(min(first, len(labels) - 2), len(labels)))
    kept = [labels[k] for k in keep]
    data = np.ascontiguousarray(project_planes(planes, kept, plane))
    colours = {None: np.array([1.0, 1.0, 0.0, 1.0]), 0: np.zeros(4)}
    colours.update({k + 1: _rgba(r.colour) for k, r in enumerate(masks)})
    kwargs = {
        "name": "ROI masks",
        "colormap": DirectLabelColormap(color_dict=colours),
        "scale": [scale[k] for k in keep],
        "axis_labels": kept,
        "units": [units[k] for k in keep],
        "metadata": {**derived_metadata(dataset, planes), NAMES_KEY: names, PALETTE_KEY: True},
    }
    if translate is not None:
        kwargs["translate"] = [translate[k] for k in keep]
    return data, kwargs, "labels"


def _registered_layer(dataset, raw: tuple, registration) -> tuple:
    """The registered twin of a raw image layer tuple, as the Registration dock makes it."""
    data, kw, _ = raw
    meta = kw["metadata"]["scanimage"]
    frames = dataset.frames(
        meta["channel"],
        plane=meta.get("plane"),
        slice_sample=meta.get("slice_sample", 0),
        product=meta.get("product", "intensity"),
        registration=registration,
    )
    frames.on_error = getattr(data, "on_error", None)
    return (
        frames,
        {
            **kw,
            "name": f"{kw['name']} registered",
            "metadata": {
                "scanimage": dict(meta),
                "scanimage_dataset": dataset,
                "scanimage_registration": registration,
                "scanimage_raw": kw["name"],
            },
        },
        "image",
    )


def session_layers(session, dataset) -> list[tuple]:
    """Layer tuples restoring ``session`` over its opened ``dataset`` (see the module)."""
    from dataclasses import replace

    info = dataset.info
    shown = session.shown_slice_sample
    if shown is None and info.frames_per_slice > 1:
        shown = session.slice_sample
    layers = dataset_layers(
        dataset,
        channels=session.shown_channels,
        plane=session.plane,
        slice_sample=shown,
        lifetime=session.lifetime and dataset.is_siff,
    )
    if not layers:
        return layers
    reg = session.registration_result
    if reg is not None:
        sample = "mean" if info.frames_per_slice > 1 else 0
        reg.check_fits(
            dataset.selection(0, slice_sample=sample).num_times(dataset.layout),
            info.num_planes,
            info.frame_shape,
        )
        registered = [_registered_layer(dataset, raw, reg) for raw in layers]
        for raw in layers:  # the registered view, as after "Register"
            raw[1]["visible"] = False
        layers = layers + registered
    first = layers[0][1]
    if session.decay_fit is not None:
        first["metadata"]["scanimage_decay_fit"] = session.decay_fit
    trace = replace(
        session.trace,
        channel=session.channel if session.trace.channel is None else session.trace.channel,
    )
    axes = (first["axis_labels"], first["scale"], first["units"])
    where = dict(plane=session.plane, translate=first.get("translate"))
    rois = []
    if session.roi_set is not None:
        masks = roi_labels_layer(session.roi_set, dataset, *axes, **where)
        shapes = roi_shapes_layer(session.roi_set, *axes, **where)
        rois = [x for x in (masks, shapes) if x is not None]
    for _, kw, _ in rois:
        kw["metadata"] = {**kw.get("metadata", {}), "scanimage_dataset": dataset}
    tagged = rois[-1][1] if rois else first  # the Traces dock shows this layer's ROIs
    tagged["metadata"]["scanimage_trace_settings"] = trace
    return layers + rois


def read_session(path) -> list[tuple]:
    """Layer data of a session file: the recording's layers as the session showed them, its
    registered layers and its ROIs (see the module docstring).
    """
    from ..session import Session

    session = Session.load(path)
    try:
        dataset = session.open_dataset()
    except OSError as exc:
        raise ScanImageError(
            f"the recording of session {os.fspath(path)} cannot be opened ({exc})"
        ) from None
    return session_layers(session, dataset)
