"""Rejection ABC and SMC-ABC on the conjugate Gaussian model (:mod:`tests.inference.conjugate`).

The summary is the data itself, the sample mean ``xbar``, which is sufficient, so the ABC
posterior tends to the exact one as the tolerance ``eps`` shrinks. For small ``eps`` the
accepted ``xbar`` are about uniform in the disc ``|xbar - x_obs| <= eps`` (MAD units cancel: both
summaries have the same scale), so the ABC posterior is the exact posterior widened by the
spread of its mean ``10 xbar / 11`` over the disc: per axis, variance
``1/11 + (10/11)^2 eps_raw^2 / 4``. At the smallest quantile below that is a 1 % wider sd, far
inside the Monte Carlo budget: 4 standard errors of a mean (``sd / sqrt(n)``) and of an sd
(``1 / sqrt(2 n)``) for ``n`` accepted draws (the Kish ESS for weighted particles).
"""

from __future__ import annotations

import numpy as np
import pytest

import amortflow as af
from amortflow.exceptions import ArgumentError, ShapeError
from amortflow.inference import rejection_abc, smc_abc
from tests.inference.conjugate import N_OBS, POSTERIOR_MEAN, POSTERIOR_SD, X_OBS, model, sample_means


def errors(draws, weights=None):
    """``(|mean - exact| / sd, sd / exact sd)`` per axis."""
    mean = np.average(draws, axis=0, weights=weights)
    sd = np.sqrt(np.average(np.square(draws - mean), axis=0, weights=weights))
    return np.abs(mean - POSTERIOR_MEAN) / POSTERIOR_SD, sd / POSTERIOR_SD


def test_rejection_abc_approaches_the_posterior_as_the_quantile_shrinks():
    sd_ratios = []
    for quantile in (0.3, 0.05, 0.002):
        result = rejection_abc(model(), X_OBS, num_simulations=200_000, quantile=quantile, seed=0)
        n = len(result.draws)
        assert n == int(np.ceil(quantile * 200_000)) and result.num_simulations == 200_000
        assert np.all(np.diff(result.distances) >= 0) and result.tolerance == result.distances[-1]
        mean_error, sd_ratio = errors(result.draws)
        sd_ratios.append(sd_ratio)
    assert np.all(np.diff(np.asarray(sd_ratios), axis=0) < 0)  # narrower with every smaller quantile
    assert np.all(sd_ratios[0] > 1.3)  # a large tolerance is visibly too wide
    np.testing.assert_array_less(mean_error, 4 / np.sqrt(n) + 0.02)
    np.testing.assert_array_less(np.abs(sd_ratio - 1), 4 / np.sqrt(2 * n) + 0.02)


def test_smc_abc_reaches_a_small_tolerance_with_fewer_simulations():
    result = smc_abc(model(), X_OBS, num_particles=1000, num_generations=6, seed=0)
    assert result.particles.shape == (1000, 2) and np.isclose(result.weights.sum(), 1.0)
    assert len(result.tolerances) == 7 and np.all(np.diff(result.tolerances) < 0)
    assert np.all(result.distances <= result.tolerances[-1])
    ess = result.ess
    mean_error, sd_ratio = errors(result.particles, result.weights)
    np.testing.assert_array_less(mean_error, 4 / np.sqrt(ess) + 0.05)
    np.testing.assert_array_less(np.abs(sd_ratio - 1), 4 / np.sqrt(2 * ess) + 0.05)
    # rejection ABC needs num_particles / P(d <= eps) prior simulations for the same tolerance
    reference = rejection_abc(model(), X_OBS, num_simulations=100_000, quantile=1.0, seed=1)
    share = np.mean(reference.distances <= result.tolerances[-1])
    assert result.num_simulations < 0.75 * 1000 / share  # about half here
    assert result.sample(50, seed=0).shape == (50, 2)


def test_smc_abc_stops_at_its_budget_and_at_a_low_acceptance():
    capped = smc_abc(model(), X_OBS, num_particles=200, num_generations=20, max_simulations=6000, seed=0)
    assert capped.num_simulations <= 6000 and len(capped.tolerances) < 21
    picky = smc_abc(model(), X_OBS, num_particles=200, num_generations=20, min_acceptance_rate=0.2, seed=0)
    assert len(picky.tolerances) < 21 and picky.acceptance_rates[-1] < 0.2
    assert all(rate >= 0.2 for rate in picky.acceptance_rates[1:-1])


def test_a_summary_network_can_be_the_summary():
    summary_net = af.networks.DeepSet(summary_dim=3)
    def observations(theta, rng):  # the N_OBS observations themselves: a set for the DeepSet
        return theta[:, None, :] + rng.normal(size=(len(theta), N_OBS, 2))

    simulator = af.simulation.Simulator(batch_simulator_fun=observations)
    sets = af.simulation.GenerativeModel(prior=af.simulation.Prior(distribution=model().prior.distribution),
                                         simulator=simulator, skip_test=True)  # fmt: skip
    x_obs = np.zeros((N_OBS, 2), "float32")
    result = rejection_abc(sets, x_obs, num_simulations=500, quantile=0.1, summary=summary_net, seed=0)
    assert result.draws.shape == (50, 2)
    amortizer = af.amortizers.AmortizedPosterior(af.networks.InvertibleNetwork(num_params=2), summary_net)
    result = rejection_abc(sets, x_obs, num_simulations=500, quantile=0.1, summary=amortizer, seed=0)
    assert result.draws.shape == (50, 2)


def test_abc_inputs_are_checked():
    with pytest.raises(ArgumentError, match="quantile must be a number in"):
        rejection_abc(model(), X_OBS, 100, quantile=0.0)
    with pytest.raises(ShapeError, match="x_obs must be one data set"):
        rejection_abc(model(), np.zeros(3), 100, quantile=0.1)
    with pytest.raises(ShapeError, match="distance must return"):
        rejection_abc(model(), X_OBS, 100, quantile=0.1, distance=lambda s, o: s)
    with pytest.raises(ShapeError, match="summary must return one row per simulation"):
        rejection_abc(model(), X_OBS, 100, quantile=0.1, summary=lambda x: x[0])
    function_prior = af.simulation.GenerativeModel(
        prior=af.simulation.Prior(batch_prior_fun=lambda b, rng: rng.normal(size=(b, 2))),
        simulator=af.simulation.Simulator(batch_simulator_fun=sample_means), skip_test=True,
    )  # fmt: skip
    assert rejection_abc(function_prior, X_OBS, 100, quantile=0.1).draws.shape == (10, 2)  # no density needed
    with pytest.raises(ArgumentError, match="needs the prior's density"):
        smc_abc(function_prior, X_OBS, num_particles=10)
