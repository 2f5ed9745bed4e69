"""FLIM analysis of ScanImage-FLIM `.siff` recordings, in one namespace.

Decay fits (:func:`fit_decay`, :func:`fit_dataset_decay`, :class:`DecayFit`,
:func:`decay_model`), lifetime and phasor traces per ROI (:func:`lifetime_traces`; also
``napari_scanimage.traces(..., kind="lifetime" | "phasor")``) and per-pixel phasor and lifetime
images (:func:`phasor_image`, :func:`lifetime_image`, calibration, apparent lifetimes,
two-component fractions, intensity-modulated colours).
"""

from __future__ import annotations

from .analysis.flim import DecayFit, decay_model, fit_dataset_decay, fit_decay
from .analysis.lifetime import LifetimeTraces, lifetime_traces
from .analysis.phasor import (
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
