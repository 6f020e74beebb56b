"""Markov chain Monte Carlo building blocks of the reference samplers (numpy, vectorized).

* :class:`PosteriorModel` - an unnormalized posterior ``p(u) L(u)`` in a sampling space ``u``.
* :func:`tempered_smc` - likelihood-tempered sequential Monte Carlo from the prior to the
  posterior (Del Moral, Doucet & Jasra, 2006) with random-walk Metropolis moves: it reaches
  every mode the prior covers and leaves equally weighted particles.
* :func:`mixture_step` - a Metropolis-Hastings kernel mixing independence proposals fitted to
  particles (:class:`~amortflow.benchmarks.proposal.ParticleProposal`) with random-walk proposals.

Every function evaluates a whole population of particles or chains in one call.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from amortflow.benchmarks.proposal import ParticleProposal, proposal_cholesky
from amortflow.exceptions import AmortflowError

logger = logging.getLogger("amortflow")


class ReferenceSamplingError(AmortflowError, RuntimeError):
    """A reference sampler did not converge or could not produce enough samples."""


@dataclass(frozen=True)
class PosteriorModel:
    """An unnormalized posterior ``p(u) L(u)`` in the sampling space ``u`` (vectorized, numpy).

    Attributes
    ----------
    sample_prior : callable
        ``(n, rng) -> (n, d)`` draws from the prior in ``u``-space.
    log_prior : callable
        ``(n, d) -> (n,)`` log prior density in ``u``-space (Jacobian included), ``-inf`` outside the support.
    log_likelihood : callable
        ``(n, d) -> (n,)`` log-likelihood of the observation, ``-inf`` where impossible.
    to_parameters : callable
        ``(n, d) -> (n, D)`` map from ``u`` to the task's parameters.
    """

    sample_prior: Callable[[int, np.random.Generator], np.ndarray]
    log_prior: Callable[[np.ndarray], np.ndarray]
    log_likelihood: Callable[[np.ndarray], np.ndarray]
    to_parameters: Callable[[np.ndarray], np.ndarray] = field(default=lambda u: u)


def evaluate(model: PosteriorModel, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Log prior and log-likelihood of ``u``; the (possibly costly) likelihood only inside the support.

    NaN log-likelihoods (overflowing simulations) count as impossible: ``-inf``.
    """
    log_prior = np.asarray(model.log_prior(u), dtype=float)
    loglik = np.full(len(u), -np.inf)
    inside = np.isfinite(log_prior)
    if inside.any():
        values = np.asarray(model.log_likelihood(u[inside]), dtype=float)
        loglik[inside] = np.where(np.isnan(values), -np.inf, values)
    return log_prior, loglik


# --- kernels ------------------------------------------------------------------------------
def mixture_step(model, u, log_prior, loglik, proposal: ParticleProposal, chol, scale, rng, beta: float = 1.0):
    """One Metropolis-Hastings step for every row, target ``p(u) L(u)^beta``.

    Each row flips a fair coin: an independence proposal from ``proposal`` (acceptance ratio
    ``pi(u') q(u) / (pi(u) q(u'))``) or a random walk ``u + scale L eps``. A random mixture of
    kernels that each leave the target invariant leaves it invariant, and every row costs one
    likelihood evaluation. Returns the new ``(u, log_prior, loglik)`` and the acceptance rates
    ``(independence, random walk)``.
    """
    independent = rng.uniform(size=len(u)) < 0.5
    candidate = u + scale * rng.standard_normal(u.shape) @ chol.T
    if independent.any():
        candidate[independent] = proposal.sample(int(independent.sum()), rng)
    lp_new, ll_new = evaluate(model, candidate)
    log_ratio = (lp_new + beta * ll_new) - (log_prior + beta * loglik)
    if independent.any():
        log_ratio[independent] += proposal.log_prob(u[independent]) - proposal.log_prob(candidate[independent])
    accept = np.log(rng.uniform(size=len(u))) < log_ratio  # NaN (-inf minus -inf) compares False
    rates = tuple(float(accept[rows].mean()) if rows.any() else float("nan") for rows in (independent, ~independent))
    return (np.where(accept[:, None], candidate, u), np.where(accept, lp_new, log_prior),
            np.where(accept, ll_new, loglik), rates)  # fmt: skip


