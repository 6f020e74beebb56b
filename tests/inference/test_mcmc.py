"""MCMC posteriors from exact, neural-likelihood (NLE) and neural-ratio (NRE) targets with known answers.

Gaussian model in 2-D: ``x_n ~ N(theta, I)``, ``n = 1..10``. With the prior ``N(0, I)`` the
posterior is ``N(sum x / 11, I / 11)``; with the uniform box prior it is ``N(xbar, I / 10)``
truncated to the box (a product of truncated normals, ``scipy.stats.truncnorm``).

Tolerances. Monte Carlo: a chain average of ``ESS`` effective draws has standard error
``sd / sqrt(ESS)``, a sample sd relative error ``1 / sqrt(2 ESS)``; we allow 4 of each, using
the ESS the sampler reports. Estimation (NLE/NRE only, networks trained for seconds): the
posterior mean may be off by 0.1 posterior sd and the sd by 10 % (normals that close have
total-variation distance < 0.06).
"""

from __future__ import annotations

import logging

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp
from scipy import stats

import amortflow as af
from amortflow.amortizers import AmortizedLikelihood, AmortizedPosterior, AmortizedPosteriorLikelihood, AmortizedRatio
from amortflow.exceptions import ArgumentError, ShapeError
from amortflow.inference import MCMCResult, sample_posterior_mcmc
from amortflow.inference.targets import make_log_likelihood_fn
from amortflow.networks.classifiers import RatioClassifier
from tests.amortizers.helpers import gaussian_posterior, simulate_gaussian, tiny_flow, train

tfd = tfp.distributions
N_OBS = 10
X_OBS = (np.array([0.5, -1.0]) + np.random.default_rng(5).normal(size=(N_OBS, 2))).astype("float32")
NORMAL_PRIOR = tfd.Independent(tfd.Normal(np.zeros(2, "float32"), 1.0), 1)
BOX = (-3.0, 3.0)
BOX_PRIOR = tfd.Independent(tfd.Uniform(np.full(2, BOX[0], "float32"), BOX[1]), 1)


def exact_log_likelihood(theta, x_obs):
    """``sum_n log N(x_n; theta, I)`` for chains ``theta (C, 2)``."""
    sq = tf.reduce_sum(tf.square(x_obs[None] - theta[:, None, :]), axis=[1, 2])
    return -0.5 * sq - N_OBS * np.log(2 * np.pi)


def assert_matches(result: MCMCResult, mean, sd, estimation: bool):
    """Means and sds within 4 Monte Carlo standard errors (+ the estimation budget for networks)."""
    ess = float(np.min(result.ess))
    mean_tol = 4 * sd / np.sqrt(ess) + (0.1 * sd if estimation else 0.0)
    sd_tol = 4 / np.sqrt(2 * ess) + (0.10 if estimation else 0.0)
    np.testing.assert_array_less(np.abs(result.draws.mean(axis=0) - mean), mean_tol)
    np.testing.assert_array_less(np.abs(result.draws.std(axis=0) / sd - 1.0), sd_tol)
    assert np.all(result.r_hat < 1.05) and result.converged


def truncated_normal_moments(loc, scale, low, high):
    a, b = (low - loc) / scale, (high - loc) / scale
    return stats.truncnorm.mean(a, b, loc, scale), stats.truncnorm.std(a, b, loc, scale)


SETTINGS = {  # kernel -> (num_chains, num_burnin, num_results): a few seconds each
    "nuts": (4, 150, 250),
    # HMC's fixed trajectory mixes the variance slowly (ESS ~50 of 1000 draws): the tail part of the
    # rank-normalized R-hat needs ~4x the draws of NUTS to settle below 1.05.
    "hmc": (4, 150, 1000),
    "slice": (4, 100, 250),
    "rwm": (4, 500, 1000),
}


