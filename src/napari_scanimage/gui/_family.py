"""A recording's layers as one family that follows a change of selection together.

Members of a recording's family:

- raw images (``metadata["scanimage"]`` + ``"scanimage_dataset"``) — rebuilt by
  :func:`~napari_scanimage.gui.selection.apply_selection`;
- registered images (``"scanimage_registration"`` and the raw layers' ``"scanimage"``
  selection) — rebuilt here from the registration with the new selection;
- per-plane images and label masks (``"scanimage_planes"``: summary images, lifetime
  fractions, phasor cursor labels, mask ROIs) — re-projected from the per-plane array;
- the block field of a piecewise registration (a Vectors layer, ``"scanimage_field_of"``) —
  redrawn from the registration on the new axes;
- ROI shapes (``"scanimage_dataset"`` without a channel, or untagged Shapes on the old ROI
  axes) — vertices moved to the new axes, each ROI kept on its plane; ROIs of planes a
  single-plane view does not show are set aside in the layer's metadata and come back when
  the planes are shown again.

Every change is made in place (data, then scale, translate, labels, units): nothing is
removed and re-added, so the viewer never draws a half-changed family (a layer added makes
napari process events and repaint; a repaint of a removed layer crashed napari).
"""

from __future__ import annotations

from contextlib import contextmanager

import numpy as np

from .._core.dataset import Dataset
from ..analysis.block_qc import BlockVectors, block_vectors
from ..layer_axes import full_planes, plane_of, project_planes, reproject_vertices
from .roi_layers import features_table

__all__ = [
    "FLAG_COLOURS",
    "derived_metadata",
    "family_image",
    "field_on_axes",
    "frozen",
    "is_registered",
    "members",
    "on_family_axes",
    "reproject_field",
    "reproject_planes",
    "reproject_rois",
    "roi_axes_of",
    "set_field",
    "set_layout",
]

_OTHER_PLANES = "scanimage_other_planes"  # ROIs set aside while their plane is not shown
# block flags: own peak, borrowed from 3 × 3 / 5 × 5 neighbours, fell back to the rigid shift
FLAG_COLOURS = np.array(
    [[1.0, 0.85, 0.1, 1], [1.0, 0.55, 0.1, 1], [1.0, 0.35, 0.1, 1], [1.0, 0.1, 0.1, 1]]
)


def is_registered(layer) -> bool:
    """A registered image made by the registration dock."""
    return "scanimage_registration" in getattr(layer, "metadata", {})


def _recording(layer):
    meta = getattr(layer, "metadata", {}) or {}
    ds = meta.get("scanimage_dataset", meta.get("scanimage_family"))
    return ds.whole if isinstance(ds, Dataset) else None


def _is_raw(layer) -> bool:
    meta = layer.metadata.get("scanimage")
    return isinstance(meta, dict) and "channel" in meta and not is_registered(layer)


def family_image(viewer, dataset: Dataset):
    """The first raw image layer of ``dataset`` (a multi-ROI field: that field's layer),
    else of its whole recording.
    """
    fallback = None
    for layer in viewer.layers:
        ds = layer.metadata.get("scanimage_dataset")
        if _is_raw(layer) and isinstance(ds, Dataset) and ds.whole is dataset.whole:
            if ds is dataset:
                return layer
            fallback = fallback or layer
    return fallback


def roi_axes_of(image) -> list[str]:
    """Labels of the axes after time of an image layer (the ROI axes)."""
    labels = list(image.axis_labels)
    first = labels.index("t") + 1 if "t" in labels else 0
    return labels[min(first, len(labels) - 2) :]


def derived_metadata(dataset: Dataset, planes: np.ndarray, **extra) -> dict:
    """Metadata for a per-plane image or mask layer of ``dataset`` (``planes``: (Z, Y, X[, 3])),
    so that it follows selection changes.
    """
    planes = np.asarray(planes)
    if planes.ndim == 2:  # one plane
        planes = planes[None]
    return {"scanimage_family": dataset, "scanimage_planes": planes, **extra}


