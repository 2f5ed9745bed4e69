"""FLIM analysis of ScanImage-FLIM `.siff` recordings, in one package.

Modules
-------
:mod:`~napari_scanimage.flim.decay_model`
    The decay model: exponentials convolved with a Gaussian IRF, wrapped at the laser period
    (:func:`decay_model`).
:mod:`~napari_scanimage.flim.fitting`
    Poisson maximum-likelihood decay fits (:func:`fit_decay`, :func:`fit_dataset_decay`).
:mod:`~napari_scanimage.flim.fit_result`
    The fit result :class:`DecayFit`: parameters, standard errors, diagnostics, JSON file.
:mod:`~napari_scanimage.flim.pixels`
    Per-pixel photon accumulation: arrival-time histograms (:func:`pixel_histograms`,
    :class:`PixelHistograms`) and mean-arrival-time images (:func:`lifetime_image`).
:mod:`~napari_scanimage.flim.phasor`
    Phasor images (:func:`phasor_image`, :class:`PhasorImage`, :func:`histogram_phasor`),
    calibration (:func:`calibrate_with_reference`, :class:`Reference`,
    :func:`calibrate_with_fit`, :func:`irf_phasor`), apparent lifetimes, two-component
    fractions (:func:`fraction_image`), filtering (:func:`filter_phasor`) and the mean phasor
    of a region (:func:`mean_phasor`).
:mod:`~napari_scanimage.flim.phasor_plot`
    Plotting a phasor image: :func:`phasor_bounds`, :func:`phasor_histogram`,
    :func:`semicircle_distance`, :func:`lifetime_ticks`, the pixel census
    (:func:`phasor_census`, :class:`PhasorCensus`) and :func:`cursor_labels`.
:mod:`~napari_scanimage.flim.colormaps`
    The Turbo colour map (:func:`turbo`) and intensity-modulated lifetime colours
    (:func:`intensity_modulated`).
:mod:`~napari_scanimage.flim.lifetime`
    Lifetime and phasor traces per ROI (:func:`lifetime_traces`; also
    ``napari_scanimage.traces(..., kind="lifetime" | "phasor")``).

Everything listed in ``__all__`` is importable from ``napari_scanimage.flim`` directly.
"""

from __future__ import annotations

from .colormaps import intensity_modulated, turbo
from .decay_model import decay_model
from .fit_result import DecayFit
from .fitting import fit_dataset_decay, fit_decay
from .lifetime import LifetimeTraces, lifetime_traces
from .phasor import (
    PhasorImage,
    Reference,
    apparent_lifetimes,
    calibrate_with_fit,
    calibrate_with_reference,
    filter_phasor,
    fraction_image,
    histogram_phasor,
    irf_phasor,
    mean_phasor,
    phasor_image,
)
from .phasor_plot import (
    SEMICIRCLE_TOLERANCE,
    PhasorCensus,
    cursor_labels,
    lifetime_ticks,
    phasor_bounds,
    phasor_census,
    phasor_histogram,
    semicircle_distance,
)
from .pixels import PixelHistograms, lifetime_image, pixel_histograms

__all__ = [
    "SEMICIRCLE_TOLERANCE",
    "DecayFit",
    "LifetimeTraces",
    "PhasorCensus",
    "PhasorImage",
    "PixelHistograms",
    "Reference",
    "apparent_lifetimes",
    "calibrate_with_fit",
    "calibrate_with_reference",
    "cursor_labels",
    "decay_model",
    "filter_phasor",
    "fit_dataset_decay",
    "fit_decay",
    "fraction_image",
    "histogram_phasor",
    "intensity_modulated",
    "irf_phasor",
    "lifetime_image",
    "lifetime_ticks",
    "lifetime_traces",
    "mean_phasor",
    "phasor_bounds",
    "phasor_census",
    "phasor_histogram",
    "phasor_image",
    "pixel_histograms",
    "semicircle_distance",
    "turbo",
]