@pytest.mark.parametrize("kernel", sorted(SETTINGS))
def test_every_kernel_recovers_the_analytic_posterior(kernel):
    chains, burnin, results = SETTINGS[kernel]
    prior = af.simulation.Prior(distribution=NORMAL_PRIOR)
    result = sample_posterior_mcmc(
        exact_log_likelihood, X_OBS, prior, kernel=kernel, num_chains=chains, num_burnin=burnin,
        num_results=results, seed=1,
    )  # fmt: skip
    assert result.draws.shape == (chains * results, 2) and result.chains.shape == (results, chains, 2)
    assert result.r_hat.shape == (2,) and result.ess.shape == (2,) and 0 < result.acceptance_rate <= 1
    mean, sd = gaussian_posterior(X_OBS.mean(axis=0), N_OBS)
    assert_matches(result, mean, sd, estimation=False)


def test_bounded_prior_keeps_chains_inside_and_gives_the_truncated_posterior():
    # Box [0, 1]^2 and data centred at (0.1, 0.9): the posterior is cut hard on both axes.
    x_obs = X_OBS - X_OBS.mean(axis=0) + np.array([0.1, 0.9], "float32")
    prior = tfd.Independent(tfd.Uniform(np.zeros(2, "float32"), 1.0), 1)
    result = sample_posterior_mcmc(exact_log_likelihood, x_obs, prior, kernel="hmc", num_chains=4,
                                   num_burnin=150, num_results=300, seed=2)  # fmt: skip
    assert result.draws.min() >= 0.0 and result.draws.max() <= 1.0
    mean, sd = truncated_normal_moments(np.array([0.1, 0.9]), 1 / np.sqrt(N_OBS), 0.0, 1.0)
    assert_matches(result, mean, sd, estimation=False)


def test_unconverged_chains_are_reported(caplog):
    with caplog.at_level(logging.WARNING, logger="amortflow"):
        result = sample_posterior_mcmc(exact_log_likelihood, X_OBS, NORMAL_PRIOR, kernel="rwm", step_size=1e-4,
                                       num_chains=4, num_burnin=0, num_results=20, seed=3)  # fmt: skip
    assert not result.converged and np.max(result.r_hat) > 1.05
    assert "R-hat" in caplog.text


def two_narrow_modes(theta, x_obs):
    """Likelihood 0.25 N(theta; -4, 0.2^2) + 0.75 N(theta; 4, 0.2^2) (``x_obs`` unused)."""
    z = (theta[:, 0, None] - tf.constant([-4.0, 4.0])) / 0.2
    return tf.reduce_logsumexp(tf.math.log(tf.constant([0.25, 0.75])) - 0.5 * tf.square(z), axis=-1)


def test_resampled_starts_give_separated_modes_their_posterior_weight():
    # The prior N(0, 3^2) is symmetric, so the posterior puts 0.25 / 0.75 on the modes at -4 / 4.
    # Local kernels rarely cross between such modes, so the starts must carry the weights. The
    # share of 1,000 resampled starts at +4 = share of the 10,000 candidates' importance weight
    # there (sd ~0.01) + multinomial noise (sd 0.014): 0.75 within 0.07 (> 4 sd). The chains are
    # read at their first draw (no burn-in), one step from where they start.
    prior = tfd.Independent(tfd.Normal(np.zeros(1, "float32"), 3.0), 1)
    result = sample_posterior_mcmc(two_narrow_modes, np.zeros(1, "float32"), prior, kernel="rwm", num_chains=1000,
                                   num_burnin=0, num_results=2, seed=6)  # fmt: skip
    starts = result.chains[0, :, 0]
    assert np.all(np.abs(np.abs(starts) - 4.0) < 1.0)  # every chain starts in a mode
    assert abs(float(np.mean(starts > 0)) - 0.75) < 0.07


def test_chains_in_separate_modes_are_named_as_such(caplog):
    # Plain prior starts: some of the 8 chains settle at -4, the others at +4, and each mixes
    # within its mode (sd 0.2), so the pooled R-hat is huge while every chain is fine alone.
    prior = tfd.Independent(tfd.Normal(np.zeros(1, "float32"), 3.0), 1)
    with caplog.at_level(logging.WARNING, logger="amortflow"):
        result = sample_posterior_mcmc(two_narrow_modes, np.zeros(1, "float32"), prior, kernel="rwm", num_chains=8,
                                       num_burnin=500, num_results=500, seed=2, init="prior")  # fmt: skip
    final = result.chains[-1, :, 0]
    assert np.any(final < 0) and np.any(final > 0) and not result.converged
    assert "different modes" in caplog.text and "Run longer" not in caplog.text