def members(viewer, dataset: Dataset, roi_labels: list[str]) -> dict[str, list]:
    """The layers of ``dataset``'s recording other than its raw images, by kind:
    "registered", "planes" (per-plane images and masks), "fields" (block fields of piecewise
    registrations) and "rois" (Shapes).  Untagged Shapes and Labels on the recording's ROI
    axes (``roi_labels``) count as its ROIs.
    """
    out: dict[str, list] = {"registered": [], "planes": [], "fields": [], "rois": []}
    whole = dataset.whole
    for layer in viewer.layers:
        if _is_raw(layer):
            continue
        owner = _recording(layer)
        kind = layer.__class__.__name__
        if owner is None:
            if kind not in ("Shapes", "Labels") or list(layer.axis_labels) != roi_labels:
                continue
        elif owner is not whole:
            continue
        if is_registered(layer):
            out["registered"].append(layer)
        elif "scanimage_field_of" in layer.metadata:
            out["fields"].append(layer)
        elif "scanimage_planes" in layer.metadata or kind == "Labels":
            out["planes"].append(layer)
        elif kind == "Shapes":
            out["rois"].append(layer)
    return out


def _place(layer, image, labels: list[str]) -> None:
    """Scale, translate, labels and units of ``image``'s ``labels`` axes onto ``layer``."""
    index = [list(image.axis_labels).index(a) for a in labels]
    layer.scale = [image.scale[k] for k in index]
    layer.translate = [image.translate[k] for k in index]
    layer.axis_labels = labels
    layer.units = [image.units[k] for k in index]


def set_layout(layer, data, *, scale, translate, axis_labels, units) -> None:
    """Give ``layer`` new data and axes in place (its number of axes may change).

    napari 0.9 keeps a hidden layer's cached extent when its data change (only a visible
    layer is refreshed), and a stale extent with another number of axes breaks the viewer's
    axis labels.  So the data event waits until the caches are dropped (showing the layer
    instead would draw it half changed).
    """
    with layer.events.data.blocker():
        layer.data = data
    for cached in ("extent", "_extent_augmented"):
        layer.__dict__.pop(cached, None)
    layer.events.extent()  # the layer list drops its cached extent too
    layer.events.data(value=layer.data)
    layer.scale = scale
    layer.translate = translate
    layer.axis_labels = axis_labels
    layer.units = units


def reproject_planes(layer, old: tuple, new: tuple, image, num_planes: int) -> None:
    """A per-plane image or label layer onto the new ROI axes.  ``old``/``new``:
    (ROI axis labels, single plane shown or None).
    """
    (old_labels, old_plane), (new_labels, new_plane) = old, new
    store = layer.metadata.get("scanimage_planes")
    if layer.__class__.__name__ == "Labels":  # painted: the mask shown is the truth
        store = full_planes(np.asarray(layer.data), old_labels, old_plane, num_planes, into=store)
        layer.metadata = {**layer.metadata, "scanimage_planes": store}
    if store is None:
        return
    data = project_planes(store, new_labels, new_plane)
    if layer.__class__.__name__ == "Labels":
        data = np.ascontiguousarray(data)
    index = [list(image.axis_labels).index(a) for a in new_labels]
    set_layout(
        layer,
        data,
        scale=[image.scale[k] for k in index],
        translate=[image.translate[k] for k in index],
        axis_labels=new_labels,
        units=[image.units[k] for k in index],
    )


