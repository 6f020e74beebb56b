"""Gaussian mixture: inferring the common mean of a two-component mixture with different widths."""

from __future__ import annotations

import math

import numpy as np
from scipy.special import logsumexp

from amortflow.benchmarks.reference import rejection_sample
from amortflow.benchmarks.tasks._priors import UniformPriorTask

SCALES = (1.0, 0.1)  # standard deviations of the two components, each with weight 1/2


class GaussianMixture(UniformPriorTask):
    """``theta ~ U(-10, 10)^2``, ``x | theta ~ 0.5 N(theta, I) + 0.5 N(theta, 0.01 I)`` (Lueckmann et al., 2021).

    The likelihood is symmetric in ``x`` and ``theta``, so the posterior is the same mixture
    centred at ``x``, truncated to the prior box. Reference: draw a component, then
    ``theta ~ N(x, s_c^2 I)``, and reject draws outside the box (exact).
    """

    name = "gaussian_mixture"
    dim_parameters = 2
    dim_data = 2
    param_names = ("theta_1", "theta_2")
    prior_low = (-10.0, -10.0)
    prior_high = (10.0, 10.0)

    def _simulate(self, theta, rng):
        scale = np.where(rng.uniform(size=(len(theta), 1)) < 0.5, SCALES[0], SCALES[1])
        return theta + scale * rng.standard_normal(theta.shape)

    def log_likelihood(self, theta, observation):
        """``log p(x | theta)``; ``observation`` is ``(2,)`` or ``(B, 2)`` (one per row of ``theta``)."""
        sq = np.sum((np.atleast_2d(theta) - np.atleast_2d(observation)) ** 2, axis=1)
        terms = [math.log(0.5) - 0.5 * sq / s**2 - math.log(2 * math.pi * s**2) for s in SCALES]
        return logsumexp(np.stack(terms), axis=0)

    def _reference(self, observation, n_samples, rng, **options):
        def propose(n, rng):
            scale = np.where(rng.uniform(size=(n, 1)) < 0.5, SCALES[0], SCALES[1])
            theta = observation + scale * rng.standard_normal((n, 2))
            return theta, self.log_support_indicator(theta)

        return rejection_sample(propose, n_samples, rng, **options)
