"""Posterior inference from trained likelihood and ratio amortizers (MCMC, importance sampling).

``sample_posterior_mcmc(target, x_obs, prior, ...)`` runs vectorized TFP MCMC chains on
``log p(theta) + log q(x_obs | theta)`` (NLE) or ``+ log r(x_obs, theta)`` (NRE);
``importance_sample`` weights prior draws instead (cheap when the posterior is not too narrow).
``SequentialInference(generative_model, amortizer, x_obs, method=...)`` spends simulations where the
posterior of one observation lives (SNPE-C, SNLE; :mod:`amortflow.inference.sequential`).
"""

from amortflow.inference.atomic_loss import AtomicPosterior
from amortflow.inference.importance import ImportanceResult, importance_sample
from amortflow.inference.mcmc import KERNELS, MCMCResult, sample_posterior_mcmc
from amortflow.inference.sequential import RoundRecord, SequentialInference
from amortflow.inference.targets import make_log_likelihood_fn

__all__ = [
    "KERNELS",
    "AtomicPosterior",
    "ImportanceResult",
    "MCMCResult",
    "RoundRecord",
    "SequentialInference",
    "importance_sample",
    "make_log_likelihood_fn",
    "sample_posterior_mcmc",
]