def reproject_rois(viewer, layer, old: tuple, new: tuple, image) -> str:
    """An ROI Shapes layer onto the new ROI axes; returns a message when ROIs were set aside
    (their plane is not shown) or brought back, else "".
    """
    (old_labels, old_plane), (new_labels, new_plane) = old, new
    layer_labels = list(layer.axis_labels)
    if layer_labels != list(old_labels):
        old_labels = layer_labels  # drawn on other axes than the image's: read its own
    flags = (
        list(layer.features["all_planes"])
        if "all_planes" in layer.features
        else [False] * len(layer.data)
    )
    rows = layer.features.to_dict("records") if len(layer.features) else [{}] * len(layer.data)
    colours = np.asarray(layer.edge_color).reshape(-1, 4)
    shapes = [
        dict(
            vertices=np.asarray(v),
            shape_type=t,
            edge_color=colours[k],
            features=rows[k] if k < len(rows) else {},
            labels=old_labels,
            plane=plane_of(np.asarray(v)[0], old_labels, old_plane),
            all_planes=k < len(flags) and isinstance(flags[k], (bool, np.bool_)) and bool(flags[k]),
            aside=False,
        )
        for k, (v, t) in enumerate(zip(layer.data, layer.shape_type, strict=True))
    ]
    aside = [{**s, "aside": True} for s in layer.metadata.get(_OTHER_PLANES, [])]
    kept, away = [], []
    for shape in shapes + aside:
        verts = reproject_vertices(
            shape["vertices"],
            shape["labels"],
            new_labels,
            old_plane=shape["plane"],
            new_plane=new_plane,
            all_planes=shape["all_planes"],
        )
        if verts is None:
            away.append(shape)
        else:
            kept.append({**shape, "vertices": verts})
    layer.metadata = {**layer.metadata, _OTHER_PLANES: away}
    features = features_table([s["features"] for s in kept]) if kept else layer.features[:0]
    if len(new_labels) != layer.ndim:
        # napari slices a Shapes layer whose number of axes changed in place wrongly (its
        # shapes are drawn on no plane): a new layer takes its place, same name and look
        index = [list(image.axis_labels).index(a) for a in new_labels]
        position = viewer.layers.index(layer)
        look = dict(
            name=layer.name,
            opacity=layer.opacity,
            blending=layer.blending,
            visible=layer.visible,
            metadata=dict(layer.metadata),
            face_color="transparent",
            edge_width=[float(np.ravel(layer.edge_width)[0])] * len(kept)
            if len(np.ravel(layer.edge_width))
            else 1.5,
        )
        viewer.layers.remove(layer)  # first: the viewer never holds both axes
        new = viewer.add_shapes(
            [(s["vertices"], s["shape_type"]) for s in kept] or None,
            ndim=len(new_labels),
            edge_color=[s["edge_color"] for s in kept] or "yellow",
            features=features,
            scale=[image.scale[k] for k in index],
            translate=[image.translate[k] for k in index],
            axis_labels=new_labels,
            units=[image.units[k] for k in index],
            **look,
        )
        viewer.layers.move(viewer.layers.index(new), position)
        layer = new
    else:
        if kept:
            layer.data = [(s["vertices"], s["shape_type"]) for s in kept]
            layer.edge_color = [s["edge_color"] for s in kept]
        else:
            layer.data = []
        layer.features = features
        _place(layer, image, new_labels)
    moved = sum(1 for s in away if not s["aside"])
    back = sum(1 for s in kept if s["aside"])
    parts = []
    if moved:
        parts.append(
            f"{moved} ROI(s) of {layer.name} drawn on other planes than plane "
            f"{new_plane} are set aside; they come back when all planes are shown"
        )
    if back:
        parts.append(f"{back} ROI(s) of {layer.name} set aside earlier are shown again")
    return "; ".join(parts)


_FIELD_AXES: tuple[list[str], ...] = (
    [],
    ["z"],
    ["sample"],
    ["z", "sample"],
)  # between t and (y, x)


