"""Decay model and Poisson maximum-likelihood decay fitting (flim.decay_model, flim.fitting,
flim.fit_result).
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import integrate

from napari_scanimage.errors import FormatError, SelectionError
from napari_scanimage.flim import DecayFit, decay_model, fit_dataset_decay, fit_decay

BIN_PS, PERIOD_PS, NBINS = 20.0, 12500.0, 625  # write_siff defaults: 5 ps * 2**2, 80 MHz
W, P = BIN_PS / 1000, PERIOD_PS / 1000
T = (np.arange(NBINS) + 0.5) * W
IRF = {"irf_offset_ns": 0.5, "irf_width_ns": 0.1}


def _probabilities(taus, fractions=None, background=0.0):
    return decay_model(
        T,
        taus_ns=taus,
        fractions=fractions,
        period_ns=P,
        bin_width_ns=W,
        background=background,
        **IRF,
    )


def _brute_density(t, taus, fractions, mu, sigma, period, pulses=range(-3, 60)):
    """Explicit convolution integral of each pulse's decay with the Gaussian IRF, summed."""

    def one(x, tau):
        def f(s):
            return math.exp(-s / tau) / tau * math.exp(-0.5 * ((x - s - mu) / sigma) ** 2)

        lo, hi = max(0.0, x - mu - 12 * sigma), max(0.0, x - mu + 12 * sigma)
        if hi <= 0:
            return 0.0
        val = integrate.quad(f, lo, hi, epsabs=0, epsrel=1e-12, limit=200)[0]
        return val / (sigma * math.sqrt(2 * math.pi))

    return np.array(
        [
            sum(
                fr * sum(one(x + k * period, tau) for k in pulses)
                for tau, fr in zip(taus, fractions, strict=True)
            )
            for x in t
        ]
    )


def test_model_matches_brute_force_convolution():
    taus, fracs = (0.9, 2.6), (0.6, 0.4)
    t = np.linspace(0.0, P, 41, endpoint=False) + 0.013
    brute = _brute_density(t, taus, fracs, 0.5, 0.1, P)
    model = decay_model(t, taus_ns=taus, fractions=fracs, period_ns=P, total=1.0, **IRF)
    np.testing.assert_allclose(model, brute / brute.sum(), rtol=1e-6)
    # single pulse (no period): the wrapped-around tails are absent
    brute1 = _brute_density(t, taus, fracs, 0.5, 0.1, P, pulses=[0])
    model1 = decay_model(t, taus_ns=taus, fractions=fracs, total=3.0, **IRF)
    np.testing.assert_allclose(model1, 3.0 * brute1 / brute1.sum(), rtol=1e-6, atol=1e-300)
    assert model1[0] < 1e-3 * model[0]  # before the pulse mostly earlier pulses' tails


def test_bin_probabilities_integrate_density_and_match_synthetic_truth():
    taus, fracs = (0.9, 2.6), (0.6, 0.4)
    p = _probabilities(taus, fracs)
    assert p.sum() == pytest.approx(1.0, abs=1e-12)
    fine = (np.arange(NBINS * 64) + 0.5) * (W / 64)  # midpoint rule, 64 points per bin
    dens = decay_model(fine, taus_ns=taus, fractions=fracs, period_ns=P, **IRF)
    np.testing.assert_allclose(p, dens.reshape(NBINS, 64).sum(1), rtol=2e-5)
    from napari_scanimage.testing.photons import bin_probabilities

    truth = bin_probabilities([900.0, 2600.0], fracs, 500.0, 100.0, PERIOD_PS, BIN_PS, NBINS)
    np.testing.assert_allclose(p, truth / truth.sum(), rtol=1e-8, atol=1e-15)
    bg = _probabilities(taus, fracs, background=0.25)
    np.testing.assert_allclose(bg, 0.75 * p + 0.25 / NBINS, rtol=1e-12)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_single_exponential_recovered_at_1e4_photons(seed):
    y = np.random.default_rng(seed).multinomial(10_000, _probabilities((2.6,)))
    fit = fit_decay(y, bin_width_ps=BIN_PS, period_ps=PERIOD_PS, n_exp=1)
    assert fit.converged and fit.n_exp == 1 and fit.fractions == (1.0,)
    assert abs(fit.taus_ns[0] / 2.6 - 1) < 0.02  # within 2 %; the standard error is ~1.2 %
    assert abs(fit.taus_ns[0] - 2.6) < 3 * fit.stderr["taus_ns"][0]
    assert abs(fit.irf_offset_ns - 0.5) < 0.03 and abs(fit.irf_width_ns - 0.1) < 0.03
    assert 0 <= fit.background < 0.02 and fit.total == 10_000
    assert fit.deviance == pytest.approx(NBINS, rel=0.25)
    assert fit.model().sum() == pytest.approx(10_000)


