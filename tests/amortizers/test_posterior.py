"""AmortizedPosterior: known-answer NPE on a conjugate Gaussian model, bounded sampling, shapes, errors.

Model: ``mu ~ N(0, 1)``, ``x_n ~ N(mu, 1)``, ``n = 1..10``; the sample mean is sufficient and
``mu | x ~ N(10 xbar / 11, 1 / 11)`` (posterior sd 0.3015).

Tolerances (for ``S`` draws per data set):

* Monte Carlo: the sample mean of ``S = 4000`` exact draws has standard error ``sd / sqrt(S)``
  = 0.0048, the sample sd ``sd / sqrt(2 S)`` (1.1 % relative); 4 standard errors: 0.019 / 4.5 %.
* Estimation: a network trained for seconds is not exact. We accept a posterior whose mean is
  off by at most 0.1 posterior sd and whose sd is off by at most 10 % - two normals that close
  have total-variation distance < 0.06 (a classifier two-sample test could not tell them
  apart above 53 % accuracy).
* Totals: |mean error| < 0.1 sd + 4 MC s.e. = 0.030 + 0.019; |sd ratio - 1| < 0.10 + 0.045.
"""

from __future__ import annotations

import logging

import numpy as np
import pytest
import tensorflow as tf
from scipy import stats

import amortflow as af
from amortflow.amortizers import AmortizedPosterior, maximum_mean_discrepancy
from amortflow.distributions import StudentT
from amortflow.exceptions import ArgumentError, ConfigurationError, SamplingError, ShapeError
from tests.amortizers.helpers import (
    INFERENCE_NETWORK_FACTORIES,
    gaussian_posterior,
    simulate_gaussian,
    tiny_deep_set,
    tiny_flow,
    train,
)

N_OBS = 10
POST_SD = gaussian_posterior(0.0, N_OBS)[1]
S = 4000
MEAN_TOL = 0.1 * POST_SD + 4 * POST_SD / np.sqrt(S)
SD_TOL = 0.10 + 4 / np.sqrt(2 * S)
X_MEANS = np.array([[-1.5], [0.0], [0.8], [2.2]], dtype="float32")


@pytest.fixture(scope="module")
def trained_npe():
    """One NPE trained for a few hundred steps on the sample mean (direct condition)."""
    af.set_seed(1)
    mu, x = simulate_gaussian(20000, N_OBS, seed=1)
    amortizer = AmortizedPosterior(tiny_flow(1))
    losses = train(amortizer, {"parameters": mu, "direct_conditions": x.mean(axis=1)}, steps=500, learning_rate=3e-3)
    assert losses[-50:].mean() < losses[:50].mean() - 0.5
    return amortizer


def test_npe_matches_conjugate_posterior_for_several_observations(trained_npe):
    draws = trained_npe.sample({"direct_conditions": X_MEANS}, n_samples=S, seed=2)
    assert draws.shape == (len(X_MEANS), S, 1)
    mean, sd = gaussian_posterior(X_MEANS[:, 0], N_OBS)
    np.testing.assert_array_less(np.abs(draws.mean(axis=1)[:, 0] - mean), MEAN_TOL)
    np.testing.assert_array_less(np.abs(draws.std(axis=1)[:, 0] / sd - 1.0), SD_TOL)


def test_log_posterior_is_the_normalized_analytic_density(trained_npe):
    # Within |z| <= 2 posterior sds, a normal with mean off by 0.1 sd and sd off by 10 % has a
    # log density off by at most log(1.1) + 0.5 * |((z - 0.1) / 1.1)^2 - z^2| <= 0.28 nats.
    mean, sd = gaussian_posterior(X_MEANS[:, 0], N_OBS)
    for z in (-2.0, -0.5, 0.0, 1.0, 2.0):
        theta = (mean + z * sd)[:, None].astype("float32")
        log_q = trained_npe.log_posterior({"parameters": theta, "direct_conditions": X_MEANS})
        assert log_q.shape == (len(X_MEANS),)
        np.testing.assert_array_less(np.abs(log_q - stats.norm.logpdf(theta[:, 0], mean, sd)), 0.28)
    # (n_datasets, n_draws, D) parameters give (n_datasets, n_draws) densities, same values.
    theta = np.stack([mean - sd, mean + sd], axis=1)[..., None].astype("float32")
    per_draw = trained_npe.log_posterior({"parameters": theta, "direct_conditions": X_MEANS})
    single = trained_npe.log_prob({"parameters": theta[:, 1], "direct_conditions": X_MEANS})
    np.testing.assert_allclose(per_draw[:, 1], single, rtol=1e-5, atol=1e-5)


