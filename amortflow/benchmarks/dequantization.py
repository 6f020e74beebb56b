"""Uniform dequantization: integer-valued data for a likelihood flow (NLE).

A normalizing flow is a density on ``R^d``. Trained on integer data (SIR's binomial counts,
bernoulli_glm_raw's spike bins), it can raise its likelihood without bound by piling mass onto
the lattice points, so its validation loss diverges while its training loss falls. Uniform
dequantization (Theis, van den Oord & Bethge, 2016, "A note on the evaluation of generative
models") trains the flow on ``x + u``, ``u ~ U[0, 1)^d``, fresh noise each time a batch is drawn.
The flow's density ``q`` then approximates a density whose integral over the unit cell
``[x, x + 1)^d`` is the discrete likelihood,

.. math::

    P(x \\mid \\theta) \\approx \\int_{[0, 1)^d} q(x + u \\mid \\theta)\\, du
    \\approx \\frac{1}{K} \\sum_{k=1}^{K} q(x + u_k \\mid \\theta),

which :func:`cell_log_likelihood_fn` evaluates with ``K`` fixed scrambled-Sobol points ``u_k``
(fixed, so that MCMC sees one deterministic target).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

from amortflow.exceptions import ArgumentError

#: Quadrature points per unit cell for the MCMC target (a power of two, as Sobol points need).
NUM_CELL_POINTS = 16


class UniformDequantization:
    """A configurator that adds ``U[0, 1)`` noise to ``sim_data`` before the wrapped one.

    Parameters
    ----------
    configurator : callable
        Raw simulation dict -> network inputs; it sees the dequantized data.
    seed : int
        Seeds the noise; each call draws fresh noise (a new dequantization per batch and epoch).

    Examples
    --------
    >>> wrap = UniformDequantization(lambda raw: raw, seed=0)
    >>> out = wrap({"sim_data": np.zeros((1000, 3))})["sim_data"]
    >>> bool(out.min() >= 0.0 and out.max() < 1.0), round(float(out.mean()), 1)
    (True, 0.5)
    """

    name = "UniformDequantization"

    def __init__(self, configurator, seed: int = 0):
        self.configurator = configurator
        self.rng = np.random.default_rng([int(seed), 13])

    def __call__(self, raw: Mapping) -> dict:
        data = raw.get("sim_data")
        if data is None:
            return self.configurator(raw)
        data = np.asarray(data, dtype=np.float64)
        if not np.array_equal(data, np.round(data)):
            raise ArgumentError(f"{self.name} needs integer-valued sim_data; received non-integer values.")
        return self.configurator({**raw, "sim_data": data + self.rng.uniform(size=data.shape)})

    def cell_points(self, observation, num_points: int = NUM_CELL_POINTS, seed: int = 0) -> np.ndarray:
        """``num_points`` points ``x + u_k`` of the unit cell above one observation ``x (d,)``: ``(K, d)``."""
        from scipy.stats import qmc

        x = np.asarray(observation, dtype=np.float64).reshape(-1)
        u = qmc.Sobol(d=x.size, scramble=True, seed=seed).random(num_points)
        return x[None, :] + u


def cell_log_likelihood_fn(log_density_rows: Callable, points) -> Callable:
    """``theta (C, D) -> log (1/K) sum_k q(points_k | theta)``, ``(C,)``, graph-safe.

    Parameters
    ----------
    log_density_rows : callable
        ``(x (R, d), theta (R, D)) -> (R,)`` log densities, TensorFlow (for an
        :class:`~amortflow.amortizers.AmortizedLikelihood`: its ``log_likelihood_tensor``).
    points : array of shape (K, d)
        The cell's quadrature points as the density expects them (configured data).
    """
    import tensorflow as tf

    points = tf.constant(np.asarray(points, dtype=np.float32))
    num_points = int(points.shape[0])

    def log_likelihood(theta):
        theta = tf.cast(theta, tf.float32)
        num_chains = tf.shape(theta)[0]
        # rows ordered point-major: row k * C + c holds point k with chain c's theta
        x = tf.repeat(points, num_chains, axis=0)
        th = tf.tile(theta, [num_points, 1])
        log_q = tf.reshape(log_density_rows(x, th), (num_points, num_chains))
        return tf.reduce_logsumexp(log_q, axis=0) - tf.math.log(float(num_points))

    return log_likelihood
