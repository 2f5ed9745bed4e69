"""Every channel in one array: ``dims``, ``sizes``, ``to_dask`` and ``to_xarray`` of a
:class:`~napari_scanimage.Dataset` (the vocabulary of nd2 and bioio).

:class:`ArrayMethods` gives a dataset the all-channel view.  Its default array is
``to_dask()``: dims ``("T", "C", "Z", "Y", "X")``, without ``"Z"`` for planar recordings (see
:mod:`.axes` for every dim).  It is ``Dataset.array(c)`` of each channel stacked on axis 1.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from ..errors import FormatError, TimestampWarning
from .axes import PIXEL, Axis, acquisition_attrs, selection_axes
from .layout import SliceSample

if TYPE_CHECKING:
    import dask.array
    import xarray

    from ..io.acquisition import AcquisitionInfo
    from ..io.mroi import Field
    from .dataset import Dataset
    from .layout import Layout
    from .reading import ReaderSpec
    from .shifting import Shifts

__all__ = ["ArrayMethods"]


class ArrayMethods:
    """All-channel arrays of a :class:`Dataset`: sizes, dask and xarray views."""

    # what the Dataset provides (its methods are reached through ``cast("Dataset", self)``)
    info: AcquisitionInfo
    layout: Layout
    spec: ReaderSpec
    paths: tuple[Path, ...]
    selected_field: Field | None

    # -- the default array ----------------------------------------------------------------
    def axes(
        self, *, plane: int | None = None, slice_sample: SliceSample = 0, channels: bool = True
    ) -> tuple[Axis, ...]:
        """The axes of ``to_dask(plane=, slice_sample=)``: dim, napari label, size, step, unit.

        With ``channels=False``, those of ``array(c, plane=, slice_sample=)`` (no C axis):
        what the napari layers show.  Steps the file does not state are 1 ``"pixel"``.

        Returns
        -------
        tuple of Axis
        """
        return selection_axes(
            self.info,
            self.layout,
            self.spec.frame_shape,
            plane=plane,
            slice_sample=slice_sample,
            channels=channels,
            field=self.selected_field,
        )

    @property
    def dims(self) -> tuple[str, ...]:
        """Dims of the default array (``to_dask()``): ``("T", "C", "Z", "Y", "X")``, without
        ``"Z"`` when planar.
        """
        return tuple(a.dim for a in self.axes())

    @property
    def sizes(self) -> dict[str, int]:
        """``{dim: size}`` of the default array, e.g. ``{"T": 100, "C": 2, "Z": 5, "Y": 512,
        "X": 512}``.  Z counts planes (flyback frames excluded); frames per slice > 1 are not
        an axis here (``to_dask(slice_sample="axis")`` adds ``"F"``).
        """
        return {a.dim: a.size for a in self.axes()}

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of the default array (``tuple(sizes.values())``)."""
        return tuple(a.size for a in self.axes())

    @property
    def ndim(self) -> int:
        """Number of dims of the default array."""
        return len(self.dims)

    @property
    def dtype(self) -> np.dtype:
        """Data type of the default array: the file's (photon counts: uint16 for `.siff`)."""
        return np.dtype(self.spec.dtype)

    # -- dask and xarray ------------------------------------------------------------------
    def to_dask(
        self,
        *,
        plane: int | None = None,
        slice_sample: SliceSample = 0,
        registration: Shifts | None = None,
        shift_mode: str | None = None,
        field: int | str | None = None,
    ) -> dask.array.Array:
        """Every channel in one lazy dask array.

        Parameters
        ----------
        plane, slice_sample, registration, shift_mode, field
            As for :meth:`array`.

        Returns
        -------
        dask.array.Array
            Dims ``self.axes(plane=, slice_sample=)``: ``(T, C, Z, Y, X)`` by default; no Z
            when planar or ``plane`` is given; F after Z for ``"axis"``; T·F time points for
            ``"interleave"``.  Equal to ``np.stack([array(c, ...) for c in channels], 1)``.
            `.siff`: photon counts.
        """
        import dask.array as da

        ds = cast("Dataset", self)
        if field is not None:
            return ds.field(field).to_dask(
                plane=plane,
                slice_sample=slice_sample,
                registration=registration,
                shift_mode=shift_mode,
            )
        stacked: dask.array.Array = da.stack(  # type: ignore[no-untyped-call]
            [
                ds.array(
                    c,
                    plane=plane,
                    slice_sample=slice_sample,
                    registration=registration,
                    shift_mode=shift_mode,
                )
                for c in range(self.layout.num_channels)
            ],
            axis=1,
        )
        return stacked

    def to_xarray(
        self,
        *,
        plane: int | None = None,
        slice_sample: SliceSample = 0,
        registration: Shifts | None = None,
        shift_mode: str | None = None,
        field: int | str | None = None,
    ) -> xarray.DataArray:
        """Every channel as a labelled, dask-backed ``xarray.DataArray``.

        Parameters
        ----------
        plane, slice_sample, registration, shift_mode, field
            As for :meth:`to_dask`.

        Returns
        -------
        xarray.DataArray
            Dims as :meth:`to_dask`.  Coordinates: ``T`` in seconds from the frame timestamps
            (of plane 0, or of ``plane``: when each volume's scan began); ``C`` channel names;
            ``Z``, ``Y``, ``X`` in µm when the file states the steps, else pixel indices
            (each coordinate's ``attrs["units"]`` says which); ``F`` sample index.  A picked
            ``plane`` stays as a scalar ``Z`` coordinate.  ``attrs``: the acquisition info as
            JSON-friendly values (:func:`.axes.acquisition_attrs`) and the selection.
        """
        import xarray as xr

        ds = cast("Dataset", self)
        if field is not None:
            return ds.field(field).to_xarray(
                plane=plane,
                slice_sample=slice_sample,
                registration=registration,
                shift_mode=shift_mode,
            )
        data = self.to_dask(
            plane=plane, slice_sample=slice_sample, registration=registration, shift_mode=shift_mode
        )
        axes = self.axes(plane=plane, slice_sample=slice_sample)
        coords: dict[str, Any] = {}
        for axis in axes:
            if axis.dim == "C":
                coords["C"] = ("C", list(self.info.channel_names))
            elif axis.dim == "T":
                coords["T"] = ("T", *self._time_coordinate(axis, plane, slice_sample))
            else:
                coords[axis.dim] = (axis.dim, axis.coords, {"units": axis.unit})
        if plane is not None and self.info.num_planes > 1:  # the picked plane's z
            index = ds.selection(0, plane=plane).plane or 0
            step = self.info.z_step_um
            coords["Z"] = ((), index * (step or 1.0), {"units": "µm" if step else PIXEL})
        attrs = acquisition_attrs(
            self.info, self.paths, flim=ds.flim if ds.is_siff else None, field=self.selected_field
        )
        attrs["selection"] = {
            "plane": plane,
            "slice_sample": slice_sample,
            "registered": registration is not None,
        }
        name = self.paths[0].stem + (
            f" {self.selected_field.name}" if self.selected_field is not None else ""
        )
        return xr.DataArray(data, dims=[a.dim for a in axes], coords=coords, attrs=attrs, name=name)

    def _time_coordinate(
        self, axis: Axis, plane: int | None, slice_sample: SliceSample
    ) -> tuple[np.ndarray, dict[str, str]]:
        """Times (s) of the T axis from the frame timestamps, and the coordinate's attrs.

        Without per-frame timestamps the frame numbers ÷ frame rate stand in (said in the
        attrs, not warned: the user did not ask for timestamps); without a rate either, the
        index steps of ``axis``.
        """
        mode: SliceSample = 0 if slice_sample == "axis" else slice_sample
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", TimestampWarning)
                times = cast("Dataset", self).timestamps(
                    0 if plane is None else plane, slice_sample=mode
                )
        except FormatError:
            return axis.coords, {"units": axis.unit, "source": "index × volume period"}
        derived = any(issubclass(w.category, TimestampWarning) for w in caught)
        source = "frame number / frame rate" if derived else "frameTimestamps_sec"
        return np.asarray(times, dtype=np.float64), {"units": "s", "source": source}
