"""Gaussian linear uniform: a 10-D Gaussian likelihood under a uniform box prior."""

from __future__ import annotations

import math

import numpy as np

from amortflow.benchmarks.reference import SamplerResult, truncated_standard_normal
from amortflow.benchmarks.tasks._priors import UniformPriorTask

DIM = 10
NOISE_VARIANCE = 0.1


class GaussianLinearUniform(UniformPriorTask):
    """``theta ~ U(-1, 1)^10``, ``x | theta ~ N(theta, 0.1 I_10)`` (Lueckmann et al., 2021).

    The posterior is ``N(x, 0.1 I)`` truncated to the box. It factorizes over dimensions, so
    each coordinate is drawn exactly from its one-dimensional truncated normal by inverting
    the normal CDF on ``[Phi((-1 - x_i) / s), Phi((1 - x_i) / s)]`` - the same law as rejection
    from ``N(x, 0.1 I)``, without rejection's cost when few proposals fall in the box.
    """

    name = "gaussian_linear_uniform"
    dim_parameters = DIM
    dim_data = DIM
    param_names = tuple(f"theta_{i + 1}" for i in range(DIM))
    prior_low = (-1.0,) * DIM
    prior_high = (1.0,) * DIM

    def _simulate(self, theta, rng):
        return theta + math.sqrt(NOISE_VARIANCE) * rng.standard_normal(theta.shape)

    def log_likelihood(self, theta, observation):
        residual = np.atleast_2d(theta) - np.asarray(observation).reshape(1, DIM)
        return -0.5 * np.sum(residual**2, axis=1) / NOISE_VARIANCE - 0.5 * DIM * math.log(2 * math.pi * NOISE_VARIANCE)

    def _reference(self, observation, n_samples, rng, **options):
        scale = math.sqrt(NOISE_VARIANCE)
        lower = (np.asarray(self.prior_low) - observation) / scale
        upper = (np.asarray(self.prior_high) - observation) / scale
        z = truncated_standard_normal(np.tile(lower, (n_samples, 1)), np.tile(upper, (n_samples, 1)), rng)
        samples = np.clip(observation + scale * z, self.prior_low, self.prior_high)  # round-off only
        return SamplerResult(samples, {"method": "truncated_normal_inverse_cdf"})
