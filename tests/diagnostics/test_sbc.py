"""SBC ranks, simultaneous ECDF bands and the calibration check built on them."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import norm

from amortflow.diagnostics import metrics
from amortflow.exceptions import ShapeError


def test_ranks_count_draws_below_the_truth():
    draws = np.array([[[0.1], [0.5], [0.9], [0.3]]])  # one data set, four draws
    assert metrics.sbc_ranks(draws, np.array([[0.4]]))[0, 0] == 2
    # fractional: centre of the rank's cell among S + 1 = 5 cells of [0, 1]
    assert metrics.sbc_ranks(draws, np.array([[0.4]]), fractional=True)[0, 0] == pytest.approx(2.5 / 5)
    assert metrics.sbc_ranks(draws, np.array([[2.0]]), fractional=True)[0, 0] == pytest.approx(4.5 / 5)
    assert metrics.sbc_ranks(draws, np.array([[-1.0]]))[0, 0] == 0
    assert metrics.sbc_ranks(draws, np.array([[2.0]]))[0, 0] == 4
    # a single parameter may come without its last axis
    assert metrics.sbc_ranks(draws[..., 0], np.array([0.4])).shape == (1, 1)


def test_ranks_reject_mismatched_shapes():
    with pytest.raises(ShapeError, match=r"\(3, 10, 2\).*\(4, 2\)"):
        metrics.sbc_ranks(np.zeros((3, 10, 2)), np.zeros((4, 2)))


@pytest.mark.parametrize("num_samples", [40, 150])
def test_bands_have_the_requested_simultaneous_coverage(num_samples):
    # Fresh uniform samples (another seed than the band's) must lie inside the 95 % band in
    # 95 % of cases. With 1000 samples the standard error is sqrt(.95 * .05 / 1000) = 0.0069;
    # 4 SE = 0.028.
    bands = metrics.simultaneous_ecdf_bands(num_samples, confidence=0.95)
    uniforms = np.random.default_rng(99).uniform(size=(num_samples, 1000))
    ecdf = metrics.rank_ecdf(uniforms, bands.z)
    inside = np.all((ecdf >= bands.lower[:, None]) & (ecdf <= bands.upper[:, None]), axis=0)
    assert abs(inside.mean() - 0.95) < 0.028
    # the band holds the uniform CDF z, up to the 1 / N steps of a binomial quantile
    assert np.all(bands.lower <= bands.z + 1 / num_samples)
    assert np.all(bands.upper >= bands.z - 1 / num_samples)


def test_bands_are_reproducible_and_narrow_with_more_data():
    a = metrics.simultaneous_ecdf_bands(100, num_simulations=300)
    b = metrics.simultaneous_ecdf_bands(100, num_simulations=300)
    np.testing.assert_array_equal(a.lower, b.lower)
    wide = metrics.simultaneous_ecdf_bands(400, num_points=100, num_simulations=300)
    assert np.max(wide.upper - wide.lower) < np.max(a.upper - a.lower)


def test_exact_posterior_ranks_stay_inside_the_bands(calibrated):
    theta, draws = calibrated
    # fixed seeds: at 99 % confidence per parameter a calibrated posterior fails with prob. <= 2 %
    assert metrics.sbc_ecdf_within_bands(draws, theta, confidence=0.99).all()


def test_overconfident_posterior_ranks_leave_the_bands(overconfident):
    theta, draws = overconfident
    # With sd halved the fractional rank is Phi(2 Z), whose CDF Phi(Phi^-1(z) / 2) departs from z by
    # up to 0.159; the 99 % band of N = 500 is only about 1.6 / sqrt(500) = 0.073 wide on each side.
    assert not metrics.sbc_ecdf_within_bands(draws, theta, confidence=0.99).any()


def test_overconfident_rank_ecdf_matches_its_analytic_cdf(overconfident):
    theta, draws = overconfident
    z = np.linspace(0.01, 0.99, 99)
    ecdf = metrics.rank_ecdf(metrics.sbc_ranks(draws, theta, fractional=True), z)
    expected = norm.cdf(norm.ppf(z) / 2)[:, None]
    # DKW: P(sup |F_N - F| > eps) <= 2 exp(-2 N eps^2) = 0.003 for eps = 0.08, N = 500;
    # fractional ranks among S = 400 draws add at most 0.5 / (S + 1) of discretisation.
    assert np.max(np.abs(ecdf - expected)) < 0.08 + 0.5 / 401


def test_default_bins_and_binomial_band():
    assert metrics.default_num_bins(1000, 500) == 20
    assert metrics.default_num_bins(100, 500) == 5
    assert metrics.default_num_bins(1000, 3) == 4  # never more bins than rank values
    low, high = metrics.binomial_band(200, 10, 0.99)
    assert low < 20 < high