def test_stuck_chains_are_not_mistaken_for_modes(caplog):
    # Tiny steps: the chains barely leave their starts, so their own ESS is tiny.
    with caplog.at_level(logging.WARNING, logger="amortflow"):
        sample_posterior_mcmc(exact_log_likelihood, X_OBS, NORMAL_PRIOR, kernel="rwm", step_size=1e-4,
                              num_chains=4, num_burnin=0, num_results=200, seed=3, init="prior")  # fmt: skip
    assert "Run longer" in caplog.text and "different modes" not in caplog.text


def test_plain_prior_starts_still_recover_the_analytic_posterior():
    result = sample_posterior_mcmc(exact_log_likelihood, X_OBS, NORMAL_PRIOR, kernel="rwm", num_chains=4,
                                   num_burnin=500, num_results=1000, seed=1, init="prior")  # fmt: skip
    mean, sd = gaussian_posterior(X_OBS.mean(axis=0), N_OBS)
    assert_matches(result, mean, sd, estimation=False)


def test_resampled_starts_need_some_finite_likelihood():
    with pytest.raises(af.exceptions.SamplingError, match="-inf or NaN at all 500 prior draws"):
        sample_posterior_mcmc(lambda theta, x: tf.fill(tf.shape(theta)[:1], np.nan), X_OBS, NORMAL_PRIOR,
                              num_init_candidates=500)  # fmt: skip


def test_reports_the_rank_normalized_split_rhat_and_the_conservative_ess():
    from amortflow.diagnostics.metrics import effective_sample_size, split_rhat

    result = sample_posterior_mcmc(exact_log_likelihood, X_OBS, NORMAL_PRIOR, kernel="rwm", num_chains=2,
                                   num_burnin=20, num_results=50, seed=4)  # fmt: skip
    np.testing.assert_array_equal(result.r_hat, split_rhat(result.chains))
    centred_sq = np.square(result.chains - result.chains.mean(axis=(0, 1)))
    expected_ess = np.minimum(effective_sample_size(result.chains), effective_sample_size(centred_sq))
    np.testing.assert_array_equal(result.ess, expected_ess)


@pytest.fixture(scope="module")
def trained_likelihood():
    af.set_seed(1)
    mu, x = simulate_gaussian(10000, 5, dim=2, seed=1)
    amortizer = AmortizedLikelihood(tiny_flow(2))
    train(amortizer, {"observables": x, "conditions": mu}, steps=400, batch_size=64, learning_rate=3e-3)
    return amortizer


def test_nle_plus_mcmc_matches_the_analytic_posterior(trained_likelihood):
    result = sample_posterior_mcmc(trained_likelihood, X_OBS, NORMAL_PRIOR, kernel="hmc", num_chains=4,
                                   num_burnin=200, num_results=1000, seed=4)  # fmt: skip (see SETTINGS["hmc"])
    mean, sd = gaussian_posterior(X_OBS.mean(axis=0), N_OBS)
    assert_matches(result, mean, sd, estimation=True)

def test_targets_accept_arrays_dicts_and_joint_amortizers(trained_likelihood):
    theta = tf.constant(np.random.default_rng(0).normal(size=(5, 2)).astype("float32"))
    reference, kind = make_log_likelihood_fn(trained_likelihood, X_OBS)
    assert kind == "likelihood"
    joint = AmortizedPosteriorLikelihood(AmortizedPosterior(tiny_flow(2)), trained_likelihood)
    from_joint, _ = make_log_likelihood_fn(joint, {"observables": X_OBS[None]})
    np.testing.assert_allclose(from_joint(theta).numpy(), reference(theta).numpy(), rtol=1e-6)
    # log q(x_obs | theta) sums the per-observation densities: compare with log_likelihood().
    direct = trained_likelihood.log_likelihood({"observables": np.repeat(X_OBS[None], 5, 0), "conditions": theta})
    np.testing.assert_allclose(reference(theta).numpy(), direct, rtol=1e-5)


