"""Task-specific model checks: ODE solutions, likelihoods and fixed designs against independent computations."""

import math

import numpy as np
import pytest
from scipy import stats
from scipy.integrate import solve_ivp

from amortflow.benchmarks import get_task
from amortflow.benchmarks.ode import rk4_solve
from amortflow.benchmarks.tasks import bernoulli_glm, lotka_volterra, sir
from amortflow.benchmarks.tasks.slcp_distractors import distractor_mixture
from amortflow.exceptions import ArgumentError


def test_rk4_solves_exponential_growth_exactly_enough():
    # dy/dt = -y: RK4's global error is O(dt^4); at dt = 0.1 it is below 1e-6 over [0, 2]
    out = rk4_solve(lambda y: -y, np.array([[1.0], [2.0]]), np.array([0.0, 1.0, 2.0]), 0.1)
    np.testing.assert_allclose(out[:, :, 0], [[1, math.exp(-1), math.exp(-2)], [2, 2 * math.exp(-1), 2 * math.exp(-2)]], atol=1e-6)
    with pytest.raises(ArgumentError, match="multiples of dt"):
        rk4_solve(lambda y: -y, np.ones((1, 1)), np.array([0.05]), 0.1)


def test_sir_solution_matches_solve_ivp():
    theta = get_task("sir").sample_prior(12, rng=0)
    ours = sir.SIR.infected_fraction(theta)
    n = sir.POPULATION
    for row, (beta, gamma) in zip(ours, theta):
        def rhs(t, u, beta=beta, gamma=gamma):
            return [-beta * u[0] * u[1] / n, beta * u[0] * u[1] / n - gamma * u[1]]

        ref = solve_ivp(rhs, (0, 160), [n - 1, 1], t_eval=sir.OBSERVATION_DAYS, rtol=1e-10, atol=1e-8, method="DOP853")
        # binomial noise on 1000 trials has sd >= 1e-3 * sqrt(p); an error of 1e-4 in p is far below it
        np.testing.assert_allclose(row, ref.y[1] / n, atol=1e-4)


def test_lotka_volterra_solution_matches_solve_ivp():
    task = get_task("lotka_volterra")
    theta = task.sample_prior(12, rng=1)
    ours = task.log_populations(theta)
    for row, (a, b, c, d) in zip(ours, theta):
        def rhs(t, u, a=a, b=b, c=c, d=d):
            return [a * u[0] - b * u[0] * u[1], -c * u[1] + d * u[0] * u[1]]

        ref = solve_ivp(rhs, (0, 20), [30, 1], t_eval=lotka_volterra.OBSERVATION_TIMES, rtol=1e-11, atol=1e-13, method="DOP853")
        log_ref = np.log(np.clip(ref.y, *lotka_volterra.CLIP)).reshape(-1)
        # noise sd is 0.1 on the log scale: an ODE error of 5e-3 moves the log-likelihood by < 0.25
        np.testing.assert_allclose(row, log_ref, atol=5e-3)


@pytest.mark.parametrize(
    ("name", "low", "high", "step"),
    [("two_moons", (0.1, -0.7), (0.45, -0.3), 0.0005), ("gaussian_mixture", (-5.0, -5.0), (7.0, 7.0), 0.01)],
)
def test_two_dimensional_likelihoods_integrate_to_one(name, low, high, step):
    task = get_task(name)
    theta = np.array([[0.3, -0.4]])
    g1, g2 = np.meshgrid(np.arange(low[0], high[0], step), np.arange(low[1], high[1], step), indexing="ij")
    grid = np.stack([g1.ravel(), g2.ravel()], axis=1)  # data values x, one per row
    log_lik = task.log_likelihood(np.repeat(theta, len(grid), axis=0), grid)
    assert log_lik[0] == task.log_likelihood(theta, grid[0])[0]  # (B, 2) data broadcast row by row
    # Riemann sum of a density that is smooth on the grid scale (two moons: ring width 0.01 = 20
    # steps; its half-disk of radius ~0.13 around (0.11, -0.49) lies inside the box) and negligible
    # outside the box: the error is well below 1%
    assert np.exp(log_lik).sum() * step**2 == pytest.approx(1.0, abs=0.01)


