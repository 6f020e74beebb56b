"""SLCP's posterior with the mean ``(theta_1, theta_2)`` integrated out analytically.

For covariance ``S`` the four points give ``prod_j N(x_j; m, S) = (2 pi)^-4 |S|^-2
exp(-tr(S^-1 C) / 2) exp(-(m - xbar)^T (S/4)^-1 (m - xbar) / 2)`` with the mean ``xbar`` and
scatter ``C = sum_j (x_j - xbar)(x_j - xbar)^T``. Under the uniform prior on the box
``[-3, 3]^2``, ``m | S, x`` is ``N(xbar, S/4)`` truncated to the box, and the marginal likelihood
of ``S`` is, up to a constant, ``|S|^(-3/2) exp(-tr(S^-1 C) / 2) P(N(xbar, S/4) in box)``.
The reference sampler draws ``(theta_3, theta_4, theta_5)`` from this 3-D marginal and then ``m``.
"""

from __future__ import annotations

import numpy as np
from scipy import special

from amortflow.benchmarks.reference import ReferenceSamplingError, truncated_standard_normal

BOX = 3.0
_NODES, _WEIGHTS = np.polynomial.legendre.leggauss(48)


def box_probability(mean: np.ndarray, c11: np.ndarray, c12: np.ndarray, c22: np.ndarray) -> np.ndarray:
    """``P(N(mean, [[c11, c12], [c12, c22]]) in [-3, 3]^2)`` for a batch of covariances, ``(B,)``.

    Gauss-Legendre quadrature (48 nodes) over the first coordinate, restricted to the box and
    to +-10 standard deviations, of its normal density times the conditional probability of the
    second coordinate (a difference of normal CDFs).
    """
    s1 = np.sqrt(c11)
    lo = np.maximum(-BOX, mean[0] - 10 * s1)
    hi = np.minimum(BOX, mean[0] + 10 * s1)
    half, mid = np.maximum(hi - lo, 0.0) / 2, (hi + lo) / 2
    m1 = mid[:, None] + half[:, None] * _NODES[None]  # (B, 48)
    slope = (c12 / c11)[:, None]
    cond_mean = mean[1] + slope * (m1 - mean[0])
    cond_sd = np.sqrt(np.maximum(c22 - c12**2 / c11, 1e-300))[:, None]
    inner = special.ndtr((BOX - cond_mean) / cond_sd) - special.ndtr((-BOX - cond_mean) / cond_sd)
    density = np.exp(-0.5 * ((m1 - mean[0]) / s1[:, None]) ** 2) / (np.sqrt(2 * np.pi) * s1[:, None])
    return half * np.sum(_WEIGHTS[None] * density * inner, axis=1)


def marginal_log_likelihood(scale_params: np.ndarray, points: np.ndarray, covariance) -> np.ndarray:
    """``log p(x | theta_3, theta_4, theta_5)`` up to a constant, for ``scale_params (B, 3)``.

    ``covariance(theta)`` gives the entries ``(c11, c12, c22)`` from full parameter vectors.
    """
    full = np.concatenate([np.zeros((len(scale_params), 2)), scale_params], axis=1)
    c11, c12, c22 = covariance(full)
    det = c11 * c22 - c12**2
    centred = points - points.mean(axis=0)
    a, b, c = np.sum(centred[:, 0] ** 2), np.sum(centred[:, 0] * centred[:, 1]), np.sum(centred[:, 1] ** 2)
    trace = (c22 * a - 2 * c12 * b + c11 * c) / det  # tr(S^-1 C)
    n = len(points)
    with np.errstate(divide="ignore"):
        log_box = np.log(box_probability(points.mean(axis=0), c11 / n, c12 / n, c22 / n))
    return -(n - 1) / 2 * np.log(det) - 0.5 * trace + log_box


def _conditional_box_probability(m1, mean, slope, cond_sd):
    """``P(-3 <= m2 <= 3 | m1)``: m2 given m1 is normal with mean ``mean[1] + slope (m1 - mean[0])``."""
    centre = mean[1] + slope * (m1 - mean[0])
    return special.ndtr((BOX - centre) / cond_sd) - special.ndtr((-BOX - centre) / cond_sd)


def sample_mean_given_covariance(points, c11, c12, c22, rng, max_rounds: int = 10_000) -> np.ndarray:
    """One draw of ``m ~ N(xbar, S/n)`` truncated to the box per covariance ``S``, exactly; ``(B, 2)``.

    ``m1`` has density ``phi(m1) g(m1)`` on ``[-3, 3]``, with ``g(m1) = P(m2 in [-3, 3] | m1)``:
    draw it from its truncated normal ``phi`` and accept with ``g(m1) / max g`` (``g`` is largest
    where the conditional mean of ``m2`` is closest to 0); then ``m2 | m1`` from its truncated normal.
    """
    n, xbar = len(points), points.mean(axis=0)
    sd1 = np.sqrt(c11 / n)
    slope = c12 / c11
    cond_sd = np.sqrt(np.maximum((c22 - c12**2 / c11) / n, 1e-300))
    with np.errstate(divide="ignore", invalid="ignore"):
        best = np.where(slope != 0, xbar[0] - xbar[1] / slope, xbar[0])
    g_max = _conditional_box_probability(np.clip(best, -BOX, BOX), xbar, slope, cond_sd)
    m1 = np.full(len(c11), np.nan)
    todo = np.arange(len(c11))
    for _ in range(max_rounds):
        z = truncated_standard_normal((-BOX - xbar[0]) / sd1[todo], (BOX - xbar[0]) / sd1[todo], rng)
        candidate = xbar[0] + sd1[todo] * z
        g = _conditional_box_probability(candidate, xbar, slope[todo], cond_sd[todo])
        accept = rng.uniform(size=len(todo)) * g_max[todo] < g
        m1[todo[accept]] = candidate[accept]
        todo = todo[~accept]
        if len(todo) == 0:
            break
    else:
        raise ReferenceSamplingError(f"{len(todo)} means not drawn after {max_rounds} rejection rounds.")
    centre = xbar[1] + slope * (m1 - xbar[0])
    m2 = centre + cond_sd * truncated_standard_normal((-BOX - centre) / cond_sd, (BOX - centre) / cond_sd, rng)
    return np.stack([m1, m2], axis=1)
