"""Training sanity: a small InvertibleNetwork learns the conditional Gaussian ``theta | c ~ N(c, 0.5^2 I_2)``."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from amortflow.networks import InvertibleNetwork

SIGMA = 0.5


def simulate(n, rng):
    c = rng.uniform(-2.0, 2.0, size=(n, 2)).astype("float32")
    return (c + SIGMA * rng.normal(size=(n, 2))).astype("float32"), c


def true_log_prob(theta, c):
    return (-0.5 * np.sum(((theta - c) / SIGMA) ** 2, axis=1) - 2 * np.log(SIGMA) - np.log(2 * np.pi)).astype("float64")


def fit(net, rng, steps=400, batch_size=128):
    theta, c = simulate(20000, rng)
    net(theta[:2], c[:2])
    optimizer = keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(5e-3, steps))

    @tf.function
    def step(x, cond):
        with tf.GradientTape() as tape:
            loss = -tf.reduce_mean(net.log_prob(x, cond, training=True))
        optimizer.apply_gradients(zip(tape.gradient(loss, net.trainable_variables), net.trainable_variables))
        return loss

    losses = []
    for _ in range(steps):
        idx = rng.integers(0, len(theta), size=batch_size)
        losses.append(float(step(theta[idx], c[idx])))
    return np.array(losses)


@pytest.mark.slow
@pytest.mark.parametrize("design", ["affine", "spline"])
def test_learns_a_conditional_gaussian(design):
    rng = np.random.default_rng(7)
    keras.utils.set_random_seed(7)
    net = InvertibleNetwork(
        2, num_coupling_layers=2, coupling_design=design, coupling_settings={"dense_args": {"units": 32}}
    )
    losses = fit(net, rng)
    assert losses[-50:].mean() < losses[:10].mean() - 0.5

    # KL(p || q) = E_p[log p - log q], estimated on fresh draws (paired, so its standard error is small).
    # Allowed: 0.05 nats. In each of the 2 dims a mean error of k sd costs k^2 / 2 nats and an sd ratio
    # 1 + r costs about r^2 nats, so 0.05 nats admits e.g. 0.15 sd in the means and 10 % in the sds.
    n = 4000
    theta, c = simulate(n, rng)
    gap = true_log_prob(theta, c) - net.log_prob(theta, c).numpy()
    assert gap.mean() < 0.05 + 4 * gap.std() / np.sqrt(n)
    assert gap.mean() > -4 * gap.std() / np.sqrt(n)  # q is normalized: KL cannot be negative

    # The moments of q(theta | c) at three conditions: 0.15 sd and 12 % (see above) plus 4 Monte Carlo
    # standard errors (sd / sqrt(S) for a mean, sd / sqrt(2 S) for an sd).
    conditions = np.array([[0.0, 0.0], [1.5, -1.0], [-1.0, 0.5]], "float32")
    draws = net.sample(n, conditions, seed=11).numpy()
    for cond, d in zip(conditions, draws):
        np.testing.assert_array_less(np.abs(d.mean(axis=0) - cond) / SIGMA, 0.15 + 4 / np.sqrt(n))
        np.testing.assert_array_less(np.abs(d.std(axis=0) / SIGMA - 1.0), 0.12 + 4 / np.sqrt(2 * n))
