"""Uniform dequantization: likelihood flows (NLE) for integer-valued data.

A normalizing flow is a density on ``R^d``. Trained on integer data (counts, spike bins), it can
raise its likelihood without bound by piling mass onto the lattice points, so its validation loss
diverges while its training loss falls. Uniform dequantization (Theis, van den Oord & Bethge,
2016, "A note on the evaluation of generative models") trains the flow on ``x + u``,
``u ~ U[0, 1)^d``, with fresh noise each time a batch is drawn. The flow's density ``q`` then
approximates a density whose integral over the unit cell ``[x, x + 1)^d`` is the discrete
likelihood,

.. math::

    P(x \\mid \\theta) \\approx \\int_{[0, 1)^d} q(x + u \\mid \\theta)\\, du
    \\approx \\frac{1}{K} \\sum_{k=1}^{K} q(x + u_k \\mid \\theta),

which :func:`cell_log_likelihood_fn` evaluates with ``K`` fixed scrambled-Sobol points ``u_k``
(fixed, so that MCMC sees one deterministic target). For a set of ``N`` i.i.d. observations the
log-likelihood is the sum of the ``N`` cells' log-probabilities.

Workflow::

    configurator = UniformDequantization(DefaultLikelihoodConfigurator(), seed=0)
    trainer = Trainer(AmortizedLikelihood(flow), model, configurator=configurator)
    ...
    result = sample_posterior_mcmc(trainer.amortizer, x_obs, prior, cell_points=16)

``x_obs`` is then the raw integer data. A configurator that rescales the data after
dequantizing (as the benchmark tasks' do) needs the cell points rescaled the same way: build
the target with :func:`unit_cell_points` and :func:`cell_log_likelihood_fn` directly.
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
    configurator : callable, optional
        Raw simulation dict -> network inputs; it sees the dequantized data. Default:
        :class:`~amortflow.configuration.DefaultLikelihoodConfigurator`.
    seed : int
        Seeds the noise; each call draws fresh noise (a new dequantization per batch and epoch).

    Raises
    ------
    ArgumentError
        When ``sim_data`` holds non-integer or non-finite values (dequantizing them would corrupt
        the data).

    Examples
    --------
    >>> wrap = UniformDequantization(lambda raw: raw, seed=0)
    >>> out = wrap({"sim_data": np.zeros((1000, 3))})["sim_data"]
    >>> bool(out.min() >= 0.0 and out.max() < 1.0), round(float(out.mean()), 1)
    (True, 0.5)
    """

    name = "UniformDequantization"

    def __init__(self, configurator: Callable | None = None, seed: int = 0):
        if configurator is None:
            from amortflow.configuration import DefaultLikelihoodConfigurator

            configurator = DefaultLikelihoodConfigurator()
        self.configurator = configurator
        self.rng = np.random.default_rng([int(seed), 13])

    def __call__(self, raw: Mapping) -> dict:
        data = raw.get("sim_data")
        if data is None:
            return self.configurator(raw)
        data = np.asarray(data, dtype=np.float64)
        _require_integers(data, f"{self.name} needs integer-valued sim_data; received non-integer or non-finite values.")
        return self.configurator({**raw, "sim_data": data + self.rng.uniform(size=data.shape)})


def unit_cell_points(observation, num_points: int = NUM_CELL_POINTS, seed: int = 0) -> np.ndarray:
    """``num_points`` points ``x + u_k`` in the unit cell above each observation: ``(K, *observation.shape)``.

    ``observation`` is one data vector ``(d,)`` or a set ``(N, d)``; every observation of a set
    gets the same ``K`` offsets ``u_k`` (scrambled Sobol points in ``[0, 1)^d``).
    """
    from scipy.stats import qmc

    num_points = int(num_points)
    if num_points < 1 or num_points & (num_points - 1):
        raise ArgumentError(f"num_points must be a power of two (Sobol points), received {num_points!r}.")
    x = np.asarray(observation, dtype=np.float64)
    if x.ndim not in (1, 2) or x.size == 0:
        raise ArgumentError(f"observation must have shape (d,) or (N, d), received shape {x.shape}.")
    _require_integers(x, "Unit cells need integer-valued data; the observation holds non-integer or non-finite values.")
    u = qmc.Sobol(d=x.shape[-1], scramble=True, seed=seed).random(num_points)  # (K, d)
    return x[None] + (u[:, None, :] if x.ndim == 2 else u)


def cell_log_likelihood_fn(log_density: Callable, points) -> Callable:
    """``theta (C, D) -> sum_n log (1/K) sum_k q(points[k, n] | theta)``, ``(C,)``, graph-safe.

    Parameters
    ----------
    log_density : callable
        ``(x (R, *obs_shape), theta (R, D)) -> log densities (R,)`` or, for sets, per-observation
        ``(R, N)``; TensorFlow. For an :class:`~amortflow.amortizers.AmortizedLikelihood`:
        ``lambda x, theta: amortizer.log_prob_rows(x, theta)[0]``.
    points : array of shape ``(K, *obs_shape)``
        The cells' quadrature points as the density expects them (configured data), e.g. from
        :func:`unit_cell_points`.
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
        log_q = tf.reshape(log_density(x, th), (num_points, num_chains, -1))
        per_cell = tf.reduce_logsumexp(log_q, axis=0) - tf.math.log(float(num_points))
        return tf.reduce_sum(per_cell, axis=-1)

    return log_likelihood


def _require_integers(values: np.ndarray, message: str) -> None:
    """ArgumentError(message) unless every entry is finite and equals its rounded value."""
    # round(inf) == inf: without the finiteness check an overflowed count would pass as an integer
    if not (np.all(np.isfinite(values)) and np.array_equal(values, np.round(values))):
        raise ArgumentError(message)
