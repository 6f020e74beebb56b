"""Known answers for FlowMatching: the conjugate Gaussian posterior through AmortizedPosterior and
the Trainer, the Hutchinson divergence, argument checks and use as a likelihood surrogate.

Timings on the shared 2-core test machine: the trained posterior ~45 s, the rest a few seconds.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

import amortflow as af
from amortflow.diagnostics.metrics.sbc import sbc_ranks
from amortflow.exceptions import ArgumentError, ShapeError
from amortflow.networks.inference.flow_matching import FlowMatching
from tests.inference.conjugate import POSTERIOR_MEAN, POSTERIOR_SD, X_OBS, assert_matches_posterior, model

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")

#: KL(p || q) budget of :func:`assert_matches_posterior`'s estimation budget: per axis, a mean
#: off by 0.25 sd and an sd off by 15 % cost at most log(0.85) + (0.85^-2 + 0.25^2 / 0.85^2) / 2 - 1/2
#: = 0.073 nats, so 0.15 nats in 2-D (plus 4 Monte Carlo standard errors of the estimate).
KL_BUDGET = 0.15


def exact_log_posterior(theta: np.ndarray) -> np.ndarray:
    standardized = (theta - POSTERIOR_MEAN) / POSTERIOR_SD
    return -0.5 * np.sum(standardized**2, axis=-1) - 2 * np.log(POSTERIOR_SD) - np.log(2 * np.pi)


@pytest.fixture(scope="module")
def trained():
    net = FlowMatching(2, dense_args={"units": 64}, num_dense=2, seed=0)
    amortizer = af.amortizers.AmortizedPosterior(net)  # default standardization on
    trainer = af.trainers.Trainer(amortizer=amortizer, generative_model=model(), progress=False, seed=0)
    history = trainer.train_online(epochs=1, iterations_per_epoch=800, batch_size=128, optimizer=3e-3)
    return amortizer, trainer, history


def test_trained_flow_matching_matches_the_conjugate_posterior(trained):
    amortizer, trainer, history = trained
    losses = history["train_losses"]["Loss"].to_numpy()
    assert losses[-100:].mean() < losses[:100].mean()
    draws = amortizer.sample(trainer.configure({"sim_data": X_OBS[None]}), 2000, seed=0, squeeze=True)
    assert_matches_posterior(draws)  # means, sds within the budget + 4 MC errors, C2ST < 0.64


def test_log_posterior_is_close_to_the_exact_density(trained):
    amortizer, trainer, _ = trained
    exact = (POSTERIOR_MEAN + POSTERIOR_SD * np.random.default_rng(1).normal(size=(1000, 2))).astype("float32")
    conf = trainer.configure({"sim_data": np.repeat(X_OBS[None], len(exact), 0), "prior_draws": exact})
    gap = exact_log_posterior(exact) - amortizer.log_posterior(conf)  # log p - log q on draws of p
    assert abs(gap.mean()) < KL_BUDGET + 4 * gap.std() / np.sqrt(len(gap))


#: Coverage budget of central credible intervals under the estimation budget of
#: :func:`assert_matches_posterior` (mean off by 0.25 sd, sd by 15 %): the worst case (sd 0.85)
#: covers 42 % instead of 50 % and 82.5 % instead of 90 %, so 0.1 for each level.
COVERAGE_BUDGET = 0.1


def test_sbc_coverage_is_nominal(trained):
    amortizer, trainer, _ = trained
    sims = model()(400, rng=5)
    draws = amortizer.sample(trainer.configure(sims), 200, seed=1)
    ranks = sbc_ranks(draws, sims["prior_draws"], fractional=True)  # (400, 2), uniform when calibrated
    for level in (0.5, 0.9):
        coverage = np.mean(np.abs(ranks - 0.5) < level / 2, axis=0)
        np.testing.assert_array_less(
            np.abs(coverage - level), COVERAGE_BUDGET + 4 * np.sqrt(level * (1 - level) / len(ranks))
        )


def test_trained_amortizer_round_trips_through_a_keras_file(trained, tmp_path):
    amortizer, trainer, _ = trained
    conf = trainer.configure(model()(4, rng=2))
    amortizer.save(tmp_path / "fm.keras")
    loaded = keras.saving.load_model(tmp_path / "fm.keras")
    np.testing.assert_array_equal(loaded.sample(conf, 5, seed=3), amortizer.sample(conf, 5, seed=3))
    np.testing.assert_array_equal(loaded.log_posterior(conf), amortizer.log_posterior(conf))


def _perturbed(num_params, divergence, condition_dim=2):
    keras.utils.set_random_seed(0)  # the same weights for both divergence modes
    net = FlowMatching(num_params, dense_args={"units": 16}, num_dense=2, num_steps=4, divergence=divergence)
    rng = np.random.default_rng(0)
    net.compute_loss(np.zeros((2, num_params), "float32"), np.zeros((2, condition_dim), "float32"))
    for weight in net.trainable_weights:
        weight.assign(weight.numpy() + 0.3 * rng.standard_normal(weight.shape).astype("float32"))
    return net


def test_hutchinson_divergence_is_exact_in_1d_and_unbiased_in_3d():
    rng = np.random.default_rng(1)
    x1, c1 = rng.normal(size=(50, 1)).astype("float32"), rng.normal(size=(50, 2)).astype("float32")
    exact_1d, hutch_1d = _perturbed(1, "exact"), _perturbed(1, "hutchinson")
    # Rademacher probes in 1-D: eps^2 = 1, so the estimate is the derivative itself.
    np.testing.assert_allclose(hutch_1d.log_prob(x1, c1), exact_1d.log_prob(x1, c1), atol=1e-4)
    n = 2000
    x, c = rng.normal(size=(n, 3)).astype("float32"), rng.normal(size=(n, 2)).astype("float32")
    exact, hutch = _perturbed(3, "exact"), _perturbed(3, "hutchinson")
    diff = hutch.log_prob(x, c).numpy() - exact.log_prob(x, c).numpy()
    assert np.std(diff) > 1e-3, "the estimator should be noisy in 3-D"
    assert abs(diff.mean()) < 4 * diff.std() / np.sqrt(n)  # independent probes per row: mean-zero error
    assert FlowMatching(11)._uses_exact_divergence() is False and FlowMatching(10)._uses_exact_divergence()


def test_arguments_and_shapes_are_checked():
    with pytest.raises(ArgumentError, match="divergence"):
        FlowMatching(2, divergence="trace")
    with pytest.raises(ArgumentError, match="time_power"):
        FlowMatching(2, time_power=-1.0)
    with pytest.raises(ArgumentError, match="num_steps"):
        FlowMatching(2, num_steps=0)
    net = FlowMatching(2, dense_args={"units": 8}, num_steps=2)
    net.log_prob(np.zeros((3, 2), "float32"), np.zeros((3, 4), "float32"))
    with pytest.raises(ShapeError, match=r"\(B, 2\)"):
        net.log_prob(np.zeros((3, 3), "float32"), np.zeros((3, 4), "float32"))
    with pytest.raises(ShapeError, match=r"\(B, 4\)"):
        net.sample(2, np.zeros((3, 5), "float32"))


def test_time_power_skews_training_times_to_the_data_end():
    # With v = 0 the loss is E||theta - z||^2 / D for every t, so check the times themselves:
    # p(t) ∝ t^p has mean (p + 1) / (p + 2): 2/3 for p = 1.
    net = FlowMatching(1, time_power=1.0, seed=0)
    u = np.random.default_rng(0).uniform(size=100_000)
    t = u ** (1.0 / (1.0 + net.time_power))
    assert abs(t.mean() - 2 / 3) < 4 * np.sqrt(1 / 18) / np.sqrt(len(t))


def test_amortized_likelihood_with_flow_matching_learns_a_gaussian_likelihood():
    # x | theta ~ N(theta, 0.5^2) in 1-D; the surrogate's log likelihood must be close to the exact one.
    rng = np.random.default_rng(0)
    theta = rng.normal(size=(4000, 1)).astype("float32")
    x = (theta + 0.5 * rng.normal(size=theta.shape)).astype("float32")
    amortizer = af.amortizers.AmortizedLikelihood(FlowMatching(1, dense_args={"units": 32}, num_dense=2, seed=0))
    amortizer.adapt_standardization({"observables": x, "conditions": theta})
    optimizer = keras.optimizers.Adam(3e-3)

    @tf.function
    def step(obs, cond):
        with tf.GradientTape() as tape:
            loss = amortizer.compute_loss({"observables": obs, "conditions": cond}, training=True)
        grads = tape.gradient(loss, amortizer.trainable_variables)
        optimizer.apply_gradients(zip(grads, amortizer.trainable_variables))
        return loss

    for _ in range(400):
        idx = rng.integers(0, len(x), 128)
        step(x[idx], theta[idx])
    test_theta = rng.normal(size=(500, 1)).astype("float32")
    test_x = (test_theta + 0.5 * rng.normal(size=test_theta.shape)).astype("float32")
    log_q = amortizer.log_likelihood({"observables": test_x, "conditions": test_theta})
    log_p = -0.5 * ((test_x - test_theta)[:, 0] / 0.5) ** 2 - np.log(0.5) - 0.5 * np.log(2 * np.pi)
    gap = log_p - log_q
    # KL(p || q) averaged over theta; budget 0.05 nats (a 0.3 sd mean error or 20 % sd error in 1-D).
    assert abs(gap.mean()) < 0.05 + 4 * gap.std() / np.sqrt(len(gap))


def test_validation_loss_is_a_deterministic_function_of_the_weights():
    # Early stopping compares validation losses of different epochs: with fresh times and noise
    # at every call, their Monte-Carlo noise would decide as much as the fit does.
    net = FlowMatching(2, dense_args={"units": 8}, num_dense=1, seed=0)
    rng = np.random.default_rng(0)
    x, c = rng.normal(size=(256, 2)).astype("float32"), rng.normal(size=(256, 3)).astype("float32")
    first = float(net.compute_loss(x, c, training=False))
    net.compute_loss(x, c, training=True)  # training draws advance the generator...
    assert float(net.compute_loss(x, c, training=False)) == pytest.approx(first, rel=1e-6)  # ...validation's do not
    assert float(net.compute_loss(x, c, training=True)) != pytest.approx(float(net.compute_loss(x, c, training=True)))
