"""The array layer a :class:`~napari_scanimage.Dataset` is made of, top-down.

:mod:`.dataset`
    ``open_dataset`` and ``Dataset``: metadata, lazy arrays, timestamps, frame indices.
:mod:`.arrays`
    ``dims``, ``sizes``, ``to_dask`` and ``to_xarray``: every channel in one array.
:mod:`.axes`
    Dims, sizes, physical steps and units of a selection (xarray coordinates, napari scale).
:mod:`.probe`
    ``is_scanimage``: a header check that never raises.
:mod:`.photons`
    The photon methods of a ``.siff`` dataset (photons, histograms, mask sums, events).
:mod:`.timing`
    Frame descriptions, frame indices and timestamps (the recording's clocks).
:mod:`.live`
    Re-indexing a recording that is still being written (``Dataset.refresh``).
:mod:`.reading`
    Picklable reader specs, per-thread file readers, block readers and lazy arrays.
:mod:`.layout`
    The page table: which page holds (time, plane, sample, channel), selections, dims.
:mod:`.shifting`
    Rigid shifts and bidirectional correction applied to frames and masks on read.

The core imports :mod:`napari_scanimage.io` and :mod:`napari_scanimage.errors` only; analysis,
FLIM, sessions and the GUI build on it, never the other way round.
"""