def test_two_exponentials_recovered():
    p = _probabilities((0.9, 2.6), (0.6, 0.4))
    # at 1e4 photons the Cramér-Rao bound is ~6 % on each lifetime and ~0.05 on the fractions:
    # the estimate must be within 3 standard errors
    y = np.random.default_rng(5).multinomial(10_000, p)
    fit = fit_decay(y, bin_width_ps=BIN_PS, period_ps=PERIOD_PS, n_exp=2, background=False)
    for est, true, err in zip(fit.taus_ns, (0.9, 2.6), fit.stderr["taus_ns"], strict=True):
        assert abs(est - true) < 3 * err and err < 0.1 * true
    assert abs(fit.fractions[0] - 0.6) < 3 * fit.stderr["fractions"][0] < 0.25
    # 2 % on the lifetimes and 0.03 on the fractions needs ~1e6 photons (background fitted)
    y = np.random.default_rng(6).multinomial(3_000_000, p)
    fit = fit_decay(y, bin_width_ps=BIN_PS, period_ps=PERIOD_PS, n_exp=2)
    assert fit.converged
    np.testing.assert_allclose(fit.taus_ns, (0.9, 2.6), rtol=0.02)
    np.testing.assert_allclose(fit.fractions, (0.6, 0.4), atol=0.03)
    assert sum(fit.fractions) == pytest.approx(1.0)
    assert fit.mean_tau_ns == pytest.approx(0.6 * 0.9 + 0.4 * 2.6, rel=0.02)
    assert fit.amplitude_mean_tau_ns == pytest.approx(1 / (0.6 / 0.9 + 0.4 / 2.6), rel=0.02)
    assert fit.background < 0.005 and abs(fit.irf_offset_ns - 0.5) < 0.01


def test_fit_of_photons_written_to_a_siff(tmp_path, opened):
    from napari_scanimage.testing.siff import write_siff
    from napari_scanimage.testing.tiff import SyntheticLayout

    lay = SyntheticLayout(channels=(1,), num_volumes=20, height=32, width=32)
    truth = write_siff(
        tmp_path / "f.siff",
        lay,
        photons_per_frame=3000,
        taus_ns=((1.5,),),
        irf_offset_ns=0.5,
        irf_width_ns=0.1,
        seed=3,
    )
    ds = opened(truth.path)
    fit = fit_dataset_decay(ds, 0, n_exp=1)
    assert fit.bin_width_ps == truth.bin_width_ps and fit.period_ps == truth.laser_period_ps
    assert fit.total == pytest.approx(truth.photon_counts.sum())
    assert abs(fit.taus_ns[0] - 1.5) < 3 * fit.stderr["taus_ns"][0] < 0.05


def test_stderr_coverage_over_repeated_draws():
    p = _probabilities((2.0,))
    rng = np.random.default_rng(11)
    hits = []
    for _ in range(200):
        fit = fit_decay(
            rng.multinomial(10_000, p),
            bin_width_ps=BIN_PS,
            period_ps=PERIOD_PS,
            n_exp=1,
            background=False,
        )
        hits.append(abs(fit.taus_ns[0] - 2.0) <= 1.96 * fit.stderr["taus_ns"][0])
    assert 0.90 <= np.mean(hits) <= 0.99