def field_on_axes(result, image) -> tuple[BlockVectors, dict] | None:
    """The block field of the piecewise registration ``result`` as vectors on every axis of
    ``image`` (a raw layer on (t, [z,] [sample,] y, x)), and the scale, translate, labels and
    units to add them with; None when the layer has other axes (no time axis first).

    A sample axis gets each vector on every sample (the frames of a slice share their
    shifts); an interleaved time axis (frames per slice × time rows) gets each time row's
    vectors on all of its rows.
    """
    labels = list(image.axis_labels)
    middle = labels[1:-2]
    if len(labels) < 3 or labels[0] != "t" or middle not in _FIELD_AXES:
        return None
    shape = image.data.shape
    plane = None if "z" in middle else (image.metadata.get("scanimage", {}).get("plane") or 0)
    vec = block_vectors(
        result,
        plane=plane,
        rows_per_time=max(1, shape[0] // max(1, result.num_times)),
        samples=shape[labels.index("sample")] if "sample" in middle else None,
    )
    return vec, dict(
        scale=list(image.scale),
        translate=list(image.translate),
        axis_labels=labels,
        units=list(image.units),
    )


def set_field(viewer, layer, vec: BlockVectors, axes: dict):
    """Give the block field (Vectors) ``layer`` the vectors ``vec`` on ``axes`` (scale,
    translate, axis_labels, units); returns the layer that shows them.

    napari's Vectors layers keep their number of axes: when it changes, a new layer takes
    the old one's place, with its name and look.
    """
    colours = FLAG_COLOURS[np.clip(vec.flags, 0, 3)]
    if layer.ndim == vec.data.shape[-1]:
        set_layout(layer, vec.data, **axes)
        layer.edge_color = colours
        return layer
    position = viewer.layers.index(layer)
    look = dict(
        name=layer.name,
        length=layer.length,
        edge_width=layer.edge_width,
        vector_style=layer.vector_style,
        opacity=layer.opacity,
        blending=layer.blending,
        visible=layer.visible,
        metadata=dict(layer.metadata),
    )
    viewer.layers.remove(layer)  # first: the viewer never holds both axes
    new = viewer.add_vectors(vec.data, edge_color=colours, **axes, **look)
    viewer.layers.move(viewer.layers.index(new), position)
    return new


def reproject_field(viewer, layer, image) -> None:
    """A block field (Vectors) layer redrawn from its registration on ``image``'s axes (removed
    when those axes cannot show it).
    """
    placed = field_on_axes(layer.metadata["scanimage_field_of"], image)
    if placed is None:
        viewer.layers.remove(layer)
        return
    set_field(viewer, layer, *placed)


def on_family_axes(image, planes: np.ndarray) -> tuple[np.ndarray, dict]:
    """Per-plane images ``planes`` (Z, Y, X[, 3]) laid out on the ROI axes of ``image`` (a raw
    layer): the data and the scale, translate, labels and units to add it with.
    """
    labels = roi_axes_of(image)
    plane = image.metadata.get("scanimage", {}).get("plane")
    data = project_planes(planes, labels, plane)
    index = [list(image.axis_labels).index(a) for a in labels]
    return data, dict(
        scale=[image.scale[k] for k in index],
        translate=[image.translate[k] for k in index],
        axis_labels=labels,
        units=[image.units[k] for k in index],
    )


@contextmanager
def frozen():
    """No drawing of the viewer's canvas inside the block, one draw after it.

    napari draws synchronously when the sliders change (a slider shown or hidden resizes the
    canvas, and Qt paints a resized GL widget at once) and when a layer is added (its controls
    process Qt events); a family half moved to new axes must not be drawn (mixed axes,
    "Inconsistent units" warnings, and a draw between removing and adding layers crashed
    napari).  The draw event of each vispy canvas is blocked.
    """
    from contextlib import ExitStack

    from qtpy.QtWidgets import QApplication, QWidget

    # the GL widgets of every window (napari's own window is not public to plugins)
    canvases = [
        canvas
        for top in QApplication.topLevelWidgets()
        for w in top.findChildren(QWidget)
        if (canvas := getattr(w, "_vispy_canvas", None)) is not None
    ]
    with ExitStack() as stack:
        for canvas in canvases:
            stack.enter_context(canvas.events.draw.blocker())
        yield
    for canvas in canvases:
        canvas.update()
