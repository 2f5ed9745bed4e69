"""napari reader: ScanImage TIFF and ScanImage-FLIM `.siff` → one image layer per channel
(photon counts for `.siff`), plus optional lifetime layers for `.siff`.

``get_reader`` does a cheap header check and returns None for files that are not ScanImage,
so napari can hand them to another reader.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .._core.dataset import Dataset, open_dataset
from ..errors import ScanImageError, SelectionError
from ..io.scanimage import read_static_metadata
from ..io.series import natural_key
from ..layer_axes import reachable_step
from ._report import ReadFailureReporter
from .mroi_layers import field_translate, shown_fields

__all__ = ["dataset_layers", "get_reader", "read_scanimage"]

_SUFFIXES = (".tif", ".tiff", ".siff")
_NAMED_COLOURS = ("green", "red", "blue", "cyan", "magenta", "yellow")
_CYCLE = ("green", "magenta", "cyan", "yellow", "red", "blue")


def _paths(path: str | Sequence[str]) -> list[str]:
    if isinstance(path, (str, os.PathLike)):
        return [os.fspath(path)]
    return [os.fspath(p) for p in path]


def get_reader(path: str | Sequence[str]) -> Callable | None:
    """Return a reader function when every path is a ScanImage TIFF or `.siff`, else None."""
    paths = _paths(path)
    if not paths or not all(p.lower().endswith(_SUFFIXES) for p in paths):
        return None
    try:
        read_static_metadata(paths[0])
    except (ScanImageError, OSError):
        return None
    return read_scanimage


def read_scanimage(path: str | Sequence[str]) -> list[tuple]:
    """Open the recording and return napari layer data (one image layer per channel)."""
    paths = _paths(path)
    if len(paths) > 1:
        dataset = open_dataset(paths[0], file_paths=sorted(paths, key=natural_key))
    else:
        dataset = open_dataset(paths[0])
    layers = dataset_layers(dataset)
    if shown_fields(dataset):
        _fit_view_when_added(layers)
    return layers


def _fit_view_when_added(layers: list[tuple]) -> None:
    """Napari fits the view to the first layer added to an empty viewer: a multi-ROI
    recording's first field would fill it and the others lie off-screen.  Once all of these
    layers are in the viewer, fit the view to all of them.
    """
    import napari

    viewer = napari.current_viewer()
    if viewer is None or len(viewer.layers):  # a viewer with layers keeps its view
        return
    datasets = {id(kwargs["metadata"]["scanimage_dataset"]) for _, kwargs, _ in layers}
    added: list = []

    def inserted(event) -> None:
        layer = event.value
        if id(layer.metadata.get("scanimage_dataset")) in datasets:
            added.append(layer)
        if len(added) == len(layers):
            viewer.layers.events.inserted.disconnect(inserted)
            viewer.reset_view(layers=added)

    viewer.layers.events.inserted.connect(inserted)


def channel_colormap(name: str, index: int, count: int) -> str:
    """Colormap for a channel: its colour when the name says one, else a fixed cycle."""
    lower = name.lower()
    for colour in _NAMED_COLOURS:
        if colour in lower:
            return colour
    if count == 1:
        return "gray"
    return _CYCLE[index % len(_CYCLE)]


def dataset_layers(
    dataset: Dataset,
    *,
    channels: Sequence[int] | None = None,
    plane: int | None = None,
    slice_sample=None,
    lifetime: bool = False,
) -> list[tuple]:
    """Layer data tuples for ``dataset``: (dask array, layer kwargs, "image") per channel.

    With ``lifetime`` (`.siff` only) each channel also gets a "<name> lifetime" layer: mean
    photon arrival time per pixel in ns, from the same photons as the intensity layer.

    Multi-ROI recordings give one layer per (channel, field), named "<channel> <field>", each
    holding the field's view and placed at the field's position in µm (:mod:`.mroi_layers`).
    """
    if lifetime and not dataset.is_siff:
        raise SelectionError(
            f"{dataset.paths[0].name} is not a .siff file; lifetime layers "
            "need photon arrival times"
        )
    info = dataset.info
    fields = shown_fields(dataset)
    if fields:  # multi-ROI: one layer per (channel, field), placed where the field lies
        return [
            layer
            for f in fields
            for layer in dataset_layers(
                dataset.field(f.index),
                channels=channels,
                plane=plane,
                slice_sample=slice_sample,
                lifetime=lifetime,
            )
        ]
    field = dataset.selected_field
    if slice_sample is None:
        slice_sample = "axis" if info.frames_per_slice > 1 else 0
    channels = range(info.num_channels) if channels is None else channels
    # the core's axes: steps and units the file states, 1 "pixel" where it states none
    axes = dataset.axes(plane=plane, slice_sample=slice_sample, channels=False)
    labels = tuple(a.label for a in axes)
    layers = []
    report = ReadFailureReporter(dataset.paths[0].name)
    for c in channels:
        data = dataset.frames(c, plane=plane, slice_sample=slice_sample)
        n_times = data.shape[0] if "t" in labels else 1
        # the time step nudged by a few ulps so that napari's slider reaches the last frame
        scale = tuple(reachable_step(a.scale, n_times) if a.label == "t" else a.scale for a in axes)
        name = info.channel_names[c]
        kwargs: dict[str, Any] = {
            "name": name,
            "scale": scale,
            "axis_labels": labels,
            "units": tuple(a.unit for a in axes),
            "colormap": channel_colormap(name, c, info.num_channels),
            "blending": "additive" if info.num_channels > 1 else "translucent_no_depth",
            "contrast_limits": _contrast_limits(dataset, c, plane, slice_sample),
            "metadata": {
                "scanimage": {
                    "path": str(dataset.paths[0]),
                    "files": [str(p) for p in dataset.paths],
                    "channel": c,
                    "plane": plane,
                    "slice_sample": slice_sample,
                },
                "scanimage_dataset": dataset,
            },
        }
        if field is not None:  # a multi-ROI field view (see .mroi_layers)
            name = kwargs["name"] = f"{name} {field.name}"
            kwargs["translate"] = field_translate(field, labels)
            kwargs["metadata"]["scanimage"]["field"] = field.name
        data.on_error = report  # a failed read: blank frames and one notification, no crash
        layers.append((data, kwargs, "image"))
        if lifetime:
            tau = dataset.frames(c, plane=plane, slice_sample=slice_sample, product="lifetime")
            tau.on_error = report
            meta = {
                "scanimage": {**kwargs["metadata"]["scanimage"], "product": "lifetime"},
                "scanimage_dataset": dataset,
            }
            layers.append(
                (
                    tau,
                    {
                        **kwargs,
                        "name": f"{name} lifetime",
                        "colormap": "turbo",
                        "blending": "translucent_no_depth",
                        "contrast_limits": _lifetime_limits(tau),
                        "metadata": meta,
                    },
                    "image",
                )
            )
    return layers


def _lifetime_limits(tau) -> tuple[float, float]:
    frame = np.asarray(tau[0], dtype=np.float64)
    good = frame[np.isfinite(frame)]
    if not good.size:
        return (0.0, 1.0)
    lo, hi = np.percentile(good, [2, 98])
    return (float(lo), float(hi if hi > lo else lo + 1))


def _contrast_limits(dataset: Dataset, channel: int, plane, slice_sample) -> tuple[float, float]:
    """Limits from one time row (a few frames read once), so napari need not scan the data."""
    frame = dataset.read(channel, plane=plane, slice_sample=slice_sample, times=[0])
    lo, hi = np.percentile(frame, [0.5, 99.8]) if frame.size else (0.0, 1.0)
    if hi <= lo:
        hi = lo + 1
    return (float(lo), float(hi))