def test_fixed_and_initial_parameters():
    y = np.random.default_rng(2).multinomial(20_000, _probabilities((0.9, 2.6), (0.6, 0.4)))
    fit = fit_decay(
        y,
        bin_width_ps=BIN_PS,
        period_ps=PERIOD_PS,
        n_exp=2,
        fixed={"taus_ns": (0.9, 2.6), "irf_width_ns": 0.1},
        initial={"fractions": (0.5, 0.5)},
    )
    assert fit.taus_ns == (0.9, 2.6) and fit.irf_width_ns == 0.1
    assert fit.stderr["taus_ns"] == (0.0, 0.0) and fit.stderr["irf_width_ns"] == 0.0
    assert abs(fit.fractions[0] - 0.6) < 3 * fit.stderr["fractions"][0] < 0.03
    assert fit.stderr["fractions"][0] == pytest.approx(fit.stderr["fractions"][1])
    three = fit_decay(y, bin_width_ps=BIN_PS, period_ps=PERIOD_PS, n_exp=3)
    assert (
        three.n_exp == 3
        and len(three.taus_ns) == 3
        and list(three.taus_ns) == sorted(three.taus_ns)
    )
    assert three.deviance <= fit.deviance + 1e-6


def test_save_load_round_trip(tmp_path):
    y = np.random.default_rng(4).multinomial(10_000, _probabilities((0.9, 2.6), (0.6, 0.4)))
    fit = fit_decay(y, bin_width_ps=BIN_PS, period_ps=PERIOD_PS, n_exp=2, fit_range=(10, 600))
    path = fit.save(tmp_path / "fit.json")
    doc = json.loads(path.read_text())
    assert doc["format"] == "napari-scanimage-decay-fit" and doc["version"] == 1
    back = DecayFit.load(path)
    assert back == fit and back.fit_range == (10, 600)
    np.testing.assert_array_equal(back.model(np.arange(700)), fit.model(np.arange(700)))
    assert fit.model().sum() == pytest.approx(y[10:600].sum())
    assert fit.model([650]) == 0.0  # past the laser period
    nan = DecayFit((1.0,), (1.0,), 0.5, 0.1, 0.0, 10.0, {"taus_ns": (math.nan,)}, 20.0)
    assert math.isnan(DecayFit.load(nan.save(tmp_path / "nan.json")).stderr["taus_ns"][0])


def test_bad_files(tmp_path):
    bad = tmp_path / "bad.json"
    for text, match in [
        ("not json", "not a decay-fit"),
        ("[1, 2]", "not a napari-scanimage"),
        ('{"format": "napari-scanimage-decay-fit", "version": 2}', "version 2"),
        ('{"format": "napari-scanimage-decay-fit", "version": 1}', "missing"),
    ]:
        bad.write_text(text)
        with pytest.raises(FormatError, match=match):
            DecayFit.load(bad)
    with pytest.raises(FormatError):
        DecayFit.load(tmp_path / "missing.json")


@pytest.mark.parametrize(
    "histogram, kwargs, match",
    [
        ([], {}, "non-empty"),
        (np.zeros((3, 600)), {}, "1-D"),
        (np.full(625, -1.0), {}, "negative"),
        (np.ones(625) * 0.1, {}, "photons"),
        (np.ones(625) * 10, {"n_exp": 4}, "n_exp"),
        (np.ones(625) * 10, {"n_exp": 0}, "n_exp"),
        (np.ones(625) * 10, {"fit_range": (600, 700)}, "fit range"),
        (np.ones(700) * 10, {"fit_range": (0, 700)}, "past the laser period"),
        (np.ones(625) * 10, {"bin_width_ps": 0}, "bin width"),
        (np.ones(625) * 10, {"fixed": {"tau": 1.0}}, "unknown parameter"),
    ],
)
def test_bad_input(histogram, kwargs, match):
    kwargs = {"bin_width_ps": BIN_PS, "period_ps": PERIOD_PS, **kwargs}
    with pytest.raises(SelectionError, match=match):
        fit_decay(histogram, **kwargs)


