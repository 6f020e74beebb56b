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
