"""Uniform dequantization of integer data for NLE: the noise, the cell quadrature, the wiring."""

import numpy as np
import pytest
from scipy.stats import norm

from amortflow.benchmarks import Benchmark
from amortflow.dequantization import NUM_CELL_POINTS, UniformDequantization, cell_log_likelihood_fn, unit_cell_points
from amortflow.exceptions import ArgumentError, ShapeError


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
    for bad in (np.inf, -np.inf, np.nan):
        with pytest.raises(ArgumentError, match="non-finite"):
            wrap({"sim_data": np.where(counts == counts.max(), bad, counts)})


def test_cell_average_matches_the_exact_cell_probability():
    # q(x | theta) = N(x; theta, 0.7^2) in 1-D: the cell [x, x + 1) has probability
    # Phi((x + 1 - theta) / s) - Phi((x - theta) / s). The K scrambled-Sobol points put one point
    # in each stratum of width h = 1/K, so the average's error is at most L * h with
    # L = max |q'| = 1 / (s^2 sqrt(2 pi e)) (Lipschitz constant of the density).
    import tensorflow as tf

    s = 0.7
    x = 2.0
    points = unit_cell_points(np.array([x]), seed=5)
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


def gaussian_cell_rows(s: float):
    """Per-observation log densities ``(R, N)`` of N(x; theta, s^2) in 1-D, rows of sets ``(R, N, 1)``."""

    def log_density(xs, thetas):
        return -0.5 * ((xs[..., 0] - thetas[:, None, :1][..., 0]) / s) ** 2 - np.log(s * np.sqrt(2 * np.pi))

    return log_density


def test_a_set_of_observations_sums_the_log_probabilities_of_its_cells():
    import tensorflow as tf

    counts = np.array([[0.0], [2.0], [3.0]])
    points = unit_cell_points(counts, seed=5)
    assert points.shape == (NUM_CELL_POINTS, 3, 1)
    assert np.all((points >= counts[None]) & (points < counts[None] + 1))
    theta = tf.constant([[1.0], [2.5]])
    together = cell_log_likelihood_fn(gaussian_cell_rows(0.7), points)(theta).numpy()
    # the same offsets per observation: each cell alone, then summed (additivity is exact)
    alone = sum(cell_log_likelihood_fn(gaussian_cell_rows(0.7), points[:, [n]])(theta).numpy() for n in range(3))
    np.testing.assert_allclose(together, alone, rtol=1e-5)


def test_unit_cells_reject_bad_arguments():
    with pytest.raises(ArgumentError, match="power of two"):
        unit_cell_points(np.array([1.0]), num_points=12)
    with pytest.raises(ArgumentError, match="integer"):
        unit_cell_points(np.array([1.5]))
    with pytest.raises(ArgumentError, match="non-finite"):
        unit_cell_points(np.array([3.0, np.inf]))
    with pytest.raises(ArgumentError, match="shape"):
        unit_cell_points(np.zeros((2, 2, 2)))


def test_default_configurator_is_the_likelihood_one():
    from amortflow.configuration import DefaultLikelihoodConfigurator

    wrap = UniformDequantization(seed=1)
    assert isinstance(wrap.configurator, DefaultLikelihoodConfigurator)
    out = wrap({"prior_draws": np.ones((4, 2)), "sim_data": np.full((4, 5, 3), 7.0)})
    assert out["observables"].shape == (4, 5, 3) and np.all((out["observables"] >= 7) & (out["observables"] < 8))


