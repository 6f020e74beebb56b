"""Tests of the mixture density network: exact density, normalization, sampling, fitting, saving."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from scipy import stats

from amortflow.exceptions import ArgumentError, ShapeError
from amortflow.networks.inference.mdn import MixtureDensityNetwork
from tests.networks.registry_density import (
    NetworkHolder,
    check_linear_gaussian_fit,
    linear_gaussian_task,
    train_density,
)
from tests.support import assert_config_round_trip


def make(num_params, condition_dim, rng, batch=5, num_components=3, scale=0.5):
    """A built MDN with random weights (so components differ in weight, location and shape)."""
    net = MixtureDensityNetwork(num_params, num_components=num_components, hidden_units=(16,), activation="tanh")
    c = None if condition_dim is None else rng.normal(size=(batch, condition_dim)).astype("float32")
    net.log_prob(np.zeros((batch, num_params), "float32"), c)
    for weight in net.trainable_weights:
        weight.assign(scale * rng.normal(size=weight.shape).astype("float32"))
    return net, c


def reference_log_prob(net, x, c):
    """The mixture density computed with scipy from the network's mixture parameters."""
    log_w, means, chol = (t.numpy() for t in net.mixture_parameters(None if c is None else tf.constant(c)))
    out = []
    for b in range(len(x)):
        p = 0 if c is None else b
        comps = [
            stats.multivariate_normal(means[p, k], chol[p, k] @ chol[p, k].T).logpdf(x[b]) + log_w[p, k]
            for k in range(net.num_components)
        ]
        out.append(np.logaddexp.reduce(comps))
    return np.array(out)


@pytest.mark.parametrize("num_params", [1, 3])
@pytest.mark.parametrize("condition_dim", [None, 2])
def test_log_prob_is_the_exact_mixture_density(num_params, condition_dim, rng):
    net, c = make(num_params, condition_dim, rng)
    x = rng.normal(size=(5, num_params)).astype("float32")
    log_prob = net.log_prob(x, c)
    assert log_prob.shape == (5,)
    np.testing.assert_allclose(log_prob, reference_log_prob(net, x, c), rtol=1e-4, atol=1e-4)
    draws = net.sample(4, c, seed=1)
    assert draws.shape == ((4, num_params) if c is None else (5, 4, num_params))


def test_cholesky_factors_are_valid_and_fresh_scales_are_one(rng):
    net = MixtureDensityNetwork(2, num_components=4, hidden_units=(8,), min_scale=1e-3)
    net.log_prob(np.zeros((1, 2), "float32"))  # builds the unconditional weights
    log_w, _, chol = net.mixture_parameters()
    np.testing.assert_allclose(np.diagonal(chol.numpy(), axis1=-2, axis2=-1), 1.0 + 1e-3, rtol=1e-6)
    np.testing.assert_allclose(np.exp(log_w), 0.25, rtol=1e-6)
    random_net, c = make(3, 2, rng, scale=3.0)
    _, _, chol = random_net.mixture_parameters(tf.constant(c))
    chol = chol.numpy()
    assert np.all(np.triu(chol, k=1) == 0.0)
    assert np.all(np.diagonal(chol, axis1=-2, axis2=-1) >= 1e-4)


@pytest.mark.parametrize("condition_dim", [None, 3])
def test_single_component_has_no_mixture_weights(condition_dim, rng):
    net, c = make(2, condition_dim, rng, num_components=1)
    log_w, _, _ = net.mixture_parameters(None if c is None else tf.constant(c))
    np.testing.assert_array_equal(log_w, np.zeros((1 if c is None else 5, 1)))
    assert not any("logits" in weight.path for weight in net.trainable_weights)


def test_density_integrates_to_one_and_sample_moments_match(rng):
    """1-D quadrature of exp(log_prob) and Monte Carlo moments of ``sample`` against it.

    The grid spans every component mean +- 10 sds (tail mass < 1e-20) with 20,001 points, so
    the trapezoid error is far below float32 round-off: we require |integral - 1| < 1e-3.
    With N draws, sample mean and variance differ from the quadrature values by at most four
    standard errors, sd / sqrt(N) and sqrt((m4 - var^2) / N) (m4: fourth central moment).
    """
    net, c = make(1, 2, rng, batch=3)
    n = 20_000
    draws = net.sample(n, c, seed=3).numpy()[..., 0]
    _, means, chol = (t.numpy() for t in net.mixture_parameters(tf.constant(c)))
    for b in range(3):
        sds = chol[b, :, 0, 0]
        grid = np.linspace((means[b, :, 0] - 10 * sds).min(), (means[b, :, 0] + 10 * sds).max(), 20_001)
        cond = np.repeat(c[b : b + 1], len(grid), axis=0)
        density = np.exp(net.log_prob(grid[:, None].astype("float32"), cond).numpy().astype("float64"))
        assert abs(np.trapezoid(density, grid) - 1.0) < 1e-3
        mean = np.trapezoid(grid * density, grid)
        var = np.trapezoid((grid - mean) ** 2 * density, grid)
        m4 = np.trapezoid((grid - mean) ** 4 * density, grid)
        assert abs(draws[b].mean() - mean) < 4 * np.sqrt(var / n)
        assert abs(draws[b].var() - var) < 4 * np.sqrt((m4 - var**2) / n)


