"""Lotka-Volterra: predator-prey dynamics observed with log-normal noise."""

from __future__ import annotations

import math

import numpy as np

from amortflow.benchmarks.ode import rk4_solve
from amortflow.benchmarks.reference import sample_posterior
from amortflow.benchmarks.tasks._priors import LogNormalPriorTask

INITIAL_STATE = (30.0, 1.0)  # prey, predators
OBSERVATION_TIMES = 2.1 * np.arange(10)  # sbibm's grid of step 0.1 over 20 days, every 21st point
NOISE_SCALE = 0.1
CLIP = (1e-10, 1e4)  # populations are clipped to this range before the noise, as in sbibm
STEP = 0.02  # RK4 step; the tests bound the error against solve_ivp
MAX_LOG_STATE = 50.0  # keeps exp() finite for absurd prior draws (populations > e^50 are clipped anyway)


class LotkaVolterra(LogNormalPriorTask):
    """Lotka-Volterra model (Lueckmann et al., 2021).

    ``alpha, gamma ~ LogNormal(-0.125, 0.5)``, ``beta, delta ~ LogNormal(-3, 0.5)``;
    ``dX/dt = alpha X - beta X Y``, ``dY/dt = -gamma Y + delta X Y`` from ``(X, Y) = (30, 1)``;
    data ``LogNormal(log clip(u_k), 0.1)`` for both species at ``t = 0, 2.1, ..., 18.9`` -
    the 10 prey values first, then the 10 predator values (20 values).

    The ODE is solved in log-populations by batched RK4 (step 0.02). Reference: tempered SMC +
    random-walk Metropolis on ``log theta`` with the exact likelihood, R-hat checked.
    """

    name = "lotka_volterra"
    dim_parameters = 4
    dim_data = 2 * len(OBSERVATION_TIMES)
    param_names = ("alpha", "beta", "gamma", "delta")
    prior_loc = (-0.125, -3.0, -0.125, -3.0)
    prior_scale = (0.5, 0.5, 0.5, 0.5)
    cache_reference = True

    @staticmethod
    def log_populations(theta: np.ndarray) -> np.ndarray:
        """``log clip(u_k)`` at the observation times, ``(B, 20)`` (prey, then predators)."""
        # d log X/dt = alpha - beta Y,  d log Y/dt = delta X - gamma:  r + m * exp(swap(y))
        r = np.stack([theta[:, 0], -theta[:, 2]])
        m = np.stack([-theta[:, 1], theta[:, 3]])

        def rhs(y):  # y = (log X, log Y), shape (2, B)
            e = np.exp(np.minimum(y[::-1], MAX_LOG_STATE))
            e *= m
            e += r
            return e

        y0 = np.tile(np.log(INITIAL_STATE), (len(theta), 1))
        log_u = rk4_solve(rhs, y0, OBSERVATION_TIMES, STEP)  # (B, 10, 2)
        log_u = np.clip(log_u, math.log(CLIP[0]), math.log(CLIP[1]))
        return np.transpose(log_u, (0, 2, 1)).reshape(len(theta), -1)

    def _simulate(self, theta, rng):
        mean = self.log_populations(theta)
        return np.exp(mean + NOISE_SCALE * rng.standard_normal(mean.shape))

    def log_likelihood(self, theta, observation):
        log_x = np.log(np.asarray(observation, dtype=float).reshape(1, -1))
        z = (log_x - self.log_populations(np.atleast_2d(theta))) / NOISE_SCALE
        return np.sum(-0.5 * z**2 - log_x - math.log(NOISE_SCALE * math.sqrt(2 * math.pi)), axis=1)

    def _reference(self, observation, n_samples, rng, **options):
        model = self._log_space_posterior_model(lambda theta: self.log_likelihood(theta, observation))
        return sample_posterior(model, n_samples, rng, **options)
