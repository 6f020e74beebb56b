"""Reference posterior samplers shared by the benchmark tasks.

* :func:`rejection_sample` - exact draws from a proposal thinned by an acceptance probability.
* :func:`truncated_standard_normal` - exact inverse-CDF draws from a truncated normal.
* :func:`sample_posterior` - tempered SMC (:func:`~amortflow.benchmarks.reference_smc.tempered_smc`) to
  find the posterior, then many Metropolis-Hastings chains started at the SMC particles,
  checked by the rank-normalized split R-hat (Vehtari et al., 2021) and thinned. It raises
  :class:`ReferenceSamplingError` when the chains do not agree.

Tasks describe their posterior as a :class:`PosteriorModel` in a *sampling space* ``u`` of
their choice (e.g. ``u = log theta`` for log-normal priors).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import special

from amortflow.diagnostics.metrics.convergence import split_rhat
from amortflow.benchmarks.proposal import ParticleProposal, proposal_cholesky
from amortflow.benchmarks.reference_smc import (
    PosteriorModel,
    ReferenceSamplingError,
    evaluate,
    mixture_step,
    tempered_smc,
)
from amortflow.exceptions import ArgumentError

logger = logging.getLogger("amortflow")

#: Chains whose rank-normalized split R-hat exceeds this disagree (Vehtari et al., 2021).
RHAT_THRESHOLD = 1.05

__all__ = [
    "RHAT_THRESHOLD",
    "PosteriorModel",
    "ReferenceSamplingError",
    "SamplerResult",
    "rejection_sample",
    "sample_posterior",
    "truncated_standard_normal",
]


@dataclass
class SamplerResult:
    """Samples plus the diagnostics that show they can be trusted."""

    samples: np.ndarray
    diagnostics: dict


# --- exact samplers -----------------------------------------------------------------------
def rejection_sample(
    propose: Callable[[int, np.random.Generator], tuple[np.ndarray, np.ndarray]],
    n_samples: int,
    rng: np.random.Generator,
    *,
    batch_size: int = 10_000,
    max_batch_size: int = 1_000_000,
    max_proposals: int = 10**9,
) -> SamplerResult:
    """Exact rejection sampling.

    ``propose(n, rng)`` makes ``n`` proposals ``u ~ q`` and returns candidates with their log
    acceptance probabilities ``log a(u) <= 0`` (it may already have dropped some of the ``n``,
    e.g. after a cheap first acceptance step); each candidate is kept with probability ``a(u)``,
    so the kept ones follow ``q(u) a(u) / Z``. Batches grow with the observed acceptance rate.

    Raises
    ------
    ReferenceSamplingError
        If ``max_proposals`` proposals did not give ``n_samples`` acceptances.
    """
    kept, n_kept, n_proposed = [], 0, 0
    while n_kept < n_samples:
        if n_proposed >= max_proposals:
            raise ReferenceSamplingError(
                f"rejection sampling accepted {n_kept} of {n_proposed} proposals, fewer than the "
                f"n_samples={n_samples} requested within max_proposals={max_proposals}."
            )
        candidates, log_accept = propose(batch_size, rng)
        accepted = candidates[np.log(rng.uniform(size=len(candidates))) < log_accept]  # NaN: rejected
        kept.append(accepted)
        n_kept, n_proposed = n_kept + len(accepted), n_proposed + batch_size
        rate = max(n_kept, 1) / n_proposed
        batch_size = int(min(max_batch_size, max(1000, 1.2 * (n_samples - n_kept) / rate)))
    samples = np.concatenate(kept)[:n_samples]
    return SamplerResult(samples, {"method": "rejection", "acceptance_rate": n_kept / n_proposed,
                                   "n_proposals": n_proposed})  # fmt: skip


def truncated_standard_normal(lower: np.ndarray, upper: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Draws of ``N(0, 1)`` truncated to ``[lower, upper]`` (broadcast arrays), by the inverse CDF.

    Intervals entirely above 0 are reflected into the lower tail, where ``log_ndtr`` and
    ``ndtri_exp`` keep full precision even far out (``Phi(10) = 1`` in floating point).
    """
    lower, upper = np.broadcast_arrays(np.asarray(lower, dtype=float), np.asarray(upper, dtype=float))
    flip = lower > 0
    low, high = np.where(flip, -upper, lower), np.where(flip, -lower, upper)
    log_low, log_high = special.log_ndtr(low), special.log_ndtr(high)
    u = rng.uniform(size=low.shape)
    # log(Phi(low) + u (Phi(high) - Phi(low))), factored relative to Phi(high)
    z = special.ndtri_exp(log_high + np.log(u + (1.0 - u) * np.exp(log_low - log_high)))
    return np.clip(np.where(flip, -z, z), lower, upper)  # clip: round-off at the ends only


