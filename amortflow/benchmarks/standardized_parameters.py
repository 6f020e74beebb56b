"""Z-scored parameters for the likelihood (NLE) and ratio (NRE) networks of a benchmark run.

NLE's flow takes ``theta`` as its condition and NRE's classifier takes it as an input. The
tasks' parameters live on very different scales (SIR's recovery rate ``gamma`` has a prior
standard deviation of about 0.025, its infection rate about 0.2), and a network whose inputs
differ in scale by an order of magnitude learns the small one slowly. Both networks therefore
see ``(theta - mean) / std`` with the prior's mean and standard deviation, and the MCMC target
applies the same map to each proposal. No Jacobian enters: ``q(x | theta)`` and
``r(x, theta)`` are functions of ``theta``, not densities over it.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from amortflow.exceptions import ArgumentError

#: Prior draws used to estimate the mean and standard deviation.
NUM_PRIOR_DRAWS = 10_000


class StandardizedParameters:
    """A configurator whose ``key`` entry (the parameters) leaves z-scored.

    Parameters
    ----------
    configurator : callable
        The configurator to wrap (raw simulation dict -> network inputs).
    mean, std : array of shape (D,)
        ``std`` must be positive.
    key : str
        The entry holding ``theta``: ``"parameters"`` for a ratio estimator's inputs,
        ``"conditions"`` for a likelihood estimator's.

    Examples
    --------
    >>> wrap = StandardizedParameters(lambda raw: {"parameters": raw["prior_draws"]},
    ...                               mean=np.array([1.0]), std=np.array([2.0]), key="parameters")
    >>> wrap({"prior_draws": np.array([[3.0], [-1.0]])})["parameters"].ravel().tolist()
    [1.0, -1.0]
    """

    name = "StandardizedParameters"

    def __init__(self, configurator, mean, std, key: str):
        self.configurator = configurator
        self.mean = np.asarray(mean, dtype=np.float64)
        self.std = np.asarray(std, dtype=np.float64)
        if self.mean.shape != self.std.shape or not np.all(self.std > 0):
            raise ArgumentError(f"std must be positive and shaped like mean {self.mean.shape}; received {self.std!r}.")
        self.key = key

    @classmethod
    def from_prior(cls, configurator, task, key: str, seed: int = 0) -> StandardizedParameters:
        """Mean and standard deviation of :data:`NUM_PRIOR_DRAWS` draws from ``task``'s prior."""
        theta = task.sample_prior(NUM_PRIOR_DRAWS, np.random.default_rng([seed, 11]))
        return cls(configurator, theta.mean(axis=0), theta.std(axis=0), key)

    def __call__(self, raw: Mapping) -> dict:
        out = dict(self.configurator(raw))
        if out.get(self.key) is not None:
            out[self.key] = self.standardize(out[self.key])
        return out

    def standardize(self, theta) -> np.ndarray:
        """``(theta - mean) / std`` as float32."""
        return ((np.asarray(theta, dtype=np.float64) - self.mean) / self.std).astype(np.float32)

    def on_task_scale(self, log_likelihood):
        """``theta -> log_likelihood((theta - mean) / std)``: a network-scale log-likelihood for MCMC in task units.

        ``log_likelihood`` maps ``(C, D)`` z-scored parameters to ``(C,)`` (TensorFlow, e.g. from
        :func:`amortflow.inference.targets.make_log_likelihood_fn`). The result is a callable
        ``target(theta, x_obs)`` as :func:`amortflow.inference.sample_posterior_mcmc` accepts it.
        """
        import tensorflow as tf

        mean = tf.constant(self.mean, dtype=tf.float32)
        std = tf.constant(self.std, dtype=tf.float32)

        def target(theta, _x_obs):
            return log_likelihood((tf.cast(theta, tf.float32) - mean) / std)

        return target