def test_slcp_likelihood_matches_scipy():
    task = get_task("slcp")
    theta = task.sample_prior(4, rng=2)
    x = task.simulate(theta[:1], rng=3)[0]
    ours = task.log_likelihood(theta, x)
    for value, t in zip(ours, theta):
        s1, s2, rho = t[2] ** 2, t[3] ** 2, np.tanh(t[4])
        cov = [[s1**2 + 1e-6, rho * s1 * s2], [rho * s1 * s2, s2**2 + 1e-6]]
        assert value == pytest.approx(stats.multivariate_normal.logpdf(x.reshape(4, 2), t[:2], cov).sum(), rel=1e-8)


def test_slcp_simulator_has_the_stated_moments():
    task = get_task("slcp")
    theta = np.array([[0.5, -1.0, 1.2, 0.9, 0.4]])
    points = task.simulate(np.repeat(theta, 25_000, axis=0), rng=4).reshape(-1, 2)  # 100,000 points
    s1, s2, rho = 1.2**2, 0.9**2, np.tanh(0.4)
    # standard errors with n = 1e5: mean s/sqrt(n) <= 0.005, sd s/sqrt(2n) <= 0.0033; 5 se bounds
    np.testing.assert_allclose(points.mean(axis=0), [0.5, -1.0], atol=0.025)
    np.testing.assert_allclose(points.std(axis=0), [s1, s2], atol=0.02)
    assert np.corrcoef(points.T)[0, 1] == pytest.approx(rho, abs=0.015)  # se of r ~ (1 - r^2)/sqrt(n) = 0.003


def test_slcp_distractors_do_not_depend_on_theta():
    task = get_task("slcp_distractors")
    theta = task.sample_prior(2, rng=5)
    a = task.simulate(theta[:1], rng=6)
    b = task.simulate(theta[1:], rng=6)
    distractor_positions = np.argsort(distractor_mixture()[2])[8:]
    np.testing.assert_array_equal(a[:, distractor_positions], b[:, distractor_positions])
    assert not np.allclose(task.informative_data(a), task.informative_data(b))
    locs, trils, permutation = distractor_mixture()
    assert locs.shape == (20, 92) and trils.shape == (20, 92, 92) and sorted(permutation) == list(range(100))
    assert np.isfinite(task.distractor_log_density(a[0]))


def test_bernoulli_glm_design_and_prior():
    X = bernoulli_glm.design_matrix()
    stimulus = X[:, 1]
    np.testing.assert_array_equal(X[:, 0], 1.0)
    for lag in range(1, 9):  # column lag + 1 is the stimulus delayed by lag bins
        np.testing.assert_array_equal(X[lag:, lag + 1], stimulus[:-lag])
        np.testing.assert_array_equal(X[:lag, lag + 1], 0.0)
    cov = get_task("bernoulli_glm").prior_covariance
    assert cov[0, 0] == pytest.approx(2.0)  # beta_0 ~ N(0, 2)
    np.testing.assert_allclose(cov[0, 1:], 0.0)
    task = get_task("bernoulli_glm_raw")
    theta = task.sample_prior(3, rng=7)
    spikes = task.simulate(theta, rng=8)
    # the likelihood of the spike train equals the Bernoulli pmf product
    p = 1 / (1 + np.exp(-theta @ X.T))
    expected = np.sum(spikes * np.log(p) + (1 - spikes) * np.log1p(-p), axis=1)
    np.testing.assert_allclose([task.log_likelihood(t[None], s)[0] for t, s in zip(theta, spikes)], expected, rtol=1e-10)


def test_inverse_kinematics_forward_model():
    task = get_task("inverse_kinematics")
    straight = np.array([[0.2, 0.0, 0.0, 0.0], [0.0, math.pi / 2, 0.0, 0.0], [0.0, 0.0, math.pi / 2, -math.pi / 2]])
    np.testing.assert_allclose(task.simulate(straight), [[0.2, 2.0], [2.0, 0.0], [0.5, 1.5]], atol=1e-12)
    with pytest.raises(NotImplementedError, match="no tractable likelihood"):
        task.log_likelihood(straight, np.zeros(2))
