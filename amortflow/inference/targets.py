"""Turn a trained likelihood or ratio amortizer (or a function) plus ``x_obs`` into ``theta -> log q(x_obs | theta)``.

The returned function maps parameter rows ``(C, D)`` (one per MCMC chain or proposal) to
``(C,)`` and is graph-safe (TensorFlow only), so MCMC kernels can differentiate and compile it.

``x_obs`` conventions:

* an **array** is ONE data set without a batch axis: observations ``(N, d)`` or ``(d,)`` for
  an :class:`~amortflow.amortizers.AmortizedLikelihood`; ``summary_conditions`` (with a
  summary network) or ``direct_conditions`` ``(k,)`` (without) for an
  :class:`~amortflow.amortizers.AmortizedRatio`;
* a **dict** is configured input of one data set, i.e. with a batch axis of size 1
  (``{"observables": (1, N, d)}`` or ``{"summary_conditions": (1, N, d), "direct_conditions": (1, k)}``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import tensorflow as tf

from amortflow.amortizers.entry_points import check_nonfinite_choice
from amortflow.amortizers.input_checks import as_input, check_keys, check_observed
from amortflow.exceptions import ArgumentError, ShapeError, describe_shape

LogLikelihoodFn = Callable[[tf.Tensor], tf.Tensor]


def make_log_likelihood_fn(
    target, x_obs, cell_points: int = 0, nonfinite: str = "raise"
) -> tuple[LogLikelihoodFn, str]:
    """Return ``(fn, kind)``: ``fn(theta (C, D)) -> (C,)`` and ``kind`` in {"likelihood", "ratio", "function"}.

    Parameters
    ----------
    target : AmortizedLikelihood, AmortizedRatio, AmortizedPosteriorLikelihood or callable
        A callable is called as ``target(theta, x_obs)`` and must return ``(C,)`` log values.
    x_obs : array or dict
        The observed data set (see the module docstring).
    cell_points : int, default 0
        For an :class:`~amortflow.amortizers.AmortizedLikelihood` trained on uniformly dequantized
        integer data (:class:`~amortflow.dequantization.UniformDequantization`): average the
        density over each observation's unit cell with this many Sobol points (a power of two;
        :mod:`amortflow.dequantization`), so that ``fn`` is the discrete log-likelihood.
        ``x_obs`` is then the raw integer array. 0: the density at ``x_obs`` itself.
    nonfinite : {"raise", "drop"}, default "raise"
        ``x_obs`` with NaN or inf raises a :class:`~amortflow.exceptions.NonFiniteInputError`;
        ``"drop"`` drops the observations (set elements) that hold them. ``x_obs`` is checked
        against the shapes the amortizer was trained on (:mod:`amortflow.amortizers.input_checks`).
    """
    from amortflow.amortizers import AmortizedLikelihood, AmortizedPosteriorLikelihood, AmortizedRatio

    if isinstance(target, AmortizedPosteriorLikelihood):
        target = target.amortized_likelihood
    if cell_points and not isinstance(target, AmortizedLikelihood):
        raise ArgumentError(
            f"cell_points applies to an AmortizedLikelihood trained on dequantized data; received {type(target).__name__}."
        )
    check_nonfinite_choice(nonfinite)
    if isinstance(target, AmortizedLikelihood):
        if cell_points:
            return _cell_likelihood_fn(target, x_obs, cell_points), "likelihood"
        return _likelihood_fn(target, x_obs, nonfinite), "likelihood"
    if isinstance(target, AmortizedRatio):
        return _ratio_fn(target, x_obs, nonfinite), "ratio"
    if callable(target) and not hasattr(target, "compute_loss"):
        return (lambda theta: target(theta, x_obs)), "function"
    raise ArgumentError(
        "target must be an AmortizedLikelihood, an AmortizedRatio, an AmortizedPosteriorLikelihood or a "
        f"callable log_likelihood_fn(theta, x_obs); received {type(target).__name__}."
    )


def _likelihood_fn(amortizer, x_obs, nonfinite: str = "raise") -> LogLikelihoodFn:
    if isinstance(x_obs, Mapping):
        obs = _single_dataset(x_obs, "observables")
    else:
        obs = as_input("x_obs", "observables", x_obs)
        obs = obs[None] if obs.ndim in (1, 2) else obs
    _check_observations(amortizer, x_obs, obs, batch_axis=True)
    obs = check_observed(amortizer, "observables", obs, batched=True, nonfinite=nonfinite)
    obs = tf.constant(obs, dtype=tf.float32)

    def log_likelihood(theta):
        n_chains = tf.shape(theta)[0]
        tiled = tf.repeat(obs, n_chains, axis=0)
        return amortizer.log_likelihood_tensor(tiled, tf.cast(theta, tf.float32))

    return log_likelihood


def _check_observations(amortizer, x_obs, obs: np.ndarray, batch_axis: bool) -> None:
    """ShapeError unless ``obs`` is one data set for ``amortizer``: ``(N, d)`` or ``(d,)``, after a
    leading batch axis of 1 where ``batch_axis`` (``x_obs`` is what the caller passed, for the message)."""
    d = amortizer.data_dim
    ranks = (2, 3) if batch_axis else (1, 2)
    if obs.ndim not in ranks or obs.shape[-1] != d:
        as_dict = f" (or a dict with observables (1, N, {d}))" if batch_axis else ""
        raise ShapeError(
            f"x_obs for this AmortizedLikelihood must be observations (N, {d}) or ({d},){as_dict}, "
            f"received {describe_shape(x_obs)}."
        )


def _cell_likelihood_fn(amortizer, x_obs, cell_points: int) -> LogLikelihoodFn:
    from amortflow.dequantization import cell_log_likelihood_fn, unit_cell_points

    if isinstance(x_obs, Mapping):
        raise ArgumentError("With cell_points, x_obs must be the raw integer data as an array (d,) or (N, d), not a dict.")
    obs = np.asarray(x_obs)
    _check_observations(amortizer, x_obs, obs, batch_axis=False)
    check_observed(amortizer, "observables", obs[None], batched=True)
    points = unit_cell_points(obs, cell_points)
    return cell_log_likelihood_fn(lambda x, theta: amortizer.log_prob_rows(x, theta)[0], points)


def _ratio_fn(amortizer, x_obs, nonfinite: str = "raise") -> LogLikelihoodFn:
    if isinstance(x_obs, Mapping):
        keys = ("summary_conditions", "direct_conditions")
        inputs = {key: _single_dataset(x_obs, key, required=False) for key in keys}
        check_keys(amortizer, "x_obs", inputs, keys)
        inputs = {
            key: None if value is None else check_observed(amortizer, key, value, batched=True, nonfinite=nonfinite)
            for key, value in inputs.items()
        }
    else:
        key = "summary_conditions" if amortizer.summary_net is not None else "direct_conditions"
        array = check_observed(amortizer, key, x_obs, batched=False, nonfinite=nonfinite)
        inputs = {"summary_conditions": None, "direct_conditions": None, key: array}
        check_keys(amortizer, "x_obs", inputs, ("summary_conditions", "direct_conditions"))
    conditions = amortizer.conditions(inputs)  # (1, k): the data enter once, not per chain

    def log_ratio(theta):
        tiled = tf.repeat(conditions, tf.shape(theta)[0], axis=0)
        return amortizer.log_ratio_tensor(tf.cast(theta, tf.float32), tiled)

    return log_ratio


def _single_dataset(x_obs: Mapping, key: str, required: bool = True):
    value = x_obs.get(key)
    if value is None:
        if required:
            raise ArgumentError(f"x_obs must hold '{key}' (one data set, batch axis 1); received keys {sorted(x_obs)}.")
        return None
    value = as_input(f"x_obs['{key}']", key, value)
    if value.ndim == 0 or value.shape[0] != 1:
        raise ShapeError(
            f"x_obs['{key}'] must hold exactly one data set (batch axis of size 1), received {describe_shape(value)}. "
            "Run MCMC once per observed data set."
        )
    return value


def resolve_prior(prior):
    """The TFP distribution (event shape ``(D,)``) of an amortflow ``Prior`` or a TFP distribution."""
    from amortflow.simulation import tfp_prior

    distribution = getattr(prior, "distribution", None) if not tfp_prior.is_distribution(prior) else prior
    if distribution is None:
        raise ArgumentError(
            "MCMC needs the prior's density in TensorFlow: pass a TensorFlow Probability distribution, or a "
            f"Prior(distribution=...); received {type(prior).__name__} without a distribution."
        )
    return tfp_prior.normalize_distribution(distribution)