def test_seeded_sampling_repeats_and_compiles(rng):
    net, c = make(2, 3, rng)
    np.testing.assert_array_equal(net.sample(6, c, seed=9), net.sample(6, c, seed=9))
    assert not np.array_equal(net.sample(6, c, seed=9), net.sample(6, c, seed=10))
    sample = tf.function(lambda c: net.sample(6, c, seed=9), input_signature=[tf.TensorSpec((None, 3))])
    np.testing.assert_allclose(sample(c), net.sample(6, c, seed=9), atol=1e-6)
    log_prob = tf.function(net.log_prob, input_signature=[tf.TensorSpec((None, 2)), tf.TensorSpec((None, 3))])
    for batch in (1, 8):
        x = rng.normal(size=(batch, 2)).astype("float32")
        cb = rng.normal(size=(batch, 3)).astype("float32")
        np.testing.assert_allclose(log_prob(x, cb), net.log_prob(x, cb), atol=1e-5)


def test_first_call_inside_tf_function(rng):
    net = MixtureDensityNetwork(2, num_components=2, hidden_units=(8,))
    c = rng.normal(size=(4, 3)).astype("float32")
    draws = tf.function(lambda c: net.sample(3, c, seed=1))(c)
    np.testing.assert_allclose(draws, net.sample(3, c, seed=1), atol=1e-6)


def test_sample_builds_an_unbuilt_network():
    net = MixtureDensityNetwork(2, num_components=2, hidden_units=(4,))
    assert net.sample(3, seed=0).shape == (3, 2)
    assert net.get_build_config() == {"condition_dim": None}


def test_invalid_inputs_and_arguments(rng):
    net, c = make(2, 3, rng)
    x = np.zeros((5, 2), "float32")
    with pytest.raises(ArgumentError, match="latent_dist"):
        net.log_prob(x, c, latent_dist="student_t")
    with pytest.raises(ArgumentError, match="latent_dist"):
        net.sample(2, c, latent_dist="normal")
    with pytest.raises(ShapeError, match=r"\(B, 2\)"):
        net.log_prob(x[:, :1], c)
    with pytest.raises(ShapeError, match=r"condition shape \(B, 3\)"):
        net.log_prob(x, None)
    with pytest.raises(ArgumentError, match="num_components"):
        MixtureDensityNetwork(2, num_components=0)


def test_config_round_trip():
    net = MixtureDensityNetwork(3, num_components=2, hidden_units=(8, 4), activation="swish", min_scale=1e-3)
    assert_config_round_trip(net)
    assert net.get_config()["hidden_units"] == [8, 4]


def test_fits_conditional_gaussian(rng):
    """Learn theta | c ~ N(A c, Sigma); means, sds, correlation and KL as in ``check_linear_gaussian_fit``."""
    theta, c, A, Sigma = linear_gaussian_task(20_000, rng)
    net = MixtureDensityNetwork(2, num_components=1, hidden_units=(32,), activation="swish")
    train_density(net, theta, c, steps=400)
    check_linear_gaussian_fit(net, A, Sigma, rng)


def test_fits_bimodal_density(rng):
    """Unconditional 2-component fit of 0.3 N(-2, 0.5^2) + 0.7 N(1.5, 0.8^2) from n = 8000 draws.

    The maximum-likelihood estimates have standard errors sqrt(w (1 - w) / n) = 0.005 (weight),
    sd_k / sqrt(n w_k) <= 0.011 (means) and sd_k / sqrt(2 n w_k) <= 0.008 (sds); we allow four of
    them plus 0.02 for stopping stochastic optimisation after finitely many minibatch steps.
    """
    n, weights, locs, sds = 8000, np.array([0.3, 0.7]), np.array([-2.0, 1.5]), np.array([0.5, 0.8])
    labels = rng.random(n) < weights[1]
    theta = rng.normal(locs[labels.astype(int)], sds[labels.astype(int)])[:, None].astype("float32")
    net = MixtureDensityNetwork(1, num_components=2)
    train_density(net, theta, None, steps=500, learning_rate=3e-2)
    log_w, means, chol = (t.numpy()[0] for t in net.mixture_parameters())
    order = np.argsort(means[:, 0])
    budget = 0.02
    np.testing.assert_allclose(np.exp(log_w[order]), weights, atol=4 * np.sqrt(0.21 / n) + budget)
    np.testing.assert_allclose(means[order, 0], locs, atol=4 * np.max(sds / np.sqrt(n * weights)) + budget)
    np.testing.assert_allclose(chol[order, 0, 0], sds, atol=4 * np.max(sds / np.sqrt(2 * n * weights)) + budget)


def test_save_load_reproduces_log_prob_and_seeded_samples(rng, tmp_path):
    """In-process reload (the contract suite reloads every registry case in a fresh process)."""
    conditional, c = make(2, 3, rng)
    unconditional, _ = make(3, None, rng)
    x2, x3 = rng.normal(size=(5, 2)).astype("float32"), rng.normal(size=(5, 3)).astype("float32")
    loaded = {}
    for name, net in (("conditional", conditional), ("unconditional", unconditional)):
        NetworkHolder(net).save(tmp_path / f"{name}.keras")
        loaded[name] = keras.saving.load_model(tmp_path / f"{name}.keras").net
    np.testing.assert_array_equal(loaded["conditional"].log_prob(x2, c), conditional.log_prob(x2, c))
    np.testing.assert_array_equal(loaded["conditional"].sample(4, c, seed=2), conditional.sample(4, c, seed=2))
    np.testing.assert_array_equal(loaded["unconditional"].log_prob(x3), unconditional.log_prob(x3))
    np.testing.assert_array_equal(loaded["unconditional"].sample(4, seed=2), unconditional.sample(4, seed=2))
