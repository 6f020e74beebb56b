"""SMC-ABC: population Monte Carlo ABC with an adaptive tolerance (Beaumont, Cornuet, Marin & Robert 2009).

Generation 0 is rejection ABC (:func:`~amortflow.inference.rejection_abc`): the ``num_particles``
closest of ``num_particles / initial_quantile`` prior simulations, equally weighted. Generation
``t`` lowers the tolerance to the ``tolerance_quantile``-quantile of the last generation's
distances (adaptive, as in Del Moral, Doucet & Jasra 2012) and refills the population: a
particle ``theta_j`` drawn by weight is moved by a Gaussian kernel ``K = N(0, 2 Sigma)`` (``Sigma``
the weighted covariance of the population; Beaumont et al. 2009), simulated, and kept when its
distance is at most ``eps_t``. The new particles are weighted by importance against the mixture
they were drawn from,

``w_i ∝ p(theta_i) / sum_j w_j^{t-1} K(theta_i - theta_j)``,

so that the weighted population samples ``p(theta | d(s(x), s(x_obs)) <= eps_t)``. Summaries
and distances are those of :mod:`amortflow.inference.abc`; the MAD scale of the default
distance comes from generation 0 and stays fixed, so the tolerances are comparable.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from scipy.special import logsumexp

from amortflow._checks import positive_int
from amortflow.exceptions import ArgumentError, SamplingError
from amortflow.inference.abc import (
    DEFAULT_ABC_BATCH,
    check_quantile,
    mad_scale,
    make_distance_fn,
    make_summary_fn,
    simulate_summaries,
)
from amortflow.inference.proposal_simulation import check_observation, prior_distribution, simulate_at

logger = logging.getLogger("amortflow")

#: Batches of moved particles all outside the prior's support before giving up.
MAX_EMPTY_BATCHES = 100


@dataclass
class SMCABCResult:
    """The last population of :func:`smc_abc` and the path to it.

    Attributes
    ----------
    particles : numpy.ndarray
        ``(num_particles, D)`` parameters of the last generation.
    weights : numpy.ndarray
        ``(num_particles,)`` normalized importance weights.
    distances : numpy.ndarray
        ``(num_particles,)`` distances of the particles' simulations to ``x_obs``.
    tolerances : list of float
        ``eps_t`` per generation (generation 0: the largest accepted distance).
    simulations : list of int
        Simulations run per generation.
    acceptance_rates : list of float
        Share of the generation's simulations within its tolerance.
    """

    particles: np.ndarray
    weights: np.ndarray
    distances: np.ndarray
    tolerances: list = field(default_factory=list)
    simulations: list = field(default_factory=list)
    acceptance_rates: list = field(default_factory=list)

    @property
    def num_simulations(self) -> int:
        """All simulations run."""
        return int(sum(self.simulations))

    @property
    def ess(self) -> float:
        """Kish effective sample size ``1 / sum w_i^2`` of the last population."""
        return float(1.0 / np.sum(self.weights**2))

    def sample(self, n_samples: int, seed: int | None = None) -> np.ndarray:
        """``(n_samples, D)`` equally weighted draws, resampled from the weighted particles."""
        picks = np.random.default_rng(seed).choice(len(self.weights), size=positive_int("n_samples", n_samples),
                                                   p=self.weights)  # fmt: skip
        return self.particles[picks]


def smc_abc(
    generative_model,
    x_obs,
    num_particles: int = 1000,
    num_generations: int = 5,
    distance: Callable | None = None,
    summary=None,
    *,
    initial_quantile: float = 0.1,
    tolerance_quantile: float = 0.5,
    max_simulations: int | None = None,
    min_acceptance_rate: float = 0.01,
    seed: int | None = None,
    batch_size: int = DEFAULT_ABC_BATCH,
) -> SMCABCResult:
    """Population Monte Carlo ABC with an adaptive tolerance (see the module docstring).

    Parameters
    ----------
    generative_model : GenerativeModel
        Its prior must be a TFP distribution: the weights need ``p(theta)``.
    x_obs : array
        The observed data set, shaped like one simulation's ``sim_data``.
    num_particles : int, default 1000
    num_generations : int, default 5
        Generations after generation 0 (each lowers the tolerance once).
    distance, summary
        As in :func:`~amortflow.inference.rejection_abc`.
    initial_quantile : float, default 0.1
        Generation 0 keeps this share of ``num_particles / initial_quantile`` prior simulations.
    tolerance_quantile : float, default 0.5
        Each new tolerance is this quantile of the last generation's distances.
    max_simulations : int, optional
        Stop (with the last complete generation) before a generation would exceed this total.
    min_acceptance_rate : float, default 0.01
        Stop after a generation that accepted less than this share of its simulations.
    seed : int, optional
    batch_size : int
        Most simulations per call of the simulator.

    Returns
    -------
    SMCABCResult
    """
    num_particles = positive_int("num_particles", num_particles)
    if num_particles < 2:
        raise ArgumentError(f"num_particles must be >= 2 (the kernel needs a covariance), received {num_particles}.")
    num_generations = int(num_generations)
    if num_generations < 0:
        raise ArgumentError(f"num_generations must be >= 0, received {num_generations}.")
    initial_quantile = check_quantile(initial_quantile, "initial_quantile")
    tolerance_quantile = check_quantile(tolerance_quantile, "tolerance_quantile")
    batch_size = positive_int("batch_size", batch_size)
    prior = prior_distribution(generative_model, "smc_abc")
    x_obs = check_observation(x_obs, generative_model)
    rng = np.random.default_rng(seed)
    summary_fn = make_summary_fn(summary)

    n_initial = math.ceil(num_particles / initial_quantile)
    theta, summaries = simulate_summaries(generative_model, n_initial, summary_fn, rng, batch_size)
    observed = summary_fn(x_obs[None])[0]
    distance_fn = make_distance_fn(distance, mad_scale(summaries))
    distances = distance_fn(summaries, observed)
    keep = np.argsort(distances, kind="stable")[:num_particles]
    result = SMCABCResult(theta[keep], np.full(num_particles, 1.0 / num_particles), distances[keep],
                          [float(distances[keep[-1]])], [n_initial], [num_particles / n_initial])  # fmt: skip

    def population_distances(candidates):
        return distance_fn(summary_fn(simulate_at(generative_model, candidates, rng)["sim_data"]), observed)

    for generation in range(1, num_generations + 1):
        tolerance = float(np.quantile(result.distances, tolerance_quantile))
        budget = None if max_simulations is None else int(max_simulations) - result.num_simulations
        step = _next_generation(result, tolerance, prior, population_distances, rng, batch_size, budget)
        if step is None:
            logger.info("smc_abc: generation %d would exceed max_simulations=%s; stopping.", generation, max_simulations)
            break
        particles, weights, new_distances, n_sims, rate = step
        result = SMCABCResult(particles, weights, new_distances, [*result.tolerances, tolerance],
                              [*result.simulations, n_sims], [*result.acceptance_rates, rate])  # fmt: skip
        logger.info("smc_abc generation %d: tolerance %.4g, %d simulations, acceptance %.3f, ESS %.0f.",
                    generation, tolerance, n_sims, result.acceptance_rates[-1], result.ess)  # fmt: skip
        if result.acceptance_rates[-1] < min_acceptance_rate:
            logger.info("smc_abc: acceptance %.4f < min_acceptance_rate=%g; stopping.", result.acceptance_rates[-1],
                        min_acceptance_rate)  # fmt: skip
            break
    return result


def _next_generation(result: SMCABCResult, tolerance: float, prior, population_distances, rng, batch_size: int,
                     budget: int | None):  # fmt: skip
    """``(particles, weights, distances, simulations, acceptance rate)`` of the next generation, or None past ``budget``.

    Accepted candidates beyond ``n`` (the last batch overshoots) are dropped but count in the rate.
    """
    n, dim = result.particles.shape
    covariance = 2.0 * np.atleast_2d(np.cov(result.particles, rowvar=False, aweights=result.weights))
    cholesky = np.linalg.cholesky(covariance + 1e-12 * np.eye(dim) * np.trace(covariance))
    accepted, kept_distances, n_sims, n_hits, empty = [], [], 0, 0, 0
    rate = result.acceptance_rates[-1]  # a first guess; each batch updates it
    while n_hits < n:
        # enough candidates for the missing particles at the current rate (+10 %), in bounded batches
        size = int(min(batch_size, max(n - n_hits, math.ceil(1.1 * (n - n_hits) / max(rate, 1e-4)))))
        if budget is not None and n_sims + size > budget:
            return None
        ancestors = rng.choice(n, size=size, p=result.weights)
        candidates = result.particles[ancestors] + rng.normal(size=(size, dim)) @ cholesky.T
        inside = np.isfinite(np.asarray(prior.log_prob(candidates.astype(prior.dtype.as_numpy_dtype))))
        candidates = candidates[inside]  # outside the support: prior 0, rejected without a simulation
        if not len(candidates):
            empty += 1
            if empty >= MAX_EMPTY_BATCHES:
                raise SamplingError(f"smc_abc: {empty} batches of moved particles in a row all left the prior's support.")
            continue
        empty = 0
        distances = population_distances(candidates)
        n_sims += len(candidates)
        hit = distances <= tolerance
        accepted.append(candidates[hit])
        kept_distances.append(distances[hit])
        n_hits += int(hit.sum())
        rate = n_hits / n_sims
    particles = np.concatenate(accepted)[:n]
    weights = _importance_weights(particles, result.particles, result.weights, covariance, prior)
    return particles, weights, np.concatenate(kept_distances)[:n], n_sims, n_hits / n_sims


def _importance_weights(particles, previous, previous_weights, covariance, prior) -> np.ndarray:
    """``w_i ∝ p(theta_i) / sum_j w_j N(theta_i - theta_j; 0, covariance)``, normalized (log space)."""
    precision = np.linalg.inv(covariance)
    diffs = particles[:, None, :] - previous[None, :, :]  # (n, m, D)
    mahalanobis = np.einsum("nmd,de,nme->nm", diffs, precision, diffs)
    # the kernel's normalizing constant is the same for every pair, so it cancels
    log_mixture = logsumexp(-0.5 * mahalanobis + np.log(previous_weights)[None, :], axis=1)
    log_prior = np.asarray(prior.log_prob(particles.astype(prior.dtype.as_numpy_dtype)), dtype=np.float64)
    log_w = log_prior - log_mixture
    return np.exp(log_w - logsumexp(log_w))
