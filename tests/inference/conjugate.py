"""The conjugate Gaussian model of the sequential-inference and ABC tests, with its exact posterior.

``theta ~ N(0, I_2)``, ``x_n ~ N(theta, I_2)``, ``n = 1..10``; the simulator returns the sample mean
``xbar ~ N(theta, I / 10)`` (sufficient for theta), so the networks need no summary network.
Posterior: ``N(10 xbar / 11, I / 11)`` (precision ``1 + 10``), sd ``1 / sqrt(11) = 0.302``.
"""

from __future__ import annotations

import numpy as np
import tensorflow_probability as tfp

import amortflow as af

tfd = tfp.distributions
N_OBS = 10
PRIOR = tfd.Independent(tfd.Normal(np.zeros(2, "float32"), 1.0), 1)
#: One observed sample mean (fixed, moderately far from the prior mean).
X_OBS = np.array([0.6, -0.9], dtype="float32")
POSTERIOR_MEAN = N_OBS * X_OBS / (N_OBS + 1.0)
POSTERIOR_SD = 1.0 / np.sqrt(N_OBS + 1.0)


def sample_means(theta: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``xbar (B, 2)`` of ``N_OBS`` observations ``N(theta, I)`` per row of ``theta (B, 2)``."""
    return (theta[:, None, :] + rng.normal(size=(len(theta), N_OBS, theta.shape[-1]))).mean(axis=1)


def model() -> af.simulation.GenerativeModel:
    simulator = af.simulation.Simulator(batch_simulator_fun=sample_means)
    return af.simulation.GenerativeModel(prior=af.simulation.Prior(distribution=PRIOR), simulator=simulator, skip_test=True)


#: Largest C2ST accuracy accepted against exact draws. Two 2-D normals whose means differ by at
#: most 0.25 sd and whose sds by at most 15 % per axis (the estimation budget of the known-answer
#: tests) have a total-variation distance of at most 0.19, so the best classifier scores at most
#: ``(1 + 0.19) / 2 = 0.595``; 4 standard errors of an accuracy from 2 x 1000 points
#: (``sqrt(0.25 / 2000) = 0.011``) give 0.64.
C2ST_MAX = 0.64


def c2st_against_exact(draws: np.ndarray, n: int = 1000, seed: int = 0) -> float:
    """C2ST accuracy of ``n`` of ``draws`` (every k-th, so MCMC chains mix in) against ``n`` exact posterior draws."""
    from amortflow.diagnostics.metrics.c2st import c2st

    exact = POSTERIOR_MEAN + POSTERIOR_SD * np.random.default_rng(seed).normal(size=(n, 2))
    return c2st(exact, draws[:: max(1, len(draws) // n)][:n], seed=seed)


#: Estimation budget of a tiny network trained for seconds: the mean may be off by this many
#: posterior sds, the sd by this fraction (the budget behind :data:`C2ST_MAX`).
MEAN_BUDGET, SD_BUDGET = 0.25, 0.15


def assert_matches_posterior(draws: np.ndarray, effective_size: float | None = None) -> None:
    """Finite ``(n, 2)`` draws whose mean, sd and C2ST match the exact posterior.

    Tolerance: the estimation budget plus 4 Monte Carlo standard errors of a mean
    (``1 / sqrt(n_eff)`` sd) and of an sd (``1 / sqrt(2 n_eff)``); ``effective_size`` is the draws'
    effective sample size (MCMC), ``len(draws)`` by default (independent draws).
    """
    n_eff = len(draws) if effective_size is None else float(effective_size)
    assert draws.ndim == 2 and draws.shape[1] == 2 and np.isfinite(draws).all()
    shift = np.abs(draws.mean(axis=0) - POSTERIOR_MEAN) / POSTERIOR_SD
    np.testing.assert_array_less(shift, MEAN_BUDGET + 4 / np.sqrt(n_eff))
    np.testing.assert_array_less(np.abs(draws.std(axis=0) / POSTERIOR_SD - 1), SD_BUDGET + 4 / np.sqrt(2 * n_eff))
    assert c2st_against_exact(draws) < C2ST_MAX
