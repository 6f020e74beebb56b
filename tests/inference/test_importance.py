"""Sampling-importance-resampling from the prior on the conjugate Gaussian model (exact likelihood).

``x_n ~ N(theta, I)`` (2-D, n = 1..10), ``theta ~ N(0, I)``: posterior ``N(sum x / 11, I / 11)``
and evidence ``p(x) = prod_axes N(x_axis; 0, I_10 + 1 1^T)``.

Tolerances (4 standard errors): a resampled mean has variance ``sd^2 (1/ESS + 1/num_samples)``
(weighting noise plus resampling noise); the log of a mean of weights has standard deviation
``sqrt((n / ESS - 1) / n)`` for ``n`` proposals (delta method, ``Var(w) / E(w)^2 = n / ESS - 1``).
"""

from __future__ import annotations

import logging

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp
from scipy import stats

from amortflow.exceptions import SamplingError
from amortflow.inference import importance_sample
from tests.amortizers.helpers import gaussian_posterior

tfd = tfp.distributions
N_OBS = 10
X_OBS = (np.array([0.5, -1.0]) + np.random.default_rng(5).normal(size=(N_OBS, 2))).astype("float32")
PRIOR = tfd.Independent(tfd.Normal(np.zeros(2, "float32"), 1.0), 1)


def log_likelihood(theta, x_obs):
    sq = tf.reduce_sum(tf.square(x_obs[None] - theta[:, None, :]), axis=[1, 2])
    return -0.5 * sq - N_OBS * np.log(2 * np.pi)


def test_importance_sampling_recovers_posterior_and_evidence():
    result = importance_sample(log_likelihood, X_OBS, PRIOR, num_proposals=20000, num_samples=2000, seed=0)
    assert result.draws.shape == (2000, 2) and result.proposals.shape == (20000, 2)
    np.testing.assert_allclose(np.logaddexp.reduce(result.log_weights), 0.0, atol=1e-9)
    mean, sd = gaussian_posterior(X_OBS.mean(axis=0), N_OBS)
    mean_tol = 4 * sd * np.sqrt(1 / result.ess + 1 / 2000)
    np.testing.assert_array_less(np.abs(result.draws.mean(axis=0) - mean), mean_tol)
    cov = np.eye(N_OBS) + np.ones((N_OBS, N_OBS))
    exact = sum(stats.multivariate_normal.logpdf(X_OBS[:, j], np.zeros(N_OBS), cov) for j in range(2))
    evidence_tol = 4 * np.sqrt((20000 / result.ess - 1) / 20000)
    assert abs(result.log_evidence - exact) < evidence_tol


def test_low_effective_sample_size_warns_and_zero_weights_fail(caplog):
    with caplog.at_level(logging.WARNING, logger="amortflow"):
        result = importance_sample(log_likelihood, X_OBS, PRIOR, num_proposals=50, num_samples=10, seed=1)
    assert result.ess < 100 and "effective sample size" in caplog.text
    with pytest.raises(SamplingError, match="zero"):
        importance_sample(lambda theta, x: tf.fill(tf.shape(theta)[:1], -np.inf), X_OBS, PRIOR, num_proposals=10)
