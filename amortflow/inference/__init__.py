"""Posterior inference from trained likelihood and ratio amortizers (MCMC, importance sampling)."""

from amortflow.inference.mcmc import KERNELS, MCMCResult, sample_posterior_mcmc

__all__ = ["KERNELS", "MCMCResult", "sample_posterior_mcmc"]
