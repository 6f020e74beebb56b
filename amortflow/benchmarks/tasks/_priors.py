"""Prior families shared by the tasks: uniform boxes, Gaussians and independent log-normals.

Each class implements :class:`~amortflow.benchmarks.base.Task`'s prior methods - the TFP
distribution, numpy sampling and numpy log density (the reference samplers call the latter
millions of times, where TFP's per-call overhead would dominate) - from a few class attributes.
"""

from __future__ import annotations

import math
from typing import ClassVar

import numpy as np
from scipy import special

from amortflow.benchmarks.base import Task, tfd
from amortflow.benchmarks.reference import PosteriorModel
from amortflow.utils import as_generator


def box_posterior_model(low, high, log_likelihood) -> PosteriorModel:
    """Reference-sampler model for a uniform prior on the box ``[low, high]``, in logit coordinates.

    ``theta = low + (high - low) sigmoid(u)``: the sampler works on unbounded ``u``, where mass
    piled against an edge of the box (or a spike at a scale parameter's 0) becomes a smooth tail.
    The prior of ``u`` is ``prod_i sigmoid(u_i) (1 - sigmoid(u_i))`` (logistic).
    """
    low, high = np.asarray(low, dtype=float), np.asarray(high, dtype=float)

    def to_parameters(u):
        return low + (high - low) * special.expit(u)

    def log_prior(u):  # log sigmoid(u) + log(1 - sigmoid(u)) = -softplus(-u) - softplus(u)
        return -np.sum(np.logaddexp(0.0, -u) + np.logaddexp(0.0, u), axis=1)

    return PosteriorModel(
        sample_prior=lambda n, rng: special.logit(rng.uniform(size=(n, len(low)))),
        log_prior=log_prior,
        log_likelihood=lambda u: log_likelihood(to_parameters(u)),
        to_parameters=to_parameters,
    )


class UniformPriorTask(Task):
    """Prior ``U(low, high)`` independently per parameter (``prior_low``, ``prior_high``: tuples)."""

    prior_low: ClassVar[tuple[float, ...]]
    prior_high: ClassVar[tuple[float, ...]]

    def _make_prior_distribution(self):
        low = np.asarray(self.prior_low, dtype=np.float32)
        return tfd().Independent(tfd().Uniform(low=low, high=np.asarray(self.prior_high, dtype=np.float32)), 1)

    def sample_prior(self, n, rng=None):
        return as_generator(rng).uniform(self.prior_low, self.prior_high, size=(n, self.dim_parameters))

    def log_prior(self, theta):
        theta = np.atleast_2d(theta)
        low, high = np.asarray(self.prior_low), np.asarray(self.prior_high)
        inside = np.all((theta >= low) & (theta <= high), axis=1)
        return np.where(inside, -np.sum(np.log(high - low)), -np.inf)

    def log_support_indicator(self, theta: np.ndarray) -> np.ndarray:
        """``0`` inside the prior box, ``-inf`` outside (and for NaN rows): a rejection step's log acceptance."""
        return np.where(np.isfinite(self.log_prior(theta)), 0.0, -np.inf)


class GaussianPriorTask(Task):
    """Prior ``N(prior_mean, prior_covariance)``; subclasses define both as properties or attributes."""

    prior_mean: np.ndarray
    prior_covariance: np.ndarray

    def _make_prior_distribution(self):
        chol = np.linalg.cholesky(self.prior_covariance).astype(np.float32)
        return tfd().MultivariateNormalTriL(loc=np.asarray(self.prior_mean, dtype=np.float32), scale_tril=chol)

    def sample_prior(self, n, rng=None):
        chol = np.linalg.cholesky(self.prior_covariance)
        return self.prior_mean + as_generator(rng).standard_normal((n, self.dim_parameters)) @ chol.T

    def log_prior(self, theta):
        theta = np.atleast_2d(theta)
        chol = np.linalg.cholesky(self.prior_covariance)
        z = np.linalg.solve(chol, (theta - self.prior_mean).T)  # L^-1 (theta - mu), (D, B)
        log_det = np.sum(np.log(np.diag(chol)))
        return -0.5 * np.sum(z**2, axis=0) - log_det - 0.5 * self.dim_parameters * math.log(2 * math.pi)


class LogNormalPriorTask(Task):
    """Independent ``LogNormal(prior_loc, prior_scale)`` per parameter: ``log theta ~ N(loc, scale^2)``."""

    prior_loc: ClassVar[tuple[float, ...]]
    prior_scale: ClassVar[tuple[float, ...]]

    def _make_prior_distribution(self):
        loc, scale = (np.asarray(v, dtype=np.float32) for v in (self.prior_loc, self.prior_scale))
        return tfd().Independent(tfd().LogNormal(loc=loc, scale=scale), 1)

    def sample_prior(self, n, rng=None):
        return np.exp(as_generator(rng).normal(self.prior_loc, self.prior_scale, size=(n, self.dim_parameters)))

    def log_prior(self, theta):
        theta = np.atleast_2d(theta)
        with np.errstate(divide="ignore", invalid="ignore"):
            log_theta = np.log(theta)
        out = self._log_normal_density(log_theta) - np.sum(log_theta, axis=1)
        return np.where(np.all(theta > 0, axis=1), out, -np.inf)

    def _log_normal_density(self, u: np.ndarray) -> np.ndarray:
        """Log density of ``u = log theta`` under ``N(loc, scale^2)``, summed over parameters."""
        loc, scale = np.asarray(self.prior_loc), np.asarray(self.prior_scale)
        z = (u - loc) / scale
        return np.sum(-0.5 * z**2 - np.log(scale) - 0.5 * math.log(2 * math.pi), axis=1)

    def _log_space_posterior_model(self, log_likelihood) -> PosteriorModel:
        """Reference-sampler model in ``u = log theta``, where the prior is Gaussian."""
        loc, scale = np.asarray(self.prior_loc), np.asarray(self.prior_scale)
        return PosteriorModel(
            sample_prior=lambda n, rng: rng.normal(loc, scale, size=(n, self.dim_parameters)),
            log_prior=self._log_normal_density,
            log_likelihood=lambda u: log_likelihood(np.exp(u)),
            to_parameters=np.exp,
        )
