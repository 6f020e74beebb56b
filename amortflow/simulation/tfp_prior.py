"""TensorFlow Probability distributions as priors: shape normalization, sampling, density, support.

A prior over ``D`` parameters is a distribution with ``event_shape == (D,)`` and
``batch_shape == ()``. Two common spellings are normalized to that form:

* a univariate distribution with ``batch_shape == (D,)`` (``tfd.Normal(loc=[0., 0.], scale=1.)``)
  becomes ``tfd.Independent(dist, reinterpreted_batch_ndims=1)``;
* a scalar distribution (``tfd.Normal(0., 1.)``) becomes ``tfd.Sample(dist, 1)``, ``D = 1``.
"""

from __future__ import annotations

import logging

import numpy as np

from amortflow.exceptions import ArgumentError, ShapeError

logger = logging.getLogger("amortflow")


def _tfd():
    import tensorflow_probability as tfp  # lazily: TFP is only needed for distribution priors

    return tfp.distributions


def is_distribution(obj) -> bool:
    """Duck-typed check for a TFP distribution (``sample``, ``log_prob``, ``event_shape``)."""
    return all(hasattr(obj, name) for name in ("sample", "log_prob", "event_shape", "batch_shape"))


def normalize_distribution(distribution):
    """Return an equivalent distribution with ``event_shape (D,)`` and ``batch_shape ()``.

    Raises
    ------
    ArgumentError
        For shapes that do not describe one parameter vector (e.g. a joint distribution
        with a dict of events, a matrix-valued event, or both batch and event axes).
    """
    if not is_distribution(distribution):
        raise ArgumentError(
            f"Prior(distribution=...) needs a TensorFlow Probability distribution, received {type(distribution).__name__}."
        )
    event_shape, batch_shape = distribution.event_shape, distribution.batch_shape
    if not hasattr(event_shape, "rank") or event_shape.rank is None or batch_shape.rank is None:
        raise ArgumentError(
            f"Prior(distribution=...) needs one vector-valued event with static shapes; "
            f"{distribution.name} has event_shape {event_shape}. Wrap joint distributions in "
            "tfd.Blockwise or write a batch_prior_fun."
        )
    tfd = _tfd()
    if event_shape.rank == 1 and batch_shape.rank == 0:
        return distribution
    if event_shape.rank == 0 and batch_shape.rank == 1:
        logger.info("Prior: treating the batch axis of %s as the parameter axis (tfd.Independent).", distribution.name)
        return tfd.Independent(distribution, reinterpreted_batch_ndims=1)
    if event_shape.rank == 0 and batch_shape.rank == 0:
        return tfd.Sample(distribution, sample_shape=[1])
    raise ArgumentError(
        f"Prior(distribution=...) needs event_shape (D,) and batch_shape (); {distribution.name} has "
        f"event_shape {tuple(event_shape)} and batch_shape {tuple(batch_shape)}. Use tfd.Independent "
        "or tfd.Sample to build one parameter vector."
    )


def sample(distribution, batch_size: int, rng: np.random.Generator) -> np.ndarray:
    """``(batch_size, D)`` draws; a stateless seed from ``rng`` makes them reproducible."""
    import tensorflow as tf

    seed = tf.constant(rng.integers(0, 2**31 - 1, size=2), dtype=tf.int32)
    return np.asarray(distribution.sample(batch_size, seed=seed))


def log_prob(distribution, theta) -> np.ndarray:
    """Log density of ``theta`` (``(D,)`` or ``(B, D)``) as numpy, in the distribution's dtype."""
    dim = int(distribution.event_shape[0])
    theta = np.asarray(theta)
    if theta.ndim == 0 or theta.shape[-1] != dim:
        raise ShapeError(f"Prior.log_prob expected theta of shape (D,) or (B, D) with D={dim}, received {theta.shape}.")
    theta = theta.astype(distribution.dtype.as_numpy_dtype)
    return np.asarray(distribution.log_prob(theta))


def support_bounds(distribution) -> tuple[np.ndarray, np.ndarray] | None:
    """Lower and upper bounds ``(D,)`` of the support, or ``None`` when they cannot be derived.

    TFP gives every continuous distribution a *default event-space bijector* mapping
    unconstrained reals onto its support (Identity for a normal, Softplus or Exp for
    half-lines, Sigmoid(low, high) for intervals). For these elementwise, monotone
    bijectors the bounds are the images of ``-inf`` and ``+inf``. Bijectors that change
    the event shape (simplex constraints such as Dirichlet's) and discrete distributions
    (no bijector) give ``None``: "unknown", never a wrong box.
    """
    import tensorflow as tf

    try:
        bijector = distribution.experimental_default_event_space_bijector()
    except Exception:  # noqa: BLE001 - NotImplementedError, or a TFP/NumPy incompatibility: "unknown"
        logger.debug("Prior.support_bounds: no event-space bijector for %s.", distribution.name, exc_info=True)
        return None
    if bijector is None:
        return None
    event_shape = distribution.event_shape
    try:
        if tuple(bijector.inverse_event_shape(event_shape)) != tuple(event_shape):
            return None
        dtype = distribution.dtype
        ends = [np.asarray(bijector.forward(tf.fill(event_shape, tf.constant(v, dtype)))) for v in (-np.inf, np.inf)]
    except Exception:  # noqa: BLE001 - any failure of the bijector means "unknown"
        logger.debug("Prior.support_bounds: the event-space bijector of %s failed.", distribution.name, exc_info=True)
        return None
    lower, upper = np.minimum(*ends), np.maximum(*ends)
    if np.isnan(lower).any() or np.isnan(upper).any():
        return None
    return lower.astype(np.float64), upper.astype(np.float64)
