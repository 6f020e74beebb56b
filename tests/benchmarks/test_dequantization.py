"""Uniform dequantization of integer data for NLE: the noise, the cell quadrature, the wiring."""

import numpy as np
import pytest
from scipy.stats import norm

from amortflow.benchmarks import Benchmark
from amortflow.benchmarks.dequantization import NUM_CELL_POINTS, UniformDequantization, cell_log_likelihood_fn
from amortflow.exceptions import ArgumentError


def test_noise_is_uniform_on_the_cell_and_fresh_each_call():
    wrap = UniformDequantization(lambda raw: raw, seed=3)
    counts = np.array([[0.0, 5.0, 1000.0]] * 2000)
    first, second = wrap({"sim_data": counts})["sim_data"], wrap({"sim_data": counts})["sim_data"]
    noise = first - counts
    assert noise.min() >= 0.0 and noise.max() < 1.0
    # mean of 6,000 U(0, 1) draws: standard error 0.29 / sqrt(6000) = 0.004
    assert abs(noise.mean() - 0.5) < 0.02
    assert not np.allclose(first, second)
    with pytest.raises(ArgumentError, match="integer-valued"):
        wrap({"sim_data": counts + 0.3})


def test_cell_average_matches_the_exact_cell_probability():
    # q(x | theta) = N(x; theta, 0.7^2) in 1-D: the cell [x, x + 1) has probability
    # Phi((x + 1 - theta) / s) - Phi((x - theta) / s). The K scrambled-Sobol points put one point
    # in each stratum of width h = 1/K, so the average's error is at most L * h with
    # L = max |q'| = 1 / (s^2 sqrt(2 pi e)) (Lipschitz constant of the density).
    import tensorflow as tf

    s = 0.7
    wrap = UniformDequantization(lambda raw: raw)
    x = 2.0
    points = wrap.cell_points(np.array([x]), seed=5)
    assert points.shape == (NUM_CELL_POINTS, 1) and np.all((points >= x) & (points < x + 1))

    def log_density_rows(xs, thetas):
        return -0.5 * tf.reduce_sum(((xs - thetas) / s) ** 2, axis=-1) - np.log(s * np.sqrt(2 * np.pi))

    theta = np.array([[1.0], [2.5], [3.0], [5.0]], dtype=np.float32)
    estimate = np.exp(cell_log_likelihood_fn(log_density_rows, points)(tf.constant(theta)).numpy())
    exact = norm.cdf((x + 1 - theta[:, 0]) / s) - norm.cdf((x - theta[:, 0]) / s)
    bound = 1.0 / (s**2 * np.sqrt(2 * np.pi * np.e)) / NUM_CELL_POINTS
    assert np.all(np.abs(estimate - exact) <= bound)


def test_integer_data_tasks_get_a_dequantizing_likelihood_configurator():
    sir = Benchmark("sir", n_pilot=200)
    assert isinstance(sir.likelihood_configurator, UniformDequantization)
    raw = sir.generative_model(batch_size=5, rng=1)
    first = sir.likelihood_configurator(raw)["observables"]
    assert first.shape == (5, sir.task.dim_data) and np.all(np.isfinite(first))
    assert not np.allclose(first, sir.likelihood_configurator(raw)["observables"])
    assert not isinstance(Benchmark("two_moons", n_pilot=200).likelihood_configurator, UniformDequantization)
