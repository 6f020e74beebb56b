"""Two moons: a bimodal, crescent-shaped posterior in two dimensions."""

from __future__ import annotations

import math

import numpy as np

from amortflow.benchmarks.reference import rejection_sample
from amortflow.benchmarks.tasks._priors import UniformPriorTask

R_LOC, R_SCALE, OFFSET = 0.1, 0.01, 0.25


class TwoMoons(UniformPriorTask):
    """Two moons (Greenberg et al., 2019; Lueckmann et al., 2021).

    ``theta ~ U(-1, 1)^2``; ``a ~ U(-pi/2, pi/2)``, ``r ~ N(0.1, 0.01^2)``,
    ``p = (r cos a + 0.25, r sin a)`` and
    ``x = p + (-|theta_1 + theta_2| / sqrt 2, (-theta_1 + theta_2) / sqrt 2)``.

    Reference: exact. The map ``theta -> g(theta) = x - p`` is a rotation (Jacobian 1) folded
    by ``|.|``, so drawing ``p`` from its law, solving ``g(theta) = x - p`` for ``theta`` with a
    fair random sign of ``theta_1 + theta_2``, and rejecting draws outside the prior box (or
    with ``x_1 - p_1 > 0``, which no ``theta`` explains) gives the posterior exactly.
    """

    name = "two_moons"
    dim_parameters = 2
    dim_data = 2
    param_names = ("theta_1", "theta_2")
    prior_low = (-1.0, -1.0)
    prior_high = (1.0, 1.0)

    @staticmethod
    def _moon_noise(n: int, rng: np.random.Generator) -> np.ndarray:
        a = rng.uniform(-math.pi / 2, math.pi / 2, size=n)
        r = rng.normal(R_LOC, R_SCALE, size=n)
        return np.stack([r * np.cos(a) + OFFSET, r * np.sin(a)], axis=1)

    @staticmethod
    def _shift(theta: np.ndarray) -> np.ndarray:
        z0 = (theta[:, 0] + theta[:, 1]) / math.sqrt(2)
        z1 = (theta[:, 1] - theta[:, 0]) / math.sqrt(2)
        return np.stack([-np.abs(z0), z1], axis=1)

    def _simulate(self, theta, rng):
        return self._moon_noise(len(theta), rng) + self._shift(theta)

    def log_likelihood(self, theta, observation):
        """``log p(x | theta)``: ``p`` has density ``N(r; 0.1, 0.01^2) / (pi r)`` for ``p_1 > 0.25``.

        ``observation`` is ``(2,)`` or ``(B, 2)`` (one data vector per row of ``theta``).
        """
        p = np.atleast_2d(observation) - self._shift(np.atleast_2d(theta))
        u, v = p[:, 0] - OFFSET, p[:, 1]
        r = np.hypot(u, v)
        with np.errstate(divide="ignore"):
            log_r_density = -0.5 * ((r - R_LOC) / R_SCALE) ** 2 - math.log(R_SCALE * math.sqrt(2 * math.pi))
            out = log_r_density - math.log(math.pi) - np.log(r)
        return np.where(u > 0, out, -np.inf)

    def _reference(self, observation, n_samples, rng, **options):
        def propose(n, rng):
            q = observation - self._moon_noise(n, rng)
            z0 = -q[:, 0] * rng.choice([-1.0, 1.0], size=n)
            z1 = q[:, 1]
            theta = np.stack([z0 - z1, z0 + z1], axis=1) / math.sqrt(2)
            # x_1 - p_1 > 0: no theta explains x; outside the box: zero prior density
            return theta, np.where(q[:, 0] <= 0, self.log_support_indicator(theta), -np.inf)

        return rejection_sample(propose, n_samples, rng, **options)