def test_bounded_sampling_returns_the_truncated_posterior(trained_npe, caplog):
    # Box [-0.2, 10] cuts the posterior of xbar = 0 (N(0, 0.30)) at z = -0.66: acceptance 0.75.
    trained_npe.set_prior_bounds([-0.2], [10.0])
    try:
        with caplog.at_level(logging.INFO, logger="amortflow"):
            draws = trained_npe.sample({"direct_conditions": X_MEANS[1:2]}, n_samples=S, seed=3)
    finally:
        trained_npe.set_prior_bounds(None, None)
    assert draws.shape == (1, S, 1)
    assert draws.min() >= -0.2 and draws.max() <= 10.0
    assert "acceptance rate" in caplog.text
    assert 0.65 < trained_npe.last_acceptance_rate < 0.85
    # Mean of the truncated exact posterior; same tolerance budget as above.
    exact = stats.truncnorm((-0.2 - 0.0) / POST_SD, np.inf, loc=0.0, scale=POST_SD).mean()
    assert abs(draws.mean() - exact) < MEAN_TOL


def test_bounded_sampling_gives_up_cleanly_when_nothing_is_inside(trained_npe):
    trained_npe.set_prior_bounds([5.0], [6.0])  # > 16 posterior sds away from xbar = 0
    try:
        with pytest.raises(SamplingError, match="prior bounds"):
            trained_npe.sample({"direct_conditions": X_MEANS[1:2]}, n_samples=20, seed=0)
        trained_npe.bounded_sampling = "none"
        assert trained_npe.sample({"direct_conditions": X_MEANS[1:2]}, n_samples=20).shape == (1, 20, 1)
    finally:
        trained_npe.bounded_sampling = "reject"
        trained_npe.set_prior_bounds(None, None)


def test_default_configurator_adopts_bounded_prior_support():
    import tensorflow_probability as tfp

    tfd = tfp.distributions
    prior = af.simulation.Prior(distribution=tfd.Independent(tfd.Uniform([0.0, -1.0], [1.0, 3.0]), 1))
    simulator = af.simulation.Simulator(simulator_fun=lambda theta, rng: rng.normal(theta, 1.0))
    model = af.simulation.GenerativeModel(prior, simulator)
    amortizer = AmortizedPosterior(tiny_flow(2))
    configurator = amortizer.default_configurator(model)
    assert isinstance(configurator, af.configuration.DefaultPosteriorConfigurator)
    lower, upper = amortizer.prior_bounds
    np.testing.assert_allclose(lower, [0.0, -1.0])
    np.testing.assert_allclose(upper, [1.0, 3.0])
    conf = configurator(model(batch_size=3, rng=0))
    draws = amortizer.sample(conf, n_samples=200, seed=0)  # untrained: wide, so rejection works hard
    assert draws.shape == (3, 200, 2)
    assert np.all(draws >= lower.astype("float32")) and np.all(draws <= upper.astype("float32"))


def test_shapes_are_always_datasets_draws_params_and_chunking_is_seeded(trained_npe, monkeypatch):
    one = {"direct_conditions": X_MEANS[:1]}
    assert trained_npe.sample(one, n_samples=7).shape == (1, 7, 1)
    assert trained_npe.sample(one, n_samples=7, squeeze=True).shape == (7, 1)
    assert trained_npe.sample({"direct_conditions": X_MEANS}, n_samples=7, squeeze=True).shape == (4, 7, 1)
    # Force many small chunks: 4 data sets x 250 draws in calls of at most 100 rows.
    monkeypatch.setattr(AmortizedPosterior, "_default_max_rows", staticmethod(lambda: 100))
    rows_per_call = []
    draw = AmortizedPosterior._draw

    def spy(self, condition, n_draws, seed):
        rows_per_call.append(int(condition.shape[0]) * n_draws)
        return draw(self, condition, n_draws, seed)

    monkeypatch.setattr(AmortizedPosterior, "_draw", spy)
    first = trained_npe.sample({"direct_conditions": X_MEANS}, n_samples=250, seed=5, batch_size=3)
    again = trained_npe.sample({"direct_conditions": X_MEANS}, n_samples=250, seed=5, batch_size=3)
    other = trained_npe.sample({"direct_conditions": X_MEANS}, n_samples=250, seed=6, batch_size=3)
    assert first.shape == (4, 250, 1) and np.isfinite(first).all()
    assert max(rows_per_call) <= 100 and sum(rows_per_call) == 3 * 4 * 250  # memory stays bounded
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