def test_nre_plus_mcmc_matches_the_analytic_posterior_under_a_uniform_prior():
    af.set_seed(2)
    rng = np.random.default_rng(2)
    theta = rng.uniform(*BOX, size=(20000, 2)).astype("float32")
    xbar = (theta + rng.normal(size=theta.shape) / np.sqrt(N_OBS)).astype("float32")
    amortizer = AmortizedRatio(RatioClassifier(hidden_units=(64, 64)), num_contrastive=4, loss="nre_c")
    train(amortizer, {"parameters": theta, "direct_conditions": xbar}, steps=600, batch_size=128, learning_rate=3e-3)
    x_obs = X_OBS.mean(axis=0)
    # NRE-C estimates log r = log p(x | theta) - log p(x) without a constant. Near the mode the
    # evidence is ~1/36 (box area) and p(xbar | theta) = N(xbar; theta, I/10); same 0.1-sd /
    # 10 %-sd budget as above, which bounds log-density errors within 2 sd by 0.28 nats per axis.
    probe = (x_obs + np.array([[0.0, 0.0], [0.3, 0.0], [0.0, -0.3]])).astype("float32")
    exact = stats.norm.logpdf(probe, x_obs, 1 / np.sqrt(N_OBS)).sum(axis=1) + np.log(36.0)
    estimate = amortizer.log_ratio({"parameters": probe, "direct_conditions": np.repeat(x_obs[None], 3, axis=0)})
    np.testing.assert_array_less(np.abs(estimate - exact), 2 * 0.28)
    result = sample_posterior_mcmc(amortizer, x_obs, BOX_PRIOR, kernel="rwm", num_chains=4, num_burnin=500,
                                   num_results=1000, seed=5)  # fmt: skip
    assert result.draws.min() >= BOX[0] and result.draws.max() <= BOX[1]
    mean, sd = truncated_normal_moments(x_obs, 1 / np.sqrt(N_OBS), *BOX)
    assert_matches(result, mean, sd, estimation=True)


def test_argument_errors():
    with pytest.raises(ArgumentError, match="kernel"):
        sample_posterior_mcmc(exact_log_likelihood, X_OBS, NORMAL_PRIOR, kernel="gibbs")
    with pytest.raises(ArgumentError, match="num_results must be >= 2"):
        sample_posterior_mcmc(exact_log_likelihood, X_OBS, NORMAL_PRIOR, num_results=1)
    with pytest.raises(ArgumentError, match="init must be one of"):
        sample_posterior_mcmc(exact_log_likelihood, X_OBS, NORMAL_PRIOR, init="map")
    with pytest.raises(ArgumentError, match="num_init_candidates"):
        sample_posterior_mcmc(exact_log_likelihood, X_OBS, NORMAL_PRIOR, num_init_candidates=0)
    no_density = af.simulation.Prior(batch_prior_fun=lambda b, rng: rng.normal(size=(b, 2)))
    with pytest.raises(ArgumentError, match="distribution"):
        sample_posterior_mcmc(exact_log_likelihood, X_OBS, no_density)
    with pytest.raises(ArgumentError, match="target"):
        sample_posterior_mcmc(AmortizedPosterior(tiny_flow(2)), X_OBS, NORMAL_PRIOR)
    likelihood = AmortizedLikelihood(tiny_flow(3))
    with pytest.raises(ShapeError, match=r"\(N, 3\)"):
        sample_posterior_mcmc(likelihood, X_OBS, NORMAL_PRIOR)
    with pytest.raises(ShapeError, match="exactly one data set"):
        sample_posterior_mcmc(likelihood, {"observables": np.zeros((2, 5, 3))}, NORMAL_PRIOR)
