"""SIR: an epidemic (susceptible-infected-recovered ODE) observed through binomial samples."""

from __future__ import annotations

import math

import numpy as np
from scipy.special import gammaln, xlog1py, xlogy

from amortflow.benchmarks.ode import rk4_solve
from amortflow.benchmarks.reference import sample_posterior
from amortflow.benchmarks.tasks._priors import LogNormalPriorTask

POPULATION = 1_000_000.0
INITIAL_INFECTED = 1.0
OBSERVATION_DAYS = 17.0 * np.arange(10)  # day 0, 17, ..., 153: sbibm's 160-day grid, every 17th
TOTAL_COUNT = 1000
STEP = 0.5  # RK4 step (days); the tests bound the error against solve_ivp


class SIR(LogNormalPriorTask):
    """SIR model (Lueckmann et al., 2021).

    ``beta ~ LogNormal(log 0.4, 0.5)`` (contact rate), ``gamma ~ LogNormal(log 1/8, 0.2)``
    (recovery rate per day). ``dS/dt = -beta S I / N``, ``dI/dt = beta S I / N - gamma I``
    with ``N = 10^6``, ``I(0) = 1``, ``R(0) = 0``; data: ``x_k ~ Binomial(1000, I(t_k) / N)`` on
    days ``t_k = 0, 17, ..., 153`` (10 values).

    The ODE is solved in ``(log S, log I)``, where it is smooth, by batched RK4 (step 0.5 days).
    Reference: tempered SMC + random-walk Metropolis on ``log theta`` with the exact binomial
    likelihood, R-hat checked.
    """

    name = "sir"
    dim_parameters = 2
    dim_data = len(OBSERVATION_DAYS)
    param_names = ("beta", "gamma")
    prior_loc = (math.log(0.4), math.log(0.125))
    prior_scale = (0.5, 0.2)
    cache_reference = True
    integer_data = True

    @staticmethod
    def infected_fraction(theta: np.ndarray) -> np.ndarray:
        """``I(t_k) / N`` at the observation days, ``(B, 10)``."""
        # d log S/dt = -beta I / N,  d log I/dt = beta S / N - gamma:  r + m * exp(swap(y))
        m = np.stack([-theta[:, 0], theta[:, 0]]) / POPULATION
        r = np.stack([np.zeros(len(theta)), -theta[:, 1]])

        def rhs(y):  # y = (log S, log I), shape (2, B)
            e = np.exp(y[::-1])
            e *= m
            e += r
            return e

        y0 = np.tile([math.log(POPULATION - INITIAL_INFECTED), math.log(INITIAL_INFECTED)], (len(theta), 1))
        log_infected = rk4_solve(rhs, y0, OBSERVATION_DAYS, STEP)[:, :, 1]
        return np.clip(np.exp(log_infected) / POPULATION, 0.0, 1.0)

    def _simulate(self, theta, rng):
        return rng.binomial(TOTAL_COUNT, self.infected_fraction(theta)).astype(float)

    def log_likelihood(self, theta, observation):
        k = np.asarray(observation, dtype=float).reshape(1, -1)
        p = self.infected_fraction(np.atleast_2d(theta))
        log_choose = gammaln(TOTAL_COUNT + 1) - gammaln(k + 1) - gammaln(TOTAL_COUNT - k + 1)
        return np.sum(log_choose + xlogy(k, p) + xlog1py(TOTAL_COUNT - k, -p), axis=1)

    def _reference(self, observation, n_samples, rng, **options):
        model = self._log_space_posterior_model(lambda theta: self.log_likelihood(theta, observation))
        return sample_posterior(model, n_samples, rng, **options)
