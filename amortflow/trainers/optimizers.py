"""The default optimizer (Adam, cosine-decayed learning rate, gradient clipping) and helpers.

The learning rate follows a cosine decay from ``lr_0`` to 0 over the ``T`` planned steps of
a training run (Loshchilov & Hutter, 2017, "SGDR")::

    lr(t) = lr_0 * 0.5 * (1 + cos(pi * min(t, T) / T))

and gradients are rescaled so that their global norm is at most ``clip_norm`` before Adam
(Kingma & Ba, 2015) applies them.
"""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf

from amortflow.defaults import DEFAULT_CLIP_NORM, DEFAULT_LEARNING_RATE
from amortflow.exceptions import ArgumentError


def default_optimizer(
    total_steps: int, learning_rate: float = DEFAULT_LEARNING_RATE, clip_norm: float | None = DEFAULT_CLIP_NORM
) -> keras.optimizers.Optimizer:
    """Adam with a cosine decay from ``learning_rate`` to 0 over ``total_steps`` and global-norm clipping.

    Examples
    --------
    >>> opt = default_optimizer(total_steps=100, learning_rate=1e-3)
    >>> round(float(opt.learning_rate), 6)
    0.001
    """
    if isinstance(total_steps, bool) or not isinstance(total_steps, int) or total_steps < 1:
        raise ArgumentError(f"total_steps must be an int >= 1, received {total_steps!r}.")
    schedule = keras.optimizers.schedules.CosineDecay(float(learning_rate), decay_steps=total_steps, alpha=0.0)
    return keras.optimizers.Adam(learning_rate=schedule, global_clipnorm=clip_norm)


def make_optimizer(optimizer: Any, total_steps: int, default_lr: float) -> keras.optimizers.Optimizer:
    """Turn the ``optimizer`` argument of a ``train_*`` method into a Keras optimizer.

    Parameters
    ----------
    optimizer : None, keras Optimizer, LearningRateSchedule, float or config dict
        ``None``: :func:`default_optimizer`; a schedule or a float: Adam with that learning rate
        and the default clipping; a Keras optimizer: used as is; a dict: ``keras.optimizers.get``.
    total_steps : int
        Planned steps of the run (the length of the default cosine decay).
    default_lr : float
        Initial learning rate of the default optimizer.
    """
    if optimizer is None:
        return default_optimizer(total_steps, default_lr)
    if isinstance(optimizer, keras.optimizers.Optimizer):
        return optimizer
    if isinstance(optimizer, keras.optimizers.schedules.LearningRateSchedule) or (
        isinstance(optimizer, (int, float)) and not isinstance(optimizer, bool) and optimizer > 0
    ):
        return keras.optimizers.Adam(learning_rate=optimizer, global_clipnorm=DEFAULT_CLIP_NORM)
    if isinstance(optimizer, dict):
        return keras.optimizers.get(optimizer)
    raise ArgumentError(
        "optimizer must be None, a keras.optimizers.Optimizer, a LearningRateSchedule, a positive float "
        f"or a config dict; received {type(optimizer).__name__} {optimizer!r}."
    )


def current_learning_rate(optimizer: keras.optimizers.Optimizer) -> float:
    """The learning rate the next update will use (schedules evaluated at ``optimizer.iterations``)."""
    return float(tf.convert_to_tensor(optimizer.learning_rate).numpy())


def optimizer_config(optimizer: keras.optimizers.Optimizer) -> dict | None:
    """JSON-able config of ``optimizer`` (to rebuild it on resume), or None if it cannot be serialized."""
    try:
        return keras.optimizers.serialize(optimizer)
    except (TypeError, ValueError, NotImplementedError):
        return None


def optimizer_from_config(config: dict) -> keras.optimizers.Optimizer:
    """Rebuild an optimizer saved with :func:`optimizer_config`."""
    return keras.optimizers.deserialize(config)
