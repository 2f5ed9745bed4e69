"""FLIM analysis of ScanImage-FLIM `.siff` recordings, in one package.

Modules
-------
:mod:`~napari_scanimage.flim.decay`
    Decay fits: :func:`fit_decay`, :func:`fit_dataset_decay`, :class:`DecayFit`,
    :func:`decay_model`.
:mod:`~napari_scanimage.flim.lifetime`
    Lifetime and phasor traces per ROI (:func:`lifetime_traces`; also
    ``napari_scanimage.traces(..., kind="lifetime" | "phasor")``).
:mod:`~napari_scanimage.flim.phasor`
    Per-pixel phasor and lifetime images (:func:`phasor_image`, :func:`lifetime_image`),
    calibration, apparent lifetimes, two-component fractions, intensity-modulated colours.

Everything listed in ``__all__`` is importable from ``napari_scanimage.flim`` directly.
"""

from __future__ import annotations

from .decay import DecayFit, decay_model, fit_dataset_decay, fit_decay
from .lifetime import LifetimeTraces, lifetime_traces
from .phasor import (
    PhasorImage,
    Reference,
    apparent_lifetimes,
    calibrate_with_fit,
    calibrate_with_reference,
    cursor_labels,
    fraction_image,
    histogram_phasor,
    intensity_modulated,
    lifetime_image,
    phasor_image,
    pixel_histograms,
)

__all__ = ["DecayFit", "LifetimeTraces", "PhasorImage", "Reference", "apparent_lifetimes",
           "calibrate_with_fit", "calibrate_with_reference", "cursor_labels", "decay_model",
           "fit_dataset_decay", "fit_decay", "fraction_image", "histogram_phasor",
           "intensity_modulated", "lifetime_image", "lifetime_traces", "phasor_image",
           "pixel_histograms"]