def test_reduced_chi2_from_deviance_and_degrees_of_freedom(tmp_path):
    p = _probabilities((0.9, 2.6), (0.6, 0.4), background=0.02)
    y = np.random.default_rng(21).multinomial(100_000, p)
    fit = fit_decay(y, bin_width_ps=BIN_PS, period_ps=PERIOD_PS, n_exp=2)
    # 2 lifetimes, 1 free fraction, IRF offset and width, background; photon number fixed
    assert fit.n_free == fit.free_parameters == 6
    assert fit.degrees_of_freedom == NBINS - 6 - 1
    assert fit.reduced_chi2 == pytest.approx(fit.deviance / (NBINS - 7))
    assert 0.85 < fit.reduced_chi2 < 1.15  # Poisson data drawn from the model
    fixed = fit_decay(
        y,
        bin_width_ps=BIN_PS,
        period_ps=PERIOD_PS,
        n_exp=2,
        fixed={"irf_width_ns": 0.1},
        background=False,
    )
    assert fixed.n_free == 4 and fixed.degrees_of_freedom == NBINS - 5
    # a file written before n_free was stored: inferred from the standard errors
    for one in (fit, fixed):
        path = one.save(tmp_path / "fit.json")
        doc = json.loads(path.read_text())
        del doc["n_free"]
        path.write_text(json.dumps(doc))
        old = DecayFit.load(path)
        assert old.n_free == -1 and old.free_parameters == one.n_free
        assert old.reduced_chi2 == pytest.approx(one.reduced_chi2)
    # too few components for the data: the reduced χ² says so
    y = np.random.default_rng(22).multinomial(1_000_000, p)
    one_exp = fit_decay(y, bin_width_ps=BIN_PS, period_ps=PERIOD_PS, n_exp=1)
    assert one_exp.reduced_chi2 > 2 and "reduced χ²" in " ".join(one_exp.warnings())


def test_collapsed_fit_is_flagged():
    y = np.random.default_rng(23).multinomial(200_000, _probabilities((0.9, 2.6), (0.6, 0.4)))
    good = fit_decay(y, bin_width_ps=BIN_PS, period_ps=PERIOD_PS, n_exp=2)
    assert good.warnings() == [] and not good.degenerate
    three = fit_decay(y, bin_width_ps=BIN_PS, period_ps=PERIOD_PS, n_exp=3)
    assert three.degenerate
    text = " ".join(three.warnings())
    assert "≈" in text or "standard errors" in text or "% of the photons" in text
    collapsed = DecayFit(
        (0.9, 0.905, 2.6),
        (0.3, 0.3, 0.4),
        0.5,
        0.1,
        0.0,
        1e5,
        {"taus_ns": (0.1, 0.1, 0.1), "fractions": (81.0, 81.0, 0.01)},
        20.0,
        PERIOD_PS,
        3,
        600.0,
        (0, NBINS),
        True,
        8,
    )
    warnings = collapsed.warnings()
    assert any("τ1 = 0.9 ns ≈ τ2 = 0.905 ns (fit 2 components)" in w for w in warnings)
    assert any("fraction 1 0.3 ± 81" in w for w in warnings)
    stuck = DecayFit(
        (2.0,),
        (1.0,),
        0.5,
        0.1,
        0.0,
        1e4,
        {"taus_ns": (0.05,)},
        20.0,
        PERIOD_PS,
        1,
        600.0,
        (0, NBINS),
        False,
        4,
    )
    assert stuck.warnings() == ["the optimiser did not converge"]
    odd = DecayFit(
        (1.0, 3.0),
        (1.5, -0.5),
        0.5,
        0.1,
        0.0,
        1e4,
        {"taus_ns": (math.nan, 0.1), "fractions": (0.1, 0.1)},
        20.0,
        PERIOD_PS,
        2,
    )
    text = " ".join(odd.warnings())
    assert "fraction 2 = -0.5 lies outside [0, 1]" in text and "undefined" in text
