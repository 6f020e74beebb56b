"""Bernoulli GLM: a spiking neuron driven by a white-noise stimulus through a linear filter."""

from __future__ import annotations

import functools

import numpy as np

from amortflow.benchmarks.reference import PosteriorModel, sample_posterior
from amortflow.benchmarks.tasks._priors import GaussianPriorTask

N_BINS = 100
N_FILTER = 9
STIMULUS_SEED = 42


@functools.lru_cache(maxsize=1)
def design_matrix() -> np.ndarray:
    """``(100, 10)`` design ``X``: a column of ones, then the stimulus delayed by 0 .. 8 bins.

    The stimulus is 100 bins of Gaussian white noise from NumPy's legacy ``RandomState(42)``
    (float32), as described for sbibm, so ``X @ theta`` is the bias plus the stimulus
    convolved with the filter ``theta[1:]``.
    """
    stimulus = np.random.RandomState(STIMULUS_SEED).randn(N_BINS).astype(np.float32).astype(float)
    X = np.zeros((N_BINS, N_FILTER + 1))
    X[:, 0] = 1.0
    for lag in range(N_FILTER):
        X[lag:, lag + 1] = stimulus[: N_BINS - lag]
    return X


def prior_precision() -> np.ndarray:
    """Prior precision: ``1/2`` for the bias and ``F^T F`` for the filter.

    ``F = D^2 + diag(sqrt(k / 9))``, ``k = 0 .. 8``, with ``D`` the first-difference matrix:
    penalizing second differences makes the filter smooth (Lueckmann et al., 2021).
    """
    D = np.eye(N_FILTER) - np.eye(N_FILTER, k=-1)
    F = D @ D + np.diag(np.sqrt(np.arange(N_FILTER) / N_FILTER))
    precision = np.zeros((N_FILTER + 1, N_FILTER + 1))
    precision[0, 0] = 0.5
    precision[1:, 1:] = F.T @ F
    return precision


class BernoulliGLM(GaussianPriorTask):
    """Bernoulli GLM with sufficient statistics as data (Lueckmann et al., 2021).

    ``theta = (beta_0, f_1 .. f_9) ~ N(0, B^-1)`` (see :func:`prior_precision`); spikes
    ``y_t ~ Bernoulli(sigmoid((X theta)_t))`` in 100 bins (see :func:`design_matrix`);
    data ``X^T y`` (spike count and spike-triggered sums), 10 values - sufficient for ``theta``.

    Reference: the log-likelihood ``theta . X^T y - sum_t log(1 + exp((X theta)_t))`` needs only
    the sufficient statistics; the posterior is log-concave and sampled by tempered SMC +
    random-walk Metropolis, R-hat checked. ``log_likelihood`` is ``log p(y | theta)`` for any
    spike train with these statistics, which differs from ``log p(X^T y | theta)`` by a term
    constant in ``theta``. The stimulus matches sbibm's; the observations do not.
    """

    name = "bernoulli_glm"
    dim_parameters = N_FILTER + 1
    dim_data = N_FILTER + 1
    param_names = ("beta_0",) + tuple(f"f_{i + 1}" for i in range(N_FILTER))
    observation_seed_name = "bernoulli_glm"
    cache_reference = True
    prior_mean = np.zeros(N_FILTER + 1)
    prior_covariance = np.linalg.inv(prior_precision())

    def _spikes(self, theta: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        probability = 1.0 / (1.0 + np.exp(-theta @ design_matrix().T))  # (B, 100)
        return (rng.uniform(size=probability.shape) < probability).astype(float)

    def _simulate(self, theta, rng):
        return self._spikes(theta, rng) @ design_matrix()

    def sufficient_statistics(self, observation: np.ndarray) -> np.ndarray:
        """``X^T y`` of an observation (already the data for this task)."""
        return np.asarray(observation, dtype=float).reshape(self.dim_data)

    def log_likelihood(self, theta, observation):
        statistics = self.sufficient_statistics(observation)
        psi = np.atleast_2d(theta) @ design_matrix().T
        return np.atleast_2d(theta) @ statistics - np.logaddexp(0.0, psi).sum(axis=1)

    def _reference(self, observation, n_samples, rng, **options):
        model = PosteriorModel(self.sample_prior, self.log_prior, lambda theta: self.log_likelihood(theta, observation))
        return sample_posterior(model, n_samples, rng, **options)
