"""Approximate Bayesian computation baselines: rejection ABC, and what every ABC sampler shares.

Rejection ABC (Pritchard et al. 1999, "Population growth of human Y chromosomes", MBE): simulate
``theta_i ~ p(theta)``, ``x_i ~ p(x | theta_i)``, and keep the fraction ``quantile`` of the
``theta_i`` whose summaries are closest to the observed one,

``d_i = d(s(x_i), s(x_obs))``,  accepted: ``d_i <= eps`` with ``eps`` the ``quantile``-quantile of ``d``.

The accepted draws sample ``p(theta | d(s(x), s(x_obs)) <= eps)``, which tends to the posterior
given ``s(x_obs)`` as ``eps -> 0`` (to ``p(theta | x_obs)`` when ``s`` is sufficient).

Summaries ``s``: the flattened data by default, or any callable on a batch of ``sim_data``, e.g.
a trained summary network; an amortizer with a summary network is used as it sees its inputs
(standardized, then summarized). Distance ``d``: by default the Euclidean distance after
dividing each summary by its median absolute deviation over the prior-predictive simulations,
so that summaries on different scales weigh alike (Beaumont, Zhang & Balding 2002).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from amortflow._checks import positive_int
from amortflow.exceptions import ArgumentError, ShapeError, describe_shape
from amortflow.inference.proposal_simulation import check_observation

#: Simulations per call of the generative model (bounds memory, not the result).
DEFAULT_ABC_BATCH = 10_000


@dataclass
class ABCResult:
    """Accepted draws of :func:`rejection_abc`.

    Attributes
    ----------
    draws : numpy.ndarray
        ``(n_accepted, D)`` accepted parameters, closest first.
    distances : numpy.ndarray
        ``(n_accepted,)`` their distances to ``x_obs``.
    tolerance : float
        ``eps``: the largest accepted distance.
    num_simulations : int
        Simulations run.
    """

    draws: np.ndarray
    distances: np.ndarray
    tolerance: float
    num_simulations: int


def make_summary_fn(summary) -> Callable[[np.ndarray], np.ndarray]:
    """``sim_data (B, ...) -> (B, k)`` float64 summaries of a ``summary`` argument (see the module docstring)."""
    if summary is None:
        return lambda data: np.asarray(data, dtype=np.float64).reshape(len(data), -1)
    if hasattr(summary, "summarize") and getattr(summary, "summary_net", None) is not None:
        amortizer = summary
        return lambda data: _as_rows(amortizer.summarize({"summary_conditions": np.asarray(data, np.float32)})[0], len(data))
    if callable(summary):
        return lambda data: _as_rows(summary(np.asarray(data, dtype=np.float32)), len(data))
    raise ArgumentError(
        f"summary must be None, a callable or an amortizer with a summary_net, received {type(summary).__name__}."
    )


def _as_rows(values, n: int) -> np.ndarray:
    values = np.asarray(values.numpy() if hasattr(values, "numpy") else values, dtype=np.float64)
    if values.ndim == 0 or values.shape[0] != n:
        raise ShapeError(f"summary must return one row per simulation, (B={n}, k); received {describe_shape(values)}.")
    return values.reshape(n, -1)


def mad_scale(summaries: np.ndarray) -> np.ndarray:
    """Per-summary median absolute deviation ``(k,)`` (1 where it is 0, so constant summaries do not divide by 0)."""
    mad = np.median(np.abs(summaries - np.median(summaries, axis=0)), axis=0)
    return np.where(mad > 0, mad, 1.0)


def make_distance_fn(distance, scale: np.ndarray) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """``(summaries (B, k), observed (k,)) -> (B,)``: ``distance`` or the MAD-scaled Euclidean distance."""
    if distance is None:
        return lambda s, s_obs: np.sqrt(np.sum(np.square((s - s_obs) / scale), axis=1))
    if not callable(distance):
        raise ArgumentError(f"distance must be None or a callable (summaries, observed) -> (B,), received {distance!r}.")

    def checked(s, s_obs):
        values = np.asarray(distance(s, s_obs), dtype=np.float64)
        if values.shape != (len(s),):
            raise ShapeError(f"distance must return ({len(s)},) distances, received {describe_shape(values)}.")
        return values

    return checked


def simulate_summaries(generative_model, n: int, summary_fn, rng: np.random.Generator, batch_size: int):
    """``(theta (n, D), summaries (n, k))`` of ``n`` prior-predictive simulations, in batches."""
    thetas, summaries = [], []
    for start in range(0, n, batch_size):
        raw = generative_model(min(batch_size, n - start), rng=rng)
        thetas.append(np.asarray(raw["prior_draws"]))
        summaries.append(summary_fn(raw["sim_data"]))
    return np.concatenate(thetas), np.concatenate(summaries)


def check_quantile(quantile, name: str = "quantile") -> float:
    """``quantile`` as a float in (0, 1] (ArgumentError otherwise)."""
    if isinstance(quantile, bool) or not isinstance(quantile, (int, float, np.floating)) or not 0 < quantile <= 1:
        raise ArgumentError(f"{name} must be a number in (0, 1], received {quantile!r}.")
    return float(quantile)


def rejection_abc(
    generative_model,
    x_obs,
    num_simulations: int,
    quantile: float,
    distance: Callable | None = None,
    summary=None,
    *,
    seed: int | None = None,
    batch_size: int = DEFAULT_ABC_BATCH,
) -> ABCResult:
    """Rejection ABC: the ``quantile`` of ``num_simulations`` prior draws whose data are closest to ``x_obs``.

    Parameters
    ----------
    generative_model : GenerativeModel
        Simulates ``theta ~ p(theta)``, ``x ~ p(x | theta)`` (any prior: ABC needs no density).
    x_obs : array
        The observed data set, shaped like one simulation's ``sim_data``.
    num_simulations : int
    quantile : float in (0, 1]
        Share of the simulations accepted (at least one); the tolerance ``eps`` follows from it.
    distance : callable, optional
        ``distance(summaries (B, k), observed (k,)) -> (B,)``; default: MAD-scaled Euclidean.
    summary : callable or amortizer, optional
        ``summary(sim_data (B, ...)) -> (B, k)``, e.g. a trained summary network; default: the data.
    seed : int, optional
    batch_size : int
        Simulations per call of the generative model.

    Returns
    -------
    ABCResult
    """
    num_simulations = positive_int("num_simulations", num_simulations)
    quantile = check_quantile(quantile)
    x_obs = check_observation(x_obs, generative_model)
    summary_fn = make_summary_fn(summary)
    theta, summaries = simulate_summaries(generative_model, num_simulations, summary_fn, np.random.default_rng(seed),
                                          positive_int("batch_size", batch_size))  # fmt: skip
    observed = summary_fn(x_obs[None])[0]
    distances = make_distance_fn(distance, mad_scale(summaries))(summaries, observed)
    n_accept = max(1, math.ceil(quantile * num_simulations))
    order = np.argsort(distances, kind="stable")[:n_accept]
    return ABCResult(theta[order], distances[order], float(distances[order[-1]]), num_simulations)
