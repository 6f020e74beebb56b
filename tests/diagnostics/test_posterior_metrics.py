"""Known answers for calibration error, coverage, z-score, contraction, RMSE, r and R², and ECE.

Conjugate model of tests/diagnostics/conjugate.py: N = 500 data sets, exact posterior N(x / 2, 1 / 2).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm

from amortflow.diagnostics import metrics
from amortflow.exceptions import ArgumentError

N = 500
# An empirical coverage over N data sets has standard error sqrt(a (1 - a) / N) <= 0.5 / sqrt(N).
COVERAGE_TOL = 4 * 0.5 / np.sqrt(N)  # = 0.089


def test_coverage_of_the_exact_posterior_is_nominal(calibrated):
    theta, draws = calibrated
    alphas = np.array([0.1, 0.5, 0.8, 0.95])
    coverage = metrics.credible_interval_coverage(draws, theta, alphas)
    assert coverage.shape == (4, 2)
    assert np.all(np.abs(coverage - alphas[:, None]) < 4 * np.sqrt(alphas * (1 - alphas) / N)[:, None])


def test_calibration_error_is_small_for_exact_and_large_for_overconfident(calibrated, overconfident):
    exact = metrics.posterior_calibration_error(*reversed(calibrated))
    assert exact.shape == (2,) and np.all(exact < COVERAGE_TOL)
    # sd halved: the central a-interval covers 2 Phi(Phi^-1((1 + a) / 2) / 2) - 1 of the truths
    alphas = metrics.credible_levels(20)
    expected = np.median(np.abs(2 * norm.cdf(norm.ppf((1 + alphas) / 2) / 2) - 1 - alphas))  # 0.214
    over = metrics.posterior_calibration_error(*reversed(overconfident))
    assert np.all(np.abs(over - expected) < COVERAGE_TOL)
    assert np.all(over > exact + COVERAGE_TOL)


def test_z_scores_are_standard_normal_for_the_exact_posterior(calibrated, overconfident):
    z = metrics.posterior_z_score(*reversed(calibrated))
    # (x / 2 - theta) / sqrt(1/2) ~ N(0, 1): mean within 4 / sqrt(N), sd within 4 sqrt(1 / (2 N)) of one
    assert np.all(np.abs(z.mean(axis=0)) < 4 / np.sqrt(N))
    assert np.all(np.abs(z.std(axis=0) - 1) < 4 * np.sqrt(1 / (2 * N)))
    z_over = metrics.posterior_z_score(*reversed(overconfident))
    assert np.all(np.abs(z_over.std(axis=0) - 2) < 4 * 2 * np.sqrt(1 / (2 * N)))


def test_contraction_of_the_conjugate_posterior_is_one_half(calibrated):
    theta, draws = calibrated
    contraction = metrics.posterior_contraction(draws, prior_variance=1.0)
    # each posterior variance from S = 400 draws has sd 0.5 sqrt(2 / 399); the mean over N
    # data sets has sd 0.5 sqrt(2 / 399) / sqrt(N) = 0.0016
    assert np.all(np.abs(contraction.mean(axis=0) - 0.5) < 4 * 0.5 * np.sqrt(2 / 399) / np.sqrt(N))
    from_samples = metrics.posterior_contraction(draws, prior_samples=theta)
    np.testing.assert_allclose(from_samples, 1 - draws.var(axis=1, ddof=1) / theta.var(axis=0, ddof=1))
    with pytest.raises(ArgumentError, match="exactly one"):
        metrics.posterior_contraction(draws)


def test_rmse_of_exact_posterior_draws(calibrated):
    theta, draws = calibrated
    rms = metrics.root_mean_squared_error(
        draws, theta, normalized=False, aggregator_fun=lambda v, axis: np.sqrt(np.mean(v**2, axis=axis))
    )
    # draw - theta = (x / 2 - theta) + sqrt(1/2) eps, so E (draw - theta)^2 = 1/2 + 1/2 = 1.
    # Variance of the mean over N data sets and S draws: (x / 2 - theta)^2 is 0.5 chi^2_1
    # (variance 0.5 / N), 0.5 eps^2 adds 0.5 / (N S), the cross term 2 (x/2 - theta) sqrt(1/2) eps 1 / (N S).
    num_draws = draws.shape[1]
    sd = np.sqrt(0.5 / N + 1.5 / (N * num_draws))
    assert np.all(np.abs(rms**2 - 1.0) < 4 * sd)


def test_rmse_of_point_estimates_and_its_normalisation():
    truth = np.linspace(0, 4, 9)[:, None] * np.array([[1.0, 10.0]])  # ranges 4 and 40
    estimates = truth + 2.0
    np.testing.assert_allclose(metrics.root_mean_squared_error(estimates, truth), [0.5, 0.05])
    np.testing.assert_allclose(metrics.root_mean_squared_error(estimates, truth, normalized=False), [2.0, 2.0])
    assert metrics.aggregated_rmse(estimates, truth) == pytest.approx(0.275)
    assert metrics.aggregated_rmse(truth, truth) == 0.0


def test_correlation_and_r_squared_match_reference_implementations():
    from sklearn.metrics import r2_score

    rng = np.random.default_rng(4)
    truth = rng.standard_normal((200, 3))
    estimates = 0.8 * truth + 0.3 + 0.5 * rng.standard_normal((200, 3))
    r = metrics.correlation(estimates, truth)
    np.testing.assert_allclose(r, [np.corrcoef(estimates[:, d], truth[:, d])[0, 1] for d in range(3)])
    reference = r2_score(truth, estimates, multioutput="raw_values")
    np.testing.assert_allclose(metrics.r_squared(estimates, truth), reference)
    np.testing.assert_allclose(metrics.r_squared(truth, truth), 1.0)
    assert metrics.r_squared(pd.Series(truth[:, 0]), truth[:, 0]).shape == (1,)  # pandas in, numpy out


def _categorical(rng, probs):
    return (rng.uniform(size=(probs.shape[0], 1)) > np.cumsum(probs, axis=1)).sum(axis=1)


def test_expected_calibration_error_of_calibrated_and_overconfident_probabilities():
    rng = np.random.default_rng(5)
    n, num_bins = 5000, 10
    logits = 1.5 * rng.standard_normal((n, 3))
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    true = _categorical(rng, probs)  # the probabilities are calibrated by construction
    # per bin |acc_b - conf_b| has sd <= 0.5 / sqrt(n_b); with 4 sd in every bin,
    # ECE <= sum_b (n_b / n) 2 / sqrt(n_b) <= 2 sqrt(B / n) (Cauchy-Schwarz) = 0.089
    bound = 2 * np.sqrt(num_bins / n)
    ece = metrics.expected_calibration_error(true, probs, num_bins)
    assert ece.shape == (3,) and np.all(ece < bound)
    sharpened = np.exp(3 * logits) / np.exp(3 * logits).sum(axis=1, keepdims=True)  # over-confident
    assert np.all(metrics.expected_calibration_error(np.eye(3)[true], sharpened, num_bins) > bound)


def test_calibration_curves_by_hand():
    true = np.array([0, 0, 1, 1])
    probs = np.array([[0.95, 0.05], [0.85, 0.15], [0.15, 0.85], [0.85, 0.15]])
    curve = metrics.model_calibration_curves(true, probs, num_bins=10)[0]
    # bins of model 0: 0.15 -> bin 1, 0.85 (x2) -> bin 8, 0.95 -> bin 9
    np.testing.assert_allclose(curve.prob_pred, [0.15, 0.85, 0.95])
    np.testing.assert_allclose(curve.prob_true, [0.0, 0.5, 1.0])
    np.testing.assert_array_equal(curve.counts, [1, 2, 1])
    # ECE_0 = (1 * 0.15 + 2 * 0.35 + 1 * 0.05) / 4
    assert metrics.expected_calibration_error(true, probs)[0] == pytest.approx(0.9 / 4)