@pytest.fixture(scope="module")
def poisson_likelihood():
    """An NLE of x ~ Poisson(lambda), lambda ~ U(1, 10), trained on 4,000 dequantized counts (~20 s)."""
    import amortflow as af
    from amortflow.amortizers import AmortizedLikelihood
    from amortflow.networks import InvertibleNetwork
    from amortflow.trainers import Trainer

    af.set_seed(1)
    rng = np.random.default_rng(1)
    lam = rng.uniform(1.0, 10.0, size=(4000, 1))
    counts = rng.poisson(lam).astype(float)
    # act_norm_init: the flow starts at the (dequantized) data's scale; raw counts reach 20+
    flow = InvertibleNetwork(num_params=1, num_coupling_layers=2, coupling_design="spline",
                             coupling_settings={"dense_args": {"units": 32}}, act_norm_init=counts + 0.5)  # fmt: skip
    amortizer = AmortizedLikelihood(flow)
    trainer = Trainer(amortizer, configurator=UniformDequantization(seed=1), seed=1, progress=False)
    trainer.train_offline({"prior_draws": lam, "sim_data": counts}, epochs=20, batch_size=64, save_checkpoint=False)
    return amortizer


@pytest.mark.parametrize("lam", [2.0, 5.0, 8.0])
def test_cell_probabilities_of_a_dequantized_nle_match_the_poisson_pmf(poisson_likelihood, lam):
    # Measured with this seed: total variation 0.032-0.033 at the three rates. Bound 0.1: a pmf
    # off by one count, Poisson(lam + 1), is 0.14-0.25 away in total variation at these rates.
    import tensorflow as tf
    from scipy.stats import poisson

    from amortflow.inference import make_log_likelihood_fn

    theta = tf.constant([[lam]])
    pmf = np.array([
        np.exp(make_log_likelihood_fn(poisson_likelihood, np.array([k]), cell_points=16)[0](theta).numpy()[0])
        for k in range(26)
    ])  # fmt: skip
    exact = poisson.pmf(np.arange(26), lam)
    assert 0.5 * np.abs(pmf - exact).sum() < 0.1
    assert 0.95 < pmf.sum() < 1.02  # the cells [0, 26) hold (nearly) all of the flow's mass


def test_mcmc_on_dequantized_cells_recovers_the_exact_poisson_posterior(poisson_likelihood):
    # x_obs: five counts, sum 25; exact posterior lambda^25 e^{-5 lambda} on [1, 10]: mean 5.20,
    # sd 1.02 (quadrature). Measured: 5.27. Bound 0.3 (0.3 sd): the RWM mean's standard error is
    # about 0.05, and a likelihood shifted by one count would move the mean by about 1.
    import tensorflow_probability as tfp
    from scipy import integrate

    from amortflow.inference import sample_posterior_mcmc

    x_obs = np.array([[3.0], [7.0], [4.0], [6.0], [5.0]])
    prior = tfp.distributions.Independent(tfp.distributions.Uniform(low=[1.0], high=[10.0]), 1)
    result = sample_posterior_mcmc(poisson_likelihood, x_obs, prior, num_chains=8, num_results=500,
                                   num_burnin=300, kernel="rwm", seed=3, cell_points=16)  # fmt: skip
    density = lambda lam: lam**25 * np.exp(-5.0 * lam)  # noqa: E731
    exact_mean = integrate.quad(lambda lam: lam * density(lam), 1, 10)[0] / integrate.quad(density, 1, 10)[0]
    assert result.draws.shape == (4000, 1)
    assert abs(float(result.draws.mean()) - exact_mean) < 0.3


def test_cell_points_need_a_likelihood_and_raw_integer_data(poisson_likelihood):
    from amortflow.amortizers import AmortizedRatio
    from amortflow.inference import make_log_likelihood_fn

    with pytest.raises(ArgumentError, match="AmortizedLikelihood"):
        make_log_likelihood_fn(AmortizedRatio(), np.array([1.0]), cell_points=16)
    with pytest.raises(ArgumentError, match="raw integer data"):
        make_log_likelihood_fn(poisson_likelihood, {"observables": np.ones((1, 1))}, cell_points=16)
    with pytest.raises(ShapeError, match="observations"):
        make_log_likelihood_fn(poisson_likelihood, np.ones((3, 2)), cell_points=16)
    with pytest.raises(ArgumentError, match="integer"):
        make_log_likelihood_fn(poisson_likelihood, np.array([2.5]), cell_points=16)
