"""ROI layers: napari Shapes (or Labels) layers of ROIs read as a
:class:`~napari_scanimage.analysis.rois.RoiSet` (:func:`layer_rois`), their names, colours,
"all planes" and trace-shown flags, and the axes an ROI layer takes over a recording's image
(:func:`roi_axes`, :func:`on_roi_axes`, :func:`plane_axis`) — what the ROI, trace, FLIM,
phasor and registration docks share.

ROI names and the all-planes flag live in the Shapes layer's ``features`` ("name",
"all_planes"), so they travel with the shapes.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..analysis.colours import to_hex
from ..analysis.rois import RoiSet
from ._labels import CANDIDATES_KEY, HIDDEN_KEY, is_labels, label_colours, label_names, label_values

__all__ = [
    "accepted_rows",
    "all_planes_flags",
    "edge_colours",
    "features_table",
    "image_layer_for",
    "layer_rois",
    "on_roi_axes",
    "plane_axis",
    "roi_axes",
    "roi_names",
    "set_trace_shown",
    "style_roi_layer",
    "trace_shown",
]


def features_table(columns: Any) -> Any:
    """A pandas DataFrame of ``columns`` (a dict of columns or a list of rows): the type of a
    layer's ``features``.
    """
    # pandas comes with napari but ships no type information
    import pandas as pd  # type: ignore[import-untyped]

    return pd.DataFrame(columns)


def image_layer_for(viewer, dataset=None):
    """The first image layer of ``dataset`` (or of any recording) in the viewer."""
    for layer in viewer.layers:
        ds = layer.metadata.get("scanimage_dataset")
        if ds is not None and (dataset is None or ds is dataset):
            return layer
    return None


def roi_names(layer) -> list[str]:
    """Names of a Shapes layer's ROIs ("roi k" where the features have none)."""
    n = len(layer.data)
    names = list(layer.features["name"]) if "name" in layer.features else []
    return [
        str(names[k])
        if k < len(names) and isinstance(names[k], str) and names[k]
        else f"roi {k + 1}"
        for k in range(n)
    ]


def all_planes_flags(layer) -> list[bool]:
    """The "all planes" flag of each shape (False where unset: new shapes get NaN)."""
    values = list(layer.features["all_planes"]) if "all_planes" in layer.features else []
    return [
        k < len(values) and isinstance(values[k], (bool, np.bool_)) and bool(values[k])
        for k in range(len(layer.data))
    ]


def edge_colours(layer) -> list[str]:
    """The edge colour ("#rrggbb") of each shape."""
    rgba = np.asarray(layer.edge_color).reshape(-1, 4)[: len(layer.data)]
    return [to_hex(c) for c in rgba]


def trace_shown(layer) -> list[bool]:
    """Whether each ROI's trace is shown (in the order of :func:`layer_rois`); a hidden ROI
    keeps its trace, only the plot leaves it out.
    """
    if layer is None:
        return []
    if is_labels(layer):
        hidden = layer.metadata.get(HIDDEN_KEY, set())
        return [v not in hidden for v in label_values(layer)]
    values = list(layer.features["show"]) if "show" in layer.features else []
    return [
        not (k < len(values) and isinstance(values[k], (bool, np.bool_)) and not values[k])
        for k in range(len(layer.data))
    ]


def accepted_rows(layer) -> list[int]:
    """Indices (in the order of :func:`layer_rois`) of the ROIs of ``layer`` that are not
    detected candidates awaiting review: what traces, saved ROI files and sessions hold.
    """
    if layer is None:
        return []
    if is_labels(layer):
        candidates = layer.metadata.get(CANDIDATES_KEY, set())
        return [k for k, v in enumerate(label_values(layer)) if v not in candidates]
    return list(range(len(layer.data)))


def set_trace_shown(layer, k: int, shown: bool) -> None:
    """Show or hide the trace of the ``k``-th ROI of ``layer``; the ROI and trace docks
    follow (the layer emits its data / paint event).  Showing a detected candidate's trace
    accepts it.
    """
    if trace_shown(layer)[k] == bool(shown):
        return
    if is_labels(layer):
        value = label_values(layer)[k]
        hidden = set(layer.metadata.get(HIDDEN_KEY, set()))
        hidden = hidden - {value} if shown else hidden | {value}
        candidates = set(layer.metadata.get(CANDIDATES_KEY, set()))
        candidates = candidates - {value} if shown else candidates
        layer.metadata = {**layer.metadata, HIDDEN_KEY: hidden, CANDIDATES_KEY: candidates}
        layer.events.paint()
        return
    features = layer.features.copy()
    features["show"] = trace_shown(layer)
    features.loc[k, "show"] = bool(shown)
    layer.features = features
    layer.events.data(value=layer.data)