@pytest.mark.slow
def test_many_datasets_times_many_draws_in_bounded_memory(trained_npe):
    # 1,000 data sets x 10,000 draws = 1e7 rows: chunked into calls of <= DEFAULT_SAMPLING_MAX_ROWS rows.
    conditions = np.linspace(-2, 2, 1000, dtype="float32")[:, None]
    draws = trained_npe.sample({"direct_conditions": conditions}, n_samples=10_000, seed=0, progress=False)
    assert draws.shape == (1000, 10_000, 1) and draws.dtype == np.float32
    mean, _ = gaussian_posterior(conditions[[0, -1], 0], N_OBS)
    np.testing.assert_array_less(np.abs(draws[[0, -1]].mean(axis=(1, 2)) - mean), MEAN_TOL)


@pytest.mark.parametrize("name", sorted(INFERENCE_NETWORK_FACTORIES))
def test_every_inference_network_type_works(name):
    af.set_seed(3)
    mu, x = simulate_gaussian(16, 5, dim=2, seed=3)
    amortizer = AmortizedPosterior(INFERENCE_NETWORK_FACTORIES[name](2), tiny_deep_set())
    conf = {"parameters": mu, "summary_conditions": x, "direct_conditions": np.full((16, 1), 5.0, "float32")}
    with tf.GradientTape() as tape:
        loss = amortizer.compute_loss(conf, training=True)
    grads = tape.gradient(loss, amortizer.trainable_variables)
    assert np.isfinite(float(loss))
    assert all(g is not None for g in grads), "every weight (summary and inference net) gets a gradient"
    assert amortizer.log_posterior(conf).shape == (16,)
    assert amortizer.sample(conf, n_samples=3, seed=1).shape == (16, 3, 2)
    if amortizer.inference_net.is_flow:
        z, log_det_J = amortizer(conf)
        assert z.shape == (16, 2) and log_det_J.shape == (16,)
    else:
        with pytest.raises(ArgumentError, match="not a flow"):
            amortizer(conf)


def test_mmd_summary_loss_adds_a_nonnegative_term_with_gradients():
    af.set_seed(4)
    mu, x = simulate_gaussian(64, 8, seed=4)
    conf = {"parameters": mu, "summary_conditions": x}
    summary_net, flow = tiny_deep_set(), tiny_flow(1)
    plain = AmortizedPosterior(flow, summary_net)
    with_mmd = AmortizedPosterior(flow, summary_net, summary_loss_fun="MMD")
    with tf.GradientTape() as tape:
        loss = with_mmd.compute_loss(conf)
    extra = float(loss) - float(plain.compute_loss(conf))
    assert extra > 0.0
    grads = tape.gradient(loss, summary_net.trainable_variables)
    assert all(g is not None for g in grads)
    # The term is the MMD of summaries against N(0, I): near 0 for normal "summaries" of equal size.
    rng = np.random.default_rng(0)
    same = float(maximum_mean_discrepancy(rng.normal(size=(500, 4)), rng.normal(size=(500, 4))))
    shifted = float(maximum_mean_discrepancy(rng.normal(size=(500, 4)) + 1.0, rng.normal(size=(500, 4))))
    assert same < 0.01 < shifted


def test_student_t_latent_is_used_for_density_and_sampling():
    af.set_seed(5)
    flow = tiny_flow(2)
    amortizer = AmortizedPosterior(flow, latent_dist="student_t")
    conf = {"parameters": np.zeros((3, 2), "float32"), "direct_conditions": np.ones((3, 1), "float32")}
    expected = flow.log_prob(conf["parameters"], conf["direct_conditions"], latent_dist=StudentT())
    np.testing.assert_allclose(amortizer.log_posterior(conf), expected.numpy(), rtol=1e-6)
    assert amortizer.get_config()["latent_dist"]["class_name"].endswith("StudentT")


def test_input_errors_name_the_key_and_shapes():
    amortizer = AmortizedPosterior(tiny_flow(2))
    with pytest.raises(ConfigurationError, match="parameters"):
        amortizer.compute_loss({"direct_conditions": np.zeros((2, 1), "float32")})
    with pytest.raises(ConfigurationError, match="no summary_net"):
        amortizer.compute_loss({"parameters": np.zeros((2, 2)), "summary_conditions": np.zeros((2, 5, 1))})
    with pytest.raises(ShapeError, match=r"\(B, 2\)"):
        amortizer.compute_loss({"parameters": np.zeros((2, 3)), "direct_conditions": np.zeros((2, 1))})
    with pytest.raises(ArgumentError, match="n_samples"):
        amortizer.sample({"direct_conditions": np.zeros((2, 1))}, n_samples=0)
    with pytest.raises(ArgumentError, match="bounded_sampling"):
        AmortizedPosterior(tiny_flow(2), bounded_sampling="clip")
    with pytest.raises(ArgumentError, match="summary_net"):
        AmortizedPosterior(tiny_flow(2), summary_loss_fun="MMD")
