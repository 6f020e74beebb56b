"""Gaussian linear: a conjugate 10-D Gaussian model with an analytic posterior."""

from __future__ import annotations

import math

import numpy as np

from amortflow.benchmarks.reference import SamplerResult
from amortflow.benchmarks.tasks._priors import GaussianPriorTask

DIM = 10
PRIOR_VARIANCE = 0.1
NOISE_VARIANCE = 0.1


class GaussianLinear(GaussianPriorTask):
    """``theta ~ N(0, 0.1 I_10)``, ``x | theta ~ N(theta, 0.1 I_10)`` (Lueckmann et al., 2021).

    The posterior is Gaussian with precision ``(1/0.1 + 1/0.1) I`` and mean ``Sigma_post x / 0.1``,
    i.e. ``N(x / 2, 0.05 I)``; reference samples are drawn from it directly.
    """

    name = "gaussian_linear"
    dim_parameters = DIM
    dim_data = DIM
    param_names = tuple(f"theta_{i + 1}" for i in range(DIM))
    prior_mean = np.zeros(DIM)
    prior_covariance = PRIOR_VARIANCE * np.eye(DIM)

    def _simulate(self, theta, rng):
        return theta + math.sqrt(NOISE_VARIANCE) * rng.standard_normal(theta.shape)

    def log_likelihood(self, theta, observation):
        residual = np.atleast_2d(theta) - np.asarray(observation).reshape(1, DIM)
        return -0.5 * np.sum(residual**2, axis=1) / NOISE_VARIANCE - 0.5 * DIM * math.log(2 * math.pi * NOISE_VARIANCE)

    def posterior_mean_and_covariance(self, observation) -> tuple[np.ndarray, np.ndarray]:
        """Analytic posterior ``N(mean, cov)``: ``cov = (P^-1 + N^-1)^-1``, ``mean = cov N^-1 x``."""
        x = self._as_observation(observation)
        precision = np.linalg.inv(self.prior_covariance) + np.eye(DIM) / NOISE_VARIANCE
        cov = np.linalg.inv(precision)
        return cov @ (x / NOISE_VARIANCE), cov

    def _reference(self, observation, n_samples, rng, **options):
        mean, cov = self.posterior_mean_and_covariance(observation)
        samples = mean + rng.standard_normal((n_samples, DIM)) @ np.linalg.cholesky(cov).T
        return SamplerResult(samples, {"method": "analytic"})
