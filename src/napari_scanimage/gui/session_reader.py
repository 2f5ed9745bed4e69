"""napari reader for session files (``*.json`` written by napari-scanimage): the recording's
layers and the session's ROIs, so *File → Open* (or drag-and-drop) restores an analysis.

Other JSON files are left to other readers (``get_session_reader`` returns None).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable

import numpy as np

from ..errors import ScanImageError
from .reader import dataset_layers

__all__ = ["get_session_reader", "read_session", "roi_shapes_layer"]

_MAX_BYTES = 64 << 20


def get_session_reader(path) -> Callable | None:
    if not isinstance(path, (str, os.PathLike)) or not os.fspath(path).lower().endswith(".json"):
        return None
    try:
        if os.path.getsize(path) > _MAX_BYTES:
            return None
        with open(path, "rb") as fh:
            doc = json.loads(fh.read())
    except (OSError, ValueError):
        return None
    if not isinstance(doc, dict) or doc.get("format") != "napari-scanimage-session":
        return None
    return read_session


def roi_shapes_layer(rois, axis_labels, scale, units) -> tuple | None:
    """A Shapes layer tuple for the outline ROIs of ``rois`` on the recording's axes after
    time (``axis_labels``/``scale``/``units`` of the image layer)."""
    labels = list(axis_labels)
    first = labels.index("t") + 1 if "t" in labels else 0
    keep = list(range(min(first, len(labels) - 2), len(labels)))
    kept = [labels[k] for k in keep]
    z = kept.index("z") if "z" in kept else None
    data, types, colours, names, flags = [], [], [], [], []
    for roi in rois:
        if roi.vertices is None:
            continue  # mask ROIs have no outline
        lead = np.zeros((len(roi.vertices), len(kept) - 2))
        if z is not None and roi.plane is not None:
            lead[:, z] = roi.plane
        data.append(np.hstack([lead, roi.vertices]))
        types.append({"line": "path"}.get(roi.kind, roi.kind))
        colours.append(roi.colour)
        names.append(roi.name)
        flags.append(roi.plane is None)
    if not data:
        return None
    kwargs = {"name": "ROIs", "shape_type": types, "edge_color": colours,
              "face_color": "transparent", "edge_width": 1.5, "ndim": len(kept),
              "features": {"name": names, "all_planes": flags},
              "scale": [scale[k] for k in keep], "axis_labels": kept,
              "units": [units[k] for k in keep]}
    return data, kwargs, "shapes"


def read_session(path) -> list[tuple]:
    from ..session import Session

    session = Session.load(path)
    try:
        dataset = session.open_dataset()
    except OSError as exc:
        raise ScanImageError(f"the recording of session {os.fspath(path)} cannot be opened "
                             f"({exc})") from None
    layers = dataset_layers(dataset)
    if session.roi_set is not None and layers:
        kw = layers[0][1]
        shapes = roi_shapes_layer(session.roi_set, kw["axis_labels"], kw["scale"], kw["units"])
        if shapes is not None:
            layers.append(shapes)
    return layers