# --- tempered SMC -------------------------------------------------------------------------
def _next_temperature(loglik: np.ndarray, beta: float, ess_fraction: float) -> float:
    """Largest ``beta' <= 1`` whose incremental weights ``L^(beta'-beta)`` keep ESS >= ess_fraction * N."""

    def ess(delta):
        logw = np.where(np.isfinite(loglik), delta * loglik, -np.inf)
        w = np.exp(logw - logw.max())
        return w.sum() ** 2 / (w**2).sum()

    target = ess_fraction * len(loglik)
    if ess(1.0 - beta) >= target:
        return 1.0
    low, high = 0.0, 1.0 - beta
    for _ in range(60):  # bisection; ESS decreases in delta
        mid = 0.5 * (low + high)
        low, high = (mid, high) if ess(mid) >= target else (low, mid)
    return beta + max(low, 1e-12)


def _systematic_resample(logw: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    w = np.exp(logw - logw.max())
    cumulative = np.cumsum(w / w.sum())
    positions = (rng.uniform() + np.arange(len(w))) / len(w)
    return np.minimum(np.searchsorted(cumulative, positions), len(w) - 1)


def tempered_smc(
    model: PosteriorModel,
    n_particles: int,
    rng: np.random.Generator,
    *,
    ess_fraction: float = 0.5,
    max_moves: int = 30,
    max_stages: int = 500,
) -> dict:
    """Move ``n_particles`` from the prior to the posterior through ``p(u) L(u)^beta``, beta 0 -> 1.

    Each stage picks the next ``beta`` so that the effective sample size of the incremental
    weights is ``ess_fraction * n_particles``, resamples (systematic) and applies
    :func:`mixture_step` moves - an independence proposal fitted to the resampled particles and
    a random walk with their covariance, its step scaled towards acceptance 0.234 (Roberts &
    Rosenthal, 2001) - until a particle has moved at least once with probability 0.99.

    Returns
    -------
    dict
        ``particles (n, d)`` (equally weighted, ``u``-space), ``log_prior``, ``log_likelihood``,
        ``scale`` (random-walk step factor), ``n_stages`` and ``n_evaluations`` (likelihood rows).
    """
    u = model.sample_prior(n_particles, rng)
    log_prior, loglik = evaluate(model, u)
    if not np.isfinite(loglik).any():
        raise ReferenceSamplingError(
            f"all {n_particles} prior draws have log-likelihood -inf: the observation is impossible under the model."
        )
    scale, beta, stages, evaluations = 2.38 / math.sqrt(u.shape[1]), 0.0, 0, n_particles
    while beta < 1.0:
        if stages >= max_stages:
            raise ReferenceSamplingError(f"tempered SMC did not reach beta=1 in {max_stages} stages (beta={beta:.3g}).")
        new_beta = _next_temperature(loglik, beta, ess_fraction)
        idx = _systematic_resample(np.where(np.isfinite(loglik), (new_beta - beta) * loglik, -np.inf), rng)
        u, log_prior, loglik, beta = u[idx], log_prior[idx], loglik[idx], new_beta
        chol, proposal, moves, needed = proposal_cholesky(u), ParticleProposal(u, rng, max_particles=500), 0, 1
        while moves < needed:
            before = u
            state = mixture_step(model, u, log_prior, loglik, proposal, chol, scale, rng, beta)
            u, log_prior, loglik, (_, rw_rate) = state
            moves += 1
            if moves == 1:  # P(a particle never moves in k steps) = (1 - rate)^k <= 0.01
                rate = float(np.mean(np.any(u != before, axis=1)))
                never = math.log1p(-min(rate, 0.99)) if rate > 0 else 0.0
                needed = max_moves if never == 0.0 else min(max_moves, max(2, math.ceil(math.log(0.01) / never)))
            if np.isfinite(rw_rate):
                scale *= math.exp(rw_rate - 0.234)
        evaluations += moves * n_particles
        stages += 1
    logger.debug("tempered SMC: %d stages, %d likelihood evaluations", stages, evaluations)
    return {"particles": u, "log_prior": log_prior, "log_likelihood": loglik, "scale": scale,
            "n_stages": stages, "n_evaluations": evaluations}  # fmt: skip
