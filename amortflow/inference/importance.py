"""Sampling-importance-resampling from the prior: a cheap alternative to MCMC for NLE/NRE posteriors.

Proposals ``theta_i ~ p(theta)`` get weights ``w_i = q(x_obs | theta_i)`` (or ``r(x_obs, theta_i)``);
``p(theta | x_obs) ~ sum_i w_i delta(theta_i) / sum_j w_j``. Resampling with replacement gives
equally weighted draws. The mean weight estimates the evidence ``p(x_obs)`` (NLE) or 1 (NRE,
``E_prior[r] = 1``). Reliable only when the posterior is not much narrower than the prior:
the Kish effective sample size ``(sum w)^2 / sum w^2`` says how many proposals effectively count.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from amortflow._checks import positive_int
from amortflow.amortizers.base import chunk_ranges
from amortflow.defaults import DEFAULT_SAMPLING_MAX_ROWS
from amortflow.exceptions import SamplingError
from amortflow.inference.targets import make_log_likelihood_fn, resolve_prior

logger = logging.getLogger("amortflow")


@dataclass
class ImportanceResult:
    """Result of :func:`importance_sample`.

    Attributes
    ----------
    draws : numpy.ndarray
        ``(num_samples, D)`` equally weighted posterior draws (resampled proposals).
    proposals : numpy.ndarray
        ``(num_proposals, D)`` prior draws.
    log_weights : numpy.ndarray
        ``(num_proposals,)`` self-normalized log weights (``logsumexp = 0``).
    ess : float
        Kish effective sample size of the weights.
    log_evidence : float
        ``log mean_i w_i``: estimates ``log p(x_obs)`` for a likelihood, ~0 for an exact ratio.
    """

    draws: np.ndarray
    proposals: np.ndarray
    log_weights: np.ndarray
    ess: float
    log_evidence: float


def importance_sample(
    target,
    x_obs,
    prior,
    *,
    num_proposals: int = 20_000,
    num_samples: int = 1000,
    seed: int | None = None,
    min_ess: float = 100.0,
    nonfinite: str = "raise",
) -> ImportanceResult:
    """Posterior draws by sampling-importance-resampling with the prior as proposal.

    Parameters
    ----------
    target, x_obs, prior
        As in :func:`amortflow.inference.sample_posterior_mcmc`.
    num_proposals : int
        Prior draws to weight.
    num_samples : int
        Posterior draws to resample.
    seed : int, optional
        Makes the proposals and the resampling repeatable.
    min_ess : float
        Log a warning when the effective sample size is below this.
    nonfinite : {"raise", "drop"}, default "raise"
        As in :func:`amortflow.inference.sample_posterior_mcmc`.
    """
    num_proposals = positive_int("num_proposals", num_proposals)
    num_samples = positive_int("num_samples", num_samples)
    distribution = resolve_prior(prior)
    log_likelihood, _ = make_log_likelihood_fn(target, x_obs, nonfinite=nonfinite)
    rng = np.random.default_rng(seed)
    stateless = tf.constant(rng.integers(0, 2**31 - 1, size=2), dtype=tf.int32)
    proposals = distribution.sample(num_proposals, seed=stateless)
    rows_per_proposal = max(1, int(np.prod(np.shape(x_obs)[:-1])) if not isinstance(x_obs, dict) else 1)
    chunk = max(1, DEFAULT_SAMPLING_MAX_ROWS // rows_per_proposal)
    log_w = np.concatenate(
        [np.asarray(log_likelihood(proposals[a:b]), dtype=np.float64) for a, b in chunk_ranges(num_proposals, chunk)]
    )
    log_w = np.where(np.isnan(log_w), -np.inf, log_w)
    if not np.isfinite(log_w).any():
        raise SamplingError("Every importance weight is zero (log weight -inf or NaN); check x_obs and the target.")
    log_total = float(np.logaddexp.reduce(log_w))
    normalized = log_w - log_total
    weights = np.exp(normalized)
    ess = float(1.0 / np.sum(weights**2))
    if ess < min_ess:
        logger.warning(
            "Importance sampling: effective sample size %.1f of %d proposals - the posterior is much narrower than "
            "the prior. Use more proposals or MCMC (sample_posterior_mcmc).",
            ess, num_proposals,
        )  # fmt: skip
    picks = rng.choice(num_proposals, size=num_samples, replace=True, p=weights / weights.sum())
    proposals = np.asarray(proposals)
    return ImportanceResult(
        draws=proposals[picks],
        proposals=proposals,
        log_weights=normalized,
        ess=ess,
        log_evidence=log_total - math.log(num_proposals),
    )
