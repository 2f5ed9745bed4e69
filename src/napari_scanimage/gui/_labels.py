"""ROIs held by a napari Labels layer: one ROI per label value.

Names live in the layer's metadata (``roi_names``: {value: name}), hidden traces there too
(``roi_hidden``: {value}), and detected ROIs not yet accepted (``roi_candidates``: {value}:
no trace, no legend entry, not saved); colours are the layer's own, from the ROI palette
(:func:`use_palette`: label v gets the v-th palette colour, as the v-th drawn shape would).
"""

from __future__ import annotations

import numpy as np

NAMES_KEY = "roi_names"
HIDDEN_KEY = "roi_hidden"
CANDIDATES_KEY = "roi_candidates"
PALETTE_KEY = "roi_palette"


def is_labels(layer) -> bool:
    return layer is not None and layer.__class__.__name__ == "Labels"


def label_values(layer) -> list[int]:
    values = np.unique(np.asarray(layer.data))
    return [int(v) for v in values if v != 0]


def label_names(layer, values: list[int] | None = None) -> dict[int, str]:
    """{value: name}, "label v" where the user gave none."""
    given = layer.metadata.get(NAMES_KEY, {})
    values = label_values(layer) if values is None else values
    return {v: str(given.get(v, f"label {v}")) for v in values}


def label_colours(layer, values: list[int]) -> dict[int, np.ndarray]:
    return {v: np.asarray(layer.get_color(v), np.float64) for v in values}


def rename_label(layer, value: int, name: str) -> None:
    names = dict(layer.metadata.get(NAMES_KEY, {}))
    names[int(value)] = name
    layer.metadata = {**layer.metadata, NAMES_KEY: names}


def delete_labels(layer, values: list[int]) -> None:
    """Erase these labels (their pixels become 0) and forget their names."""
    data = np.asarray(layer.data)
    gone = np.isin(data, values)
    if gone.any():
        layer.data = np.where(gone, 0, data).astype(data.dtype)
    names = {v: n for v, n in layer.metadata.get(NAMES_KEY, {}).items() if v not in values}
    candidates = set(layer.metadata.get(CANDIDATES_KEY, set())) - set(values)
    layer.metadata = {**layer.metadata, NAMES_KEY: names, CANDIDATES_KEY: candidates}


def mask_layer_data(rois, frame_shape, num_planes: int) -> tuple[np.ndarray, dict[int, str]]:
    """A labels array ((Z, Y, X), or (Y, X) for one plane) holding the mask ROIs of ``rois``
    (label k + 1 for the k-th), and their names.
    """
    masks = (
        rois.masks(frame_shape, num_planes).toarray().reshape(len(rois), num_planes, *frame_shape)
    )
    data = np.zeros((num_planes, *frame_shape), np.int32)
    for k in range(len(rois)):
        data[masks[k]] = k + 1
    names = {k + 1: r.name for k, r in enumerate(rois)}
    return (data[0] if num_planes == 1 else data), names


def use_palette(layer, colours: dict[int, str] | None = None, size: int = 1024) -> None:
    """Colour label v with the v-th ROI palette colour (or ``colours[v]``), once per layer:
    a user's later colour choice is kept.
    """
    if layer.metadata.get(PALETTE_KEY):
        return
    from napari.utils.colormaps import DirectLabelColormap

    from ..analysis.colours import palette

    top = max([size, *label_values(layer), *(colours or {})])
    table = palette(top)
    # labels painted later above ``top`` get the first colour rather than none at all
    mapping: dict = {None: table[0], 0: np.zeros(4)}
    for v in range(1, top + 1):
        mapping[v] = (colours or {}).get(v, table[v - 1])
    layer.colormap = DirectLabelColormap(color_dict=mapping)
    layer.metadata = {**layer.metadata, PALETTE_KEY: True}
