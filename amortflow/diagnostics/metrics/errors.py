"""Point-estimate accuracy: RMSE of posterior draws, correlation and R² of estimates vs truth."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from amortflow.diagnostics._inputs import check_draws_and_truth, to_numpy
from amortflow.exceptions import ShapeError


def _draws_or_estimates(post_samples: Any, prior_samples: Any) -> tuple[np.ndarray, np.ndarray]:
    """Accept draws ``(N, S, D)`` or point estimates ``(N, D)`` (treated as ``S = 1``)."""
    post = to_numpy(post_samples, "post_samples")
    prior = to_numpy(prior_samples, "prior_samples")
    if post.ndim == 2 and prior.ndim == 2 and post.shape == prior.shape:
        return post[:, None, :], prior
    return check_draws_and_truth(post, prior)


def root_mean_squared_error(
    post_samples: Any,
    prior_samples: Any,
    normalized: bool = True,
    aggregator_fun: Callable[..., np.ndarray] = np.median,
) -> np.ndarray:
    """Per-parameter RMSE of posterior draws (or point estimates) around the true values.

    For data set ``n`` and parameter ``d``,
    ``RMSE[n, d] = sqrt(mean_s (post[n, s, d] - theta[n, d])^2)``, divided by the range
    ``max_n theta[n, d] - min_n theta[n, d]`` when ``normalized``, then aggregated over data sets.

    Parameters
    ----------
    post_samples : array-like, shape (N, S, D) or (N, D)
        Posterior draws, or point estimates of the same shape as ``prior_samples``.
    prior_samples : array-like, shape (N, D)
    normalized : bool, default True
        Divide by the range of the true values, making errors comparable across parameters.
    aggregator_fun : callable, default numpy.median
        Aggregates over data sets; called as ``aggregator_fun(values, axis=0)``.

    Returns
    -------
    numpy.ndarray, shape (D,)
    """
    post, prior = _draws_or_estimates(post_samples, prior_samples)
    rmse = np.sqrt(np.mean((post - prior[:, None, :]) ** 2, axis=1))
    if normalized:
        value_range = prior.max(axis=0) - prior.min(axis=0)
        rmse = rmse / np.where(value_range > 0, value_range, 1.0)
    return np.asarray(aggregator_fun(rmse, axis=0))


def aggregated_rmse(
    post_samples: Any,
    prior_samples: Any,
    normalized: bool = True,
    aggregator_fun: Callable[..., np.ndarray] = np.median,
) -> float:
    """One number: the mean over parameters of :func:`root_mean_squared_error`."""
    return float(np.mean(root_mean_squared_error(post_samples, prior_samples, normalized, aggregator_fun)))


def _estimates_and_targets(estimates: Any, targets: Any) -> tuple[np.ndarray, np.ndarray]:
    est = to_numpy(estimates, "estimates")
    tgt = to_numpy(targets, "targets")
    est = est[:, None] if est.ndim == 1 else est
    tgt = tgt[:, None] if tgt.ndim == 1 else tgt
    if est.shape != tgt.shape or est.ndim != 2:
        raise ShapeError(f"`estimates` {est.shape} and `targets` {tgt.shape} must both have shape (N, D).")
    return est, tgt


def correlation(estimates: Any, targets: Any) -> np.ndarray:
    """Pearson correlation between estimates and true values, per parameter.

    Parameters
    ----------
    estimates, targets : array-like, shape (N, D) or (N,)

    Returns
    -------
    numpy.ndarray, shape (D,)  (``nan`` where either column is constant)
    """
    est, tgt = _estimates_and_targets(estimates, targets)
    est_c, tgt_c = est - est.mean(axis=0), tgt - tgt.mean(axis=0)
    denominator = np.sqrt((est_c**2).sum(axis=0) * (tgt_c**2).sum(axis=0))
    with np.errstate(invalid="ignore", divide="ignore"):
        return (est_c * tgt_c).sum(axis=0) / denominator


def r_squared(estimates: Any, targets: Any) -> np.ndarray:
    """Coefficient of determination of the identity line ``estimate = truth``, per parameter.

    ``R² = 1 - sum_n (theta_n - est_n)^2 / sum_n (theta_n - mean(theta))^2``: one for perfect
    recovery, zero for always estimating the mean, negative for worse (unlike ``r²``, bias counts).

    Returns
    -------
    numpy.ndarray, shape (D,)
    """
    est, tgt = _estimates_and_targets(estimates, targets)
    residual = ((tgt - est) ** 2).sum(axis=0)
    total = ((tgt - tgt.mean(axis=0)) ** 2).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return 1.0 - residual / total
