"""Posterior inference from trained likelihood and ratio amortizers (MCMC, importance sampling).

``sample_posterior_mcmc(target, x_obs, prior, ...)`` runs vectorized TFP MCMC chains on
``log p(theta) + log q(x_obs | theta)`` (NLE) or ``+ log r(x_obs, theta)`` (NRE);
``importance_sample`` weights prior draws instead (cheap when the posterior is not too narrow).
``SequentialInference(generative_model, amortizer, x_obs, method=...)`` spends simulations where the
posterior of one observation lives (SNPE-C, TSNPE, SNLE, SNRE; :mod:`amortflow.inference.sequential`);
``rejection_abc`` and ``smc_abc`` are the ABC baselines.
"""

from amortflow.inference.abc import ABCResult, rejection_abc
from amortflow.inference.atomic_loss import AtomicPosterior
from amortflow.inference.importance import ImportanceResult, importance_sample
from amortflow.inference.mcmc import KERNELS, MCMCResult, sample_posterior_mcmc
from amortflow.inference.sequential import RoundRecord, SequentialInference
from amortflow.inference.smc_abc import SMCABCResult, smc_abc
from amortflow.inference.targets import make_log_likelihood_fn

__all__ = [
    "KERNELS",
    "ABCResult",
    "AtomicPosterior",
    "ImportanceResult",
    "MCMCResult",
    "RoundRecord",
    "SMCABCResult",
    "SequentialInference",
    "importance_sample",
    "make_log_likelihood_fn",
    "rejection_abc",
    "sample_posterior_mcmc",
    "smc_abc",
]
