"""Multi-ROI (mesoscope) field views of a :class:`~napari_scanimage._core.dataset.Dataset`.

A field view is the same recording whose frames are one field's band of rows of each page
(:class:`~napari_scanimage._core.reading.PageCrop`); the geometry comes from the file's
RoiGroups (:mod:`napari_scanimage.io.mroi`).
"""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from ..errors import SelectionError
from ..io.mroi import Field, MroiGeometry, mroi_geometry
from .reading import PageCrop

if TYPE_CHECKING:
    from ..io.scanimage import AcquisitionInfo
    from .dataset import Dataset
    from .layout import Layout
    from .reading import ReaderSpec

__all__ = ["FieldMethods"]


class FieldMethods:
    """The multi-ROI part of :class:`~napari_scanimage._core.dataset.Dataset`."""

    if TYPE_CHECKING:  # provided by Dataset
        paths: tuple[Path, ...]
        info: AcquisitionInfo
        spec: ReaderSpec
        layout: Layout
        is_siff: bool
        selected_field: Field | None
        _mroi: MroiGeometry | None
        _field_views: dict[int, Dataset]
        _blocks: dict[Any, Any]

        @property
        def metadata(self) -> dict[str, Any]: ...

    @property
    def mroi_geometry(self) -> MroiGeometry | None:
        """Where the multi-ROI fields lie in the pages (:mod:`.io.mroi`); None when the
        recording is not multi-ROI.

        Raises
        ------
        FormatError, LayoutError
            The ROI metadata are missing or malformed, or describe fields the pages cannot
            hold (or interpolated scanfields, which are not supported).
        """
        if not self.info.mroi:
            return None
        if self._mroi is None:
            page = (
                self.spec.crop.page_shape if self.spec.crop is not None else self.spec.frame_shape
            )
            self._mroi = mroi_geometry(
                self.metadata,
                num_planes=self.info.num_planes,
                page_shape=page,
                frames_per_slice=self.info.frames_per_slice,
                bidirectional=self.info.bidirectional,
                source=self.paths[0].name,
            )
        return self._mroi

    @property
    def fields(self) -> tuple[Field, ...]:
        """The multi-ROI fields (:class:`.io.mroi.Field`), in page order; empty when the
        recording is not multi-ROI, and for a view of one field (:meth:`field`).
        """
        if self.selected_field is not None or not self.info.mroi:
            return ()
        geometry = self.mroi_geometry
        return () if geometry is None else geometry.fields

    @property
    def whole(self) -> Dataset:
        """The whole recording: this dataset, or the one a field view (:meth:`field`) is of."""
        return cast("Dataset", self.__dict__.get("_whole", self))  # set on field views only

    def field(self, field: int | str) -> Dataset:
        """A view of this recording whose frames are one multi-ROI field's pixels.

        Everything works on the view as on a whole recording (``read``, ``array``,
        ``frames``, ``timestamps``, registration, traces); its ``info.frame_shape`` and
        ``info.pixel_size_um`` are the field's.  At planes where the field is not scanned its
        frames are zeros.  Views are cached: the same ``field`` gives the same object.

        Parameters
        ----------
        field : int or str
            Index in :attr:`fields` (negative counts from the end) or field name.

        Raises
        ------
        SelectionError
            Not a multi-ROI recording, no such field, already a field view, or a `.siff`
            recording (photon data of fields are not supported: read the whole pages).
        """
        if self.selected_field is not None:
            raise SelectionError(
                f"this is already a view of field {self.selected_field.name!r}"
                "; take fields of the whole recording"
            )
        fields = self.fields
        if not fields:
            raise SelectionError(
                f"{self.paths[0].name} is not a multi-ROI recording; it has "
                "no fields (read whole frames instead)"
            )
        names = [f.name for f in fields]
        if isinstance(field, str):
            if field not in names:
                raise SelectionError(
                    f"no field named {field!r}; fields are {', '.join(map(repr, names))}"
                )
            k = names.index(field)
        else:
            k = int(field)
            if not -len(fields) <= k < len(fields):
                raise SelectionError(
                    f"field {field} does not exist; the recording has "
                    f"{len(fields)} fields ({', '.join(map(repr, names))})"
                )
            k %= len(fields)
        if self.is_siff:
            raise SelectionError(
                f"{self.paths[0].name}: fields of .siff recordings are not "
                "supported (photon data are read per whole page); read the "
                "whole pages, where field "
                f"{names[k]!r} is rows {fields[k].row_offsets}"
            )
        view = self._field_views.get(k)
        if view is None:
            f = fields[k]
            crop = PageCrop(
                (*self.spec.frame_shape,),
                tuple(-1 if r is None else r for r in f.row_offsets),
                f.height,
                f.width,
                self.layout.num_channels,
                self.layout.frames_per_slice,
                self.layout.num_flyback,
            )
            view = cast("Dataset", copy.copy(self))
            view.spec = dataclasses.replace(self.spec, frame_shape=f.shape, crop=crop)
            view.info = dataclasses.replace(
                self.info,
                frame_shape=f.shape,
                pixel_size_um=f.pixel_size_um,
                lines_per_frame=f.height,
                pixels_per_line=f.width,
            )
            view._blocks = {}
            view._field_views = {}
            view.selected_field = f
            view._whole = cast("Dataset", self)
            self._field_views[k] = view
        return view