def style_roi_layer(layer) -> None:
    """ROI names on the canvas, in each ROI's colour (the ``name`` / ``colour`` features)."""
    if is_labels(layer) or "{name}" in str(getattr(layer.text.string, "format", "")):
        return
    visible = bool(layer.metadata.get("roi_names_shown", True))
    layer.text = {
        "string": "{name}",
        "color": {"feature": "colour"},
        "size": 9,
        "anchor": "upper_left",
        "visible": visible,
    }


def roi_axes(image) -> dict:
    """Axes, scale and units for an ROI layer over ``image``: every axis after time (z, y, x
    or y, x; with several samples per slice also that axis, between z and y), since napari
    aligns layers by their trailing axes.  ROIs then show at every time point.
    """
    if image is None:
        return {}
    labels = tuple(image.axis_labels)
    first = labels.index("t") + 1 if "t" in labels else 0
    keep = list(range(min(first, image.ndim - 2), image.ndim))
    return dict(
        ndim=len(keep),
        scale=[image.scale[k] for k in keep],
        translate=[image.translate[k] for k in keep],  # (multi-ROI fields: placed)
        axis_labels=[labels[k] for k in keep],
        units=[image.units[k] for k in keep],
    )


def on_roi_axes(planes: np.ndarray, axes: dict, reduce=np.max) -> np.ndarray:
    """Per-plane images (Z, Y, X) — or one (Y, X) — laid out on the :func:`roi_axes` ``axes``
    (a length-1 sample axis where there is one; planes reduced with ``reduce`` when the
    recording has no z axis).
    """
    planes = planes if planes.ndim == 3 else planes[None]
    labels = list(axes["axis_labels"])
    if "z" not in labels:
        planes = reduce(planes, axis=0, keepdims=True)
    shape = [planes.shape[0] if a == "z" else 1 for a in labels[:-2]]
    return planes.reshape(*shape, *planes.shape[-2:])


def plane_axis(image_layer, ndim: int) -> int | None:
    """Axis of a ``ndim``-D ROI layer that lies on the image's plane axis (napari aligns
    layers by their trailing axes), or None.
    """
    labels = tuple(image_layer.axis_labels) if image_layer is not None else ()
    if "z" in labels:
        axis = labels.index("z") + ndim - len(labels)
        return axis if 0 <= axis < ndim - 2 else None
    return None


def layer_rois(layer, dataset, image_layer=None) -> RoiSet:
    """RoiSet of a Shapes or Labels layer for ``dataset`` (frame shape and planes from it;
    without a dataset, the ROIs as drawn).
    """
    info = dataset.info if dataset is not None else None
    kwargs = (
        dict(frame_shape=info.frame_shape, num_planes=info.num_planes, source=str(dataset.paths[0]))
        if info is not None
        else {}
    )
    if is_labels(layer):
        values = label_values(layer)
        data = np.asarray(layer.data)
        axis = plane_axis(image_layer, layer.ndim)
        if axis is not None:  # planes third from last; other leading axes are pooled
            data = np.moveaxis(data, axis, -3)
        return RoiSet.from_layer(
            data, names=label_names(layer, values), colours=label_colours(layer, values), **kwargs
        )
    n = len(layer.data)
    all_planes = all_planes_flags(layer)
    axis = plane_axis(image_layer, layer.ndim)
    planes: list[int | None] = []
    for k, verts in enumerate(layer.data):
        if all_planes[k]:
            planes.append(None)
        elif axis is not None and info is not None and info.num_planes > 1:
            planes.append(
                int(np.clip(np.round(np.asarray(verts)[0, axis]), 0, info.num_planes - 1))
            )
        else:
            planes.append(None)
    colours = edge_colours(layer)
    return RoiSet.from_layer(
        [np.asarray(v)[:, -2:] for v in layer.data],
        shape_types=list(layer.shape_type),
        planes=planes,
        edge_widths=list(np.broadcast_to(layer.edge_width, (n,))),
        names=roi_names(layer),
        colours=colours,
        **kwargs,
    )