# --- SMC + checked MCMC -------------------------------------------------------------------
def sample_posterior(
    model: PosteriorModel,
    n_samples: int,
    rng: np.random.Generator,
    *,
    n_particles: int | None = None,
    n_chains: int | None = None,
    warmup: int = 50,
    min_iterations: int = 100,
    rhat_threshold: float = RHAT_THRESHOLD,
    max_extensions: int = 3,
) -> SamplerResult:
    """Reference samples: tempered SMC, then ``n_chains`` Metropolis-Hastings chains, R-hat checked.

    Chains start at SMC particles. Each iteration is a :func:`~amortflow.benchmarks.reference_smc.mixture_step`:
    an independence proposal fitted to the particles
    (:class:`~amortflow.benchmarks.proposal.ParticleProposal`) or a random walk with their
    covariance. Both proposals are fixed before sampling starts (the random-walk step size adapts
    during ``warmup`` only), so the chains are exact Metropolis-Hastings chains for the posterior,
    whatever the quality of the SMC. Then ``n_iter = thin * ceil(n_samples / n_chains)``
    iterations are recorded, ``thin`` the smallest integer giving ``n_iter >= min_iterations``,
    and every ``thin``-th state is kept. If the rank-normalized split R-hat of any parameter
    exceeds ``rhat_threshold``, the run is repeated with twice the thinning (the previous run
    counts as warmup), at most ``max_extensions`` times. (For stationary chains R-hat is about
    ``sqrt(1 + tau / (n_iter / 2))``, ``tau`` the integrated autocorrelation time, so passing
    1.05 needs ``n_iter >= 20 tau``.)

    Parameters
    ----------
    model : PosteriorModel
    n_samples : int
    rng : numpy.random.Generator
    n_particles : int, optional
        SMC population; default ``max(1000, n_chains)``.
    n_chains : int, optional
        Default ``clip(n_samples // 25, 4, 400)``.
    warmup : int, default 50
    min_iterations : int, default 100
    rhat_threshold : float, default 1.05
    max_extensions : int, default 3

    Returns
    -------
    SamplerResult
        ``(n_samples, D)`` samples in parameter space and diagnostics (R-hat per parameter,
        acceptance rates, chains, iterations, thinning, SMC stages, likelihood evaluations).

    Raises
    ------
    ReferenceSamplingError
        If R-hat stays above the threshold.
    """
    if n_samples < 1:
        raise ArgumentError(f"n_samples must be >= 1, received {n_samples}.")
    n_chains = int(n_chains or min(400, max(4, n_samples // 25)))
    n_particles = int(n_particles or max(1000, n_chains))
    smc = tempered_smc(model, n_particles, rng)
    particles = smc["particles"]
    proposal, chol, scale = ParticleProposal(particles, rng), proposal_cholesky(particles), smc["scale"]
    u = particles[rng.choice(len(particles), size=n_chains, replace=n_chains > len(particles))]
    log_prior, loglik = evaluate(model, u)
    for _ in range(warmup):
        u, log_prior, loglik, (_, rw_rate) = mixture_step(model, u, log_prior, loglik, proposal, chol, scale, rng)
        if np.isfinite(rw_rate):
            scale *= math.exp(0.5 * (rw_rate - 0.234))
    per_chain, total_iterations = math.ceil(n_samples / n_chains), warmup
    thin = math.ceil(min_iterations / per_chain)
    for _attempt in range(max_extensions + 1):
        n_iter = per_chain * thin
        chains, rates = np.empty((n_iter, n_chains, particles.shape[1])), np.empty((n_iter, 2))
        for t in range(n_iter):
            u, log_prior, loglik, rates[t] = mixture_step(model, u, log_prior, loglik, proposal, chol, scale, rng)
            chains[t] = u
        total_iterations += n_iter
        theta_chains = model.to_parameters(chains.reshape(-1, chains.shape[-1])).reshape(n_iter, n_chains, -1)
        rhat = split_rhat(theta_chains)
        if np.max(rhat) <= rhat_threshold:
            break
        logger.info("reference MCMC: R-hat %.3f > %.3f; thin %d -> %d", np.max(rhat), rhat_threshold, thin, 2 * thin)
        thin *= 2
    else:
        raise ReferenceSamplingError(
            f"reference MCMC did not converge: R-hat per parameter {np.round(rhat, 3).tolist()} exceeds "
            f"{rhat_threshold} after {max_extensions} extensions ({n_chains} chains of {n_iter} iterations)."
        )
    kept = theta_chains[thin - 1 :: thin].reshape(-1, theta_chains.shape[-1])
    kept = kept[rng.permutation(len(kept))[:n_samples]]
    evaluations = smc["n_evaluations"] + n_chains * total_iterations
    diagnostics = {
        "method": "smc+mcmc",
        "max_rhat": float(np.max(rhat)),
        "rhat": rhat.tolist(),
        "independence_acceptance": float(np.nanmean(rates[:, 0])),
        "random_walk_acceptance": float(np.nanmean(rates[:, 1])),
        "n_chains": n_chains,
        "iterations_per_chain": n_iter,
        "thin": thin,
        "smc_stages": smc["n_stages"],
        "n_particles": n_particles,
        "n_likelihood_evaluations": int(evaluations),
    }
    return SamplerResult(kept, diagnostics)
