"""Calibration of posteriors (credible-interval coverage) and of model probabilities (ECE)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from amortflow.diagnostics._inputs import check_draws_and_truth, check_model_arrays
from amortflow.exceptions import ArgumentError


def credible_levels(alpha_resolution: int = 20) -> np.ndarray:
    """The credibility levels ``alpha`` checked by :func:`posterior_calibration_error`.

    ``alpha_resolution`` levels evenly spaced on ``[0.01, 0.99]``.
    """
    if alpha_resolution < 1:
        raise ArgumentError(f"alpha_resolution must be >= 1; received {alpha_resolution}.")
    return np.linspace(0.01, 0.99, int(alpha_resolution))


def credible_interval_coverage(post_samples: Any, prior_samples: Any, alphas: Any) -> np.ndarray:
    """Fraction of true parameters inside the central ``alpha`` credible interval of their posterior.

    The interval is ``[q_{(1 - alpha)/2}, q_{(1 + alpha)/2}]`` of the posterior draws; for an
    exact posterior the coverage equals ``alpha`` up to Monte Carlo error ``sqrt(alpha (1 - alpha) / N)``.

    Returns
    -------
    numpy.ndarray, shape (len(alphas), D)
    """
    post, prior = check_draws_and_truth(post_samples, prior_samples)
    alphas = np.atleast_1d(np.asarray(alphas, dtype=np.float64))
    lower = np.quantile(post, (1.0 - alphas) / 2.0, axis=1)  # (A, N, D)
    upper = np.quantile(post, (1.0 + alphas) / 2.0, axis=1)
    inside = (lower <= prior[None]) & (prior[None] <= upper)
    return inside.mean(axis=1)


def posterior_calibration_error(
    post_samples: Any,
    prior_samples: Any,
    alpha_resolution: int = 20,
    aggregator_fun: Callable[..., np.ndarray] = np.median,
) -> np.ndarray:
    """Aggregate absolute miscoverage of central credible intervals, per parameter.

    ``error[d] = aggregator_fun_alpha |coverage_d(alpha) - alpha|`` over the levels of
    :func:`credible_levels`. Zero for a perfectly calibrated posterior; large for over- or
    under-confident ones (at most 0.99).

    Parameters
    ----------
    post_samples : array-like, shape (N, S, D)
    prior_samples : array-like, shape (N, D)
    alpha_resolution : int, default 20
        Number of credibility levels.
    aggregator_fun : callable, default numpy.median
        Aggregates over levels; called as ``aggregator_fun(values, axis=0)``.

    Returns
    -------
    numpy.ndarray, shape (D,)
    """
    alphas = credible_levels(alpha_resolution)
    coverage = credible_interval_coverage(post_samples, prior_samples, alphas)
    return np.asarray(aggregator_fun(np.abs(coverage - alphas[:, None]), axis=0))


class CalibrationCurve(NamedTuple):
    """Reliability diagram data of one model, one entry per non-empty probability bin."""

    prob_pred: np.ndarray
    """Mean predicted probability of the model in the bin."""
    prob_true: np.ndarray
    """Fraction of data sets in the bin that truly came from the model."""
    counts: np.ndarray
    """Number of data sets in the bin."""


def model_calibration_curves(true_models: Any, pred_models: Any, num_bins: int = 10) -> list[CalibrationCurve]:
    """Reliability diagram of each model's predicted probability (one-vs-rest, equal-width bins).

    Parameters
    ----------
    true_models : array-like, shape (n,) indices or (n, M) one-hot
    pred_models : array-like, shape (n, M)
        Predicted model probabilities.
    num_bins : int, default 10
        Equal-width bins on ``[0, 1]``.

    Returns
    -------
    list of CalibrationCurve, one per model
    """
    true, probs = check_model_arrays(true_models, pred_models)
    edges = np.linspace(0.0, 1.0, int(num_bins) + 1)
    curves = []
    for m in range(probs.shape[1]):
        # bin index in [0, num_bins - 1]; p = 1 falls into the last bin
        bins = np.clip(np.digitize(probs[:, m], edges[1:-1]), 0, num_bins - 1)
        counts = np.bincount(bins, minlength=num_bins)
        hits = np.bincount(bins, weights=(true == m).astype(float), minlength=num_bins)
        conf = np.bincount(bins, weights=probs[:, m], minlength=num_bins)
        keep = counts > 0
        curves.append(CalibrationCurve(conf[keep] / counts[keep], hits[keep] / counts[keep], counts[keep]))
    return curves


def expected_calibration_error(true_models: Any, pred_models: Any, num_bins: int = 10) -> np.ndarray:
    """Expected calibration error (ECE) of each model's predicted probability.

    ``ECE_m = sum_b (n_b / n) |acc_b - conf_b|`` over equal-width probability bins, where
    ``acc_b`` is the fraction of data sets in bin ``b`` that came from model ``m`` and ``conf_b``
    their mean predicted probability of ``m`` (Naeini et al. 2015; Guo et al. 2017).

    Returns
    -------
    numpy.ndarray, shape (M,)
    """
    curves = model_calibration_curves(true_models, pred_models, num_bins)
    return np.array(
        [np.sum(c.counts * np.abs(c.prob_true - c.prob_pred)) / np.sum(c.counts) for c in curves]
    )
