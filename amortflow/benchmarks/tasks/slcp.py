"""SLCP: simple likelihood, complex posterior (Papamakarios et al., 2019)."""

from __future__ import annotations

import math

import numpy as np

from amortflow.benchmarks.reference import SamplerResult, sample_posterior
from amortflow.benchmarks.tasks._priors import UniformPriorTask, box_posterior_model
from amortflow.benchmarks.tasks._slcp_marginal import marginal_log_likelihood, sample_mean_given_covariance

N_POINTS = 4
JITTER = 1e-6  # added to the covariance diagonal, as in sbibm, so it stays positive definite
FOLDED_LOW = np.array([-3.0, -3.0, 0.0, 0.0, -3.0])
FOLDED_HIGH = np.full(5, 3.0)


def _covariance(theta: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Entries ``(c11, c12, c22)`` of the 2x2 covariance, each ``(B,)``."""
    s1, s2, rho = theta[:, 2] ** 2, theta[:, 3] ** 2, np.tanh(theta[:, 4])
    return s1**2 + JITTER, rho * s1 * s2, s2**2 + JITTER


def slcp_log_likelihood(theta: np.ndarray, data: np.ndarray) -> np.ndarray:
    """``sum_j log N(x_j; m, S)`` of the four 2-D points ``data (8,)`` for each ``theta (B, 5)``."""
    theta = np.atleast_2d(theta)
    c11, c12, c22 = _covariance(theta)
    det = c11 * c22 - c12**2
    d = np.asarray(data).reshape(1, N_POINTS, 2) - theta[:, None, :2]  # (B, 4, 2)
    d1, d2 = d[..., 0], d[..., 1]
    quad = (c22[:, None] * d1**2 - 2 * c12[:, None] * d1 * d2 + c11[:, None] * d2**2) / det[:, None]
    return -0.5 * quad.sum(axis=1) - N_POINTS * (0.5 * np.log(det) + math.log(2 * math.pi))


def slcp_reference(data: np.ndarray, n_samples: int, rng: np.random.Generator, **options) -> SamplerResult:
    """Reference posterior of SLCP given its eight informative data values.

    1. The mean ``(theta_1, theta_2)`` is integrated out analytically (see
       :mod:`~amortflow.benchmarks.tasks._slcp_marginal`), leaving a 3-D posterior of
       ``(theta_3, theta_4, theta_5)``.
    2. That posterior depends on ``theta_3, theta_4`` only through their squares (and the prior is
       symmetric), so it has four mirror-image modes: SMC + MCMC samples the *folded* posterior
       on ``theta_3, theta_4 >= 0`` (where R-hat is meaningful), in logit coordinates of the box
       (see :func:`box_posterior_model`); each sign is then flipped with probability 1/2.
    3. ``(theta_1, theta_2)`` is drawn given each covariance from its truncated normal.
    """
    points = np.asarray(data, dtype=float).reshape(N_POINTS, 2)
    model = box_posterior_model(
        FOLDED_LOW[2:], FOLDED_HIGH[2:], lambda scales: marginal_log_likelihood(scales, points, _covariance)
    )
    result = sample_posterior(model, n_samples, rng, **options)
    scale_params = result.samples
    full = np.concatenate([np.zeros((len(scale_params), 2)), scale_params], axis=1)
    means = sample_mean_given_covariance(points, *_covariance(full), rng)
    signs = rng.choice([-1.0, 1.0], size=(len(scale_params), 2))
    result.samples = np.concatenate([means, scale_params[:, :2] * signs, scale_params[:, 2:]], axis=1)
    return result


class SLCP(UniformPriorTask):
    """SLCP (Papamakarios et al., 2019; Lueckmann et al., 2021).

    ``theta ~ U(-3, 3)^5``; four points ``x_j ~ N(m, S)`` with ``m = (theta_1, theta_2)``,
    standard deviations ``s_1 = theta_3^2``, ``s_2 = theta_4^2`` and correlation
    ``rho = tanh(theta_5)``; data ``(x_11, x_12, x_21, ..., x_42)``, 8 values.

    Reference: the mean is integrated out analytically; tempered SMC + Metropolis-Hastings on the
    remaining folded 3-D posterior, R-hat checked; then the mean (see :func:`slcp_reference`).
    """

    name = "slcp"
    dim_parameters = 5
    dim_data = 2 * N_POINTS
    param_names = tuple(f"theta_{i + 1}" for i in range(5))
    prior_low = (-3.0,) * 5
    prior_high = (3.0,) * 5
    cache_reference = True
    exchangeable_draws = (N_POINTS, 2)

    def _simulate(self, theta, rng):
        return self._simulate_informative(theta, rng)

    @staticmethod
    def _simulate_informative(theta: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        c11, c12, c22 = _covariance(theta)
        a = np.sqrt(c11)  # Cholesky factor [[a, 0], [b, c]] of S
        b = c12 / a
        c = np.sqrt(np.maximum(c22 - b**2, 0.0))
        z = rng.standard_normal((len(theta), N_POINTS, 2))
        x1 = theta[:, None, 0] + a[:, None] * z[..., 0]
        x2 = theta[:, None, 1] + b[:, None] * z[..., 0] + c[:, None] * z[..., 1]
        return np.stack([x1, x2], axis=-1).reshape(len(theta), 2 * N_POINTS)

    def log_likelihood(self, theta, observation):
        return slcp_log_likelihood(theta, observation)

    def _reference(self, observation, n_samples, rng, **options):
        return slcp_reference(observation, n_samples, rng, **options)
